"""Leases kept alive by the heartbeat: short leases, long sends, no double delivery."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import mailpost
from mailpost import EmailMessage
from mailpost.spool import Spool, SQLiteStore
from mailpost.spool.worker import DEFAULT_LEASE_SECONDS, Heartbeat, Worker
from smtpd_harness import Faults, SMTPServer
from spool_helpers import smtp_entry, spool_entry

pytestmark = pytest.mark.timeout(60)


def _store_with(tmp_path: Path, n: int) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "spool.sqlite3")
    spool = Spool(store, mailer="smtp")
    spool.enqueue([EmailMessage(f"msg {i}", "b", "f@x.test", ["a@x.test"]) for i in range(n)])
    return store


def test_default_lease_recovers_a_dead_worker_within_30_seconds() -> None:
    assert DEFAULT_LEASE_SECONDS <= 30


def test_heartbeat_renews_held_leases_past_their_length(tmp_path: Path) -> None:
    store = _store_with(tmp_path, 2)
    records = store.lease("w1", now=time.time(), lease_seconds=0.6, limit=2)
    with Heartbeat(store, lease_seconds=0.6, interval=0.1) as heartbeat:
        heartbeat.hold(records)
        time.sleep(1.5)  # more than twice the lease
        assert store.lease("w2", now=time.time(), lease_seconds=0.6, limit=2) == []
        assert heartbeat.beats >= 3
    # Stopped: nobody renews, so the leases run out and another worker gets them.
    time.sleep(0.8)
    assert len(store.lease("w2", now=time.time(), lease_seconds=60, limit=2)) == 2
    store.close()


def test_heartbeat_drops_a_record_once_settled(tmp_path: Path) -> None:
    store = _store_with(tmp_path, 1)
    [record] = store.lease("w1", now=time.time(), lease_seconds=30)
    heartbeat = Heartbeat(store, lease_seconds=30, interval=5)
    heartbeat.hold([record])
    heartbeat.drop(record)
    assert heartbeat.held == []
    assert heartbeat.beat() == []
    store.close()


def test_heartbeat_reports_a_lease_taken_by_another_worker(tmp_path: Path) -> None:
    store = _store_with(tmp_path, 1)
    t0 = time.time()
    [record] = store.lease("stalled", now=t0, lease_seconds=1)
    [taken] = store.lease("w2", now=t0 + 2, lease_seconds=60)  # it expired meanwhile
    heartbeat = Heartbeat(store, lease_seconds=1, clock=lambda: t0 + 2, interval=0.5)
    heartbeat.hold([record])
    assert heartbeat.beat() == [record.id]
    assert heartbeat.lost(record)
    assert heartbeat.held == []
    assert store.get(taken.id).lease_owner == "w2"  # type: ignore[union-attr]
    store.close()


def test_a_record_committed_before_the_heartbeat_drops_it_is_not_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The store thread commits a group, then drops its records from the heartbeat; a beat
    # in between finds those leases gone. That is the commit, not another worker.
    from mailpost.spool.record import Outcome, RecipientResult

    store = _store_with(tmp_path, 2)
    now = time.time()
    settled, other = store.lease("w1", now=now, lease_seconds=30, limit=2)
    heartbeat = Heartbeat(store, lease_seconds=30, interval=5)
    heartbeat.hold([settled, other])
    heartbeat.settling([settled])
    delivered = Outcome([RecipientResult("a@x.test", "delivered", 250, "ok")], now, now, now)
    assert store.complete(settled, delivered, worker="w1") is not None
    with caplog.at_level("WARNING", logger="mailpost.spool"):
        assert heartbeat.beat() == []
    assert not heartbeat.lost(settled)
    assert "lost the lease" not in caplog.text
    assert [r.id for r in heartbeat.held] == [settled.id, other.id]  # drop() comes next
    heartbeat.drop(settled)
    assert [r.id for r in heartbeat.held] == [other.id]
    # The mark goes with the drop: the other record's loss is still reported.
    [taken] = store.lease("w2", now=now + 60, lease_seconds=60)
    assert taken.id == other.id
    heartbeat.clock = lambda: now + 60
    assert heartbeat.beat() == [other.id]
    assert heartbeat.lost(other)
    store.close()


class _BeatAfterCommit(SQLiteStore):
    """A store whose group commit is followed at once by a heartbeat beat: the moment
    between the commit and the store thread dropping the records."""

    heartbeat: Heartbeat | None = None

    def settle(self, *args: Any, **kwargs: Any) -> Any:
        done = super().settle(*args, **kwargs)
        assert self.heartbeat is not None
        self.heartbeat.beat()
        return done


def test_the_store_thread_marks_a_group_settling_before_it_commits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from mailpost.spool.committer import Committer
    from mailpost.spool.record import Outcome, RecipientResult

    store = _BeatAfterCommit(tmp_path / "spool.sqlite3")
    Spool(store, mailer="smtp").enqueue(
        [EmailMessage(f"msg {i}", "b", "f@x.test", ["a@x.test"]) for i in range(2)]
    )
    worker = Worker(store, worker_id="w1")
    now = time.time()
    records = store.lease("w1", now=now, lease_seconds=30, limit=2)
    heartbeat = worker.heartbeat()
    heartbeat.hold(records)
    store.heartbeat = heartbeat
    committer = Committer(worker, heartbeat)
    with caplog.at_level("WARNING", logger="mailpost.spool"):
        for record in records:
            delivered = [RecipientResult("a@x.test", "delivered", 250, "ok")]
            committer.put(record, Outcome(delivered, now, now, now))
        committer.flush()
        committer.close()
    assert committer.error is None
    assert "lost the lease" not in caplog.text
    assert not any(heartbeat.lost(r) for r in records)
    assert heartbeat.held == []
    assert [store.get(r.id).state for r in records] == ["sent", "sent"]  # type: ignore[union-attr]
    store.close()


def test_heartbeat_interval_must_be_shorter_than_the_lease(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "spool.sqlite3")
    with pytest.raises(ValueError, match="heartbeat_interval"):
        Worker(store, lease_seconds=10, heartbeat_interval=10)
    store.close()


class SlowData(Faults):
    """The end of DATA is answered after ``pause`` seconds (a slow, live server)."""

    pause = 3.0

    def delay(self, number: int, tries: int) -> float:
        return self.pause


def test_slow_server_keeps_the_lease_and_a_second_worker_never_sends_it(tmp_path: Path) -> None:
    """A 3 s DATA reply with a 1 s lease: the heartbeat keeps the lease for the whole
    wait, so a second live worker finds nothing to do, and the message goes out once."""
    with SMTPServer(faults=SlowData()) as server:
        path = str(tmp_path / "spool.sqlite3")
        mailpost.configure(
            MAILERS={
                "smtp": smtp_entry(server, timeout=10.0),
                "spool": spool_entry(path, "smtp", lease_seconds=1.0),
            }
        )
        mailpost.mailers["spool"].send_messages(
            [EmailMessage("msg 0", "body", "f@x.test", ["u0@x.test"])]
        )
        spool = Spool.from_mailer("spool")
        first = spool.worker(worker_id="first", heartbeat_interval=0.2)
        thread = threading.Thread(target=first.run, kwargs={"until_idle": True})
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.recorder.data_tries and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.recorder.data_tries[0] == 1
            time.sleep(1.5)  # the original lease has long run out by now
            second = spool.worker(worker_id="second", heartbeat_interval=0.2)
            assert second.run(until_idle=True) == 0
        finally:
            thread.join(20)
        assert not thread.is_alive()
        [record] = spool.list()
        assert record.state == "sent"
        assert len(server.messages) == 1
        history = spool.show(record.id).history
        assert [(a.worker, a.outcome) for a in history] == [("first", "delivered")]
