"""The envelope side of one SMTP transaction, without sockets.

Given the message bytes and the extensions the server announced in its EHLO reply, decide
the MAIL FROM parameters (RFC 6152 ``BODY=8BITMIME``, RFC 1870 ``SIZE``, RFC 6531
``SMTPUTF8``) and build the DATA payload with RFC 5321 section 4.5.2 transparency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "MailPlan",
    "data_parts",
    "data_payload",
    "needs_smtputf8",
    "plan_for",
    "plan_mail",
]

_CRLF = b"\r\n"
_END = b".\r\n"
_CRLF_END = b"\r\n.\r\n"
#: A dot that starts a line. Finding the (rarer) dots first and looking behind each is
#: ~2.5x faster than ``b"\n." in data`` on message text.
LINE_DOT = re.compile(rb"\.(?<=\n\.)")


@dataclass(frozen=True, slots=True)
class MailPlan:
    """The MAIL FROM parameters for a message, or why it cannot go to this server.

    ``no_smtputf8``: the problem is that the message needs SMTPUTF8 and the server does
    not offer it (every recipient is then refused, permanently).
    """

    options: tuple[str, ...] = ()
    problem: str | None = None
    no_smtputf8: bool = False


def plan_mail(
    data: bytes,
    extensions: Mapping[str, str],
    sender: str = "",
    recipients: Sequence[str] = (),
) -> MailPlan:
    """MAIL FROM parameters for ``data`` (to go from ``sender`` to ``recipients``) given
    the server's EHLO ``extensions``.

    ``extensions`` maps lower-case keywords to their parameters, as smtplib's
    ``esmtp_features`` does (empty when the server only speaks HELO). 8-bit data is
    announced with ``BODY=8BITMIME`` only when the server offers it; without the extension
    the data is sent as is, as most servers accept it. A server that announces a SIZE
    limit the message exceeds is not sent the message at all, nor is one that does not
    offer SMTPUTF8 a message that needs it (:func:`needs_smtputf8`).
    """
    ascii = data.isascii()
    utf8 = needs_smtputf8(sender, recipients, ascii, data)
    return plan_for(len(data), ascii, extensions, utf8)


def needs_smtputf8(sender: str, recipients: Sequence[str], ascii: bool, head: bytes) -> bool:
    """Whether a message needs SMTPUTF8 (RFC 6531): an envelope address is not ASCII, or
    its header (the start of ``head``, up to the blank line; none without one) is UTF-8
    (RFC 6532).

    ``ascii``: the whole message is known to be ASCII, so its header is not looked at.
    Cheap for ASCII mail: ``str.isascii`` is a flag test, and all-ASCII bytes skip the scan.
    """
    if not sender.isascii() or not all(map(str.isascii, recipients)):
        return True
    if ascii:
        return False
    end = head.find(b"\r\n\r\n")
    return end >= 0 and not head[:end].isascii()


def plan_for(size: int, ascii: bool, extensions: Mapping[str, str], utf8: bool = False) -> MailPlan:
    """:func:`plan_mail` for a message known by its size, whether it is all ASCII and
    whether it needs SMTPUTF8 (``utf8``): then ``SMTPUTF8`` is added, with
    ``BODY=8BITMIME`` (its UTF-8 is 8-bit data, RFC 6531 section 3.4), or, when the server
    does not offer SMTPUTF8, the message is not to be sent."""
    if utf8 and "smtputf8" not in extensions:
        return MailPlan(problem="the server does not offer SMTPUTF8", no_smtputf8=True)
    options: list[str] = []
    if "size" in extensions:
        limit = _int_or_none(extensions["size"])
        if limit and size > limit:
            return MailPlan(problem=f"message is {size} bytes; the server accepts at most {limit}")
        options.append(f"SIZE={size}")
    if (utf8 or not ascii) and "8bitmime" in extensions:
        options.append("BODY=8BITMIME")
    if utf8:
        options.append("SMTPUTF8")
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
