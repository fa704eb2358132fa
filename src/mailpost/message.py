"""Composing email: the ``EmailMessage`` family, as the spec (Django's API) names it.

``EmailMessage`` holds what the caller gave; nothing is validated into bytes until the
message is rendered. Rendering is mailpost's own MIME writer (``mailpost._mime``, whose
public names :func:`serialize`, :func:`envelope`, :class:`FileContent`, ... are
re-exported here). ``message()`` parses those same bytes back into a stdlib
:class:`email.message.EmailMessage`, so the two views can never disagree. Composition does
no I/O except ``attach_file()`` reading its file.
"""

from __future__ import annotations

import email.message
import email.policy
import os
from collections.abc import Sequence
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from mailpost import _django, _headers, _mime, _mime_parts
from mailpost._config import settings
from mailpost._headers import AddressInput, check_value
from mailpost._mime import (
    DEFAULT_ATTACHMENT_MIME_TYPE,
    FileContent,
    StreamedMessage,
    envelope,
    message_id_of,
    serialize,
    serialize_stream,
)
from mailpost._mime_parts import _CRLF, _as_text, _check_mimetype, hooks, make_msgid
from mailpost.utils import DNS_NAME as DNS_NAME  # where Django's message module has it too

if TYPE_CHECKING:
    from email.policy import Policy

    from mailpost._delivery import DeliveryResult
    from mailpost.backends.base import BaseEmailBackend

__all__ = [
    "DEFAULT_ATTACHMENT_MIME_TYPE",
    "EmailAlternative",
    "EmailAttachment",
    "EmailMessage",
    "EmailMultiAlternatives",
    "FileContent",
    "StreamedMessage",
    "envelope",
    "make_msgid",
    "message_id_of",
    "serialize",
    "serialize_stream",
]


class EmailAttachment(NamedTuple):
    """An attachment: file name (may be None), content (str or bytes), MIME type."""

    filename: str | None
    content: Any
    mimetype: str | None


class EmailAlternative(NamedTuple):
    """An alternative representation of the body, e.g. ``("<p>Hi</p>", "text/html")``."""

    content: Any
    mimetype: str


Attachment = EmailAttachment | email.message.Message


def _address_list(name: str, value: Any) -> list[AddressInput]:
    if value is None:
        return []
    if isinstance(value, str):
        raise TypeError(f'"{name}" argument must be a list or tuple')
    return list(value)


# compat: keyword-only parameters that Django <= 5.2 also accepted positionally, in order.
_LEGACY_POSITIONAL = ("bcc", "connection", "attachments", "headers", "cc", "reply_to")
_LEGACY_POSITIONAL_ALT = (
    "bcc",
    "connection",
    "attachments",
    "headers",
    "alternatives",
    "cc",
    "reply_to",
)


def _legacy_args(
    cls_name: str, order: Sequence[str], args: tuple[Any, ...], given: dict[str, Any]
) -> dict[str, Any]:
    """compat: map deprecated extra positional arguments onto their keyword names."""
    if len(args) > len(order):
        raise TypeError(
            f"{cls_name}() takes at most {4 + len(order)} positional arguments "
            f"({4 + len(args)} given)"
        )
    moved = order[: len(args)]
    _django.deprecated(
        f"Passing {', '.join(moved)} to {cls_name}() positionally is deprecated; "
        "pass them as keyword arguments.",
        f"Passing positional argument(s) {', '.join(repr(n) for n in moved)} to "
        f"{cls_name}() is deprecated. Use keyword arguments instead.",
        stacklevel=3,
    )
    out = dict(given)
    for name, value in zip(order, args, strict=False):
        if out.get(name) is not None:
            raise TypeError(f"{cls_name}() got multiple values for argument {name!r}")
        out[name] = value
    return out


class EmailMessage:
    """A single email message: subject, body, addresses, headers and attachments.

    The first four parameters may be positional; the rest are keyword-only. Everything can
    be changed after construction; the message is validated when it is rendered (sent,
    ``message()``) and header names/values are also checked here, early.
    """

    content_subtype = "plain"
    mixed_subtype = "mixed"
    encoding: str | None = None

    #: Set by the backend that handled the message: what happened, and which mailer.
    delivery: DeliveryResult | None = None
    sent_using: str | None = None

    def __init__(
        self,
        subject: str = "",
        body: str = "",
        from_email: AddressInput | None = None,
        to: Sequence[AddressInput] | None = None,
        *legacy_args: Any,  # compat: deprecated positional form of the keyword arguments
        bcc: Sequence[AddressInput] | None = None,
        connection: BaseEmailBackend | None = None,
        attachments: Sequence[Attachment | tuple[Any, ...]] | None = None,
        headers: dict[str, Any] | None = None,
        cc: Sequence[AddressInput] | None = None,
        reply_to: Sequence[AddressInput] | None = None,
    ) -> None:
        if legacy_args:  # compat:
            kw = _legacy_args(
                type(self).__name__,
                _LEGACY_POSITIONAL,
                legacy_args,
                {
                    "bcc": bcc,
                    "connection": connection,
                    "attachments": attachments,
                    "headers": headers,
                    "cc": cc,
                    "reply_to": reply_to,
                },
            )
            bcc, connection, attachments = kw["bcc"], kw["connection"], kw["attachments"]
            headers, cc, reply_to = kw["headers"], kw["cc"], kw["reply_to"]
        self._init(subject, body, from_email, to, bcc, connection, attachments, headers, cc,
                   reply_to)  # fmt: skip

    def _init(
        self,
        subject: str,
        body: str,
        from_email: AddressInput | None,
        to: Sequence[AddressInput] | None,
        bcc: Sequence[AddressInput] | None,
        connection: BaseEmailBackend | None,
        attachments: Sequence[Attachment | tuple[Any, ...]] | None,
        headers: dict[str, Any] | None,
        cc: Sequence[AddressInput] | None,
        reply_to: Sequence[AddressInput] | None,
    ) -> None:
        self.to = _address_list("to", to)
        self.cc = _address_list("cc", cc)
        self.bcc = _address_list("bcc", bcc)
        self.reply_to = _address_list("reply_to", reply_to)
        self.from_email: AddressInput = from_email or settings.DEFAULT_FROM_EMAIL
        self.subject = subject
        self.body = body or ""
        self.attachments: list[Attachment] = []
        for attachment in attachments or ():
            if isinstance(attachment, email.message.Message):
                self.attach(attachment)
            else:
                self.attach(*attachment)
        # Checked when the message is built (message(), send), as Django does.
        self.extra_headers: dict[str, Any] = dict(headers or {})
        if connection is not None:  # compat:
            _django.deprecated(
                "The connection argument of EmailMessage is deprecated; configure MAILERS "
                "and call send(using=alias) instead.",
                "The 'connection' argument is deprecated. Switch to the 'using' argument "
                "with a MAILERS alias.",
                stacklevel=3,
            )
        self.connection = connection

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} subject={_headers._short(str(self.subject), 40)!r} "
            f"to={len(self.to)} cc={len(self.cc)} bcc={len(self.bcc)} "
            f"attachments={len(self.attachments)}>"
        )

    # -- the documented API -----------------------------------------------------------

    def message(self, *, policy: Policy = email.policy.default) -> email.message.EmailMessage:
        """The message as a stdlib :class:`email.message.EmailMessage` under ``policy``.

        It is parsed from the bytes a backend sends to a server offering 8BITMIME (text
        8bit where it can be, as Django's view), with ``\\n`` line endings; a policy whose
        ``cte_type`` is ``"7bit"`` gets the 7-bit form, and a ``utf8`` policy (SMTPUTF8)
        generates headers as UTF-8 instead of encoded-words. Subclasses may override this
        to customise the message.
        """
        if not isinstance(policy, email.policy.Policy):
            raise TypeError(f"policy must be an email.policy.Policy, not {type(policy).__name__}")
        factory = getattr(policy, "message_factory", None) or email.message.EmailMessage
        parser = BytesParser(_class=factory, policy=policy)
        eight_bit = getattr(policy, "cte_type", "8bit") == "8bit"
        data = self._render(eight_bit=eight_bit).replace(_CRLF, b"\n")
        msg = cast("email.message.EmailMessage", parser.parsebytes(data))
        utf8 = bool(getattr(policy, "utf8", False))
        if utf8 or not data[: data.find(b"\n\n")].isascii():
            _text_headers(msg, utf8)
        return msg

    def recipients(self) -> list[str]:
        """Every recipient, To, Cc and Bcc, as given (empty entries dropped)."""
        return [
            _as_text(a)
            for a in (*self.to, *self.cc, *self.bcc)
            if a  # an empty string is "no address", as in Django
        ]

    def send(self, fail_silently: bool = False, *, using: str | None = None) -> int:
        """Send through the ``using`` mailer (default ``"default"``); return 1 or 0."""
        from mailpost._api import send_message

        return send_message(self, fail_silently=fail_silently, using=using)

    async def asend(self, fail_silently: bool = False, *, using: str | None = None) -> int:
        """Async :meth:`send`: same result, same errors."""
        from mailpost._api import asend_message

        return await asend_message(self, fail_silently=fail_silently, using=using)

    def attach(
        self,
        filename: str | email.message.Message | None = None,
        content: Any = None,
        mimetype: str | None = None,
    ) -> None:
        """Attach content as a file, or attach a ready :class:`email.message.MIMEPart`.

        ``attach(filename, content, mimetype=None)`` guesses a missing type from the name.
        ``text/*`` bytes are decoded as UTF-8, or attached unchanged as
        ``application/octet-stream`` if they are not UTF-8. ``message/rfc822`` takes a
        mailpost or stdlib message.
        """
        if isinstance(filename, email.message.Message):
            if content is not None or mimetype is not None:
                raise ValueError("attach(): content and mimetype must not be given with a MIMEPart")
            if not isinstance(filename, email.message.MIMEPart):  # compat:
                _django.deprecated(
                    "Attaching legacy email.mime MIMEBase/Message objects is deprecated; "
                    "use email.message.MIMEPart instead.",
                    "MIMEBase attachments are deprecated. Use an email.message.MIMEPart instead.",
                    stacklevel=2,
                )
            self.attachments.append(filename)
            return
        if content is None:
            raise ValueError("attach(): content must be provided")
        if filename is not None:
            if not isinstance(filename, str):
                raise TypeError(
                    f"attach(): filename must be a string, not {type(filename).__name__}"
                )
            check_value("attachment filename", filename)
        mimetype, content = _mime_parts.attachment_content(filename, content, mimetype)
        self.attachments.append(EmailAttachment(filename, content, mimetype))

    def attach_file(
        self, path: str | os.PathLike[str], mimetype: str | None = None, *, stream: bool = False
    ) -> None:
        """Attach the file at ``path``, named by its base name; type guessed if omitted.

        ``stream=True`` does not read the file now: it is read and base64-encoded in chunks
        while the message is written to the SMTP server, so a large file never sits in
        memory whole (other backends read it when they render the message).
        """
        p = Path(path)
        if stream:
            self.attach(p.name, FileContent(p), mimetype)
            return
        self.attach(p.name, p.read_bytes(), mimetype)

    def body_contains(self, text: str) -> bool:
        """Whether ``text`` is in the body and in every ``text/*`` alternative."""
        if text not in str(self.body):
            return False
        for alternative in getattr(self, "alternatives", ()):
            content, mimetype = alternative
            if str(mimetype).lower().startswith("text/"):
                if isinstance(content, bytes):
                    content = content.decode("utf-8", "replace")
                if text not in str(content):
                    return False
        return True

    # -- rendering --------------------------------------------------------------------

    def _charset(self) -> str:
        return str(self.encoding or settings.DEFAULT_CHARSET)

    def _render(self, *, eight_bit: bool = False) -> bytes:
        """The complete message in wire format (CRLF line endings)."""
        data = self._compose(eight_bit=eight_bit, streamed=False)
        assert isinstance(data, bytes)
        return data

    def _compose(self, *, eight_bit: bool, streamed: bool) -> bytes | list[bytes | FileContent]:
        """The wire format, whole, or (``streamed``) as segments with files left to read."""
        return _mime.compose(self, eight_bit=eight_bit, streamed=streamed)


def _text_headers(msg: email.message.Message, utf8: bool) -> None:
    """Re-set headers from their text, so the policy generates them afresh.

    Headers written as UTF-8 (an address with a non-ASCII local part, RFC 6532) come out of
    the parser as undecodable bytes, which a policy without ``utf8`` writes back as
    ``unknown-8bit`` encoded-words and whose addresses read wrong; and for a ``utf8``
    policy (SMTPUTF8) encoded-words are decoded, so it writes those headers as UTF-8.
    """
    for part in msg.walk():
        raws = [raw for _, raw in part.raw_items()]
        if all(raw.isascii() and not (utf8 and "=?" in raw) for raw in raws):
            continue
        items = list(part.items())
        for name in {name.lower() for name, _ in items}:
            del part[name]
        for name, value in items:
            part[name] = str(value)
        if not utf8:
            return  # UTF-8 is only ever written in the top-level headers


hooks.email_message = EmailMessage
hooks.email_attachment = EmailAttachment


class EmailMultiAlternatives(EmailMessage):
    """An :class:`EmailMessage` that can carry alternative versions of its body."""

    alternative_subtype = "alternative"

    def __init__(
        self,
        subject: str = "",
        body: str = "",
        from_email: AddressInput | None = None,
        to: Sequence[AddressInput] | None = None,
        *legacy_args: Any,  # compat: deprecated positional form of the keyword arguments
        bcc: Sequence[AddressInput] | None = None,
        connection: BaseEmailBackend | None = None,
        attachments: Sequence[Attachment | tuple[Any, ...]] | None = None,
        headers: dict[str, Any] | None = None,
        alternatives: Sequence[EmailAlternative | tuple[Any, str]] | None = None,
        cc: Sequence[AddressInput] | None = None,
        reply_to: Sequence[AddressInput] | None = None,
    ) -> None:
        if legacy_args:  # compat:
            kw = _legacy_args(
                type(self).__name__,
                _LEGACY_POSITIONAL_ALT,
                legacy_args,
                {
                    "bcc": bcc,
                    "connection": connection,
                    "attachments": attachments,
                    "headers": headers,
                    "alternatives": alternatives,
                    "cc": cc,
                    "reply_to": reply_to,
                },
            )
            bcc, connection, attachments = kw["bcc"], kw["connection"], kw["attachments"]
            headers, alternatives = kw["headers"], kw["alternatives"]
            cc, reply_to = kw["cc"], kw["reply_to"]
        self._init(subject, body, from_email, to, bcc, connection, attachments, headers, cc,
                   reply_to)  # fmt: skip
        self.alternatives: list[EmailAlternative] = []
        for alternative in alternatives or ():
            self.attach_alternative(*alternative)

    def attach_alternative(self, content: Any, mimetype: str) -> None:
        """Add an alternative version of the body, e.g. HTML: ``(html, "text/html")``."""
        if content is None or mimetype is None:
            raise ValueError("attach_alternative(): both content and mimetype must be provided")
        _check_mimetype(mimetype, "alternative mimetype")
        self.alternatives.append(EmailAlternative(content, mimetype))
