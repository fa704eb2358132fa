"""Mailer URLs: one string per MAILERS entry, parsed into BACKEND + typed OPTIONS."""

from __future__ import annotations

import pytest

import mailpost
from mailpost._urls import parse_mailer_url

SMTP = "mailpost.backends.smtp.EmailBackend"


def test_smtp_url_gives_host_port_credentials_and_typed_query_options() -> None:
    entry = parse_mailer_url("smtp://user:pass@mail.example.com:587?use_tls=true&timeout=10",
                             alias="default")  # fmt: skip
    assert entry == {
        "BACKEND": SMTP,
        "OPTIONS": {
            "host": "mail.example.com",
            "port": 587,
            "username": "user",
            "password": "pass",
            "use_tls": True,
            "timeout": 10.0,
        },
    }


def test_smtps_url_turns_on_use_ssl() -> None:
    entry = parse_mailer_url("smtps://mail.example.com", alias="default")
    assert entry["OPTIONS"] == {"host": "mail.example.com", "use_ssl": True}


def test_smtp_url_without_port_or_credentials_has_only_the_host() -> None:
    assert parse_mailer_url("smtp://localhost", alias="a")["OPTIONS"] == {"host": "localhost"}


def test_username_and_password_are_percent_decoded() -> None:
    options = parse_mailer_url("smtp://me%40example.com:p%3Ass%2Fw%40rd@h", alias="a")["OPTIONS"]
    assert options["username"] == "me@example.com"
    assert options["password"] == "p:ss/w@rd"


def test_ipv6_host_in_brackets_is_unwrapped() -> None:
    options = parse_mailer_url("smtp://[::1]:1025", alias="a")["OPTIONS"]
    assert options == {"host": "::1", "port": 1025}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True),
     ("false", False), ("0", False), ("no", False)],
)  # fmt: skip
def test_boolean_query_values_are_typed(raw: str, expected: bool) -> None:
    options = parse_mailer_url(f"smtp://h?use_tls={raw}", alias="a")["OPTIONS"]
    assert options["use_tls"] is expected


def test_timeout_may_be_fractional() -> None:
    assert parse_mailer_url("smtp://h?timeout=2.5", alias="a")["OPTIONS"]["timeout"] == 2.5


def test_certificate_paths_are_passed_through() -> None:
    options = parse_mailer_url("smtp://h?ssl_certfile=/c.pem&ssl_keyfile=/k.pem", alias="a")
    assert options["OPTIONS"]["ssl_certfile"] == "/c.pem"
    assert options["OPTIONS"]["ssl_keyfile"] == "/k.pem"


@pytest.mark.parametrize(
    ("url", "backend", "options"),
    [
        ("console://", "mailpost.backends.console.EmailBackend", {}),
        ("console://?fail_silently=yes", "mailpost.backends.console.EmailBackend",
         {"fail_silently": True}),
        ("locmem://", "mailpost.backends.locmem.EmailBackend", {}),
        ("dummy://", "mailpost.backends.dummy.EmailBackend", {}),
        ("file:///var/mail/out", "mailpost.backends.filebased.EmailBackend",
         {"file_path": "/var/mail/out"}),
        ("file:///tmp/with%20space", "mailpost.backends.filebased.EmailBackend",
         {"file_path": "/tmp/with space"}),
    ],
)  # fmt: skip
def test_local_backend_urls(url: str, backend: str, options: dict[str, object]) -> None:
    assert parse_mailer_url(url, alias="a") == {"BACKEND": backend, "OPTIONS": options}


def test_unknown_scheme_is_rejected_naming_the_alias() -> None:
    with pytest.raises(mailpost.InvalidMailer, match=r"^MAILERS\['bulk'\]: .*'http'") as info:
        parse_mailer_url("http://example.com", alias="bulk")
    assert info.value.alias == "bulk"


def test_string_without_scheme_is_rejected() -> None:
    with pytest.raises(mailpost.InvalidMailer, match=r"^MAILERS\['a'\]: unsupported"):
        parse_mailer_url("localhost:25", alias="a")


def test_unknown_query_option_is_rejected_naming_alias_and_option() -> None:
    with pytest.raises(mailpost.InvalidMailer, match=r"^MAILERS\['main'\]: .*'use_tsl'"):
        parse_mailer_url("smtp://h?use_tsl=true", alias="main")


def test_bad_boolean_value_is_rejected_naming_the_option() -> None:
    with pytest.raises(mailpost.InvalidMailer, match=r"'use_tls' must be true/false"):
        parse_mailer_url("smtp://h?use_tls=maybe", alias="a")


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "nan"])
def test_bad_timeout_is_rejected(raw: str) -> None:
    with pytest.raises(mailpost.InvalidMailer, match=r"'timeout' must be a"):
        parse_mailer_url(f"smtp://h?timeout={raw}", alias="a")


def test_repeated_query_option_is_rejected() -> None:
    with pytest.raises(mailpost.InvalidMailer, match="given twice"):
        parse_mailer_url("smtp://h?timeout=1&timeout=2", alias="a")


def test_smtp_url_needs_a_host() -> None:
    with pytest.raises(mailpost.InvalidMailer, match="needs a host"):
        parse_mailer_url("smtp://", alias="a")


def test_bad_port_is_rejected() -> None:
    with pytest.raises(mailpost.InvalidMailer, match=r"^MAILERS\['a'\]: malformed smtp"):
        parse_mailer_url("smtp://h:notaport", alias="a")


def test_local_backends_take_no_host() -> None:
    with pytest.raises(mailpost.InvalidMailer, match=r"console:// URLs take no host"):
        parse_mailer_url("console://somewhere", alias="a")


def test_locmem_url_takes_no_options() -> None:
    with pytest.raises(mailpost.InvalidMailer, match=r"'fail_silently'.*accepted options: none"):
        parse_mailer_url("locmem://?fail_silently=true", alias="a")


def test_relative_file_url_is_rejected_with_a_hint() -> None:
    with pytest.raises(mailpost.InvalidMailer, match="three slashes"):
        parse_mailer_url("file://relative/dir", alias="a")


@pytest.mark.parametrize(
    "url",
    [
        "smtp://user:s3cr3t-pw@h?use_tsl=1",
        "smtp://user:s3cr3t-pw@h?use_tls=maybe",
        "smtp://user:s3cr3t-pw@h:bad",
        "smtp://user:s3cr3t-pw@h/path",
        "smtp://user:s3cr3t-pw@h#frag",
        "smpt://user:s3cr3t-pw@h",
    ],
)
def test_password_never_appears_in_the_error(url: str) -> None:
    with pytest.raises(mailpost.InvalidMailer) as info:
        parse_mailer_url(url, alias="a")
    assert "s3cr3t-pw" not in str(info.value)
    assert "s3cr3t-pw" not in repr(info.value)
