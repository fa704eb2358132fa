"""Read captured message bytes into what the preview shows: pure functions, no I/O.

:func:`parse` turns wire bytes into a :class:`ParsedMessage` (headers, text part, HTML part,
attachments, ``cid:`` parts); :func:`summarize` gives the one-line :class:`Summary` the list
shows; :func:`frame_html` prepares the HTML part for the sandboxed iframe (``cid:`` images
become ``data:`` URLs, links open in a new tab).
"""

from __future__ import annotations

import base64
import email.errors
import email.policy
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage as StdMessage
from email.message import Message
from email.parser import BytesParser
from typing import cast

__all__ = [
    "Attachment",
    "ParsedMessage",
    "Summary",
    "frame_html",
    "has_remote_content",
    "parse",
    "split_log",
    "summarize",
]

_SEPARATOR = b"-" * 79
_SNIPPET = 140
_SEARCH_BODY = 20_000


@dataclass(frozen=True)
class Attachment:
    """A leaf part that is not the chosen text or HTML body (files, inline images)."""

    index: int  # position in ``message.walk()``: stable for a given message
    filename: str
    content_type: str
    size: int
    content_id: str | None = None
    inline: bool = False


@dataclass
class ParsedMessage:
    """A message as the preview shows it."""

    message: StdMessage
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    attachments: list[Attachment] = field(default_factory=list)

    def part(self, index: int) -> Message | None:
        """The leaf part at ``index`` of :meth:`email.message.Message.walk`, or None."""
        for position, part in enumerate(self.message.walk()):
            if position == index:
                return part
        return None

    def payload(self, index: int) -> bytes | None:
        """The decoded bytes of attachment ``index``, or None if there is no such part."""
        if not any(a.index == index for a in self.attachments):
            return None
        part = self.part(index)
        if part is None:
            return None
        data = part.get_payload(decode=True)
        return data if isinstance(data, bytes) else b""


@dataclass(frozen=True)
class Summary:
    """What the message list shows for one message, plus a lower-case text to search."""

    subject: str
    sender: str
    to: str
    date: str
    message_id: str
    size: int
    has_html: bool
    has_text: bool
    attachments: int
    snippet: str
    search_text: str


def _text_of(part: Message) -> str:
    try:
        content = cast(StdMessage, part).get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset or broken encoding
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return content if isinstance(content, str) else content.decode("utf-8", "replace")


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, AttributeError):  # a header the parser cannot decode
        value = None
    return "" if value is None else str(value)


def parse(data: bytes) -> ParsedMessage:
    """Parse wire bytes (any line endings). Never raises on malformed mail: the parser's
    defects become best-effort values, since a preview must show what was captured."""
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    headers = [(name, _header_value(value)) for name, value in message.items()]
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = []
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        is_file = disposition == "attachment" or (filename is not None and disposition != "inline")
        if not is_file and content_type == "text/plain" and text is None:
            text = _text_of(part)
            continue
        if not is_file and content_type == "text/html" and html is None:
            html = _text_of(part)
            continue
        raw = part.get_payload(decode=True)
        size = len(raw) if isinstance(raw, bytes) else 0
        cid = _header(part, "Content-ID").strip().strip("<>") or None
        attachments.append(
            Attachment(
                index=index,
                filename=filename or _default_name(index, content_type),
                content_type=content_type,
                size=size,
                content_id=cid,
                inline=disposition == "inline" or (cid is not None and disposition is None),
            )
        )
    return ParsedMessage(message, headers, text, html, attachments)


def _header_value(value: object) -> str:
    return str(value)


def _default_name(index: int, content_type: str) -> str:
    subtype = content_type.partition("/")[2] or "bin"
    return f"part-{index}.{re.sub(r'[^a-z0-9]+', '', subtype)[:10] or 'bin'}"


_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


def _plain(html: str) -> str:
    import html as html_module

    return _SPACE.sub(" ", html_module.unescape(_TAG.sub(" ", html))).strip()


def _decoded(value: str | None) -> str:
    if not value:
        return ""
    try:
        return str(make_header(decode_header(value))).replace("\r", "").replace("\n", "")
    except (LookupError, ValueError, email.errors.HeaderParseError):
        return value


def _fast_body(message: Message) -> tuple[str | None, str | None, int]:
    """(text, html, file count) from a compat32 parse: no header objects, several times
    faster than the default policy, which the list needs for hundreds of messages."""
    text = html = None
    files = 0
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        is_file = disposition == "attachment" or (
            part.get_filename() is not None and disposition != "inline"
        )
        content_type = part.get_content_type()
        if not is_file and content_type in ("text/plain", "text/html"):
            raw = part.get_payload(decode=True)
            charset = part.get_content_charset() or "utf-8"
            try:
                decoded = raw.decode(charset, "replace") if isinstance(raw, bytes) else ""
            except LookupError:
                decoded = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
            if content_type == "text/plain" and text is None:
                text = decoded
                continue
            if content_type == "text/html" and html is None:
                html = decoded
                continue
        if is_file or not part.get("Content-ID"):
            files += 1
    return text, html, files


def summarize(data: bytes) -> Summary:
    """The list entry for a message."""
    message = BytesParser(policy=email.policy.compat32).parsebytes(data)
    text, html, files = _fast_body(message)
    body = text if text is not None else _plain(html or "")
    snippet = _SPACE.sub(" ", body).strip()[:_SNIPPET]
    subject = _decoded(message.get("Subject"))
    sender = _decoded(message.get("From"))
    to = ", ".join(v for v in (_decoded(message.get("To")), _decoded(message.get("Cc"))) if v)
    search = " ".join((subject, sender, to, body[:_SEARCH_BODY])).lower()
    return Summary(
        subject=subject,
        sender=sender,
        to=to,
        date=_decoded(message.get("Date")),
        message_id=_decoded(message.get("Message-ID")),
        size=len(data),
        has_html=html is not None,
        has_text=text is not None,
        attachments=files,
        snippet=snippet,
        search_text=search,
    )


_CID = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)
_DOCTYPE = re.compile(r"\A\s*(<!doctype[^>]*>)?", re.IGNORECASE)
_REMOTE = re.compile(r"""(?:src|background)\s*=\s*["']?\s*https?:|url\(\s*["']?\s*https?:""", re.I)


def frame_html(parsed: ParsedMessage) -> str:
    """The HTML part ready for the sandboxed iframe: ``cid:`` references become ``data:``
    URLs of their parts, and a ``<base target="_blank">`` makes links open a new tab."""
    html = parsed.html or ""
    by_cid = {a.content_id.lower(): a for a in parsed.attachments if a.content_id}

    def replace(match: re.Match[str]) -> str:
        attachment = by_cid.get(match.group(1).lower())
        if attachment is None:
            return match.group(0)
        payload = parsed.payload(attachment.index) or b""
        encoded = base64.b64encode(payload).decode("ascii")
        return f"data:{attachment.content_type};base64,{encoded}"

    html = _CID.sub(replace, html)
    doctype = _DOCTYPE.match(html)
    head = doctype.group(0) if doctype else ""
    return f'{head}<base target="_blank">{html[len(head) :]}'


def has_remote_content(html: str) -> bool:
    """Whether the HTML loads images or backgrounds over http(s) (blocked until allowed)."""
    return bool(_REMOTE.search(html))


def split_log(data: bytes) -> list[bytes]:
    """The messages of a file written by the file backend (each followed by a blank line and
    a line of 79 dashes, as Django writes them; older mailpost files lack the blank line); a
    plain ``.eml`` file without separators is one message."""
    normalized = data.replace(b"\r\n", b"\n")
    chunks = normalized.split(b"\n" + _SEPARATOR + b"\n")
    if normalized.startswith(_SEPARATOR + b"\n"):
        chunks[0] = chunks[0][len(_SEPARATOR) + 1 :]
    if chunks and chunks[-1].endswith(b"\n" + _SEPARATOR):
        chunks[-1] = chunks[-1][: -len(_SEPARATOR) - 1]
    return [chunk if chunk.endswith(b"\n") else chunk + b"\n" for chunk in chunks if chunk.strip()]
