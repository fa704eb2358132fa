"""Sequenzy: ``POST /v1/transactional/send``, in the shape the spec's production guide
(004) documents: a Bearer key and a JSON body of ``to`` (one address), ``subject`` and
``body`` (HTML, or the text body when there is no HTML).

That is all the documented API carries, so everything else raises
:class:`UnsupportedFeature` instead of being dropped: more than one recipient, Cc, Bcc,
Reply-To, custom headers, attachments, and every provider extra. The sender is the one
configured in the Sequenzy account (the documented body has no ``from`` field).
"""

from __future__ import annotations

from typing import Any, ClassVar

from mailpost.backends.http._base import HTTPBackend, Request, json_body
from mailpost.backends.http._parts import Parts, ProviderExtras, UnsupportedFeature

__all__ = ["EmailBackend", "SequenzyBackend", "sequenzy_payload"]


def sequenzy_payload(parts: Parts) -> dict[str, Any]:
    """The JSON body of ``POST /v1/transactional/send`` for ``parts`` (pure)."""
    provider = "Sequenzy"
    if len(parts.recipients) != 1 or len(parts.to) != 1:
        raise UnsupportedFeature(provider, "a message to anything but exactly one To address")
    for feature, present in (
        ("Reply-To", parts.reply_to),
        ("custom headers", parts.headers),
        ("attachments", parts.attachments),
        ("provider extras", parts.extras != ProviderExtras()),
    ):
        if present:
            raise UnsupportedFeature(provider, feature)
    body = parts.html if parts.html is not None else (parts.text or "")
    return {"to": parts.to[0], "subject": parts.subject, "body": body}


class SequenzyBackend(HTTPBackend):
    """Send through Sequenzy's transactional endpoint; OPTIONS as :class:`HTTPBackend`."""

    provider: ClassVar[str] = "Sequenzy"
    default_base_url: ClassVar[str] = "https://api.sequenzy.com"

    def build(self, parts: Parts) -> Request:
        headers = {"Content-Type": "application/json"}
        payload = sequenzy_payload(parts)
        return Request("POST", "/v1/transactional/send", headers, json_body(payload))

    def message_id_from(self, status: int, headers: Any, body: Any) -> str | None:
        if isinstance(body, dict):
            for key in ("id", "messageId", "message_id"):
                if key in body:
                    return str(body[key])
        return None


EmailBackend = SequenzyBackend
