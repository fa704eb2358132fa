"""The PostgreSQL spool store: one spool for workers on several machines.

The shared SQL store (:mod:`mailpost.spool.sqlstore`) in PostgreSQL's dialect. Workers
lease in parallel: a lease picks due records with ``FOR UPDATE SKIP LOCKED``, so it
never waits for another worker's lease and never takes a record another transaction is
taking; settling locks the records it settles (``FOR UPDATE``, in id order). Only enqueue
is serialized, by one transaction-scoped advisory lock, so the ids of one enqueue are
consecutive. A commit is durable when it returns (PostgreSQL's ``synchronous_commit``, on
by default). Reads take no lock.

Select it with a ``postgresql://`` (or ``postgres://``) URL as the spool's ``path``;
needs ``pip install "mailpost[postgres]"`` (psycopg 3).
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mailpost.spool.dialect import POSTGRES
from mailpost.spool.location import is_postgres_url, mask_password
from mailpost.spool.sqlstore import SQLStore

__all__ = ["PostgresStore", "is_postgres_url", "shared_postgres_store"]

#: The advisory lock an exclusive writer (enqueue) holds for its transaction ("mail").
_WRITE_LOCK = 0x6D61696C


class PostgresStore(SQLStore):
    """A spool in a PostgreSQL database, shared by workers on any number of machines.

    One connection per store object, shared by threads behind a lock (open one store per
    process: :func:`shared_postgres_store`). ``url`` is a libpq connection URL; the
    tables are created on first use. Credentials in the URL are never shown.
    """

    def __init__(
        self, url: str, *, connect_timeout: float = 10.0, busy_timeout: float = 30.0
    ) -> None:
        try:
            import psycopg
        except ImportError:
            raise ImportError(
                'a postgresql:// spool needs psycopg: pip install "mailpost[postgres]"'
            ) from None
        super().__init__(POSTGRES)
        self.path = url
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._raw = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(1, int(connect_timeout)),
            # notice a server (or a network) that went away instead of waiting for hours
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        millis = int(busy_timeout * 1000)
        # A writer waits at most busy_timeout for a lock (SQLite's busy_timeout); a session
        # that dies inside a transaction (its machine crashed) is ended by the server after
        # it, so it cannot hold its locks for longer.
        self._raw.execute(f"SET lock_timeout = {millis}")
        self._raw.execute(f"SET idle_in_transaction_session_timeout = {millis}")
        _stores.add(self)
        self._create_schema()

    def __repr__(self) -> str:
        return f"<PostgresStore {mask_password(self.path)!r}>"

    @contextmanager
    def _write(self, *, exclusive: bool = True, patient: bool = False) -> Iterator[Any]:
        """One transaction; an exclusive one first takes the spool's advisory lock."""
        with self._lock:
            cur = self._raw.cursor()
            cur.execute("BEGIN")
            try:
                if exclusive:
                    cur.execute(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self._lock:
            yield self._raw.cursor()

    def close(self) -> None:
        with self._lock:
            self._raw.close()

    def reserve_slot(self, mailer: str, *, now: float, interval: float) -> float:
        """The shared schedule, in one statement; not waited on for durability."""
        with self._lock:
            cur = self._raw.cursor()
            cur.execute("BEGIN")
            try:
                cur.execute("SET LOCAL synchronous_commit = off")
                cur.execute(
                    "INSERT INTO rate_slots (mailer, next_at) VALUES (%s, %s) "
                    "ON CONFLICT (mailer) DO UPDATE SET next_at = "
                    "GREATEST(rate_slots.next_at, %s) + %s RETURNING next_at",
                    (mailer, now + interval, now, interval),
                )
                row: Any = cur.fetchone()
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
            return float(row[0]) - interval


_shared: dict[tuple[str, int], PostgresStore] = {}
_shared_lock = threading.Lock()
_stores: weakref.WeakSet[PostgresStore] = weakref.WeakSet()


def _detach_in_child() -> None:
    """After ``fork``: the child must not use, nor end, the parent's sessions.

    The child's copy of each socket is pointed at /dev/null, then the connection closed:
    the goodbye goes nowhere, the parent's session stays intact, and when the parent dies
    its socket really closes (no child keeps it open), so the server ends its transaction
    and releases the write lock at once.
    """
    for store in list(_stores):
        raw = store._raw
        try:
            fd = raw.fileno()
            devnull = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
            raw.close()
        except Exception:  # already closed: nothing to detach
            continue


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_detach_in_child)


@atexit.register
def _close_shared() -> None:
    """Close this process's shared connections at exit (a clean goodbye to the server)."""
    with _shared_lock:
        for key, store in list(_shared.items()):
            if key[1] == os.getpid():
                try:
                    store.close()
                except Exception:  # the process is ending either way
                    pass
        _shared.clear()


def shared_postgres_store(url: str) -> PostgresStore:
    """This process's store for ``url``, opened once and reused (a new one after fork)."""
    key = (url, os.getpid())
    with _shared_lock:
        store = _shared.get(key)
        if store is None:
            for stale in [k for k in _shared if k[1] != key[1]]:
                del _shared[stale]
            store = PostgresStore(url)
            _shared[key] = store
        return store
