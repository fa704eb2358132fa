"""The do-not-send list: a durable suppression store, and the event history it learns from.

:class:`SuppressionStore` keeps, in one SQLite file, the addresses not to send to (with why
and until when) and every event recorded through it. :meth:`SuppressionStore.record` feeds it
events: a hard bounce, a complaint or an unsubscribe suppresses the address for good; soft
bounces suppress it once ``soft_bounce_limit`` arrived within ``soft_bounce_window`` seconds,
for ``soft_bounce_ttl`` seconds. Addresses are compared case-insensitively.
``path`` is a SQLite file, or a ``postgresql://`` URL (``mailpost[postgres]``) for a list
shared by several machines, as for the spool.
"""

from __future__ import annotations

import atexit
import builtins
import csv
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailpost.events.model import DeliveryEvent

__all__ = ["DEFAULT_PATH", "Suppression", "SuppressionStore", "open_suppressions"]

DEFAULT_PATH = "mailpost-suppressions.sqlite3"

#: The advisory lock PostgreSQL writers hold for their transaction (any constant: "supp").
_PG_WRITE_LOCK = 0x73757070


@dataclass(frozen=True)
class _Spelling:
    """What differs between SQLite and PostgreSQL for this store: the parameter marker and
    two column types. Every statement is written with these; none is rewritten."""

    param: str
    serial_key: str
    real: str
    begin: str

    def schema(self) -> builtins.list[str]:
        real = self.real
        return [
            f"""CREATE TABLE IF NOT EXISTS suppressions (
    address    TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at {real} NOT NULL,
    expires_at {real}
)""",
            f"""CREATE TABLE IF NOT EXISTS events (
    id          {self.serial_key},
    kind        TEXT NOT NULL,
    bounce      TEXT,
    recipient   TEXT NOT NULL,
    provider    TEXT NOT NULL,
    message_id  TEXT,
    provider_message_id TEXT,
    at          {real} NOT NULL,
    reason      TEXT NOT NULL,
    smtp_code   INTEGER,
    status      TEXT
)""",
            "CREATE INDEX IF NOT EXISTS events_recipient ON events (recipient, kind, at)",
            "CREATE INDEX IF NOT EXISTS events_message ON events (message_id)",
        ]

    def upsert(self) -> str:
        p = self.param
        return (
            f"INSERT INTO suppressions VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (address)"
            " DO UPDATE SET reason = excluded.reason, source = excluded.source,"
            " created_at = excluded.created_at, expires_at = excluded.expires_at"
        )


_SQLITE = _Spelling("?", "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL", "BEGIN IMMEDIATE")
_POSTGRES = _Spelling("%s", "BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION", "BEGIN")


@dataclass(frozen=True, slots=True)
class Suppression:
    """One address on the do-not-send list: why, from where, since and until when."""

    address: str
    reason: str
    source: str
    created_at: float
    expires_at: float | None = None


def _norm(address: str) -> str:
    return address.strip().strip("<>").lower()


class SuppressionStore:
    """A do-not-send list in a SQLite file (created on first use) or a PostgreSQL database,
    safe across threads and processes."""

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        soft_bounce_limit: int = 3,
        soft_bounce_window: float = 7 * 86400.0,
        soft_bounce_ttl: float = 7 * 86400.0,
    ) -> None:
        if soft_bounce_limit < 1:
            raise ValueError("soft_bounce_limit must be at least 1")
        self.path = os.fspath(path)
        self.soft_bounce_limit = soft_bounce_limit
        self.soft_bounce_window = soft_bounce_window
        self.soft_bounce_ttl = soft_bounce_ttl
        self._lock = threading.Lock()
        self._postgres = self.path.startswith(("postgresql://", "postgres://"))
        self._sql = _POSTGRES if self._postgres else _SQLITE
        self._upsert = self._sql.upsert()
        self._db: Any
        if self._postgres:
            self._db = _connect_postgres(self.path)
        else:
            self._db = sqlite3.connect(
                self.path, timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
        with self._tx() as db:
            for statement in self._sql.schema():
                db.execute(statement)

    def __repr__(self) -> str:
        import re

        shown = re.sub(r"(//[^:/@]*):[^@/]*@", r"\1:***@", self.path)  # never the password
        return f"SuppressionStore({shown!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SuppressionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            self._db.execute(self._sql.begin)
            try:
                if self._postgres:
                    self._db.execute(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- the list ---------------------------------------------------------------------

    def add(
        self,
        address: str,
        reason: str = "added by hand",
        *,
        source: str = "manual",
        expires_at: float | None = None,
        now: float | None = None,
    ) -> None:
        """Put ``address`` on the list (replacing an earlier entry for it)."""
        addr = _norm(address)
        if "@" not in addr:
            raise ValueError(f"not an email address: {address!r}")
        with self._tx() as db:
            db.execute(
                self._upsert,
                (addr, reason, source, time.time() if now is None else now, expires_at),
            )

    def remove(self, address: str) -> bool:
        """Take ``address`` off the list; True if it was on it."""
        with self._tx() as db:
            cur = db.execute(
                f"DELETE FROM suppressions WHERE address = {self._sql.param}", (_norm(address),)
            )
            return bool(cur.rowcount > 0)

    def get(self, address: str, *, now: float | None = None) -> Suppression | None:
        """The active entry for ``address``, or None (expired entries do not count)."""
        when = time.time() if now is None else now
        p = self._sql.param
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM suppressions"
                f" WHERE address = {p} AND (expires_at IS NULL OR expires_at > {p})",
                (_norm(address), when),
            ).fetchone()
        return Suppression(*row) if row else None

    def suppressed(
        self, addresses: Iterable[str], *, now: float | None = None
    ) -> dict[str, Suppression]:
        """Which of ``addresses`` are on the list: ``{address as given: entry}``."""
        wanted = {_norm(a): a for a in addresses}
        if not wanted:
            return {}
        when = time.time() if now is None else now
        keys = list(wanted)
        p = self._sql.param
        found: dict[str, Suppression] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join([p] * len(chunk))
                rows = self._db.execute(
                    f"SELECT * FROM suppressions WHERE address IN ({marks})"
                    f" AND (expires_at IS NULL OR expires_at > {p})",
                    (*chunk, when),
                ).fetchall()
                for row in rows:
                    found[wanted[row[0]]] = Suppression(*row)
        return found

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and self.get(address) is not None

    def list(
        self, *, include_expired: bool = False, now: float | None = None
    ) -> builtins.list[Suppression]:
        """Every entry, oldest first."""
        when = time.time() if now is None else now
        sql = "SELECT * FROM suppressions"
        args: tuple[Any, ...] = ()
        if not include_expired:
            sql += f" WHERE expires_at IS NULL OR expires_at > {self._sql.param}"
            args = (when,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at, address", args).fetchall()
        return [Suppression(*r) for r in rows]

    # -- events -----------------------------------------------------------------------

    def record(
        self, events: Iterable[DeliveryEvent], *, now: float | None = None
    ) -> builtins.list[str]:
        """Store ``events`` and update the list from them; returns newly suppressed addresses."""
        added: list[str] = []
        p = self._sql.param
        with self._tx() as db:
            for e in events:
                at = e.timestamp.timestamp()
                addr = _norm(e.recipient)
                db.execute(
                    "INSERT INTO events (kind, bounce, recipient, provider, message_id,"
                    " provider_message_id, at, reason, smtp_code, status)"
                    f" VALUES ({', '.join([p] * 10)})",
                    (
                        e.kind,
                        e.bounce,
                        addr,
                        e.provider,
                        e.message_id.strip().strip("<>") if e.message_id else None,
                        e.provider_message_id,
                        at,
                        e.reason,
                        e.smtp_code,
                        e.status,
                    ),
                )
                when = time.time() if now is None else now
                expires: float | None = None
                if e.permanent:
                    why = f"{e.kind}{' (' + e.bounce + ')' if e.bounce else ''}: {e.reason}".rstrip(
                        ": "
                    )
                elif e.kind == "bounced":
                    (count,) = db.execute(
                        f"SELECT COUNT(*) FROM events WHERE recipient = {p} AND kind = 'bounced'"
                        f" AND bounce = 'soft' AND at > {p}",
                        (addr, at - self.soft_bounce_window),
                    ).fetchone()
                    if count < self.soft_bounce_limit:
                        continue
                    why = f"{count} soft bounces: {e.reason}".rstrip(": ")
                    expires = when + self.soft_bounce_ttl
                else:
                    continue
                current = db.execute(
                    f"SELECT expires_at FROM suppressions WHERE address = {p}", (addr,)
                ).fetchone()
                if current is not None and current[0] is None:
                    continue  # already suppressed for good
                db.execute(
                    self._upsert,
                    (addr, why, e.provider, when, expires),
                )
                added.append(addr)
        return added

    def events(
        self, *, message_id: str | None = None, recipient: str | None = None, limit: int = 1000
    ) -> builtins.list[dict[str, Any]]:
        """Recorded events for one of our Message-IDs and/or one recipient, oldest first."""
        sql = (
            "SELECT kind, bounce, recipient, provider, message_id, provider_message_id, at,"
            " reason, smtp_code, status FROM events WHERE 1=1"
        )
        args: list[Any] = []
        p = self._sql.param
        if message_id is not None:
            sql += f" AND message_id = {p}"
            args.append(message_id.strip().strip("<>"))
        if recipient is not None:
            sql += f" AND recipient = {p}"
            args.append(_norm(recipient))
        sql += f" ORDER BY at, id LIMIT {p}"
        args.append(limit)
        names = (
            "kind",
            "bounce",
            "recipient",
            "provider",
            "message_id",
            "provider_message_id",
            "at",
            "reason",
            "smtp_code",
            "status",
        )
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [dict(zip(names, r, strict=False)) for r in rows]

    # -- import / export ----------------------------------------------------------------

    def export_csv(self, out: IO[str]) -> int:
        """Write the active list as CSV (address,reason,source,created_at,expires_at)."""
        writer = csv.writer(out)
        writer.writerow(["address", "reason", "source", "created_at", "expires_at"])
        entries = self.list()
        for s in entries:
            writer.writerow(
                [
                    s.address,
                    s.reason,
                    s.source,
                    s.created_at,
                    "" if s.expires_at is None else s.expires_at,
                ]
            )
        return len(entries)

    def import_lines(self, source: IO[str], *, reason: str = "imported") -> int:
        """Add addresses from CSV (with an ``address`` header, as exported) or one per line."""
        text = source.read()
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        count = 0
        if lines and lines[0].split(",")[0].strip().lower() == "address":
            for row in csv.DictReader(lines):
                addr = (row.get("address") or "").strip()
                if not addr:
                    continue
                expires = row.get("expires_at") or None
                self.add(
                    addr,
                    row.get("reason") or reason,
                    source=row.get("source") or "import",
                    expires_at=float(expires) if expires else None,
                )
                count += 1
        else:
            for ln in lines:
                self.add(ln.strip(), reason, source="import")
                count += 1
        return count

    def to_json(self) -> str:
        """The active list as a JSON array of objects."""
        return json.dumps([_as_dict(s) for s in self.list()])


def _as_dict(s: Suppression) -> dict[str, Any]:
    return {
        "address": s.address,
        "reason": s.reason,
        "source": s.source,
        "created_at": s.created_at,
        "expires_at": s.expires_at,
    }


def _connect_postgres(url: str) -> Any:
    try:
        import psycopg
    except ImportError:
        from mailpost.exceptions import MissingDependency

        raise MissingDependency(
            'a postgresql:// suppression store needs psycopg: pip install "mailpost[postgres]"'
        ) from None
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


_shared: dict[str, SuppressionStore] = {}
#: The process that opened each shared store: only it may close it (a forked child that
#: closed its copy of a PostgreSQL session would end the parent's).
_opened_by: dict[str, int] = {}
_shared_lock = threading.Lock()


@atexit.register
def _close_shared() -> None:
    """Close this process's shared stores at exit (a clean goodbye to a database server)."""
    with _shared_lock:
        for key, store in list(_shared.items()):
            if _opened_by.get(key) == os.getpid():
                try:
                    store.close()
                except Exception:  # the process is ending either way
                    pass
        _shared.clear()
        _opened_by.clear()


def open_suppressions(path: str | os.PathLike[str] | SuppressionStore) -> SuppressionStore:
    """A store for ``path``, shared within the process (one database handle per file)."""
    if isinstance(path, SuppressionStore):
        return path
    location = os.fspath(path)
    is_url = location.startswith(("postgresql://", "postgres://"))
    key = location if is_url else os.path.abspath(location)
    with _shared_lock:
        store = _shared.get(key)
        if store is None:
            store = _shared[key] = SuppressionStore(key)
            _opened_by[key] = os.getpid()
        return store
