"""What an SMTP reply or a network error means: success, retry later, or give up.

Pure functions, no sockets: the SMTP backend (and later the async engine) turns every
server reply and every exception into a :class:`Failure` with words, a code and a
``retryable`` verdict the spool can trust. RFC 5321 section 4.2.1: 2xx is success, 4xx is a
transient failure (try again later), 5xx is permanent; 421 also means the server is
closing the session. No reply at all (session lost, timed out) is transient too.
"""

from __future__ import annotations

import errno
import smtplib
import ssl
from dataclasses import dataclass

from mailpost._delivery import is_retryable_code

__all__ = [
    "Failure",
    "classify_exception",
    "closes_connection",
    "decode_reply",
    "describe_reply",
    "is_success",
]

#: OSErrors that mean "fix the configuration", not "try again later".
_CONFIG_ERRNOS = frozenset({errno.ENOENT, errno.EACCES, errno.EISDIR, errno.ENOTDIR})


def decode_reply(raw: bytes | str) -> str:
    """The text of a server reply as a str (servers may send any bytes)."""
    if isinstance(raw, str):
        return raw
    return raw.decode("utf-8", "replace")


def is_success(code: int) -> bool:
    """A positive completion reply (2xx): the command was accepted."""
    return 200 <= code < 300


def closes_connection(code: int) -> bool:
    """421: the server is shutting the transmission channel; the session is over."""
    return code == 421


def describe_reply(code: int | None, text: str) -> str:
    """One-line ``"550 5.1.1 no such user"`` for a (possibly multi-line) reply."""
    flat = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    if code is None:
        return flat or "no reply"
    return f"{code} {flat}".rstrip()


@dataclass(frozen=True)
class Failure:
    """Why a step failed: words for people, the reply code if any, and whether to retry."""

    text: str
    code: int | None = None
    retryable: bool = False

    @classmethod
    def from_reply(cls, code: int, text: str) -> Failure:
        """A failure reported by the server's reply ``code``."""
        return cls(describe_reply(code, text), code, is_retryable_code(code))


def _timed_out(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TimeoutError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def classify_exception(exc: BaseException) -> Failure:
    """Describe an exception raised while talking to an SMTP server.

    smtplib folds socket errors into :class:`smtplib.SMTPServerDisconnected`; the original
    error (e.g. a timeout) is found on the exception chain. The words never include
    credentials: smtplib's messages carry server replies, not what the client sent.
    """
    if isinstance(exc, smtplib.SMTPResponseException):
        return Failure.from_reply(exc.smtp_code, decode_reply(exc.smtp_error))
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if _timed_out(exc):
            return Failure("timed out waiting for the server", None, True)
        return Failure(f"connection lost ({exc})" if str(exc) else "connection lost", None, True)
    if isinstance(exc, smtplib.SMTPException):
        return Failure(str(exc) or type(exc).__name__, None, False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Failure(
            f"TLS certificate verification failed: {exc.verify_message or exc.reason}",
            None,
            False,
        )
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return Failure("connection lost during TLS", None, True)
    if isinstance(exc, ssl.SSLError):
        return Failure(f"TLS error: {exc.reason or exc}", None, False)
    if _timed_out(exc):
        return Failure("timed out", None, True)
    if isinstance(exc, OSError):
        if exc.errno in _CONFIG_ERRNOS:
            where = f" {exc.filename!s}" if exc.filename else ""
            return Failure(f"cannot read{where}: {exc.strerror}", None, False)
        return Failure(exc.strerror or str(exc) or type(exc).__name__, None, True)
    return Failure(f"{type(exc).__name__}: {exc}", None, False)
