"""The bridge to Django: the only module that looks for Django.

mailpost never imports Django on its own. Everything here first checks ``sys.modules``, so
a program that does not use Django pays nothing and sees plain mailpost behaviour. Inside a
Django project (``django.conf`` imported and settings configured, or
``DJANGO_SETTINGS_MODULE`` set) this module supplies:

* the settings holder mailpost reads (:func:`settings_holder`), and the in-memory
  ``MAILERS`` a Django < 6.1 test run needs (:func:`test_mailers`);
* Django's test outbox (:func:`outbox`) and lazy-string conversion (:func:`plain`);
* Django's exception classes as extra bases of mailpost's (:func:`flavoured`);
* Django's deprecation category and texts (:func:`deprecated`).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Mapping
from types import ModuleType
from typing import Any

__all__ = [
    "deprecated",
    "flavoured",
    "in_project",
    "outbox",
    "plain",
    "settings_holder",
    "test_mailers",
    "version",
]


def in_project() -> bool:
    """Whether this process runs a Django project (settings configured or named)."""
    conf = sys.modules.get("django.conf")
    if conf is None:
        return False
    try:
        if conf.settings.configured:
            return True
    except Exception:  # a half-imported django.conf
        return False
    return bool(os.environ.get("DJANGO_SETTINGS_MODULE"))


def version() -> tuple[int, int] | None:
    """The running project's Django release as ``(major, minor)``; None outside a project
    (or when the installed Django does not say)."""
    if not in_project():
        return None
    release = getattr(sys.modules.get("django"), "VERSION", None)
    try:
        major, minor = int(release[0]), int(release[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    return major, minor


def settings_holder() -> Any | None:
    """The object behind ``django.conf.settings`` when a Django project is configured.

    Read fresh on every call so ``override_settings`` applies. Reading ``_wrapped`` rather
    than going through ``LazySettings.__getattr__`` keeps Django 6.1+ from warning that *the
    project* uses the deprecated ``EMAIL_*`` settings when only mailpost's compatibility
    layer reads them.
    """
    if "django.conf" not in sys.modules:
        return None
    try:
        from django.conf import settings as dj

        if not dj.configured:
            if not os.environ.get("DJANGO_SETTINGS_MODULE"):
                return None
            dj._setup()
        return dj._wrapped
    except Exception:  # a settings module that fails to import is Django's error to report
        return None


def left_at_default(wrapped: Any, name: str) -> bool:
    """Whether Django setting ``name`` is only Django's global default (the project's
    settings and ``override_settings`` do not set it)."""
    is_overridden = getattr(wrapped, "is_overridden", None)
    if is_overridden is None:
        return False
    try:
        return not is_overridden(name)
    except Exception:
        return False


def test_mailers(wrapped: Any) -> dict[str, Any] | None:
    """In-memory entries for the project's ``MAILERS`` during a Django < 6.1 test run.

    Django 6.1's test runner swaps ``MAILERS`` for in-memory mailers itself; older Django
    only switches ``EMAIL_BACKEND`` (``MAILERS`` is not their setting). This does the same
    for them: only while Django's test environment is set up (``manage.py test``,
    pytest-django), and only for the project's own ``MAILERS`` — a test that overrides
    ``MAILERS`` (``override_settings``) gets exactly what it set, as on 6.1.
    """
    mail = sys.modules.get("django.core.mail")
    if mail is None or hasattr(mail, "mailers"):
        return None
    state = getattr(sys.modules.get("django.test.utils"), "_TestState", None)
    if state is None or not hasattr(state, "saved_data"):
        return None
    holder = wrapped
    while True:  # override_settings layers sit above the project's settings module
        below = getattr(holder, "__dict__", {}).get("default_settings")
        if below is None or isinstance(below, ModuleType):
            break
        if "MAILERS" in holder.__dict__:
            return None
        holder = below
    mailers = getattr(wrapped, "MAILERS", None)
    if not isinstance(mailers, Mapping):
        return None
    return {alias: {"BACKEND": "mailpost.backends.locmem.EmailBackend"} for alias in mailers}


def plain(value: Any) -> Any:
    """A Django lazy string (``gettext_lazy``) as ``str``; anything else unchanged."""
    functional = sys.modules.get("django.utils.functional")
    if functional is not None and isinstance(value, functional.Promise):
        return str(value)
    return value


def outbox() -> list[Any] | None:
    """``django.core.mail.outbox`` when a Django test run has set it up, else None."""
    mail = sys.modules.get("django.core.mail")
    box = getattr(mail, "outbox", None) if mail is not None else None
    return box if isinstance(box, list) else None


# -- exceptions ------------------------------------------------------------------------------

#: mailpost exception class name -> the Django classes it should also be, best first
#: (a module path and a name; the first one that imports wins).
_DJANGO_BASES: dict[str, tuple[tuple[str, str], ...]] = {
    "ImproperlyConfigured": (("django.core.exceptions", "ImproperlyConfigured"),),
    "InvalidMailer": (
        ("django.core.mail.exceptions", "InvalidMailer"),
        ("django.core.exceptions", "ImproperlyConfigured"),
    ),
    "MailerDoesNotExist": (
        ("django.core.mail.exceptions", "MailerDoesNotExist"),
        ("django.core.exceptions", "ImproperlyConfigured"),
    ),
    "BadHeaderError": (("django.core.mail.message", "BadHeaderError"),),
}

_flavoured: dict[type, type] = {}
_flavour_lock = threading.Lock()


def _django_base(name: str) -> type | None:
    for module_name, attr in _DJANGO_BASES.get(name, ()):
        module = sys.modules.get(module_name)
        if module is None:
            try:
                module = __import__(module_name, fromlist=[attr])
            except Exception:
                continue
        base = getattr(module, attr, None)
        if isinstance(base, type):
            return base
    return None


def flavoured(cls: type) -> type:
    """``cls``, or inside a Django project a subclass of ``cls`` that is also Django's class.

    ``except`` matches on real base classes only, so an ``except ImproperlyConfigured``
    (Django's) in a project can catch mailpost's error only if the raised object's class
    derives from it. mailpost's classes are defined without Django (importing mailpost
    must not import Django); when one is instantiated inside a Django project, its
    ``__new__`` asks for this subclass instead: same name and module, bases
    ``(cls, DjangoClass)``. So ``except mailpost.InvalidMailer`` and
    ``except django.core.exceptions.ImproperlyConfigured`` both catch it.
    """
    if not in_project():
        return cls
    with _flavour_lock:
        known = _flavoured.get(cls)
        if known is not None:
            return known
    names = [c.__name__ for c in cls.__mro__ if c.__module__.startswith("mailpost")]
    base = next((b for b in map(_django_base, names) if b is not None), None)
    if base is None or issubclass(cls, base):
        result = cls
    else:
        result = type(
            cls.__name__,
            (cls, base),
            {
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__doc__": cls.__doc__,
                "_mailpost_flavoured": True,
            },
        )
    with _flavour_lock:
        return _flavoured.setdefault(cls, result)


# -- deprecation warnings --------------------------------------------------------------------


def _django_category() -> type[Warning] | None:
    deprecation = sys.modules.get("django.utils.deprecation")
    category = getattr(deprecation, "RemovedInDjango2028Warning", None)
    return category if isinstance(category, type) and issubclass(category, Warning) else None


_categories: dict[type, type[Warning]] = {}


def deprecation_category() -> type[Warning]:
    """The category of mailpost's deprecation warnings here.

    Inside a Django project whose Django deprecates the same things (6.1's
    ``RemovedInDjango2028Warning``), a subclass of both that and
    :class:`~mailpost.MailpostDeprecationWarning`, so the project's ``-W error::...`` and
    ``ignore_warnings(category=...)`` filters and mailpost's own both apply. Elsewhere,
    ``MailpostDeprecationWarning``.
    """
    from mailpost._deprecation import MailpostDeprecationWarning

    django_category = _django_category() if in_project() else None
    if django_category is None:
        return MailpostDeprecationWarning
    known = _categories.get(django_category)
    if known is None:
        known = _categories.setdefault(
            django_category,
            type(
                django_category.__name__,
                (MailpostDeprecationWarning, django_category),
                {"__module__": "mailpost.exceptions", "__qualname__": django_category.__name__},
            ),
        )
    return known


#: The Django release that deprecated most of what ``django.core.mail`` deprecates
#: (positional arguments, ``(name, address)`` pairs, MIMEBase attachments, the MIME classes).
DJANGO_6_0 = (6, 0)
#: The release of mailers: the ``fail_silently``/``auth_*``/``connection`` arguments,
#: ``get_connection()``, directly built backends.
DJANGO_6_1 = (6, 1)


def deprecated(
    mailpost_text: str | None,
    django_text: str | None,
    *,
    stacklevel: int,
    since: tuple[int, int] = DJANGO_6_0,
) -> None:
    """Warn that a deprecated path was used.

    Inside a Django project whose Django deprecates the same thing (release ``since`` or
    later), Django's text in Django's category; elsewhere, a Django 6.0 project for what
    only 6.1 deprecates included, mailpost's text in ``MailpostDeprecationWarning``. A None
    text means that side does not warn about it (Django does not, or mailpost's use is
    internal).
    """
    from mailpost._deprecation import MailpostDeprecationWarning

    release = version()
    if release is not None and release < since:
        category: type[Warning] = MailpostDeprecationWarning
    else:
        category = deprecation_category()

    text = mailpost_text if category is MailpostDeprecationWarning else django_text
    if text is not None:
        warnings.warn(text, category, stacklevel=stacklevel + 1)


def in_django_mode() -> bool:
    """Whether mailpost speaks Django's dialect here (Django 6.1+ project): its warning
    texts and the checks Django makes that mailpost otherwise makes differently."""
    if not in_project() or _django_category() is None:
        return False
    release = version()
    return release is None or release >= DJANGO_6_1
