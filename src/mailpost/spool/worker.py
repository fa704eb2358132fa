"""The spool worker: lease due messages, deliver them through their mailer, record outcomes.

One attempt on one record is :meth:`Worker.attempt`; :meth:`Worker.deliver` leases and
attempts a single record by id (what a task queue such as Celery calls); :meth:`Worker.run`
loops. Each message is sent with its own ``send_messages`` call on a connection kept open
for the batch, and its outcome is committed before the next message is sent, so a crash
can repeat at most the message in flight.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence

from mailpost.backends.base import BaseEmailBackend
from mailpost.spool.clock import Clock, Sleep, system_clock, system_sleep
from mailpost.spool.codec import SpooledMessage
from mailpost.spool.policy import RetryPolicy, classify
from mailpost.spool.record import Outcome, RecipientResult, SpoolRecord
from mailpost.spool.store import SpoolStore

__all__ = ["RateLimiter", "Worker", "default_mailer_factory", "new_worker_id"]

logger = logging.getLogger("mailpost.spool")

#: Builds a new backend for a mailer alias (default: ``mailpost.mailers[alias]``).
MailerFactory = Callable[[str], BaseEmailBackend]


def default_mailer_factory(alias: str) -> BaseEmailBackend:
    from mailpost.handler import mailers

    return mailers[alias]


def new_worker_id() -> str:
    """``host:pid:random``: unique per worker, readable in the history."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class RateLimiter:
    """At most ``rate`` messages per second, evenly spaced (no bursts).

    With ``store`` and ``mailer``, the schedule is the store's
    (:meth:`SpoolStore.reserve_slot`): every worker on that spool, in any process, keeps
    to the one rate together. Without, it is this limiter's own.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Clock,
        sleep: Sleep,
        store: SpoolStore | None = None,
        mailer: str = "",
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate limit must be > 0 messages per second, got {rate!r}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._store = store
        self._mailer = mailer
        self._next: float | None = None

    def wait(self) -> None:
        """Block until the next message may go."""
        now = self._clock()
        if self._store is not None:
            slot = self._store.reserve_slot(self._mailer, now=now, interval=self.interval)
            if slot > now:
                self._sleep(slot - now)
            return
        if self._next is not None and self._next > now:
            self._sleep(self._next - now)
            now = self._clock()
        self._next = max(now, self._next or now) + self.interval


class Worker:
    """Delivers spooled messages. Several workers (threads or processes) may share a store.

    ``rate_limits`` maps a target mailer alias to messages per second, shared by every
    worker on the same store (in any process, for the SQLite store).
    ``mailers`` restricts this worker to records for those target aliases.
    """

    def __init__(
        self,
        store: SpoolStore,
        *,
        policy: RetryPolicy | None = None,
        worker_id: str | None = None,
        clock: Clock = system_clock,
        sleep: Sleep = system_sleep,
        rng: random.Random | None = None,
        lease_seconds: float = 300.0,
        batch_size: int = 20,
        rate_limits: Mapping[str, float] | None = None,
        mailers: Collection[str] | None = None,
        mailer_factory: MailerFactory = default_mailer_factory,
    ) -> None:
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.store = store
        self.policy = policy or RetryPolicy()
        self.worker_id = worker_id or new_worker_id()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.lease_seconds = float(lease_seconds)
        self.batch_size = batch_size
        self.mailers = None if mailers is None else list(mailers)
        self.mailer_factory = mailer_factory
        self._limiters = {
            alias: RateLimiter(rate, clock=clock, sleep=sleep, store=store, mailer=alias)
            for alias, rate in (rate_limits or {}).items()
        }
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"<Worker {self.worker_id} on {self.store!r}>"

    # -- control --------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to return after the message in flight."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(
        self,
        *,
        until_idle: bool = False,
        max_messages: int | None = None,
        max_seconds: float | None = None,
        poll_interval: float = 1.0,
    ) -> int:
        """Deliver until stopped (or idle / a limit is reached); returns attempts made.

        ``until_idle`` returns as soon as nothing is due. Idle waits are at most
        ``poll_interval`` seconds and end early when the next record falls due.
        """
        done = 0
        deadline = None if max_seconds is None else self.clock() + max_seconds
        while not self._stop.is_set():
            if max_messages is not None and done >= max_messages:
                break
            if deadline is not None and self.clock() >= deadline:
                break
            limit = self.batch_size
            if max_messages is not None:
                limit = min(limit, max_messages - done)
            count = self.run_once(limit=limit)
            done += count
            if count:
                continue
            if until_idle:
                break
            now = self.clock()
            next_due = self.store.next_due(now=now)
            wait = poll_interval if next_due is None else min(poll_interval, next_due - now)
            if deadline is not None:
                wait = min(wait, deadline - now)
            if wait > 0:
                if self.sleep is system_sleep:
                    self._stop.wait(wait)
                else:
                    self.sleep(wait)
        return done

    def run_once(self, *, limit: int | None = None) -> int:
        """Lease one batch of due records and attempt each; returns how many were attempted."""
        records = self.store.lease(
            self.worker_id,
            now=self.clock(),
            lease_seconds=self.lease_seconds,
            limit=limit or self.batch_size,
            mailers=self.mailers,
        )
        if not records:
            return 0
        groups: dict[str, list[SpoolRecord]] = {}
        for record in records:
            groups.setdefault(record.mailer, []).append(record)
        done = 0
        for alias, group in groups.items():
            done += self._deliver_group(alias, group)
        return done

    def deliver(self, record_id: int) -> SpoolRecord | None:
        """Lease record ``record_id`` if it is due and attempt it once (a task queue's job).

        Returns the record as settled, or None when it was not due, is held by another
        worker, is finished, or does not exist. With a rate limit for its mailer, waits
        for its slot first (before leasing, so a long wait never outlives a lease).
        """
        if self._limiters:
            current = self.store.get(record_id)
            if current is None or current.state not in ("queued", "leased"):
                return None
            limiter = self._limiters.get(current.mailer)
            if limiter is not None and current.next_attempt_at <= self.clock():
                limiter.wait()
        records = self.store.lease(
            self.worker_id,
            now=self.clock(),
            lease_seconds=self.lease_seconds,
            limit=1,
            ids=[record_id],
        )
        if not records:
            return None
        record = records[0]
        backend = self._backend_or_settle(record.mailer, records)
        if backend is None:
            return self.store.get(record.id)
        try:
            return self.attempt(record, backend)
        finally:
            _close_quietly(backend)

    # -- delivery -------------------------------------------------------------------------

    def _backend_or_settle(
        self, alias: str, records: Sequence[SpoolRecord]
    ) -> BaseEmailBackend | None:
        """The target backend, or None after recording the configuration error on each."""
        try:
            return self.mailer_factory(alias)
        except Exception as exc:
            text = f"mailer {alias!r} unavailable: {type(exc).__name__}: {exc}"
            logger.warning("spool: %s", text)
            for record in records:
                self._settle_unsent(record, text)
            return None

    def _deliver_group(self, alias: str, records: list[SpoolRecord]) -> int:
        backend = self._backend_or_settle(alias, records)
        if backend is None:
            return len(records)
        limiter = self._limiters.get(alias)
        done = 0
        opened = False
        try:
            for index, record in enumerate(records):
                if self._stop.is_set():
                    for rest in records[index:]:
                        self.store.release(rest, now=self.clock())
                    break
                if limiter is not None:
                    limiter.wait()
                if not self._keep_lease(records[index:]):
                    continue
                if not opened:
                    try:
                        backend.open()
                        opened = True
                    except Exception as exc:
                        text = f"could not connect: {type(exc).__name__}: {exc}"
                        self._settle_unsent(record, text)
                        done += 1
                        _close_quietly(backend)
                        continue
                settled = self.attempt(record, backend)
                done += 1
                if settled is None or settled.state in ("queued", "leased"):
                    # Something transient happened: start the next message on a new connection.
                    _close_quietly(backend)
                    opened = False
        finally:
            _close_quietly(backend)
        return done

    def _keep_lease(self, records: Sequence[SpoolRecord]) -> bool:
        """Renew the batch's leases when half-spent; False if the first one is lost."""
        now = self.clock()
        head = records[0]
        if head.lease_expires_at is not None and head.lease_expires_at - now > (
            self.lease_seconds / 2
        ):
            return True
        renewed = self.store.renew(records, now=now, lease_seconds=self.lease_seconds)
        return head.id in renewed

    def attempt(self, record: SpoolRecord, backend: BaseEmailBackend) -> SpoolRecord | None:
        """Send a leased record to its pending recipients through ``backend``; settle it."""
        started = self.clock()
        pending = record.pending
        results: list[RecipientResult] = []
        summary: str | None = None
        if pending:
            if record.data is None:
                raise ValueError(f"spool record {record.id} was leased without its data")
            message = SpooledMessage(record.data, record.sender, pending, spool_id=record.id)
            returned: int | None = None
            error: Exception | None = None
            try:
                returned = backend.send_messages([message])
            except Exception as exc:
                error = exc
            results, summary = classify(pending, message.delivery, returned=returned, error=error)
        return self._complete(record, results, summary, started)

    def _settle_unsent(self, record: SpoolRecord, text: str) -> SpoolRecord | None:
        results = [RecipientResult(a, "pending", None, text) for a in record.pending]
        return self._complete(record, results, text, self.clock())

    def _complete(
        self,
        record: SpoolRecord,
        results: list[RecipientResult],
        summary: str | None,
        started: float,
    ) -> SpoolRecord | None:
        finished = self.clock()
        attempts = record.attempts + 1
        still_pending = any(r.status == "pending" for r in results)
        give_up = still_pending and self.policy.gives_up(
            created_at=record.queued_at, now=finished, attempts=attempts
        )
        outcome = Outcome(
            recipients=results,
            started_at=started,
            finished_at=finished,
            retry_at=finished + self.policy.delay(attempts, self.rng),
            give_up=give_up,
            error=summary,
        )
        settled = self.store.complete(record, outcome, worker=self.worker_id)
        if settled is not None and settled.state == "dead":
            logger.warning(
                "spool: message %s (%s) dead-lettered: %s",
                settled.id,
                settled.message_id,
                settled.last_error,
            )
        elif summary:
            logger.info("spool: message %s attempt %s: %s", record.id, attempts, summary)
        return settled


def _close_quietly(backend: BaseEmailBackend) -> None:
    try:
        backend.close()
    except Exception:
        logger.debug("spool: closing mailer failed", exc_info=True)
