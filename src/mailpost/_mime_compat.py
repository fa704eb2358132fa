"""compat: Django's deprecated MIME helpers, for code that still imports them from mailpost.

``SafeMIMEText``, ``SafeMIMEMultipart`` and ``forbid_multi_line_headers`` are the
legacy-email-API pieces ``django.core.mail`` still exports in 6.1 (deprecated there). They
behave as Django's do: header values with CR/LF raise :class:`~mailpost.BadHeaderError`,
non-ASCII values are RFC 2047 encoded, UTF-8 text is sent 8bit (quoted-printable when a line
exceeds the RFC 5322 limit). Each use warns (see :func:`mailpost._django.deprecated`).
mailpost itself never uses them: ``EmailMessage.message()`` returns an
:class:`email.message.EmailMessage`.
"""

from __future__ import annotations

import email.charset
import email.utils
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

from mailpost import _django
from mailpost.exceptions import BadHeaderError

__all__ = ["SafeMIMEMultipart", "SafeMIMEText", "forbid_multi_line_headers"]

#: RFC 5322 2.1.1: a line is at most 998 octets, excluding CRLF.
LINE_LENGTH_LIMIT = 998
ADDRESS_HEADERS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "resent-from",
        "resent-sender",
        "resent-to",
        "resent-cc",
        "resent-bcc",
    }
)

_UTF8_8BIT = email.charset.Charset("utf-8")
_UTF8_8BIT.body_encoding = None  # type: ignore[assignment]  # 7bit or 8bit, as needed
_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.body_encoding = email.charset.QP


def _class_deprecated(name: str) -> str:
    return (
        f"{name} is deprecated. The return value of EmailMessage.message() is an "
        "email.message.EmailMessage."
    )


def warn_name(name: str) -> None:
    """Warn that the deprecated name ``name`` was read from the ``mailpost`` package."""
    _django.deprecated(
        f"mailpost.{name} is deprecated (kept for code written for django.core.mail); "
        "EmailMessage.message() returns an email.message.EmailMessage.",
        _class_deprecated(name),
        stacklevel=3,
    )


def _encode_address(name: str, addr: str, encoding: str) -> str:
    _django.deprecated(  # Django's forbid_multi_line_headers() calls its deprecated twin
        None,
        "The internal API sanitize_address() is deprecated. Python's modern email API (with "
        "email.message.EmailMessage or email.policy.default) will handle most required "
        "validation and encoding. Use Python's email.headerregistry.Address to construct "
        "formatted addresses from component parts.",
        stacklevel=4,
    )
    if not addr:
        raise BadHeaderError(f"Invalid address {email.utils.formataddr((name, addr))!r}")
    local, _, domain = addr.rpartition("@")
    if domain and not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    if local and not local.isascii():
        local = Header(local, encoding).encode()
    addr = f"{local}@{domain}" if local else addr
    if name and not name.isascii():
        name = Header(name, encoding).encode()
    return email.utils.formataddr((name, addr)) if name else addr


def forbid_multi_line_headers(name: str, val: Any, encoding: str | None) -> tuple[str, str]:
    """compat: ``(name, value)`` made safe for a legacy ``email.message.Message`` header.

    A value containing CR or LF raises :class:`~mailpost.BadHeaderError` (header
    injection); a non-ASCII value is RFC 2047 encoded in ``encoding`` (default
    ``DEFAULT_CHARSET``), address by address for address headers (IDNA domains).
    """
    _django.deprecated(
        "forbid_multi_line_headers() is deprecated; mailpost's EmailMessage rejects "
        "multi-line headers itself.",
        "The internal API forbid_multi_line_headers() is deprecated. Python's modern email "
        "API (with email.message.EmailMessage or email.policy.default) will reject "
        "multi-line headers.",
        stacklevel=2,
    )
    from mailpost._config import settings

    charset = encoding or settings.DEFAULT_CHARSET
    value = str(_django.plain(val))
    if "\n" in value or "\r" in value:
        raise BadHeaderError(
            f"Header values can't contain newlines (got {value!r} for header {name!r})",
            field=name,
        )
    if value.isascii():
        return name, value
    if name.lower() in ADDRESS_HEADERS:
        parts = email.utils.getaddresses((value,))
        value = ", ".join(_encode_address(n, a, charset) for n, a in parts)
    else:
        value = Header(value, charset).encode()
    return name, value


class _SafeHeaders:
    """Headers set on a legacy MIME object go through :func:`forbid_multi_line_headers`."""

    encoding: str | None

    def __setitem__(self, name: str, val: Any) -> None:
        name, val = forbid_multi_line_headers(name, val, self.encoding)
        super().__setitem__(name, val)  # type: ignore[misc]


class SafeMIMEText(_SafeHeaders, MIMEText):
    """compat: a ``text/*`` :class:`email.mime.text.MIMEText` with safe headers."""

    def __init__(self, _text: str, _subtype: str = "plain", _charset: str | None = None) -> None:
        self.encoding = _charset
        MIMEText.__init__(self, _text, _subtype=_subtype, _charset=_charset)

    def set_payload(self, payload: Any, charset: Any = None) -> None:
        """UTF-8 text goes 8bit, or quoted-printable when a line is too long for SMTP."""
        if charset is not None and str(charset).lower() == "utf-8":
            text = payload if isinstance(payload, str) else str(payload)
            too_long = any(
                len(line.encode("utf-8", "surrogateescape")) > LINE_LENGTH_LIMIT
                for line in text.splitlines()
            )
            charset = _UTF8_QP if too_long else _UTF8_8BIT
        MIMEText.set_payload(self, payload, charset)


class SafeMIMEMultipart(_SafeHeaders, MIMEMultipart):
    """compat: a ``multipart/*`` :class:`email.mime.multipart.MIMEMultipart` with safe
    headers."""

    def __init__(
        self,
        _subtype: str = "mixed",
        boundary: str | None = None,
        _subparts: Any = None,
        encoding: str | None = None,
        **_params: Any,
    ) -> None:
        self.encoding = encoding
        MIMEMultipart.__init__(self, _subtype, boundary, _subparts, **_params)
