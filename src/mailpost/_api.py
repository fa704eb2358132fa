"""The sending functions: ``send_mail``, ``send_mass_mail``, ``EmailMessage.send()``, the
deprecated ``get_connection``, and their ``a``-prefixed async twins. ``mail_admins`` and
``mail_managers`` are in :mod:`mailpost._admins`, built on the shared pieces here.

Each function builds its messages, picks a mailer (``using=`` alias, else ``"default"``)
and hands the messages to that backend once. Argument checks and deprecation warnings are
shared by a sync function and its async twin, so both accept and reject the same calls.

Deprecated, compatibility-only paths (marked ``# compat:``): passing ``fail_silently`` and
later parameters positionally; the ``fail_silently``, ``auth_user``, ``auth_password`` and
``connection`` arguments; ``get_connection()`` itself.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from mailpost import _django
from mailpost.backends.base import BaseEmailBackend, passing_fail_silently
from mailpost.exceptions import MailpostDeprecationWarning
from mailpost.handler import (
    build_backend,
    legacy_options,
    mailers,
    mailers_defined,
    warn_if_implicit_default,
)

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = [
    "asend_mail",
    "asend_mass_mail",
    "asend_message",
    "get_connection",
    "send_mail",
    "send_mass_mail",
    "send_message",
]

F = TypeVar("F", bound=Callable[..., Any])

# Frames between a warning and the user's call: warn() in a helper <- _prepare_* <-
# public function <- positional-compat wrapper <- caller.
_USER_STACKLEVEL = 5


# -- compat: deprecated positional arguments -------------------------------------------------


def _positional_compat(keep: int, names: tuple[str, ...]) -> Callable[[F], F]:
    """compat: accept ``names`` positionally after the first ``keep`` arguments, with a warning.

    The decorated function's own signature has them keyword-only (the documented API).
    """

    def decorate(func: F) -> F:
        limit = keep + len(names)

        def move(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
            if len(args) <= keep:
                return args
            if len(args) > limit:
                raise TypeError(
                    f"{func.__name__}() takes at most {limit} positional arguments "
                    f"({len(args)} given)"
                )
            moved = dict(zip(names, args[keep:], strict=False))
            for name in moved:
                if name in kwargs:
                    raise TypeError(f"{func.__name__}() got multiple values for argument {name!r}")
            _django.deprecated(
                f"Passing {', '.join(moved)} to {func.__name__}() positionally is deprecated; "
                "pass them as keyword arguments.",
                f"Passing positional argument(s) {', '.join(repr(n) for n in moved)} to "
                f"{func.__name__}() is deprecated. Use keyword arguments instead.",
                stacklevel=3,
            )
            kwargs.update(moved)
            return args[:keep]

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await func(*move(args, kwargs), **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*move(args, kwargs), **kwargs)

        return cast(F, wrapper)

    return decorate


# -- shared checks -----------------------------------------------------------------------------


def _check_legacy_combinations(
    func: str,
    *,
    using: str | None,
    fail_silently: bool | None,
    connection: object | None,
    auth_user: str | None = None,
    auth_password: str | None = None,
) -> None:
    """Reject argument combinations that used to be silently ignored (Django's sentences
    first, then mailpost's hint)."""
    auth = auth_user is not None or auth_password is not None
    if using is not None:
        hint = " Put those settings in the MAILERS entry instead."
        if fail_silently:
            raise TypeError(f"'fail_silently' is not compatible with 'using'.{hint}")
        if connection is not None:
            raise TypeError(
                "'connection' is not compatible with 'using'. Pass one of them: using names "
                "a MAILERS alias."
            )
        if auth:
            raise TypeError(
                "'auth_user' and 'auth_password' are not compatible with 'using'. "
                "Set 'username' and 'password' OPTIONS in MAILERS instead."
            )
    if connection is not None:
        if fail_silently:
            raise TypeError(
                "fail_silently cannot be used with a connection. Pass fail_silently to "
                "get_connection() instead. Or configure it on the connection itself."
            )
        if auth:
            raise TypeError(
                "auth_user and auth_password cannot be used with a connection. Pass auth_user "
                "and auth_password to get_connection() instead. Or configure them on the "
                "connection itself."
            )


#: compat: Django 6.1's warning for each deprecated argument (auth_* share one).
_DJANGO_ARGUMENT_WARNINGS = {
    "fail_silently": "The 'fail_silently' argument is deprecated. See 'Migrating email to "
    "mailers' in Django's documentation for recommended replacements.",
    "auth": "The 'auth_user' and 'auth_password' arguments are deprecated. Set 'username' "
    "and 'password' OPTIONS in MAILERS instead.",
    "connection": "The 'connection' argument is deprecated. Switch to the 'using' argument "
    "with a MAILERS alias.",
}


def _warn_legacy_arguments(func: str, stacklevel: int = _USER_STACKLEVEL, **given: object) -> None:
    """compat: warn about the deprecated arguments that were passed.

    Outside Django, one mailpost warning naming them all. In a Django 6.1 project, Django's
    own warnings, one per argument (``fail_silently`` only when true, as Django does).
    """
    if _django.in_django_mode():
        kinds = []
        if given.get("fail_silently"):
            kinds.append("fail_silently")
        if given.get("auth_user") is not None or given.get("auth_password") is not None:
            kinds.append("auth")
        if given.get("connection") is not None:
            kinds.append("connection")
        for kind in kinds:
            _django.deprecated(
                _DJANGO_ARGUMENT_WARNINGS[kind],
                _DJANGO_ARGUMENT_WARNINGS[kind],
                stacklevel=stacklevel,
                since=_django.DJANGO_6_1,
            )
        return
    passed = [name for name, value in given.items() if value is not None]
    if passed:
        warnings.warn(
            f"{func}(): the {', '.join(passed)} argument(s) are deprecated; configure a "
            "mailer in MAILERS and pass using=alias instead.",
            MailpostDeprecationWarning,
            stacklevel=stacklevel,
        )


def _legacy_arguments(
    func: str,
    *,
    using: str | None,
    fail_silently: bool | None,
    connection: object | None,
    auth_user: str | None = None,
    auth_password: str | None = None,
) -> None:
    """compat: reject bad combinations of the deprecated arguments and warn about them.

    In a Django project the warnings come first, then the TypeError (Django's order, so a
    project's warning filters see the same warnings); elsewhere the TypeError comes alone.
    """

    def check() -> None:
        _check_legacy_combinations(
            func,
            using=using,
            fail_silently=fail_silently,
            connection=connection,
            auth_user=auth_user,
            auth_password=auth_password,
        )

    django_order = _django.in_django_mode()
    if not django_order:
        check()
    _warn_legacy_arguments(
        func,
        _USER_STACKLEVEL + 1,
        fail_silently=fail_silently,
        auth_user=auth_user,
        auth_password=auth_password,
        connection=connection,
    )
    if django_order:
        check()


def _choose_backend(
    *,
    using: str | None,
    fail_silently: bool | None,
    connection: BaseEmailBackend | None,
    auth_user: str | None = None,
    auth_password: str | None = None,
) -> BaseEmailBackend:
    """The backend to send with: the caller's connection, the ``using`` mailer, or the
    default mailer (with the deprecated per-call options added)."""
    if connection is not None:  # compat:
        return connection
    if using is not None:
        return mailers[using]
    extra: dict[str, Any] = {}
    if fail_silently:  # compat:
        extra["fail_silently"] = True
    credentials: dict[str, Any] = {}
    if auth_user is not None:  # compat:
        credentials["username"] = auth_user
    if auth_password is not None:  # compat:
        credentials["password"] = auth_password
    if not extra and not credentials:
        return mailers.default
    with passing_fail_silently():
        return mailers._create("default", _if_accepted=credentials, **extra)


def _send(backend: BaseEmailBackend, messages: list[EmailMessage]) -> int:
    """Hand the messages to the backend in one call; it opens and closes itself (or stays
    open if the caller opened it), and records failures to connect per message."""
    if not messages:
        return 0
    return backend.send_messages(messages)


async def _asend(backend: BaseEmailBackend, messages: list[EmailMessage]) -> int:
    if not messages:
        return 0
    if not isinstance(cast(object, backend), BaseEmailBackend):  # foreign, e.g. Django-native
        return await asyncio.to_thread(backend.send_messages, messages)
    return await backend.asend_messages(messages)


def _message(
    subject: str,
    body: str,
    from_email: str | None,
    to: Sequence[str],
    html_message: str | None,
) -> EmailMessage:
    from mailpost.message import EmailMultiAlternatives

    msg = EmailMultiAlternatives(subject, body, from_email, to)
    if html_message is not None:
        msg.attach_alternative(html_message, "text/html")
    return msg


def _on_connection(
    messages: list[EmailMessage], connection: BaseEmailBackend | None
) -> list[EmailMessage]:
    """compat: as in Django, messages sent over a caller's ``connection`` carry it."""
    if connection is not None:
        for msg in messages:
            msg.connection = connection
    return messages


def _with_recipients(messages: list[EmailMessage]) -> list[EmailMessage]:
    """Messages with nobody to send to are not sent (and not counted)."""
    return [m for m in messages if m.recipients()]


# -- send_mail -----------------------------------------------------------------------------------


def _prepare_send_mail(
    func: str,
    subject: str,
    message: str,
    from_email: str | None,
    recipient_list: Sequence[str],
    *,
    fail_silently: bool | None,
    auth_user: str | None,
    auth_password: str | None,
    connection: BaseEmailBackend | None,
    html_message: str | None,
    using: str | None,
) -> tuple[BaseEmailBackend, list[EmailMessage]]:
    _legacy_arguments(
        func,
        using=using,
        fail_silently=fail_silently,
        connection=connection,
        auth_user=auth_user,
        auth_password=auth_password,
    )
    backend = _choose_backend(
        using=using,
        fail_silently=fail_silently,
        connection=connection,
        auth_user=auth_user,
        auth_password=auth_password,
    )
    msg = _message(subject, message, from_email, recipient_list, html_message)
    return backend, _with_recipients(_on_connection([msg], connection))


_SEND_MAIL_LEGACY = ("fail_silently", "auth_user", "auth_password", "connection", "html_message")


@_positional_compat(4, _SEND_MAIL_LEGACY)
def send_mail(
    subject: str,
    message: str,
    from_email: str | None,
    recipient_list: Sequence[str],
    *,
    fail_silently: bool | None = None,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    using: str | None = None,
) -> int:
    """Send one message to ``recipient_list`` (all in To:); return 1 if sent, else 0.

    ``from_email=None`` uses ``DEFAULT_FROM_EMAIL``. ``html_message`` adds a text/html
    alternative. ``using`` names the ``MAILERS`` alias (default ``"default"``).
    ``fail_silently``, ``auth_user``, ``auth_password`` and ``connection`` are deprecated
    and cannot be combined with ``using``.
    """
    backend, messages = _prepare_send_mail(
        "send_mail",
        subject,
        message,
        from_email,
        recipient_list,
        fail_silently=fail_silently,
        auth_user=auth_user,
        auth_password=auth_password,
        connection=connection,
        html_message=html_message,
        using=using,
    )
    return _send(backend, messages)


@_positional_compat(4, _SEND_MAIL_LEGACY)
async def asend_mail(
    subject: str,
    message: str,
    from_email: str | None,
    recipient_list: Sequence[str],
    *,
    fail_silently: bool | None = None,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    using: str | None = None,
) -> int:
    """Async :func:`send_mail`: same arguments, result and errors."""
    backend, messages = _prepare_send_mail(
        "asend_mail",
        subject,
        message,
        from_email,
        recipient_list,
        fail_silently=fail_silently,
        auth_user=auth_user,
        auth_password=auth_password,
        connection=connection,
        html_message=html_message,
        using=using,
    )
    return await _asend(backend, messages)


# -- send_mass_mail ------------------------------------------------------------------------------


def _prepare_send_mass_mail(
    func: str,
    datatuple: Sequence[tuple[str, str, str | None, Sequence[str]]],
    *,
    fail_silently: bool | None,
    auth_user: str | None,
    auth_password: str | None,
    connection: BaseEmailBackend | None,
    using: str | None,
) -> tuple[BaseEmailBackend, list[EmailMessage]]:
    items = list(datatuple)
    for index, item in enumerate(items):
        if isinstance(item, (str, bytes)) or len(item) != 4:
            raise TypeError(
                f"{func}(): datatuple[{index}] must be a "
                "(subject, message, from_email, recipient_list) tuple"
            )
    _legacy_arguments(
        func,
        using=using,
        fail_silently=fail_silently,
        connection=connection,
        auth_user=auth_user,
        auth_password=auth_password,
    )
    backend = _choose_backend(
        using=using,
        fail_silently=fail_silently,
        connection=connection,
        auth_user=auth_user,
        auth_password=auth_password,
    )
    from mailpost.message import EmailMessage as PlainMessage  # Django sends these plain

    messages: list[EmailMessage] = [PlainMessage(s, m, f, r) for s, m, f, r in items]
    return backend, _with_recipients(_on_connection(messages, connection))


_SEND_MASS_MAIL_LEGACY = ("fail_silently", "auth_user", "auth_password", "connection")


@_positional_compat(1, _SEND_MASS_MAIL_LEGACY)
def send_mass_mail(
    datatuple: Sequence[tuple[str, str, str | None, Sequence[str]]],
    *,
    fail_silently: bool | None = None,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    using: str | None = None,
) -> int:
    """Send one message per ``(subject, message, from_email, recipient_list)`` item over a
    single connection; return how many were sent."""
    backend, messages = _prepare_send_mass_mail(
        "send_mass_mail",
        datatuple,
        fail_silently=fail_silently,
        auth_user=auth_user,
        auth_password=auth_password,
        connection=connection,
        using=using,
    )
    return _send(backend, messages)


@_positional_compat(1, _SEND_MASS_MAIL_LEGACY)
async def asend_mass_mail(
    datatuple: Sequence[tuple[str, str, str | None, Sequence[str]]],
    *,
    fail_silently: bool | None = None,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    using: str | None = None,
) -> int:
    """Async :func:`send_mass_mail`: same arguments, result and errors."""
    backend, messages = _prepare_send_mass_mail(
        "asend_mass_mail",
        datatuple,
        fail_silently=fail_silently,
        auth_user=auth_user,
        auth_password=auth_password,
        connection=connection,
        using=using,
    )
    return await _asend(backend, messages)


# -- EmailMessage.send() / asend() ---------------------------------------------------------------


def _prepare_send_message(
    msg: EmailMessage, *, fail_silently: bool, using: str | None
) -> BaseEmailBackend | None:
    connection = msg.connection
    if connection is not None and using is not None:
        raise TypeError(
            f"send(): the message has a connection and using={using!r} was given; use one. "
            "(The connection argument is deprecated: prefer using.)"
        )
    django_order = _django.in_django_mode()  # Django warns, then rejects
    if not django_order:
        _check_legacy_combinations(
            "send", using=using, fail_silently=fail_silently, connection=connection
        )
    if fail_silently:  # compat:
        _django.deprecated(
            "send(): the fail_silently argument is deprecated; configure a mailer in MAILERS "
            "and pass using=alias instead.",
            _DJANGO_ARGUMENT_WARNINGS["fail_silently"],
            stacklevel=4,  # _prepare_send_message <- send_message <- EmailMessage.send <- caller
            since=_django.DJANGO_6_1,
        )
    if django_order:
        _check_legacy_combinations(
            "send", using=using, fail_silently=fail_silently, connection=connection
        )
    if not msg.recipients():
        return None
    return _choose_backend(using=using, fail_silently=fail_silently, connection=connection)


def send_message(
    msg: EmailMessage, *, fail_silently: bool = False, using: str | None = None
) -> int:
    """What ``EmailMessage.send()`` does: send ``msg`` through its mailer; 1 or 0."""
    backend = _prepare_send_message(msg, fail_silently=fail_silently, using=using)
    return _send(backend, [msg]) if backend is not None else 0


async def asend_message(
    msg: EmailMessage, *, fail_silently: bool = False, using: str | None = None
) -> int:
    """What ``EmailMessage.asend()`` does: the async :func:`send_message`."""
    backend = _prepare_send_message(msg, fail_silently=fail_silently, using=using)
    return await _asend(backend, [msg]) if backend is not None else 0


# -- get_connection (deprecated) -------------------------------------------------------------------


@_positional_compat(1, ("fail_silently",))
def get_connection(
    backend: str | None = None, *, fail_silently: bool = False, **kwargs: Any
) -> BaseEmailBackend:
    """compat: deprecated; use ``mailers[alias]``.

    With ``MAILERS`` defined: no arguments returns ``mailers.default``; keyword arguments
    are added to the default mailer's OPTIONS; a ``backend`` path is a RuntimeError (as in
    Django). Without ``MAILERS``: an instance of ``backend`` (or the legacy
    ``EMAIL_BACKEND``) built from the legacy ``EMAIL_*`` settings and ``kwargs``. As in
    Django, keyword arguments the backend class does not take are ignored.
    """
    _django.deprecated(
        "get_connection() is deprecated; use mailpost.mailers[alias] "
        "(or mailpost.mailers.default) instead.",
        "get_connection() is deprecated. See 'Migrating email to mailers' in Django's "
        "documentation for recommended replacements.",
        stacklevel=3,
        since=_django.DJANGO_6_1,
    )
    if mailers_defined() and backend is not None:
        raise RuntimeError(
            "get_connection(backend, ...) is not supported with MAILERS. Add a MAILERS entry "
            "for that backend and use mailpost.mailers[alias]."
        )
    extra: dict[str, Any] = {"fail_silently": True} if fail_silently else {}
    with passing_fail_silently():
        if backend is None:
            return mailers._create("default", _if_accepted=kwargs, **extra)
        warn_if_implicit_default(stacklevel=3)
        options = {**legacy_options(backend), **extra}
        return build_backend(backend, options, alias=None, optional=kwargs)
