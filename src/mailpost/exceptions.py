"""Every error mailpost raises, in one tree.

::

    MailpostError
    ├── InvalidMailer                                   a MAILERS entry cannot be used
    │   └── MailerDoesNotExist    (also KeyError)      no such alias in MAILERS
    ├── ImproperlyConfigured                            a non-mailer setting is wrong (ADMINS, ...)
    ├── BadHeaderError            (also ValueError)     header injection, bad header name/value
    │   └── InvalidAddress                              an address that cannot be sent to safely
    ├── MissingDependency         (also ImportError)    an optional extra is not installed
    └── DeliveryError             (also smtplib.SMTPException)
                                  some messages of a batch were not delivered;
                                  ``.results`` says what happened to each

    MailpostDeprecationWarning    (DeprecationWarning)  a deprecated (compatibility) path was used

Errors carry structured, picklable fields and never contain secrets. Inside a Django
project each error Django has a class for is also an instance of that class (see
:class:`_DjangoTwin`).
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailpost._deprecation import MailpostDeprecationWarning

if TYPE_CHECKING:
    from typing_extensions import Self

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


def _public(cls: type) -> type:
    """The mailpost class behind a Django-flavoured subclass (what pickle must name)."""
    for klass in cls.__mro__:
        if "_mailpost_flavoured" not in vars(klass):
            return klass
    return cls  # pragma: no cover - the MRO always ends in a mailpost class


class MailpostError(Exception):
    """Root of every exception mailpost raises on purpose."""


class _DjangoTwin:
    """Mixin of the errors Django has a class for (``ImproperlyConfigured``,
    ``InvalidMailer``, ``MailerDoesNotExist``, ``BadHeaderError``).

    Inside a Django project, constructing one gives an instance of a subclass that also
    derives from Django's class of the same meaning: see
    :func:`mailpost._django.flavoured`. ``except`` clauses naming mailpost's class or
    Django's both catch it; outside Django nothing changes. Only these classes take part,
    so the others keep their base's own construction (``OSError``'s, ``ImportError``'s).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        if "_mailpost_flavoured" not in vars(cls):
            from mailpost import _django

            cls = _django.flavoured(cls)
        return super().__new__(cls, *args)


class InvalidMailer(_DjangoTwin, MailpostError):
    """A ``MAILERS`` entry is unusable: bad BACKEND, unknown or invalid OPTIONS, bad path.

    As in Django, the message starts with ``MAILERS['alias']:`` when the alias is given.
    """

    def __init__(self, message: str, alias: str | None = None) -> None:
        label = f"MAILERS[{alias!r}]: "
        if alias is not None and not str(message).startswith(label):
            message = f"{label}{message}"
        Exception.__init__(self, message)
        self.alias = alias

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_public(type(self)), (self.args[0] if self.args else "", self.alias))


class MailerDoesNotExist(InvalidMailer, KeyError):
    """The alias is not defined in ``MAILERS`` (or no ``MAILERS`` is configured).

    Built as in Django, from the alias only: ``MailerDoesNotExist(alias="x")``; its text is
    Django's (a ``KeyError``'s quoted message), then mailpost's ``detail`` when given.
    """

    def __init__(self, *, alias: str, detail: str = "") -> None:
        Exception.__init__(self, f"The mailer {alias!r} is not configured.")
        self.alias = alias
        self.detail = detail

    def __str__(self) -> str:
        text = KeyError.__str__(self)
        return f"{text} {self.detail}" if self.detail else text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_mailer_does_not_exist, (_public(type(self)), self.alias, self.detail))


def _rebuild_mailer_does_not_exist(cls: type, alias: str, detail: str) -> MailerDoesNotExist:
    return cls(alias=alias, detail=detail)  # type: ignore[no-any-return]


class ImproperlyConfigured(_DjangoTwin, MailpostError):
    """A setting other than a mailer definition is wrong (e.g. ``ADMINS`` is not a list)."""

    def __str__(self) -> str:
        return Exception.__str__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_public(type(self)), self.args, self.__dict__ or None)


class BadHeaderError(_DjangoTwin, MailpostError, ValueError):
    """A header name or value is unsafe or malformed; ``field`` names the header."""

    def __init__(self, message: str, field: str | None = None) -> None:
        Exception.__init__(self, message)
        self.field = field

    def __str__(self) -> str:
        return Exception.__str__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_public(type(self)), (self.args[0] if self.args else "", self.field))


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

    def __str__(self) -> str:  # not OSError's "[Errno message] results" from two arguments
        return str(self.args[0]) if self.args else ""

    @property
    def failed(self) -> list[DeliveryResult]:
        """The results of the messages that were not (fully) delivered."""
        return [r for r in self.results if not r.ok]

    @property
    def retryable(self) -> bool:
        failed = self.failed
        return bool(failed) and all(r.retryable for r in failed)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_public(type(self)), (self.args[0] if self.args else "", self.results))
