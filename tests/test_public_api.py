"""The public front: every documented name importable from ``mailpost``, ``__all__`` sorted."""

from __future__ import annotations

import email.message
import importlib
import importlib.resources
import pickle
import smtplib
import socket
import warnings

import pytest

import mailpost
from mailpost import exceptions

SPEC_NAMES = {
    "send_mail",
    "send_mass_mail",
    "mail_admins",
    "mail_managers",
    "get_connection",
    "mailers",
    "EmailMessage",
    "EmailMultiAlternatives",
    "EmailAttachment",
    "EmailAlternative",
    "MailerDoesNotExist",
    "InvalidMailer",
    "make_msgid",
    "DEFAULT_ATTACHMENT_MIME_TYPE",
}


def _isort_style(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_unique() -> None:
    assert list(mailpost.__all__) == sorted(set(mailpost.__all__), key=_isort_style)


def test_every_name_in_all_is_importable() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mailpost.MailpostDeprecationWarning)
        missing = [name for name in mailpost.__all__ if not hasattr(mailpost, name)]
    assert missing == []


#: django.core.mail.__all__ in Django 6.1, deprecated names included.
DJANGO_61_ALL = {
    "InvalidMailer",
    "MailerDoesNotExist",
    "CachedDnsName",
    "DNS_NAME",
    "EmailMessage",
    "EmailMultiAlternatives",
    "DEFAULT_ATTACHMENT_MIME_TYPE",
    "make_msgid",
    "mailers",
    "get_connection",
    "send_mail",
    "send_mass_mail",
    "mail_admins",
    "mail_managers",
    "EmailAlternative",
    "EmailAttachment",
    "BadHeaderError",
    "SafeMIMEText",
    "SafeMIMEMultipart",
    "forbid_multi_line_headers",
}


def test_every_name_django_61_exports_is_exported() -> None:
    assert set(mailpost.__all__) >= DJANGO_61_ALL


def test_dns_name_cache_can_be_reset_like_djangos(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = mailpost.CachedDnsName()
    monkeypatch.setattr(socket, "getfqdn", lambda: "first.example.com")
    assert str(fresh) == "first.example.com"
    monkeypatch.setattr(socket, "getfqdn", lambda: "second.example.com")
    assert fresh.get_fqdn() == "first.example.com"  # cached
    delattr(fresh, "_fqdn")
    assert str(fresh) == "second.example.com"
    assert mailpost.DNS_NAME is mailpost.utils.DNS_NAME


@pytest.mark.parametrize("name", ["SafeMIMEText", "SafeMIMEMultipart"])
def test_deprecated_mime_classes_warn_when_read(name: str) -> None:
    with pytest.warns(mailpost.MailpostDeprecationWarning, match=f"mailpost.{name} is deprecated"):
        cls = getattr(mailpost, name)
    assert issubclass(cls, email.message.Message)


def test_safe_mime_text_rejects_header_injection_and_sends_utf8_8bit() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mailpost.MailpostDeprecationWarning)
        text = mailpost.SafeMIMEText("héllo", "plain", "utf-8")
        with pytest.raises(mailpost.BadHeaderError, match="can't contain newlines"):
            text["Subject"] = "a\nBcc: victim@example.com"
        text["Subject"] = "héllo"
    assert text["Content-Transfer-Encoding"] == "8bit"
    assert text["Subject"] == "=?utf-8?b?aMOpbGxv?="
    assert text.get_payload(decode=True) == "héllo".encode()


def test_safe_mime_text_long_utf8_lines_are_quoted_printable() -> None:
    with pytest.warns(mailpost.MailpostDeprecationWarning):
        text = mailpost.SafeMIMEText("é" * 1000, "plain", "utf-8")
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_payload(decode=True) == ("é" * 1000).encode()


def test_forbid_multi_line_headers_encodes_non_ascii_addresses() -> None:
    with pytest.warns(mailpost.MailpostDeprecationWarning):
        name, value = mailpost.forbid_multi_line_headers(
            "To", "Jö <j@exämple.com>, k@example.com", "utf-8"
        )
    assert (name, value) == ("To", "=?utf-8?b?SsO2?= <j@xn--exmple-cua.com>, k@example.com")


def test_spec_names_are_public() -> None:
    assert set(mailpost.__all__) >= SPEC_NAMES


def test_every_public_exception_is_exported() -> None:
    assert set(exceptions.__all__) <= set(mailpost.__all__)


@pytest.mark.parametrize("name", ["base", "smtp", "console", "filebased", "locmem", "dummy"])
def test_spec_backend_paths_exist(name: str) -> None:
    module = importlib.import_module(f"mailpost.backends.{name}")
    attr = "BaseEmailBackend" if name == "base" else "EmailBackend"
    assert isinstance(getattr(module, attr), type)


def test_package_is_typed() -> None:
    assert importlib.resources.files("mailpost").joinpath("py.typed").is_file()


def test_mailer_does_not_exist_is_built_from_the_alias_like_django() -> None:
    err = mailpost.MailerDoesNotExist(alias="x", detail="Defined aliases: 'default'.")
    assert isinstance(err, KeyError)
    assert isinstance(err, mailpost.InvalidMailer)
    assert str(err) == "\"The mailer 'x' is not configured.\" Defined aliases: 'default'."
    assert pickle.loads(pickle.dumps(err)).alias == "x"
    with pytest.raises(TypeError):
        mailpost.MailerDoesNotExist("text")  # type: ignore[misc]


def test_outside_django_errors_are_plain_mailpost_classes() -> None:
    """(Inside a Django project they gain Django's bases: the differential harness.)"""
    for cls in (mailpost.InvalidMailer, mailpost.ImproperlyConfigured, mailpost.BadHeaderError):
        err = cls("x")
        assert type(err) is cls
        assert not any(c.__module__.startswith("django") for c in type(err).__mro__)
        assert type(pickle.loads(pickle.dumps(err))) is cls


def test_invalid_mailer_names_the_alias_like_django() -> None:
    assert str(mailpost.InvalidMailer("bad", alias="x")) == "MAILERS['x']: bad"
    assert str(mailpost.InvalidMailer("MAILERS['x']: bad", alias="x")) == "MAILERS['x']: bad"
    assert str(mailpost.InvalidMailer("bad")) == "bad"


def test_bad_header_error_is_a_value_error_naming_the_field() -> None:
    err = mailpost.BadHeaderError("Subject: bad", field="Subject")
    assert isinstance(err, ValueError)
    assert err.field == "Subject"


def test_delivery_error_is_an_smtp_exception_that_pickles_with_its_results() -> None:
    result = mailpost.DeliveryResult(mailer="default", sent=False, error="451 try later")
    err = mailpost.DeliveryError("1 message not delivered", [result])
    assert isinstance(err, smtplib.SMTPException)
    clone = pickle.loads(pickle.dumps(err))
    assert clone.results == [result]
    assert clone.failed == [result]
