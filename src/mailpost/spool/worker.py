"""The spool worker: lease due messages, deliver them through their mailer, record outcomes.

One attempt on one record is :meth:`Worker.attempt`; :meth:`Worker.deliver` leases and
attempts a single record by id (what a task queue such as Celery calls); :meth:`Worker.run`
loops at engine speed:

- one backend per target mailer stays open for the whole run (one SMTP session, not one
  per lease batch);
- the SMTP backend gets a whole lease batch at once (pipelined across messages) and
  reports each message as it settles; other backends get one ``send_messages`` call per
  message;
- a store thread (:mod:`~mailpost.spool.committer`) commits outcomes in groups (one
  durable commit for every outcome that arrived during the previous one) and, in the same
  transaction, leases the next batch while the current one is on the wire;
- a heartbeat thread (:mod:`~mailpost.spool.heartbeat`) renews every lease the worker
  holds every ``lease_seconds / 4`` seconds, so leases can be short (20 s): a killed
  worker's messages are free again within seconds, while a live worker waiting on a slow
  server keeps them.

An outcome is committed before its record is released or retried. A crash repeats only
the messages whose outcome was not yet committed (those in flight and those waiting for
their group commit), with the same Message-ID.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from functools import partial

from mailpost._delivery import DeliveryResult
from mailpost.backends.base import BaseEmailBackend
from mailpost.spool.base import Settled, SpoolStore
from mailpost.spool.clock import Clock, Sleep, system_clock, system_sleep
from mailpost.spool.codec import SpooledMessage
from mailpost.spool.committer import Committer
from mailpost.spool.heartbeat import Heartbeat
from mailpost.spool.policy import RetryPolicy, classify
from mailpost.spool.record import Outcome, RecipientResult, SpoolRecord

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LEASE_SECONDS",
    "Heartbeat",
    "Progress",
    "RateLimiter",
    "Worker",
    "default_mailer_factory",
    "new_worker_id",
]

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


#: Default lease length: a killed worker's messages are delivered by another within it.
DEFAULT_LEASE_SECONDS = 20.0
#: Default records per lease (and per pipelined SMTP batch).
DEFAULT_BATCH_SIZE = 100


class Progress:
    """What a worker did so far, by outcome (read by ``mailpost spool work``'s status line).

    ``delivered``: records now sent; ``retrying``: attempts that left recipients pending;
    ``failed``: records dead-lettered. Updated by the store thread after each commit.
    """

    def __init__(self, clock: Clock) -> None:
        self.started = clock()
        self.delivered = 0
        self.retrying = 0
        self.failed = 0
        self.lost = 0

    @property
    def attempts(self) -> int:
        return self.delivered + self.retrying + self.failed + self.lost

    def count(self, state: str | None) -> None:
        if state == "sent":
            self.delivered += 1
        elif state == "dead":
            self.failed += 1
        elif state == "queued":
            self.retrying += 1
        else:
            self.lost += 1


class Worker:
    """Delivers spooled messages. Several workers (threads or processes) may share a store.

    ``rate_limits`` maps a target mailer alias to messages per second, shared by every
    worker on the same store (in any process, for the SQLite store).
    ``mailers`` restricts this worker to records for those target aliases.
    ``heartbeat_interval`` (default ``lease_seconds / 4``) is how often held leases are
    renewed, in real seconds.
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
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        rate_limits: Mapping[str, float] | None = None,
        mailers: Collection[str] | None = None,
        mailer_factory: MailerFactory = default_mailer_factory,
        heartbeat_interval: float | None = None,
    ) -> None:
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if heartbeat_interval is not None and not 0 < heartbeat_interval < lease_seconds:
            raise ValueError(
                f"heartbeat_interval must be > 0 and < lease_seconds ({lease_seconds!r}), "
                f"got {heartbeat_interval!r}"
            )
        self.store = store
        self.policy = policy or RetryPolicy()
        self.worker_id = worker_id or new_worker_id()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.lease_seconds = float(lease_seconds)
        self.batch_size = batch_size
        self.heartbeat_interval = heartbeat_interval
        self.mailers = None if mailers is None else list(mailers)
        self.mailer_factory = mailer_factory
        self._limiters = {
            alias: RateLimiter(rate, clock=clock, sleep=sleep, store=store, mailer=alias)
            for alias, rate in (rate_limits or {}).items()
        }
        self._stop = threading.Event()
        self.progress = Progress(clock)

    def __repr__(self) -> str:
        return f"<Worker {self.worker_id} on {self.store!r}>"

    # -- control --------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to return after the messages in flight (at most one batch)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def heartbeat(self) -> Heartbeat:
        """A :class:`Heartbeat` for this worker's leases (not started)."""
        return Heartbeat(
            self.store,
            lease_seconds=self.lease_seconds,
            clock=self.clock,
            interval=self.heartbeat_interval,
        )

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
        deadline = None if max_seconds is None else self.clock() + max_seconds
        leased = 0
        done = 0
        backends: dict[str, BaseEmailBackend] = {}
        heartbeat = self.heartbeat().start()
        committer = Committer(self, heartbeat)

        def next_limit() -> int:
            if max_messages is None:
                return self.batch_size
            return max(0, min(self.batch_size, max_messages - leased))

        ahead: Future[list[SpoolRecord]] | None = committer.lease_ahead(next_limit())
        try:
            while True:
                assert ahead is not None
                records, ahead = ahead.result(), None
                finished = self._stop.is_set() or (
                    deadline is not None and self.clock() >= deadline
                )
                if finished:
                    self._release(records, heartbeat)
                    break
                if not records:
                    if max_messages is not None and leased >= max_messages:
                        break
                    # Outcomes still on their way may make records due (or free a lease):
                    # record them, then look once more before idling.
                    committer.flush()
                    records = committer.lease_ahead(next_limit()).result()
                if not records:
                    if until_idle:
                        break
                    self._idle(poll_interval, deadline)
                    ahead = committer.lease_ahead(next_limit())
                    continue
                leased += len(records)
                ahead = committer.lease_ahead(next_limit())
                done += self._deliver_batch(records, backends, committer, heartbeat)
        finally:
            try:
                if ahead is not None:
                    try:
                        self._release(ahead.result(), heartbeat)
                    except Exception:  # the lease itself failed: nothing to give back
                        pass
                committer.close()
            finally:
                heartbeat.stop()
                for backend in backends.values():
                    _close_quietly(backend)
        return done

    def run_once(self, *, limit: int | None = None) -> int:
        """Lease one batch of due records and attempt each; returns how many were attempted."""
        return self.run(until_idle=True, max_messages=limit or self.batch_size)

    def _idle(self, poll_interval: float, deadline: float | None) -> None:
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

    def _release(self, records: Sequence[SpoolRecord], heartbeat: Heartbeat) -> None:
        for record in records:
            heartbeat.drop(record)
            self.store.release(record, now=self.clock())

    def deliver(self, record_id: int) -> SpoolRecord | None:
        """Lease record ``record_id`` if it is due and attempt it once (a task queue's job).

        Returns the record as settled, or None when it was not due, is held by another
        worker, is finished, or does not exist. With a rate limit for its mailer, waits
        for its slot first (before leasing, so a long wait never outlives a lease). The
        lease is renewed by a heartbeat while the message is being sent.
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
        with self.heartbeat() as heartbeat:
            heartbeat.hold(records)
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

    def _deliver_batch(
        self,
        records: list[SpoolRecord],
        backends: dict[str, BaseEmailBackend],
        committer: Committer,
        heartbeat: Heartbeat,
    ) -> int:
        groups: dict[str, list[SpoolRecord]] = {}
        for record in records:
            groups.setdefault(record.mailer, []).append(record)
        done = 0
        for alias, group in groups.items():
            done += self._deliver_group(alias, group, backends, committer, heartbeat)
        return done

    def _deliver_group(
        self,
        alias: str,
        records: list[SpoolRecord],
        backends: dict[str, BaseEmailBackend],
        committer: Committer,
        heartbeat: Heartbeat,
    ) -> int:
        """Send one mailer's records of a batch on its long-lived backend."""
        if self._stop.is_set():
            self._release(records, heartbeat)
            return 0
        records = [r for r in records if not heartbeat.lost(r)]
        if not records:
            return 0
        backend = backends.get(alias)
        if backend is None:
            try:
                backend = self.mailer_factory(alias)
            except Exception as exc:
                text = f"mailer {alias!r} unavailable: {type(exc).__name__}: {exc}"
                logger.warning("spool: %s", text)
                for record in records:
                    committer.put(record, self._unsent(record, text))
                return len(records)
            backends[alias] = backend
        limiter = self._limiters.get(alias)
        send_each = getattr(backend, "send_each", None)
        if limiter is None and callable(send_each):
            return self._stream(backend, send_each, records, committer)
        done = 0
        for index, record in enumerate(records):
            if self._stop.is_set():
                self._release(records[index:], heartbeat)
                break
            if limiter is not None:
                limiter.wait()
            if heartbeat.lost(record):
                continue
            if not self._open(backend, [record], committer):
                done += 1
                continue
            outcome = self._send_one(record, backend)
            committer.put(record, outcome)
            done += 1
            if _any_pending(outcome.recipients):
                # Something transient happened: the next message goes on a new connection.
                _close_quietly(backend)
        return done

    def _open(
        self, backend: BaseEmailBackend, records: Sequence[SpoolRecord], committer: Committer
    ) -> bool:
        """Open ``backend`` if it is not (no-op when open); on failure settle ``records``."""
        try:
            backend.open()
            return True
        except Exception as exc:
            text = f"could not connect: {type(exc).__name__}: {exc}"
            for record in records:
                committer.put(record, self._unsent(record, text))
            _close_quietly(backend)
            return False

    def _stream(
        self,
        backend: BaseEmailBackend,
        send_each: Callable[..., None],
        records: list[SpoolRecord],
        committer: Committer,
    ) -> int:
        """One pipelined batch through a backend that reports each message as it settles
        (the SMTP backend); each outcome goes to the store thread at once."""
        todo = [(r, r.pending) for r in records]
        pending = [r for r, addresses in todo if addresses]
        for record, addresses in todo:
            if not addresses:
                committer.put(record, self._outcome(record, [], None, self.clock()))
        if not pending or not self._open(backend, pending, committer):
            return len(records)
        started = self.clock()
        addresses_of = [addresses for _, addresses in todo if addresses]
        messages = [self._message(r, a) for r, a in zip(pending, addresses_of, strict=True)]
        reported = [False] * len(pending)
        transient = False

        def on_result(index: int, message: object) -> None:
            nonlocal transient
            record, addresses = pending[index], addresses_of[index]
            delivery = getattr(message, "delivery", None)
            reported[index] = True
            if delivery is not None and delivery.ok and len(delivery.recipients) == len(addresses):
                # Delivered: nothing transient, so the rest of the work is the store
                # thread's, done while this thread waits for the next reply.
                committer.put(
                    record,
                    partial(self._classified, record, addresses, delivery, started, self.clock()),
                )
                return
            results, summary = classify(addresses, delivery)
            if _any_pending(results):
                transient = True
            committer.put(record, self._outcome(record, results, summary, started))

        error: Exception | None = None
        try:
            send_each(messages, on_result)
        except Exception as exc:
            error = exc
        for index, record in enumerate(pending):
            if not reported[index]:
                results, summary = classify(
                    addresses_of[index], getattr(messages[index], "delivery", None), error=error
                )
                transient = transient or _any_pending(results)
                committer.put(record, self._outcome(record, results, summary, started))
        if transient or error is not None:
            _close_quietly(backend)  # the next batch starts on a new connection
        return len(records)

    @staticmethod
    def _message(record: SpoolRecord, pending: list[str] | None = None) -> SpooledMessage:
        """``record`` as a message to its ``pending`` recipients (default: all pending)."""
        if record.data is None:
            raise ValueError(f"spool record {record.id} was leased without its data")
        return SpooledMessage(
            record.data,
            record.sender,
            record.pending if pending is None else pending,
            spool_id=record.id,
            message_id=record.message_id,
        )

    def _classified(
        self,
        record: SpoolRecord,
        addresses: list[str],
        delivery: DeliveryResult,
        started: float,
        finished: float | None = None,
    ) -> Outcome:
        results, summary = classify(addresses, delivery)
        return self._outcome(record, results, summary, started, finished)

    def _send_one(self, record: SpoolRecord, backend: BaseEmailBackend) -> Outcome:
        started = self.clock()
        pending = record.pending
        results: list[RecipientResult] = []
        summary: str | None = None
        if pending:
            message = self._message(record, pending)
            returned: int | None = None
            error: Exception | None = None
            try:
                returned = backend.send_messages([message])
            except Exception as exc:
                error = exc
            results, summary = classify(pending, message.delivery, returned=returned, error=error)
        return self._outcome(record, results, summary, started)

    def attempt(self, record: SpoolRecord, backend: BaseEmailBackend) -> SpoolRecord | None:
        """Send a leased record to its pending recipients through ``backend``; settle it."""
        return self._commit(record, self._send_one(record, backend))

    def _unsent(self, record: SpoolRecord, text: str) -> Outcome:
        results = [RecipientResult(a, "pending", None, text) for a in record.pending]
        return self._outcome(record, results, text, self.clock())

    def _settle_unsent(self, record: SpoolRecord, text: str) -> SpoolRecord | None:
        return self._commit(record, self._unsent(record, text))

    def _outcome(
        self,
        record: SpoolRecord,
        results: list[RecipientResult],
        summary: str | None,
        started: float,
        finished: float | None = None,
    ) -> Outcome:
        if finished is None:
            finished = self.clock()
        if not _any_pending(results):  # nothing to retry: no delay to draw
            return Outcome(results, started, finished, finished, False, summary)
        attempts = record.attempts + 1
        return Outcome(
            recipients=results,
            started_at=started,
            finished_at=finished,
            retry_at=finished + self.policy.delay(attempts, self.rng),
            give_up=self.policy.gives_up(
                created_at=record.queued_at, now=finished, attempts=attempts
            ),
            error=summary,
        )

    def _commit(self, record: SpoolRecord, outcome: Outcome) -> SpoolRecord | None:
        settled = self.store.complete(record, outcome, worker=self.worker_id)
        self._settled(
            record, outcome, None if settled is None else (settled.state, settled.last_error)
        )
        return settled

    def _settled(self, record: SpoolRecord, outcome: Outcome, result: Settled | None) -> None:
        """Count and log one committed outcome."""
        state = None if result is None else result[0]
        self.progress.count(state)
        if result is not None and state == "dead":
            logger.warning(
                "spool: message %s (%s) dead-lettered: %s",
                record.id,
                record.message_id,
                result[1],
            )
        elif outcome.error:
            logger.info(
                "spool: message %s attempt %s: %s", record.id, record.attempts + 1, outcome.error
            )


def _any_pending(results: list[RecipientResult]) -> bool:
    """Whether any recipient is still pending (a list, not a generator: called per message
    on the engine's thread)."""
    return "pending" in [result.status for result in results]


def _close_quietly(backend: BaseEmailBackend) -> None:
    try:
        backend.close()
    except Exception:
        logger.debug("spool: closing mailer failed", exc_info=True)
