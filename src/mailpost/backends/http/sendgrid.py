"""SendGrid: ``POST /v3/mail/send`` of the Twilio SendGrid Web API v3.

One personalization per message (to, cc, bcc); ``content`` holds text/plain then
text/html; attachments carry ``disposition`` and ``content_id`` for inline images; the
Message-ID goes in ``headers``. Extras: tags -> ``categories``, metadata ->
``custom_args``, send_at -> ``send_at`` (Unix time), template_id/template_data -> dynamic
templates, track_opens/track_clicks -> ``tracking_settings``. A 202 reply carries the id
in ``X-Message-Id``. SendGrid has no idempotency key.
"""

from __future__ import annotations

import email.utils
from typing import Any, ClassVar

from mailpost.backends.http._base import HTTPBackend, Request, json_body
from mailpost.backends.http._parts import Parts, UnsupportedFeature

__all__ = ["EmailBackend", "SendGridBackend", "sendgrid_payload"]


def _address(value: str) -> dict[str, str]:
    name, addr = email.utils.parseaddr(value)
    return {"email": addr, "name": name} if name else {"email": addr}


def sendgrid_payload(parts: Parts) -> dict[str, Any]:
    """The JSON body of ``POST /v3/mail/send`` for ``parts`` (pure)."""
    extras = parts.extras
    if not parts.to:
        raise UnsupportedFeature("SendGrid", "a message without To recipients")
    personalization: dict[str, Any] = {"to": [_address(a) for a in parts.to]}
    if parts.cc:
        personalization["cc"] = [_address(a) for a in parts.cc]
    if parts.bcc:
        personalization["bcc"] = [_address(a) for a in parts.bcc]
    payload: dict[str, Any] = {
        "personalizations": [personalization],
        "from": _address(parts.from_email),
        "subject": parts.subject,
    }
    content = []
    if parts.text:
        content.append({"type": "text/plain", "value": parts.text})
    if parts.html:
        content.append({"type": "text/html", "value": parts.html})
    if content:
        payload["content"] = content
    elif extras.template_id is None:
        content.append({"type": "text/plain", "value": " "})  # SendGrid needs one character
        payload["content"] = content
    if parts.reply_to:
        payload["reply_to_list"] = [_address(a) for a in parts.reply_to]
    headers = dict(parts.headers)
    if parts.message_id:
        headers["Message-ID"] = parts.message_id
    if headers:
        payload["headers"] = headers
    if parts.attachments:
        payload["attachments"] = [
            {
                "content": a.b64,
                "type": a.mimetype,
                "filename": a.filename or ("inline" if a.content_id else "attachment"),
                "disposition": "inline" if a.content_id else "attachment",
                **({"content_id": a.content_id} if a.content_id else {}),
            }
            for a in parts.attachments
        ]
    if extras.tags:
        payload["categories"] = list(extras.tags)
    if extras.metadata:
        payload["custom_args"] = {k: str(v) for k, v in extras.metadata.items()}
    if extras.send_at is not None:
        payload["send_at"] = int(extras.send_at.timestamp())
    if extras.template_id is not None:
        payload["template_id"] = extras.template_id
        if extras.template_data:
            personalization["dynamic_template_data"] = dict(extras.template_data)
    tracking: dict[str, Any] = {}
    if extras.track_opens is not None:
        tracking["open_tracking"] = {"enable": extras.track_opens}
    if extras.track_clicks is not None:
        tracking["click_tracking"] = {"enable": extras.track_clicks}
    if tracking:
        payload["tracking_settings"] = tracking
    if extras.stream is not None:
        raise UnsupportedFeature("SendGrid", "a message stream")
    return payload


class SendGridBackend(HTTPBackend):
    """Send through SendGrid's v3 ``POST /v3/mail/send``; OPTIONS as :class:`HTTPBackend`."""

    provider: ClassVar[str] = "SendGrid"
    default_base_url: ClassVar[str] = "https://api.sendgrid.com"

    def build(self, parts: Parts) -> Request:
        headers = {"Content-Type": "application/json"}
        return Request("POST", "/v3/mail/send", headers, json_body(sendgrid_payload(parts)))

    def message_id_from(self, status: int, headers: Any, body: Any) -> str | None:
        value = headers.get("x-message-id")
        return str(value) if value else None

    def error_text(self, status: int, body: Any, text: str) -> str:
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            messages = []
            for error in body["errors"]:
                if isinstance(error, dict):
                    where = f"{error['field']}: " if error.get("field") else ""
                    messages.append(f"{where}{error.get('message', '')}")
            if messages:
                return "; ".join(messages)
        return super().error_text(status, body, text)


EmailBackend = SendGridBackend
