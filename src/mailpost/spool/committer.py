"""The worker's store thread: outcomes committed in groups, and the next lease with them.

Every pass takes all outcomes that arrived meanwhile plus a pending lease request and runs
them as one store transaction (:meth:`~mailpost.spool.base.SpoolStore.settle`): one
durable commit for the group. Only then are the records let go (dropped from the
heartbeat), so an outcome is committed before its record is released or retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from mailpost.spool.base import LeaseRequest
from mailpost.spool.heartbeat import Heartbeat
from mailpost.spool.record import Outcome, SpoolRecord

if TYPE_CHECKING:
    from mailpost.spool.worker import Worker

__all__ = ["GROUP_GAP", "GROUP_WAIT", "Committer"]

logger = logging.getLogger("mailpost.spool")

#: Longest an outcome waits for its group commit (seconds); a group also commits when
#: half a batch of outcomes is in, with the next lease, or when outcomes pause.
GROUP_WAIT = 0.005
#: A pause in outcomes this long (seconds) ends a group at once.
GROUP_GAP = 0.001


class Committer:
    """The worker's store thread: group commits of outcomes, and the lease ahead.

    Every pass takes all outcomes that arrived meanwhile plus a pending lease request and
    runs them as one store transaction (:meth:`SpoolStore.settle`): one durable commit for
    the group. Only then are the records let go (dropped from the heartbeat).
    """

    def __init__(self, worker: Worker, heartbeat: Heartbeat) -> None:
        self.worker = worker
        self.heartbeat = heartbeat
        self._cond = threading.Condition()
        self._outcomes: list[tuple[SpoolRecord, Outcome | Callable[[], Outcome]]] = []
        self._lease: tuple[int, Future[list[SpoolRecord]]] | None = None
        self._closing = False
        self._put = 0
        self._committed = 0
        self.error: BaseException | None = None
        self.group_size = max(1, worker.batch_size // 2)
        self._thread = threading.Thread(target=self._run, name="mailpost-spool-store")
        self._thread.daemon = True
        self._thread.start()

    def put(self, record: SpoolRecord, outcome: Outcome | Callable[[], Outcome]) -> None:
        """Queue ``record``'s outcome for the next group commit. A callable is called on
        the store thread, so the sender's thread (the SMTP engine's, between replies) only
        hands it over; it must not raise."""
        with self._cond:
            self._outcomes.append((record, outcome))
            self._put += 1
            if len(self._outcomes) in (1, self.group_size):  # start the group / it is full
                self._cond.notify_all()

    def lease_ahead(self, limit: int) -> Future[list[SpoolRecord]]:
        """Lease up to ``limit`` records in the next transaction; the future gets them."""
        future: Future[list[SpoolRecord]] = Future()
        if limit < 1:
            future.set_result([])
            return future
        with self._cond:
            if self._lease is not None:
                raise RuntimeError("one lease ahead at a time")
            self._lease = (limit, future)
            self._cond.notify_all()
        return future

    def flush(self) -> None:
        """Wait until every outcome put so far is committed (or its commit failed)."""
        with self._cond:
            target = self._put
            while self._committed < target and self._thread.is_alive():
                self._cond.wait(1.0)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _materialize(
        self, given: list[tuple[SpoolRecord, Outcome | Callable[[], Outcome]]]
    ) -> list[tuple[SpoolRecord, Outcome]]:
        """The outcomes of ``given``, calling those handed over as callables. One that
        fails is not recorded: its lease expires and the record is delivered again."""
        outcomes: list[tuple[SpoolRecord, Outcome]] = []
        failed = 0
        for record, outcome in given:
            if not isinstance(outcome, Outcome):
                try:
                    outcome = outcome()
                except Exception:
                    logger.exception("spool: working out the outcome of %s failed", record.id)
                    self.heartbeat.drop(record)
                    failed += 1
                    continue
            outcomes.append((record, outcome))
        if failed:
            with self._cond:
                self._committed += failed
                self._cond.notify_all()
        return outcomes

    def _run(self) -> None:
        worker = self.worker
        while True:
            with self._cond:
                while not self._outcomes and self._lease is None and not self._closing:
                    self._cond.wait()
                # Let a group build up while outcomes keep coming (a commit has a fixed
                # cost: one fsync and a few statements), but commit as soon as they pause
                # for GROUP_GAP, and never hold one back for more than GROUP_WAIT: a
                # crash repeats only what was waiting.
                until = time.monotonic() + GROUP_WAIT
                seen = -1
                while (
                    seen != len(self._outcomes)
                    and len(self._outcomes) < self.group_size
                    and self._lease is None
                    and not self._closing
                    and (left := until - time.monotonic()) > 0
                ):
                    seen = len(self._outcomes)
                    self._cond.wait(min(GROUP_GAP, left))
                given, self._outcomes = self._outcomes, []
                lease, self._lease = self._lease, None
                if not given and lease is None:
                    return  # closing, nothing left
            outcomes = self._materialize(given)
            request = None
            if lease is not None:
                request = LeaseRequest(
                    owner=worker.worker_id,
                    now=worker.clock(),
                    lease_seconds=worker.lease_seconds,
                    limit=lease[0],
                    mailers=worker.mailers,
                )
            # From here on a failed renewal means the commit is in, not that the lease was lost.
            self.heartbeat.settling([record for record, _ in outcomes])
            try:
                settled, leased = worker.store.settle(
                    outcomes, worker=worker.worker_id, lease=request
                )
            except BaseException as exc:
                # Nothing of this group is recorded: let its leases expire, so another
                # pass (or worker) delivers them again (at least once).
                logger.exception("spool: recording %d outcome(s) failed", len(outcomes))
                self.error = exc
                for record, _ in outcomes:
                    self.heartbeat.drop(record)
                if lease is not None:
                    lease[1].set_exception(exc)
                with self._cond:
                    self._committed += len(outcomes)
                    self._cond.notify_all()
                continue
            if leased:
                self.heartbeat.hold(leased)
            for (record, outcome), result in zip(outcomes, settled, strict=True):
                self.heartbeat.drop(record)
                worker._settled(record, outcome, result)
            if lease is not None:
                lease[1].set_result(leased)
            with self._cond:
                self._committed += len(outcomes)
                self._cond.notify_all()
