"""The I/O-free SMTP logic: reply classification, MAIL parameters, DATA framing, and a
batch's bookkeeping (which message goes next, what a finished transaction means)."""

from __future__ import annotations

import errno
import smtplib
import ssl

import pytest

from mailpost._delivery import DeliveryResult
from mailpost._smtp.batch import Batch, Lane, Then
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
from mailpost._smtp.session import Attempt, ClientConfig, Item, Sent, Session
from mailpost._smtp.wire import Wire

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


# -- a batch's bookkeeping: the state transitions both drivers share ------------------


def lane_over(
    count: int, *, per_session: int | None = None
) -> tuple[Lane, list[tuple[int, DeliveryResult]]]:
    """A lane through a batch of ``count`` two-recipient items; what ``on_result`` heard."""
    items = [
        Item(None, "s@example.com", ["a@example.com", "b@example.com"], b"x", f"<{n}@t>")
        for n in range(count)
    ]
    heard: list[tuple[int, DeliveryResult]] = []
    batch = Batch(items, lambda i, r: heard.append((i, r)), per_session)
    return Lane(batch), heard


def delivered(index: int) -> Attempt:
    return Attempt(DeliveryResult(message_id=f"<{index}@t>", sent=True))


def lost(index: int) -> Attempt:
    result = DeliveryResult(message_id=f"<{index}@t>", error="lost", retryable=True)
    return Attempt(result, lost=True, usable=False)


def sent_envelope(index: int) -> Sent:
    return Sent(DeliveryResult(message_id=f"<{index}@t>"), [], 4)


def test_a_lane_takes_the_retry_first_then_the_message_ahead_then_the_queue() -> None:
    lane, _ = lane_over(3)
    assert lane.next() == (0, None)
    assert lane.follow(0, lambda item: True) == 1
    ahead = sent_envelope(1)
    assert lane.finished(0, lost(0), 1, follow=1, following=ahead) is Then.DISCARD
    assert lane.next() == (0, None)  # the lost message, before the one whose envelope went out
    assert lane.finished(0, delivered(0), 1) is Then.KEEP
    assert lane.next() == (1, ahead)
    assert lane.next() == (2, None)
    assert lane.next() is None


def test_a_message_that_may_not_follow_stays_first_in_the_queue() -> None:
    lane, _ = lane_over(3, per_session=2)
    assert lane.next() == (0, None)
    assert lane.follow(0, lambda item: False) is None  # e.g. it streams files
    assert lane.follow(1, lambda item: True) is None  # no room: 1 + this one + it > 2
    assert list(lane.batch.queue) == [1, 2]
    follow = lane.follow(0, lambda item: True)
    assert follow == 1
    lane.followed(follow, None)  # its envelope was not written after all
    assert list(lane.batch.queue) == [1, 2]


def test_a_lost_message_is_retried_once_then_keeps_its_lost_result() -> None:
    lane, heard = lane_over(2)
    lane.next()
    lane.opened()
    assert lane.finished(0, lost(0), 1) is Then.DISCARD
    assert heard == []  # not final yet: retried on a new session
    assert lane.may_connect() is None  # the first loss may reconnect
    lane.opened()
    again = lost(0)
    assert lane.next() == (0, None)
    assert lane.finished(0, again, 1) is Then.DISCARD
    assert heard == [(0, again.result)]
    assert lane.batch.results[0] is again.result
    assert lane.next() == (1, None)


def test_a_lane_reconnects_again_only_after_a_delivery_on_the_new_session() -> None:
    lane, _ = lane_over(4)
    lane.opened()
    lane.next()
    lane.finished(0, lost(0), 1)
    lane.opened()  # reconnect 1
    lane.next()
    lane.finished(0, lost(0), 1)  # lost again: final, nothing delivered since the reconnect
    problem = lane.may_connect()
    assert problem is not None
    text, failure, exc = problem
    assert "lost again" in text
    assert failure.retryable
    assert exc is None
    lane, _ = lane_over(4)
    lane.opened()
    lane.next()
    lane.finished(0, lost(0), 1)
    lane.opened()
    lane.next()
    lane.finished(0, delivered(0), 1)
    lane.next()
    lane.finished(1, lost(1), 2)
    assert lane.may_connect() is None  # the new session delivered: one more reconnect


def test_a_session_is_retired_when_its_allowance_is_used_and_the_next_is_not_a_reconnect() -> None:
    lane, heard = lane_over(3, per_session=2)
    lane.opened()
    lane.next()
    assert lane.finished(0, delivered(0), 1) is Then.KEEP
    lane.next()
    assert lane.finished(1, delivered(1), 2) is Then.RETIRE
    assert [index for index, _ in heard] == [0, 1]
    assert not lane.connected
    lane.opened()
    assert lane.policy.reconnects == 0


def test_an_unusable_session_is_discarded_after_the_result_is_kept() -> None:
    lane, heard = lane_over(2)
    lane.next()
    refused = Attempt(DeliveryResult(message_id="<0@t>", error="refused"), usable=False)
    assert lane.finished(0, refused, 1) is Then.DISCARD
    assert heard == [(0, refused.result)]
    assert lane.next() == (1, None)  # not retried: the server answered


def test_a_stopped_lane_gives_its_message_back_and_the_batch_reports_it_unattempted() -> None:
    lane, heard = lane_over(3)
    lane.next()
    lane.finished(0, delivered(0), 1)
    assert lane.next() == (1, None)
    failure = Failure("could not connect", None, True)
    error = ConnectionRefusedError()
    lane.stopped(1, ("could not connect to h:25", failure, error))
    assert list(lane.batch.queue) == [1, 2]
    results = lane.batch.finish()
    assert [r.message_id for r in results] == ["<0@t>", "<1@t>", "<2@t>"]
    assert results[0].sent
    for result in results[1:]:
        assert not result.attempted
        assert result.retryable
        assert result.error == "not attempted: could not connect to h:25"
        assert result.exception is error
        assert [r.status for r in result.recipients] == ["unattempted", "unattempted"]
    assert [index for index, _ in heard] == [0, 1, 2]


def test_a_lane_stopped_while_retrying_keeps_the_lost_result() -> None:
    lane, heard = lane_over(1)
    lane.next()
    first = lost(0)
    lane.finished(0, first, 1)
    lane.stopped(0, ("could not reconnect", Failure("no", None, True), None))
    assert heard == [(0, first.result)]
    assert lane.batch.finish() == [first.result]


def test_the_next_queued_message_is_composed_once_the_server_tells_8bitmime() -> None:
    calls: list[bool] = []
    lane, _ = lane_over(2)
    lane.batch.items[1].prepare = lambda item, eight_bit: calls.append(eight_bit)
    lane.next()
    lane.batch.prime(None)  # no session yet: nothing known about the server
    assert calls == []
    lane.batch.prime({"8bitmime": ""})
    lane.batch.prime({"8bitmime": ""})
    assert calls == [True]  # composed once


def _session(extensions: dict[str, str]) -> Session:
    import asyncio

    loop = asyncio.new_event_loop()
    loop.close()  # the session only works things out here: nothing is written
    session = Session(Wire(loop), ClientConfig("127.0.0.1", 25))
    session.extensions = dict(extensions)
    return session


def test_a_planned_envelope_is_the_one_worked_out_when_its_turn_comes() -> None:
    data = b"Subject: hi\r\n\r\n.starts with a dot\r\n"
    item = Item(None, "s@example.com", ["a@example.com", "b@example.com"], data, "<1@t>")
    fresh = Item(None, "s@example.com", ["a@example.com", "b@example.com"], data, "<1@t>")
    session = _session({"pipelining": "", "size": "1000", "8bitmime": ""})
    session.plan(item)
    assert item.planned is not None
    planned_result = item.planned[1]
    result, lines = session._envelope(item)
    assert result is planned_result
    assert lines == session._envelope(fresh)[1]
    assert lines == [
        f"MAIL FROM:<s@example.com> SIZE={len(data)}\r\n".encode(),
        b"RCPT TO:<a@example.com>\r\n",
        b"RCPT TO:<b@example.com>\r\n",
        b"DATA\r\n",
    ]
    assert item.planned is None  # used once
    assert item.parts == (b"Subject: hi\r\n\r\n..starts with a dot\r\n", b".\r\n")


def test_a_plan_made_for_other_extensions_is_worked_out_again() -> None:
    data = b"Subject: x\r\n\r\nbody\r\n"
    item = Item(None, "s@example.com", ["a@example.com"], data, "<2@t>")
    _session({"size": "10"}).plan(item)  # too big there: not planned at all
    assert item.planned is None
    _session({"pipelining": ""}).plan(item)
    assert item.planned is not None
    result, lines = _session({"pipelining": "", "size": "1000"})._envelope(item)
    assert lines is not None
    assert lines[0] == f"MAIL FROM:<s@example.com> SIZE={len(data)}\r\n".encode()  # its own
    assert item.parts is None  # stuffed again when written
    assert result.message_id == "<2@t>"
