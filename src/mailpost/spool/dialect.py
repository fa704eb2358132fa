"""What differs between the SQL stores' databases, in one small object per database.

The shared store (:mod:`mailpost.spool.sqlstore`) builds every statement from these
parts; no statement is ever rewritten from one database's SQL into another's.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = ["POSTGRES", "SQLITE", "Dialect"]


@dataclass(frozen=True)
class Dialect:
    """One database's spelling of what the spool stores need."""

    name: str
    #: The DB-API parameter marker.
    param: str
    #: Column types.
    serial_key: str
    #: The key of a table never referred to by id (history rows).
    row_key: str
    real: str
    blob: str
    bigint: str
    #: The id the last INSERT gave ``messages`` (same connection, same transaction).
    last_id: str
    #: Appended to a SELECT that must lock the rows it returns until commit ("" where the
    #: whole transaction holds the database's write lock).
    lock_rows: str
    #: Appended to the lease's SELECTs: lock the rows chosen, skip those another worker
    #: is locking (workers lease in parallel without waiting for each other).
    skip_locked: str
    #: Whether ``UPDATE ... RETURNING`` is available (a lease in one statement).
    returning: bool = True
    #: Whether a group of rows is best read as one JSON value and written by one
    #: ``UPDATE ... FROM (VALUES ...)`` and one multi-row ``INSERT`` rather than a row or a
    #: statement at a time. For SQLite, in process, every step lets go of the GIL, and in a
    #: busy worker each handover costs a thread switch; a driver that pipelines
    #: ``executemany`` (psycopg) gains nothing.
    multirow: bool = False
    #: A query of how many columns named by its second parameter the table named by its
    #: first has (to recognise a spool written before the message bytes had their table).
    column_count: str = ""
    #: Whether dropping a column means rebuilding its table (SQLite before 3.35 cannot
    #: drop one; a rebuild is what 3.35+ does anyway), rather than ``ALTER TABLE``.
    rebuild_to_drop: bool = False

    def marks(self, count: int) -> str:
        """``count`` parameter markers, comma-separated."""
        return ",".join([self.param] * count)

    def schema(self) -> list[str]:
        """The spool's tables and indexes, one statement per item."""
        real, blob, bigint = self.real, self.blob, self.bigint
        return [
            self._messages_table(),
            *self._messages_indexes(),
            # The bytes apart from the bookkeeping: a lease or a settle rewrites only the
            # small row (measured on SQLite: half the CPU and a seventh of the WAL).
            f"""CREATE TABLE IF NOT EXISTS message_data (
    id {bigint} PRIMARY KEY,
    data {blob} NOT NULL
)""",
            f"""CREATE TABLE IF NOT EXISTS attempts (
    id {self.row_key},
    message {bigint} NOT NULL,
    attempt INTEGER NOT NULL,
    started_at {real} NOT NULL,
    finished_at {real} NOT NULL,
    worker TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    recipients TEXT NOT NULL
)""",
            "CREATE INDEX IF NOT EXISTS attempts_message ON attempts (message, id)",
            f"""CREATE TABLE IF NOT EXISTS rate_slots (
    mailer TEXT PRIMARY KEY,
    next_at {real} NOT NULL
)""",
        ]

    def _messages_table(self) -> str:
        real = self.real
        return f"""CREATE TABLE IF NOT EXISTS messages (
    id {self.serial_key},
    message_id TEXT,
    mailer TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    size INTEGER NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    created_at {real} NOT NULL,
    queued_at {real} NOT NULL,
    send_at {real},
    next_attempt_at {real} NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_token TEXT,
    lease_expires_at {real},
    last_error TEXT,
    updated_at {real} NOT NULL
)"""

    def _messages_indexes(self) -> list[str]:
        return [
            "CREATE INDEX IF NOT EXISTS messages_due ON messages "
            "(priority DESC, next_attempt_at, id) WHERE state = 'queued'",
            "CREATE INDEX IF NOT EXISTS messages_leases ON messages (lease_expires_at) "
            "WHERE state = 'leased'",
        ]

    def move_data(self, columns: str) -> list[str]:
        """Statements that move the bytes of a spool whose ``messages`` rows still hold
        them (a ``data`` column, as mailpost 0.1.0 wrote) to ``message_data``; run in one
        transaction, after :meth:`schema`. ``columns``: those of ``messages`` it keeps."""
        copy = ["INSERT INTO message_data (id, data) SELECT id, data FROM messages"]
        if not self.rebuild_to_drop:
            return [*copy, "ALTER TABLE messages DROP COLUMN data"]
        return [
            *copy,
            "ALTER TABLE messages RENAME TO messages_before",
            self._messages_table(),
            f"INSERT INTO messages ({columns}) SELECT {columns} FROM messages_before",
            # ids are never given twice: the new table goes on from the old one's counter
            "DELETE FROM sqlite_sequence WHERE name = 'messages'",
            "UPDATE sqlite_sequence SET name = 'messages' WHERE name = 'messages_before'",
            "DROP TABLE messages_before",
            *self._messages_indexes(),
        ]


def _sqlite_has_json() -> bool:
    """Whether this SQLite has the JSON functions (built in since 3.38, optional before)."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("SELECT json_group_array(json_array(1, 'a'))").fetchone()
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()
    return True


SQLITE = Dialect(
    name="sqlite",
    param="?",
    serial_key="INTEGER PRIMARY KEY AUTOINCREMENT",
    row_key="INTEGER PRIMARY KEY",
    real="REAL",
    blob="BLOB",
    bigint="INTEGER",
    last_id="SELECT last_insert_rowid()",
    lock_rows="",
    skip_locked="",
    returning=sqlite3.sqlite_version_info >= (3, 35),
    multirow=_sqlite_has_json() and sqlite3.sqlite_version_info >= (3, 33),
    column_count="SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?",
    rebuild_to_drop=True,
)

POSTGRES = Dialect(
    name="postgresql",
    param="%s",
    serial_key="BIGSERIAL PRIMARY KEY",
    row_key="BIGSERIAL PRIMARY KEY",
    real="DOUBLE PRECISION",
    blob="BYTEA",
    bigint="BIGINT",
    last_id="SELECT currval(pg_get_serial_sequence('messages', 'id'))",
    lock_rows=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    column_count="SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = "
    "current_schema() AND table_name = %s AND column_name = %s",
)
