"""Brevo (formerly Sendinblue): ``POST /v3/smtp/email`` of the Brevo API v3.

Fields per the reference "Send a transactional email": sender, to, cc, bcc (objects with
email and name), replyTo (one), subject, textContent, htmlContent, attachment (base64
``content`` + ``name``), headers (custom headers, the Message-ID, and ``idempotencyKey``
from the Message-ID: changelog "Email API now supports idempotency"), tags, scheduledAt,
templateId + params. Metadata goes in the ``X-Mailin-custom`` header, which Brevo echoes
in webhooks. Brevo has no inline (cid) images through this endpoint and no per-message
tracking switches: those raise.
"""

from __future__ import annotations

import email.utils
import json
from typing import Any, ClassVar

from mailpost.backends.http._base import HTTPBackend, Request, json_body
from mailpost.backends.http._parts import Parts, UnsupportedFeature

__all__ = ["BrevoBackend", "EmailBackend", "brevo_payload"]


def _address(value: str) -> dict[str, str]:
    name, addr = email.utils.parseaddr(value)
    return {"email": addr, "name": name} if name else {"email": addr}


def brevo_payload(parts: Parts) -> dict[str, Any]:
    """The JSON body of ``POST /v3/smtp/email`` for ``parts`` (pure)."""
    provider = "Brevo"
    extras = parts.extras
    if not parts.to:
        raise UnsupportedFeature(provider, "a message without To recipients")
    payload: dict[str, Any] = {
        "sender": _address(parts.from_email),
        "to": [_address(a) for a in parts.to],
    }
    if parts.cc:
        payload["cc"] = [_address(a) for a in parts.cc]
    if parts.bcc:
        payload["bcc"] = [_address(a) for a in parts.bcc]
    if len(parts.reply_to) > 1:
        raise UnsupportedFeature(provider, "more than one Reply-To address")
    if parts.reply_to:
        payload["replyTo"] = _address(parts.reply_to[0])
    if extras.template_id is None:
        payload["subject"] = parts.subject
        if parts.html:
            payload["htmlContent"] = parts.html
        if parts.text or not parts.html:
            payload["textContent"] = parts.text or " "
    else:
        if not extras.template_id.isdigit():
            raise UnsupportedFeature(provider, "a template named other than by its number")
        payload["templateId"] = int(extras.template_id)
        if extras.template_data:
            payload["params"] = dict(extras.template_data)
    if parts.inline:
        raise UnsupportedFeature(provider, "inline (cid) images")
    if parts.attachments:
        payload["attachment"] = [
            {"content": a.b64, "name": a.filename or "attachment"} for a in parts.attachments
        ]
    headers: dict[str, str] = dict(parts.headers)
    if parts.message_id:
        headers["Message-Id"] = parts.message_id
        headers["idempotencyKey"] = parts.message_id
    if extras.metadata:
        headers["X-Mailin-custom"] = json.dumps(dict(extras.metadata), separators=(",", ":"))
    if headers:
        payload["headers"] = headers
    if extras.tags:
        payload["tags"] = list(extras.tags)
    if extras.send_at is not None:
        payload["scheduledAt"] = extras.send_at.isoformat()
    if extras.track_opens is not None or extras.track_clicks is not None:
        raise UnsupportedFeature(provider, "per-message tracking switches")
    if extras.stream is not None:
        raise UnsupportedFeature(provider, "a message stream")
    return payload


class BrevoBackend(HTTPBackend):
    """Send through Brevo's ``POST /v3/smtp/email``; OPTIONS as :class:`HTTPBackend`."""

    provider: ClassVar[str] = "Brevo"
    default_base_url: ClassVar[str] = "https://api.brevo.com"

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.api_key}

    def build(self, parts: Parts) -> Request:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        return Request("POST", "/v3/smtp/email", headers, json_body(brevo_payload(parts)))

    def message_id_from(self, status: int, headers: Any, body: Any) -> str | None:
        if isinstance(body, dict) and "messageId" in body:
            return str(body["messageId"])
        return None


EmailBackend = BrevoBackend
