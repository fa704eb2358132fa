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
def test_fail_silently_given_directly_to_locmem_or_dummy_is_ignored_with_a_warning(
    module: Any,
) -> None:
    with pytest.warns(mailpost.MailpostDeprecationWarning) as caught:
        backend = module.EmailBackend(fail_silently=True, foo=1)
    [warning] = caught
    assert "does not support 'foo', 'fail_silently'; " in str(warning.message)
    assert warning.filename == __file__
    assert backend.fail_silently is False


def test_fail_silently_reaches_locmem_from_send_mail_without_a_warning() -> None:
    mailpost.configure(EMAIL_BACKEND="mailpost.backends.locmem.EmailBackend")
    with pytest.warns(mailpost.MailpostDeprecationWarning) as caught:  # the argument only
        assert mailpost.send_mail("S", "B", "f@example.com", ["t@example.com"], True) == 1
    assert all("does not support" not in str(w.message) for w in caught)
