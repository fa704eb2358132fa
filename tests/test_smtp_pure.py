"""The I/O-free SMTP logic: reply classification, MAIL parameters, DATA framing."""

from __future__ import annotations

import errno
import smtplib
import ssl

import pytest

from mailpost._smtp.envelope import MailPlan, data_payload, plan_mail
from mailpost._smtp.policy import ReconnectPolicy
from mailpost._smtp.replies import (
    Failure,
    classify_exception,
    closes_connection,
    decode_reply,
    describe_reply,
    is_success,
)

# -- replies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "success", "retryable"),
    [
        (250, True, False),
        (251, True, False),
        (421, False, True),
        (450, False, True),
        (451, False, True),
        (452, False, True),
        (500, False, False),
        (530, False, False),
        (535, False, False),
        (550, False, False),
        (554, False, False),
    ],
)
def test_reply_code_classes(code: int, success: bool, retryable: bool) -> None:
    assert is_success(code) is success
    assert Failure.from_reply(code, "text").retryable is retryable


def test_only_421_closes_the_connection() -> None:
    assert closes_connection(421)
    assert not any(closes_connection(c) for c in (250, 450, 451, 550, 554))


def test_decode_reply_tolerates_any_bytes() -> None:
    assert decode_reply(b"2.0.0 OK") == "2.0.0 OK"
    assert decode_reply(b"bad \xff byte") == "bad \ufffd byte"
    assert decode_reply("already text") == "already text"


def test_describe_reply_flattens_multiline_replies() -> None:
    assert describe_reply(550, "5.1.1 no such user\nsee https://x") == (
        "550 5.1.1 no such user / see https://x"
    )
    assert describe_reply(None, "") == "no reply"


def test_response_exception_keeps_code_and_text() -> None:
    failure = classify_exception(smtplib.SMTPAuthenticationError(535, b"5.7.8 bad creds"))
    assert failure == Failure("535 5.7.8 bad creds", 535, False)
    assert classify_exception(smtplib.SMTPResponseException(454, b"4.7.0 later")).retryable


def test_disconnect_is_retryable_and_a_timeout_is_named() -> None:
    plain = classify_exception(smtplib.SMTPServerDisconnected("Connection unexpectedly closed"))
    assert plain.retryable
    assert plain.code is None
    assert "connection lost" in plain.text
    exc = smtplib.SMTPServerDisconnected("Connection unexpectedly closed: timed out")
    exc.__context__ = TimeoutError("timed out")  # how smtplib's getreply() raises it
    timed_out = classify_exception(exc)
    assert timed_out == Failure("timed out waiting for the server", None, True)
    assert classify_exception(TimeoutError("timed out")).text == "timed out"


def test_socket_errors_are_retryable_but_missing_files_are_not() -> None:
    assert classify_exception(ConnectionRefusedError(errno.ECONNREFUSED, "refused")).retryable
    missing = classify_exception(FileNotFoundError(errno.ENOENT, "No such file", "/x/cert.pem"))
    assert missing == Failure("cannot read /x/cert.pem: No such file", None, False)


def test_certificate_failure_is_not_retryable() -> None:
    exc = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] failed")
    exc.verify_message = "self-signed certificate"
    failure = classify_exception(exc)
    assert not failure.retryable
    assert failure.text == "TLS certificate verification failed: self-signed certificate"


def test_missing_extension_is_not_retryable() -> None:
    failure = classify_exception(smtplib.SMTPNotSupportedError("STARTTLS extension not supported"))
    assert failure == Failure("STARTTLS extension not supported", None, False)


# -- MAIL FROM parameters ---------------------------------------------------------------


def test_ascii_data_gets_no_body_parameter() -> None:
    assert plan_mail(b"Subject: x\r\n\r\nhi\r\n", {"8bitmime": ""}) == MailPlan(())


def test_8bit_data_announces_8bitmime_when_offered() -> None:
    assert plan_mail("Grüße\r\n".encode(), {"8bitmime": ""}).options == ("BODY=8BITMIME",)


def test_8bit_data_without_8bitmime_is_sent_without_the_parameter() -> None:
    assert plan_mail("Grüße\r\n".encode(), {}).options == ()


def test_size_is_declared_when_the_server_announces_size() -> None:
    data = b"x" * 100
    assert plan_mail(data, {"size": "1000"}).options == ("SIZE=100",)
    assert plan_mail(data, {"size": ""}).options == ("SIZE=100",)


def test_message_over_the_servers_size_limit_is_not_planned() -> None:
    plan = plan_mail(b"x" * 101, {"size": "100"})
    assert plan.options == ()
    assert plan.problem == "message is 101 bytes; the server accepts at most 100"


# -- DATA framing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b"a\r\nb", b"a\r\nb\r\n.\r\n"),
        (b".starts\r\nok", b"..starts\r\nok\r\n.\r\n"),
        (b"x\r\n.\r\ny", b"x\r\n..\r\ny\r\n.\r\n"),
        (b"x\r\n..two\r\n", b"x\r\n...two\r\n.\r\n"),
        (b"mid.dot\r\n", b"mid.dot\r\n.\r\n"),
    ],
)
def test_data_payload_is_dot_stuffed_and_terminated(data: bytes, wire: bytes) -> None:
    assert data_payload(data) == wire


# -- reconnect policy ---------------------------------------------------------------------


def test_first_loss_may_reconnect_then_only_after_progress() -> None:
    policy = ReconnectPolicy()
    assert policy.may_reconnect()
    policy.reconnected()
    assert not policy.may_reconnect()
    policy.delivered()
    assert policy.may_reconnect()
    policy.reconnected()
    assert not policy.may_reconnect()
    assert policy.reconnects == 2
