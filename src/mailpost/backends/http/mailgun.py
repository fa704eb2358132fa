"""Mailgun: ``POST /v3/<domain>/messages.mime`` of the Mailgun Messages API (v3).

The message goes as its raw RFC 5322 bytes (the ``message`` form part), with one ``to``
field per envelope recipient (Bcc included), so every part is delivered exactly as
composed. Auth is HTTP Basic with user ``api``. Extras: tags -> ``o:tag`` (up to 3),
metadata -> ``v:`` user variables, send_at -> ``o:deliverytime``, track_opens /
track_clicks -> ``o:tracking-opens`` / ``o:tracking-clicks``; stored templates and streams
raise (the MIME endpoint takes no template).
"""

from __future__ import annotations

import base64
import email.utils
import json
import secrets
from typing import Any, ClassVar
from urllib.parse import quote

from mailpost.backends.http._base import HTTPBackend, Request
from mailpost.backends.http._parts import Parts, UnsupportedFeature

__all__ = ["EmailBackend", "MailgunBackend", "mailgun_form"]


def mailgun_form(parts: Parts) -> list[tuple[str, str | bytes]]:
    """The form fields of ``messages.mime`` for ``parts`` (pure); bytes is the MIME file."""
    extras = parts.extras
    if extras.template_id is not None:
        raise UnsupportedFeature("Mailgun", "a stored template with raw MIME")
    if extras.stream is not None:
        raise UnsupportedFeature("Mailgun", "a message stream")
    if len(extras.tags) > 3:
        raise UnsupportedFeature("Mailgun", "more than 3 tags")
    fields: list[tuple[str, str | bytes]] = [("to", r) for r in parts.recipients]
    fields += [("o:tag", t) for t in extras.tags]
    fields += [(f"v:{k}", str(v)) for k, v in extras.metadata.items()]
    if extras.send_at is not None:
        fields.append(("o:deliverytime", email.utils.format_datetime(extras.send_at)))
    if extras.track_opens is not None:
        fields.append(("o:tracking-opens", "yes" if extras.track_opens else "no"))
    if extras.track_clicks is not None:
        fields.append(("o:tracking-clicks", "yes" if extras.track_clicks else "no"))
    fields.append(("message", parts.raw))
    return fields


def multipart(fields: list[tuple[str, str | bytes]]) -> tuple[bytes, str]:
    """multipart/form-data (RFC 7578) body and its Content-Type; bytes values are files."""
    boundary = f"mailpost-{secrets.token_hex(16)}"
    out = bytearray()
    for name, value in fields:
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, bytes):
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="message.mime"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            out += value
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += value.encode("utf-8")
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


class MailgunBackend(HTTPBackend):
    """Send through Mailgun's ``messages.mime``. OPTIONS: ``api_key``, ``domain``
    (required: your sending domain), and the shared ones (``base_url`` defaults to the US
    region; use ``https://api.eu.mailgun.net`` for the EU)."""

    provider: ClassVar[str] = "Mailgun"
    default_base_url: ClassVar[str] = "https://api.mailgun.net"

    def __init__(self, api_key: str | None = None, *, domain: str | None = None, **kwargs: Any):
        super().__init__(api_key, **kwargs)
        if not isinstance(domain, str) or not domain or "/" in domain:
            raise self.invalid("option 'domain' (your Mailgun sending domain) is required")
        self.domain = domain

    def auth_headers(self) -> dict[str, str]:
        token = base64.b64encode(f"api:{self.api_key}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    def build(self, parts: Parts) -> Request:
        body, content_type = multipart(mailgun_form(parts))
        path = f"/v3/{quote(self.domain)}/messages.mime"
        return Request("POST", path, {"Content-Type": content_type}, body)

    def message_id_from(self, status: int, headers: Any, body: Any) -> str | None:
        return str(body["id"]) if isinstance(body, dict) and "id" in body else None

    def error_text(self, status: int, body: Any, text: str) -> str:
        if not isinstance(body, dict):
            try:
                body = json.loads(text)
            except ValueError:
                body = None
        return super().error_text(status, body, text)


EmailBackend = MailgunBackend
