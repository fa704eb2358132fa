"""BaseEmailBackend's handling of unknown keyword arguments, as in Django 6.1: a mailer's
unknown OPTIONS are a configuration error; a directly built backend ignores them with a
deprecation warning pointing at the caller's line."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import pytest

import mailpost
from mailpost.backends import console, dummy, filebased, locmem
from mailpost.backends.base import BaseEmailBackend


class CustomBackend(BaseEmailBackend):
    """A user's backend with its own constructor, passing the rest to the base class."""

    def __init__(self, *, colour: str = "blue", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.colour = colour

    def send_messages(self, email_messages: Any) -> int:
        return len(email_messages)


def built(module: Any, tmp_path: Path) -> dict[str, Any]:
    if module is filebased:
        return {"file_path": tmp_path}
    if module is console:
        return {"stream": io.StringIO()}
    return {}


@pytest.mark.parametrize("module", [locmem, dummy, console, filebased])
def test_direct_construction_ignores_unknown_arguments_with_a_warning(
    module: Any, tmp_path: Path
) -> None:
    with pytest.warns(mailpost.MailpostDeprecationWarning) as caught:
        backend = module.EmailBackend(**built(module, tmp_path), foo=1, bar=2)
    [warning] = caught
    assert str(warning.message).startswith(
        f"{module.__name__}.EmailBackend.__init__() does not support 'foo', 'bar'; "
    )
    assert warning.filename == __file__  # the caller's line, past every __init__
    assert not hasattr(backend, "foo")
    assert backend.alias is None


def test_a_subclass_constructor_still_warns_at_the_callers_line() -> None:
    with pytest.warns(mailpost.MailpostDeprecationWarning, match=r"does not support 'size'") as c:
        backend = CustomBackend(colour="red", size=3)
    assert c[0].filename == __file__
    assert f"{__name__}.CustomBackend.__init__()" in str(c[0].message)
    assert backend.colour == "red"


def test_known_arguments_do_not_warn(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        filebased.EmailBackend(file_path=tmp_path, fail_silently=True)
        CustomBackend(colour="green")


def test_a_mailers_unknown_options_are_an_error_naming_them_and_the_accepted_ones() -> None:
    mailpost.configure(
        MAILERS={"custom": {"BACKEND": f"{__name__}.CustomBackend", "OPTIONS": {"color": "x"}}}
    )
    with pytest.raises(mailpost.InvalidMailer) as info:
        mailpost.mailers["custom"]
    assert str(info.value) == (
        f"MAILERS['custom']: Unknown options 'color'. ({__name__}.CustomBackend accepts "
        "OPTIONS: colour)"
    )
    assert info.value.alias == "custom"


@pytest.mark.parametrize("module", [locmem, dummy])
def test_fail_silently_given_directly_to_locmem_or_dummy_is_warned_about_and_kept(
    module: Any,
) -> None:
    with pytest.warns(mailpost.MailpostDeprecationWarning) as caught:
        backend = module.EmailBackend(fail_silently=True, foo=1)
    [warning] = caught
    assert "does not support 'foo', 'fail_silently'; " in str(warning.message)
    assert warning.filename == __file__
    assert backend._fail_silently is True  # kept, as Django 6.1 keeps it


@pytest.mark.parametrize("module", [locmem, dummy])
@pytest.mark.parametrize("value", [True, False])
def test_fail_silently_in_options_of_locmem_or_dummy_is_an_unknown_option(
    module: Any, value: bool
) -> None:
    mailpost.configure(
        MAILERS={
            "m": {"BACKEND": f"{module.__name__}.EmailBackend", "OPTIONS": {"fail_silently": value}}
        }
    )
    with pytest.raises(mailpost.InvalidMailer) as info:
        mailpost.mailers["m"]
    assert str(info.value) == (
        f"MAILERS['m']: Unknown options 'fail_silently'. ({module.__name__}.EmailBackend "
        "accepts OPTIONS: none)"
    )


def test_fail_silently_in_options_of_console_and_file_is_an_option(tmp_path: Path) -> None:
    mailpost.configure(
        MAILERS={
            "c": {"BACKEND": "mailpost.backends.console.EmailBackend",
                  "OPTIONS": {"fail_silently": True}},
            "f": {"BACKEND": "mailpost.backends.filebased.EmailBackend",
                  "OPTIONS": {"fail_silently": True, "file_path": tmp_path}},
        }
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mailpost.mailers["c"].fail_silently is True
        assert mailpost.mailers["f"].fail_silently is True


@pytest.mark.parametrize("module", [locmem, dummy])
def test_reading_fail_silently_of_locmem_or_dummy_is_deprecated(module: Any) -> None:
    backend = module.EmailBackend()
    with pytest.warns(
        mailpost.MailpostDeprecationWarning, match=r"fail_silently is deprecated"
    ) as c:
        assert backend.fail_silently is False
    assert c[0].filename == __file__


def test_fail_silently_assigned_on_locmem_is_read_without_a_warning() -> None:
    backend = locmem.EmailBackend()
    backend.fail_silently = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backend.fail_silently is True


@pytest.mark.parametrize("module", [console, filebased])
def test_reading_fail_silently_of_backends_taking_it_does_not_warn(
    module: Any, tmp_path: Path
) -> None:
    backend = module.EmailBackend(**built(module, tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backend.fail_silently is False


def test_fail_silently_named_in_djangos_ignore_unknown_kwargs_is_accepted() -> None:
    """Django 6.1's mailers handler builds MAILERS["default"] for get_connection(**kw) with
    ``_ignore_unknown_kwargs`` naming the caller's keywords; mailpost's backends honour it."""
    mailpost.configure(MAILERS={"default": {"BACKEND": "mailpost.backends.locmem.EmailBackend"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend = locmem.EmailBackend(
            alias="default",
            fail_silently=True,
            foo=1,
            _ignore_unknown_kwargs={"fail_silently", "foo"},
        )
    assert backend._fail_silently is True
    assert not hasattr(backend, "foo")


def test_get_connection_passes_fail_silently_to_locmem_under_mailers() -> None:
    mailpost.configure(MAILERS={"default": {"BACKEND": "mailpost.backends.locmem.EmailBackend"}})
    with pytest.warns(mailpost.MailpostDeprecationWarning, match="get_connection"):
        backend = mailpost.get_connection(fail_silently=True)
    with pytest.warns(mailpost.MailpostDeprecationWarning, match="fail_silently is deprecated"):
        assert backend.fail_silently is True


def test_capture_gives_locmem_for_every_mailer_with_or_without_fail_silently() -> None:
    from mailpost.testing import capture

    mailpost.configure(MAILERS={"default": {"BACKEND": "mailpost.backends.dummy.EmailBackend"}})
    with capture() as outbox:
        assert (
            mailpost.mailers["default"].send_messages(
                [mailpost.EmailMessage("S", "B", "f@example.com", ["t@example.com"])]
            )
            == 1
        )
        with pytest.warns(mailpost.MailpostDeprecationWarning):
            assert (
                mailpost.send_mail("S", "B", "f@example.com", ["t@example.com"], fail_silently=True)
                == 1
            )
    assert len(outbox) == 2


def test_fail_silently_reaches_locmem_from_send_mail_without_a_warning() -> None:
    mailpost.configure(EMAIL_BACKEND="mailpost.backends.locmem.EmailBackend")
    with pytest.warns(mailpost.MailpostDeprecationWarning) as caught:  # the argument only
        assert mailpost.send_mail("S", "B", "f@example.com", ["t@example.com"], True) == 1
    assert all("does not support" not in str(w.message) for w in caught)
