"""One settings object for all of mailpost, read live on every use.

Where a setting comes from, first match wins:

0. an application source registered by an integration (e.g. the Flask extension reads
   ``current_app.config`` while an app context is active);
1. :func:`configure` — explicit settings given by the program;
2. Django's ``django.conf.settings`` — only when ``configure()`` was never called and a
   Django project is configured (so ``override_settings`` keeps working);
3. the environment — ``MAILPOST_<NAME>`` (``MAILPOST_MAILERS`` is JSON);
4. the defaults below.

Nothing is cached: a change takes effect on the next send. Nothing is read at import.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from mailpost import _django
from mailpost.exceptions import ImproperlyConfigured

__all__ = ["configure", "is_defined", "settings"]

#: The settings mailpost reads, with their standalone defaults.
#: EMAIL_SUBJECT_PREFIX differs from Django's "[Django] ": outside Django that brand is noise.
DEFAULTS: dict[str, Any] = {
    "MAILERS": None,
    "DEFAULT_FROM_EMAIL": "webmaster@localhost",
    "SERVER_EMAIL": "root@localhost",
    "ADMINS": [],
    "MANAGERS": [],
    "EMAIL_SUBJECT_PREFIX": "",
    "DEFAULT_CHARSET": "utf-8",
    "EMAIL_USE_LOCALTIME": False,
}

#: compat: pre-MAILERS settings, read only when MAILERS is not defined.
LEGACY_DEFAULTS: dict[str, Any] = {
    "EMAIL_BACKEND": None,
    "EMAIL_HOST": "localhost",
    "EMAIL_PORT": 25,
    "EMAIL_HOST_USER": "",
    "EMAIL_HOST_PASSWORD": "",
    "EMAIL_USE_TLS": False,
    "EMAIL_USE_SSL": False,
    "EMAIL_SSL_CERTFILE": None,
    "EMAIL_SSL_KEYFILE": None,
    "EMAIL_TIMEOUT": None,
    "EMAIL_FILE_PATH": None,
}

KNOWN = {**DEFAULTS, **LEGACY_DEFAULTS}
_BOOLS = {"EMAIL_USE_LOCALTIME", "EMAIL_USE_TLS", "EMAIL_USE_SSL"}
_JSON = {"MAILERS", "ADMINS", "MANAGERS"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

_lock = threading.Lock()
_explicit: dict[str, Any] | None = None
_sources: list[Callable[[], Mapping[str, Any] | None]] = []


def configure(**settings: Any) -> None:
    """Set mailpost's settings for this process, replacing any earlier ``configure()``.

    Accepts the spec's setting names (``MAILERS``, ``DEFAULT_FROM_EMAIL``, ``SERVER_EMAIL``,
    ``ADMINS``, ``MANAGERS``, ``EMAIL_SUBJECT_PREFIX``, ``DEFAULT_CHARSET``,
    ``EMAIL_USE_LOCALTIME``) and the legacy ``EMAIL_*`` ones. Settings not given fall back
    to the environment, then to the defaults. Once called, Django's settings are ignored.
    """
    unknown = sorted(set(settings) - set(KNOWN))
    if unknown:
        raise ImproperlyConfigured(
            f"configure(): unknown setting(s) {', '.join(unknown)}; "
            f"known settings are {', '.join(sorted(KNOWN))}"
        )
    mailers = settings.get("MAILERS")
    if mailers is not None and not isinstance(mailers, Mapping):
        raise ImproperlyConfigured(
            "configure(): MAILERS must be a dict of alias -> mailer definition, "
            f"not {type(mailers).__name__}"
        )
    global _explicit
    with _lock:
        _explicit = dict(settings)


def reset() -> None:
    """Forget ``configure()``: back to Django / environment / defaults. For tests."""
    global _explicit
    with _lock:
        _explicit = None


def add_source(source: Callable[[], Mapping[str, Any] | None]) -> None:
    """Register an application settings source, consulted before ``configure()``.

    ``source()`` returns the active application's settings mapping, or None when no
    application is active (then the next source, or ``configure()``, applies).
    """
    with _lock:
        if source not in _sources:
            _sources.append(source)


def is_configured() -> bool:
    """Whether ``configure()`` has been called (and not reset)."""
    return _explicit is not None


def _django_settings() -> Any | None:
    """Django's settings holder, unless ``configure()`` was called (see mailpost._django)."""
    if _explicit is not None:
        return None
    return _django.settings_holder()


_MISSING = object()


def _environ_getter() -> Callable[[str], str | None]:
    """A reader of ``os.environ`` that skips its per-call key encoding and KeyError.

    ``os.environ`` keeps its data in a dict under encoded keys; reading that dict with
    keys encoded once is ~20x cheaper, and still live (assignments to ``os.environ``
    update it). Falls back to ``os.environ.get`` where the layout differs.
    """
    environ = os.environ
    data = getattr(environ, "_data", None)
    encodekey = getattr(environ, "encodekey", None)
    decodevalue = getattr(environ, "decodevalue", None)
    if not isinstance(data, dict) or encodekey is None or decodevalue is None:
        return environ.get
    keys: dict[str, Any] = {}

    def get(key: str) -> str | None:
        if os.environ is not environ:  # replaced wholesale (a test's patch): read the new one
            return os.environ.get(key)
        encoded = keys.get(key)
        if encoded is None:
            encoded = keys[key] = encodekey(key)
        raw = data.get(encoded)
        return None if raw is None else str(decodevalue(raw))

    return get


_environ_get = _environ_getter()
_env_keys = {name: f"MAILPOST_{name}" for name in KNOWN}


def _from_env(name: str) -> Any:
    raw = _environ_get(_env_keys.get(name) or f"MAILPOST_{name}")
    if raw is None:
        return _MISSING
    if name in _BOOLS:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ImproperlyConfigured(f"MAILPOST_{name}: expected true/false, got {raw!r}")
    if name in _JSON:
        if name != "MAILERS" and not raw.lstrip().startswith("["):
            return [a.strip() for a in raw.split(",") if a.strip()]
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(f"MAILPOST_{name}: not valid JSON ({exc})") from None
    if name in {"EMAIL_PORT"}:
        try:
            return int(raw)
        except ValueError:
            raise ImproperlyConfigured(f"MAILPOST_{name}: expected an integer") from None
    if name == "EMAIL_TIMEOUT":
        try:
            return float(raw)
        except ValueError:
            raise ImproperlyConfigured(f"MAILPOST_{name}: expected a number") from None
    return raw


def lookup(name: str) -> tuple[Any, bool]:
    """The current value of setting ``name`` and whether any source defines it."""
    for source in _sources:
        mapping = source()
        if mapping is not None and name in mapping:
            return mapping[name], True
    explicit = _explicit
    if explicit is not None and name in explicit:
        return explicit[name], True
    dj = _django_settings()
    if dj is not None:
        if name == "MAILERS":
            swapped = _django.test_mailers(dj)
            if swapped is not None:
                return swapped, True
        value = getattr(dj, name, _MISSING)
        if value is not _MISSING:
            return _django.plain(value), True
    value = _from_env(name)
    if value is not _MISSING:
        return value, True
    return KNOWN.get(name), False


def is_defined(name: str) -> bool:
    """Whether some source sets ``name`` (rather than it falling back to the default)."""
    return lookup(name)[1]


class _Settings:
    """Attribute access to the live settings: ``settings.DEFAULT_FROM_EMAIL``."""

    def __getattr__(self, name: str) -> Any:
        if name not in KNOWN:
            raise AttributeError(f"mailpost has no setting {name!r}")
        value, defined = lookup(name)
        if defined and name == "MAILERS" and value is not None and not isinstance(value, Mapping):
            raise ImproperlyConfigured(
                f"MAILERS must be a dict of alias -> mailer definition, not {type(value).__name__}"
            )
        return value

    def __repr__(self) -> str:
        source = (
            "configure()"
            if _explicit is not None
            else (
                "django.conf.settings" if _django_settings() is not None else "environment/defaults"
            )
        )
        return f"<mailpost settings from {source}>"


settings = _Settings()
