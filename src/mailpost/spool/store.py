"""Where spooled messages live: the abstract store and the embedded SQLite one.

Every method that changes the spool is one transaction. The SQLite store runs in WAL mode
with ``synchronous=FULL``: a commit fsyncs the write-ahead log before it returns, so a
message is on disk when :meth:`SpoolStore.enqueue` returns, even if the machine loses
power right after (``NORMAL`` would only survive a process crash, not a power loss).

Leasing is atomic across processes: ``BEGIN IMMEDIATE`` takes SQLite's write lock before
picking due records, so two workers can never lease the same record. A lease carries a
random token; only the holder of the current token may settle the record's state, while a
worker whose lease expired still records the recipients it delivered (delivered is final).
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mailpost.spool.codec import decode_recipients, encode_recipients, new_recipients_json
from mailpost.spool.record import (
    STATES,
    Attempt,
    MessageState,
    NewMessage,
    Outcome,
    SpoolRecipient,
    SpoolRecord,
)

__all__ = [
    "LeaseRequest",
    "SQLiteStore",
    "Settled",
    "SpoolStore",
    "display_location",
    "open_store",
    "shared_sqlite_store",
]

#: What settling one outcome did: the record's new state and its last error.
Settled = tuple[str, "str | None"]


@dataclass(frozen=True)
class LeaseRequest:
    """A lease to take in the same transaction as a group of outcomes (lease ahead)."""

    owner: str
    now: float
    lease_seconds: float
    limit: int
    mailers: Collection[str] | None = None


class SpoolStore(ABC):
    """The operations a spool store provides; the worker and the API use only these."""

    @abstractmethod
    def enqueue(self, messages: Sequence[NewMessage], *, now: float) -> list[int]:
        """Store new messages durably, all or none; returns their ids in order."""

    @abstractmethod
    def lease(
        self,
        owner: str,
        *,
        now: float,
        lease_seconds: float,
        limit: int = 1,
        ids: Collection[int] | None = None,
        mailers: Collection[str] | None = None,
    ) -> list[SpoolRecord]:
        """Take up to ``limit`` due records (or expired leases) for ``owner``, with data.

        Highest priority first, then the longest-waiting. ``ids`` restricts the choice to
        those records (still only if due); ``mailers`` to those target aliases.
        """

    @abstractmethod
    def renew(
        self, records: Sequence[SpoolRecord], *, now: float, lease_seconds: float
    ) -> list[int]:
        """Extend the leases still held; returns the ids whose lease was extended."""

    @abstractmethod
    def release(self, record: SpoolRecord, *, now: float) -> bool:
        """Give a leased record back untouched (worker shutting down)."""

    @abstractmethod
    def complete(self, record: SpoolRecord, outcome: Outcome, *, worker: str) -> SpoolRecord | None:
        """Record one attempt on a leased record and settle its state; None if purged."""

    def settle(
        self,
        outcomes: Sequence[tuple[SpoolRecord, Outcome]],
        *,
        worker: str,
        lease: LeaseRequest | None = None,
    ) -> tuple[builtins.list[Settled | None], builtins.list[SpoolRecord]]:
        """Record a group of outcomes (as :meth:`complete`), then take ``lease``.

        A store that can should do it in one transaction: one durable commit for the
        whole group (a group commit). This default calls :meth:`complete` per outcome.
        Returns the new (state, last error) of each record (None if purged) and the
        records leased.
        """
        settled: builtins.list[Settled | None] = []
        for record, outcome in outcomes:
            fresh = self.complete(record, outcome, worker=worker)
            settled.append(None if fresh is None else (fresh.state, fresh.last_error))
        leased: builtins.list[SpoolRecord] = []
        if lease is not None and lease.limit > 0:
            leased = self.lease(
                lease.owner,
                now=lease.now,
                lease_seconds=lease.lease_seconds,
                limit=lease.limit,
                mailers=lease.mailers,
            )
        return settled, leased

    @abstractmethod
    def get(self, record_id: int, *, with_data: bool = False) -> SpoolRecord | None:
        """One record, or None."""

    @abstractmethod
    def history(self, record_id: int) -> list[Attempt]:
        """Every attempt on a record, oldest first."""

    @abstractmethod
    def list(
        self,
        *,
        states: Collection[str] | None = None,
        mailer: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[SpoolRecord]:
        """Records (without data), oldest first."""

    @abstractmethod
    def retry(
        self, ids: Collection[int] | None = None, *, states: Collection[str] = ("dead",), now: float
    ) -> int:
        """Make records due now; failed recipients of dead ones become pending again."""

    @abstractmethod
    def purge(
        self,
        *,
        states: Collection[str] = ("sent",),
        ids: Collection[int] | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete records (and their history) in ``states``, last changed before ``older_than``."""

    @abstractmethod
    def stats(self, *, now: float) -> dict[str, Any]:
        """Counts by state and mailer, how many are due, when the next one is."""

    @abstractmethod
    def next_due(self, *, now: float) -> float | None:
        """When the next record becomes leasable (None if nothing is waiting)."""

    @abstractmethod
    def due(self, *, now: float, limit: int = 100) -> builtins.list[SpoolRecord]:
        """Records leasable at ``now`` (queued and due, or leased with an expired lease),
        without data, the longest-waiting first."""

    def reserve_slot(self, mailer: str, *, now: float, interval: float) -> float:
        """When the next message through ``mailer`` may go, at most one per ``interval``
        seconds for every worker of this store; that moment is then taken.

        This default keeps the schedule in this store object (one process); a store
        shared between processes overrides it to share the schedule too.
        """
        with _slots_lock:
            slots = vars(self).setdefault("_rate_slots", {})
            slot = max(now, slots.get(mailer, now))
            slots[mailer] = slot + interval
            return float(slot)

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release resources."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT,
    mailer TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    data BLOB NOT NULL,
    size INTEGER NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    send_at REAL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_token TEXT,
    lease_expires_at REAL,
    last_error TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (priority DESC, next_attempt_at, id)
    WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS messages_leases ON messages (lease_expires_at)
    WHERE state = 'leased';
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    message INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    worker TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    recipients TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_message ON attempts (message, id);
CREATE TABLE IF NOT EXISTS rate_slots (
    mailer TEXT PRIMARY KEY,
    next_at REAL NOT NULL
);
"""

_slots_lock = threading.Lock()

_COLUMNS = (
    "id, message_id, mailer, sender, recipients, priority, state, created_at, send_at, "
    "next_attempt_at, attempts, lease_owner, lease_expires_at, last_error, updated_at, size, "
    "lease_token, queued_at"
)
_INSERT = (
    "INSERT INTO messages (message_id, mailer, sender, recipients, data, size, priority, "
    "state, created_at, queued_at, send_at, next_attempt_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)"
)


def _check_states(states: Collection[str]) -> list[str]:
    bad = sorted(set(states) - set(STATES))
    if bad:
        raise ValueError(f"unknown spool state(s) {bad}; states are {', '.join(STATES)}")
    return list(states)


class SQLiteStore(SpoolStore):
    """The embedded store: one SQLite file in WAL mode, safe for many processes.

    One connection per store object, shared by threads behind a lock; open one store per
    process (see :func:`shared_sqlite_store`). ``busy_timeout`` is how long a writer waits
    for another process's transaction.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"spool directory {directory!r} does not exist")
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._conn = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OSError(f"spool {self.path!r}: cannot switch SQLite to WAL mode (got {mode!r})")
        self._conn.execute("PRAGMA synchronous = FULL")
        # Checkpoint the WAL into the database every ~16 MB rather than ~4 MB: a quarter of
        # the database fsyncs for a bulk enqueue (measured ~10% of its cost).
        self._conn.execute("PRAGMA wal_autocheckpoint = 4000")
        with self._write():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from the start."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def reserve_slot(self, mailer: str, *, now: float, interval: float) -> float:
        """The shared schedule lives in the spool file, so every worker process of this
        spool keeps to one rate. The commit is not fsync'd: a schedule lost in a power
        cut only lets the next message go at once."""
        with self._lock:
            conn = self._conn
            conn.execute("PRAGMA synchronous = NORMAL")
            try:
                with self._write():
                    row = conn.execute(
                        "SELECT next_at FROM rate_slots WHERE mailer = ?", (mailer,)
                    ).fetchone()
                    slot = now if row is None else max(now, float(row[0]))
                    conn.execute(
                        "INSERT INTO rate_slots (mailer, next_at) VALUES (?, ?) "
                        "ON CONFLICT (mailer) DO UPDATE SET next_at = excluded.next_at",
                        (mailer, slot + interval),
                    )
            finally:
                conn.execute("PRAGMA synchronous = FULL")
            return slot

    # -- enqueue ------------------------------------------------------------------------

    def enqueue(self, messages: Sequence[NewMessage], *, now: float) -> list[int]:
        if not messages:
            return []
        rows = [
            (
                m.message_id,
                m.mailer,
                m.sender,
                new_recipients_json(m.recipients),
                m.data,
                len(m.data),
                int(m.priority),
                now,
                now,
                m.send_at,
                now if m.send_at is None else max(now, m.send_at),
                now,
            )
            for m in messages
        ]
        with self._write() as conn:
            if len(rows) == 1:
                cursor = conn.execute(_INSERT, rows[0])
                return [int(cursor.lastrowid or 0)]
            conn.executemany(_INSERT, rows)
            last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
            return list(range(last - len(rows) + 1, last + 1))

    # -- leasing --------------------------------------------------------------------------

    def lease(
        self,
        owner: str,
        *,
        now: float,
        lease_seconds: float,
        limit: int = 1,
        ids: Collection[int] | None = None,
        mailers: Collection[str] | None = None,
    ) -> list[SpoolRecord]:
        where = _lease_filter(ids, mailers)
        if limit < 1 or where is None:
            return []
        with self._write() as conn:
            return self._lease_in(conn, owner, now, lease_seconds, limit, *where)

    def _lease_in(
        self,
        conn: Any,
        owner: str,
        now: float,
        lease_seconds: float,
        limit: int,
        extra: str,
        params: builtins.list[Any],
    ) -> builtins.list[SpoolRecord]:
        """The body of :meth:`lease`, inside the caller's write transaction."""
        token = uuid.uuid4().hex
        expires = now + lease_seconds
        expired = conn.execute(
            "SELECT id, lease_owner FROM messages WHERE state = 'leased' "
            f"AND lease_expires_at <= ?{extra} ORDER BY lease_expires_at LIMIT ?",
            [now, *params, limit],
        ).fetchall()
        chosen = [int(r[0]) for r in expired]
        if len(chosen) < limit:
            due = conn.execute(
                "SELECT id FROM messages WHERE state = 'queued' "
                f"AND next_attempt_at <= ?{extra} "
                "ORDER BY priority DESC, next_attempt_at, id LIMIT ?",
                [now, *params, limit - len(chosen)],
            ).fetchall()
            chosen += [int(r[0]) for r in due]
        if not chosen:
            return []
        if expired:
            conn.executemany(
                "INSERT INTO attempts (message, attempt, started_at, finished_at, worker, "
                "outcome, error, recipients) SELECT id, attempts, ?, ?, ?, 'lease-expired', "
                "?, '[]' FROM messages WHERE id = ?",
                [
                    (now, now, str(old or "?"), f"lease of worker {old} expired", rid)
                    for rid, old in expired
                ],
            )
        conn.executemany(
            "UPDATE messages SET state = 'leased', lease_owner = ?, lease_token = ?, "
            "lease_expires_at = ?, updated_at = ? WHERE id = ?",
            [(owner, token, expires, now, rid) for rid in chosen],
        )
        marks = ",".join("?" * len(chosen))
        rows = conn.execute(
            f"SELECT {_COLUMNS}, data FROM messages WHERE id IN ({marks})", chosen
        ).fetchall()
        by_id = {int(row[0]): _record(row, with_data=True) for row in rows}
        return [by_id[i] for i in chosen if i in by_id]

    def renew(
        self, records: Sequence[SpoolRecord], *, now: float, lease_seconds: float
    ) -> list[int]:
        if not records:
            return []
        expires = now + lease_seconds
        changed: list[int] = []
        with self._write() as conn:
            for record in records:
                cursor = conn.execute(
                    "UPDATE messages SET lease_expires_at = ? WHERE id = ? AND state = 'leased' "
                    "AND lease_token = ?",
                    (expires, record.id, record.lease_token),
                )
                if cursor.rowcount:
                    record.lease_expires_at = expires
                    changed.append(record.id)
        return changed

    def release(self, record: SpoolRecord, *, now: float) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE messages SET state = 'queued', lease_owner = NULL, lease_token = NULL, "
                "lease_expires_at = NULL, updated_at = ? WHERE id = ? AND state = 'leased' "
                "AND lease_token = ?",
                (now, record.id, record.lease_token),
            )
            return bool(cursor.rowcount)

    def complete(self, record: SpoolRecord, outcome: Outcome, *, worker: str) -> SpoolRecord | None:
        with self._write() as conn:
            if not self._settle_in(conn, [(record, outcome)], worker)[0]:
                return None
            fresh = conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (record.id,)
            ).fetchone()
        return _record(fresh)

    def settle(
        self,
        outcomes: Sequence[tuple[SpoolRecord, Outcome]],
        *,
        worker: str,
        lease: LeaseRequest | None = None,
    ) -> tuple[builtins.list[Settled | None], builtins.list[SpoolRecord]]:
        """One transaction (one fsync) for a group of outcomes and the next lease."""
        where = None if lease is None else _lease_filter(None, lease.mailers)
        with self._write() as conn:
            settled = self._settle_in(conn, outcomes, worker)
            leased: builtins.list[SpoolRecord] = []
            if lease is not None and where is not None and lease.limit > 0:
                leased = self._lease_in(
                    conn, lease.owner, lease.now, lease.lease_seconds, lease.limit, *where
                )
        return settled, leased

    def _settle_in(
        self, conn: Any, outcomes: Sequence[tuple[SpoolRecord, Outcome]], worker: str
    ) -> builtins.list[Settled | None]:
        """Record outcomes inside the caller's transaction, a few statements for the whole
        group: each record's new state and last error, or None if it was purged."""
        if len({record.id for record, _ in outcomes}) < len(outcomes):
            # the same record twice: each outcome must see the one before it
            return [r for pair in outcomes for r in self._settle_in(conn, [pair], worker)]
        rows: dict[int, Any] = {}
        ids = [record.id for record, _ in outcomes]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for row in conn.execute(
                "SELECT id, state, lease_token, recipients, attempts FROM messages "
                f"WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall():
                rows[int(row[0])] = row
        settle_rows: builtins.list[tuple[Any, ...]] = []
        lost_rows: builtins.list[tuple[Any, ...]] = []
        history: builtins.list[tuple[Any, ...]] = []
        settled: builtins.list[Settled | None] = []
        for record, outcome in outcomes:
            row = rows.get(record.id)
            if row is None:
                settled.append(None)
                continue
            settled.append(
                _merge(row[1:], record, outcome, worker, settle_rows, lost_rows, history)
            )
        if settle_rows:
            conn.executemany(
                "UPDATE messages SET recipients = ?, state = ?, attempts = ?, "
                "next_attempt_at = CASE WHEN ? THEN ? ELSE next_attempt_at END, "
                "lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, "
                "last_error = ?, updated_at = ? WHERE id = ?",
                settle_rows,
            )
        if lost_rows:
            conn.executemany(
                "UPDATE messages SET recipients = ?, attempts = ?, updated_at = ? WHERE id = ?",
                lost_rows,
            )
        if history:
            conn.executemany(
                "INSERT INTO attempts (message, attempt, started_at, finished_at, worker, "
                "outcome, error, recipients) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                history,
            )
        return settled

    # -- reading --------------------------------------------------------------------------

    def get(self, record_id: int, *, with_data: bool = False) -> SpoolRecord | None:
        columns = f"{_COLUMNS}, data" if with_data else _COLUMNS
        with self._lock:
            row = self._conn.execute(
                f"SELECT {columns} FROM messages WHERE id = ?", (int(record_id),)
            ).fetchone()
        return None if row is None else _record(row, with_data=with_data)

    def history(self, record_id: int) -> list[Attempt]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT attempt, started_at, finished_at, worker, outcome, error, recipients "
                "FROM attempts WHERE message = ? ORDER BY id",
                (int(record_id),),
            ).fetchall()
        return [
            Attempt(
                attempt=int(r[0]),
                started_at=float(r[1]),
                finished_at=float(r[2]),
                worker=str(r[3]),
                outcome=str(r[4]),
                error=r[5],
                recipients=decode_recipients(r[6]),
            )
            for r in rows
        ]

    def list(
        self,
        *,
        states: Collection[str] | None = None,
        mailer: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[SpoolRecord]:
        where, params = self._filter(states, mailer)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM messages{where} ORDER BY id LIMIT ? OFFSET ?",
                [*params, int(limit), int(offset)],
            ).fetchall()
        return [_record(r) for r in rows]

    @staticmethod
    def _filter(
        states: Collection[str] | None, mailer: str | None
    ) -> tuple[str, builtins.list[Any]]:
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        if states is not None:
            state_list = _check_states(states)
            clauses.append(f"state IN ({','.join('?' * len(state_list))})")
            params += state_list
        if mailer is not None:
            clauses.append("mailer = ?")
            params.append(mailer)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def stats(self, *, now: float) -> dict[str, Any]:
        with self._lock:
            conn = self._conn
            by_state: dict[str, int] = dict.fromkeys(STATES, 0)
            by_mailer: dict[str, dict[str, int]] = {}
            for mailer, state, count in conn.execute(
                "SELECT mailer, state, COUNT(*) FROM messages GROUP BY mailer, state"
            ):
                by_state[state] = by_state.get(state, 0) + int(count)
                by_mailer.setdefault(mailer, dict.fromkeys(STATES, 0))[state] = int(count)
            due = conn.execute(
                "SELECT COUNT(*) FROM messages WHERE (state = 'queued' AND next_attempt_at <= ?)"
                " OR (state = 'leased' AND lease_expires_at <= ?)",
                (now, now),
            ).fetchone()[0]
            oldest = conn.execute(
                "SELECT MIN(queued_at) FROM messages WHERE state IN ('queued', 'leased')"
            ).fetchone()[0]
        return {
            "total": sum(by_state.values()),
            "states": by_state,
            "mailers": by_mailer,
            "due": int(due),
            "next_due": self.next_due(now=now),
            "oldest_pending_age": None if oldest is None else max(0.0, now - float(oldest)),
        }

    def next_due(self, *, now: float) -> float | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT MIN(t) FROM (SELECT MIN(next_attempt_at) AS t FROM messages "
                "WHERE state = 'queued' UNION ALL SELECT MIN(lease_expires_at) FROM messages "
                "WHERE state = 'leased') AS due_times"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def due(self, *, now: float, limit: int = 100) -> builtins.list[SpoolRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE state = 'queued' AND next_attempt_at <= ?"
                " UNION ALL "
                f"SELECT {_COLUMNS} FROM messages WHERE state = 'leased' AND lease_expires_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT ?",
                (now, now, int(limit)),
            ).fetchall()
        return [_record(r) for r in rows]

    # -- operations -----------------------------------------------------------------------

    def retry(
        self, ids: Collection[int] | None = None, *, states: Collection[str] = ("dead",), now: float
    ) -> int:
        where, params = self._filter(states, None)
        if ids is not None:
            id_list = [int(i) for i in ids]
            if not id_list:
                return 0
            where += (" AND " if where else " WHERE ") + f"id IN ({','.join('?' * len(id_list))})"
            params += id_list
        changed = 0
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT id, state, recipients FROM messages{where}", params
            ).fetchall()
            for rid, state, text in rows:
                if state == "queued":
                    conn.execute(
                        "UPDATE messages SET next_attempt_at = ?, updated_at = ? WHERE id = ?",
                        (now, now, rid),
                    )
                    changed += 1
                elif state == "dead":
                    recipients = decode_recipients(text)
                    for r in recipients:
                        if r.status == "failed":
                            r.status = "pending"
                    conn.execute(
                        "UPDATE messages SET state = 'queued', recipients = ?, "
                        "next_attempt_at = ?, queued_at = ?, updated_at = ? WHERE id = ?",
                        (encode_recipients(recipients), now, now, now, rid),
                    )
                    conn.execute(
                        "INSERT INTO attempts (message, attempt, started_at, finished_at, worker, "
                        "outcome, error, recipients) SELECT id, attempts, ?, ?, 'operator', "
                        "'requeued', NULL, '[]' FROM messages WHERE id = ?",
                        (now, now, rid),
                    )
                    changed += 1
        return changed

    def purge(
        self,
        *,
        states: Collection[str] = ("sent",),
        ids: Collection[int] | None = None,
        older_than: float | None = None,
    ) -> int:
        where, params = self._filter(states, None)
        clauses = [where[len(" WHERE ") :]] if where else []
        if ids is not None:
            id_list = [int(i) for i in ids]
            if not id_list:
                return 0
            clauses.append(f"id IN ({','.join('?' * len(id_list))})")
            params += id_list
        if older_than is not None:
            clauses.append("updated_at < ?")
            params.append(older_than)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._write() as conn:
            conn.execute(
                f"DELETE FROM attempts WHERE message IN (SELECT id FROM messages{where})", params
            )
            cursor = conn.execute(f"DELETE FROM messages{where}", params)
            return int(cursor.rowcount)


def _merge(
    row: Sequence[Any],
    record: SpoolRecord,
    outcome: Outcome,
    worker: str,
    settle_rows: list[tuple[Any, ...]],
    lost_rows: list[tuple[Any, ...]],
    history: list[tuple[Any, ...]],
) -> Settled:
    """Apply one outcome to a stored row ``(state, lease_token, recipients, attempts)``:
    append the statements' parameters, return the new state and last error.

    Delivered is final; a refusal or failure changes only a pending recipient. Only the
    current lease holder settles the state (queued for retry, sent, dead); a worker whose
    lease was lost records only what it delivered.
    """
    now = outcome.finished_at
    state: str = row[0]
    if row[2] == record.recipients_text:  # unchanged since leased: reuse the decoded list
        recipients = [
            SpoolRecipient(r.address, r.status, r.code, r.reply) for r in record.recipients
        ]
    else:
        recipients = decode_recipients(row[2])
    attempts = int(row[3]) + 1
    by_address = {r.address: r for r in recipients}
    for result in outcome.recipients:
        current = by_address.get(result.address)
        if current is None or current.status == "delivered":
            continue
        if result.status == "delivered":
            current.status = "delivered"
        elif current.status == "pending":
            current.status = result.status
        else:
            continue
        current.code, current.reply = result.code, result.reply
    owns = state == "leased" and row[1] == record.lease_token
    pending = [r for r in recipients if r.status == "pending"]
    outcome_label = _label(outcome, pending)
    error = outcome.error
    if owns and pending and outcome.give_up:
        for r in pending:
            r.status = "failed"
            r.reply = f"gave up after {attempts} attempt(s); last reply: {r.reply}".strip()
        error = f"gave up after {attempts} attempt(s): {error or 'not delivered'}"
        outcome_label = "gave-up"
        pending = []
    if owns or state != "leased":
        if pending:
            new_state = "queued" if owns else state
        else:
            failed = any(r.status == "failed" for r in recipients)
            new_state = "dead" if failed else "sent"
        settle_rows.append(
            (
                encode_recipients(recipients),
                new_state,
                attempts,
                bool(owns and pending),
                outcome.retry_at,
                error,
                now,
                record.id,
            )
        )
    else:
        new_state = state
        outcome_label = f"{outcome_label} (lease lost)"
        lost_rows.append((encode_recipients(recipients), attempts, now, record.id))
    history.append(
        (
            record.id,
            attempts,
            outcome.started_at,
            now,
            worker,
            outcome_label,
            error,
            json.dumps([[r.address, r.status, r.code, r.reply] for r in outcome.recipients]),
        )
    )
    return new_state, error


def _lease_filter(
    ids: Collection[int] | None, mailers: Collection[str] | None
) -> tuple[str, list[Any]] | None:
    """The SQL restriction of a lease to ``ids`` / ``mailers``; None when nothing can match."""
    extra = ""
    params: list[Any] = []
    if ids is not None:
        id_list = [int(i) for i in ids]
        if not id_list:
            return None
        extra += f" AND id IN ({','.join('?' * len(id_list))})"
        params += id_list
    if mailers is not None:
        mailer_list = list(mailers)
        if not mailer_list:
            return None
        extra += f" AND mailer IN ({','.join('?' * len(mailer_list))})"
        params += mailer_list
    return extra, params


def _label(outcome: Outcome, pending: list[SpoolRecipient]) -> str:
    statuses = {r.status for r in outcome.recipients}
    if statuses <= {"delivered"}:
        return "delivered"
    if pending:
        return "partial, will retry" if "delivered" in statuses else "will retry"
    return "partial, refused" if "delivered" in statuses else "refused"


def _record(row: Sequence[Any], *, with_data: bool = False) -> SpoolRecord:
    state: MessageState = row[6]
    return SpoolRecord(
        id=int(row[0]),
        message_id=row[1],
        mailer=str(row[2]),
        sender=str(row[3]),
        recipients=decode_recipients(row[4]),
        priority=int(row[5]),
        state=state,
        created_at=float(row[7]),
        send_at=None if row[8] is None else float(row[8]),
        next_attempt_at=float(row[9]),
        attempts=int(row[10]),
        lease_owner=row[11],
        lease_expires_at=None if row[12] is None else float(row[12]),
        last_error=row[13],
        updated_at=float(row[14]),
        size=int(row[15]),
        lease_token=row[16],
        queued_at=float(row[17]),
        data=bytes(row[18]) if with_data else None,
        recipients_text=row[4],
    )


_shared: dict[tuple[str, int], SQLiteStore] = {}
_shared_lock = threading.Lock()


def shared_sqlite_store(path: str | os.PathLike[str]) -> SQLiteStore:
    """This process's store for ``path``, opened once and reused (a new one after fork)."""
    key = (os.path.abspath(os.fspath(path)), os.getpid())
    with _shared_lock:
        store = _shared.get(key)
        if store is None:
            for stale in [k for k in _shared if k[1] != key[1]]:
                del _shared[stale]
            store = SQLiteStore(key[0])
            _shared[key] = store
        return store


def open_store(location: str | os.PathLike[str]) -> SpoolStore:
    """This process's store for a spool location: a ``postgresql://`` URL (PostgreSQL, for
    workers on several machines) or a file path (SQLite, one machine)."""
    text = os.fspath(location)
    from mailpost.spool.pgstore import is_postgres_url, shared_postgres_store

    if is_postgres_url(text):
        return shared_postgres_store(text)
    return shared_sqlite_store(text)


def display_location(location: str | os.PathLike[str]) -> str:
    """A spool location fit for messages and logs: a URL's password is masked."""
    from mailpost.spool.pgstore import _safe

    return _safe(os.fspath(location))
