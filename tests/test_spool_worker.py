"""The worker on a fake clock: retries, backoff, permanent failures, leases, rate limits."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import mailpost
from mailpost import DeliveryResult, EmailMessage, RecipientStatus
from mailpost.backends.base import BaseEmailBackend
from mailpost.spool import FakeClock, RetryPolicy, Spool, SQLiteStore, Worker

T0 = 1_700_000_000.0


class ScriptedBackend(BaseEmailBackend):
    """Answers each recipient from ``replies[address]`` (a list consumed per attempt)."""

    def __init__(self, replies: dict[str, list[int]] | None = None) -> None:
        super().__init__(alias="scripted")
        self.replies = replies or {}
        self.calls: list[list[str]] = []
        self.subjects: list[str] = []

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        results = []
        for message in email_messages:
            rcpts = message.recipients()
            self.calls.append(rcpts)
            self.subjects.append(str(message.subject))
            statuses = []
            for address in rcpts:
                queue = self.replies.get(address, [])
                code = queue.pop(0) if queue else 250
                status = "accepted" if code < 300 else "refused"
                statuses.append(RecipientStatus(address, status, code, f"reply {code}"))
            sent = any(s.accepted for s in statuses)
            result = DeliveryResult(recipients=statuses, sent=sent, response=(250, "ok"))
            if not all(s.accepted for s in statuses):
                result.error = "some refused"
            results.append(self.record(message, result))
        return self.finish(results)


class CountingOnly(BaseEmailBackend):
    """A custom backend that sets no ``delivery``: returns 1, or raises when told to."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__()
        self.fail = fail
        self.sent = 0

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if self.fail:
            self.fail -= 1
            raise ConnectionResetError("peer reset")
        self.sent += len(email_messages)
        return len(email_messages)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def spool(tmp_path: Path, clock: FakeClock) -> Iterator[Spool]:
    store = SQLiteStore(tmp_path / "spool.sqlite3")
    yield Spool(store, mailer="scripted", clock=clock, policy=RetryPolicy(jitter=0))
    store.close()


def _msg(n: int, *to: str) -> EmailMessage:
    return EmailMessage(f"msg {n}", "body", "from@example.com", list(to) or ["a@x.test"])


def _worker(spool: Spool, clock: FakeClock, backend: BaseEmailBackend, **kw: object) -> Worker:
    return spool.worker(sleep=clock.sleep, mailer_factory=lambda alias: backend, **kw)  # type: ignore[arg-type]


def test_transient_failure_is_retried_on_the_backoff_schedule(
    spool: Spool, clock: FakeClock
) -> None:
    backend = ScriptedBackend({"a@x.test": [451, 451, 421]})
    [rid] = spool.enqueue([_msg(1)])
    worker = _worker(spool, clock, backend)
    times = []
    for _ in range(10):
        if worker.run(until_idle=True):
            times.append(clock() - T0)
        record = spool.get(rid)
        assert record is not None
        if record.state == "sent":
            break
        clock.advance(record.next_attempt_at - clock())
    assert times == [0, 300, 900, 2100]
    assert len(backend.calls) == 4
    history = spool.show(rid).history
    assert [a.outcome for a in history] == ["will retry"] * 3 + ["delivered"]
    assert [a.recipients[0].code for a in history] == [451, 451, 421, 250]


def test_5xx_is_never_retried_and_accepted_recipients_never_resent(
    spool: Spool, clock: FakeClock
) -> None:
    backend = ScriptedBackend({"bad@x.test": [550], "busy@x.test": [450]})
    [rid] = spool.enqueue([_msg(1, "ok@x.test", "bad@x.test", "busy@x.test")])
    worker = _worker(spool, clock, backend)
    worker.run(until_idle=True)
    clock.advance(10_000)
    worker.run(until_idle=True)
    clock.advance(10_000)
    assert worker.run(until_idle=True) == 0
    assert backend.calls == [["ok@x.test", "bad@x.test", "busy@x.test"], ["busy@x.test"]]
    record = spool.get(rid)
    assert record is not None
    assert record.state == "dead"
    assert {r.address: (r.status, r.code) for r in record.recipients} == {
        "ok@x.test": ("delivered", 250),
        "bad@x.test": ("failed", 550),
        "busy@x.test": ("delivered", 250),
    }


def test_gives_up_after_max_age_into_dead_letters(
    tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    request.addfinalizer(store.close)
    spool = Spool(store, mailer="x", clock=clock, policy=RetryPolicy(jitter=0, max_age=3600))
    backend = ScriptedBackend({"a@x.test": [421] * 100})
    [rid] = spool.enqueue([_msg(1)])
    worker = _worker(spool, clock, backend)
    for _ in range(50):
        worker.run(until_idle=True)
        record = spool.get(rid)
        assert record is not None
        if record.state == "dead":
            break
        clock.advance(4000)
    assert record.state == "dead"
    assert 1 < record.attempts < 5
    assert "gave up" in (record.last_error or "")
    assert spool.retry() == 1  # an operator requeues it
    backend.replies.clear()
    worker.run(until_idle=True)
    record = spool.get(rid)
    assert record is not None
    assert record.state == "sent"


def test_backend_without_delivery_results(spool: Spool, clock: FakeClock) -> None:
    backend = CountingOnly(fail=1)
    [rid] = spool.enqueue([_msg(1)])
    worker = _worker(spool, clock, backend)
    worker.run(until_idle=True)
    record = spool.get(rid)
    assert record is not None
    assert record.state == "queued"
    assert record.last_error == "ConnectionResetError: peer reset"
    clock.advance(300)
    worker.run(until_idle=True)
    assert backend.sent == 1
    record = spool.get(rid)
    assert record is not None
    assert record.state == "sent"


def test_unknown_target_mailer_is_retried_with_the_error(spool: Spool, clock: FakeClock) -> None:
    mailpost.configure(MAILERS={})
    [rid] = spool.enqueue([_msg(1)], mailer="nope")
    spool.worker(sleep=clock.sleep).run(until_idle=True)
    record = spool.get(rid)
    assert record is not None
    assert record.state == "queued"
    assert "mailer 'nope' unavailable" in (record.last_error or "")


def test_send_at_and_priority(spool: Spool, clock: FakeClock) -> None:
    backend = ScriptedBackend()
    spool.enqueue([_msg(1)], send_at=T0 + 60)
    spool.enqueue([_msg(2)])
    spool.enqueue([_msg(3)], priority=5)
    worker = _worker(spool, clock, backend, batch_size=1)
    assert worker.run(until_idle=True) == 2  # the scheduled one is not due yet
    assert spool.get(1).state == "queued"  # type: ignore[union-attr]
    clock.advance(60)
    assert worker.run(until_idle=True) == 1
    assert [spool.get(i).state for i in (1, 2, 3)] == ["sent"] * 3  # type: ignore[union-attr]
    first_tries = {i: spool.show(i).history[0] for i in (1, 2, 3)}
    assert first_tries[1].started_at == T0 + 60
    assert backend.subjects == ["msg 3", "msg 2", "msg 1"]  # priority first, then age


def test_rate_limit_spaces_messages(spool: Spool, clock: FakeClock) -> None:
    backend = ScriptedBackend()
    spool.enqueue([_msg(i) for i in range(5)])
    worker = _worker(spool, clock, backend, rate_limits={"scripted": 2.0})
    worker.run(until_idle=True)
    finished = sorted(spool.show(i).history[0].finished_at for i in range(1, 6))
    assert [round(t - T0, 3) for t in finished] == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_rate_limit_is_shared_by_workers_on_the_same_spool_file(
    tmp_path: Path, spool: Spool, clock: FakeClock
) -> None:
    """Two workers, each with its own store object on the spool file (as two processes
    have), taking turns: together they keep to the one rate."""
    backend = ScriptedBackend()
    spool.enqueue([_msg(i) for i in range(8)])
    other_store = SQLiteStore(tmp_path / "spool.sqlite3")
    try:
        other = Spool(other_store, mailer="scripted", clock=clock, policy=RetryPolicy(jitter=0))
        workers = [
            _worker(s, clock, backend, rate_limits={"scripted": 2.0}, batch_size=1)
            for s in (spool, other)
        ]
        done = 0
        for turn in range(8):
            done += workers[turn % 2].run(until_idle=True, max_messages=1)
        assert done == 8
    finally:
        other_store.close()
    finished = sorted(spool.show(i).history[0].finished_at for i in range(1, 9))
    assert [round(t - T0, 3) for t in finished] == [0.5 * k for k in range(8)]
    workers_seen = {spool.show(i).history[0].worker for i in range(1, 9)}
    assert len(workers_seen) == 2


def test_deliver_one_record_keeps_to_the_rate_limit_too(spool: Spool, clock: FakeClock) -> None:
    """The task-queue path (one record per call, as a Celery task does) takes a slot too."""
    backend = ScriptedBackend()
    ids = spool.enqueue([_msg(i) for i in range(3)])
    worker = _worker(spool, clock, backend, rate_limits={"scripted": 4.0})
    for record_id in ids:
        settled = worker.deliver(record_id)
        assert settled is not None
        assert settled.state == "sent"
    assert worker.deliver(ids[0]) is None  # already sent: no slot taken, nothing sent
    finished = [spool.show(i).history[0].finished_at for i in ids]
    assert [round(t - T0, 3) for t in finished] == [0.0, 0.25, 0.5]
    assert len(backend.calls) == 3


@pytest.mark.parametrize("spool_location", ["sqlite", "postgres"], indirect=True)
def test_rate_slots_are_shared_between_processes(spool_location: str) -> None:
    """Two processes reserving slots on one spool at the same moment get one evenly
    spaced schedule between them: no slot given twice."""
    path = spool_location
    Spool.open(path).store.close()
    code = (
        "import sys; from mailpost.spool.store import open_store\n"
        "s = open_store(sys.argv[1])\n"
        "print(' '.join(repr(s.reserve_slot('smtp', now=1000.0, interval=0.25))"
        " for _ in range(20)))\n"
        "s.close()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    slots = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        slots += [float(x) for x in out.split()]
    assert sorted(slots) == [1000.0 + 0.25 * k for k in range(40)]


def test_crashed_worker_lease_expires_and_is_picked_up(spool: Spool, clock: FakeClock) -> None:
    backend = ScriptedBackend()
    [rid] = spool.enqueue([_msg(1)])
    spool.store.lease("dead-worker", now=clock(), lease_seconds=300)
    worker = _worker(spool, clock, backend)
    assert worker.run(until_idle=True) == 0
    clock.advance(300)
    assert worker.run(until_idle=True) == 1
    entry = spool.show(rid)
    assert entry.record.state == "sent"
    assert [a.outcome for a in entry.history] == ["lease-expired", "delivered"]


def test_deliver_one_record_by_id(spool: Spool, clock: FakeClock) -> None:
    backend = ScriptedBackend()
    ids = spool.enqueue([_msg(1), _msg(2)])
    worker = _worker(spool, clock, backend)
    settled = worker.deliver(ids[1])
    assert settled is not None
    assert settled.state == "sent"
    assert worker.deliver(ids[1]) is None  # already done
    assert backend.calls == [["a@x.test"]]
    assert spool.get(ids[0]).state == "queued"  # type: ignore[union-attr]


def test_jittered_retries_spread_out(spool: Spool, clock: FakeClock) -> None:
    spool.policy = RetryPolicy(jitter=0.5)
    backend = ScriptedBackend({f"r{i}@x.test": [451] for i in range(20)})
    spool.enqueue([_msg(i, f"r{i}@x.test") for i in range(20)])
    _worker(spool, clock, backend, rng=random.Random(3)).run(until_idle=True)
    due = [r.next_attempt_at - T0 for r in spool.list()]
    assert all(150 <= d <= 301 for d in due)
    assert len({round(d) for d in due}) > 10


def test_locmem_delivery_through_configured_mailers(tmp_path: Path) -> None:
    mailpost.configure(
        MAILERS={
            "mem": {"BACKEND": "mailpost.backends.locmem.EmailBackend"},
            "spool": {
                "BACKEND": "mailpost.backends.spool.EmailBackend",
                "OPTIONS": {"mailer": "mem", "path": str(tmp_path / "s.db")},
            },
        }
    )
    messages = [_msg(i, f"u{i}@x.test") for i in range(30)]
    assert mailpost.mailers["spool"].send_messages(messages) == 30
    assert Spool.from_mailer("spool").worker().run(until_idle=True) == 30
    assert sorted(m.subject for m in mailpost.outbox) == sorted(m.subject for m in messages)  # type: ignore[attr-defined]
    assert Spool.from_mailer("spool").stats()["states"]["sent"] == 30


def test_a_mailer_that_cannot_log_in_keeps_mail_queued_instead_of_dead(
    tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    """535 at AUTH is the mailer's problem (say, a rotated password), not the message's:
    the spool waits and retries, and delivers once the credentials are fixed."""
    from smtp_fixtures import USERS, mailer_entry
    from smtpd_harness import SMTPServer

    server: SMTPServer = request.getfixturevalue("auth_smtp_server")

    bad = mailer_entry(server, use_tls=True, username="alice", password="rotated-away")
    mailpost.configure(MAILERS={"smtp": bad})
    store = SQLiteStore(tmp_path / "s.db")
    request.addfinalizer(store.close)
    spool = Spool(store, mailer="smtp", clock=clock, policy=RetryPolicy(jitter=0))
    [rid] = spool.enqueue([_msg(1, "rcpt@example.com")])
    spool.worker(sleep=clock.sleep).run(until_idle=True)
    record = spool.get(rid)
    assert record is not None
    assert record.state == "queued"
    assert [r.status for r in record.recipients] == ["pending"]
    assert "535" in (record.last_error or "")
    assert server.messages == []

    good = mailer_entry(server, use_tls=True, username="alice", password=USERS["alice"])
    mailpost.configure(MAILERS={"smtp": good})
    clock.advance(3600)
    spool.worker(sleep=clock.sleep).run(until_idle=True)
    record = spool.get(rid)
    assert record is not None
    assert record.state == "sent"
    assert len(server.messages) == 1


def test_an_outcome_handed_over_as_a_callable_is_worked_out_and_committed_by_the_store_thread(
    spool: Spool, clock: FakeClock
) -> None:
    """The SMTP engine's thread hands delivered messages' outcomes over as callables; one
    that fails is not recorded (its lease expires, the record is delivered again) and does
    not stop the group it came with."""
    import threading

    from mailpost.spool.committer import Committer
    from mailpost.spool.record import Outcome, RecipientResult

    spool.enqueue([_msg(1), _msg(2)])
    worker = spool.worker(worker_id="w1", lease_seconds=30)
    heartbeat = worker.heartbeat()
    committer = Committer(worker, heartbeat)
    try:
        first, second = committer.lease_ahead(10).result(timeout=10)
        threads: list[str] = []

        def delivered() -> Outcome:
            threads.append(threading.current_thread().name)
            return Outcome([RecipientResult("a@x.test", "delivered", 250, "ok")], T0, T0, T0, False)

        def broken() -> Outcome:
            raise RuntimeError("bug")

        committer.put(first, delivered)
        committer.put(second, broken)
        committer.flush()
    finally:
        committer.close()
    assert threads == ["mailpost-spool-store"]
    assert spool.get(first.id).state == "sent"  # type: ignore[union-attr]
    assert spool.get(second.id).state == "leased"  # type: ignore[union-attr]
    clock.advance(31)
    assert [r.id for r in spool.store.lease("w2", now=clock(), lease_seconds=30, limit=5)] == [
        second.id
    ]
