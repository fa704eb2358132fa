"""The durable spool: queue messages now, deliver them reliably later.

- :mod:`~mailpost.spool.record`: what is stored (records, recipients, attempts);
- :mod:`~mailpost.spool.codec`: message bytes in, :class:`SpooledMessage` out;
- :mod:`~mailpost.spool.policy`: backoff, give-up and per-recipient classification;
- :mod:`~mailpost.spool.store`: the store contract and the SQLite store;
- :mod:`~mailpost.spool.worker`: lease, deliver, settle, with
  :mod:`~mailpost.spool.committer` (group commits, the lease ahead) and
  :mod:`~mailpost.spool.heartbeat` (lease renewal);
- :mod:`~mailpost.spool.api`: :class:`Spool`, the operations API;
- :mod:`~mailpost.spool.cli`: ``mailpost spool ...``.

The backend that feeds it is :class:`mailpost.backends.spool.EmailBackend`.
"""

from __future__ import annotations

from mailpost.spool.api import Spool, SpoolEntry, WorkerThread
from mailpost.spool.clock import FakeClock
from mailpost.spool.codec import SpooledMessage
from mailpost.spool.policy import RetryPolicy, classify
from mailpost.spool.record import (
    Attempt,
    NewMessage,
    Outcome,
    RecipientResult,
    SpoolRecipient,
    SpoolRecord,
)
from mailpost.spool.store import SpoolStore, SQLiteStore
from mailpost.spool.worker import RateLimiter, Worker

__all__ = [
    "Attempt",
    "FakeClock",
    "NewMessage",
    "Outcome",
    "RateLimiter",
    "RecipientResult",
    "RetryPolicy",
    "SQLiteStore",
    "Spool",
    "SpoolEntry",
    "SpoolRecipient",
    "SpoolRecord",
    "SpoolStore",
    "SpooledMessage",
    "Worker",
    "WorkerThread",
    "classify",
]
