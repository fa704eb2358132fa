"""The spool worker: lease due messages, deliver them through their mailer, record outcomes.

One attempt on one record is :meth:`Worker.attempt`; :meth:`Worker.deliver` leases and
attempts a single record by id (what a task queue such as Celery calls); :meth:`Worker.run`
loops at engine speed:

- one backend per target mailer stays open for the whole run (one SMTP session, not one
  per lease batch);
- the SMTP backend gets a whole lease batch at once (pipelined across messages) and
  reports each message as it settles; other backends get one ``send_messages`` call per
  message;
- a store thread commits outcomes in groups (one durable commit for every outcome that
  arrived during the previous one) and, in the same transaction, leases the next batch
  while the current one is on the wire;
- a heartbeat thread renews every lease the worker holds every ``lease_seconds / 4``
  seconds, so leases can be short (20 s): a killed worker's messages are free again
  within seconds, while a live worker waiting on a slow server keeps them.

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
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future

from mailpost.backends.base import BaseEmailBackend
from mailpost.spool.base import LeaseRequest, Settled, SpoolStore
from mailpost.spool.clock import Clock, Sleep, system_clock, system_sleep
from mailpost.spool.codec import SpooledMessage
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
#: Longest an outcome waits for its group commit (seconds); a group also commits when
#: half a batch of outcomes is in, with the next lease, or when outcomes pause.
GROUP_WAIT = 0.005
#: A pause in outcomes this long (seconds) ends a group at once.
GROUP_GAP = 0.001


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


class Heartbeat:
    """Keeps the leases a worker holds alive: renews them every ``interval`` seconds from a
    daemon thread while work is in progress.

    A record whose renewal fails (another worker took it after the lease expired) is
    marked :meth:`lost`, and the worker does not send it. Use as a context manager.
    """

    def __init__(
        self,
        store: SpoolStore,
        *,
        lease_seconds: float,
        clock: Clock = system_clock,
        interval: float | None = None,
    ) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.interval = lease_seconds / 4 if interval is None else interval
        if not self.interval > 0:
            raise ValueError(f"heartbeat interval must be > 0 seconds, got {self.interval!r}")
        self._held: dict[int, SpoolRecord] = {}
        self._lost: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def hold(self, records: Sequence[SpoolRecord]) -> None:
        with self._lock:
            for record in records:
                self._held[record.id] = record

    def drop(self, record: SpoolRecord) -> None:
        with self._lock:
            self._held.pop(record.id, None)
            self._lost.discard(record.id)

    def lost(self, record: SpoolRecord) -> bool:
        """Whether ``record``'s lease was found taken by another worker."""
        with self._lock:
            return record.id in self._lost

    @property
    def held(self) -> list[SpoolRecord]:
        with self._lock:
            return list(self._held.values())

    def beat(self) -> list[int]:
        """Renew every held lease now; returns the ids found lost."""
        records = self.held
        if not records:
            return []
        renewed = set(self.store.renew(records, now=self.clock(), lease_seconds=self.lease_seconds))
        lost = []
        with self._lock:
            self.beats += 1
            for record in records:
                if record.id not in renewed and record.id in self._held:
                    del self._held[record.id]
                    self._lost.add(record.id)
                    lost.append(record.id)
        if lost:
            logger.warning("spool: lost the lease on %d message(s): %s", len(lost), lost[:10])
        return lost

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # the store was busy or away: try again at the next beat
                logger.warning("spool: renewing leases failed", exc_info=True)

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="mailpost-spool-heartbeat")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(10.0)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Committer:
    """The worker's store thread: group commits of outcomes, and the lease ahead.

    Every pass takes all outcomes that arrived meanwhile plus a pending lease request and
    runs them as one store transaction (:meth:`SpoolStore.settle`): one durable commit for
    the group. Only then are the records let go (dropped from the heartbeat).
    """

    def __init__(self, worker: Worker, heartbeat: Heartbeat) -> None:
        self.worker = worker
        self.heartbeat = heartbeat
        self._cond = threading.Condition()
        self._outcomes: list[tuple[SpoolRecord, Outcome]] = []
        self._lease: tuple[int, Future[list[SpoolRecord]]] | None = None
        self._closing = False
        self._put = 0
        self._committed = 0
        self.error: BaseException | None = None
        self.group_size = max(1, worker.batch_size // 2)
        self._thread = threading.Thread(target=self._run, name="mailpost-spool-store")
        self._thread.daemon = True
        self._thread.start()

    def put(self, record: SpoolRecord, outcome: Outcome) -> None:
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
                outcomes, self._outcomes = self._outcomes, []
                lease, self._lease = self._lease, None
                if not outcomes and lease is None:
                    return  # closing, nothing left
            request = None
            if lease is not None:
                request = LeaseRequest(
                    owner=worker.worker_id,
                    now=worker.clock(),
                    lease_seconds=worker.lease_seconds,
                    limit=lease[0],
                    mailers=worker.mailers,
                )
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
        committer = _Committer(self, heartbeat)

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
        committer: _Committer,
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
        committer: _Committer,
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
        self, backend: BaseEmailBackend, records: Sequence[SpoolRecord], committer: _Committer
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
        committer: _Committer,
    ) -> int:
        """One pipelined batch through a backend that reports each message as it settles
        (the SMTP backend); each outcome goes to the store thread at once."""
        pending = [r for r in records if r.pending]
        for record in records:
            if not record.pending:
                committer.put(record, self._outcome(record, [], None, self.clock()))
        if not pending or not self._open(backend, pending, committer):
            return len(records)
        started = self.clock()
        messages = [self._message(r) for r in pending]
        reported = [False] * len(pending)
        transient = False

        def on_result(index: int, message: object) -> None:
            nonlocal transient
            record = pending[index]
            results, summary = classify(record.pending, getattr(message, "delivery", None))
            reported[index] = True
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
                    record.pending, getattr(messages[index], "delivery", None), error=error
                )
                transient = transient or _any_pending(results)
                committer.put(record, self._outcome(record, results, summary, started))
        if transient or error is not None:
            _close_quietly(backend)  # the next batch starts on a new connection
        return len(records)

    @staticmethod
    def _message(record: SpoolRecord) -> SpooledMessage:
        if record.data is None:
            raise ValueError(f"spool record {record.id} was leased without its data")
        return SpooledMessage(
            record.data,
            record.sender,
            record.pending,
            spool_id=record.id,
            message_id=record.message_id,
        )

    def _send_one(self, record: SpoolRecord, backend: BaseEmailBackend) -> Outcome:
        started = self.clock()
        pending = record.pending
        results: list[RecipientResult] = []
        summary: str | None = None
        if pending:
            message = self._message(record)
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
    ) -> Outcome:
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
