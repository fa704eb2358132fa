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

    def marks(self, count: int) -> str:
        """``count`` parameter markers, comma-separated."""
        return ",".join([self.param] * count)

    def schema(self) -> list[str]:
        """The spool's tables and indexes, one statement per item."""
        real, blob, bigint = self.real, self.blob, self.bigint
        return [
            f"""CREATE TABLE IF NOT EXISTS messages (
    id {self.serial_key},
    message_id TEXT,
    mailer TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    data {blob} NOT NULL,
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
)""",
            "CREATE INDEX IF NOT EXISTS messages_due ON messages "
            "(priority DESC, next_attempt_at, id) WHERE state = 'queued'",
            "CREATE INDEX IF NOT EXISTS messages_leases ON messages (lease_expires_at) "
            "WHERE state = 'leased'",
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
)
