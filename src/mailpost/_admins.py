"""``mail_admins`` / ``mail_managers`` and their async twins, and the rules for reading
``ADMINS`` / ``MANAGERS``.

The settings' rules (address strings; the old ``(name, address)`` pairs and which Django
deprecates them) are their own idea, shared with the Django system check and the CLI's
``sendtestemail``, so they live apart from the other sending functions in :mod:`mailpost._api`,
whose argument checks, backend choice and sending they reuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from mailpost import _django
from mailpost._api import (
    _USER_STACKLEVEL,
    _asend,
    _choose_backend,
    _legacy_arguments,
    _message,
    _positional_compat,
    _send,
)
from mailpost._config import settings
from mailpost.backends.base import BaseEmailBackend
from mailpost.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["amail_admins", "amail_managers", "mail_admins", "mail_managers"]


def _server_recipients_invalid(setting: str, value: object) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"The {setting} setting must be a list of email address strings. "
        f"Got {value!r}; write e.g. ['ops@example.com', 'Jo <jo@example.com>']."
    )


def read_server_recipients(setting: str, value: object) -> tuple[list[str], bool]:
    """The addresses in an ``ADMINS`` / ``MANAGERS`` value, and whether it used the old pairs.

    The pure rule :func:`server_recipients` and the Django system check share: an empty value
    (``[]``, ``None``) means nobody; a list or tuple of strings is used as given; a value whose
    every item is a ``(name, address)`` pair gives the addresses alone. Anything else raises
    :class:`~mailpost.ImproperlyConfigured` naming the setting.
    """
    if not value:
        return [], False
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise _server_recipients_invalid(setting, value)
    pairs = _uses_pairs(value)
    addresses = [item[1] for item in value] if pairs else value
    if not isinstance(addresses, (list, tuple)) or not all(isinstance(a, str) for a in addresses):
        raise _server_recipients_invalid(setting, value)
    return list(addresses), pairs


def _uses_pairs(value: object) -> bool:
    return (
        isinstance(value, (list, tuple, set, frozenset))
        and bool(value)
        and all(isinstance(item, (list, tuple)) and len(item) == 2 for item in value)
    )


#: The first Django release whose ``mail_admins()`` deprecates ``(name, address)`` pairs.
PAIRS_DEPRECATED_SINCE = (6, 0)


def pairs_deprecated_on(django_version: tuple[int, int] | None) -> bool:
    """Whether ``(name, address)`` pairs warn on ``django_version`` (None: no Django
    project, where mailpost deprecates them). Django 6.0 and 6.1 warn; 4.2 / 5.2 document
    pairs and take them silently."""
    return django_version is None or django_version >= PAIRS_DEPRECATED_SINCE


def pairs_are_deprecated() -> bool:
    """:func:`pairs_deprecated_on` the running project's Django (or no Django)."""
    return pairs_deprecated_on(_django.version())


def server_recipients(setting: str, *, stacklevel: int = 2) -> list[str]:
    """The addresses in ``ADMINS`` or ``MANAGERS``, checked by Django 6.1's rules.

    See :func:`read_server_recipients`. compat: the old ``(name, address)`` pairs warn with
    Django's category and text inside a Django 6.0 / 6.1 project, with
    ``MailpostDeprecationWarning`` outside Django, and not at all inside a project on Django
    4.2 / 5.2, whose own ``mail_admins()`` takes them silently. ``stacklevel`` counts from the
    caller of this function, as for ``warnings.warn``.
    """
    value = getattr(settings, setting)
    if _uses_pairs(value) and pairs_are_deprecated():  # warned before a bad address is refused
        text = (
            f"Using (name, address) pairs in the {setting} setting is deprecated. "
            "Replace with a list of email address strings."
        )
        _django.deprecated(text, text, stacklevel=stacklevel + 1)
    return read_server_recipients(setting, value)[0]


def _prepare_server_mail(
    func: str,
    setting: str,
    subject: str,
    message: str,
    *,
    fail_silently: bool | None,
    connection: BaseEmailBackend | None,
    html_message: str | None,
    using: str | None,
) -> tuple[BaseEmailBackend | None, list[EmailMessage]]:
    recipients = server_recipients(setting, stacklevel=_USER_STACKLEVEL - 1)
    _legacy_arguments(func, using=using, fail_silently=fail_silently, connection=connection)
    if not recipients:
        return None, []
    backend = _choose_backend(using=using, fail_silently=fail_silently, connection=connection)
    msg = _message(
        f"{settings.EMAIL_SUBJECT_PREFIX}{subject}",
        message,
        settings.SERVER_EMAIL,
        recipients,
        html_message,
    )
    return backend, [msg]


class _ServerMail(Protocol):
    def __call__(
        self,
        subject: str,
        message: str,
        *,
        fail_silently: bool | None = None,
        connection: BaseEmailBackend | None = None,
        html_message: str | None = None,
        using: str | None = None,
    ) -> int: ...


class _AsyncServerMail(Protocol):
    async def __call__(
        self,
        subject: str,
        message: str,
        *,
        fail_silently: bool | None = None,
        connection: BaseEmailBackend | None = None,
        html_message: str | None = None,
        using: str | None = None,
    ) -> int: ...


_SERVER_MAIL_LEGACY = ("fail_silently", "connection", "html_message")


def _server_mail_functions(
    name: str, setting: str, doc: str
) -> tuple[_ServerMail, _AsyncServerMail]:
    """``mail_<name>`` and ``amail_<name>`` for one setting: one body for all four functions."""

    def sync(
        subject: str,
        message: str,
        *,
        fail_silently: bool | None = None,
        connection: BaseEmailBackend | None = None,
        html_message: str | None = None,
        using: str | None = None,
    ) -> int:
        backend, messages = _prepare_server_mail(
            f"mail_{name}",
            setting,
            subject,
            message,
            fail_silently=fail_silently,
            connection=connection,
            html_message=html_message,
            using=using,
        )
        return _send(backend, messages) if backend is not None else 0

    async def asynchronous(
        subject: str,
        message: str,
        *,
        fail_silently: bool | None = None,
        connection: BaseEmailBackend | None = None,
        html_message: str | None = None,
        using: str | None = None,
    ) -> int:
        backend, messages = _prepare_server_mail(
            f"amail_{name}",
            setting,
            subject,
            message,
            fail_silently=fail_silently,
            connection=connection,
            html_message=html_message,
            using=using,
        )
        return await _asend(backend, messages) if backend is not None else 0

    for func, func_name, func_doc in (
        (sync, f"mail_{name}", doc),
        (
            asynchronous,
            f"amail_{name}",
            f"Async :func:`mail_{name}`: same arguments, result and errors.",
        ),
    ):
        func.__name__ = func.__qualname__ = func_name
        func.__doc__ = func_doc
    compat = _positional_compat(2, _SERVER_MAIL_LEGACY)
    return compat(sync), compat(asynchronous)


mail_admins, amail_admins = _server_mail_functions(
    "admins",
    "ADMINS",
    """Email the site admins (``ADMINS``), From ``SERVER_EMAIL``, subject prefixed with
    ``EMAIL_SUBJECT_PREFIX``. Returns 1 if sent, 0 if not (or if ``ADMINS`` is empty).""",
)
mail_managers, amail_managers = _server_mail_functions(
    "managers", "MANAGERS", "Like :func:`mail_admins`, for the site managers (``MANAGERS``)."
)
