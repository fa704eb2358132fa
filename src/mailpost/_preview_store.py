"""The capture store: a SQLite file that keeps every captured message's exact bytes.

SQLite (stdlib) rather than a directory of ``.eml`` files because several processes write
to it at once (a web app's workers, the SMTP capture server) and the UI polls it: inserts
are atomic, ids give a newest-first order and a cheap change token, and nothing half-written
is ever listed. ``sqlite3 capture.sqlite3 "select data from messages where id=1"`` still
gets the raw message out.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_CAPTURE_PATH", "CaptureStore", "CapturedMessage"]

#: Where ``capture://`` and ``mailpost preview`` keep messages when no path is given.
DEFAULT_CAPTURE_PATH = "mailpost-capture.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    origin TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    data BLOB NOT NULL
)
"""


@dataclass(frozen=True)
class CapturedMessage:
    """One stored message: its id, when and how it arrived, the envelope and the bytes."""

    id: int
    received_at: float
    origin: str  # "mailer:<alias>", "smtp", ...
    sender: str
    recipients: list[str]
    data: bytes


class CaptureStore:
    """Captured messages in the SQLite file at ``path`` (created with its directory)."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_CAPTURE_PATH) -> None:
        self.path = Path(path).expanduser().absolute()
        self._lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"<CaptureStore {str(self.path)!r}>"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # One short-lived database handle per operation: safe from any thread and any process.
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    db = sqlite3.connect(self.path, timeout=30)
                    try:
                        db.execute("PRAGMA journal_mode=WAL")
                        with db:
                            db.execute(_SCHEMA)
                    finally:
                        db.close()
                    self._ready = True
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def add(
        self,
        data: bytes,
        *,
        sender: str = "",
        recipients: Sequence[str] = (),
        origin: str = "",
        received_at: float | None = None,
    ) -> int:
        """Store one message's bytes; returns its id (ids only grow)."""
        return self.add_many(
            [(data, sender, list(recipients))], origin=origin, received_at=received_at
        )[0]

    def add_many(
        self,
        items: Sequence[tuple[bytes, str, list[str]]],
        *,
        origin: str = "",
        received_at: float | None = None,
    ) -> list[int]:
        """Store ``(data, sender, recipients)`` items in one transaction; returns their ids."""
        when = time.time() if received_at is None else received_at
        ids: list[int] = []
        with self._db() as db:
            for data, sender, recipients in items:
                cursor = db.execute(
                    "INSERT INTO messages (received_at, origin, sender, recipients, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (when, origin, sender, json.dumps(recipients), bytes(data)),
                )
                assert cursor.lastrowid is not None
                ids.append(int(cursor.lastrowid))
        return ids

    def get(self, message_id: int) -> CapturedMessage | None:
        """One message by id, or None."""
        with self._db() as db:
            row = db.execute(
                "SELECT id, received_at, origin, sender, recipients, data FROM messages "
                "WHERE id = ?",
                (int(message_id),),
            ).fetchone()
        return None if row is None else _row(row)

    def get_many(self, ids: Sequence[int]) -> builtins.list[CapturedMessage]:
        """The messages with these ids (unknown ids are skipped), in one query."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._db() as db:
            rows = db.execute(
                "SELECT id, received_at, origin, sender, recipients, data FROM messages "
                f"WHERE id IN ({marks})",
                [int(i) for i in ids],
            ).fetchall()
        return [_row(r) for r in rows]

    def list(self, *, limit: int = 500, before: int | None = None) -> list[CapturedMessage]:
        """Messages newest first, at most ``limit``, with ids below ``before`` when given."""
        query = "SELECT id, received_at, origin, sender, recipients, data FROM messages"
        params: list[int] = []
        if before is not None:
            query += " WHERE id < ?"
            params.append(int(before))
        query += " ORDER BY id DESC LIMIT ?"
        params.append(int(limit))
        with self._db() as db:
            rows = db.execute(query, params).fetchall()
        return [_row(r) for r in rows]

    def index(self, *, limit: int = 500) -> builtins.list[tuple[int, float, str]]:
        """``(id, received_at, origin)`` of the newest ``limit`` messages, without their bytes."""
        with self._db() as db:
            rows = db.execute(
                "SELECT id, received_at, origin FROM messages ORDER BY id DESC LIMIT ?",
                (int(limit),),
            ).fetchall()
        return [(int(i), float(t), str(o)) for i, t, o in rows]

    def count(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def version(self) -> str:
        """A token that changes whenever a message is added or deleted (for live updates)."""
        with self._db() as db:
            top, count = db.execute(
                "SELECT COALESCE(MAX(id), 0), COUNT(*) FROM messages"
            ).fetchone()
        return f"{top}.{count}"

    def delete(self, message_id: int) -> bool:
        """Delete one message; False if there was none with that id."""
        with self._db() as db:
            return db.execute("DELETE FROM messages WHERE id = ?", (int(message_id),)).rowcount > 0

    def clear(self) -> int:
        """Delete every message; returns how many there were."""
        with self._db() as db:
            return int(db.execute("DELETE FROM messages").rowcount)

    def prune(self, keep: int) -> int:
        """Delete all but the newest ``keep`` messages; returns how many were deleted."""
        with self._db() as db:
            return int(
                db.execute(
                    "DELETE FROM messages WHERE id NOT IN "
                    "(SELECT id FROM messages ORDER BY id DESC LIMIT ?)",
                    (int(keep),),
                ).rowcount
            )


def _row(row: tuple[int, float, str, str, str, bytes]) -> CapturedMessage:
    return CapturedMessage(
        id=int(row[0]),
        received_at=float(row[1]),
        origin=row[2],
        sender=row[3],
        recipients=list(json.loads(row[4])),
        data=bytes(row[5]),
    )
