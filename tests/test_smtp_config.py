"""SMTP backend configuration: OPTIONS validation, defaults, legacy direct construction."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

import mailpost
from mailpost import InvalidMailer
from mailpost.backends import smtp
from mailpost.backends.smtp import EmailBackend, SMTPBackend

SMTP = "mailpost.backends.smtp.EmailBackend"


def mailer(alias: str = "relay", **options: Any) -> SMTPBackend:
    """Build the mailer the way users do: MAILERS + mailers[alias]."""
    mailpost.configure(MAILERS={alias: {"BACKEND": SMTP, "OPTIONS": options}})
    backend = mailpost.mailers[alias]
    assert isinstance(backend, SMTPBackend)
    return backend


def invalid(alias: str = "relay", **options: Any) -> str:
    with pytest.raises(InvalidMailer) as info:
        mailer(alias, **options)
    assert info.value.alias == alias
    message = str(info.value)
    assert message.startswith(f"MAILERS[{alias!r}]: ")
    return message


def test_spec_dotted_path_is_the_smtp_backend() -> None:
    assert EmailBackend is SMTPBackend
    assert smtp.__all__ == ["EmailBackend", "SMTPBackend"]


@pytest.mark.parametrize(
    ("options", "port"),
    [({}, 25), ({"use_tls": True}, 587), ({"use_ssl": True}, 465), ({"port": 2525}, 2525)],
)
def test_port_defaults_to_the_standard_port_for_the_protocol(
    options: dict[str, Any], port: int
) -> None:
    backend = mailer(host="smtp.example.net", **options)
    assert backend.port == port
    assert backend.host == "smtp.example.net"


def test_other_defaults() -> None:
    backend = mailer(host="smtp.example.net")
    assert (backend.username, backend.password) == (None, None)  # as in Django
    assert (backend.use_tls, backend.use_ssl, backend.fail_silently) == (False, False, False)
    assert backend.timeout is None  # socket.getdefaulttimeout() is read when connecting
    assert (backend.ssl_certfile, backend.ssl_keyfile) == (None, None)
    assert backend.connection is None
    assert backend.alias == "relay"


def test_host_is_required() -> None:
    assert invalid().startswith("MAILERS['relay']: OPTIONS must define 'host'. (")
    assert invalid(host="").startswith("MAILERS['relay']: OPTIONS must define 'host'. (")


@pytest.mark.parametrize("host", [42, "smtp example.net", "smtp.example.net\r\nX: y", "  "])
def test_host_must_be_a_host_name(host: Any) -> None:
    assert "option 'host' must be a host name or IP address" in invalid(host=host)


def test_use_tls_and_use_ssl_are_mutually_exclusive() -> None:
    message = invalid(host="h", use_tls=True, use_ssl=True)
    assert message.startswith(
        "MAILERS['relay']: The 'use_ssl' and 'use_tls' OPTIONS are incompatible. Set at most "
        "one of them to True."
    )


@pytest.mark.parametrize("port", ["25", 0, 65536, -1, 25.0, True])
def test_port_must_be_an_integer_in_range(port: Any) -> None:
    message = invalid(host="h", port=port)
    assert f"option 'port' must be an integer from 1 to 65535, not {port!r}" in message


@pytest.mark.parametrize("timeout", [0, -1, "10", True, float("nan")])
def test_timeout_must_be_a_positive_number(timeout: Any) -> None:
    assert "option 'timeout' must be a positive number of seconds or None" in invalid(
        host="h", timeout=timeout
    )


@pytest.mark.parametrize(("timeout", "stored"), [(10, 10), (0.5, 0.5), (None, None)])
def test_valid_timeouts(timeout: Any, stored: Any) -> None:
    assert mailer(host="h", timeout=timeout).timeout == stored


@pytest.mark.parametrize("flag", ["use_tls", "use_ssl"])
def test_tls_flags_must_be_booleans(flag: str) -> None:
    assert f"option {flag!r} must be True or False, not 'yes'" in invalid(host="h", **{flag: "yes"})


def test_username_and_password_go_together() -> None:
    assert "option 'password' is missing" in invalid(host="h", username="app")
    assert "option 'username' is missing" in invalid(host="h", password="s3cret-value")


def test_bad_password_type_is_reported_without_its_value() -> None:
    message = invalid(host="h", username="app", password=12345678)
    assert "option 'password' must be a string, not int" in message
    assert "12345678" not in message


def test_keyfile_needs_certfile(tmp_path: Any) -> None:
    pem = str(tmp_path / "client.pem")
    assert "'ssl_keyfile' needs 'ssl_certfile'" in invalid(host="h", use_tls=True, ssl_keyfile=pem)
    assert "option 'ssl_certfile' must be a file path, not int" in invalid(
        host="h", use_tls=True, ssl_certfile=3
    )
    backend = mailer(host="h", use_ssl=True, ssl_certfile=tmp_path / "c.pem")
    assert backend.ssl_certfile == tmp_path / "c.pem"


def test_client_certificate_without_tls_is_accepted_like_django(tmp_path: Any) -> None:
    pem = str(tmp_path / "client.pem")
    backend = mailer(host="h", ssl_certfile=pem, ssl_keyfile=pem)
    assert (backend.ssl_certfile, backend.ssl_keyfile, backend.use_tls) == (pem, pem, False)


def test_unknown_option_is_rejected_by_name() -> None:
    message = invalid(host="h", use_starttls=True)
    assert "Unknown options 'use_starttls'. (" in message
    assert "accepts OPTIONS: " in message  # a hint for the typo: the accepted names
    assert " use_tls" in message


def test_repr_names_alias_host_port_and_tls_mode_only() -> None:
    backend = mailer(
        host="smtp.example.net", use_tls=True, username="app-user", password="hunter2-secret"
    )
    assert repr(backend) == (
        "<SMTPBackend alias='relay' host='smtp.example.net' port=587 tls=starttls>"
    )
    assert repr(mailer(host="h", use_ssl=True)).endswith("port=465 tls=ssl>")
    assert repr(mailer(host="h")).endswith("port=25 tls=none>")


def test_ssl_context_verifies_by_default_and_is_cached() -> None:
    backend = mailer(host="h", use_tls=True)
    context = backend.ssl_context
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert backend.ssl_context is context


def test_mailer_url_options_reach_the_backend() -> None:
    mailpost.configure(MAILERS={"default": "smtps://app:s%40cret@smtp.example.net?timeout=7"})
    backend = mailpost.mailers.default
    assert isinstance(backend, SMTPBackend)
    assert (backend.host, backend.port, backend.use_ssl, backend.timeout) == (
        "smtp.example.net",
        465,
        True,
        7.0,
    )
    assert (backend.username, backend.password) == ("app", "s@cret")
    assert "s@cret" not in repr(backend)


# -- direct construction (deprecated) ------------------------------------------------------

DIRECT = r"^Directly creating SMTPBackend instances is deprecated"


def direct(*args: Any, **kwargs: Any) -> SMTPBackend:
    """``SMTPBackend(...)`` as a user's code calls it: deprecated, warned at the caller."""
    with pytest.warns(mailpost.MailpostDeprecationWarning, match=DIRECT) as caught:
        backend = SMTPBackend(*args, **kwargs)
    assert [w.filename for w in caught] == [__file__]
    return backend


def test_direct_construction_needs_every_option_when_mailers_is_defined() -> None:
    mailpost.configure(MAILERS={"default": {"BACKEND": SMTP, "OPTIONS": {"host": "h"}}})
    with pytest.raises(AttributeError) as info:
        direct(host="smtp.example.net")
    assert str(info.value).startswith(
        "The EMAIL_PORT setting is not available when MAILERS is defined. (Use "
        "mailpost.mailers[alias]"
    )
    everything = {
        "host": "smtp.example.net",
        "port": 2525,
        "username": "u",
        "password": "p",
        "use_tls": True,
        "use_ssl": False,
        "timeout": 3,
        "ssl_keyfile": "/k.pem",
        "ssl_certfile": "/c.pem",
    }
    backend = direct(**everything)
    assert (backend.host, backend.port, backend.alias) == ("smtp.example.net", 2525, None)


def test_an_explicit_alias_never_reads_the_legacy_settings() -> None:
    mailpost.configure(EMAIL_HOST="legacy.example.net", EMAIL_PORT=2525, EMAIL_USE_SSL=True)
    backend = SMTPBackend(alias="relay", host="h", use_tls=True)
    assert (backend.host, backend.port, backend.use_ssl, backend.username) == (
        "h",
        587,
        False,
        None,
    )
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['relay'\]: OPTIONS must define 'host'"):
        SMTPBackend(alias="relay")


def test_direct_construction_reads_the_legacy_settings() -> None:
    mailpost.configure(
        EMAIL_HOST="legacy.example.net",
        EMAIL_PORT=2525,
        EMAIL_HOST_USER="legacy-user",
        EMAIL_HOST_PASSWORD="legacy-password",
        EMAIL_USE_TLS=True,
        EMAIL_TIMEOUT=12,
    )
    backend = direct()
    assert backend.alias is None
    assert (backend.host, backend.port, backend.use_tls, backend.timeout) == (
        "legacy.example.net",
        2525,
        True,
        12,
    )
    assert (backend.username, backend.password) == ("legacy-user", "legacy-password")
    assert "legacy-password" not in repr(backend)


def test_direct_construction_defaults_to_localhost_port_25_even_with_tls() -> None:
    for kwargs in ({}, {"use_tls": True}, {"use_ssl": True}):
        backend = direct(**kwargs)
        assert (backend.host, backend.port) == ("localhost", 25)
        assert (backend.username, backend.password) == ("", "")  # EMAIL_HOST_USER's default


def test_direct_construction_arguments_override_the_settings() -> None:
    mailpost.configure(EMAIL_HOST="legacy.example.net", EMAIL_PORT=2525)
    backend = direct("explicit.example.net", 26, fail_silently=True)
    assert (backend.host, backend.port, backend.fail_silently) == ("explicit.example.net", 26, True)


def test_mailpost_building_the_legacy_mailer_does_not_warn() -> None:
    mailpost.configure(EMAIL_BACKEND=SMTP)
    assert isinstance(mailpost.mailers.default, SMTPBackend)  # filterwarnings=error


def test_direct_construction_validates_too_and_names_the_setting() -> None:
    mailpost.configure(EMAIL_USE_TLS=True, EMAIL_USE_SSL=True)
    with pytest.raises(ValueError, match=r"^EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive"):
        direct()
    mailpost.configure(EMAIL_PORT="twenty-five")
    with pytest.raises(InvalidMailer) as info:
        direct()
    assert str(info.value) == (
        "SMTPBackend: option 'port' (from settings.EMAIL_PORT) must be an integer from 1 to "
        "65535, not 'twenty-five'"
    )
    assert info.value.alias is None


def test_legacy_email_backend_setting_builds_the_default_mailer() -> None:
    mailpost.configure(EMAIL_BACKEND=SMTP, EMAIL_HOST="legacy.example.net", EMAIL_USE_SSL=True)
    backend = mailpost.mailers.default
    assert isinstance(backend, SMTPBackend)
    assert (backend.alias, backend.host, backend.port, backend.use_ssl) == (
        None,
        "legacy.example.net",
        25,
        True,
    )
