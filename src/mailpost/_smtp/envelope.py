"""The envelope side of one SMTP transaction, without sockets.

Given the message bytes and the extensions the server announced in its EHLO reply, decide
the MAIL FROM parameters (RFC 6152 ``BODY=8BITMIME``, RFC 1870 ``SIZE``) and build the DATA
payload with RFC 5321 section 4.5.2 transparency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MailPlan", "data_payload", "plan_mail"]

_CRLF = b"\r\n"
_LEADING_DOT = re.compile(rb"(\A|\r\n)\.")


@dataclass(frozen=True)
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
    options: list[str] = []
    if "size" in extensions:
        limit = _int_or_none(extensions["size"])
        if limit and len(data) > limit:
            return MailPlan(
                problem=f"message is {len(data)} bytes; the server accepts at most {limit}"
            )
        options.append(f"SIZE={len(data)}")
    if not data.isascii() and "8bitmime" in extensions:
        options.append("BODY=8BITMIME")
    return MailPlan(tuple(options))


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def data_payload(data: bytes) -> bytes:
    """``data`` ready to follow the DATA command: dot-stuffed, CRLF-ended, then ``.``."""
    stuffed = _LEADING_DOT.sub(rb"\1..", data)
    if not stuffed.endswith(_CRLF):
        stuffed += _CRLF
    return stuffed + b"." + _CRLF
