"""Settings: configure(), then the MAILPOST_* environment, then the defaults; read live."""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import pytest

import mailpost
from mailpost import ImproperlyConfigured, mailers
from mailpost._config import is_defined, settings
from mailpost.backends.console import ConsoleBackend
from mailpost.backends.dummy import DummyBackend
from mailpost.backends.locmem import LocmemBackend


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("DEFAULT_FROM_EMAIL", "webmaster@localhost"),
        ("SERVER_EMAIL", "root@localhost"),
        ("EMAIL_SUBJECT_PREFIX", ""),
        ("DEFAULT_CHARSET", "utf-8"),
        ("ADMINS", []),
        ("MANAGERS", []),
        ("EMAIL_USE_LOCALTIME", False),
        ("MAILERS", None),
    ],
)
def test_standalone_defaults(name: str, default: object) -> None:
    assert getattr(settings, name) == default
    assert not is_defined(name)


def test_configure_sets_values_and_marks_them_defined() -> None:
    mailpost.configure(DEFAULT_FROM_EMAIL="app@example.com")
    assert settings.DEFAULT_FROM_EMAIL == "app@example.com"
    assert is_defined("DEFAULT_FROM_EMAIL")


def test_configure_replaces_the_previous_configure() -> None:
    mailpost.configure(DEFAULT_FROM_EMAIL="one@example.com", SERVER_EMAIL="s@example.com")
    mailpost.configure(DEFAULT_FROM_EMAIL="two@example.com")
    assert settings.DEFAULT_FROM_EMAIL == "two@example.com"
    assert settings.SERVER_EMAIL == "root@localhost"


def test_configure_rejects_unknown_settings_by_name() -> None:
    with pytest.raises(ImproperlyConfigured, match="EMAIL_HOSTNAME"):
        mailpost.configure(EMAIL_HOSTNAME="x")


def test_configure_rejects_mailers_that_is_not_a_dict() -> None:
    with pytest.raises(ImproperlyConfigured, match="MAILERS must be a dict"):
        mailpost.configure(MAILERS=["smtp://localhost"])


def test_environment_variable_sets_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_DEFAULT_FROM_EMAIL", "env@example.com")
    assert settings.DEFAULT_FROM_EMAIL == "env@example.com"


def test_configure_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_DEFAULT_FROM_EMAIL", "env@example.com")
    mailpost.configure(DEFAULT_FROM_EMAIL="explicit@example.com")
    assert settings.DEFAULT_FROM_EMAIL == "explicit@example.com"


def test_environment_fills_settings_configure_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_SERVER_EMAIL", "env@example.com")
    mailpost.configure(DEFAULT_FROM_EMAIL="explicit@example.com")
    assert settings.SERVER_EMAIL == "env@example.com"


def test_environment_is_read_live(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.EMAIL_SUBJECT_PREFIX == ""
    monkeypatch.setenv("MAILPOST_EMAIL_SUBJECT_PREFIX", "[app] ")
    assert settings.EMAIL_SUBJECT_PREFIX == "[app] "


def test_mailers_from_environment_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "MAILPOST_MAILERS",
        '{"default": {"BACKEND": "mailpost.backends.locmem.EmailBackend"}, "dev": "console://"}',
    )
    assert isinstance(mailers.default, LocmemBackend)
    assert isinstance(mailers["dev"], ConsoleBackend)
    assert sorted(mailers) == ["default", "dev"]


def test_invalid_mailers_json_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_MAILERS", "{not json")
    with pytest.raises(ImproperlyConfigured, match="MAILPOST_MAILERS: not valid JSON"):
        _ = mailers.default


def test_mailers_json_that_is_not_an_object_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_MAILERS", '["smtp://localhost"]')
    with pytest.raises(ImproperlyConfigured, match="MAILERS must be a dict"):
        _ = mailers.default


def test_configured_mailers_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_MAILERS", '{"default": "locmem://"}')
    mailpost.configure(MAILERS={"default": "dummy://"})
    assert isinstance(mailers.default, DummyBackend)


def test_admins_from_environment_as_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_ADMINS", "a@example.com, b@example.com")
    assert settings.ADMINS == ["a@example.com", "b@example.com"]


def test_admins_from_environment_as_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_ADMINS", '["Ann <a@example.com>"]')
    assert settings.ADMINS == ["Ann <a@example.com>"]


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("1", True), ("no", False)])
def test_boolean_settings_from_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, value: bool
) -> None:
    monkeypatch.setenv("MAILPOST_EMAIL_USE_LOCALTIME", raw)
    assert settings.EMAIL_USE_LOCALTIME is value


def test_bad_boolean_in_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_EMAIL_USE_LOCALTIME", "sometimes")
    with pytest.raises(ImproperlyConfigured, match="MAILPOST_EMAIL_USE_LOCALTIME"):
        _ = settings.EMAIL_USE_LOCALTIME


def test_unknown_setting_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="EMAIL_HOSTNAME"):
        _ = settings.EMAIL_HOSTNAME


def test_default_from_email_is_used_for_messages_without_a_sender() -> None:
    mailpost.configure(DEFAULT_FROM_EMAIL="noreply@example.com", MAILERS={"default": "locmem://"})
    mailpost.send_mail("Hi", "Body", None, ["to@example.com"])
    assert mailpost.outbox[0].from_email == "noreply@example.com"


# -- the Django bridge, outside Django ----------------------------------------------------


def test_outside_django_the_bridge_changes_nothing() -> None:
    """This suite never configures Django in-process (the differential harness does, in a
    subprocess), so the bridge must report plain mailpost behaviour."""
    from mailpost import _django

    assert not _django.in_project()
    assert _django.settings_holder() is None
    assert _django.outbox() is None
    assert _django.deprecation_category() is mailpost.MailpostDeprecationWarning
    assert _django.flavoured(mailpost.InvalidMailer) is mailpost.InvalidMailer
    assert _django.plain("text") == "text"


def test_outside_django_deprecations_are_mailpost_warnings() -> None:
    from mailpost import _django

    with pytest.warns(mailpost.MailpostDeprecationWarning, match="mailpost's text"):
        _django.deprecated("mailpost's text", "Django's text", stacklevel=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _django.deprecated(None, "only Django warns about this", stacklevel=1)


@pytest.fixture
def stand_in_django(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A configured Django project of a chosen release, as far as mailpost looks at one
    (``django.VERSION``, ``django.conf.settings.configured``, the 2028 warning category)."""
    import types

    class RemovedInDjango2028Warning(PendingDeprecationWarning):
        pass

    deprecation = types.ModuleType("django.utils.deprecation")
    deprecation.RemovedInDjango2028Warning = RemovedInDjango2028Warning  # type: ignore[attr-defined]
    conf = types.ModuleType("django.conf")
    conf.settings = types.SimpleNamespace(configured=True)  # type: ignore[attr-defined]
    django = types.ModuleType("django")
    monkeypatch.setitem(sys.modules, "django", django)
    monkeypatch.setitem(sys.modules, "django.conf", conf)
    monkeypatch.setitem(sys.modules, "django.utils.deprecation", deprecation)

    def release(major: int, minor: int) -> type[Warning]:
        django.VERSION = (major, minor, 0, "final", 0)  # type: ignore[attr-defined]
        return RemovedInDjango2028Warning

    return release


@pytest.mark.parametrize(("major", "minor"), [(6, 0), (6, 1)])
def test_deprecations_use_djangos_category_from_the_release_that_deprecates_them(
    stand_in_django: Any, major: int, minor: int
) -> None:
    """Django 6.0 deprecated positional arguments, pairs, MIME classes; 6.1 the mailers
    era's arguments. On 6.0, what only 6.1 deprecates is mailpost's own warning (as on
    4.2 / 5.2), so a project's Django-category filters see exactly what its Django emits."""
    from mailpost import _django

    category = stand_in_django(major, minor)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _django.deprecated("mailpost 6.0", "Django 6.0", stacklevel=1)
        _django.deprecated("mailpost 6.1", "Django 6.1", stacklevel=1, since=_django.DJANGO_6_1)
        _django.deprecated(None, "Django 6.1 only", stacklevel=1, since=_django.DJANGO_6_1)
    got = [(issubclass(w.category, category), str(w.message)) for w in caught]
    if (major, minor) >= (6, 1):
        assert got == [(True, "Django 6.0"), (True, "Django 6.1"), (True, "Django 6.1 only")]
        assert _django.in_django_mode()
    else:
        assert got == [(True, "Django 6.0"), (False, "mailpost 6.1")]
        assert all(issubclass(w.category, mailpost.MailpostDeprecationWarning) for w in caught)
        assert not _django.in_django_mode()


def test_importing_mailpost_does_not_import_django() -> None:
    code = "import sys, mailpost; mailpost.send_mail; print('django' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
