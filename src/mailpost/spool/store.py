"""The embedded spool store (SQLite), and how a spool location picks its store.

The SQLite store runs in WAL mode with ``synchronous=FULL``: a commit fsyncs the
write-ahead log before it returns, so a message is on disk when
:meth:`SpoolStore.enqueue` returns, even if the machine loses power right after
(``NORMAL`` would only survive a process crash, not a power loss).

Every write is one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's write lock
before picking due records, so two workers (in any process) never lease the same record.
Its statements and outcome rules are the shared SQL store's (:mod:`mailpost.spool.sqlstore`).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

if sys.platform != "win32":
    import fcntl

from mailpost.spool.base import LeaseRequest, Settled, SpoolStore
from mailpost.spool.dialect import SQLITE
from mailpost.spool.location import is_postgres_url, mask_password
from mailpost.spool.sqlstore import SQLStore

__all__ = [
    "LeaseRequest",
    "SQLiteStore",
    "Settled",
    "SpoolStore",
    "display_location",
    "open_store",
    "shared_sqlite_store",
]


class SQLiteStore(SQLStore):
    """The embedded store: one SQLite file in WAL mode, safe for many processes.

    One connection per store object, shared by threads behind a lock; open one store per
    process (see :func:`shared_sqlite_store`). ``busy_timeout`` is how long a writer waits
    for another process's transaction.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        super().__init__(SQLITE)
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"spool directory {directory!r} does not exist")
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._busy_timeout = busy_timeout
        self._turn_fd = _open_turn(self.path)
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OSError(f"spool {self.path!r}: cannot switch SQLite to WAL mode (got {mode!r})")
        self._db.execute("PRAGMA synchronous = FULL")
        # Checkpoint the WAL into the database every ~16 MB rather than ~4 MB: a quarter of
        # the database fsyncs for a bulk enqueue (measured ~10% of its cost).
        self._db.execute("PRAGMA wal_autocheckpoint = 4000")
        self._create_schema()

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"

    @contextmanager
    def _write(self, *, exclusive: bool = True, patient: bool = False) -> Iterator[sqlite3.Cursor]:
        """One write transaction, holding SQLite's write lock from the start (every write
        transaction is exclusive in SQLite), in this spool's writer turn."""
        with self._lock:
            self._take_turn(patient)
            try:
                cur = self._db.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            finally:
                if self._turn_fd is not None:
                    fcntl.flock(self._turn_fd, fcntl.LOCK_UN)

    def _take_turn(self, patient: bool) -> None:
        """Wait for this spool's writer turn: a ``flock`` on ``<spool>-lock``, taken before
        ``BEGIN IMMEDIATE`` and let go after the commit.

        A writer that finds SQLite's write lock taken is left to SQLite's busy handler,
        which sleeps 1, 2, 5, 10... ms between tries: two busy workers on one spool hit it
        at almost every commit (measured, alternating runs: two workers drained 1.14x one
        worker without the turn, 1.22x with it). ``patient`` (a worker's group commit,
        which has nothing else to do) waits in the kernel and wakes the moment the holder
        lets go; any other writer (an application enqueueing) polls the turn every
        0.05-1 ms for at most ``busy_timeout`` seconds, as SQLite would.
        """
        fd = self._turn_fd
        if fd is None:
            return
        if patient:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        pause = 0.00005
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError(
                        f"database is locked: spool {self.path!r} was held by another "
                        f"writer for more than {self._busy_timeout:g} s"
                    ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.001)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            yield self._db.cursor()

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._turn_fd is not None:
                os.close(self._turn_fd)
                self._turn_fd = None

    def reserve_slot(self, mailer: str, *, now: float, interval: float) -> float:
        """The shared schedule lives in the spool file, so every worker process of this
        spool keeps to one rate. The commit is not fsync'd: a schedule lost in a power
        cut only lets the next message go at once."""
        with self._lock:
            db = self._db
            db.execute("PRAGMA synchronous = NORMAL")
            try:
                with self._write() as cur:
                    cur.execute("SELECT next_at FROM rate_slots WHERE mailer = ?", (mailer,))
                    row = cur.fetchone()
                    slot = now if row is None else max(now, float(row[0]))
                    cur.execute(
                        "INSERT INTO rate_slots (mailer, next_at) VALUES (?, ?) "
                        "ON CONFLICT (mailer) DO UPDATE SET next_at = excluded.next_at",
                        (mailer, slot + interval),
                    )
            finally:
                db.execute("PRAGMA synchronous = FULL")
            return slot


def _open_turn(path: str) -> int | None:
    """The descriptor of ``<path>-lock`` (created beside the spool), or None where there is
    no ``flock`` (Windows) or the file cannot be opened: then SQLite's own locking alone
    keeps writers apart, only slower under contention."""
    if sys.platform == "win32":
        return None
    try:  # read access is enough for flock: any user who can read the spool takes turns
        return os.open(path + "-lock", os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        return None


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
    if is_postgres_url(text):
        # imported only when asked for: the SQLite store never needs psycopg's module
        from mailpost.spool.pgstore import shared_postgres_store

        return shared_postgres_store(text)
    return shared_sqlite_store(text)


def display_location(location: str | os.PathLike[str]) -> str:
    """A spool location fit for messages and logs: a URL's password is masked."""
    return mask_password(os.fspath(location))
