"""The SMTP engine's pipelined fast path (``_smtp.drivers.Pump``) with faults in the middle
of long batches.

In a pipelined batch the worker hands the steady state to the pump after the first message:
each group of replies (one message's data, the next message's envelope) is handled inside
``data_received``, and anything unusual hands the transaction back to the coroutine path.
These tests drive 40-90 message batches through it against the real aiosmtpd server of
``smtpd_harness``, cause one kind of trouble well after the first message, and check that
the caller is told what the general path would have said: per-message and per-recipient
results in batch order, each message delivered at most once (exactly once when reported
sent), an interrupted message retried once on a new session.

The evidence:

- ``check_batch``: each result belongs to its message (its Message-ID, the server's own
  "queued as mN" for it, the recipients the server recorded) and the server took each sent
  message exactly once and nothing else.
- the ``pumped`` spy on ``Pump.step``: the pump itself wrote messages before and after the
  fault, so the fault hit the fast path, and the pump took over again afterwards.
- for refusals, lost sessions and the SIZE limit over one session, where a run is
  deterministic: the results equal those of the same batch and faults through the general
  path (``GENERAL_PATH``: a rate limit keeps the pump off) on a fresh server.

Scenarios run over one and three sessions and through ``send_messages`` and
``asend_messages``; to stay fast, each scenario takes a few combinations that between them
cover every value of each.

The harness has no "stop answering at the k-th message" fault, so :func:`stall` wraps one
hook of the harness's own handler, on the same server.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import email.message
import email.parser
import email.policy
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import pytest

import mailpost
from mailpost import DeliveryError, DeliveryResult, EmailMessage
from mailpost._smtp.drivers import Pump
from mailpost._smtp.wire import Wire
from mailpost.backends.smtp import SMTPBackend
from smtp_fixtures import mailer_entry
from smtpd_harness import DROP, Faults, SMTPServer

#: A hang (a reply the pump never wakes for) fails the test instead of stalling the suite.
pytestmark = pytest.mark.timeout(20)

Mailer = Callable[..., SMTPBackend]
MakeServer = Callable[..., SMTPServer]
Build = Callable[[], list[EmailMessage]]

#: The same batch through the coroutine path: with a rate limit the worker never starts
#: the pump (nor writes the next envelope behind a message's data).
GENERAL_PATH: dict[str, Any] = {"rate_limit": 1_000_000}

#: The command and data timeout of the stall tests, and how long a stalled hook waits at
#: most: it is cancelled as soon as the client hangs up.
SHORT_TIMEOUT = 0.2
STALL = 5.0

OK_RCPT = "2.1.5 Recipient OK"
SENDER = "sender@example.com"


def mid(n: int) -> str:
    return f"<{n}.pump@example.test>"


def make(n: int, **kwargs: Any) -> EmailMessage:
    """Message ``n``; every fourth has a second recipient, so reply groups vary in size."""
    to = [f"rcpt-{n}@example.com"]
    if n % 4 == 1:
        to.append(f"also-{n}@example.com")
    fields: dict[str, Any] = {
        "subject": f"Message {n}",
        "body": f"Body {n}\n",
        "from_email": SENDER,
        "to": to,
        "headers": {"Message-ID": mid(n)},
    }
    fields.update(kwargs)
    return EmailMessage(**fields)


def batch(size: int, special: dict[int, dict[str, Any]] | None = None) -> list[EmailMessage]:
    special = special or {}
    return [make(n, **special.get(n, {})) for n in range(size)]


def parse(data: bytes) -> email.message.EmailMessage:
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


_headers = email.parser.BytesHeaderParser(policy=email.policy.default)


def header(data: bytes, name: str) -> str:
    return str(_headers.parsebytes(data)[name])


def ids_at(server: SMTPServer) -> list[str]:
    """The Message-ID of each message the server took, in the order it took them."""
    return [header(got.data, "Message-ID") for got in server.messages]


def send(backend: SMTPBackend, messages: Sequence[EmailMessage], mode: str) -> list[DeliveryResult]:
    """``send_messages`` or ``asend_messages`` (on a fresh event loop); the results the
    caller was given, which must be the ones recorded on the messages, in order."""
    try:
        if mode == "sync":
            count = backend.send_messages(messages)
        else:
            count = asyncio.run(backend.asend_messages(messages))
    except DeliveryError as exc:
        results = exc.results
        assert any(not r.ok for r in results)
    else:
        results = [m.delivery for m in messages if m.delivery is not None]
        assert all(r.ok for r in results)
        assert count == len(messages)
    assert len(results) == len(messages)
    assert all(r is m.delivery for r, m in zip(results, messages, strict=True))
    return results


def check_batch(server: SMTPServer, results: Sequence[DeliveryResult]) -> None:
    """Each result is its own message's, and the server took each sent one exactly once."""
    ids = ids_at(server)
    taken = Counter(ids)
    assert set(taken) <= {mid(n) for n in range(len(results))}
    for n, result in enumerate(results):
        if result.attempted:  # (a message never composed has no Message-ID to report)
            assert result.message_id == mid(n), (n, result)
        assert taken[mid(n)] == (1 if result.sent else 0), (n, result)
        if result.sent:
            position = ids.index(mid(n))
            got = server.messages[position]
            assert header(got.data, "Subject") == f"Message {n}"
            assert got.mail_from == SENDER
            assert got.rcpt_tos == result.accepted
            assert result.response == (250, f"2.0.0 OK: queued as m{position + 1}")


def assert_ok(result: DeliveryResult, recipients: Sequence[str]) -> None:
    assert result.ok, result
    assert result.sent
    assert result.attempted
    assert (result.error, result.error_code, result.retryable) == (None, None, False)
    assert [(s.address, s.status, s.code, s.reply) for s in result.recipients] == [
        (address, "accepted", 250, OK_RCPT) for address in recipients
    ]


def assert_all_ok_except(
    messages: Sequence[EmailMessage], results: Sequence[DeliveryResult], failed: Collection[int]
) -> None:
    for n, (msg, result) in enumerate(zip(messages, results, strict=True)):
        if n not in failed:
            assert_ok(result, msg.recipients())


def split(reply: str) -> tuple[int, str]:
    return int(reply[:3]), reply[4:]


def comparable(results: Sequence[DeliveryResult]) -> list[DeliveryResult]:
    """Results to compare across paths. A message the batch never reached has a Message-ID
    only if it happened to be composed before the batch stopped, which depends on how far
    ahead a path composes, not on what was delivered: left out of the comparison."""
    return [r if r.attempted else dataclasses.replace(r, message_id=None) for r in results]


def general_path_results(
    build: Build,
    faults: Faults,
    *,
    server_options: dict[str, Any] | None = None,
    setup: Callable[[SMTPServer], None] | None = None,
    **options: Any,
) -> list[DeliveryResult]:
    """The results of batch ``build()`` through the general path (one session, mailer
    ``options``), as :func:`comparable` shows them, on a fresh harness server with a copy of
    ``faults`` (and ``server_options``; ``setup`` is called before it is connected to)."""
    server = SMTPServer(faults=copy.deepcopy(faults), **(server_options or {}))
    if setup is not None:
        setup(server)
    with server:
        entry = mailer_entry(server, **GENERAL_PATH, **options)
        mailpost.configure(MAILERS={"test": entry})
        backend = mailpost.mailers["test"]
        assert isinstance(backend, SMTPBackend)
        return comparable(send(backend, build(), "sync"))


@pytest.fixture
def server(smtp_server: SMTPServer) -> SMTPServer:
    """The harness's server, announcing PIPELINING (which the pump needs)."""
    smtp_server.faults.pipelining = True
    return smtp_server


@pytest.fixture
def pumped(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch indexes of the messages whose data the pump itself wrote."""
    seen: list[int] = []
    step = Pump.step

    def spy(self: Any, index: int, sent: Any) -> bool:
        wrote = step(self, index, sent)
        if wrote:
            seen.append(index)
        return wrote

    monkeypatch.setattr(Pump, "step", spy)
    return seen


def assert_pumped_around(pumped: Sequence[int], first: int, last: int) -> None:
    """The pump wrote messages before ``first`` and after ``last``, and none twice."""
    assert any(n < first for n in pumped), pumped
    assert any(n > last for n in pumped), pumped
    assert len(pumped) == len(set(pumped)), pumped


def stall(server: SMTPServer, hook: str, calls: Collection[int], seconds: float = STALL) -> None:
    """The server stops answering at the given calls (1-based, over the server's life) of its
    ``handle_<hook>`` hook: no reply, and the message is not taken. A stalled call waits at
    most ``seconds``, then refuses the message with a 451, and is cancelled as soon as the
    client hangs up. Call before the first session: aiosmtpd looks the hooks up when a
    session starts."""
    handler = server.handler
    original = getattr(handler, f"handle_{hook}")
    count = 0

    async def stalled(*args: Any) -> Any:
        nonlocal count
        count += 1
        if count in calls:
            await asyncio.sleep(seconds)
            return "451 4.4.2 too late: the client should have given up"
        return await original(*args)

    setattr(handler, f"handle_{hook}", stalled)


# -- recipients refused at RCPT TO -------------------------------------------------------------

SIZE_REFUSALS = 80
PARTIAL = {30: 1, 31: 2, 60: 1}  # message -> how many of its three recipients are refused
TOTAL = {45: 2, 46: 1}  # message -> how many recipients it has, all refused


def refusal_batch() -> list[EmailMessage]:
    special: dict[int, dict[str, Any]] = {}
    for n, refused in PARTIAL.items():
        good = [f"rcpt-{n}@example.com", f"ok-{n}@example.com"][: 3 - refused]
        special[n] = {"to": [*good, *(f"no-{n}-{j}@example.com" for j in range(refused))]}
    for n, count in TOTAL.items():
        special[n] = {"to": [f"no-{n}-{j}@example.com" for j in range(count)]}
    return batch(SIZE_REFUSALS, special)


@pytest.mark.parametrize(
    ("reply", "sessions", "mode"),
    [
        ("550 5.1.1 no such user", 1, "sync"),
        ("450 4.2.1 mailbox busy", 1, "async"),
        ("450 4.2.1 mailbox busy", 3, "sync"),
        ("550 5.1.1 no such user", 3, "async"),
    ],
    ids=["5xx-1-sync", "4xx-1-async", "4xx-3-sync", "5xx-3-async"],
)
def test_recipients_refused_mid_batch_are_reported_per_recipient(
    server: SMTPServer,
    smtp_mailer: Mailer,
    pumped: list[int],
    reply: str,
    sessions: int,
    mode: str,
) -> None:
    code, text = split(reply)
    messages = refusal_batch()
    server.faults.refuse.update(
        {a: reply for m in messages for a in m.recipients() if a.startswith("no-")}
    )
    results = send(smtp_mailer(server, max_connections=sessions), messages, mode)

    check_batch(server, results)
    assert_all_ok_except(messages, results, {*PARTIAL, *TOTAL})
    for n, refused in PARTIAL.items():
        result, everyone = results[n], messages[n].recipients()
        good, bad = everyone[: 3 - refused], everyone[3 - refused :]
        assert result.sent
        assert not result.ok
        assert result.accepted == good
        assert result.refused == dict.fromkeys(bad, (code, text))
        assert [(s.status, s.code, s.retryable) for s in result.recipients] == [
            ("accepted", 250, False)
        ] * len(good) + [("refused", code, code < 500)] * len(bad)
        assert result.response is not None
        assert result.response[0] == 250
        assert result.error_code == code
        assert result.retryable is (code < 500)
        assert (result.error or "").startswith(f"{refused} of 3 recipient(s) refused: ")
        assert all(f"<{a}>" in (result.error or "") for a in bad)
    for n, count in TOTAL.items():
        result = results[n]
        assert not result.sent
        assert result.accepted == []
        assert [(s.status, s.code, s.reply) for s in result.recipients] == [
            ("refused", code, text)
        ] * count
        assert result.response is None
        assert result.error_code == code
        assert result.retryable is (code < 500)
        assert (result.error or "").startswith(f"all {count} recipient(s) refused: ")
    assert server.verbs().count("RSET") == len(TOTAL)  # once per message nobody took
    assert server.sessions == sessions
    assert not set(TOTAL) & set(pumped)  # handed back: the general path sends RSET
    assert_pumped_around(pumped, min(PARTIAL), max(PARTIAL))
    if sessions == 1:
        assert set(PARTIAL) <= set(pumped)  # a partial refusal stays on the fast path
        expected = general_path_results(refusal_batch, server.faults)
        assert comparable(results) == expected


# -- MAIL, DATA or the end of DATA refused -----------------------------------------------------

SIZE_STAGES = 60
#: 1-based over the server's life (with one session the n-th MAIL, DATA or end of DATA is
#: message n - 1's): two messages in a row and a later one.
STAGE_FAULTS = (30, 31, 45)
STAGES = {
    "mail": ("mail_replies", "MAIL FROM <sender@example.com> refused: {reply}"),
    "data": ("data_command_replies", "DATA command refused: {reply}"),
    "data-end": ("data_replies", "message refused: {reply}"),
}


def stage_batch() -> list[EmailMessage]:
    return batch(SIZE_STAGES)


@pytest.mark.parametrize(
    ("stage", "reply", "mode"),
    [
        ("mail", "451 4.3.0 try again later", "sync"),
        ("mail", "554 5.7.1 sender rejected", "async"),
        ("data", "554 5.5.1 transaction failed", "sync"),
        ("data", "451 4.3.0 try again later", "async"),
        ("data-end", "452 4.3.1 out of storage", "sync"),
        ("data-end", "554 5.6.0 message rejected", "async"),
    ],
    ids=[
        "mail-4xx-sync",
        "mail-5xx-async",
        "data-5xx-sync",
        "data-4xx-async",
        "data-end-4xx-sync",
        "data-end-5xx-async",
    ],
)
def test_a_refusal_at_any_stage_mid_batch_fails_that_message_only(
    server: SMTPServer,
    smtp_mailer: Mailer,
    pumped: list[int],
    stage: str,
    reply: str,
    mode: str,
) -> None:
    code, text = split(reply)
    fault, error = STAGES[stage]
    getattr(server.faults, fault).update(dict.fromkeys(STAGE_FAULTS, reply))
    failed = {n - 1 for n in STAGE_FAULTS}
    messages = stage_batch()
    results = send(smtp_mailer(server), messages, mode)

    check_batch(server, results)
    assert_all_ok_except(messages, results, failed)
    for n in failed:
        result, recipients = results[n], messages[n].recipients()
        assert not result.sent
        assert result.attempted
        assert result.accepted == []
        assert result.error == error.format(reply=reply)
        assert result.error_code == code
        assert result.retryable is (code < 500)
        if stage == "mail":  # no recipient was asked: the refusal is the sender's
            assert result.response is None
            expected = [("unattempted", code, text, code < 500)] * len(recipients)
        else:
            assert result.response == (code, text)
            expected = [("refused", code, text, code < 500)] * len(recipients)
        assert [(s.status, s.code, s.reply, s.retryable) for s in result.recipients] == expected
    assert server.sessions == 1
    assert_pumped_around(pumped, min(failed), max(failed))
    if stage == "data-end":  # the pump applies the refusal itself and goes on
        assert failed <= set(pumped)
        assert server.verbs().count("RSET") == 0
    else:  # the transaction needs RSET: handed back to the general path
        assert not failed & set(pumped)
        assert server.verbs().count("RSET") == len(failed)
    assert comparable(results) == general_path_results(stage_batch, server.faults)


@pytest.mark.parametrize(
    ("reply", "mode"),
    [("452 4.3.1 out of storage", "async"), ("554 5.6.0 rejected", "sync")],
    ids=["4xx-async", "5xx-sync"],
)
def test_refusals_at_the_end_of_data_over_three_sessions_fail_those_messages_only(
    server: SMTPServer, smtp_mailer: Mailer, pumped: list[int], reply: str, mode: str
) -> None:
    code, text = split(reply)
    server.faults.data_replies.update(dict.fromkeys(STAGE_FAULTS, reply))
    messages = stage_batch()
    results = send(smtp_mailer(server, max_connections=3), messages, mode)

    check_batch(server, results)
    failed = {n for n, r in enumerate(results) if not r.ok}
    assert len(failed) == len(STAGE_FAULTS)  # which ones depends on the sessions' pace
    assert_all_ok_except(messages, results, failed)
    for n in failed:
        result = results[n]
        assert not result.sent
        assert result.response == (code, text)
        assert result.error == f"message refused: {reply}"
        assert result.retryable is (code < 500)
        assert {(s.status, s.code) for s in result.recipients} == {("refused", code)}
    assert len(server.messages) == SIZE_STAGES - len(STAGE_FAULTS)
    assert server.sessions == 3
    assert_pumped_around(pumped, min(failed), max(failed))


# -- the session lost: 421 after N messages, a drop or a 421 at the end of DATA -------------

SIZE_LOST = 70
PER_SESSION = 9
SESSIONS_NEEDED = -(-SIZE_LOST // PER_SESSION)


def lost_batch() -> list[EmailMessage]:
    return batch(SIZE_LOST)


@pytest.mark.parametrize(("sessions", "mode"), [(1, "sync"), (1, "async"), (3, "sync")])
def test_421_after_every_n_messages_delivers_the_long_batch_exactly_once_in_order(
    server: SMTPServer, smtp_mailer: Mailer, pumped: list[int], sessions: int, mode: str
) -> None:
    server.faults.close_after = PER_SESSION
    messages = lost_batch()
    results = send(smtp_mailer(server, max_connections=sessions), messages, mode)

    check_batch(server, results)
    assert_all_ok_except(messages, results, ())
    per_session = Counter(got.session for got in server.messages)
    assert max(per_session.values()) <= PER_SESSION
    assert server.sessions >= SESSIONS_NEEDED
    assert_pumped_around(pumped, PER_SESSION, SIZE_LOST - PER_SESSION)
    if sessions == 1:
        # the message whose MAIL got the 421 goes first on the next session: order kept
        assert ids_at(server) == [mid(n) for n in range(SIZE_LOST)]
        assert [got.session for got in server.messages] == [
            1 + n // PER_SESSION for n in range(SIZE_LOST)
        ]
        assert server.sessions == SESSIONS_NEEDED
        expected = general_path_results(lost_batch, server.faults)
        assert comparable(results) == expected


SIZE_DROP = 70
#: 1-based ends of DATA: the 25th is message 24's; it is retried (the 26th), so the 50th is
#: message 48's.
DROPS = {25: 24, 50: 48}


def drop_batch() -> list[EmailMessage]:
    return batch(SIZE_DROP)


@pytest.mark.parametrize(
    ("loss", "sessions", "mode"),
    [
        (DROP, 1, "sync"),
        ("421 4.3.2 shutting down", 1, "async"),
        (DROP, 3, "async"),
        ("421 4.3.2 shutting down", 3, "sync"),
    ],
    ids=["drop-1-sync", "421-1-async", "drop-3-async", "421-3-sync"],
)
def test_session_lost_at_the_end_of_data_retries_that_message_once_on_a_new_session(
    server: SMTPServer,
    smtp_mailer: Mailer,
    pumped: list[int],
    loss: str,
    sessions: int,
    mode: str,
) -> None:
    server.faults.data_replies.update(dict.fromkeys(DROPS, loss))
    messages = drop_batch()
    results = send(smtp_mailer(server, max_connections=sessions), messages, mode)

    check_batch(server, results)
    assert_all_ok_except(messages, results, ())  # every message, the interrupted ones too
    assert len(server.messages) == SIZE_DROP
    assert server.sessions == sessions + len(DROPS)  # one new session per loss
    assert_pumped_around(pumped, min(DROPS.values()), max(DROPS.values()))
    if sessions == 1:
        first, second = DROPS.values()
        assert ids_at(server) == [mid(n) for n in range(SIZE_DROP)]
        # each interrupted message went first on a new session
        assert [got.session for got in server.messages] == [
            1 if n < first else 2 if n < second else 3 for n in range(SIZE_DROP)
        ]
        assert {first, second} <= set(pumped)  # both were lost inside the pump
        expected = general_path_results(drop_batch, server.faults)
        assert comparable(results) == expected


SIZE_CLOSED = 50
CLOSED_AT = 25


def closed_batch() -> list[EmailMessage]:
    return batch(SIZE_CLOSED, {CLOSED_AT: {"to": ["closing@example.com"]}})


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_421_again_on_the_retry_stops_the_batch_and_reports_the_rest_unattempted(
    server: SMTPServer, smtp_mailer: Mailer, pumped: list[int], mode: str
) -> None:
    server.faults.refuse["closing@example.com"] = "421 4.3.2 shutting down"
    messages = closed_batch()
    results = send(smtp_mailer(server), messages, mode)

    check_batch(server, results)
    assert_all_ok_except(messages, results, set(range(CLOSED_AT, SIZE_CLOSED)))
    lost = results[CLOSED_AT]
    assert not lost.sent
    assert lost.attempted
    assert lost.error == "the server closed the connection at RCPT TO: 421 4.3.2 shutting down"
    assert lost.error_code == 421
    assert lost.retryable
    assert [(s.status, s.code) for s in lost.recipients] == [("unattempted", 421)]
    for n in range(CLOSED_AT + 1, SIZE_CLOSED):
        result = results[n]
        assert not result.sent
        assert not result.attempted
        assert result.retryable
        assert result.error == (
            "not attempted: the connection was lost again before any message was delivered on it"
        )
        assert [(s.address, s.status) for s in result.recipients] == [
            (a, "unattempted") for a in messages[n].recipients()
        ]
        assert all(s.retryable for s in result.recipients)
    assert ids_at(server) == [mid(n) for n in range(CLOSED_AT)]
    assert server.sessions == 2  # one reconnect, nothing delivered on it: stop, no hammering
    addresses = [address for _, address, _ in server.recorder.rcpt_replies]
    assert addresses.count("closing@example.com") == 2
    assert max(pumped) < CLOSED_AT
    assert_pumped_around(pumped, CLOSED_AT - 20, CLOSED_AT - 5)
    assert comparable(results) == general_path_results(closed_batch, server.faults)


# -- a message over the server's SIZE limit ----------------------------------------------------

SIZE_LIMIT = 4000
SIZE_SIZED = 60
OVERSIZED = (20, 21, 40)


def sized_batch() -> list[EmailMessage]:
    big = {"body": ("y" * 70 + "\n") * 80}  # about 5.7 kB
    return batch(SIZE_SIZED, dict.fromkeys(OVERSIZED, big))


@pytest.mark.parametrize(("sessions", "mode"), [(1, "sync"), (3, "async")])
def test_a_message_over_the_size_limit_fails_clearly_and_its_neighbours_are_delivered(
    make_smtp_server: MakeServer,
    smtp_mailer: Mailer,
    pumped: list[int],
    sessions: int,
    mode: str,
) -> None:
    faults = Faults(pipelining=True)
    server = make_smtp_server(faults=faults, data_size_limit=SIZE_LIMIT)
    messages = sized_batch()
    results = send(smtp_mailer(server, max_connections=sessions), messages, mode)

    check_batch(server, results)
    assert_all_ok_except(messages, results, OVERSIZED)
    for n in OVERSIZED:
        result = results[n]
        assert not result.sent
        assert re.fullmatch(
            rf"message is \d+ bytes; the server accepts at most {SIZE_LIMIT}", result.error or ""
        )
        assert result.error_code is None
        assert not result.retryable  # it will never fit this server
        assert result.response is None
        assert [(s.status, s.code) for s in result.recipients] == [("unattempted", None)] * len(
            messages[n].recipients()
        )
    assert server.verbs().count("MAIL") == SIZE_SIZED - len(OVERSIZED)  # never announced
    assert all(got.mail_options == [f"SIZE={len(got.data)}"] for got in server.messages)
    assert server.sessions == sessions
    assert not set(OVERSIZED) & set(pumped)
    assert_pumped_around(pumped, min(OVERSIZED), max(OVERSIZED))
    if sessions == 1:
        assert ids_at(server) == [mid(n) for n in range(SIZE_SIZED) if n not in OVERSIZED]
        expected = general_path_results(
            sized_batch, faults, server_options={"data_size_limit": SIZE_LIMIT}
        )
        assert comparable(results) == expected


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_message_that_cannot_be_composed_mid_batch_is_skipped_and_raised_after_it(
    server: SMTPServer, smtp_mailer: Mailer, pumped: list[int], mode: str
) -> None:
    messages = batch(50)
    messages[30].extra_headers["X-Tag"] = "a\r\nBcc: victim@example.com"
    backend = smtp_mailer(server)
    with pytest.raises(ValueError, match="X-Tag") as info:
        send(backend, messages, mode)

    results = [m.delivery for m in messages if m.delivery is not None]
    assert len(results) == len(messages)
    check_batch(server, results)
    assert_all_ok_except(messages, results, {30})
    bad = results[30]
    assert not bad.sent
    assert not bad.retryable
    assert (bad.error or "").startswith("message could not be composed")
    assert bad.exception is info.value
    assert not any(b"victim" in got.data for got in server.messages)
    assert 30 not in pumped
    assert_pumped_around(pumped, 30, 30)


# -- streamed attachments between ordinary messages --------------------------------------------

SIZE_STREAMED = 50
STREAMED = (20, 21, 35)


@pytest.fixture
def attachments(tmp_path: Path) -> dict[int, Path]:
    files = {}
    for n in STREAMED:
        path = tmp_path / f"report-{n}.bin"
        path.write_bytes(os.urandom(40_000 + n))
        files[n] = path
    return files


@pytest.mark.parametrize(("sessions", "mode"), [(1, "async"), (3, "sync")])
def test_streamed_attachment_messages_between_pumped_ones_arrive_intact(
    server: SMTPServer,
    smtp_mailer: Mailer,
    pumped: list[int],
    attachments: dict[int, Path],
    sessions: int,
    mode: str,
) -> None:
    messages = batch(SIZE_STREAMED)
    for n, path in attachments.items():
        messages[n].attach_file(path, stream=True)
    results = send(smtp_mailer(server, max_connections=sessions), messages, mode)

    check_batch(server, results)
    assert_all_ok_except(messages, results, ())
    by_id = {header(got.data, "Message-ID"): parse(got.data) for got in server.messages}
    for n in range(SIZE_STREAMED):
        files = list(by_id[mid(n)].iter_attachments())
        if n in attachments:
            [attachment] = files
            assert attachment.get_filename() == attachments[n].name
            assert attachment.get_content() == attachments[n].read_bytes()
        else:
            assert files == []
    assert server.sessions == sessions
    assert not set(STREAMED) & set(pumped)  # written chunk by chunk by the coroutine
    assert_pumped_around(pumped, min(STREAMED), max(STREAMED))
    if sessions == 1:
        assert ids_at(server) == [mid(n) for n in range(SIZE_STREAMED)]


# -- messages_per_connection -------------------------------------------------------------------

SIZE_ROTATED = 50
ALLOWANCE = 7


@pytest.mark.parametrize(("sessions", "mode"), [(1, "sync"), (3, "async")])
def test_messages_per_connection_rotates_sessions_and_delivers_everything_once(
    server: SMTPServer, smtp_mailer: Mailer, pumped: list[int], sessions: int, mode: str
) -> None:
    messages = batch(SIZE_ROTATED)
    backend = smtp_mailer(server, max_connections=sessions, messages_per_connection=ALLOWANCE)
    results = send(backend, messages, mode)

    check_batch(server, results)
    assert_all_ok_except(messages, results, ())
    per_session = Counter(got.session for got in server.messages)
    assert max(per_session.values()) <= ALLOWANCE
    assert server.sessions >= -(-SIZE_ROTATED // ALLOWANCE)
    assert server.verbs().count("QUIT") == server.sessions  # each retired politely
    assert server.verbs().count("MAIL") == SIZE_ROTATED  # no 421, nothing sent twice
    assert_pumped_around(pumped, ALLOWANCE, SIZE_ROTATED - ALLOWANCE)
    if sessions == 1:
        assert ids_at(server) == [mid(n) for n in range(SIZE_ROTATED)]
        assert [got.session for got in server.messages] == [
            1 + n // ALLOWANCE for n in range(SIZE_ROTATED)
        ]


def test_the_pump_pipelines_up_to_the_last_message_a_session_may_carry(
    server: SMTPServer, smtp_mailer: Mailer, pumped: list[int]
) -> None:
    messages = batch(SIZE_ROTATED)
    results = send(smtp_mailer(server, messages_per_connection=ALLOWANCE), messages, "sync")
    assert_all_ok_except(messages, results, ())
    # each session's first message goes through the general path, the others are pumped
    assert pumped == [n for n in range(SIZE_ROTATED) if n % ALLOWANCE]


# -- a server that stops answering -------------------------------------------------------------

SIZE_STALLED = 50
STALLED_AT = 25  # 1-based hook call: message 24's MAIL, or the end of its DATA


def stalled_batch() -> list[EmailMessage]:
    return batch(SIZE_STALLED)


@pytest.mark.parametrize(
    ("hook", "mode"),
    [("DATA", "sync"), ("MAIL", "async")],
    ids=["data-end-sync", "mail-async"],
)
def test_a_stalled_reply_mid_batch_times_out_and_that_message_is_retried_once(
    server: SMTPServer, smtp_mailer: Mailer, pumped: list[int], hook: str, mode: str
) -> None:
    stall(server, hook, {STALLED_AT})
    messages = stalled_batch()
    backend = smtp_mailer(server, command_timeout=SHORT_TIMEOUT)
    started = time.monotonic()
    results = send(backend, messages, mode)
    elapsed = time.monotonic() - started

    assert elapsed < SHORT_TIMEOUT + 2.5  # one timeout, far less than STALL: no hang
    check_batch(server, results)
    assert_all_ok_except(messages, results, ())
    stalled = STALLED_AT - 1
    assert server.sessions == 2
    assert ids_at(server) == [mid(n) for n in range(SIZE_STALLED)]
    assert [got.session for got in server.messages] == [
        1 if n < stalled else 2 for n in range(SIZE_STALLED)
    ]
    if hook == "DATA":
        assert stalled in pumped  # timed out inside the pump, waiting for its data's reply
    else:
        assert stalled not in pumped  # its envelope never settled
    assert_pumped_around(pumped, stalled - 1, stalled + 1)


def test_a_slow_but_steady_server_is_never_timed_out_however_long_the_pumped_run(
    server: SMTPServer, smtp_mailer: Mailer, pumped: list[int]
) -> None:
    """Each reply group takes about 10 ms and the batch several timeouts: the timeout runs
    from the last message written, not from when the pump started."""
    server.faults.mail_delay = 0.01
    timeout = 0.15
    messages = batch(35)
    started = time.monotonic()
    results = send(smtp_mailer(server, command_timeout=timeout), messages, "sync")

    assert time.monotonic() - started > 2 * timeout
    check_batch(server, results)
    assert_all_ok_except(messages, results, ())
    assert server.sessions == 1
    assert pumped == list(range(1, 35))


def test_a_server_that_stops_answering_for_good_is_reported_as_the_general_path_does(
    server: SMTPServer, smtp_mailer: Mailer, pumped: list[int]
) -> None:
    def stop_answering(server: SMTPServer) -> None:
        stall(server, "DATA", set(range(STALLED_AT, STALLED_AT + 5)))  # the retry stalls too

    stop_answering(server)
    messages = stalled_batch()
    backend = smtp_mailer(server, command_timeout=SHORT_TIMEOUT)
    started = time.monotonic()
    results = send(backend, messages, "async")
    elapsed = time.monotonic() - started

    assert elapsed < 2 * SHORT_TIMEOUT + 2.5  # two timeouts (first try, retry), no more
    stalled = STALLED_AT - 1
    check_batch(server, results)
    assert_all_ok_except(messages, results, set(range(stalled, SIZE_STALLED)))
    lost = results[stalled]
    assert not lost.sent
    assert lost.attempted
    assert lost.error == "connection lost at the end of DATA: timed out waiting for the server"
    assert lost.error_code is None
    assert lost.retryable
    assert [(s.status, s.code) for s in lost.recipients] == [("unattempted", None)] * len(
        messages[stalled].recipients()
    )
    for result in results[stalled + 1 :]:
        assert not result.sent
        assert not result.attempted
        assert result.retryable
        assert result.error == (
            "not attempted: the connection was lost again before any message was delivered on it"
        )
    assert ids_at(server) == [mid(n) for n in range(stalled)]
    assert server.sessions == 2
    assert stalled in pumped
    expected = general_path_results(
        stalled_batch, server.faults, setup=stop_answering, command_timeout=SHORT_TIMEOUT
    )
    assert comparable(results) == expected


def test_the_data_timeout_holds_when_the_socket_drains_as_it_expires(
    server: SMTPServer, smtp_mailer: Mailer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pump writes a message's data without waiting for the socket to drain; if it drains
    (resume_writing wakes the pump) in the loop iteration in which the timeout runs out, and
    the server never answers, the message must still time out and be retried."""
    stalled = STALLED_AT - 1
    step, watch = Pump.step, Wire._watch

    def step_filling_the_buffer(self: Any, index: int, sent: Any) -> bool:
        wrote = step(self, index, sent)
        if wrote and index == stalled:
            self.wire.pause_writing()  # its data filled the socket buffer
        return wrote

    def watch_after_the_drain(self: Any) -> None:
        if self.paused and self.loop.time() >= self._deadline:
            self.resume_writing()  # the buffer drained in the iteration the timer fires
        watch(self)

    monkeypatch.setattr(Pump, "step", step_filling_the_buffer)
    monkeypatch.setattr(Wire, "_watch", watch_after_the_drain)
    stall(server, "DATA", {STALLED_AT}, seconds=3 * SHORT_TIMEOUT)
    messages = stalled_batch()
    results = send(smtp_mailer(server, command_timeout=SHORT_TIMEOUT), messages, "sync")

    check_batch(server, results)
    assert_all_ok_except(messages, results, ())  # timed out and retried, not refused later
    assert server.sessions == 2


# -- a full socket buffer, and reply groups of every size --------------------------------------

SIZE_BULKY = 40
BULKY = (15, 16, 17, 18, 25)


@pytest.fixture
def small_socket_buffer(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Client sockets with a small send buffer and no write-buffer allowance, so a 60 kB
    message fills them; records, per pause_writing, whether the pump was running."""
    pauses: list[bool] = []
    connection_made = Wire.connection_made
    pause_writing = Wire.pause_writing

    def small(self: Any, transport: Any) -> None:
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport.set_write_buffer_limits(high=0)
        connection_made(self, transport)

    def paused(self: Any) -> None:
        pauses.append(self.pump is not None)
        pause_writing(self)

    monkeypatch.setattr(Wire, "connection_made", small)
    monkeypatch.setattr(Wire, "pause_writing", paused)
    return pauses


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_full_socket_buffer_mid_batch_neither_loses_nor_reorders_anything(
    server: SMTPServer,
    smtp_mailer: Mailer,
    pumped: list[int],
    small_socket_buffer: list[bool],
    mode: str,
) -> None:
    # under 64 kB, so written with transport.write, which pauses the protocol when it buffers
    bulky = {"body": ("z" * 76 + "\n") * 780}
    messages = batch(SIZE_BULKY, dict.fromkeys(BULKY, bulky))
    results = send(smtp_mailer(server), messages, mode)

    check_batch(server, results)
    assert_all_ok_except(messages, results, ())
    assert ids_at(server) == [mid(n) for n in range(SIZE_BULKY)]
    by_id = {header(got.data, "Message-ID"): got.data for got in server.messages}
    assert all(by_id[mid(n)].count(b"z" * 76) == 780 for n in BULKY)
    assert any(small_socket_buffer)  # the buffer filled while the pump was writing
    assert_pumped_around(pumped, min(BULKY), max(BULKY))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_message_over_64_kb_is_written_under_flow_control_too(
    server: SMTPServer, smtp_mailer: Mailer, small_socket_buffer: list[bool], mode: str
) -> None:
    """A big payload is written on its own (never copied into a joined buffer) and still
    pauses the protocol when the socket is full: not through ``transport.writelines``,
    which on CPython 3.13.0-3.13.1 never pauses (gh-127655)."""
    big = {"body": ("y" * 76 + "\n") * 3000}  # ~230 kB
    messages = batch(6, {2: big, 3: big})
    results = send(smtp_mailer(server), messages, mode)

    check_batch(server, results)
    assert_all_ok_except(messages, results, ())
    by_id = {header(got.data, "Message-ID"): got.data for got in server.messages}
    assert all(by_id[mid(n)].count(b"y" * 76) == 3000 for n in (2, 3))
    assert small_socket_buffer  # the protocol was paused at least once


def test_results_stay_attributed_when_reply_groups_vary_in_size(
    server: SMTPServer, smtp_mailer: Mailer, pumped: list[int]
) -> None:
    """One to six recipients, message after message: every reply group has another length,
    and each reply still lands on its own message and recipient."""
    size = 90
    special = {n: {"to": [f"r{n}-{j}@example.com" for j in range(1 + n % 6)]} for n in range(size)}
    refused = (50, 77)  # their last recipient
    server.faults.refuse.update({f"r{n}-{n % 6}@example.com": "550 5.1.1 gone" for n in refused})
    messages = batch(size, special)
    results = send(smtp_mailer(server), messages, "sync")

    check_batch(server, results)
    assert_all_ok_except(messages, results, refused)
    for n in refused:
        statuses = [(s.status, s.code) for s in results[n].recipients]
        assert statuses == [("accepted", 250)] * (n % 6) + [("refused", 550)]
    assert pumped == list(range(1, size))  # all but the first, partial refusals included
