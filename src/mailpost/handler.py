"""The ``mailers`` mapping: a ``MAILERS`` alias in, a new, configured backend out.

``MAILERS`` is read live on every access, so ``configure()`` (or a Django
``override_settings``) takes effect immediately. An entry is either a dict::

    {"BACKEND": "mailpost.backends.smtp.EmailBackend", "OPTIONS": {"host": "localhost"}}

or a mailer URL string (see :mod:`mailpost._urls`). Each entry is validated when its alias
is looked up; any problem raises :class:`~mailpost.InvalidMailer` starting with
``MAILERS['alias']:``. An alias that is not defined raises
:class:`~mailpost.MailerDoesNotExist` (also a ``KeyError``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from mailpost import _capture, _config, _django
from mailpost._config import settings
from mailpost._urls import parse_mailer_url
from mailpost.backends.base import BaseEmailBackend
from mailpost.exceptions import InvalidMailer, MailerDoesNotExist, MissingDependency

__all__ = ["MailersHandler", "mailers"]

_DJANGO_PREFIX = "django.core.mail.backends."
_BUILTIN = ("smtp", "console", "filebased", "locmem", "dummy")
#: What every mailer is while mail is captured (mailpost.testing).
_MEMORY_BACKEND = "mailpost.backends.locmem.EmailBackend"
_ENTRY_KEYS = {"BACKEND", "OPTIONS"}
#: A MAILERS entry without "BACKEND" is an SMTP mailer, as in Django.
_DEFAULT_BACKEND = "mailpost.backends.smtp.EmailBackend"
_HOW_TO_CONFIGURE = (
    "Define it with mailpost.configure(MAILERS={...}), the MAILPOST_MAILERS environment "
    'variable (JSON, e.g. \'{"default": "smtp://localhost:25"}\') or Django\'s MAILERS setting.'
)

#: compat: legacy EMAIL_* settings -> SMTP backend OPTIONS, used only when MAILERS is undefined.
_LEGACY_SMTP_OPTIONS = {
    "EMAIL_HOST": "host",
    "EMAIL_PORT": "port",
    "EMAIL_HOST_USER": "username",
    "EMAIL_HOST_PASSWORD": "password",
    "EMAIL_USE_TLS": "use_tls",
    "EMAIL_USE_SSL": "use_ssl",
    "EMAIL_SSL_CERTFILE": "ssl_certfile",
    "EMAIL_SSL_KEYFILE": "ssl_keyfile",
    "EMAIL_TIMEOUT": "timeout",
}


def resolve_backend_path(path: str) -> str:
    """Map Django's built-in backend paths to mailpost's; other paths are returned as-is."""
    if path.startswith(_DJANGO_PREFIX):
        module, _, name = path[len(_DJANGO_PREFIX) :].partition(".")
        if module in _BUILTIN and name == "EmailBackend":
            return f"mailpost.backends.{module}.EmailBackend"
    return path


def legacy_options(path: str) -> dict[str, Any]:
    """compat: OPTIONS for ``path`` taken from the legacy ``EMAIL_*`` settings that are set.

    Settings left at their defaults are not passed, so the backend's own defaults apply.
    """
    path = resolve_backend_path(path)
    options: dict[str, Any] = {}
    if path == "mailpost.backends.smtp.EmailBackend":
        for setting, option in _LEGACY_SMTP_OPTIONS.items():
            value, defined = _config.lookup(setting)
            if not defined or value is None or value == "":
                continue
            options[option] = bool(value) if option in ("use_tls", "use_ssl") else value
        if options.get("use_tls") and options.get("use_ssl"):
            raise ValueError(
                "EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive, so only set one of those "
                "settings to True."
            )
    elif path == "mailpost.backends.filebased.EmailBackend":
        value, defined = _config.lookup("EMAIL_FILE_PATH")
        if defined and value is not None:
            options["file_path"] = value
    return options


def mailers_defined() -> bool:
    """Whether any settings source defines ``MAILERS`` (to something other than None)."""
    value, defined = _config.lookup("MAILERS")
    return defined and value is not None


_NO_DEFAULT_MAILER = (
    "Django 2028 will not have a default mailer. Configure settings.MAILERS to avoid errors "
    "when sending email."
)


def warn_if_implicit_default(stacklevel: int = 2) -> None:
    """compat: as Django 6.1, warn when a mailer comes from Django's built-in
    ``EMAIL_BACKEND`` default only (the project configures neither MAILERS nor it)."""
    if mailers_defined() or _config.is_configured():
        return
    holder = _django.settings_holder()
    if holder is not None and _django.left_at_default(holder, "EMAIL_BACKEND"):
        _django.deprecated(
            None, _NO_DEFAULT_MAILER, stacklevel=stacklevel + 1, since=_django.DJANGO_6_1
        )


def _definitions() -> dict[str, Any] | None:
    """Alias -> raw entry from the live settings, or None when no mailer is configured."""
    if mailers_defined():
        value = settings.MAILERS
        return dict(value)
    if _config.is_defined("EMAIL_BACKEND") and settings.EMAIL_BACKEND:  # compat:
        path = str(settings.EMAIL_BACKEND)
        return {"default": {"BACKEND": path, "OPTIONS": legacy_options(path)}}
    return None


def _import_backend(path: str, alias: str | None, label: str) -> type[Any]:
    """The backend class at ``path``; errors start with Django's wording."""
    module_name, _, class_name = path.rpartition(".")
    prefix = f"{label}: Could not find BACKEND {path!r}"
    if not module_name or not class_name:
        raise InvalidMailer(
            f"{prefix}: {path} doesn't look like a module path "
            "(expected a dotted path like 'mailpost.backends.smtp.EmailBackend')",
            alias=alias,
        )
    try:
        module = importlib.import_module(module_name)
    except MissingDependency:
        raise
    except ImportError as exc:
        raise InvalidMailer(f"{prefix}: {exc}", alias=alias) from exc
    try:
        cls = getattr(module, class_name)
    except AttributeError:
        raise InvalidMailer(
            f'{prefix}: Module "{module_name}" does not define a "{class_name}" attribute/class',
            alias=alias,
        ) from None
    if not isinstance(cls, type) or not callable(getattr(cls, "send_messages", None)):
        raise InvalidMailer(
            f"{label}: BACKEND {path!r} is not an email backend class "
            "(expected a subclass of mailpost.backends.base.BaseEmailBackend)",
            alias=alias,
        )
    return cls


def _accepts(cls: type[Any], name: str) -> bool:
    """Whether constructing ``cls`` takes a keyword argument ``name``."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return True
    param = parameters.get(name)
    if param is not None:
        return param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
    # A foreign backend taking **kwargs (Django's style) ignores what it does not use;
    # mailpost's BaseEmailBackend rejects unknown options, so its **kwargs does not count.
    return not issubclass(cls, BaseEmailBackend) and any(
        p.kind is p.VAR_KEYWORD for p in parameters.values()
    )


def build_backend(
    path: str,
    options: Mapping[str, Any],
    *,
    alias: str | None,
    optional: Mapping[str, Any] | None = None,
) -> BaseEmailBackend:
    """Import the backend class at ``path`` and construct it with ``options``.

    Mailpost backends get ``alias`` too; a foreign (e.g. Django-native) backend class gets
    the options only, then ``alias`` is set on the instance when it allows it. ``optional``
    options are passed only to a class that takes them (compat: legacy auth arguments).
    """
    label = f"MAILERS[{alias!r}]" if alias is not None else "backend"
    cls = _import_backend(resolve_backend_path(path), alias, label)
    if optional:
        options = {**options, **{k: v for k, v in optional.items() if _accepts(cls, k)}}
    native = issubclass(cls, BaseEmailBackend)
    try:
        backend = cls(alias=alias, **options) if native else cls(**options)
    except TypeError as exc:
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is not None:
            raise  # raised inside the constructor (a bad option value): Django's TypeError
        raise InvalidMailer(
            f"{label}: BACKEND {path!r} rejected OPTIONS {sorted(options)!r}: {exc}",
            alias=alias,
        ) from exc
    if not native:
        try:
            backend.alias = alias
        except (AttributeError, TypeError):
            pass
    return backend  # type: ignore[no-any-return]


def _validated_entry(alias: str, entry: Any) -> tuple[str, dict[str, Any]]:
    """Check one ``MAILERS`` entry and return its (BACKEND path, OPTIONS)."""
    label = f"MAILERS[{alias!r}]"

    def invalid(problem: str) -> InvalidMailer:
        return InvalidMailer(f"{label}: {problem}", alias=alias)

    if isinstance(entry, str):
        entry = parse_mailer_url(entry, alias=alias)
    if not isinstance(entry, Mapping):
        raise invalid(
            "must be a dict with 'BACKEND' and optional 'OPTIONS', or a mailer URL string, "
            f"not {type(entry).__name__}"
        )
    unknown = sorted(str(k) for k in set(entry) - _ENTRY_KEYS)
    if unknown:
        raise invalid(
            f"unknown key(s) {', '.join(repr(k) for k in unknown)}; a mailer entry takes "
            "only 'BACKEND' and 'OPTIONS' (backend settings go inside 'OPTIONS')"
        )
    path = entry.get("BACKEND", _DEFAULT_BACKEND)  # compat: Django 6.1 defaults it to SMTP
    if not isinstance(path, str) or not path.strip():
        raise invalid(f"'BACKEND' must be a dotted path string, not {path!r}")
    options = entry.get("OPTIONS", {})
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise invalid(f"'OPTIONS' must be a dict, not {type(options).__name__}")
    bad_keys = [k for k in options if not isinstance(k, str)]
    if bad_keys:
        raise invalid(f"'OPTIONS' keys must be strings, got {bad_keys!r}")
    if "alias" in options:
        raise invalid("'alias' cannot be set in 'OPTIONS'; it is the MAILERS key itself")
    return path.strip(), dict(options)


class MailersHandler:
    """Dict-like access to the configured mailers; every lookup builds a new backend.

    ``mailers["alias"]`` and ``mailers.default`` return a fresh backend instance;
    ``"alias" in mailers``, ``len(mailers)``, iteration and ``mailers.get()`` work on the
    aliases defined right now.
    """

    def _definitions_or_empty(self) -> dict[str, Any]:
        return _definitions() or {}

    def _entry(self, alias: str) -> tuple[str, dict[str, Any]]:
        definitions = _definitions()
        if definitions is None:
            raise MailerDoesNotExist(
                alias=alias, detail=f"No mailers are configured. {_HOW_TO_CONFIGURE}"
            )
        if alias not in definitions:
            defined = ", ".join(repr(a) for a in sorted(definitions, key=str)) or "none"
            raise MailerDoesNotExist(
                alias=alias, detail=f"Defined aliases: {defined}. {_HOW_TO_CONFIGURE}"
            )
        return _validated_entry(alias, definitions[alias])

    def _create(
        self, alias: str, _if_accepted: Mapping[str, Any] | None = None, **extra_options: Any
    ) -> BaseEmailBackend:
        """A new backend for ``alias`` with ``extra_options`` added to its OPTIONS.

        ``_if_accepted`` options are added only when the backend class takes them. While
        mail is being captured (mailpost.testing), the entry is validated and the
        in-memory backend is returned instead.
        """
        path, options = self._entry(alias)
        warn_if_implicit_default(stacklevel=3)
        # compat: the legacy EMAIL_BACKEND is no MAILERS alias; its backend has none (Django).
        named: str | None = alias if mailers_defined() else None
        if _capture.memory_mode():  # by path, as every backend: locmem is a backend like any
            memory = _import_backend(_MEMORY_BACKEND, named, f"mailer {alias!r}")
            backend: BaseEmailBackend = memory(
                bool(extra_options.get("fail_silently")), alias=named
            )
            return backend
        options.update(extra_options)
        return build_backend(path, options, alias=named, optional=_if_accepted)

    def __getitem__(self, alias: str) -> BaseEmailBackend:
        return self._create(alias)

    @property
    def default(self) -> BaseEmailBackend:
        """A new backend for the ``"default"`` mailer."""
        return self._create("default")

    def get(self, alias: str, default: Any = None) -> Any:
        """``mailers[alias]``, or ``default`` when the alias is not defined."""
        if alias not in self:
            return default
        return self._create(alias)

    def __contains__(self, alias: object) -> bool:
        return alias in self._definitions_or_empty()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._definitions_or_empty()))

    def __len__(self) -> int:
        return len(self._definitions_or_empty())

    def keys(self) -> list[str]:
        """The aliases defined right now."""
        return list(self._definitions_or_empty())

    def __repr__(self) -> str:
        return f"<MailersHandler aliases={self.keys()!r}>"


mailers = MailersHandler()
"""The process-wide mailers mapping: ``mailers["alias"]``, ``mailers.default``."""
