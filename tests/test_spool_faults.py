"""Proof under faults: the spool and the SMTP backend against a misbehaving real server.

Each profile sends :data:`N` (1,000) messages through ``mailpost.backends.spool`` and drains
them with a worker on a fake clock (retries are due at once when the clock jumps) against
:class:`smtpd_harness.SMTPServer`, misbehaving per message through a
:class:`smtpd_harness.Faults` subclass. Every profile checks the same promises: each message
reaches each recipient exactly once (at most one duplicate, with the same Message-ID, only
where the server accepted a message whose reply was lost), every permanent refusal is
reported and never retried, and nothing is lost. The crash test SIGKILLs worker processes
ten times while :data:`N` messages drain.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from pathlib import Path

import pytest

import mailpost
from mailpost import EmailMessage
from mailpost.spool import FakeClock, Spool
from mailpost.spool.record import SpoolRecord
from smtpd_harness import ACCEPT, ACK_LOST, DROP, Faults, SMTPServer
from spool_helpers import smtp_entry, spool_entry

HELPER = Path(__file__).with_name("spool_helpers.py")

#: Messages per profile and in the crash test.
N = 1000
#: Wall-clock bound on one drain (a few seconds here); generous for a loaded CI machine.
DRAIN_DEADLINE = 120.0
#: Every message of the crash test is delivered within this many seconds of the last
#: SIGKILL, with the default lease (20 s) and heartbeat.
RECOVERY_BOUND = 60.0

# Above the drain deadlines, so that a slow machine fails on them with the spool's state.
pytestmark = pytest.mark.timeout(180)

Recipients = Callable[[int], list[str]]


def _one_recipient(i: int) -> list[str]:
    return [f"u{i}@x.test"]


def _setup(
    tmp_path: Path, server: SMTPServer, *, timeout: float = 5.0, **smtp_options: float
) -> tuple[Spool, FakeClock]:
    smtp = smtp_entry(server, timeout=timeout)
    smtp["OPTIONS"].update(smtp_options)
    mailpost.configure(
        MAILERS={
            "smtp": smtp,
            "spool": spool_entry(str(tmp_path / "spool.sqlite3"), "smtp", batch_size=50),
        }
    )
    clock = FakeClock(time.time())  # the backend enqueues on the real clock
    return Spool.from_mailer("spool", clock=clock), clock


def _enqueue(n: int = N, rcpts: Recipients = _one_recipient) -> None:
    messages = [
        EmailMessage(f"msg {i}", f"body {i}", "sender@example.com", rcpts(i)) for i in range(n)
    ]
    backend = mailpost.mailers["spool"]
    for start in range(0, n, 100):
        chunk = messages[start : start + 100]
        assert backend.send_messages(chunk) == len(chunk)


def _drain(spool: Spool, clock: FakeClock, *, rounds: int = 20) -> int:
    """Run the worker, jumping the clock past every backoff, until nothing is pending."""
    clock.advance(max(0.0, time.time() - clock()))  # past the backend's enqueue times
    worker = spool.worker(sleep=clock.sleep, rng=random.Random(1))
    deadline = time.monotonic() + DRAIN_DEADLINE
    for round_no in range(rounds):
        worker.run(until_idle=True)
        states = spool.stats()["states"]
        if states["queued"] == 0 and states["leased"] == 0:
            return round_no
        assert time.monotonic() < deadline, f"drain took too long: {spool.stats()}"
        clock.advance(spool.policy.max_delay + 1)
    raise AssertionError(f"spool not drained after {rounds} rounds: {spool.stats()}")


def _records(spool: Spool) -> list[SpoolRecord]:
    return spool.list(limit=100_000)


def _check(
    server: SMTPServer,
    spool: Spool,
    *,
    rcpts: Recipients = _one_recipient,
    may_duplicate: Collection[int] = frozenset(),
) -> Counter[str]:
    """The common promises for ``N`` messages; returns how many recipients ended in each status.

    Message ``i`` (Subject ``msg i``) is the ``i``-th record. Each recipient the spool calls
    delivered got exactly one copy (two for messages in ``may_duplicate``, whose reply the
    server lost), every copy of a message carries its spooled Message-ID, nothing was sent
    that the spool does not know of, each 5xx RCPT refusal is the recipient's recorded
    failure and was never retried, and nothing else failed.
    """
    records = _records(spool)
    assert len(records) == N
    assert len({r.message_id for r in records}) == N
    assert all(r.state in ("sent", "dead") for r in records)
    for number, record in enumerate(records):
        assert [r.address for r in record.recipients] == rcpts(number), number

    ids_per_number: defaultdict[int, set[str]] = defaultdict(set)
    for copy in server.messages:
        ids_per_number[copy.number].add(copy.message_id)
    assert set(ids_per_number) <= set(range(N))
    for number, ids in ids_per_number.items():
        assert ids == {records[number].message_id}, number  # a duplicate keeps the Message-ID

    deliveries = server.deliveries()
    delivered = {
        (record.message_id, rcpt.address)
        for record in records
        for rcpt in record.recipients
        if rcpt.status == "delivered"
    }
    assert set(deliveries) == delivered  # no copy the spool does not count as delivered
    statuses: Counter[str] = Counter(
        rcpt.status for record in records for rcpt in record.recipients
    )
    for number, record in enumerate(records):
        limit = 2 if number in may_duplicate else 1
        for address in record.delivered:
            copies = deliveries[(record.message_id, address)]  # type: ignore[index]
            assert 1 <= copies <= limit, (number, address, copies)

    replies = [(address, reply) for _, address, reply in server.recorder.rcpt_replies]
    rcpt_tries = Counter(address for address, _ in replies)
    permanent = {address: reply for address, reply in replies if reply.startswith("5")}
    assert all(rcpt_tries[address] == 1 for address in permanent)  # no 5xx retried
    failed = {rcpt.address: rcpt for record in records for rcpt in record.failed}
    assert failed.keys() == permanent.keys()  # every permanent refusal reported, nothing else
    for address, reply in permanent.items():
        code, _, text = reply.partition(" ")
        assert failed[address].code == int(code), failed[address]
        assert text.split(" ", 1)[-1] in failed[address].reply, failed[address]
    return statuses


def _first_error(spool: Spool, record: SpoolRecord) -> str:
    return spool.show(record.id).history[0].error or ""


class Transient451AtData(Faults):
    def data(self, number: int, tries: int) -> str:
        if number % 3 == 0 and tries == 1:
            return "451 4.3.0 Temporary local problem, try again"
        return ACCEPT


def test_transient_451_at_data_is_retried_and_delivered_once(tmp_path: Path) -> None:
    refused = {i for i in range(N) if i % 3 == 0}
    with SMTPServer(faults=Transient451AtData()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue()
        assert _drain(spool, clock) == 1
        assert _check(server, spool) == {"delivered": N}
        assert len(server.messages) == N
        assert all(server.recorder.data_tries[i] == (2 if i in refused else 1) for i in range(N))
    records = _records(spool)
    assert [r.attempts for r in records] == [2 if i in refused else 1 for i in range(N)]
    assert all("451" in _first_error(spool, records[i]) for i in refused)


class PermanentRefusals(Faults):
    def rcpt(self, address: str, tries: int) -> str | None:
        return "550 5.1.1 No such user here" if address.startswith("bad") else None


def test_permanent_550_is_reported_and_never_retried(tmp_path: Path) -> None:
    def rcpts(i: int) -> list[str]:
        if i % 20 == 0:
            return [f"bad{i}@x.test"]
        if i % 4 == 0:
            return [f"u{i}@x.test", f"bad{i}@x.test"]
        return [f"u{i}@x.test"]

    with SMTPServer(faults=PermanentRefusals()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue(rcpts=rcpts)
        assert _drain(spool, clock) == 0  # nothing was left to retry
        statuses = _check(server, spool, rcpts=rcpts)
        assert all(server.rcpt_count(f"bad{i}@x.test") == 1 for i in range(0, N, 4))
        assert all(server.rcpt_count(f"u{i}@x.test") == 1 for i in range(N) if i % 20)
        assert len(server.messages) == N - N // 20  # one per message with a good recipient
    # One "bad" recipient in every fourth message; every fifth of those has no other one.
    assert statuses == {"delivered": N - N // 20, "failed": N // 4}
    records = _records(spool)
    assert all(r.attempts == 1 for r in records)
    assert [r.state for r in records] == ["dead" if i % 4 == 0 else "sent" for i in range(N)]
    failed = records[4].failed[0]
    assert (failed.address, failed.code) == ("bad4@x.test", 550)
    assert "No such user" in failed.reply


class TransientRcpt(Faults):
    def rcpt(self, address: str, tries: int) -> str | None:
        if address.startswith("tmp") and tries == 1:
            return "450 4.2.1 Mailbox busy, try later"
        return None


def test_transient_rcpt_refusal_retries_only_that_recipient(tmp_path: Path) -> None:
    def rcpts(i: int) -> list[str]:
        return [f"u{i}@x.test", f"tmp{i}@x.test"] if i % 4 == 0 else [f"u{i}@x.test"]

    with SMTPServer(faults=TransientRcpt()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue(rcpts=rcpts)
        assert _drain(spool, clock) == 1
        assert _check(server, spool, rcpts=rcpts) == {"delivered": N + N // 4}
        retried = [c for c in server.messages if any(r.startswith("tmp") for r in c.rcpt_tos)]
        assert sorted(c.number for c in retried) == list(range(0, N, 4))
        assert all(c.rcpt_tos == [f"tmp{c.number}@x.test"] for c in retried)
        assert all(server.rcpt_count(f"tmp{i}@x.test") == 2 for i in range(0, N, 4))
        assert all(server.rcpt_count(f"u{i}@x.test") == 1 for i in range(N))
    records = _records(spool)
    assert [r.attempts for r in records] == [2 if i % 4 == 0 else 1 for i in range(N)]


class DropMidData(Faults):
    def data(self, number: int, tries: int) -> str:
        return DROP if number % 5 == 0 and tries == 1 else ACCEPT


def test_session_dropped_mid_data_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    dropped = {i for i in range(N) if i % 5 == 0}
    with SMTPServer(faults=DropMidData()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue()
        _drain(spool, clock)
        assert _check(server, spool) == {"delivered": N}
        assert len(server.messages) == N  # a dropped message was not stored: no duplicate
        # Each dropped message was sent again, once, and stored then.
        assert all(server.recorder.data_tries[i] == (2 if i in dropped else 1) for i in range(N))
        assert server.sessions > len(dropped)  # a new session after every drop


#: The 421 profile: the server closes each session after this many messages.
CLOSE_AFTER = 7


def test_421_after_n_messages_reconnects_and_delivers_once(tmp_path: Path) -> None:
    with SMTPServer(faults=Faults(close_after=CLOSE_AFTER)) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue()
        _drain(spool, clock)
        assert _check(server, spool) == {"delivered": N}
        assert len(server.messages) == N
        # The 421 comes at MAIL, before any data: every message's data went out once.
        assert all(server.recorder.data_tries[i] == 1 for i in range(N))
        assert server.sessions >= math.ceil(N / CLOSE_AFTER)


class AckLost(Faults):
    def data(self, number: int, tries: int) -> str:
        return ACK_LOST if number % 5 == 0 and tries == 1 else ACCEPT


def test_ack_lost_after_data_accepted_gives_at_most_one_duplicate_same_message_id(
    tmp_path: Path,
) -> None:
    lossy = {i for i in range(N) if i % 5 == 0}
    with SMTPServer(faults=AckLost()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue()
        _drain(spool, clock)
        assert _check(server, spool, may_duplicate=lossy) == {"delivered": N}
        # The server kept the first copy but the client never heard: it must send again,
        # so exactly the lossy messages have one duplicate each (same Message-ID: _check).
        per_number = Counter(c.number for c in server.messages)
        assert per_number == {i: 2 if i in lossy else 1 for i in range(N)}
        assert server.recorder.data_tries == per_number


#: The client's timeout for commands and the end of DATA in the slow-replies profile.
#: Each timed-out message costs this much wall time, so only a few time out.
SLOW_TIMEOUT = 1.0  # generous for a loaded CI machine: a stall that long is a timeout


class SlowReplies(Faults):
    """Most replies a little late, a few much later but in time, a bounded few too late."""

    @staticmethod
    def times_out(number: int) -> bool:
        return number % 250 == 0

    def delay(self, number: int, tries: int) -> float:
        if self.times_out(number) and tries == 1:
            return 3 * SLOW_TIMEOUT  # the client gives up long before this
        if number % 250 == 125:
            return SLOW_TIMEOUT / 4  # slow, but well within the timeout
        return 0.001 if number % 4 else 0.0  # three replies in four are a little late


def test_slow_replies_and_timeouts(tmp_path: Path) -> None:
    timed_out = {i for i in range(N) if SlowReplies.times_out(i)}
    assert len(timed_out) == N // 250
    with SMTPServer(faults=SlowReplies()) as server:
        # Only commands and DATA get the short timeout: connecting stays generous.
        spool, clock = _setup(
            tmp_path,
            server,
            command_timeout=SLOW_TIMEOUT,
            connect_timeout=5.0,
            greeting_timeout=5.0,
        )
        _enqueue()
        _drain(spool, clock)
        assert _check(server, spool, may_duplicate=timed_out) == {"delivered": N}
        # A timed-out message was stored before its reply was late, so the client sent it
        # again: exactly one duplicate each, and none for the merely slow replies.
        per_number = Counter(c.number for c in server.messages)
        assert per_number == {i: 2 if i in timed_out else 1 for i in range(N)}
        assert server.recorder.data_tries == per_number


@pytest.mark.parametrize("spool_location", ["sqlite", "postgres"], indirect=True)
def test_worker_killed_with_sigkill_ten_times_loses_nothing(spool_location: str) -> None:
    """Workers in subprocesses are SIGKILLed at random moments while N messages drain; on
    PostgreSQL they reach the spool by URL only, as workers on other machines would."""

    class Steady(Faults):
        pause = 0.004  # widens the window in which a kill lands mid-transaction

        def delay(self, number: int, tries: int) -> float:
            return self.pause

    rng = random.Random(42)
    path = spool_location
    steady = Steady()
    with SMTPServer(faults=steady) as server:
        mailpost.configure(MAILERS={"smtp": smtp_entry(server), "spool": spool_entry(path, "smtp")})
        _enqueue()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        kills = 0
        for _ in range(10):
            # default lease (20 s, renewed by the heartbeat) and batch size
            proc = subprocess.Popen(
                [sys.executable, str(HELPER), "worker", path, str(server.port)],
                stdout=subprocess.PIPE,
                env=env,
            )
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == b"ready"
                time.sleep(rng.uniform(0.05, 0.4))
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                if proc.stdout is not None:
                    proc.stdout.close()
            assert proc.returncode == -signal.SIGKILL
            kills += 1
        last_kill = time.monotonic()
        assert kills == 10
        copies_before_drain = len(server.messages)
        assert 0 < copies_before_drain < N  # the kills really interrupted the drain
        steady.pause = 0.0  # no more kills: the final drain needs no in-flight window
        # A live worker with the default settings picks up what the victims held as
        # their leases expire: everything is delivered within RECOVERY_BOUND of the kill.
        spool = Spool.from_mailer("spool")
        worker = spool.worker()
        thread = threading.Thread(target=worker.run, kwargs={"poll_interval": 0.2})
        thread.start()
        try:
            while time.monotonic() - last_kill < RECOVERY_BOUND + 30:
                states = spool.stats()["states"]
                if states["queued"] == 0 and states["leased"] == 0:
                    break
                time.sleep(0.2)
            recovered = time.monotonic() - last_kill
        finally:
            worker.stop()
            thread.join(30)
        assert recovered <= RECOVERY_BOUND, (recovered, spool.stats())
        records = _records(spool)
        assert len(records) == N
        assert all(r.state == "sent" for r in records), spool.stats()
        per_id = Counter(c.message_id for c in server.messages)
        assert set(per_id) == {r.message_id for r in records}  # nothing lost
        ids_per_number: defaultdict[int, set[str]] = defaultdict(set)
        for c in server.messages:
            ids_per_number[c.number].add(c.message_id)
            assert c.rcpt_tos == [f"u{c.number}@x.test"]
        assert sorted(ids_per_number) == list(range(N))
        assert all(len(ids) == 1 for ids in ids_per_number.values())  # one Message-ID each
        # Each kill can lose at most the reply for the one message in flight: at most one
        # extra copy per kill in total, always with the message's own Message-ID.
        extra = sum(k - 1 for k in per_id.values())
        assert extra <= kills
        expired = sum(
            1 for r in records for a in spool.show(r.id).history if a.outcome == "lease-expired"
        )
        assert expired >= 1
