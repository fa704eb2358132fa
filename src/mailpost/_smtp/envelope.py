"""The envelope side of one SMTP transaction, without sockets.

Given the message bytes and the extensions the server announced in its EHLO reply, decide
the MAIL FROM parameters (RFC 6152 ``BODY=8BITMIME``, RFC 1870 ``SIZE``) and build the DATA
payload with RFC 5321 section 4.5.2 transparency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MailPlan", "data_parts", "data_payload", "plan_for", "plan_mail"]

_CRLF = b"\r\n"
_END = b".\r\n"
_CRLF_END = b"\r\n.\r\n"
#: A dot that starts a line. Finding the (rarer) dots first and looking behind each is
#: ~2.5x faster than ``b"\n." in data`` on message text.
LINE_DOT = re.compile(rb"\.(?<=\n\.)")


@dataclass(frozen=True, slots=True)
class MailPlan:
    """The MAIL FROM parameters for a message, or why it cannot go to this server."""

    options: tuple[str, ...] = ()
    problem: str | None = None


def plan_mail(data: bytes, extensions: Mapping[str, str]) -> MailPlan:
    """MAIL FROM parameters for ``data`` given the server's EHLO ``extensions``.

    ``extensions`` maps lower-case keywords to their parameters, as smtplib's
    ``esmtp_features`` does (empty when the server only speaks HELO). 8-bit data is
    announced with ``BODY=8BITMIME`` only when the server offers it; without the extension
    the data is sent as is, as most servers accept it. A server that announces a SIZE
    limit the message exceeds is not sent the message at all.
    """
    return plan_for(len(data), data.isascii(), extensions)


def plan_for(size: int, ascii: bool, extensions: Mapping[str, str]) -> MailPlan:
    """:func:`plan_mail` for a message known by its size and whether it is all ASCII."""
    options: list[str] = []
    if "size" in extensions:
        limit = _int_or_none(extensions["size"])
        if limit and size > limit:
            return MailPlan(problem=f"message is {size} bytes; the server accepts at most {limit}")
        options.append(f"SIZE={size}")
    if not ascii and "8bitmime" in extensions:
        options.append("BODY=8BITMIME")
    return MailPlan(tuple(options))


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def data_parts(data: bytes) -> tuple[bytes, bytes]:
    """``data`` dot-stuffed, and the terminator to write after it.

    Stuffing is one ``bytes.replace`` over the whole payload (and no copy at all when no
    line starts with a dot); the terminator adds the final CRLF when ``data`` lacks it.
    """
    if LINE_DOT.search(data):
        data = data.replace(b"\r\n.", b"\r\n..")
    if data[:1] == b".":
        data = b"." + data
    return data, _END if data.endswith(_CRLF) else _CRLF_END


def data_payload(data: bytes) -> bytes:
    """``data`` ready to follow the DATA command: dot-stuffed, CRLF-ended, then ``.``."""
    stuffed, end = data_parts(data)
    return stuffed + end
