"""mailpost's MIME writer: an ``EmailMessage`` to wire bytes, in one pass.

No ``email`` package header machinery: output that is 7-bit clean (unless the server
offers 8BITMIME), CRLF-terminated, with no line over 998 octets and no way for a value to
add a header line. ``mailpost.message`` holds the classes a caller composes with and
re-exports the public names here (:func:`serialize`, :func:`envelope`, ...). The parts a
message is made of (text, content, attachments, multiparts) are :mod:`mailpost._mime_parts`.
"""

from __future__ import annotations

import email.message
import email.policy
import email.utils
import io
import re
import time
from collections.abc import Iterator, Sequence
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from mailpost import _headers
from mailpost._config import settings
from mailpost._headers import AddressInput, check_name, fold, parse_address
from mailpost._mime_parts import (
    _CRLF,
    _SMTP_7BIT,
    _SMTP_POLICY,
    DEFAULT_ATTACHMENT_MIME_TYPE,
    FileContent,
    _as_text,
    _attachment_part,
    _check_mimetype,
    _content_part,
    _multipart,
    _Part,
    _Segments,
    _text_part,
    hooks,
    make_msgid,
)
from mailpost.exceptions import BadHeaderError

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = [
    "DEFAULT_ATTACHMENT_MIME_TYPE",
    "FileContent",
    "StreamedMessage",
    "compose",
    "envelope",
    "message_id_of",
    "serialize",
    "serialize_stream",
]


# -- composing a whole message ---------------------------------------------------------


def compose(
    message: EmailMessage, *, eight_bit: bool, streamed: bool
) -> bytes | list[bytes | FileContent]:
    """The wire format, whole, or (``streamed``) as segments with files left to read."""
    charset = message._charset()
    out = _header_lines(message) if message.extra_headers else _plain_header_lines(message)
    out.append("MIME-Version: 1.0\r\n")
    root = _structure(message, charset, eight_bit)
    buffer = _Segments() if streamed else io.BytesIO()
    # ASCII unless an address has a non-ASCII local part: then UTF-8 (RFC 6532), which
    # only an SMTPUTF8 transaction may carry (the SMTP engine checks).
    buffer.write("".join(out).encode())
    root.write(buffer)
    if isinstance(buffer, _Segments):
        return buffer.finish()
    return buffer.getvalue()


def _plain_header_lines(message: EmailMessage) -> list[str]:
    """The header lines when ``headers=`` is empty: the common case, made directly."""
    out = [_headers.render("Subject", _as_text(message.subject))]
    out.append(_address_line("From", (message.from_email,)))
    for name, value in (("To", message.to), ("Cc", message.cc), ("Reply-To", message.reply_to)):
        if value:
            out.append(_address_line(name, value))
    out.append(
        f"Date: {_date(bool(settings.EMAIL_USE_LOCALTIME))}\r\nMessage-ID: {make_msgid()}\r\n"
    )
    return out


def _header_lines(message: EmailMessage) -> list[str]:
    """The header lines, ``headers=`` replacing generated ones of the same name."""
    extra = _extra_headers(message.extra_headers)
    if _GENERATED.isdisjoint(extra):  # only headers of its own: after the generated ones
        out = _plain_header_lines(message)
        for name, value in extra.values():
            out.append(_headers.render(name, _as_text(value)))
        return out
    out = []
    for name, value in (
        ("Subject", None),
        ("From", (message.from_email,)),
        ("To", message.to),
        ("Cc", message.cc),
        ("Reply-To", message.reply_to),
    ):
        given = extra.pop(name.lower(), None)
        if given is not None:
            out.append(_headers.render(given[0], _as_text(given[1])))
        elif value is None:
            out.append(_headers.render(name, _as_text(message.subject)))
        elif value:
            out.append(_address_line(name, value))
    given = extra.pop("date", None)
    if given is not None:
        out.append(_headers.render(given[0], _as_text(given[1])))
    else:
        out.append(f"Date: {_date(bool(settings.EMAIL_USE_LOCALTIME))}\r\n")
    given = extra.pop("message-id", None)
    if given is not None:
        out.append(_headers.render(given[0], _as_text(given[1])))
    else:
        out.append(f"Message-ID: {make_msgid()}\r\n")
    for name, value in extra.values():
        out.append(_headers.render(name, _as_text(value)))
    return out


def _structure(message: EmailMessage, charset: str, eight_bit: bool = False) -> _Part:
    alternatives = list(getattr(message, "alternatives", ()))
    parts: list[_Part] = []
    if message.body or not (alternatives or message.attachments):
        # As Django's: an empty body is left out when alternatives or attachments carry
        # the message, and a lone alternative keeps its multipart/alternative wrapper.
        parts.append(
            _text_part(
                _as_text(message.body), message.content_subtype, charset, eight_bit=eight_bit
            )
        )
    for alternative in alternatives:
        content, mimetype = alternative
        _check_mimetype(mimetype, "alternative mimetype")
        parts.append(_content_part(content, mimetype, charset, exact=False, eight_bit=eight_bit))
    related: list[_Part] = []
    mixed: list[_Part] = []
    for attachment in message.attachments:
        part = _attachment_part(attachment, charset)
        (related if part.content_id else mixed).append(part)
    if related:
        html = next((i for i, p in enumerate(parts) if p.mimetype == "text/html"), None)
        if html is None:
            mixed = related + mixed
        else:
            parts[html] = _multipart("related", [parts[html], *related])
    main: _Part | None = None
    if alternatives:
        main = _multipart(str(getattr(message, "alternative_subtype", "alternative")), parts)
    elif parts:
        main = parts[0]
    if mixed:
        return _multipart(str(message.mixed_subtype), [main, *mixed] if main else mixed)
    assert main is not None
    return main


# -- helpers for backends ---------------------------------------------------------------


def serialize(message: EmailMessage, *, linesep: str = "\r\n", eight_bit: bool = False) -> bytes:
    """The bytes a backend sends for ``message``, lines ended by ``linesep``.

    By default the result is 7-bit clean. ``eight_bit=True`` (for a server that offers
    8BITMIME) lets non-ASCII body text go as 8bit instead of quoted-printable/base64:
    smaller, and cheaper to produce. Attachments are encoded the same either way.
    Uses mailpost's writer unless a subclass overrides ``message()``, whose result is then
    honoured (generated with the SMTP policy).
    """
    if type(message).message is hooks.email_message.message:
        data = message._render(eight_bit=eight_bit)
    else:
        policy = _SMTP_POLICY if eight_bit else _SMTP_7BIT
        msg = message.message(policy=policy)
        if _utf8_addresses(msg):  # only UTF-8 can carry them (RFC 6532), not encoded-words
            policy = policy.clone(utf8=True)
        data = msg.as_bytes(policy=policy)
    if linesep != "\r\n":
        data = data.replace(_CRLF, linesep.encode("ascii"))
    return data


def _utf8_addresses(msg: email.message.Message) -> bool:
    """Whether an address header of ``msg`` has a non-ASCII local part."""
    for name in _headers.ADDRESS_HEADERS:
        for value in msg.get_all(name, ()):
            for address in getattr(value, "addresses", ()):
                if not address.username.isascii():
                    return True
    return False


class StreamedMessage:
    """A message whose file attachments are read while it is written (see ``stream=True``).

    ``segments`` alternate wire bytes and :class:`FileContent`; ``size`` is the total
    length on the wire, known before anything is read, for SMTP ``SIZE``.
    """

    __slots__ = ("head", "segments", "size")

    def __init__(self, segments: list[bytes | FileContent]) -> None:
        self.segments = segments
        self.head = segments[0] if isinstance(segments[0], bytes) else b""
        self.size = sum(len(s) if isinstance(s, bytes) else s.encoded_size() for s in segments)

    def isascii(self) -> bool:
        return all(s.isascii() for s in self.segments if isinstance(s, bytes))

    def chunks(self) -> Iterator[bytes]:
        """The wire bytes in order; each file is read and encoded as it is reached."""
        for segment in self.segments:
            if isinstance(segment, bytes):
                yield segment
            else:
                yield from segment.chunks()


def serialize_stream(message: EmailMessage, *, eight_bit: bool = False) -> StreamedMessage | None:
    """The message as a :class:`StreamedMessage` when it has streamed attachments (and
    uses mailpost's writer), else None: then :func:`serialize` is the way."""
    base = hooks.email_message
    cls = type(message)
    if cls.message is not base.message or cls._render is not base._render:
        return None
    if not any(
        isinstance(a, hooks.email_attachment) and isinstance(a.content, FileContent)
        for a in message.attachments
    ):
        return None
    segments = message._compose(eight_bit=eight_bit, streamed=True)
    assert isinstance(segments, list)
    return StreamedMessage(segments)


def envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """The SMTP envelope: (sender, recipients) as ASCII addr-specs, validated."""
    sender = parse_address(message.from_email, "from_email").addr_spec
    if type(message).recipients is hooks.email_message.recipients:
        fields = (("to", message.to), ("cc", message.cc), ("bcc", message.bcc))
        recipients = [parse_address(a, f).addr_spec for f, items in fields for a in items if a]
    else:
        recipients = [parse_address(a, "recipients").addr_spec for a in message.recipients()]
    return sender, recipients


_FORBIDDEN_EXTRA = {
    "bcc": " (use bcc=[...])",
    "mime-version": " (mailpost sets it)",
    "content-type": " (mailpost sets it)",
    "content-transfer-encoding": " (mailpost sets it)",
}


def _extra_headers(headers: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """``headers=`` by lower-case name, validated; Bcc and MIME structure are refused."""
    extra = {}
    for key, value in headers.items():
        name = key if type(key) is str and key in _valid_names else _valid_name(str(key))
        extra[name.lower()] = (name, value)
    if not _FORBIDDEN_EXTRA.keys().isdisjoint(extra):
        for lower, hint in _FORBIDDEN_EXTRA.items():
            if lower in extra:
                name = extra[lower][0]
                raise BadHeaderError(f"{name}: cannot be set through headers={hint}", field=name)
    return extra


_valid_names: set[str] = set()


def _valid_name(name: str) -> str:
    check_name(name)
    if len(_valid_names) < 1024:
        _valid_names.add(name)
    return name


#: Header names mailpost generates; ``headers=`` may replace them.
_GENERATED = frozenset({"subject", "from", "to", "cc", "reply-to", "date", "message-id"})


def _address_line(name: str, items: Sequence[AddressInput]) -> str:
    """The folded header line for an address list ("" when every entry is empty)."""
    if len(items) == 1 and type(items[0]) is str and items[0]:
        address = parse_address(items[0], name)  # cached: the envelope reads it again
        if not address.display_name:
            line = f"{name}: {address.addr_spec}\r\n"
            if len(line) <= _headers.SOFT_LINE + 2:
                return line
    if all(type(a) is str for a in items):
        return _headers.address_header(name, tuple(items))
    parsed = [parse_address(a, name) for a in items if a]
    return fold(name, _headers.format_addresses(parsed)) if parsed else ""


_last_date: tuple[float, bool, str] = (0.0, False, "")


def _date(localtime: bool) -> str:
    """The RFC 5322 date for now, formatted once per second."""
    global _last_date
    now = float(int(time.time()))
    when, local, text = _last_date
    if when != now or local != localtime:
        text = formatdate(now, localtime=localtime)
        if not localtime:  # UTC is a known zone: "+0000" (RFC 5322 3.3), as Django writes
            text = text[:-5] + "+0000"
        _last_date = (now, localtime, text)
    return text


_MESSAGE_ID_LINE = re.compile(
    rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE
)
_FOLD = re.compile(rb"\r?\n[ \t]+")


def message_id_of(data: bytes) -> str | None:
    """The Message-ID header of serialized message bytes (without parsing the message)."""
    head_end = data.find(b"\r\n\r\n")
    start = data.find(b"\r\nMessage-ID: <", 0, head_end)
    if start > 0 and b"\n\n" not in data[:start]:
        # mailpost's writer: one unfolded line; exact unless an earlier header differs
        # only by case (then the general search below decides).
        start += 2
        end = data.find(b"\r\n", start)
        value = data[start + 12 : end]
        if (
            value.endswith(b">")
            and data[end + 2 : end + 3] not in (b" ", b"\t")
            and b"\nmessage-id:" not in data[:start].lower()
            and data[:11].lower() != b"message-id:"
        ):
            return value.decode("ascii", "replace")
    end = data.find(b"\n\n")
    crlf_end = data.find(b"\r\n\r\n")
    if crlf_end >= 0 and (end < 0 or crlf_end < end):
        end = crlf_end
    match = _MESSAGE_ID_LINE.search(data, 0, end if end >= 0 else len(data))
    if match is None:
        return None
    return _FOLD.sub(b" ", match.group(1)).strip().decode("ascii", "replace") or None


hooks.serialize = serialize
