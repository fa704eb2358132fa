"""mailpost's MIME writer, part by part: text, content and attachment parts, multiparts,
their headers and encodings, and the helpers the message classes share with it.

:mod:`mailpost._mime` composes a whole message from these parts.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.message
import email.policy
import email.utils
import io
import mimetypes
import os
import random
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mailpost import _headers
from mailpost._headers import check_name, check_value, fold, parse_address
from mailpost.exceptions import BadHeaderError
from mailpost.utils import DNS_NAME

if TYPE_CHECKING:
    from mailpost.message import Attachment


#: The MIME type given to attachments whose type cannot be guessed or decoded.
DEFAULT_ATTACHMENT_MIME_TYPE = "application/octet-stream"

_SMTP_POLICY = email.policy.SMTP
_SMTP_7BIT = email.policy.SMTP.clone(cte_type="7bit")
_MIMETYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+\Z")
_ATTR_CHAR = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)
_CRLF = b"\r\n"
#: Boundaries and Message-IDs need uniqueness, not secrecy: bodies are checked for boundary
#: collisions, and ``random`` reseeds itself in forked children.
_rng = random.Random()


class _Hooks:
    """What the writer takes from the modules built on it, set by them when imported, so
    that it imports neither: the message classes (``mailpost.message``) and whole-message
    serialization (``mailpost._mime``). Both are imported before any message exists."""

    email_message: type[Any]
    email_attachment: type[Any]
    serialize: Any


hooks = _Hooks()


#: The last domain make_msgid checked (checked again only when it changes).
_checked_domain: list[str | None] = [None]


def make_msgid(idstring: str | None = None, domain: str | None = None) -> str:
    """A new, unique ``<...@domain>`` Message-ID; ``domain`` defaults to this host's FQDN."""
    if domain is None:
        domain = DNS_NAME.get_fqdn()
    if domain is not _checked_domain[0]:
        check_value("make_msgid domain", domain)
        _checked_domain[0] = domain
    suffix = ""
    if idstring is not None:
        check_value("make_msgid idstring", idstring)
        suffix = "." + "".join(c for c in idstring if (c.isascii() and c.isalnum()) or c in "-_")
    return f"<{time.time_ns():x}.{os.getpid()}.{_rng.getrandbits(64):016x}{suffix}@{domain}>"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rng.seed)


class FileContent:
    """The content of an attachment read from ``path`` only when the message is written.

    ``EmailMessage.attach_file(path, stream=True)`` attaches one. It is always sent
    base64-encoded, read in chunks.
    """

    __slots__ = ("path", "size")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.size = os.path.getsize(self.path)

    def __repr__(self) -> str:
        return f"<FileContent {self.path!r} {self.size} bytes>"

    def encoded_size(self) -> int:
        """The length of the base64 text written for the file (76-column CRLF lines, the
        last one ended too, as Django's and the stdlib's are)."""
        chars = 4 * ((self.size + 2) // 3)
        return chars + 2 * ((chars + 75) // 76)

    def chunks(self) -> Iterator[bytes]:
        """The base64 text, in chunks of whole CRLF-ended lines."""
        with open(self.path, "rb") as f:
            while chunk := f.read(_FILE_CHUNK):
                yield base64.encodebytes(chunk).replace(b"\n", _CRLF)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return "".join(parse_address(value, "address").tokens())
    if isinstance(value, datetime.datetime):  # an RFC 5322 date-time, as Django writes it
        return email.utils.format_datetime(value)
    return str(value)


_valid_mimetypes: set[str] = set()


def _check_mimetype(mimetype: Any, field: str) -> None:
    if type(mimetype) is str and mimetype in _valid_mimetypes:
        return
    if not isinstance(mimetype, str) or not _MIMETYPE.match(mimetype):
        raise ValueError(f"{field}: {mimetype!r} is not a valid MIME type (type/subtype)")
    if len(_valid_mimetypes) < 1024:
        _valid_mimetypes.add(mimetype)


# -- the MIME writer --------------------------------------------------------------------


class _Part:
    """One MIME entity, ready to write: content headers plus a body, children or raw bytes.

    A base64 body is kept as its raw bytes and encoded in chunks straight into the output,
    so a large attachment costs its encoded size once, not several intermediate copies.
    """

    __slots__ = (
        "b64",
        "body",
        "children",
        "content_id",
        "headers",
        "mimetype",
        "qp",
        "raw",
        "source",
    )

    def __init__(
        self,
        mimetype: str,
        headers: list[str],
        body: bytes = b"",
        *,
        b64: bool = False,
        qp: bool = False,
        children: list[_Part] | None = None,
        raw: bytes | None = None,
        content_id: bool = False,
        source: FileContent | None = None,
    ) -> None:
        self.source = source
        self.mimetype = mimetype
        self.headers = headers
        self.body = body
        self.b64 = b64
        self.qp = qp
        self.children = children
        self.raw = raw
        self.content_id = content_id

    def write(self, out: io.BytesIO) -> None:
        if self.raw is not None:
            out.write(self.raw)
            return
        if self.children is None:
            out.write("".join(self.headers).encode("ascii"))
            out.write(_CRLF)
            if self.source is not None:
                if isinstance(out, _Segments):
                    out.add_file(self.source)
                else:
                    for chunk in self.source.chunks():
                        out.write(chunk)
            elif self.b64:
                _write_b64(out, self.body)
            else:
                out.write(self.body)
            return
        boundary = _boundary()
        while self._contains(b"--" + boundary):  # pragma: no cover - 96 random bits
            boundary = _boundary()
        marker = b"--" + boundary
        out.write("".join(self.headers).encode("ascii").replace(b"\x00BOUNDARY\x00", boundary))
        out.write(_CRLF)
        for child in self.children:
            out.write(marker)
            out.write(_CRLF)
            child.write(out)
            out.write(_CRLF)
        out.write(marker + b"--" + _CRLF)

    def _contains(self, marker: bytes) -> bool:
        """Whether ``marker`` occurs in any body that is written unencoded.

        Base64 and quoted-printable text cannot contain ``--=_mp_``; 7bit/8bit bodies and
        caller-built parts are checked.
        """
        if self.raw is not None:
            return marker in self.raw
        if self.children is None:
            # base64 has no "-" and quoted-printable always escapes "=": nothing to search
            return not (self.b64 or self.qp) and marker in self.body
        return any(child._contains(marker) for child in self.children)


def _boundary() -> bytes:
    return f"=_mp_{_rng.getrandbits(96):024x}".encode("ascii")


def _multipart(subtype: str, children: list[_Part]) -> _Part:
    cached = _multipart_headers.get(subtype)
    if cached is None:
        _check_mimetype(f"multipart/{subtype}", "multipart subtype")
        ctype = fold("Content-Type", [f"multipart/{subtype};", ' boundary="\x00BOUNDARY\x00"'])
        cached = (f"multipart/{subtype}", [ctype])
        if len(_multipart_headers) < 64:
            _multipart_headers[subtype] = cached
    return _Part(cached[0], cached[1], children=children)


_multipart_headers: dict[str, tuple[str, list[str]]] = {}


def _normalize_newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _lines_fit(data: bytes, sep: bytes = b"\n") -> bool:
    if len(data) <= 998:
        return True
    return max(map(len, data.split(sep))) <= 998


_HIGH_BYTES = bytes(range(128, 256))
_UTF8_NAMES = frozenset({"utf-8", "utf8", "utf_8", "UTF-8"})


def _encode_text(
    data: bytes, *, exact: bool, eight_bit: bool = False, utf8_chars: int | None = None
) -> tuple[str, bytes]:
    """Pick a transfer encoding for text bytes; return it and the body to write.

    Normalized text (``exact=False``) has ``\\n`` line breaks that become CRLF. Exact
    text keeps its bytes: it stays 7bit only if its breaks are already CRLF. A base64
    body is returned unencoded (``_Part(b64=True)`` encodes it while writing).
    ``utf8_chars``: the length of the text ``data`` is the UTF-8 encoding of, which bounds
    its count of non-ASCII bytes without counting them.
    """
    if exact:
        crlf_only = data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
        if data.isascii() and b"\x00" not in data and crlf_only and _lines_fit(data, _CRLF):
            return "7bit", data
        return "base64", data
    if data.isascii():
        if b"\x00" not in data and _lines_fit(data):
            return "7bit", data.replace(b"\n", _CRLF)
        high = 0
    else:
        if eight_bit and b"\x00" not in data and _lines_fit(data):
            return "8bit", data.replace(b"\n", _CRLF)
        high = -1
        if utf8_chars is not None:
            # A k-byte UTF-8 character is k high bytes and k - 1 bytes more than characters,
            # so the high bytes are between 4/3 and 2 times that excess.
            excess = len(data) - utf8_chars
            if excess * 12 <= len(data):
                high = 2 * excess
            elif excess * 8 > len(data):
                high = len(data)
        if high < 0:
            high = len(data) - len(data.translate(None, _HIGH_BYTES))
    if b"\x00" not in data and high * 6 <= len(data):
        qp = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
        return "quoted-printable", qp.replace(b"\n", _CRLF)
    return "base64", data


_B64_CHUNK = 57 * 1024  # whole 76-character lines per chunk
_FILE_CHUNK = 16 * _B64_CHUNK  # streamed files are read ~1 MB at a time


class _Segments(io.BytesIO):
    """A writer that leaves streamed files as placeholders between runs of bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes | FileContent] = []

    def add_file(self, source: FileContent) -> None:
        self.parts.append(self.getvalue())
        self.parts.append(source)
        self.seek(0)
        self.truncate()

    def finish(self) -> list[bytes | FileContent]:
        self.parts.append(self.getvalue())
        return self.parts


def _write_b64(out: io.BytesIO, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(data), _B64_CHUNK):
        out.write(base64.encodebytes(view[start : start + _B64_CHUNK]).replace(b"\n", _CRLF))


_plain_headers: dict[tuple[str, str, str | None, str | None], list[str]] = {}


def _content_headers(
    mimetype: str,
    cte: str,
    *,
    charset: str | None = None,
    filename: str | None = None,
    disposition: str | None = None,
) -> list[str]:
    """Content-Type / Content-Transfer-Encoding / Content-Disposition lines for a part.

    Without a file name the lines depend on few values, so they are made once and reused.
    """
    if filename is None:
        key = (mimetype, cte, charset, disposition)
        cached = _plain_headers.get(key)
        if cached is None:
            cached = _make_content_headers(mimetype, cte, charset, None, disposition)
            if len(_plain_headers) < 512:
                _plain_headers[key] = cached
        return cached
    return _make_content_headers(mimetype, cte, charset, filename, disposition)


def _make_content_headers(
    mimetype: str, cte: str, charset: str | None, filename: str | None, disposition: str | None
) -> list[str]:
    ctype = [mimetype + (";" if charset else "")]
    if charset:
        ctype.append(f' charset="{charset}"')
    headers = [fold("Content-Type", ctype), f"Content-Transfer-Encoding: {cte}\r\n"]
    if disposition:
        tokens = [disposition]
        if filename is not None:
            tokens[0] += ";"
            tokens.extend(_param("filename", filename))
        headers.append(fold("Content-Disposition", tokens))
    return headers


def _param(name: str, value: str) -> list[str]:
    """Tokens for a MIME parameter, RFC 2231-encoded (with continuations) when needed."""
    check_value(f"{name} parameter", value)
    if value.isascii() and all(" " <= c <= "~" for c in value):
        quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(quoted) + len(name) <= 70:
            return [f" {name}={quoted}"]
    encoded = "".join(chr(b) if b in _ATTR_CHAR else f"%{b:02X}" for b in value.encode("utf-8"))
    segments: list[str] = []
    while encoded:
        cut = min(len(encoded), 60)
        while cut < len(encoded) and "%" in encoded[max(cut - 2, 0) : cut]:
            cut -= 1
        segments.append(encoded[:cut])
        encoded = encoded[cut:]
    if len(segments) == 1:
        return [f" {name}*=utf-8''{segments[0]}"]
    tokens = [f" {name}*0*=utf-8''{segments[0]};"]
    tokens += [f" {name}*{i}*={seg};" for i, seg in enumerate(segments[1:], 1)]
    tokens[-1] = tokens[-1].rstrip(";")
    return tokens


def _text_part(
    text: str,
    subtype: str,
    charset: str,
    *,
    exact: bool = False,
    eight_bit: bool = False,
    filename: str | None = None,
    disposition: str | None = None,
) -> _Part:
    mimetype = f"text/{subtype}"
    _check_mimetype(mimetype, "content_subtype")
    if not exact:
        text = _normalize_newlines(text)
        if not text.endswith("\n"):  # as Django's: every line ends, even an empty body's
            text += "\n"
    data = text.encode(charset)
    utf8 = charset in _UTF8_NAMES or charset.lower() in _UTF8_NAMES
    cte, body = _encode_text(
        data, exact=exact, eight_bit=eight_bit, utf8_chars=len(text) if utf8 else None
    )
    headers = _content_headers(
        mimetype, cte, charset=charset, filename=filename, disposition=disposition
    )
    return _Part(mimetype.lower(), headers, body, b64=cte == "base64", qp=cte == "quoted-printable")


def _content_part(
    content: Any,
    mimetype: str,
    charset: str,
    *,
    exact: bool,
    eight_bit: bool = False,
    filename: str | None = None,
    disposition: str | None = None,
) -> _Part:
    maintype, subtype = mimetype.split("/", 1)
    if isinstance(content, FileContent):
        headers = _content_headers(mimetype, "base64", filename=filename, disposition=disposition)
        return _Part(mimetype.lower(), headers, b64=True, source=content)
    if maintype.lower() == "text" and not isinstance(content, (bytes, bytearray)):
        return _text_part(
            _as_text(content),
            subtype,
            charset,
            exact=exact,
            eight_bit=eight_bit,
            filename=filename,
            disposition=disposition,
        )
    if maintype.lower() == "message" and subtype.lower() == "rfc822":
        return _rfc822_part(content, filename)
    if isinstance(content, str):
        content = content.encode(charset)
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"attachment {filename or mimetype!r}: content must be str or bytes, "
            f"not {type(content).__name__}"
        )
    headers = _content_headers(mimetype, "base64", filename=filename, disposition=disposition)
    return _Part(mimetype.lower(), headers, bytes(content), b64=True)


def _rfc822_part(content: Any, filename: str | None) -> _Part:
    if isinstance(content, hooks.email_message):  # a message attached whole
        data = hooks.serialize(content)
    elif isinstance(content, email.message.Message):
        data = content.as_bytes(policy=_SMTP_POLICY)
    elif isinstance(content, (str, bytes, bytearray)):
        raw = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        data = raw.replace(_CRLF, b"\n").replace(b"\r", b"\n").replace(b"\n", _CRLF)
    else:
        raise TypeError(
            "a message/rfc822 attachment must be an EmailMessage, an email.message.Message, "
            f"str or bytes, not {type(content).__name__}"
        )
    disposition = "attachment" if filename else None
    if not _lines_fit(data, _CRLF):
        headers = _content_headers(
            DEFAULT_ATTACHMENT_MIME_TYPE, "base64", filename=filename, disposition="attachment"
        )
        return _Part(DEFAULT_ATTACHMENT_MIME_TYPE, headers, data, b64=True)
    cte = "7bit" if data.isascii() else "8bit"
    headers = _content_headers("message/rfc822", cte, filename=filename, disposition=disposition)
    return _Part("message/rfc822", headers, data)


def _attachment_part(attachment: Attachment, charset: str) -> _Part:
    if isinstance(attachment, email.message.Message):
        return _mime_part(attachment)
    try:
        filename, content, mimetype = attachment
    except (TypeError, ValueError):
        raise TypeError(
            "attachments: each entry must be (filename, content, mimetype) or a MIMEPart, "
            f"not {_headers._short(repr(attachment))}"
        ) from None
    mimetype, content = attachment_content(filename, content, mimetype)
    if filename is not None:
        check_value("attachment filename", str(filename))
    return _content_part(
        content,
        mimetype,
        charset,
        exact=True,
        filename=None if filename is None else str(filename),
        disposition="attachment" if filename is not None else None,
    )


def attachment_content(filename: Any, content: Any, mimetype: str | None) -> tuple[str, Any]:
    """The MIME type and content an attachment is sent with, whether it came through
    ``attach()`` or was put in ``msg.attachments`` directly: a missing type is guessed from
    the name; ``text/*`` bytes are decoded as UTF-8, or sent as
    ``application/octet-stream`` when they are not UTF-8."""
    if mimetype is None:
        guessed = mimetypes.guess_type(filename)[0] if isinstance(filename, str) else None
        mimetype = guessed or DEFAULT_ATTACHMENT_MIME_TYPE
    _check_mimetype(mimetype, "attachment mimetype")
    if isinstance(content, (bytes, bytearray)) and mimetype.lower().startswith("text/"):
        try:
            content = bytes(content).decode("utf-8")
        except UnicodeDecodeError:
            mimetype = DEFAULT_ATTACHMENT_MIME_TYPE
    return mimetype, content


def _mime_part(part: email.message.Message) -> _Part:
    """A caller-built MIMEPart (or legacy MIMEBase), rendered by the stdlib generator."""
    for name, value in part.items():
        check_name(name)
        check_value(name, str(value))
        if name.lower() in _headers.IDENTIFIER_HEADERS and not str(value).isascii():
            raise BadHeaderError(f"{name}: must be ASCII (it is an identifier)", field=name)
    data = part.as_bytes(policy=_SMTP_POLICY)
    return _Part(
        part.get_content_type(),
        [],
        raw=data,
        content_id=part.get("Content-ID") is not None,
    )
