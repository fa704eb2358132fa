"""The spool store contract: the operations the worker and the API use.

Implementations: :class:`~mailpost.spool.store.SQLiteStore` (one machine) and
:class:`~mailpost.spool.pgstore.PostgresStore` (several), both over the shared SQL store
of :mod:`mailpost.spool.sqlstore`.
"""

from __future__ import annotations

import builtins
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from mailpost.spool.record import Attempt, NewMessage, Outcome, SpoolRecord

__all__ = ["LeaseRequest", "Settled", "SpoolStore"]

_slots_lock = threading.Lock()

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
