"""The spool stores (SQLite, and PostgreSQL on a real server): enqueue, lease, settle,
retry, purge; leases across connections."""

from __future__ import annotations

import sqlite3
import sys
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from mailpost.spool.record import NewMessage, Outcome, RecipientResult
from mailpost.spool.store import SpoolStore, SQLiteStore

T0 = 1_000_000.0


def _new(n: int = 0, *, rcpts: tuple[str, ...] = ("a@x.test",), **kw: object) -> NewMessage:
    return NewMessage(
        data=f"Subject: msg {n}\r\nMessage-ID: <m{n}@x.test>\r\n\r\nbody\r\n".encode(),
        sender="s@x.test",
        recipients=list(rcpts),
        mailer="smtp",
        message_id=f"<m{n}@x.test>",
        **kw,  # type: ignore[arg-type]
    )


BOTH = pytest.mark.parametrize("spool_location", ["sqlite", "postgres"], indirect=True)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SpoolStore:
    if request.param == "sqlite":
        s: SpoolStore = SQLiteStore(tmp_path / "spool.sqlite3")
    else:
        from mailpost.spool.pgstore import PostgresStore

        s = PostgresStore(request.getfixturevalue("postgres_server").database())
    yield s  # type: ignore[misc]
    s.close()


def _outcome(results: list[RecipientResult], *, at: float, retry_at: float = 0.0, **kw: object
             ) -> Outcome:  # fmt: skip
    return Outcome(results, started_at=at, finished_at=at, retry_at=retry_at, **kw)  # type: ignore[arg-type]


def test_enqueue_is_visible_to_another_connection_in_wal_full_mode(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "spool.sqlite3")
    ids = store.enqueue([_new(1), _new(2)], now=T0)
    assert ids == [1, 2]
    other = sqlite3.connect(tmp_path / "spool.sqlite3")
    try:
        rows = other.execute("SELECT id, message_id, state FROM messages ORDER BY id").fetchall()
        assert rows == [(1, "<m1@x.test>", "queued"), (2, "<m2@x.test>", "queued")]
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        other.close()
        store.close()


def test_lease_returns_data_and_marks_owner(store: SpoolStore) -> None:
    store.enqueue([_new(1)], now=T0)
    [record] = store.lease("w1", now=T0, lease_seconds=60, limit=5)
    assert record.data is not None
    assert b"Subject: msg 1" in record.data
    assert (record.state, record.lease_owner) == ("leased", "w1")
    assert store.lease("w2", now=T0, lease_seconds=60, limit=5) == []


def test_priority_then_age_order(store: SpoolStore) -> None:
    store.enqueue([_new(1), _new(2, priority=5), _new(3), _new(4, priority=5)], now=T0)
    leased = store.lease("w", now=T0, lease_seconds=60, limit=10)
    assert [r.id for r in leased] == [2, 4, 1, 3]


def test_send_at_delays_the_first_attempt(store: SpoolStore) -> None:
    store.enqueue([_new(1, send_at=T0 + 3600)], now=T0)
    assert store.lease("w", now=T0 + 3599, lease_seconds=60) == []
    assert store.next_due(now=T0) == T0 + 3600
    assert [r.id for r in store.lease("w", now=T0 + 3600, lease_seconds=60)] == [1]


def test_expired_lease_is_taken_over_and_noted_in_history(store: SpoolStore) -> None:
    store.enqueue([_new(1)], now=T0)
    [first] = store.lease("crashed", now=T0, lease_seconds=30)
    assert store.lease("w2", now=T0 + 29, lease_seconds=30) == []
    [again] = store.lease("w2", now=T0 + 30, lease_seconds=30)
    assert again.lease_owner == "w2"
    assert [a.outcome for a in store.history(1)] == ["lease-expired"]
    # The stale holder can still record what it delivered, but not settle the record.
    settled = store.complete(
        first,
        _outcome([RecipientResult("a@x.test", "delivered", 250)], at=T0 + 31),
        worker="crashed",
    )
    assert settled is not None
    assert settled.state == "leased"
    assert settled.lease_owner == "w2"
    assert settled.recipients[0].status == "delivered"
    done = store.complete(again, _outcome([], at=T0 + 32), worker="w2")
    assert done is not None
    assert done.state == "sent"


def test_one_lease_takes_expired_and_due_records_each_once_with_their_bytes(
    store: SpoolStore,
) -> None:
    """Takeovers and fresh records leased in one call share the call's lease: each
    comes back once, the takeovers first."""
    store.enqueue([_new(1), _new(2)], now=T0)
    crashed = store.lease("crashed", now=T0, lease_seconds=30, limit=2)
    assert [r.id for r in crashed] == [1, 2]
    store.enqueue([_new(3), _new(4)], now=T0 + 10)
    leased = store.lease("w2", now=T0 + 30, lease_seconds=30, limit=10)
    assert [r.id for r in leased] == [1, 2, 3, 4]
    assert {r.lease_owner for r in leased} == {"w2"}
    assert len({r.lease_token for r in leased}) == 1
    assert [r.data for r in leased] == [_new(i).data for i in (1, 2, 3, 4)]


def test_retry_then_partial_then_permanent(store: SpoolStore) -> None:
    store.enqueue([_new(1, rcpts=("a@x.test", "b@x.test", "c@x.test"))], now=T0)
    [r] = store.lease("w", now=T0, lease_seconds=60)
    settled = store.complete(
        r,
        _outcome(
            [
                RecipientResult("a@x.test", "delivered", 250, "ok"),
                RecipientResult("b@x.test", "failed", 550, "no such user"),
                RecipientResult("c@x.test", "pending", 451, "busy"),
            ],
            at=T0 + 1,
            retry_at=T0 + 301,
            error="c busy",
        ),
        worker="w",
    )
    assert settled is not None
    assert (settled.state, settled.attempts, settled.next_attempt_at) == ("queued", 1, T0 + 301)
    assert settled.pending == ["c@x.test"]
    assert store.lease("w", now=T0 + 300, lease_seconds=60) == []
    [r] = store.lease("w", now=T0 + 301, lease_seconds=60)
    settled = store.complete(
        r, _outcome([RecipientResult("c@x.test", "delivered", 250)], at=T0 + 302), worker="w"
    )
    assert settled is not None
    assert settled.state == "dead"
    assert [x.status for x in settled.recipients] == ["delivered", "failed", "delivered"]
    assert [a.outcome for a in store.history(1)] == ["partial, will retry", "delivered"]


def test_give_up_dead_letters_pending_recipients(store: SpoolStore) -> None:
    store.enqueue([_new(1)], now=T0)
    [r] = store.lease("w", now=T0, lease_seconds=60)
    settled = store.complete(
        r,
        _outcome([RecipientResult("a@x.test", "pending", 421, "down")], at=T0, give_up=True),
        worker="w",
    )
    assert settled is not None
    assert settled.state == "dead"
    assert settled.recipients[0].status == "failed"
    assert "gave up after 1 attempt" in (settled.last_error or "")


def test_retry_requeues_only_failed_recipients_of_dead_messages(store: SpoolStore) -> None:
    store.enqueue([_new(1, rcpts=("a@x.test", "b@x.test")), _new(2)], now=T0)
    [r1, _] = store.lease("w", now=T0, lease_seconds=60, limit=2)
    store.complete(
        r1,
        _outcome(
            [
                RecipientResult("a@x.test", "delivered", 250),
                RecipientResult("b@x.test", "failed", 550),
            ],
            at=T0,
        ),
        worker="w",
    )
    assert store.retry(now=T0 + 10) == 1
    record = store.get(1)
    assert record is not None
    assert record.state == "queued"
    assert record.pending == ["b@x.test"]
    assert record.delivered == ["a@x.test"]
    assert record.queued_at == T0 + 10


def test_purge_and_stats(store: SpoolStore) -> None:
    store.enqueue([_new(1), _new(2), _new(3)], now=T0)
    [r] = store.lease("w", now=T0, lease_seconds=60, ids=[2])
    store.complete(r, _outcome([RecipientResult("a@x.test", "delivered")], at=T0), worker="w")
    stats = store.stats(now=T0)
    assert stats["states"] == {"queued": 2, "leased": 0, "sent": 1, "dead": 0}
    assert stats["due"] == 2
    assert stats["total"] == 3
    assert store.purge(states=["sent"], older_than=T0) == 0
    assert store.purge(states=["sent"]) == 1
    assert store.history(2) == []
    with pytest.raises(ValueError, match="unknown spool state"):
        store.purge(states=["gone"])


def _own_store(location: str) -> SpoolStore:
    """A store object of its own (its own connection), as another process would have."""
    if location.startswith("postgresql://"):
        from mailpost.spool.pgstore import PostgresStore

        return PostgresStore(location)
    return SQLiteStore(location)


@BOTH
def test_two_stores_never_lease_the_same_record(spool_location: str) -> None:
    path = spool_location
    with closing(_own_store(path)) as seed:
        seed.enqueue([_new(i) for i in range(400)], now=T0)
    taken: dict[str, list[int]] = {}

    start = threading.Barrier(4, timeout=10)

    def grab(name: str) -> None:
        store = _own_store(path)
        start.wait()
        mine: list[int] = []
        for _ in range(200):
            got = store.lease(name, now=T0, lease_seconds=600, limit=3)
            if not got:
                break
            mine += [r.id for r in got]
        taken[name] = mine
        store.close()

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everything = [i for ids in taken.values() for i in ids]
    assert len(taken) == 4
    assert sorted(everything) == list(range(1, 401))  # each record exactly once


def test_a_postgres_spools_password_is_never_shown(postgres_server: Any) -> None:
    import mailpost
    from mailpost.spool.pgstore import PostgresStore

    url = postgres_server.database().replace("postgres@", "postgres:s3cret@")
    store = PostgresStore(url)  # the test server trusts loopback: any password does
    try:
        assert "s3cret" not in repr(store)
        assert ":***@" in repr(store)
    finally:
        store.close()
    unreachable = f"postgresql://mail:s3cret@127.0.0.1:{postgres_server.port + 1}/nope"
    mailpost.configure(
        MAILERS={
            "spool": {
                "BACKEND": "mailpost.backends.spool.EmailBackend",
                "OPTIONS": {"path": unreachable, "mailer": "smtp"},
            }
        }
    )
    backend = mailpost.mailers["spool"]
    assert "s3cret" not in repr(backend)
    with pytest.raises(mailpost.InvalidMailer) as info:
        backend.store  # noqa: B018 - opening the store is the point
    assert "s3cret" not in str(info.value)
    assert "cannot open spool" in str(info.value)


def test_group_settle_records_each_outcome_when_one_lease_was_lost_and_one_purged(
    store: SpoolStore,
) -> None:
    """A group whose records are not all as leased (the SQLite store's planned write does
    not apply) still records every outcome by the rules, in one transaction, and the lease
    ahead comes back with its bytes."""
    from mailpost.spool.base import LeaseRequest

    store.enqueue([_new(i, rcpts=("a@x.test", "b@x.test")) for i in range(1, 6)], now=T0)
    mine = store.lease("w1", now=T0, lease_seconds=10, limit=3)
    assert [r.id for r in mine] == [1, 2, 3]
    # record 2's lease expires and another worker takes it; record 3 is purged
    stolen = store.lease("w2", now=T0 + 11, lease_seconds=10, limit=1, ids=[2])
    assert [r.id for r in stolen] == [2]
    assert store.purge(ids=[3], states=("leased",)) == 1
    delivered = [RecipientResult("a@x.test", "delivered", 250, "ok"),
                 RecipientResult("b@x.test", "delivered", 250, "ok")]  # fmt: skip
    outcomes = [(r, _outcome(delivered, at=T0 + 12)) for r in mine]
    request = LeaseRequest(owner="w1", now=T0 + 12, lease_seconds=10, limit=10, mailers=None)
    settled, leased = store.settle(outcomes, worker="w1", lease=request)
    assert settled[0] == ("sent", None)
    assert settled[1] is not None
    assert settled[1][0] == "leased"
    assert settled[2] is None  # purged
    assert sorted(r.id for r in leased) == [4, 5]
    assert all(r.data is not None and r.data.startswith(b"Subject: msg ") for r in leased)
    two = store.get(2)
    assert two is not None
    assert two.state == "leased"
    assert two.lease_owner == "w2"
    assert [r.status for r in two.recipients] == ["delivered", "delivered"]
    assert [a.outcome for a in store.history(1)] == ["delivered"]
    assert [a.outcome for a in store.history(2)][-1] == "delivered (lease lost)"


def test_group_settle_writes_the_same_rows_as_one_at_a_time(store: SpoolStore) -> None:
    """The grouped write gives each record exactly what settling it alone gives."""
    store.enqueue([_new(i, rcpts=("a@x.test", "b@x.test")) for i in range(1, 5)], now=T0)
    records = store.lease("w1", now=T0, lease_seconds=10, limit=4)
    mixed = [RecipientResult("a@x.test", "delivered", 250, "ok"),
             RecipientResult("b@x.test", "pending", 451, "later")]  # fmt: skip
    refused = [RecipientResult("a@x.test", "failed", 550, "no"),
               RecipientResult("b@x.test", "delivered", 250, "ok")]  # fmt: skip
    group = [(records[0], _outcome(mixed, at=T0 + 1, retry_at=T0 + 60)),
             (records[1], _outcome(refused, at=T0 + 1))]  # fmt: skip
    store.settle(group, worker="w1")
    store.complete(records[2], _outcome(mixed, at=T0 + 1, retry_at=T0 + 60), worker="w1")
    store.complete(records[3], _outcome(refused, at=T0 + 1), worker="w1")

    def row(record_id: int) -> tuple[Any, ...]:
        r = store.get(record_id)
        assert r is not None
        return (r.state, r.attempts, r.next_attempt_at, r.last_error, r.lease_owner,
                [(x.address, x.status, x.code, x.reply) for x in r.recipients])  # fmt: skip

    assert row(1) == row(3)
    assert row(2) == row(4)
    assert row(1)[0] == "queued"
    assert row(1)[2] == T0 + 60
    assert row(2)[0] == "dead"
    assert [a.outcome for a in store.history(1)] == [a.outcome for a in store.history(3)]


def test_a_lease_returns_the_stored_times_exactly(store: SpoolStore) -> None:
    """Times come back as stored, to the last bit (the SQLite lease reads rows as JSON)."""
    now = 1_733_563_200.123456789
    store.enqueue([_new(1, send_at=now + 0.000001)], now=now)
    [record] = store.lease("w1", now=now + 1.000003, lease_seconds=20.000001, limit=1)
    assert record.created_at == now
    assert record.queued_at == now
    assert record.send_at == now + 0.000001
    assert record.lease_expires_at == now + 1.000003 + 20.000001
    assert record.updated_at == now + 1.000003


def _hold_turn(path: Path) -> int:
    """Take the spool's writer turn as another process's writer would (its own ``flock``)."""
    import fcntl
    import os

    fd = os.open(f"{path}-lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@pytest.mark.skipif(sys.platform == "win32", reason="the writer turn is a POSIX flock")
def test_writers_take_turns_an_enqueue_gives_up_after_the_busy_timeout(tmp_path: Path) -> None:
    import os

    path = tmp_path / "spool.sqlite3"
    with closing(SQLiteStore(path, busy_timeout=0.2)) as store:
        assert (tmp_path / "spool.sqlite3-lock").is_file()
        [first] = store.enqueue([_new(1)], now=T0)
        fd = _hold_turn(path)
        try:
            with pytest.raises(sqlite3.OperationalError) as caught:
                store.enqueue([_new(2)], now=T0)
            assert "database is locked" in str(caught.value)
            assert str(path) in str(caught.value)
            assert "0.2 s" in str(caught.value)
        finally:
            os.close(fd)
        # the enqueue that gave up wrote nothing; with the turn free, writes go on
        [second] = store.enqueue([_new(3)], now=T0)
        leased = store.lease("w", now=T0, lease_seconds=30, limit=10)
        assert [r.message_id for r in leased] == ["<m1@x.test>", "<m3@x.test>"]
        assert [r.id for r in leased] == [first, second]


@pytest.mark.skipif(sys.platform == "win32", reason="the writer turn is a POSIX flock")
def test_a_workers_group_commit_waits_for_its_turn_however_long(tmp_path: Path) -> None:
    import os

    from mailpost.spool.base import LeaseRequest

    path = tmp_path / "spool.sqlite3"
    with closing(SQLiteStore(path, busy_timeout=0.1)) as store:
        [rid] = store.enqueue([_new(1)], now=T0)
        fd = _hold_turn(path)
        got: list[Any] = []
        request = LeaseRequest(owner="w", now=T0, lease_seconds=30, limit=5)
        waiter = threading.Thread(
            target=lambda: got.append(store.settle([], worker="w", lease=request))
        )
        try:
            waiter.start()
            waiter.join(0.5)  # five busy timeouts: it neither gave up nor went ahead
            assert waiter.is_alive()
            assert got == []
        finally:
            os.close(fd)  # the other writer is done
        waiter.join(10)
        assert not waiter.is_alive()
        [(settled, leased)] = got
        assert settled == []
        assert [r.id for r in leased] == [rid]


def test_a_spool_whose_lock_file_cannot_be_opened_still_works(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    (tmp_path / "spool.sqlite3-lock").mkdir()  # cannot be opened as a file
    with closing(SQLiteStore(path)) as store:
        [rid] = store.enqueue([_new(1)], now=T0)
        assert [r.id for r in store.lease("w", now=T0, lease_seconds=30, limit=5)] == [rid]


def _old_layout(dialect: Any, execute: Any) -> None:
    """A spool as mailpost 0.1.0 laid it out: the bytes in a ``data`` column of
    ``messages`` (no ``message_data`` table)."""
    for statement in dialect.schema():
        if "message_data" not in statement:
            execute(statement)
    execute(f"ALTER TABLE messages ADD COLUMN data {dialect.blob}")
    p = dialect.param
    for n in (1, 2, 3):
        execute(
            "INSERT INTO messages (id, message_id, mailer, sender, recipients, size, priority, "
            "state, created_at, queued_at, next_attempt_at, updated_at, data) VALUES "
            f"({p}, {p}, 'smtp', 's@x.test', '[[\"a@x.test\",\"pending\",null,\"\"]]', 4, 0, "
            f"{p}, {T0}, {T0}, {T0}, {T0}, {p})",
            (n, f"<m{n}@x.test>", "sent" if n == 1 else "queued", f"old {n}".encode()),
        )
    execute(
        "INSERT INTO attempts (message, attempt, started_at, finished_at, worker, outcome, "
        f"recipients) VALUES (1, 1, {T0}, {T0}, 'w0', 'delivered', '[]')"
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_spool_with_the_bytes_in_its_messages_rows_is_moved_to_their_table_on_open(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from mailpost.spool.dialect import POSTGRES, SQLITE

    if kind == "sqlite":
        path = tmp_path / "old.sqlite3"
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            _old_layout(SQLITE, db.execute)
            # ids 4-9 were given and purged: the counter is ahead of the rows
            db.execute("UPDATE sqlite_sequence SET seq = 9 WHERE name = 'messages'")
        store: SpoolStore = SQLiteStore(path)
        columns = [r[1] for r in store._db.execute("PRAGMA table_info(messages)")]  # type: ignore[attr-defined]
        indexes = {r[1] for r in store._db.execute("PRAGMA index_list(messages)")}  # type: ignore[attr-defined]
        assert {"messages_due", "messages_leases"} <= indexes
    else:
        import psycopg

        from mailpost.spool.pgstore import PostgresStore

        url = request.getfixturevalue("postgres_server").database()
        with psycopg.connect(url, autocommit=True) as raw:
            _old_layout(POSTGRES, raw.execute)
            raw.execute("SELECT setval(pg_get_serial_sequence('messages', 'id'), 9)")
        store = PostgresStore(url)
        with store._read() as cur:  # type: ignore[attr-defined]
            cur.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'messages'"
            )
            columns = [r[0] for r in cur.fetchall()]
    try:
        assert "data" not in columns
        assert "state" in columns
        sent = store.get(1, with_data=True)
        assert sent is not None
        assert (sent.state, sent.data) == ("sent", b"old 1")
        assert [a.outcome for a in store.history(1)] == ["delivered"]
        leased = store.lease("w1", now=T0 + 1, lease_seconds=60, limit=5)
        assert [(r.id, r.data) for r in leased] == [(2, b"old 2"), (3, b"old 3")]
        assert store.enqueue([_new(10)], now=T0) == [10]  # never an id given before
        assert store.purge(states=("sent",)) == 1
        assert store.get(1, with_data=True) is None
    finally:
        store.close()
    # opened again: already in the new layout, nothing moved twice
    again: SpoolStore = SQLiteStore(path) if kind == "sqlite" else PostgresStore(url)
    try:
        fresh = again.get(10, with_data=True)
        assert fresh is not None
        assert fresh.data is not None
        assert b"msg 10" in fresh.data
        assert again.stats(now=T0)["total"] == 3
    finally:
        again.close()


def test_a_lease_leaves_the_bytes_of_a_message_out_of_the_rows_it_rewrites(
    tmp_path: Path,
) -> None:
    """The bytes live in their own table: leasing and settling rewrite only the small
    bookkeeping row (the message's bytes are written once, at enqueue)."""
    store = SQLiteStore(tmp_path / "spool.sqlite3")
    try:
        store.enqueue([_new(1)], now=T0)
        [record] = store.lease("w1", now=T0, lease_seconds=60, limit=1)
        store.complete(
            record,
            _outcome([RecipientResult("a@x.test", "delivered", 250, "ok")], at=T0 + 1),
            worker="w1",
        )
        db = store._db
        assert "data" not in [r[1] for r in db.execute("PRAGMA table_info(messages)")]
        assert db.execute("SELECT id, length(data) FROM message_data").fetchall() == [
            (1, len(_new(1).data))
        ]
    finally:
        store.close()


def test_leased_bytes_come_back_exactly_whatever_they_hold_and_however_they_are_read(
    store: SpoolStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite reads a lease's bytes as one concatenated value (one step, not one per
    row), in runs of at most a byte budget: every record still gets exactly its own."""
    from mailpost.spool import sqlstore

    monkeypatch.setattr(sqlstore, "_DATA_BUDGET", 3000)  # a few runs, one record alone
    bodies = [
        b"Subject: 0\r\n\r\n\x00\xff\xfe not UTF-8 \x00\r\n",
        b"Subject: 1\r\n\r\n" + bytes(range(256)) * 20,  # 5 KB: over the budget alone
        b"Subject: 2\r\n\r\n" + b"x" * 1000 + b"\r\n",
        b"Subject: 3\r\n\r\n" + b"y" * 1500 + b"\r\n",
        b"Subject: 4\r\n\r\nshort\r\n",
    ]
    ids = store.enqueue(
        [
            NewMessage(data=b, sender="s@x.test", recipients=["a@x.test"], mailer="smtp")
            for b in bodies
        ],
        now=T0,
    )
    leased = store.lease("w1", now=T0, lease_seconds=60, limit=10)
    assert {r.id: r.data for r in leased} == dict(zip(ids, bodies, strict=True))
    chunks = [[r.id for r in c] for c in sqlstore._chunks(leased, 3000)]
    assert sorted(i for c in chunks for i in c) == sorted(ids)
    assert len(chunks) >= 3
    assert [r.id for r in leased if r.size > 3000] in [c for c in chunks if len(c) == 1]
