"""Proof under faults: the spool and the SMTP backend against a misbehaving real server.

Each profile sends hundreds of messages through ``mailpost.backends.spool`` and drains
them with a worker on a fake clock (retries are due at once when the clock jumps) against
:class:`FaultServer`. Every profile checks the same promises: each message reaches each
recipient exactly once (at most one duplicate, with the same Message-ID, only where the
server accepted a message whose reply was lost), every permanent refusal is reported and
never retried, and nothing is lost. The crash test SIGKILLs worker processes while the
spool drains.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import mailpost
from mailpost import EmailMessage
from mailpost.spool import FakeClock, Spool
from mailpost.spool.record import SpoolRecord
from spool_helpers import ACCEPT, ACK_LOST, DROP, FaultServer, Profile, smtp_entry, spool_entry

HELPER = Path(__file__).with_name("spool_helpers.py")


def _setup(tmp_path: Path, server: FaultServer, *, timeout: float = 5.0) -> tuple[Spool, FakeClock]:
    mailpost.configure(
        MAILERS={
            "smtp": smtp_entry(server, timeout=timeout),
            "spool": spool_entry(str(tmp_path / "spool.sqlite3"), "smtp", batch_size=50),
        }
    )
    clock = FakeClock(time.time())  # the backend enqueues on the real clock
    return Spool.from_mailer("spool", clock=clock), clock


def _enqueue(n: int, recipients: object = None) -> None:
    def rcpts(i: int) -> list[str]:
        return recipients(i) if callable(recipients) else [f"u{i}@x.test"]

    messages = [
        EmailMessage(f"msg {i}", f"body {i}", "sender@example.com", rcpts(i)) for i in range(n)
    ]
    backend = mailpost.mailers["spool"]
    for start in range(0, n, 100):
        assert backend.send_messages(messages[start : start + 100]) == len(
            messages[start : start + 100]
        )


def _drain(spool: Spool, clock: FakeClock, *, rounds: int = 20) -> int:
    """Run the worker, jumping the clock past every backoff, until nothing is pending."""
    clock.advance(max(0.0, time.time() - clock()))  # past the backend's enqueue times
    worker = spool.worker(sleep=clock.sleep, rng=random.Random(1))
    deadline = time.monotonic() + 45
    for round_no in range(rounds):
        worker.run(until_idle=True)
        states = spool.stats()["states"]
        if states["queued"] == 0 and states["leased"] == 0:
            return round_no
        assert time.monotonic() < deadline, "drain took too long"
        clock.advance(spool.policy.max_delay + 1)
    raise AssertionError(f"spool not drained after {rounds} rounds: {spool.stats()}")


def _records(spool: Spool) -> list[SpoolRecord]:
    return spool.list(limit=100_000)


def _check(
    server: FaultServer,
    spool: Spool,
    *,
    may_duplicate: set[int] = frozenset(),  # type: ignore[assignment]
) -> Counter[str]:
    """The common promises; returns how many recipients ended in each status."""
    records = _records(spool)
    known_ids = {r.message_id for r in records}
    assert len(known_ids) == len(records)
    deliveries = server.deliveries()
    assert {mid for mid, _ in deliveries} <= known_ids  # every copy carries a spooled ID
    statuses: Counter[str] = Counter()
    for number, record in enumerate(records):
        assert record.state in ("sent", "dead")
        for rcpt in record.recipients:
            statuses[rcpt.status] += 1
            copies = deliveries[(record.message_id, rcpt.address)]  # type: ignore[index]
            if rcpt.status == "delivered":
                limit = 2 if number in may_duplicate else 1
                assert 1 <= copies <= limit, (number, rcpt, copies)
            else:
                assert rcpt.status == "failed"
                assert copies == 0
                assert rcpt.code is not None, rcpt
                assert 500 <= rcpt.code < 600, rcpt
    return statuses


class Transient451AtData(Profile):
    def data(self, number: int, tries: int) -> str:
        if number % 3 == 0 and tries == 1:
            return "451 4.3.0 Temporary local problem, try again"
        return ACCEPT


def test_transient_451_at_data_is_retried_and_delivered_once(tmp_path: Path) -> None:
    with FaultServer(Transient451AtData()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue(900)
        assert _drain(spool, clock) == 1
        assert _check(server, spool) == {"delivered": 900}
    records = _records(spool)
    assert [r.attempts for r in records[:6]] == [2, 1, 1, 2, 1, 1]
    assert "451" in (spool.show(records[0].id).history[0].error or "")


class PermanentRefusals(Profile):
    def rcpt(self, address: str, tries: int) -> str | None:
        return "550 5.1.1 No such user here" if address.startswith("bad") else None


def test_permanent_550_is_reported_and_never_retried(tmp_path: Path) -> None:
    def rcpts(i: int) -> list[str]:
        if i % 20 == 0:
            return [f"bad{i}@x.test"]
        if i % 4 == 0:
            return [f"u{i}@x.test", f"bad{i}@x.test"]
        return [f"u{i}@x.test"]

    with FaultServer(PermanentRefusals()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue(800, rcpts)
        _drain(spool, clock)
        statuses = _check(server, spool)
        assert all(server.rcpt_count(f"bad{i}@x.test") == 1 for i in range(0, 800, 4))
    assert statuses == {"delivered": 760, "failed": 200}
    records = _records(spool)
    assert all(r.attempts == 1 for r in records)
    assert [r.state for r in records[:5]] == ["dead", "sent", "sent", "sent", "dead"]
    failed = records[4].failed[0]
    assert (failed.address, failed.code) == ("bad4@x.test", 550)
    assert "No such user" in failed.reply


class TransientRcpt(Profile):
    def rcpt(self, address: str, tries: int) -> str | None:
        if address.startswith("tmp") and tries == 1:
            return "450 4.2.1 Mailbox busy, try later"
        return None


def test_transient_rcpt_refusal_retries_only_that_recipient(tmp_path: Path) -> None:
    def rcpts(i: int) -> list[str]:
        return [f"u{i}@x.test", f"tmp{i}@x.test"] if i % 4 == 0 else [f"u{i}@x.test"]

    with FaultServer(TransientRcpt()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue(800, rcpts)
        _drain(spool, clock)
        assert _check(server, spool) == {"delivered": 1000}
        retried = [c for c in server.copies if any(r.startswith("tmp") for r in c.rcpt_tos)]
        assert len(retried) == 200
        assert all(c.rcpt_tos == [f"tmp{c.number}@x.test"] for c in retried)
        assert all(server.rcpt_count(f"u{i}@x.test") == 1 for i in range(800))


class DropMidData(Profile):
    def data(self, number: int, tries: int) -> str:
        return DROP if number % 5 == 0 and tries == 1 else ACCEPT


def test_connection_dropped_mid_data_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    with FaultServer(DropMidData()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue(600)
        _drain(spool, clock)
        assert _check(server, spool) == {"delivered": 600}
        assert server.log.sessions > 100


class Close421(Profile):
    close_after = 7


def test_421_after_n_messages_reconnects_and_delivers_once(tmp_path: Path) -> None:
    with FaultServer(Close421()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue(700)
        _drain(spool, clock)
        assert _check(server, spool) == {"delivered": 700}
        assert server.log.sessions >= 100


class AckLost(Profile):
    def data(self, number: int, tries: int) -> str:
        return ACK_LOST if number % 5 == 0 and tries == 1 else ACCEPT


def test_ack_lost_after_data_accepted_gives_at_most_one_duplicate_same_message_id(
    tmp_path: Path,
) -> None:
    lossy = set(range(0, 600, 5))
    with FaultServer(AckLost()) as server:
        spool, clock = _setup(tmp_path, server)
        _enqueue(600)
        _drain(spool, clock)
        assert _check(server, spool, may_duplicate=lossy) == {"delivered": 600}
        per_number = Counter(c.number for c in server.copies)
        assert {n for n, k in per_number.items() if k > 1} <= lossy
        for number in lossy:
            assert len({c.message_id for c in server.copies if c.number == number}) == 1


class SlowReplies(Profile):
    def delay(self, number: int, tries: int) -> float:
        if number % 50 == 0 and tries == 1:
            return 0.6  # longer than the client's timeout
        return 0.02 if number % 20 == 0 else 0.0


def test_slow_replies_and_timeouts(tmp_path: Path) -> None:
    timed_out = set(range(0, 200, 50))
    with FaultServer(SlowReplies()) as server:
        spool, clock = _setup(tmp_path, server, timeout=0.3)
        _enqueue(200)
        _drain(spool, clock)
        assert _check(server, spool, may_duplicate=timed_out) == {"delivered": 200}


def test_worker_killed_with_sigkill_ten_times_loses_nothing(tmp_path: Path) -> None:
    """Workers in subprocesses are SIGKILLed at random moments while the spool drains."""

    class Steady(Profile):
        def delay(self, number: int, tries: int) -> float:
            return 0.004

    rng = random.Random(42)
    lease = 0.5
    path = str(tmp_path / "spool.sqlite3")
    with FaultServer(Steady()) as server:
        mailpost.configure(MAILERS={"smtp": smtp_entry(server), "spool": spool_entry(path, "smtp")})
        _enqueue(800)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        kills = 0
        for _ in range(10):
            proc = subprocess.Popen(
                [sys.executable, str(HELPER), "worker", path, str(server.port), str(lease)],
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
            kills += 1
        assert kills == 10
        copies_before_drain = len(server.copies)
        assert 0 < copies_before_drain < 800  # the kills really interrupted the drain
        time.sleep(lease)  # let the last victim's leases expire
        spool = Spool.from_mailer("spool")
        spool.worker().run(until_idle=True, max_seconds=40)
        records = _records(spool)
        assert all(r.state == "sent" for r in records)
        per_id = Counter(c.message_id for c in server.copies)
        assert set(per_id) == {r.message_id for r in records}  # nothing lost
        # Each kill can lose at most the reply for the one message in flight: at most one
        # extra copy per kill in total, always with the message's own Message-ID.
        extra = sum(k - 1 for k in per_id.values())
        assert extra <= kills
        numbers = {c.number: set() for c in server.copies}  # type: dict[int, set[str]]
        for c in server.copies:
            numbers[c.number].add(c.message_id)
        assert all(len(ids) == 1 for ids in numbers.values())
        expired = sum(
            1 for r in records for a in spool.show(r.id).history if a.outcome == "lease-expired"
        )
        assert expired >= 1
