"""Pure helpers: an :class:`~mailpost.EmailMessage` taken apart into what HTTP email APIs
take as fields, and the classification of a provider's HTTP reply.

No I/O here. :func:`message_parts` serializes the message once (which validates every
header and address exactly as SMTP would) and keeps the bytes for providers that accept raw
MIME; :func:`classify` turns (status, headers, body text) into a verdict shared by every
provider.
"""

from __future__ import annotations

import base64
import email.message
import email.parser
import email.policy
import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from mailpost._headers import parse_address
from mailpost.exceptions import MailpostError
from mailpost.message import (
    EmailAttachment,
    EmailMessage,
    FileContent,
    envelope,
    message_id_of,
    serialize,
)

__all__ = [
    "Attachment",
    "Parts",
    "ProviderExtras",
    "UnsupportedFeature",
    "Verdict",
    "classify",
    "message_parts",
    "parse_retry_after",
]


class UnsupportedFeature(MailpostError, ValueError):
    """The message uses something this provider's API cannot carry; nothing was sent.

    Raised (and recorded on ``message.delivery``) before any request for the message, so a
    message is never delivered with a part silently missing.
    """

    def __init__(self, provider: str, feature: str) -> None:
        super().__init__(f"{provider} cannot send {feature}; nothing was sent for this message")
        self.provider = provider
        self.feature = feature

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.provider, self.feature))


@dataclass(frozen=True, slots=True)
class ProviderExtras:
    """Provider-side features, set as ``message.provider_extras = ProviderExtras(...)``.

    One typed shape for every HTTP backend; each maps the fields it supports to its API and
    raises :class:`UnsupportedFeature` for one it cannot honour (nothing is ignored).
    ``tags``: labels for the provider's analytics; ``metadata``: string key/values echoed in
    webhooks; ``send_at``: scheduled delivery (timezone-aware); ``template_id`` and
    ``template_data``: render a template stored at the provider; ``track_opens`` /
    ``track_clicks``: override the account's tracking switches (None: leave as is);
    ``stream``: the provider's stream / category (Postmark MessageStream).
    """

    tags: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    send_at: datetime | None = None
    template_id: str | None = None
    template_data: Mapping[str, Any] | None = None
    track_opens: bool | None = None
    track_clicks: bool | None = None
    stream: str | None = None

    def __post_init__(self) -> None:
        tags: object = self.tags
        if isinstance(tags, str):
            raise TypeError("ProviderExtras.tags must be a sequence of strings, not one string")
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.send_at is not None and self.send_at.tzinfo is None:
            raise ValueError("ProviderExtras.send_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attachment as bytes; ``content_id`` (without brackets) marks an inline image."""

    filename: str | None
    content: bytes
    mimetype: str
    content_id: str | None = None

    @property
    def b64(self) -> str:
        return base64.b64encode(self.content).decode("ascii")


@dataclass(slots=True)
class Parts:
    """A message as HTTP APIs see it: formatted addresses, bodies, attachments, headers."""

    sender: str
    from_email: str  # "Name <a@b>" for the From field
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    subject: str
    text: str | None
    html: str | None
    attachments: list[Attachment]
    headers: dict[str, str]  # custom headers, Date and Message-ID excluded
    message_id: str | None
    recipients: list[str]  # envelope addr-specs, To + Cc + Bcc
    raw: bytes  # the full RFC 5322 message (Bcc not included)
    extras: ProviderExtras

    @property
    def inline(self) -> list[Attachment]:
        return [a for a in self.attachments if a.content_id]

    @property
    def files(self) -> list[Attachment]:
        return [a for a in self.attachments if not a.content_id]


#: Headers the APIs take as fields (or that mailpost generates): not passed as custom ones.
_FIELD_HEADERS = frozenset({"from", "to", "cc", "reply-to", "subject", "date", "message-id"})


def _formatted(items: list[Any], name: str, only: set[str] | None = None) -> list[str]:
    """The addresses as the provider wants them; with ``only``, just those addr-specs."""
    out = []
    for item in items:
        if not item:
            continue
        address = parse_address(item, name)
        if only is not None and address.addr_spec.lower() not in only:
            continue
        if address.display_name:
            out.append(email.utils.formataddr((address.display_name, address.addr_spec)))
        else:
            out.append(address.addr_spec)
    return out


def _attachment(item: Any, provider: str) -> Attachment:
    if isinstance(item, EmailAttachment):
        content = item.content
        if isinstance(content, FileContent):
            content = b"".join(_read_file(content))
        elif isinstance(content, str):
            content = content.encode("utf-8")
        elif isinstance(content, EmailMessage):
            content = serialize(content)
        elif isinstance(content, email.message.Message):
            content = content.as_bytes()
        elif not isinstance(content, (bytes, bytearray)):
            raise UnsupportedFeature(provider, f"an attachment of type {type(content).__name__}")
        return Attachment(
            item.filename, bytes(content), item.mimetype or "application/octet-stream"
        )
    if isinstance(item, email.message.Message):
        if item.is_multipart():
            raise UnsupportedFeature(provider, "a multipart MIME attachment")
        payload = item.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        cid = item.get("Content-ID")
        content_id = str(cid).strip().strip("<>") if cid else None
        return Attachment(item.get_filename(), data, item.get_content_type(), content_id)
    raise UnsupportedFeature(provider, f"an attachment of type {type(item).__name__}")


def _read_file(source: FileContent) -> list[bytes]:
    with open(source.path, "rb") as f:
        return [f.read()]


_STRUCTURE_HEADERS = frozenset(
    {"mime-version", "content-type", "content-transfer-encoding", "content-disposition"}
)


def _parts_from_bytes(
    message: EmailMessage, raw: bytes, sender: str, recipients: list[str], provider: str
) -> Parts:
    """Parts of a message replayed from its bytes (the spool's ``SpooledMessage``).

    Only the envelope recipients get it: To and Cc keep the header's addresses that are
    still to be delivered, and any other envelope recipient is a Bcc. So a retry never
    resends to a recipient an earlier attempt delivered to.
    """
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    pending = {r.lower() for r in recipients}
    shown: set[str] = set()

    def header_addresses(name: str, keep_pending: bool) -> list[str]:
        header = parsed.get(name)
        out = []
        for address in getattr(header, "addresses", ()) if header is not None else ():
            spec = address.addr_spec
            if keep_pending and spec.lower() not in pending:
                continue
            shown.add(spec.lower())
            out.append(email.utils.formataddr((address.display_name, spec)))
        return out

    to = header_addresses("To", True)
    cc = header_addresses("Cc", True)
    reply_to = header_addresses("Reply-To", False)
    bcc = [r for r in recipients if r.lower() not in shown]
    text_part = parsed.get_body(("plain",))
    html_part = parsed.get_body(("html",))
    attachments = []
    for part in parsed.walk():
        if part.is_multipart() or part is text_part or part is html_part:
            continue
        attachments.append(_attachment(part, provider))
    headers = {
        k: str(v)
        for k, v in parsed.items()
        if k.lower() not in _FIELD_HEADERS and k.lower() not in _STRUCTURE_HEADERS
    }
    from_header = parsed.get("From")
    extras = getattr(message, "provider_extras", None) or ProviderExtras()
    return Parts(
        sender=sender,
        from_email=str(from_header) if from_header is not None else sender,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        subject=str(parsed.get("Subject", "")),
        text=str(text_part.get_content()) if text_part is not None else None,
        html=str(html_part.get_content()) if html_part is not None else None,
        attachments=attachments,
        headers=headers,
        message_id=message_id_of(raw),
        recipients=recipients,
        raw=raw,
        extras=extras,
    )


def message_parts(message: EmailMessage, provider: str) -> Parts:
    """Take ``message`` apart for an HTTP API; raise ValueError for a bad header or address,
    :class:`UnsupportedFeature` for a body type no HTTP API field can carry."""
    raw = serialize(message)
    sender, recipients = envelope(message)
    if type(message)._render is not EmailMessage._render:
        return _parts_from_bytes(message, raw, sender, recipients, provider)
    extra = {str(k): v for k, v in message.extra_headers.items()}
    lower = {k.lower(): k for k in extra}
    for name in ("to", "cc"):
        if name in lower:
            raise UnsupportedFeature(
                provider, f"a {lower[name]} header that differs from the recipients"
            )
    from_email = str(extra[lower["from"]]) if "from" in lower else message.from_email
    reply_to: list[Any] = (
        [str(extra[lower["reply-to"]])] if "reply-to" in lower else list(message.reply_to)
    )
    subject = str(extra[lower["subject"]]) if "subject" in lower else str(message.subject)
    text: str | None = None
    html: str | None = None
    body = str(message.body) if message.body else ""
    if message.content_subtype == "html":
        html = body or None
    elif message.content_subtype == "plain":
        text = body
    else:
        raise UnsupportedFeature(provider, f"a text/{message.content_subtype} body")
    for alternative in getattr(message, "alternatives", ()):
        kind = alternative.mimetype.lower()
        if kind == "text/html" and html is None:
            content = alternative.content
            html = content.decode("utf-8") if isinstance(content, bytes) else str(content)
        elif kind == "text/plain" and not text:
            text = str(alternative.content)
        else:
            raise UnsupportedFeature(provider, f"a {alternative.mimetype} alternative body")
    # A message whose recipients() is narrower than its fields (a failover's copy for the
    # recipients the first mailer did not take) goes only to those recipients.
    only: set[str] | None = None
    if type(message).recipients is not EmailMessage.recipients:
        only = {r.lower() for r in recipients}
    extras = getattr(message, "provider_extras", None) or ProviderExtras()
    if not isinstance(extras, ProviderExtras):
        raise TypeError(
            "message.provider_extras must be a mailpost.backends.http.ProviderExtras, "
            f"not {type(extras).__name__}"
        )
    return Parts(
        sender=sender,
        from_email=_formatted([from_email], "from_email")[0],
        to=_formatted(list(message.to), "to", only),
        cc=_formatted(list(message.cc), "cc", only),
        bcc=_formatted(list(message.bcc), "bcc", only),
        reply_to=_formatted(reply_to, "reply_to"),
        subject=subject,
        text=text,
        html=html,
        attachments=[_attachment(a, provider) for a in message.attachments],
        headers={k: str(v) for k, v in extra.items() if k.lower() not in _FIELD_HEADERS},
        message_id=message_id_of(raw),
        recipients=recipients,
        raw=raw,
        extras=extras,
    )


# -- reply classification -------------------------------------------------------------

Kind = Literal["accepted", "permanent", "unauthorized", "retryable"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an HTTP reply means for the message: accepted, refused for good, a mailer
    problem (bad credentials: the message was never looked at), or try again later."""

    kind: Kind
    status: int | None
    text: str
    retry_after: float | None = None

    @property
    def smtp_code(self) -> int:
        """The SMTP-equivalent class the spool's policy understands (5xx never retried)."""
        return {"accepted": 250, "permanent": 550, "unauthorized": 535, "retryable": 451}[self.kind]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify(status: int, headers: Mapping[str, str], text: str) -> Verdict:
    """The shared meaning of an HTTP status from an email API.

    2xx accepted; 401/403 the mailer's credentials (``attempted=False``: keep the mail);
    408/409/425/429 and 5xx try again (429 honours ``Retry-After`` or ``X-RateLimit-Reset``);
    any other 4xx (400, 404, 413, 422 ...) a permanent refusal of this message.
    """
    if 200 <= status < 300:
        return Verdict("accepted", status, text)
    if status in (401, 403):
        return Verdict("unauthorized", status, text)
    if status in (408, 409, 425, 429) or status >= 500:
        wait = parse_retry_after(headers.get("retry-after"))
        if wait is None and status == 429:
            reset = headers.get("x-ratelimit-reset")
            if reset:
                try:
                    value = float(reset)
                    wait = max(0.0, value - time.time()) if value > 1e9 else value
                except ValueError:
                    wait = None
        return Verdict("retryable", status, text, wait)
    return Verdict("permanent", status, text)
