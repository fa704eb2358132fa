"""The SQL spool store both databases share, over the statements of
:mod:`~mailpost.spool.statements` in a dialect's spelling.

:class:`SQLStore` implements the whole :class:`~mailpost.spool.base.SpoolStore` contract
over a DB-API cursor. A subclass supplies the connection and its transactions
(:meth:`SQLStore._write`, :meth:`SQLStore._read`) and a
:class:`~mailpost.spool.dialect.Dialect`; the outcome rules are
:func:`mailpost.spool.rules.apply_outcome`, the same for every store.

Leases carry a random token: only the holder of the current token settles a record's
state, while a worker whose lease expired still records what it delivered.
"""

from __future__ import annotations

import builtins
import json
import uuid
from abc import abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from mailpost.spool.base import LeaseRequest, Settled, SpoolStore
from mailpost.spool.codec import (
    decode_recipients,
    encode_recipients,
    new_recipients_json,
)
from mailpost.spool.dialect import Dialect
from mailpost.spool.record import (
    STATES,
    Attempt,
    NewMessage,
    Outcome,
    SpoolRecord,
)
from mailpost.spool.rows import Plan, record_of, rows_for
from mailpost.spool.rules import Stored
from mailpost.spool.statements import COLUMNS, JSON_COLUMNS, Statements

__all__ = ["SQLStore", "check_states"]

#: Ids per ``IN (...)`` list (well under every database's parameter limit).
_CHUNK = 500
#: Bytes of messages read as one value (far under SQLite's 1 GB limit on a value).
_DATA_BUDGET = 32 * 1024 * 1024


def check_states(states: Collection[str]) -> list[str]:
    """``states`` as a list, or a ValueError naming the unknown ones."""
    bad = sorted(set(states) - set(STATES))
    if bad:
        raise ValueError(f"unknown spool state(s) {bad}; states are {', '.join(STATES)}")
    return list(states)


class SQLStore(SpoolStore):
    """The spool over SQL: what SQLite and PostgreSQL stores share.

    Subclasses set ``dialect`` and implement :meth:`_write` and :meth:`_read`.
    """

    dialect: Dialect

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._sql = Statements(dialect)

    @abstractmethod
    def _write(
        self, *, exclusive: bool = True, patient: bool = False
    ) -> AbstractContextManager[Any]:
        """One write transaction; yields a cursor, commits on exit, rolls back on error.

        ``exclusive``: the transaction must also exclude every other writer (enqueue,
        which needs consecutive ids); otherwise row locks (``Dialect.lock_rows``,
        ``Dialect.skip_locked``) are enough where the database has them. ``patient``: the
        caller (a worker's group commit) would rather wait for other writers as long as
        they take than fail after the store's busy timeout.
        """

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A cursor for reads (no transaction needed)."""

    def _create_schema(self) -> None:
        """The tables, created where missing, and a spool of an older layout brought up to
        this one (in the same transaction: another process sees the old or the new)."""
        with self._write() as cur:
            for statement in self.dialect.schema():
                cur.execute(statement)
            cur.execute(self.dialect.column_count, ("messages", "data"))
            if int(cur.fetchone()[0]):
                for statement in self.dialect.move_data(COLUMNS):
                    cur.execute(statement)

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
        with self._write() as cur:
            if len(rows) == 1:
                cur.execute(self._sql.insert, rows[0])
            else:
                cur.executemany(self._sql.insert, rows)
            cur.execute(self.dialect.last_id)
            last = int(cur.fetchone()[0])
            ids = list(range(last - len(rows) + 1, last + 1))
            data = [(i, m.data) for i, m in zip(ids, messages, strict=True)]
            if len(data) == 1:
                cur.execute(self._sql.insert_data, data[0])
            else:
                cur.executemany(self._sql.insert_data, data)
            return ids

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
        where = self._lease_filter(ids, mailers)
        if limit < 1 or where is None:
            return []
        with self._write(exclusive=False) as cur:
            leased = self._lease_in(cur, owner, now, lease_seconds, limit, *where)
        return self._with_data(leased)

    def _lease_filter(
        self, ids: Collection[int] | None, mailers: Collection[str] | None
    ) -> tuple[str, builtins.list[Any]] | None:
        """The SQL restriction of a lease to ``ids`` / ``mailers``; None if nothing can match."""
        extra = ""
        params: builtins.list[Any] = []
        if ids is not None:
            id_list = [int(i) for i in ids]
            if not id_list:
                return None
            extra += f" AND id IN ({self.dialect.marks(len(id_list))})"
            params += id_list
        if mailers is not None:
            mailer_list = list(mailers)
            if not mailer_list:
                return None
            extra += f" AND mailer IN ({self.dialect.marks(len(mailer_list))})"
            params += mailer_list
        return extra, params

    def _lease_in(
        self,
        cur: Any,
        owner: str,
        now: float,
        lease_seconds: float,
        limit: int,
        extra: str,
        params: builtins.list[Any],
    ) -> builtins.list[SpoolRecord]:
        """The body of :meth:`lease`, inside the caller's write transaction: expired leases
        first (oldest first), then due records by priority and age."""
        p, skip = self.dialect.param, self.dialect.skip_locked
        take = (uuid.uuid4().hex, now + lease_seconds, now)
        cur.execute(
            f"SELECT id, lease_owner FROM messages WHERE state = 'leased' "
            f"AND lease_expires_at <= {p}{extra} ORDER BY lease_expires_at LIMIT {p}{skip}",
            [now, *params, limit],
        )
        expired = cur.fetchall()
        leased: builtins.list[SpoolRecord] = []
        if expired:
            cur.executemany(
                self._sql.expired_history,
                [
                    (now, now, str(old or "?"), f"lease of worker {old} expired", int(rid))
                    for rid, old in expired
                ],
            )
            ids = [int(r[0]) for r in expired]
            by_id = {r.id: r for r in self._take(cur, owner, take, ids)}
            leased = [by_id[i] for i in ids if i in by_id]
        if len(leased) < limit:
            due = (
                f"SELECT id FROM messages WHERE state = 'queued' AND next_attempt_at <= {p}{extra} "
                f"ORDER BY priority DESC, next_attempt_at, id LIMIT {p}{skip}"
            )
            fresh = self._take(cur, owner, take, due, [now, *params, limit - len(leased)])
            if leased:
                taken = {r.id for r in leased}
                fresh = [r for r in fresh if r.id not in taken]
            fresh.sort(key=lambda r: (-r.priority, r.next_attempt_at, r.id))
            leased += fresh
        return leased

    def _take(
        self,
        cur: Any,
        owner: str,
        take: tuple[str, float, float],
        ids: builtins.list[int] | str,
        params: builtins.list[Any] = [],  # noqa: B006 - never modified
    ) -> builtins.list[SpoolRecord]:
        """Lease the records ``ids`` (a list, or a SELECT of ids with its ``params``) to
        ``owner`` with ``take`` = (token, expiry, now); returns them without their bytes,
        which :meth:`_with_data` reads after the commit."""
        token, expires, now = take
        args: builtins.list[Any]
        if self.dialect.multirow:
            # A few steps whatever the count (each step of a statement lets go of the GIL,
            # and this transaction holds the spool's write lock).
            if isinstance(ids, str):
                # taken through the subquery, then read back by their new lease (found by
                # the index of leases; with this call's expired takeovers, if any)
                cur.execute(f"{self._sql.take_where} IN ({ids})", [owner, *take, *params])
                if not cur.rowcount:
                    return []
                where, args = self._sql.leased_by, [expires, token]
            else:
                marks = self.dialect.marks(len(ids))
                cur.execute(f"{self._sql.take_where} IN ({marks})", [owner, *take, *ids])
                where, args = f"id IN ({marks})", list(ids)
            cur.execute(
                f"SELECT json_group_array(json_array({JSON_COLUMNS})) FROM messages WHERE {where}",
                args,
            )
            return [record_of(row) for row in json.loads(cur.fetchone()[0])]
        if isinstance(ids, str):
            where, args = ids, params
        else:
            where, args = self.dialect.marks(len(ids)), list(ids)
        if self.dialect.returning:
            cur.execute(
                f"{self._sql.take_where} IN ({where}) RETURNING {COLUMNS}",
                [owner, token, expires, now, *args],
            )
            return [record_of(row) for row in cur.fetchall()]
        if isinstance(ids, str):
            cur.execute(ids, args)
            ids = [int(r[0]) for r in cur.fetchall()]
            if not ids:
                return []
        cur.execute(
            f"{self._sql.take_where} IN ({self.dialect.marks(len(ids))})",
            [owner, token, expires, now, *ids],
        )
        cur.execute(
            f"SELECT {COLUMNS} FROM messages WHERE id IN ({self.dialect.marks(len(ids))})",
            ids,
        )
        return [record_of(row) for row in cur.fetchall()]

    def _with_data(self, records: builtins.list[SpoolRecord]) -> builtins.list[SpoolRecord]:
        """``records`` with their bytes, read after the lease committed; a record purged
        meanwhile is left out (nothing to send)."""
        if not records:
            return records
        found: dict[int, bytes] = {}
        with self._read() as cur:
            for chunk in _chunks(records, _DATA_BUDGET if self.dialect.multirow else None):
                ids = [r.id for r in chunk]
                marks = self.dialect.marks(len(ids))
                if not self.dialect.multirow:
                    cur.execute(f"SELECT id, data FROM message_data WHERE id IN ({marks})", ids)
                    found.update(cur.fetchall())  # int ids, bytes
                    continue
                # One step for the chunk, not one per row: each step lets go of the GIL,
                # and taking it back from the engine's thread costs both a thread switch.
                # The bytes come concatenated (SQLite copies blob and text byte for byte)
                # with each record's id and length, in the same order.
                cur.execute(
                    "SELECT json_group_array(json_array(id, length(data))), "
                    "CAST(group_concat(data, '') AS BLOB) "
                    f"FROM message_data WHERE id IN ({marks})",
                    ids,
                )
                index, joined = cur.fetchone()
                at = 0
                for rid, length in json.loads(index):
                    found[rid] = joined[at : at + length]
                    at += length
        kept = []
        for record in records:
            data = found.get(record.id)
            if data is not None:
                record.data = data
                kept.append(record)
        return kept

    def renew(
        self, records: Sequence[SpoolRecord], *, now: float, lease_seconds: float
    ) -> list[int]:
        if not records:
            return []
        expires = now + lease_seconds
        changed: list[int] = []
        with self._write(exclusive=False) as cur:
            for record in sorted(records, key=lambda r: r.id):
                cur.execute(self._sql.renew, (expires, record.id, record.lease_token))
                if cur.rowcount:
                    record.lease_expires_at = expires
                    changed.append(record.id)
        return changed

    def release(self, record: SpoolRecord, *, now: float) -> bool:
        with self._write(exclusive=False) as cur:
            cur.execute(self._sql.release, (now, record.id, record.lease_token))
            return bool(cur.rowcount)

    # -- settling -------------------------------------------------------------------------

    def complete(self, record: SpoolRecord, outcome: Outcome, *, worker: str) -> SpoolRecord | None:
        with self._write(exclusive=False) as cur:
            if not self._settle_in(cur, [(record, outcome)], worker)[0]:
                return None
            cur.execute(self._sql.get, (record.id,))
            fresh = cur.fetchone()
        return record_of(fresh)

    def settle(
        self,
        outcomes: Sequence[tuple[SpoolRecord, Outcome]],
        *,
        worker: str,
        lease: LeaseRequest | None = None,
    ) -> tuple[builtins.list[Settled | None], builtins.list[SpoolRecord]]:
        """One transaction (one durable commit) for a group of outcomes and the next lease."""
        where = None if lease is None else self._lease_filter(None, lease.mailers)
        plan = self._plan(outcomes, worker) if outcomes else None
        try:
            with self._write(exclusive=False, patient=True) as cur:
                if plan is not None:
                    if not self._write_plan(cur, plan):
                        raise _Changed
                    settled = plan.settled
                else:
                    settled = self._settle_in(cur, outcomes, worker)
                leased = self._lease_for(cur, lease, where)
        except _Changed:  # a record changed since it was leased: the rules, in full
            with self._write(exclusive=False, patient=True) as cur:
                settled = self._settle_in(cur, outcomes, worker)
                leased = self._lease_for(cur, lease, where)
        return settled, self._with_data(leased)

    def _lease_for(
        self, cur: Any, lease: LeaseRequest | None, where: tuple[str, builtins.list[Any]] | None
    ) -> builtins.list[SpoolRecord]:
        if lease is None or where is None or lease.limit < 1:
            return []
        return self._lease_in(cur, lease.owner, lease.now, lease.lease_seconds, lease.limit, *where)

    def _settle_in(
        self,
        cur: Any,
        outcomes: Sequence[tuple[SpoolRecord, Outcome]],
        worker: str,
    ) -> builtins.list[Settled | None]:
        """Record outcomes inside the caller's transaction, a few statements for the whole
        group: each record's new state and last error, or None if it was purged."""
        if len({record.id for record, _ in outcomes}) < len(outcomes):
            # the same record twice: each outcome must see the one before it
            return [r for pair in outcomes for r in self._settle_in(cur, [pair], worker)]
        rows: dict[int, Any] = {}
        ids = sorted(record.id for record, _ in outcomes)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = self.dialect.marks(len(chunk))
            if self.dialect.multirow:  # the group's rows as one JSON value: one step
                cur.execute(
                    "SELECT json_group_array(json_array(id, state, lease_token, recipients, "
                    f"attempts)) FROM messages WHERE id IN ({marks})",
                    chunk,
                )
                found = json.loads(cur.fetchone()[0])
            else:
                cur.execute(
                    "SELECT id, state, lease_token, recipients, attempts FROM messages "
                    f"WHERE id IN ({marks}) ORDER BY id{self.dialect.lock_rows}",
                    chunk,
                )
                found = cur.fetchall()
            for row in found:
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
            if row[3] == record.recipients_text:  # unchanged since leased: no decoding
                recipients = record.recipients
            else:
                recipients = decode_recipients(row[3])
            stored = Stored(row[1], row[2], recipients, int(row[4]))
            written, owner_settles, past, result = rows_for(record, outcome, stored, worker)
            (settle_rows if owner_settles else lost_rows).append(written)
            history.append(past)
            settled.append(result)
        if settle_rows:
            self._many(cur, self._sql.settle, self._sql.settle_rows, settle_rows)
        if lost_rows:
            cur.executemany(self._sql.lost, lost_rows)
        if history:
            self._many(cur, self._sql.history, self._sql.history_rows, history)
        return settled

    def _plan(self, outcomes: Sequence[tuple[SpoolRecord, Outcome]], worker: str) -> Plan | None:
        """The group's rows worked out before the transaction, as if every record were
        still as it was leased (the usual case), so that the transaction, which holds the
        spool's write lock, only writes them; None where the dialect has no guarded
        multi-row write or a record was not leased by this store."""
        if self._sql.settle_guarded is None:
            return None
        if len({record.id for record, _ in outcomes}) < len(outcomes):
            return None
        plan = Plan([], [], [])
        for record, outcome in outcomes:
            token, text = record.lease_token, record.recipients_text
            if token is None or text is None:
                return None
            stored = Stored("leased", token, record.recipients, record.attempts)
            written, owner_settles, past, result = rows_for(record, outcome, stored, worker)
            if not owner_settles:
                return None
            plan.rows.append((*written, token, record.attempts, text))
            plan.history.append(past)
            plan.settled.append(result)
        return plan

    def _write_plan(self, cur: Any, plan: Plan) -> bool:
        """Write ``plan``'s rows where their records are unchanged since they were leased;
        False when one was not (the caller then rolls the transaction back)."""
        guarded = self._sql.settle_guarded
        assert guarded is not None
        if self._grouped(cur, guarded, plan.rows) != len(plan.rows):
            return False
        self._many(cur, self._sql.history, self._sql.history_rows, plan.history)
        return True

    def _many(
        self,
        cur: Any,
        each: str,
        grouped: str | None,
        rows: builtins.list[tuple[Any, ...]],
    ) -> None:
        """Run ``each`` for every row, or ``grouped`` (``{values}`` standing for a VALUES
        list) once per chunk of rows where the dialect prefers one statement."""
        if grouped is None or len(rows) == 1:
            cur.executemany(each, rows)
        else:
            self._grouped(cur, grouped, rows)

    def _grouped(self, cur: Any, grouped: str, rows: builtins.list[tuple[Any, ...]]) -> int:
        """Run ``grouped`` once per chunk of ``rows``, its ``{values}`` a VALUES list of
        them; the number of rows it changed."""
        width = len(rows[0])
        changed = 0
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            marks = ",".join([f"({self.dialect.marks(width)})"] * len(chunk))
            cur.execute(grouped.format(values=marks), [v for row in chunk for v in row])
            changed += cur.rowcount
        return changed

    # -- reading --------------------------------------------------------------------------

    def get(self, record_id: int, *, with_data: bool = False) -> SpoolRecord | None:
        with self._read() as cur:
            cur.execute(self._sql.get_with_data if with_data else self._sql.get, (int(record_id),))
            row = cur.fetchone()
        return None if row is None else record_of(row, with_data=with_data)

    def history(self, record_id: int) -> list[Attempt]:
        with self._read() as cur:
            cur.execute(self._sql.attempts_of, (int(record_id),))
            rows = cur.fetchall()
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
        clauses, params = self._filter(states, mailer)
        p = self.dialect.param
        with self._read() as cur:
            cur.execute(
                f"SELECT {COLUMNS} FROM messages{_where(clauses)} ORDER BY id LIMIT {p} OFFSET {p}",
                [*params, int(limit), int(offset)],
            )
            rows = cur.fetchall()
        return [record_of(r) for r in rows]

    def _filter(
        self, states: Collection[str] | None, mailer: str | None
    ) -> tuple[builtins.list[str], builtins.list[Any]]:
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        if states is not None:
            state_list = check_states(states)
            clauses.append(f"state IN ({self.dialect.marks(len(state_list))})")
            params += state_list
        if mailer is not None:
            clauses.append(f"mailer = {self.dialect.param}")
            params.append(mailer)
        return clauses, params

    def stats(self, *, now: float) -> dict[str, Any]:
        by_state: dict[str, int] = dict.fromkeys(STATES, 0)
        by_mailer: dict[str, dict[str, int]] = {}
        with self._read() as cur:
            cur.execute("SELECT mailer, state, COUNT(*) FROM messages GROUP BY mailer, state")
            for mailer, state, count in cur.fetchall():
                by_state[state] = by_state.get(state, 0) + int(count)
                by_mailer.setdefault(mailer, dict.fromkeys(STATES, 0))[state] = int(count)
            cur.execute(self._sql.due_count, (now, now))
            due = cur.fetchone()[0]
            cur.execute("SELECT MIN(queued_at) FROM messages WHERE state IN ('queued', 'leased')")
            oldest = cur.fetchone()[0]
        return {
            "total": sum(by_state.values()),
            "states": by_state,
            "mailers": by_mailer,
            "due": int(due),
            "next_due": self.next_due(now=now),
            "oldest_pending_age": None if oldest is None else max(0.0, now - float(oldest)),
        }

    def next_due(self, *, now: float) -> float | None:
        with self._read() as cur:
            cur.execute(
                "SELECT MIN(t) FROM (SELECT MIN(next_attempt_at) AS t FROM messages "
                "WHERE state = 'queued' UNION ALL SELECT MIN(lease_expires_at) FROM messages "
                "WHERE state = 'leased') AS due_times"
            )
            row = cur.fetchone()
        return None if row[0] is None else float(row[0])

    def due(self, *, now: float, limit: int = 100) -> builtins.list[SpoolRecord]:
        with self._read() as cur:
            cur.execute(self._sql.due, (now, now, int(limit)))
            rows = cur.fetchall()
        return [record_of(r) for r in rows]

    # -- operations -----------------------------------------------------------------------

    def retry(
        self, ids: Collection[int] | None = None, *, states: Collection[str] = ("dead",), now: float
    ) -> int:
        clauses, params = self._filter(states, None)
        if ids is not None:
            id_list = [int(i) for i in ids]
            if not id_list:
                return 0
            clauses.append(f"id IN ({self.dialect.marks(len(id_list))})")
            params += id_list
        changed = 0
        with self._write(exclusive=False) as cur:
            cur.execute(
                f"SELECT id, state, recipients FROM messages{_where(clauses)} ORDER BY id"
                f"{self.dialect.lock_rows}",
                params,
            )
            for rid, state, text in cur.fetchall():
                if state == "queued":
                    cur.execute(self._sql.reschedule, (now, now, rid))
                    changed += 1
                elif state == "dead":
                    recipients = decode_recipients(text)
                    for r in recipients:
                        if r.status == "failed":
                            r.status = "pending"
                    cur.execute(
                        self._sql.requeue, (encode_recipients(recipients), now, now, now, rid)
                    )
                    cur.execute(self._sql.requeued_history, (now, now, rid))
                    changed += 1
        return changed

    def purge(
        self,
        *,
        states: Collection[str] = ("sent",),
        ids: Collection[int] | None = None,
        older_than: float | None = None,
    ) -> int:
        clauses, params = self._filter(states, None)
        if ids is not None:
            id_list = [int(i) for i in ids]
            if not id_list:
                return 0
            clauses.append(f"id IN ({self.dialect.marks(len(id_list))})")
            params += id_list
        if older_than is not None:
            clauses.append(f"updated_at < {self.dialect.param}")
            params.append(older_than)
        where = _where(clauses)
        with self._write(exclusive=False) as cur:
            for table, key in (("attempts", "message"), ("message_data", "id")):
                cur.execute(
                    f"DELETE FROM {table} WHERE {key} IN (SELECT id FROM messages{where})", params
                )
            cur.execute(f"DELETE FROM messages{where}", params)
            return int(cur.rowcount)


def _chunks(records: Sequence[SpoolRecord], budget: int | None) -> Iterator[Sequence[SpoolRecord]]:
    """``records`` in runs of at most ``_CHUNK``, and of at most ``budget`` bytes of
    messages (by their stored size) where given; a larger message makes a run alone."""
    start, total = 0, 0
    for end, record in enumerate(records):
        if end > start and (
            end - start == _CHUNK or (budget is not None and total + record.size > budget)
        ):
            yield records[start:end]
            start, total = end, 0
        total += record.size
    if start < len(records):
        yield records[start:]


def _where(clauses: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(clauses) if clauses else ""


class _Changed(Exception):
    """A planned group found a record changed since it was leased."""
