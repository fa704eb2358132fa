"""The mailers mapping: alias -> a new configured backend, validated at lookup."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import mailpost
from mailpost import InvalidMailer, MailerDoesNotExist, mailers
from mailpost.backends.base import BaseEmailBackend
from mailpost.backends.console import ConsoleBackend
from mailpost.backends.dummy import DummyBackend
from mailpost.backends.filebased import FileBackend
from mailpost.backends.locmem import LocmemBackend
from mailpost.backends.smtp import SMTPBackend
from mailpost.exceptions import MissingDependency
from mailpost.handler import legacy_options

HERE = __name__


class CustomBackend(BaseEmailBackend):
    """A custom mailpost backend with its own option."""

    def __init__(self, *, api_key: str = "", region: str = "us", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.region = region

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        return len(email_messages)


class ForeignBackend:
    """A backend written against Django's API: takes **kwargs, knows nothing of alias."""

    def __init__(self, fail_silently: bool = False, **kwargs: Any) -> None:
        self.fail_silently = fail_silently
        self.kwargs = kwargs

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        return len(email_messages)


class SlottedForeignBackend:
    """A foreign backend that cannot take new attributes."""

    __slots__ = ("token",)

    def __init__(self, token: str = "") -> None:
        self.token = token

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        return len(email_messages)


class StrictForeignBackend:
    def __init__(self, token: str = "") -> None:
        self.token = token

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        return len(email_messages)


class NotABackend:
    pass


def configure(**entries: Any) -> None:
    mailpost.configure(MAILERS=entries)


def test_lookup_builds_the_configured_backend_with_its_options() -> None:
    configure(api={"BACKEND": f"{HERE}.CustomBackend", "OPTIONS": {"api_key": "k", "region": "eu"}})
    backend = mailers["api"]
    assert isinstance(backend, CustomBackend)
    assert (backend.api_key, backend.region, backend.alias) == ("k", "eu", "api")


def test_every_lookup_returns_a_new_instance() -> None:
    configure(default={"BACKEND": "mailpost.backends.locmem.EmailBackend"})
    assert mailers["default"] is not mailers["default"]
    assert mailers.default is not mailers.default


def test_default_is_the_default_alias() -> None:
    configure(default={"BACKEND": "mailpost.backends.dummy.EmailBackend"},
              other={"BACKEND": "mailpost.backends.locmem.EmailBackend"})  # fmt: skip
    backend = mailers.default
    assert isinstance(backend, DummyBackend)
    assert backend.alias == "default"


def test_options_may_be_omitted() -> None:
    configure(x={"BACKEND": "mailpost.backends.locmem.EmailBackend"})
    assert isinstance(mailers["x"], LocmemBackend)


def test_url_string_entry_builds_its_backend() -> None:
    configure(default="console://?fail_silently=true")
    backend = mailers.default
    assert isinstance(backend, ConsoleBackend)
    assert backend.fail_silently is True


def test_file_url_entry_builds_a_file_backend(tmp_path: Path) -> None:
    configure(files=f"file://{tmp_path}/out")
    backend = mailers["files"]
    assert isinstance(backend, FileBackend)
    assert backend.file_path == str(tmp_path / "out")


@pytest.mark.parametrize(
    ("django_path", "cls"),
    [
        ("django.core.mail.backends.console.EmailBackend", ConsoleBackend),
        ("django.core.mail.backends.locmem.EmailBackend", LocmemBackend),
        ("django.core.mail.backends.dummy.EmailBackend", DummyBackend),
    ],
)
def test_django_backend_paths_map_to_mailpost_backends(django_path: str, cls: type) -> None:
    configure(default={"BACKEND": django_path})
    assert type(mailers.default) is cls


def test_membership_iteration_and_length_follow_the_configured_aliases() -> None:
    configure(default="dummy://", bulk="locmem://")
    assert "default" in mailers
    assert "bulk" in mailers
    assert "missing" not in mailers
    assert sorted(mailers) == ["bulk", "default"]
    assert len(mailers) == 2


def test_no_configuration_means_no_aliases() -> None:
    assert len(mailers) == 0
    assert list(mailers) == []
    assert "default" not in mailers


def test_get_returns_backend_or_default() -> None:
    configure(default="dummy://")
    assert isinstance(mailers.get("default"), DummyBackend)
    assert mailers.get("missing") is None
    sentinel = object()
    assert mailers.get("missing", sentinel) is sentinel


def test_get_still_raises_for_an_invalid_entry() -> None:
    configure(default={"OPTIONS": {}})
    with pytest.raises(InvalidMailer):
        mailers.get("default")


def test_settings_are_read_live_on_every_lookup() -> None:
    configure(default="dummy://")
    assert isinstance(mailers.default, DummyBackend)
    configure(default="locmem://")
    assert isinstance(mailers.default, LocmemBackend)
    mailpost.configure()
    with pytest.raises(MailerDoesNotExist):
        _ = mailers.default


def test_unknown_alias_raises_mailer_does_not_exist_listing_the_defined_ones() -> None:
    configure(default="dummy://", bulk="dummy://")
    with pytest.raises(MailerDoesNotExist) as info:
        mailers["notifications"]
    message = str(info.value)
    assert message.startswith("\"The mailer 'notifications' is not configured.\" Defined aliases")
    assert "'bulk', 'default'" in message
    assert info.value.alias == "notifications"


def test_mailer_does_not_exist_is_a_key_error() -> None:
    configure(default="dummy://")
    with pytest.raises(KeyError):
        mailers["nope"]


def test_no_mailers_configured_raises_and_says_how_to_configure() -> None:
    with pytest.raises(MailerDoesNotExist) as info:
        _ = mailers.default
    message = str(info.value)
    assert "No mailers are configured" in message
    assert "mailpost.configure(MAILERS=" in message
    assert "MAILPOST_MAILERS" in message
    assert "Django's MAILERS setting" in message


def test_empty_mailers_setting_has_no_default() -> None:
    mailpost.configure(MAILERS={})
    with pytest.raises(MailerDoesNotExist, match="Defined aliases: none"):
        _ = mailers.default


def invalid_message(**entries: Any) -> str:
    configure(**entries)
    alias = next(iter(entries))
    with pytest.raises(InvalidMailer) as info:
        mailers[alias]
    assert info.value.alias == alias
    message = str(info.value)
    assert message.startswith(f"MAILERS[{alias!r}]: "), message
    return message


def test_missing_backend_is_invalid() -> None:
    assert "'BACKEND' must be a dotted path string" in invalid_message(main={"BACKEND": ""})


def test_unknown_entry_keys_are_invalid_and_named() -> None:
    message = invalid_message(main={"BACKEND": "mailpost.backends.dummy.EmailBackend", "HOST": "x"})
    assert "'HOST'" in message


def test_options_that_are_not_a_dict_are_invalid() -> None:
    message = invalid_message(main={"BACKEND": "mailpost.backends.dummy.EmailBackend",
                                    "OPTIONS": ["host"]})  # fmt: skip
    assert "'OPTIONS' must be a dict, not list" in message


def test_alias_inside_options_is_invalid() -> None:
    message = invalid_message(main={"BACKEND": "mailpost.backends.dummy.EmailBackend",
                                    "OPTIONS": {"alias": "other"}})  # fmt: skip
    assert "'alias' cannot be set in 'OPTIONS'" in message


def test_backend_path_that_does_not_import_names_path_and_cause() -> None:
    message = invalid_message(main={"BACKEND": "no_such_package.mail.EmailBackend"})
    assert "'no_such_package.mail.EmailBackend'" in message
    assert "No module named 'no_such_package'" in message


def test_backend_class_missing_from_module_is_invalid() -> None:
    message = invalid_message(main={"BACKEND": "mailpost.backends.console.NoSuchBackend"})
    assert 'does not define a "NoSuchBackend" attribute/class' in message


def test_backend_path_without_dots_is_invalid() -> None:
    assert "doesn't look like a module path" in invalid_message(main={"BACKEND": "console"})


def test_class_that_is_not_a_backend_is_invalid() -> None:
    message = invalid_message(main={"BACKEND": f"{HERE}.NotABackend"})
    assert "is not an email backend class" in message


def test_backend_that_is_not_a_class_is_invalid() -> None:
    assert "is not an email backend class" in invalid_message(main={"BACKEND": f"{HERE}.HERE"})


def test_unknown_options_are_invalid_and_named() -> None:
    message = invalid_message(main={"BACKEND": "mailpost.backends.console.EmailBackend",
                                    "OPTIONS": {"colour": "red", "stream": None}})  # fmt: skip
    assert "'colour'" in message
    assert "'stream'" not in message


def test_entry_of_the_wrong_type_is_invalid() -> None:
    assert "not int" in invalid_message(main=42)


def test_bad_url_entry_is_invalid() -> None:
    assert "'ftp'" in invalid_message(main="ftp://example.com")


def test_invalid_entry_does_not_break_other_aliases() -> None:
    configure(good="dummy://", bad={"BACKEND": "nope.Nope"})
    assert isinstance(mailers["good"], DummyBackend)
    with pytest.raises(InvalidMailer):
        mailers["bad"]


def test_foreign_backend_gets_options_only_then_the_alias() -> None:
    configure(ext={"BACKEND": f"{HERE}.ForeignBackend", "OPTIONS": {"api_key": "k"}})
    backend = mailers["ext"]
    assert isinstance(backend, ForeignBackend)
    assert backend.kwargs == {"api_key": "k"}
    assert backend.alias == "ext"  # type: ignore[attr-defined]


def test_foreign_backend_that_refuses_attributes_still_works() -> None:
    configure(ext={"BACKEND": f"{HERE}.SlottedForeignBackend", "OPTIONS": {"token": "t"}})
    backend = mailers["ext"]
    assert isinstance(backend, SlottedForeignBackend)
    assert backend.token == "t"


def test_foreign_backend_rejecting_options_is_invalid_and_named() -> None:
    message = invalid_message(ext={"BACKEND": f"{HERE}.StrictForeignBackend",
                                   "OPTIONS": {"tokn": "t"}})  # fmt: skip
    assert "rejected OPTIONS" in message
    assert "tokn" in message


def test_missing_dependency_of_a_backend_module_is_raised_as_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "needs_extra.py").write_text(
        "from mailpost.exceptions import MissingDependency\n"
        "raise MissingDependency('pip install \"mailpost[extra]\"')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    configure(main={"BACKEND": "needs_extra.EmailBackend"})
    with pytest.raises(MissingDependency, match=r"mailpost\[extra\]"):
        mailers["main"]


# -- compat: legacy EMAIL_BACKEND when MAILERS is undefined -------------------------------


def test_legacy_email_backend_builds_the_default_mailer_without_warning() -> None:
    mailpost.configure(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    backend = mailers.default
    assert isinstance(backend, LocmemBackend)
    assert backend.alias is None  # as in Django: the legacy backend is no MAILERS alias
    assert list(mailers) == ["default"]  # listed, so checks and the CLI see it


def test_legacy_email_backend_provides_only_the_default_alias() -> None:
    mailpost.configure(EMAIL_BACKEND="mailpost.backends.dummy.EmailBackend")
    with pytest.raises(MailerDoesNotExist):
        mailers["bulk"]


def test_legacy_file_backend_takes_email_file_path(tmp_path: Path) -> None:
    mailpost.configure(
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(tmp_path),
    )
    backend = mailers.default
    assert isinstance(backend, FileBackend)
    assert backend.file_path == str(tmp_path)


def test_legacy_smtp_settings_map_to_smtp_options() -> None:
    mailpost.configure(
        EMAIL_HOST="mail.example.com",
        EMAIL_PORT=2525,
        EMAIL_HOST_USER="u",
        EMAIL_HOST_PASSWORD="p",
        EMAIL_USE_TLS=True,
        EMAIL_TIMEOUT=5,
        EMAIL_SSL_CERTFILE="/c.pem",
    )
    assert legacy_options("django.core.mail.backends.smtp.EmailBackend") == {
        "host": "mail.example.com",
        "port": 2525,
        "username": "u",
        "password": "p",
        "use_tls": True,
        "ssl_certfile": "/c.pem",
        "timeout": 5,
    }


def test_legacy_smtp_settings_left_unset_are_not_passed() -> None:
    assert legacy_options("mailpost.backends.smtp.EmailBackend") == {}


def test_legacy_smtp_email_backend_builds_the_default_smtp_mailer() -> None:
    mailpost.configure(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="mail.example.com",
        EMAIL_PORT=2525,
        EMAIL_USE_TLS=1,  # old settings files use 0/1
    )
    backend = mailers.default
    assert isinstance(backend, SMTPBackend)
    assert (backend.host, backend.port, backend.use_tls) == ("mail.example.com", 2525, True)
    assert backend.alias is None


def test_legacy_smtp_defaults_are_localhost_port_25() -> None:
    mailpost.configure(EMAIL_BACKEND="mailpost.backends.smtp.EmailBackend", EMAIL_USE_TLS=True)
    backend = mailers.default
    assert isinstance(backend, SMTPBackend)
    assert (backend.host, backend.port) == ("localhost", 25)


def test_legacy_settings_are_ignored_once_mailers_is_defined() -> None:
    mailpost.configure(MAILERS={"default": "dummy://"},
                       EMAIL_BACKEND="mailpost.backends.locmem.EmailBackend")  # fmt: skip
    assert isinstance(mailers.default, DummyBackend)


def test_legacy_email_backend_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_EMAIL_BACKEND", "mailpost.backends.locmem.EmailBackend")
    assert isinstance(mailers.default, LocmemBackend)
