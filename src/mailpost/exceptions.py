"""Every error mailpost raises, in one tree.

::

    MailpostError
    ├── MailerDoesNotExist        (also KeyError)      no such alias in MAILERS
    ├── InvalidMailer                                   a MAILERS entry cannot be used
    ├── ImproperlyConfigured                            a non-mailer setting is wrong (ADMINS, ...)
    ├── BadHeaderError            (also ValueError)     header injection, bad header name/value
    │   └── InvalidAddress                              an address that cannot be sent to safely
    ├── MissingDependency         (also ImportError)    an optional extra is not installed
    └── DeliveryError             (also smtplib.SMTPException)
                                  some messages of a batch were not delivered;
                                  ``.results`` says what happened to each

    MailpostDeprecationWarning    (DeprecationWarning)  a deprecated (compatibility) path was used

Errors carry structured, picklable fields and never contain secrets.
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailpost._delivery import DeliveryResult

__all__ = [
    "BadHeaderError",
    "DeliveryError",
    "ImproperlyConfigured",
    "InvalidAddress",
    "InvalidMailer",
    "MailerDoesNotExist",
    "MailpostDeprecationWarning",
    "MailpostError",
    "MissingDependency",
]


class MailpostError(Exception):
    """Root of every exception mailpost raises on purpose."""


class MailerDoesNotExist(MailpostError, KeyError):
    """The alias is not defined in ``MAILERS`` (or no ``MAILERS`` is configured)."""

    def __init__(self, message: str, alias: str | None = None) -> None:
        super().__init__(message)
        self.alias = alias

    def __str__(self) -> str:  # KeyError would repr() the message; show it plainly.
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0] if self.args else "", self.alias))


class InvalidMailer(MailpostError):
    """A ``MAILERS`` entry is unusable: bad BACKEND, unknown or invalid OPTIONS, bad path.

    The message starts with ``MAILERS['alias']:`` when the alias is known.
    """

    def __init__(self, message: str, alias: str | None = None) -> None:
        super().__init__(message)
        self.alias = alias

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0] if self.args else "", self.alias))


class ImproperlyConfigured(MailpostError):
    """A setting other than a mailer definition is wrong (e.g. ``ADMINS`` is not a list)."""


class BadHeaderError(MailpostError, ValueError):
    """A header name or value is unsafe or malformed; ``field`` names the header."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0] if self.args else "", self.field))


class InvalidAddress(BadHeaderError):
    """An address is malformed, ambiguous, or exceeds RFC 5321 length limits."""


class MissingDependency(MailpostError, ImportError):
    """An optional feature's extra is not installed; the message says what to pip install."""


class DeliveryError(MailpostError, smtplib.SMTPException):
    """Some messages of a ``send_messages`` batch were not delivered.

    ``results`` holds one :class:`~mailpost.DeliveryResult` per message of the batch, in
    order, delivered or not, so the caller knows exactly what left and what did not.
    ``retryable`` is true when every failure is transient (4xx, connection loss, timeout).
    """

    def __init__(self, message: str, results: Sequence[DeliveryResult] = ()) -> None:
        super().__init__(message)
        self.results: list[DeliveryResult] = list(results)

    @property
    def failed(self) -> list[DeliveryResult]:
        """The results of the messages that were not (fully) delivered."""
        return [r for r in self.results if not r.ok]

    @property
    def retryable(self) -> bool:
        failed = self.failed
        return bool(failed) and all(r.retryable for r in failed)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0] if self.args else "", self.results))


class MailpostDeprecationWarning(DeprecationWarning):
    """A deprecated (compatibility-only) argument, setting or call was used."""
