"""The SMTP backend against a real SMTP server: what was delivered, to whom, and what the
caller was told (return value, DeliveryError.results, message.delivery)."""

from __future__ import annotations

import asyncio
import email.message
import email.parser
import email.policy
import logging
import smtplib
import socket
import threading
import time
from collections.abc import Callable

import pytest

from helpers import make_message as make
from mailpost import DeliveryError, DeliveryResult, EmailMessage
from mailpost.backends.smtp import SMTPBackend
from smtp_fixtures import SMTP_BACKEND
from smtpd_harness import DROP, SilentServer, SMTPServer

Mailer = Callable[..., SMTPBackend]


def parse(data: bytes) -> email.message.EmailMessage:
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def subjects(server: SMTPServer) -> list[str]:
    return [parse(m.data)["Subject"] for m in server.messages]


def send_expecting_error(backend: SMTPBackend, messages: list[EmailMessage]) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        backend.send_messages(messages)
    return info.value


# -- happy path ------------------------------------------------------------------------


def test_message_is_delivered_with_every_recipient_accepted(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    msg = make(1, to=["a@example.com", "b@example.com"], cc=["c@example.com"])
    assert smtp_mailer(smtp_server).send_messages([msg]) == 1

    [got] = smtp_server.messages
    assert got.mail_from == "sender@example.com"
    assert got.rcpt_tos == ["a@example.com", "b@example.com", "c@example.com"]
    parsed = parse(got.data)
    assert parsed["Subject"] == "Message 1"
    assert parsed.get_content().strip() == "Body 1"

    result = msg.delivery
    assert isinstance(result, DeliveryResult)
    assert result.ok
    assert result.sent
    assert result.mailer == "test"
    assert msg.sent_using == "test"
    assert result.accepted == ["a@example.com", "b@example.com", "c@example.com"]
    assert [(r.status, r.code) for r in result.recipients] == [("accepted", 250)] * 3
    assert result.recipients[0].reply == "2.1.5 Recipient OK"
    assert result.response == (250, "2.0.0 OK: queued as m1")
    assert result.message_id == parsed["Message-ID"]
    assert result.error is None
    assert result.retryable is False


def test_bcc_is_in_the_envelope_and_not_in_the_data(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    msg = make(1, bcc=["hidden@example.com"])
    assert smtp_mailer(smtp_server).send_messages([msg]) == 1
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["rcpt-1@example.com", "hidden@example.com"]
    assert b"hidden@example.com" not in got.data
    assert parse(got.data)["Bcc"] is None
    assert msg.delivery is not None
    assert msg.delivery.accepted == ["rcpt-1@example.com", "hidden@example.com"]


def test_lines_starting_with_a_dot_arrive_intact(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    body = ".leading dot\n.\n..two dots\nend\n"
    assert smtp_mailer(smtp_server).send_messages([make(1, body=body)]) == 1
    [got] = smtp_server.messages
    assert got.data.endswith(b"\r\n\r\n.leading dot\r\n.\r\n..two dots\r\nend\r\n")
    assert parse(got.data).get_content().replace("\r\n", "\n") == body


def test_a_batch_goes_over_one_session_in_order(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    messages = [make(n) for n in range(1, 4)]
    assert smtp_mailer(smtp_server).send_messages(messages) == 3
    assert subjects(smtp_server) == ["Message 1", "Message 2", "Message 3"]
    assert smtp_server.sessions == 1
    assert smtp_server.verbs().count("EHLO") == 1
    assert smtp_server.verbs()[-1] == "QUIT"  # send_messages opened it, so it closed it
    assert [m.delivery.response for m in messages if m.delivery] == [
        (250, "2.0.0 OK: queued as m1"),
        (250, "2.0.0 OK: queued as m2"),
        (250, "2.0.0 OK: queued as m3"),
    ]


def test_empty_batch_returns_zero_without_connecting(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    assert smtp_mailer(smtp_server).send_messages([]) == 0
    assert smtp_server.sessions == 0


def test_message_without_recipients_is_skipped_without_connecting(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    msg = make(1, to=[])
    assert smtp_mailer(smtp_server).send_messages([msg]) == 0
    assert smtp_server.sessions == 0
    assert msg.delivery is not None
    assert msg.delivery.sent is False
    assert msg.delivery.recipients == []


def test_a_message_that_cannot_be_composed_is_skipped_and_logged_when_failing_silently(
    smtp_server: SMTPServer, smtp_mailer: Mailer, caplog: pytest.LogCaptureFixture
) -> None:
    bad = make(2)
    bad.subject = "Hi\nBcc: victim@example.com"
    caplog.set_level(logging.INFO, logger="mailpost")
    backend = smtp_mailer(smtp_server, fail_silently=True)
    assert backend.send_messages([make(1), bad, make(3)]) == 2
    assert len(smtp_server.messages) == 2
    assert not any(b"victim" in m.data for m in smtp_server.messages)
    assert bad.delivery is not None
    assert not bad.delivery.sent
    assert "could not be composed" in caplog.text


# -- refused recipients -------------------------------------------------------------------


def test_some_recipients_refused_delivers_to_the_others_and_reports_them(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.refuse["bad@example.com"] = "550 5.1.1 <bad@example.com>: no such user"
    msg = make(1, to=["good@example.com", "bad@example.com"])
    error = send_expecting_error(smtp_mailer(smtp_server), [msg])

    [got] = smtp_server.messages
    assert got.rcpt_tos == ["good@example.com"]
    [result] = error.results
    assert result is msg.delivery
    assert result.sent is True
    assert result.ok is False
    assert result.accepted == ["good@example.com"]
    assert result.refused == {"bad@example.com": (550, "5.1.1 <bad@example.com>: no such user")}
    assert result.error_code == 550
    assert result.retryable is False
    assert "1 of 2 recipient(s) refused" in (result.error or "")
    assert isinstance(error, smtplib.SMTPException)
    assert isinstance(error.__cause__, smtplib.SMTPRecipientsRefused)


def test_some_recipients_refused_with_fail_silently_counts_the_message_as_sent(
    smtp_server: SMTPServer, smtp_mailer: Mailer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_server.faults.refuse["bad@example.com"] = "550 5.1.1 no such user"
    msg = make(1, to=["good@example.com", "bad@example.com"])
    with caplog.at_level(logging.INFO, logger="mailpost"):
        assert smtp_mailer(smtp_server, fail_silently=True).send_messages([msg]) == 1
    assert [m.rcpt_tos for m in smtp_server.messages] == [["good@example.com"]]
    assert msg.delivery is not None
    assert not msg.delivery.ok
    assert msg.delivery.refused == {"bad@example.com": (550, "5.1.1 no such user")}
    assert any(str(msg.delivery.message_id) in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("550 5.1.1 no such user", False), ("450 4.2.1 mailbox busy, try later", True)],
)
def test_all_recipients_refused_means_not_sent_and_the_batch_goes_on(
    smtp_server: SMTPServer, smtp_mailer: Mailer, reply: str, retryable: bool
) -> None:
    smtp_server.faults.refuse.update({"x@example.com": reply, "y@example.com": reply})
    first = make(1, to=["x@example.com", "y@example.com"])
    second = make(2)
    error = send_expecting_error(smtp_mailer(smtp_server), [first, second])

    assert subjects(smtp_server) == ["Message 2"]
    code = int(reply[:3])
    failed, delivered = error.results
    assert failed.sent is False
    assert failed.accepted == []
    assert failed.refused == {
        "x@example.com": (code, reply[4:]),
        "y@example.com": (code, reply[4:]),
    }
    assert [r.status for r in failed.recipients] == ["refused", "refused"]
    assert failed.error_code == code
    assert failed.retryable is retryable
    assert "all 2 recipient(s) refused" in (failed.error or "")
    assert delivered.ok
    assert error.retryable is retryable
    verbs = smtp_server.verbs()
    assert verbs.index("RSET") < verbs.index("MAIL", verbs.index("RSET"))


# -- 4xx / 5xx at each stage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("451 4.3.0 Temporary failure, try later", True), ("550 5.7.1 Sender rejected", False)],
)
def test_reply_to_mail_from_fails_that_message_only(
    smtp_server: SMTPServer, smtp_mailer: Mailer, reply: str, retryable: bool
) -> None:
    smtp_server.faults.mail_replies[2] = reply
    messages = [make(1), make(2), make(3)]
    error = send_expecting_error(smtp_mailer(smtp_server), messages)

    assert subjects(smtp_server) == ["Message 1", "Message 3"]
    ok1, failed, ok3 = error.results
    assert ok1.ok
    assert ok3.ok
    assert not failed.sent
    code = int(reply[:3])
    assert failed.error_code == code
    assert failed.retryable is retryable
    assert failed.error == f"MAIL FROM <sender@example.com> refused: {reply}"
    [rcpt] = failed.recipients
    assert (rcpt.status, rcpt.code, rcpt.retryable) == ("unattempted", code, retryable)
    assert [m.delivery for m in messages] == error.results
    assert error.retryable is retryable
    assert smtp_server.sessions == 1


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("451 4.3.0 Try again later", True), ("554 5.5.1 Transaction failed", False)],
)
def test_reply_to_the_data_command_fails_that_message_only(
    smtp_server: SMTPServer, smtp_mailer: Mailer, reply: str, retryable: bool
) -> None:
    smtp_server.faults.data_command_replies[1] = reply
    error = send_expecting_error(smtp_mailer(smtp_server), [make(1), make(2)])

    assert subjects(smtp_server) == ["Message 2"]
    failed = error.results[0]
    code = int(reply[:3])
    assert failed.sent is False
    assert failed.response == (code, reply[4:])
    assert failed.error == f"DATA command refused: {reply}"
    assert failed.retryable is retryable
    assert [(r.status, r.code) for r in failed.recipients] == [("refused", code)]
    assert error.results[1].ok


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("452 4.3.1 Insufficient system storage", True), ("554 5.6.0 Message rejected", False)],
)
def test_reply_after_the_data_fails_that_message_only(
    smtp_server: SMTPServer, smtp_mailer: Mailer, reply: str, retryable: bool
) -> None:
    smtp_server.faults.data_replies[2] = reply
    messages = [make(1), make(2), make(3)]
    error = send_expecting_error(smtp_mailer(smtp_server), messages)

    assert subjects(smtp_server) == ["Message 1", "Message 3"]
    failed = error.results[1]
    code = int(reply[:3])
    assert failed.sent is False
    assert failed.accepted == []
    assert failed.response == (code, reply[4:])
    assert failed.error == f"message refused: {reply}"
    assert failed.error_code == code
    assert failed.retryable is retryable
    assert failed.refused == {"rcpt-2@example.com": (code, reply[4:])}
    assert [r.ok for r in error.results] == [True, False, True]
    assert "1 of 3 message(s) not fully delivered (2 sent)" in str(error)


# -- lost sessions -----------------------------------------------------------------------------


def test_session_dropped_mid_data_reconnects_and_retries_that_message_once(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.data_replies[2] = DROP
    messages = [make(n) for n in range(1, 5)]
    assert smtp_mailer(smtp_server).send_messages(messages) == 4

    assert subjects(smtp_server) == ["Message 1", "Message 2", "Message 3", "Message 4"]
    assert [m.session for m in smtp_server.messages] == [1, 2, 2, 2]
    assert smtp_server.sessions == 2
    assert all(m.delivery is not None and m.delivery.ok for m in messages)


@pytest.mark.parametrize(("allowance", "sessions"), [(5, 2), (3, 4)])
def test_421_after_n_messages_delivers_the_whole_batch_exactly_once(
    smtp_server: SMTPServer, smtp_mailer: Mailer, allowance: int, sessions: int
) -> None:
    smtp_server.faults.close_after = allowance
    messages = [make(n) for n in range(1, 11)]
    assert smtp_mailer(smtp_server).send_messages(messages) == 10

    assert subjects(smtp_server) == [f"Message {n}" for n in range(1, 11)]
    assert smtp_server.sessions == sessions
    per_session = [m.session for m in smtp_server.messages]
    assert all(per_session.count(s) <= allowance for s in set(per_session))
    assert all(m.delivery is not None and m.delivery.ok for m in messages)


def test_reconnect_failing_leaves_the_rest_unattempted_and_retryable(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.data_replies[2] = DROP
    smtp_server.faults.max_sessions = 1
    messages = [make(n) for n in range(1, 5)]
    error = send_expecting_error(smtp_mailer(smtp_server), messages)

    assert subjects(smtp_server) == ["Message 1"]
    first, interrupted, *rest = error.results
    assert first.ok
    assert interrupted.sent is False
    assert interrupted.retryable is True
    assert (interrupted.error or "").startswith("connection lost at the end of DATA")
    assert [r.status for r in interrupted.recipients] == ["unattempted"]
    for result in rest:
        assert result.sent is False
        assert result.retryable is True
        assert (result.error or "").startswith("not attempted: could not reconnect to 127.0.0.1:")
        assert [r.status for r in result.recipients] == ["unattempted"]
        assert all(r.retryable for r in result.recipients)
    assert error.retryable is True
    assert [m.delivery for m in messages] == error.results


def test_server_dropping_every_attempt_is_not_hammered(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.data_replies.update(dict.fromkeys(range(1, 10), DROP))
    error = send_expecting_error(smtp_mailer(smtp_server), [make(1), make(2), make(3)])

    assert smtp_server.messages == []
    assert smtp_server.sessions == 2  # one reconnect, no progress, stop
    first, *rest = error.results
    assert (first.error or "").startswith("connection lost at the end of DATA")
    assert all("lost again before any message was delivered" in (r.error or "") for r in rest)
    assert error.retryable is True


def test_421_at_mail_from_retries_the_message_on_a_new_session(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.mail_replies[2] = "421 4.3.2 Service shutting down"
    messages = [make(1), make(2), make(3)]
    assert smtp_mailer(smtp_server).send_messages(messages) == 3
    assert subjects(smtp_server) == ["Message 1", "Message 2", "Message 3"]
    assert [m.session for m in smtp_server.messages] == [1, 2, 2]
    assert all(m.delivery is not None and m.delivery.ok for m in messages)


def test_421_again_on_the_retry_stops_the_batch(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.refuse["busy@example.com"] = "421 4.3.2 Service shutting down"
    msg = make(1, to=["busy@example.com"])
    error = send_expecting_error(smtp_mailer(smtp_server), [msg, make(2)])

    assert smtp_server.messages == []
    failed, unattempted = error.results
    assert failed.error_code == 421
    assert failed.retryable
    assert failed.error == (
        "the server closed the connection at RCPT TO: 421 4.3.2 Service shutting down"
    )
    assert isinstance(error.__cause__, smtplib.SMTPResponseException)
    assert error.__cause__.smtp_code == 421
    assert unattempted.retryable
    assert not unattempted.sent
    rcpts = [(s, a) for s, a, _ in smtp_server.recorder.rcpt_replies]
    assert rcpts == [(1, "busy@example.com"), (2, "busy@example.com")]
    assert smtp_server.sessions == 2


def test_silent_server_times_out(silent_server: SilentServer, smtp_mailer: Mailer) -> None:
    backend = smtp_mailer(silent_server, timeout=0.5)
    msg = make(1)
    started = time.monotonic()
    error = send_expecting_error(backend, [msg])
    assert time.monotonic() - started < 3
    [result] = error.results
    assert result is msg.delivery
    assert result.sent is False
    assert result.retryable is True
    assert result.error == (
        f"not attempted: could not connect to 127.0.0.1:{silent_server.port}: "
        "timed out waiting for the server"
    )
    assert isinstance(error.__cause__, OSError)
    assert backend.connection is None


def test_open_against_a_silent_server_raises_the_underlying_error(
    silent_server: SilentServer, smtp_mailer: Mailer
) -> None:
    backend = smtp_mailer(silent_server, timeout=0.5)
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        backend.open()
    assert backend.connection is None


def test_refused_connection_raises_delivery_error_from_the_os_error(
    closed_port: int, smtp_mailer: Mailer
) -> None:
    server = SMTPServer()  # never started: only host and port are used
    server.port = closed_port
    messages = [make(1), make(2)]
    error = send_expecting_error(smtp_mailer(server), messages)
    assert isinstance(error.__cause__, ConnectionRefusedError)
    assert [r.sent for r in error.results] == [False, False]
    assert all(r.retryable and r.error_code is None for r in error.results)
    assert all([s.status for s in r.recipients] == ["unattempted"] for r in error.results)
    assert [m.delivery for m in messages] == error.results


def test_open_raises_the_os_error_and_fail_silently_ignores_it(
    closed_port: int, smtp_mailer: Mailer, caplog: pytest.LogCaptureFixture
) -> None:
    server = SMTPServer()
    server.port = closed_port
    with pytest.raises(ConnectionRefusedError):
        smtp_mailer(server).open()
    quiet = smtp_mailer(server, fail_silently=True)
    assert quiet.open() is None
    msg = make(1)
    with caplog.at_level(logging.INFO, logger="mailpost"):
        assert quiet.send_messages([msg]) == 0
    assert msg.delivery is not None
    assert msg.delivery.retryable
    assert "could not connect" in (msg.delivery.error or "")
    assert any("not fully delivered" in r.getMessage() for r in caplog.records)


# -- 8BITMIME and SIZE --------------------------------------------------------------------------


def eight_bit_message() -> EmailMessage:
    inner = email.message.EmailMessage()
    inner["Subject"] = "forwarded"
    inner.set_content("Grüße aus Köln\n", cte="8bit")
    msg = make(1)
    msg.attach(inner)
    return msg


def test_8bit_data_is_announced_with_body_8bitmime(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    assert smtp_mailer(smtp_server).send_messages([eight_bit_message(), make(2)]) == 2
    eight, seven = smtp_server.messages
    assert not eight.data.isascii()
    assert "Grüße aus Köln".encode() in eight.data
    assert "BODY=8BITMIME" in eight.mail_options
    assert seven.data.isascii()
    assert not any(o.startswith("BODY=") for o in seven.mail_options)


def test_8bitmime_is_not_announced_to_a_server_that_does_not_offer_it(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.hide_extensions.add("8BITMIME")
    assert smtp_mailer(smtp_server).send_messages([eight_bit_message()]) == 1
    [got] = smtp_server.messages
    assert not any(o.startswith("BODY=") for o in got.mail_options)
    assert "Grüße aus Köln".encode() in got.data


def test_size_is_declared_and_an_oversized_message_is_not_sent(
    make_smtp_server: Callable[..., SMTPServer], smtp_mailer: Mailer
) -> None:
    server = make_smtp_server(data_size_limit=2000)
    big = make(1, body="x" * 3000)
    small = make(2)
    error = send_expecting_error(smtp_mailer(server), [big, small])
    [got] = server.messages
    assert got.mail_options == [f"SIZE={len(got.data)}"]
    assert error.results[0].sent is False
    assert error.results[0].retryable is False
    assert "the server accepts at most 2000" in (error.results[0].error or "")
    assert server.verbs().count("MAIL") == 1


# -- open and close -------------------------------------------------------------------------


def test_open_pool_is_reused_and_left_open_until_close(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    backend = smtp_mailer(smtp_server)
    assert backend.open() is True
    assert backend.open() is False
    assert backend.send_messages([make(1)]) == 1
    assert backend.send_messages([make(2), make(3)]) == 2
    assert "QUIT" not in smtp_server.verbs()
    backend.close()
    backend.close()
    assert smtp_server.verbs()[-1] == "QUIT"
    assert smtp_server.sessions == 1
    assert subjects(smtp_server) == ["Message 1", "Message 2", "Message 3"]


def test_with_block_sends_over_one_session(smtp_server: SMTPServer, smtp_mailer: Mailer) -> None:
    with smtp_mailer(smtp_server) as backend:
        backend.send_messages([make(1)])
        backend.send_messages([make(2)])
    assert smtp_server.sessions == 1
    assert smtp_server.verbs().count("QUIT") == 1
    assert backend.connection is None


def test_threads_sharing_one_backend_deliver_everything_once(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    backend = smtp_mailer(smtp_server)
    counts: list[int] = []

    def worker(base: int) -> None:
        for n in range(base, base + 5):
            counts.append(backend.send_messages([make(n)]))

    with backend:
        threads = [threading.Thread(target=worker, args=(b,)) for b in (0, 100, 200, 300)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert counts == [1] * 20
    assert sorted(subjects(smtp_server)) == sorted(
        f"Message {b + i}" for b in (0, 100, 200, 300) for i in range(5)
    )
    assert smtp_server.sessions == 1


def test_asend_messages_delivers_and_records(smtp_server: SMTPServer, smtp_mailer: Mailer) -> None:
    messages = [make(1), make(2)]
    assert asyncio.run(smtp_mailer(smtp_server).asend_messages(messages)) == 2
    assert subjects(smtp_server) == ["Message 1", "Message 2"]
    assert all(m.delivery is not None and m.delivery.ok for m in messages)


def test_direct_construction_without_mailers_uses_legacy_settings(
    smtp_server: SMTPServer,
) -> None:
    import mailpost

    mailpost.configure(EMAIL_HOST=smtp_server.host, EMAIL_PORT=smtp_server.port, EMAIL_TIMEOUT=5)
    with pytest.warns(mailpost.MailpostDeprecationWarning, match="Directly creating"):
        backend = SMTPBackend()
    msg = make(1)
    assert backend.send_messages([msg]) == 1
    assert subjects(smtp_server) == ["Message 1"]
    assert msg.sent_using is None
    assert msg.delivery is not None
    assert msg.delivery.ok


def test_send_mail_using_an_smtp_mailer(smtp_server: SMTPServer) -> None:
    import mailpost

    mailpost.configure(
        MAILERS={
            "default": {"BACKEND": "mailpost.backends.locmem.EmailBackend"},
            "smtp": {
                "BACKEND": SMTP_BACKEND,
                "OPTIONS": {"host": smtp_server.host, "port": smtp_server.port, "timeout": 5},
            },
        }
    )
    sent = mailpost.send_mail(
        "Hello", "Over SMTP", "from@example.com", ["to@example.com"], using="smtp"
    )
    assert sent == 1
    [got] = smtp_server.messages
    assert got.mail_from == "from@example.com"
    assert got.rcpt_tos == ["to@example.com"]
    assert parse(got.data)["Subject"] == "Hello"
    assert not getattr(mailpost, "outbox", [])


def test_mailer_url_reaches_the_smtp_backend(smtp_server: SMTPServer) -> None:
    import mailpost

    mailpost.configure(
        MAILERS={"default": f"smtp://{smtp_server.host}:{smtp_server.port}?timeout=5"}
    )
    assert make(1).send() == 1
    assert subjects(smtp_server) == ["Message 1"]


def test_without_a_timeout_option_the_socket_default_timeout_applies(
    silent_server: SilentServer, smtp_mailer: Mailer
) -> None:
    backend = smtp_mailer(silent_server, timeout=None)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(0.5)
    try:
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            backend.open()
    finally:
        socket.setdefaulttimeout(previous)
    assert time.monotonic() - started < 3


# -- messages with no recipients ---------------------------------------------------------


def test_a_message_without_recipients_is_skipped_but_kept_in_the_batch_report(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.refuse["bad@example.com"] = "550 5.1.1 no such user"
    empty = make(1, to=[], headers={"Message-ID": "<empty@example.com>"})
    refused = make(2, to=["bad@example.com"], headers={"Message-ID": "<refused@example.com>"})
    error = send_expecting_error(smtp_mailer(smtp_server), [empty, refused])
    # a message with no one to send to is never composed, so it has no Message-ID
    assert [r.message_id for r in error.results] == [None, "<refused@example.com>"]
    assert error.results[0] is empty.delivery
    assert error.results[1] is refused.delivery
    assert error.results[0].ok
    assert error.results[0].sent is False
    assert error.failed == [error.results[1]]
    assert smtp_server.messages == []


def test_a_batch_of_only_recipientless_messages_sends_nothing_and_returns_zero(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    assert smtp_mailer(smtp_server).send_messages([make(1, to=[]), make(2, to=[])]) == 0
    assert smtp_server.sessions == 0
