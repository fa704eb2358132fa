"""Django < 6.1 test runs: use the in-memory backend for every ``MAILERS`` entry.

Django 6.1's ``setup_test_environment()`` replaces ``settings.MAILERS`` with in-memory
entries; older Django only switches ``EMAIL_BACKEND``, because ``MAILERS`` is not a Django
setting there. This module gives mailpost the same behaviour on those versions, as a
settings source consulted before Django's settings:

* only while Django's test environment is set up (``manage.py test``, pytest-django);
* only for the project's own ``MAILERS``: a test that overrides ``MAILERS``
  (``override_settings``, pytest-django's ``settings`` fixture) gets exactly what it
  asked for, as on Django 6.1, e.g. to send to a local SMTP test server.

Messages then go to the in-memory backend, which fills ``mailpost.outbox`` and
``django.core.mail.outbox``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from mailpost import _config

__all__ = ["register"]

_LOCMEM = "mailpost.backends.locmem.EmailBackend"


def _django_swaps_mailers() -> bool:
    """Whether this Django's test runner already swaps ``MAILERS`` itself (6.1+)."""
    import django.core.mail

    return hasattr(django.core.mail, "mailers")


def _test_environment_active() -> bool:
    utils = sys.modules.get("django.test.utils")
    state = getattr(utils, "_TestState", None)
    return state is not None and hasattr(state, "saved_data")


def _overridden_in_test(current: Any) -> bool:
    """Whether ``MAILERS`` was set by a test (an ``override_settings`` layer), rather than
    coming from the project's settings module (the bottom layer)."""
    holder = current
    while True:
        below = holder.__dict__.get("default_settings")
        if below is None or isinstance(below, ModuleType):
            return False  # reached the project's own settings
        if "MAILERS" in holder.__dict__:
            return True
        holder = below


def _test_mailers() -> Mapping[str, Any] | None:
    """``{"MAILERS": in-memory entries}`` while tests run on the project's ``MAILERS``."""
    if _config.is_configured() or not _test_environment_active():
        return None
    current = _config._django_settings()
    if current is None or _overridden_in_test(current):
        return None
    mailers = getattr(current, "MAILERS", None)
    if not isinstance(mailers, Mapping):
        return None
    return {"MAILERS": {alias: {"BACKEND": _LOCMEM} for alias in mailers}}


def register() -> None:
    """Install the swap (idempotent); a no-op on Django versions that swap by themselves."""
    if not _django_swaps_mailers():
        _config.add_source(_test_mailers)
