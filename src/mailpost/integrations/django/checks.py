"""System checks for mailpost's configuration, run by ``manage.py check`` and at startup.

=============== =========================================================================
``mailpost.W001`` no ``default`` mailer: ``send_mail()`` & co. without ``using=`` will fail
``mailpost.W002`` ``ADMINS`` / ``MANAGERS`` is not a list of address strings:
                  ``mail_admins()`` will fail; or it uses the ``(name, address)`` pairs
                  that Django 6.1 deprecates (not reported on Django 4.2 / 5.2)
``mailpost.E001`` a mailer cannot be built (``InvalidMailer``: bad BACKEND, unknown OPTIONS...)
``mailpost.E002`` a mailer needs an optional dependency that is not installed
``mailpost.E003`` the ``MAILERS`` setting itself is malformed
``mailpost.E004`` (``check --deploy``) the ``default`` mailer uses a development-only backend
                  (console, file, in-memory, dummy): mail would never reach anyone
=============== =========================================================================

Checks build every mailer once, so a configuration problem is reported at startup, naming
the alias, instead of at the first send. On Django 6.1+, which checks its own ``MAILERS``
(``mail.W001``, ``mail.E001``), the mailpost twins of those two stay quiet where Django's
already report the same problem.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

from django.core import checks

from mailpost import _config
from mailpost._admins import pairs_are_deprecated, read_server_recipients
from mailpost.exceptions import ImproperlyConfigured, InvalidMailer, MissingDependency
from mailpost.handler import build_backend, mailers, mailers_defined, resolve_backend_path

__all__ = ["check_deploy", "check_mailers", "check_recipient_settings", "register"]

TAG = "mailpost"

#: Backends that never deliver mail, by their mailpost path.
DEVELOPMENT_BACKENDS = frozenset(
    f"mailpost.backends.{name}.EmailBackend" for name in ("console", "filebased", "locmem", "dummy")
)
_DJANGO_BACKENDS = "django.core.mail.backends."


def _django_checks_mailers() -> bool:
    """Whether Django itself checks ``MAILERS`` here (6.1+, settings from Django)."""
    return (
        not _config.is_configured()
        and _config._django_settings() is not None
        and importlib.util.find_spec("django.core.checks.mail") is not None
    )


def check_mailers(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[Any]:
    """Every configured mailer can be built; there is a ``default`` one."""
    try:
        aliases = list(mailers)
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="mailpost.E003")]
    messages: list[Any] = []
    if "default" not in aliases and not (mailers_defined() and _django_checks_mailers()):
        messages.append(
            checks.Warning(
                "No 'default' mailer is configured: send_mail(), mail_admins() and "
                "EmailMessage.send() without using= will raise MailerDoesNotExist.",
                hint="Add a 'default' entry to MAILERS, or pass using='alias' when sending.",
                id="mailpost.W001",
            )
        )
    for alias in aliases:
        try:
            path, options = mailers._entry(alias)
            build_backend(path, options, alias=alias)
        except MissingDependency as exc:
            messages.append(checks.Error(f"MAILERS[{alias!r}]: {exc}", id="mailpost.E002"))
        except InvalidMailer as exc:
            messages.append(checks.Error(str(exc), id="mailpost.E001"))
        except Exception as exc:  # a third-party backend's own constructor refused
            messages.append(
                checks.Error(
                    f"MAILERS[{alias!r}]: the backend could not be constructed: "
                    f"{type(exc).__name__}: {exc}",
                    id="mailpost.E001",
                )
            )
    return messages


def check_recipient_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[Any]:
    """``ADMINS`` and ``MANAGERS`` follow the rules ``mail_admins()`` applies at run time."""
    messages: list[Any] = []
    for name in ("ADMINS", "MANAGERS"):
        value, _ = _config.lookup(name)
        try:
            _addresses, pairs = read_server_recipients(name, value)
        except ImproperlyConfigured as exc:
            problem, hint = f"{exc} mail_{name.lower()}() will fail.", None
        else:
            if not (pairs and pairs_are_deprecated()):
                continue
            problem = (
                f"The {name} setting uses (name, address) pairs, which are deprecated; "
                f"got {value!r}."
            )
            hint = f'Write {name} = ["ops@example.com", "Jo <jo@example.com>"].'
        messages.append(checks.Warning(problem, hint=hint, id="mailpost.W002"))
    return messages


def check_deploy(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[Any]:
    """``check --deploy``: the ``default`` mailer really delivers mail."""
    try:
        if "default" not in mailers:
            return []
        declared, _ = mailers._entry("default")
    except (ImproperlyConfigured, InvalidMailer):
        return []  # reported by check_mailers
    path = resolve_backend_path(declared)
    if path not in DEVELOPMENT_BACKENDS:
        return []
    if declared.startswith(_DJANGO_BACKENDS) and mailers_defined() and _django_checks_mailers():
        return []  # Django's mail.E001 reports this one
    where = "MAILERS['default']" if mailers_defined() else "EMAIL_BACKEND"
    return [
        checks.Error(
            f"{where} uses the development-only backend {declared!r}: "
            "mail sent in production would never reach anyone.",
            hint=(
                "Use a delivering backend for the default mailer, e.g. "
                "'mailpost.backends.smtp.EmailBackend' with a host in OPTIONS."
            ),
            id="mailpost.E004",
        )
    ]


def register() -> None:
    """Register the checks with Django (called by the app's ``ready()``)."""
    checks.register(check_mailers, TAG)
    checks.register(check_recipient_settings, TAG)
    checks.register(check_deploy, TAG, deploy=True)
