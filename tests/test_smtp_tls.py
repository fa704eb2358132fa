"""TLS and AUTH against a real server with trustme certificates: STARTTLS, implicit TLS,
client certificates, untrusted certificates, and no cleartext fallback ever."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from helpers import make_message as make
from mailpost import DeliveryError, EmailMessage
from mailpost.backends.smtp import SMTPBackend
from smtp_fixtures import SMTP_BACKEND, USERS
from smtpd_harness import SMTPServer, TLSMaterial

Mailer = Callable[..., SMTPBackend]
PASSWORD = USERS["alice"]


def send_expecting_error(backend: SMTPBackend, messages: list[EmailMessage]) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        backend.send_messages(messages)
    return info.value


def nothing_in_the_clear(server: SMTPServer) -> bool:
    """No mail transaction command reached the server outside TLS."""
    return not any(
        c.verb in {"MAIL", "RCPT", "DATA", "AUTH"} and not c.tls for c in server.commands
    )


# -- STARTTLS and implicit TLS -------------------------------------------------------------


def test_starttls_encrypts_the_whole_transaction(
    tls_smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    msg = make(1)
    assert smtp_mailer(tls_smtp_server, use_tls=True).send_messages([msg]) == 1
    [got] = tls_smtp_server.messages
    assert got.tls
    assert got.rcpt_tos == ["rcpt-1@example.com"]
    verbs = tls_smtp_server.verbs()
    assert verbs[:3] == ["EHLO", "STARTTLS", "EHLO"]
    assert nothing_in_the_clear(tls_smtp_server)
    assert msg.delivery is not None
    assert msg.delivery.ok


def test_implicit_tls_delivers(ssl_smtp_server: SMTPServer, smtp_mailer: Mailer) -> None:
    assert smtp_mailer(ssl_smtp_server, use_ssl=True).send_messages([make(1)]) == 1
    [got] = ssl_smtp_server.messages
    assert got.tls
    assert "STARTTLS" not in ssl_smtp_server.verbs()


def test_server_certificate_is_verified_by_default(
    tls_smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    """The stock backend does not trust the test CA: the session must not go ahead."""
    backend = smtp_mailer(tls_smtp_server, backend=SMTP_BACKEND, use_tls=True)
    assert backend.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert backend.ssl_context.check_hostname
    error = send_expecting_error(backend, [make(1)])
    assert tls_smtp_server.messages == []
    assert nothing_in_the_clear(tls_smtp_server)
    [result] = error.results
    assert "TLS certificate verification failed" in (result.error or "")
    assert result.retryable is False
    assert isinstance(error.__cause__, ssl.SSLCertVerificationError)


def test_self_signed_certificate_is_refused(
    self_signed_smtp_server: SMTPServer, smtp_mailer: Mailer, trust_test_ca: TLSMaterial
) -> None:
    for backend in (SMTP_BACKEND, None):  # stock, and trusting the test CA only
        error = send_expecting_error(
            smtp_mailer(self_signed_smtp_server, backend=backend, use_tls=True), [make(1)]
        )
        [result] = error.results
        assert result.error is not None
        assert "self-signed certificate" in result.error
        assert not result.retryable
    assert self_signed_smtp_server.messages == []
    assert nothing_in_the_clear(self_signed_smtp_server)


def test_self_signed_certificate_is_refused_with_implicit_tls(
    make_smtp_server: Callable[..., SMTPServer], tls_material: TLSMaterial, smtp_mailer: Mailer
) -> None:
    server = make_smtp_server(implicit_tls=tls_material.self_signed_context())
    error = send_expecting_error(smtp_mailer(server, use_ssl=True), [make(1)])
    assert "self-signed certificate" in (error.results[0].error or "")
    assert server.messages == []
    assert server.commands == []


def test_certificate_for_another_host_is_refused(
    make_smtp_server: Callable[..., SMTPServer], trust_test_ca: TLSMaterial, smtp_mailer: Mailer
) -> None:
    server = make_smtp_server(starttls=trust_test_ca.wrong_host_context())
    error = send_expecting_error(smtp_mailer(server, use_tls=True), [make(1)])
    assert "127.0.0.1" in (error.results[0].error or "")  # "IP address mismatch ..."
    assert server.messages == []
    assert nothing_in_the_clear(server)


def test_starttls_not_offered_fails_without_sending_in_the_clear(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    error = send_expecting_error(smtp_mailer(smtp_server, use_tls=True), [make(1), make(2)])
    assert smtp_server.messages == []
    assert smtp_server.verbs() == ["EHLO"]
    assert all("STARTTLS extension not supported" in (r.error or "") for r in error.results)
    assert not error.retryable


def test_starttls_not_offered_with_fail_silently_still_sends_nothing(
    smtp_server: SMTPServer, smtp_mailer: Mailer, caplog: pytest.LogCaptureFixture
) -> None:
    backend = smtp_mailer(smtp_server, use_tls=True, fail_silently=True)
    assert backend.open() is None
    msg = make(1)
    with caplog.at_level(logging.INFO, logger="mailpost"):
        assert backend.send_messages([msg]) == 0
    assert smtp_server.messages == []
    assert set(smtp_server.verbs()) == {"EHLO"}
    assert msg.delivery is not None
    assert "STARTTLS" in (msg.delivery.error or "")
    assert any("STARTTLS" in r.getMessage() for r in caplog.records)


def test_open_raises_when_starttls_is_not_offered(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    import smtplib

    backend = smtp_mailer(smtp_server, use_tls=True)
    with pytest.raises(smtplib.SMTPNotSupportedError, match="STARTTLS"):
        backend.open()
    assert backend.connection is None


# -- client certificates -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["use_tls", "use_ssl"])
@pytest.mark.parametrize("split", [True, False], ids=["cert+key", "combined"])
def test_client_certificate_is_presented(
    make_smtp_server: Callable[..., SMTPServer],
    trust_test_ca: TLSMaterial,
    smtp_mailer: Mailer,
    mode: str,
    split: bool,
) -> None:
    context = trust_test_ca.server_context(require_client_cert=True)
    server = make_smtp_server(**{"starttls" if mode == "use_tls" else "implicit_tls": context})
    files: dict[str, Any] = (
        {
            "ssl_certfile": str(trust_test_ca.client_certfile),
            "ssl_keyfile": str(trust_test_ca.client_keyfile),
        }
        if split
        else {"ssl_certfile": trust_test_ca.client_combined}
    )
    assert smtp_mailer(server, **{mode: True}, **files).send_messages([make(1)]) == 1
    [got] = server.messages
    assert got.peer_cert is not None
    assert ("DNS", "client.example.com") in got.peer_cert["subjectAltName"]


def test_server_requiring_a_client_certificate_refuses_a_client_without_one(
    make_smtp_server: Callable[..., SMTPServer], trust_test_ca: TLSMaterial, smtp_mailer: Mailer
) -> None:
    server = make_smtp_server(starttls=trust_test_ca.server_context(require_client_cert=True))
    error = send_expecting_error(smtp_mailer(server, use_tls=True), [make(1)])
    assert server.messages == []
    assert nothing_in_the_clear(server)
    assert error.results[0].sent is False


def test_missing_client_certificate_file_is_reported_and_not_retryable(
    tls_smtp_server: SMTPServer, smtp_mailer: Mailer, tmp_path: Any
) -> None:
    missing = tmp_path / "nope.pem"
    error = send_expecting_error(
        smtp_mailer(tls_smtp_server, use_tls=True, ssl_certfile=str(missing)), [make(1)]
    )
    assert isinstance(error.__cause__, FileNotFoundError)
    assert error.results[0].retryable is False
    assert f"cannot read {missing}: client certificate file not found" in str(error)
    assert tls_smtp_server.sessions == 0


# -- AUTH ------------------------------------------------------------------------------------


def test_auth_success_sends_as_the_user(auth_smtp_server: SMTPServer, smtp_mailer: Mailer) -> None:
    backend = smtp_mailer(auth_smtp_server, use_tls=True, username="alice", password=PASSWORD)
    assert backend.send_messages([make(1)]) == 1
    [got] = auth_smtp_server.messages
    assert got.login == "alice"
    assert got.tls
    assert auth_smtp_server.recorder.auth_tries == [("alice", True)]
    assert nothing_in_the_clear(auth_smtp_server)


def test_auth_failure_is_535_not_retryable_and_never_shows_the_password(
    auth_smtp_server: SMTPServer, smtp_mailer: Mailer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-Pa55word-xyzzy"
    backend = smtp_mailer(auth_smtp_server, use_tls=True, username="alice", password=wrong)
    msg = make(1)
    with caplog.at_level(logging.DEBUG):
        error = send_expecting_error(backend, [msg])
    assert auth_smtp_server.messages == []
    [result] = error.results
    assert result.error_code == 535
    assert result.retryable is False
    assert result.attempted is False  # nothing was said about the message itself
    assert result.error == (
        f"not attempted: could not connect to 127.0.0.1:{auth_smtp_server.port}: "
        "535 5.7.8 Authentication credentials invalid"
    )
    assert not error.retryable
    assert all(user == "alice" and not ok for user, ok in auth_smtp_server.recorder.auth_tries)
    shown = [str(error), repr(error), repr(result), repr(backend), str(error.__cause__)]
    shown += [r.getMessage() for r in caplog.records if r.name.startswith("mailpost")]
    assert not any(wrong in text for text in shown)


def test_auth_required_but_no_credentials_is_reported_per_message(
    auth_smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    error = send_expecting_error(smtp_mailer(auth_smtp_server, use_tls=True), [make(1)])
    assert auth_smtp_server.messages == []
    [result] = error.results
    assert result.error_code == 530
    assert not result.retryable
    assert (result.error or "").startswith("MAIL FROM <sender@example.com> refused: 530")


def test_private_ca_subclass_example_from_the_docs(
    tls_smtp_server: SMTPServer, trust_test_ca: TLSMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The docs' recipe: subclass and extend ssl_context with load_verify_locations()."""
    from functools import cached_property

    import mailpost

    class PrivateCABackend(SMTPBackend):
        @cached_property
        def ssl_context(self) -> ssl.SSLContext:
            context = super().ssl_context
            context.load_verify_locations(cafile=str(trust_test_ca.ca_file))
            return context

    monkeypatch.setattr(mailpost, "PrivateCABackendForTest", PrivateCABackend, raising=False)
    mailpost.configure(
        MAILERS={
            "default": {
                "BACKEND": "mailpost.PrivateCABackendForTest",
                "OPTIONS": {
                    "host": tls_smtp_server.host,
                    "port": tls_smtp_server.port,
                    "use_tls": True,
                    "timeout": 5,
                },
            }
        }
    )
    assert make(1).send() == 1
    assert [m.tls for m in tls_smtp_server.messages] == [True]
