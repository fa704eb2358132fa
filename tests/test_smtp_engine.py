"""The SMTP engine under load and concurrency: PIPELINING, the session pool, messages per
session, idle health checks, timeouts, the rate limit, and per-recipient truth when many
sessions fail in different ways at once. Every scenario runs through the sync API and the
native async one, against a real aiosmtpd server on loopback."""

from __future__ import annotations

import asyncio
import contextvars
import email.parser
import email.policy
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest

import mailpost
from helpers import make_message as make
from mailpost import DeliveryError, EmailMessage, InvalidMailer
from mailpost._smtp.engine import Item, Pool, send_batch
from mailpost._smtp.ratelimit import RateLimit
from mailpost.backends import smtp
from mailpost.backends.smtp import SMTPBackend
from smtpd_harness import DROP, SMTPServer

Mailer = Callable[..., SMTPBackend]
MODES = ["sync", "async"]


def header_of(data: bytes, name: str) -> str:
    return str(email.parser.BytesParser(policy=email.policy.default).parsebytes(data)[name])


def subject_of(data: bytes) -> str:
    return header_of(data, "Subject")


def subjects(server: SMTPServer) -> list[str]:
    return [subject_of(m.data) for m in server.messages]


def deliver(backend: SMTPBackend, messages: Sequence[EmailMessage], mode: str) -> int:
    """``send_messages`` or ``asend_messages`` (on a fresh event loop), same contract."""
    if mode == "sync":
        return backend.send_messages(messages)
    return asyncio.run(backend.asend_messages(messages))


def deliver_expecting_error(
    backend: SMTPBackend, messages: Sequence[EmailMessage], mode: str
) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        deliver(backend, messages, mode)
    return info.value


# -- PIPELINING -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_pipelining_sends_mail_rcpt_and_data_as_one_group(
    smtp_server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    smtp_server.faults.pipelining = True
    messages = [make(n, to=[f"a{n}@example.com", f"b{n}@example.com"]) for n in range(3)]
    assert deliver(smtp_mailer(smtp_server), messages, mode) == 3
    mails = [c for c in smtp_server.commands if c.verb == "MAIL"]
    assert len(mails) == 3
    assert all(c.buffered for c in mails)  # RCPT and DATA had already arrived
    assert subjects(smtp_server) == ["Message 0", "Message 1", "Message 2"]
    assert all(m.delivery is not None and m.delivery.ok for m in messages)


def test_pipelining_off_sends_one_command_at_a_time(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.pipelining = True
    assert smtp_mailer(smtp_server, pipelining=False).send_messages([make(1)]) == 1
    [mail] = [c for c in smtp_server.commands if c.verb == "MAIL"]
    assert not mail.buffered


def test_without_the_extension_commands_are_not_pipelined(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    assert smtp_mailer(smtp_server).send_messages([make(1, to=["a@x.org", "b@x.org"])]) == 1
    [mail] = [c for c in smtp_server.commands if c.verb == "MAIL"]
    assert not mail.buffered


@pytest.mark.parametrize("mode", MODES)
def test_pipelined_refusals_are_attributed_to_each_recipient(
    smtp_server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    smtp_server.faults.pipelining = True
    smtp_server.faults.refuse.update(
        {"bad@example.com": "550 5.1.1 no such user", "busy@example.com": "450 4.2.1 busy"}
    )
    mixed = make(1, to=["good@example.com", "bad@example.com", "busy@example.com"])
    nobody = make(2, to=["bad@example.com", "busy@example.com"])
    after = make(3)
    error = deliver_expecting_error(smtp_mailer(smtp_server), [mixed, nobody, after], mode)
    first, second, third = error.results
    assert first.sent
    assert first.accepted == ["good@example.com"]
    assert first.refused == {
        "bad@example.com": (550, "5.1.1 no such user"),
        "busy@example.com": (450, "4.2.1 busy"),
    }
    assert not first.retryable  # one refusal is permanent
    assert not second.sent
    assert [s.status for s in second.recipients] == ["refused", "refused"]
    assert "all 2 recipient(s) refused" in (second.error or "")
    assert third.ok
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ["good@example.com"],
        ["rcpt-3@example.com"],
    ]
    verbs = smtp_server.verbs()
    assert "RSET" in verbs  # after the transaction nobody was accepted for


# -- the same guarantees, sync and async, with and without pipelining --------------------------


@pytest.fixture(params=[False, True], ids=["lockstep", "pipelined"])
def server(request: pytest.FixtureRequest, smtp_server: SMTPServer) -> SMTPServer:
    smtp_server.faults.pipelining = request.param
    return smtp_server


@pytest.mark.parametrize("mode", MODES)
def test_drop_mid_data_retries_that_message_once_on_a_new_session(
    server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    server.faults.data_replies[2] = DROP
    messages = [make(n) for n in range(1, 5)]
    assert deliver(smtp_mailer(server), messages, mode) == 4
    assert subjects(server) == [f"Message {n}" for n in range(1, 5)]
    assert [m.session for m in server.messages] == [1, 2, 2, 2]


@pytest.mark.parametrize("mode", MODES)
def test_421_after_n_messages_delivers_everything_once(
    server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    server.faults.close_after = 3
    messages = [make(n) for n in range(1, 11)]
    assert deliver(smtp_mailer(server), messages, mode) == 10
    assert subjects(server) == [f"Message {n}" for n in range(1, 11)]
    assert server.sessions == 4


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("mail_replies", "MAIL FROM <sender@example.com> refused: 451 4.3.0 later"),
        ("data_command_replies", "DATA command refused: 451 4.3.0 later"),
        ("data_replies", "message refused: 451 4.3.0 later"),
    ],
)
def test_a_4xx_at_any_stage_fails_that_message_only(
    server: SMTPServer, smtp_mailer: Mailer, mode: str, fault: str, error: str
) -> None:
    getattr(server.faults, fault)[2] = "451 4.3.0 later"
    messages = [make(1), make(2), make(3)]
    failure = deliver_expecting_error(smtp_mailer(server), messages, mode)
    assert subjects(server) == ["Message 1", "Message 3"]
    ok1, failed, ok3 = failure.results
    assert ok1.ok
    assert ok3.ok
    assert failed.sent is False
    assert failed.error == error
    assert failed.retryable
    assert failed.error_code == 451
    assert [m.delivery for m in messages] == failure.results
    assert server.sessions == 1


@pytest.mark.parametrize("mode", MODES)
def test_421_again_on_the_retry_stops_the_batch_without_hammering(
    server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    server.faults.refuse["busy@example.com"] = "421 4.3.2 shutting down"
    failure = deliver_expecting_error(
        smtp_mailer(server), [make(1, to=["busy@example.com"]), make(2)], mode
    )
    first, second = failure.results
    assert first.error == "the server closed the connection at RCPT TO: 421 4.3.2 shutting down"
    assert second.retryable
    assert not second.sent
    assert server.sessions == 2
    assert server.messages == []


# -- the pool ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_batch_is_spread_over_max_connections_sessions(
    server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    messages = [make(n) for n in range(40)]
    assert deliver(smtp_mailer(server, max_connections=4), messages, mode) == 40
    assert sorted(subjects(server)) == sorted(f"Message {n}" for n in range(40))
    assert 1 < server.sessions <= 4
    assert server.verbs().count("QUIT") == server.sessions
    # each message's result is its own (results come back in order over 4 workers): the
    # Message-ID it reports is the one the server received with that message's subject
    received = {subject_of(m.data): header_of(m.data, "Message-ID") for m in server.messages}
    reported = {m.subject: m.delivery.message_id if m.delivery else None for m in messages}
    assert len(set(reported.values())) == 40
    assert reported == received
    assert all(m.delivery is not None and m.delivery.ok for m in messages)


def test_messages_per_connection_reconnects_before_the_server_has_to_say_421(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    messages = [make(n) for n in range(10)]
    assert smtp_mailer(smtp_server, messages_per_connection=3).send_messages(messages) == 10
    assert smtp_server.sessions == 4
    assert Counter(m.session for m in smtp_server.messages) == {1: 3, 2: 3, 3: 3, 4: 1}
    assert smtp_server.verbs().count("QUIT") == 4


def test_an_open_pool_is_reused_by_later_batches(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    backend = smtp_mailer(smtp_server, max_connections=2)
    with backend:
        for n in range(3):
            assert backend.send_messages([make(n)]) == 1
    assert smtp_server.sessions == 1
    assert smtp_server.verbs().count("QUIT") == 1


def test_an_idle_session_is_health_checked_with_noop(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    with smtp_mailer(smtp_server, health_check_after=0) as backend:
        backend.send_messages([make(1)])
        backend.send_messages([make(2)])
    verbs = smtp_server.verbs()
    after_first = verbs[verbs.index("DATA") + 1 :]
    assert after_first.index("NOOP") < after_first.index("MAIL")  # checked before reuse
    assert smtp_server.sessions == 1


def test_a_session_the_server_closed_while_idle_is_replaced_transparently(
    make_smtp_server: Callable[..., SMTPServer], smtp_mailer: Mailer
) -> None:
    server = make_smtp_server(session_timeout=0.3)
    backend = smtp_mailer(server, health_check_after=None)
    with backend:
        assert backend.send_messages([make(1)]) == 1
        time.sleep(0.8)  # the server times the idle session out
        msg = make(2)
        assert backend.send_messages([msg]) == 1
    assert subjects(server) == ["Message 1", "Message 2"]
    assert server.sessions == 2
    assert msg.delivery is not None
    assert msg.delivery.ok


# -- many sessions, many faults: every result exact, everything delivered once --------------


def _faulty(server: SMTPServer) -> None:
    server.faults.pipelining = True
    server.faults.close_after = 7
    server.faults.refuse.update(
        {"gone@example.com": "550 5.1.1 gone", "full@example.com": "452 4.2.2 mailbox full"}
    )
    server.faults.data_replies.update({30: DROP, 90: "554 5.6.0 rejected"})


def _batch() -> list[EmailMessage]:
    messages = []
    for n in range(200):
        to = [f"r{n}@example.com"]
        if n % 10 == 3:
            to.append("gone@example.com")
        if n % 25 == 7:
            to = ["full@example.com"]
        messages.append(make(n, to=to))
    return messages


@pytest.mark.parametrize("mode", MODES)
def test_200_messages_over_8_sessions_with_faults_each_result_exact(
    smtp_server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    _faulty(smtp_server)
    messages = _batch()
    failure = deliver_expecting_error(smtp_mailer(smtp_server, max_connections=8), messages, mode)
    assert [m.delivery for m in messages] == failure.results
    by_subject = {subject_of(m.data): m for m in smtp_server.messages}
    delivered = Counter(subject_of(m.data) for m in smtp_server.messages)
    assert all(count == 1 for count in delivered.values())  # nothing delivered twice
    rejected_at_data = set()  # the server never records the 554 message
    for n, msg in enumerate(messages):
        result = msg.delivery
        assert result is not None
        subject = f"Message {n}"
        if n % 25 == 7:
            assert not result.sent
            assert result.refused == {"full@example.com": (452, "4.2.2 mailbox full")}
            assert result.retryable
            assert subject not in delivered
        elif result.sent:
            assert delivered[subject] == 1
            expected = [f"r{n}@example.com"]
            assert result.accepted == expected
            if n % 10 == 3:
                assert result.refused == {"gone@example.com": (550, "5.1.1 gone")}
                assert not result.ok
            else:
                assert result.ok
            assert by_subject[subject].rcpt_tos == expected
        else:
            rejected_at_data.add(subject)
            assert result.error == "message refused: 554 5.6.0 rejected"
            assert subject not in delivered
    assert len(rejected_at_data) == 1
    assert len(delivered) == 200 - 8 - 1
    assert smtp_server.sessions > 1
    per_session = Counter(m.session for m in smtp_server.messages)
    assert max(per_session.values()) <= 7


# -- timeouts ---------------------------------------------------------------------------------


def test_greeting_timeout_is_separate_from_the_general_timeout(
    silent_server: Any, smtp_mailer: Mailer
) -> None:
    backend = smtp_mailer(silent_server, timeout=30, greeting_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        backend.send_messages([make(1)])
    assert time.monotonic() - started < 3
    assert (info.value.results[0].error or "").endswith("timed out waiting for the server")
    assert info.value.retryable


@pytest.mark.parametrize("mode", MODES)
def test_command_timeout_bounds_a_slow_reply_and_is_retryable(
    smtp_server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    smtp_server.faults.mail_delay = 5
    backend = smtp_mailer(smtp_server, timeout=30, command_timeout=0.3)
    started = time.monotonic()
    failure = deliver_expecting_error(backend, [make(1)], mode)
    assert time.monotonic() - started < 4
    [result] = failure.results
    assert result.error == "connection lost at MAIL FROM: timed out waiting for the server"
    assert result.retryable
    assert smtp_server.messages == []


# -- the rate limit ---------------------------------------------------------------------------


def test_rate_limit_spaces_slots_on_an_injected_clock() -> None:
    now = [100.0]
    limit = RateLimit(10, clock=lambda: now[0])
    assert [limit.reserve() for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    now[0] += 10  # idle: no debt is carried over
    assert limit.reserve() == 0.0
    burst = RateLimit(10, burst=3, clock=lambda: now[0])
    assert [burst.reserve() for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1])


def test_rate_limit_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimit(0)


@pytest.mark.parametrize("mode", MODES)
def test_rate_limit_holds_a_pool_below_the_rate(
    smtp_server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    backend = smtp_mailer(smtp_server, rate_limit=50, max_connections=4)
    started = time.monotonic()
    assert deliver(backend, [make(n) for n in range(10)], mode) == 10
    assert time.monotonic() - started >= 9 / 50 * 0.95  # 10 messages need 9 intervals


# -- async twins ------------------------------------------------------------------------------


def test_async_with_sends_over_one_native_session(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    backend = smtp_mailer(smtp_server)

    async def main() -> list[int]:
        async with backend as open_backend:
            first = await open_backend.asend_messages([make(1)])
            second = await open_backend.asend_messages([make(2), make(3)])
            assert open_backend.connection is not None
            assert open_backend.connection.loop is asyncio.get_running_loop()
        return [first, second]

    assert asyncio.run(main()) == [1, 2]
    assert smtp_server.sessions == 1
    assert smtp_server.verbs()[-1] == "QUIT"
    assert backend.connection is None


def test_the_event_loop_keeps_running_while_a_message_is_sent(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.mail_delay = 0.3
    backend = smtp_mailer(smtp_server)

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            for _ in range(100):
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await backend.asend_messages([make(1)])
        task.cancel()
        return ticks

    assert asyncio.run(main()) >= 5


def test_asend_mail_and_asend_deliver_through_the_native_path(smtp_server: SMTPServer) -> None:
    mailpost.configure(
        MAILERS={
            "default": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": smtp_server.host, "port": smtp_server.port, "timeout": 5},
            }
        }
    )

    async def main() -> tuple[int, int]:
        a = await mailpost.asend_mail("Hello", "Body", "from@example.com", ["to@example.com"])
        b = await make(2).asend()
        return a, b

    assert asyncio.run(main()) == (1, 1)
    assert subjects(smtp_server) == ["Hello", "Message 2"]


def test_a_pool_opened_sync_serves_async_callers_too(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    backend = smtp_mailer(smtp_server)
    with backend:
        assert asyncio.run(backend.asend_messages([make(1)])) == 1
        assert backend.send_messages([make(2)]) == 1
    assert smtp_server.sessions == 1


def test_blocking_send_inside_the_loop_that_owns_the_pool_is_refused(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    backend = smtp_mailer(smtp_server)

    async def main() -> None:
        await backend.aopen()
        try:
            with pytest.raises(RuntimeError, match="asend_messages"):
                backend.send_messages([make(1)])
        finally:
            await backend.aclose()

    asyncio.run(main())
    assert smtp_server.messages == []


@pytest.mark.parametrize("mode", MODES)
def test_auth_failure_on_a_pool_never_shows_the_password(
    auth_smtp_server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    wrong = "wrong-Pa55word-pooled"
    backend = smtp_mailer(
        auth_smtp_server, use_tls=True, username="alice", password=wrong, max_connections=4
    )
    failure = deliver_expecting_error(backend, [make(n) for n in range(6)], mode)
    assert all(r.error_code == 535 and not r.retryable for r in failure.results)
    shown = [str(failure), repr(backend)] + [repr(r) for r in failure.results]
    assert not any(wrong in text for text in shown)
    assert auth_smtp_server.messages == []


# -- 8BITMIME ---------------------------------------------------------------------------------


def test_non_ascii_text_goes_8bit_when_the_server_offers_8bitmime(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    with smtp_mailer(smtp_server) as backend:
        assert backend.send_messages([make(1, body="Grüße aus Köln\n")]) == 1
    [got] = smtp_server.messages
    assert "Grüße aus Köln".encode() in got.data
    assert b"Content-Transfer-Encoding: 8bit" in got.data
    assert "BODY=8BITMIME" in got.mail_options


def test_non_ascii_text_goes_7bit_to_a_server_without_8bitmime(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.hide_extensions.add("8BITMIME")
    msg = make(1, body="Grüße aus Köln\n")
    assert smtp_mailer(smtp_server).send_messages([msg]) == 1
    [got] = smtp_server.messages
    assert got.data.isascii()
    assert not any(o.startswith("BODY=") for o in got.mail_options)


def test_8bit_bytes_are_rendered_again_for_a_session_without_8bitmime(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    """A message composed 8-bit for one session and retried on one that lacks 8BITMIME."""
    smtp_server.faults.hide_extensions.add("8BITMIME")
    backend = smtp_mailer(smtp_server)
    msg = make(1, body="Grüße aus Köln\n")
    [item] = backend._prepare_all([msg], same_thread=True)
    assert item.ready(True)
    assert item.eight_bit
    assert not item.data.isascii()

    async def send() -> list[mailpost.DeliveryResult]:
        pool = Pool(backend._client_config(), asyncio.get_running_loop())
        try:
            return await send_batch(pool, [item])
        finally:
            await pool.close()

    [result] = asyncio.run(send())
    assert result.sent
    assert result.ok
    [got] = smtp_server.messages
    assert got.data.isascii()
    assert not any(o.startswith("BODY=") for o in got.mail_options)
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(got.data)
    assert result.message_id == parsed["Message-ID"]


# -- composition as the batch goes ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", ["header", "address"])
def test_a_message_that_cannot_be_composed_is_not_sent_and_raised_after_the_batch(
    smtp_server: SMTPServer, smtp_mailer: Mailer, mode: str, bad: str
) -> None:
    messages = [make(n) for n in range(40)]
    if bad == "header":
        messages[17].extra_headers["X-Tag"] = "a\r\nBcc: victim@example.com"
    else:
        messages[17].to = ["not an address"]
    backend = smtp_mailer(smtp_server, max_connections=2)
    with pytest.raises(ValueError) as info:
        deliver(backend, messages, mode)
    assert ("X-Tag" if bad == "header" else "not an address") in str(info.value)
    delivered = sorted(subjects(smtp_server), key=lambda s: int(s.split()[1]))
    assert delivered == [f"Message {n}" for n in range(40) if n != 17]
    assert not any(b"victim" in m.data for m in smtp_server.messages)
    for n, msg in enumerate(messages):
        assert msg.delivery is not None
        if n == 17:
            assert not msg.delivery.sent
            assert not msg.delivery.retryable
            assert msg.delivery.error is not None
            assert msg.delivery.error.startswith("message could not be composed")
            assert msg.delivery.exception is info.value
        else:
            assert msg.delivery.ok


_LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("language", default="en")


class LazySubject:
    """Like a Django ``gettext_lazy`` string: its text depends on the active context."""

    def __str__(self) -> str:
        return {"en": "Welcome", "fr": "Bienvenue"}[_LANGUAGE.get()]


@pytest.mark.parametrize("mode", MODES)
def test_messages_are_composed_in_the_senders_context(
    smtp_server: SMTPServer, smtp_mailer: Mailer, mode: str
) -> None:
    """Composed later, from the sessions' callbacks (which run in the context the sessions
    were opened in, here before the language changed), yet in the sender's context."""
    smtp_server.faults.pipelining = True  # so most messages are composed from callbacks
    messages = [make(n, subject=LazySubject()) for n in range(30)]
    backend = smtp_mailer(smtp_server, max_connections=2)
    if mode == "sync":
        with backend:
            backend.send_messages([make(99)])  # sessions open, in the "en" context
            token = _LANGUAGE.set("fr")
            try:
                assert backend.send_messages(messages) == 30
            finally:
                _LANGUAGE.reset(token)
    else:

        async def send() -> int:
            async with backend:
                await backend.asend_messages([make(99)])
                _LANGUAGE.set("fr")  # this task's context only
                return await backend.asend_messages(messages)

        assert asyncio.run(send()) == 30
    assert subjects(smtp_server)[1:] == ["Bienvenue"] * 30


_THREAD_LANGUAGE = threading.local()


class ThreadLazySubject:
    """Like a Django lazy string under recent asgiref: the active language is visible to
    the thread that activated it only."""

    def __str__(self) -> str:
        return {"en": "Welcome", "fr": "Bienvenue"}[getattr(_THREAD_LANGUAGE, "code", "en")]


def test_lazy_values_are_composed_on_the_callers_thread_by_the_sync_api(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.pipelining = True
    messages = [make(n, subject=ThreadLazySubject()) for n in range(20)] + [make(20)]
    _THREAD_LANGUAGE.code = "fr"
    try:
        assert smtp_mailer(smtp_server).send_messages(messages) == 21
    finally:
        del _THREAD_LANGUAGE.code
    assert subjects(smtp_server) == ["Bienvenue"] * 20 + ["Message 20"]


def test_a_message_class_with_its_own_rendering_is_composed_in_the_callers_thread(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    seen: list[str] = []

    class Custom(EmailMessage):
        def _render(self, *, eight_bit: bool = False) -> bytes:
            seen.append(threading.current_thread().name)
            return super()._render(eight_bit=eight_bit)

    messages = [
        Custom(f"Message {n}", "Body\n", "a@example.com", ["b@example.com"]) for n in range(5)
    ]
    assert smtp_mailer(smtp_server).send_messages(messages) == 5
    assert seen == [threading.current_thread().name] * 5
    assert len(smtp_server.messages) == 5


@pytest.mark.parametrize("mode", MODES)
def test_a_batch_holds_the_bytes_of_the_messages_in_flight_only(
    smtp_server: SMTPServer, smtp_mailer: Mailer, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_server.faults.pipelining = True
    seen: list[Item] = []
    most = 0
    real_ready = Item.ready

    def ready(item: Item, eight_bit: bool) -> bool:
        nonlocal most
        ok = real_ready(item, eight_bit)
        if item not in seen:
            seen.append(item)
        most = max(most, sum(1 for i in seen if i.data))  # wire bytes held right now
        return ok

    monkeypatch.setattr(Item, "ready", ready)
    messages = [make(n, body="x" * 20_000 + "\n") for n in range(200)]
    assert deliver(smtp_mailer(smtp_server, max_connections=2), messages, mode) == 200
    assert len(seen) == 200
    assert 2 <= most <= 8  # a few per session: in flight, ahead, composed in the gap
    assert not any(i.data for i in seen)


@pytest.mark.parametrize("mode", MODES)
def test_messages_are_composed_as_they_are_sent_not_all_before(
    smtp_server: SMTPServer, smtp_mailer: Mailer, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large batch never holds every message's bytes at once: when message n is composed,
    the server already has most of the ones before it."""
    composed_when: list[int] = []
    real = smtp._compose

    def spy(item: Any, eight_bit: bool) -> None:
        composed_when.append(len(smtp_server.messages))
        real(item, eight_bit)

    monkeypatch.setattr(smtp, "_compose", spy)
    messages = [make(n) for n in range(60)]
    assert deliver(smtp_mailer(smtp_server), messages, mode) == 60
    assert len(composed_when) == 60
    assert composed_when[-1] >= 50  # the last was composed after ~all others were delivered


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("max_connections", 0, "option 'max_connections' must be a positive integer, not 0"),
        ("messages_per_connection", "5", "'messages_per_connection' must be a positive integer"),
        ("rate_limit", -1, "option 'rate_limit' must be a positive number of messages per"),
        ("command_timeout", 0, "option 'command_timeout' must be a positive number of seconds"),
        ("connect_timeout", True, "option 'connect_timeout' must be a positive number"),
        ("health_check_after", -1, "'health_check_after' must be a non-negative number"),
        ("pipelining", "yes", "option 'pipelining' must be True or False"),
    ],
)
def test_engine_options_are_validated_by_name(option: str, value: Any, words: str) -> None:
    mailpost.configure(
        MAILERS={
            "bulk": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "smtp.example.net", option: value},
            }
        }
    )
    with pytest.raises(InvalidMailer) as info:
        mailpost.mailers["bulk"]
    assert str(info.value).startswith("MAILERS['bulk']: ")
    assert words in str(info.value)


def test_engine_option_defaults() -> None:
    mailpost.configure(
        MAILERS={
            "bulk": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "smtp.example.net"},
            }
        }
    )
    backend = mailpost.mailers["bulk"]
    assert isinstance(backend, SMTPBackend)
    assert backend.max_connections == 1
    assert backend.messages_per_connection is None
    assert backend.rate_limit is None
    assert backend.pipelining is True
    assert backend.health_check_after == 30.0
    timeouts = backend._timeouts()
    assert timeouts["connect_timeout"] == 30.0  # no timeout anywhere: RFC 5321 defaults
    assert timeouts["command_timeout"] == 300.0
