"""Sequenzy: ``POST /api/v1/transactional/send`` of the Sequenzy API.

Implemented from Sequenzy's API reference (docs.sequenzy.com, "API Reference: Introduction"
and "Transactional: Send Transactional Email", read 2026-12): base URL
``https://api.sequenzy.com/api/v1``, a Bearer key, a JSON body of ``to`` / ``cc`` / ``bcc``
(a string or up to 50 addresses each), ``subject`` and ``body`` (HTML) or a template
``slug`` with ``variables``, ``from`` and ``replyTo`` (one address each, ``"Name <email>"``)
and ``attachments`` (``filename`` + base64 ``content``, 40 MB in all). Replies are
``{"success": true, "jobId": ...}`` or ``{"success": false, "error": ...}``; 409 means a
resource already exists, so it is a permanent refusal here, never retried.

What the API has no field for raises :class:`UnsupportedFeature` instead of being dropped:
custom headers, inline (Content-ID) images, more than one Reply-To, and the extras other
than a template. Sequenzy's ``body`` is HTML only: a message with an HTML alternative sends
that; a text-only message sends its text escaped in a ``white-space: pre-wrap`` block, so
every character and line break arrives as written. (With both, the text alternative is not
sent: the API has no field for it.)
"""

from __future__ import annotations

import html
from typing import Any, ClassVar

from mailpost.backends.http._base import HTTPBackend, Request, json_body
from mailpost.backends.http._parts import Parts, UnsupportedFeature, Verdict

__all__ = ["EmailBackend", "SequenzyBackend", "sequenzy_payload"]

#: "Send Transactional Email": at most 50 addresses in each of to, cc and bcc.
MAX_RECIPIENTS = 50
#: "attachments": "Maximum total size: 40MB" (of the files, before base64).
MAX_ATTACHMENTS = 40 * 1024 * 1024


def text_as_html(text: str) -> str:
    """Plain text as an HTML body that shows exactly that text, line breaks included."""
    return f'<div style="white-space:pre-wrap">{html.escape(text, quote=False)}</div>'


def sequenzy_payload(parts: Parts) -> dict[str, Any]:
    """The JSON body of ``POST /api/v1/transactional/send`` for ``parts`` (pure)."""
    provider = "Sequenzy"
    extras = parts.extras
    if not parts.to:
        raise UnsupportedFeature(provider, "a message without To recipients")
    payload: dict[str, Any] = {"to": parts.to}
    for name, addresses in (("to", parts.to), ("cc", parts.cc), ("bcc", parts.bcc)):
        if len(addresses) > MAX_RECIPIENTS:
            raise UnsupportedFeature(provider, f"more than {MAX_RECIPIENTS} {name} addresses")
        if addresses:
            payload[name] = addresses
    payload["from"] = parts.from_email
    if len(parts.reply_to) > 1:
        raise UnsupportedFeature(provider, "more than one Reply-To address")
    if parts.reply_to:
        payload["replyTo"] = parts.reply_to[0]
    if parts.headers:
        raise UnsupportedFeature(provider, f"custom headers ({', '.join(sorted(parts.headers))})")
    if extras.template_id is not None:
        payload["slug"] = extras.template_id
    else:
        payload["subject"] = parts.subject
        payload["body"] = parts.html if parts.html is not None else text_as_html(parts.text or "")
    if extras.template_data:
        payload["variables"] = dict(extras.template_data)
    if parts.inline:
        raise UnsupportedFeature(provider, "inline images (Content-ID attachments)")
    if parts.attachments:
        if sum(len(a.content) for a in parts.attachments) > MAX_ATTACHMENTS:
            raise UnsupportedFeature(provider, "attachments over 40 MB in total")
        payload["attachments"] = [
            {"filename": a.filename or "attachment", "content": a.b64} for a in parts.attachments
        ]
    for feature, present in (
        ("tags", extras.tags),
        ("metadata", extras.metadata),
        ("a scheduled send (send_at)", extras.send_at is not None),
        ("tracking switches", extras.track_opens is not None or extras.track_clicks is not None),
        ("a message stream", extras.stream is not None),
    ):
        if present:
            raise UnsupportedFeature(provider, feature)
    return payload


class SequenzyBackend(HTTPBackend):
    """Send through Sequenzy's transactional endpoint; OPTIONS as :class:`HTTPBackend`."""

    provider: ClassVar[str] = "Sequenzy"
    default_base_url: ClassVar[str] = "https://api.sequenzy.com"

    def build(self, parts: Parts) -> Request:
        headers = {"Content-Type": "application/json"}
        payload = sequenzy_payload(parts)
        return Request("POST", "/api/v1/transactional/send", headers, json_body(payload))

    def judge(self, status: int, headers: Any, body: Any, text: str) -> Verdict:
        verdict = super().judge(status, headers, body, text)
        if status == 409:  # "Conflict (resource already exists)": retrying cannot help
            return Verdict("permanent", status, verdict.text)
        return verdict

    def message_id_from(self, status: int, headers: Any, body: Any) -> str | None:
        if isinstance(body, dict) and body.get("jobId") is not None:
            return str(body["jobId"])
        return None


EmailBackend = SequenzyBackend
