"""Who gets stored messages delivered, and when they are stored: the two hooks of the spool.

The spool backend stores messages durably, then hands "these records are ready" to its
*dispatcher*, found by name (OPTIONS ``dispatch``) in this module's registry:

- ``"thread"``: a background worker thread in this process (what ``in_process_worker``
  starts);
- ``"inline"``: delivered at once in the sending thread, after the commit (a failed attempt
  stays queued for a worker's retry);
- ``"celery"`` and others: registered by their integration when it is imported
  (:mod:`mailpost.integrations.celery`). The spool never imports an integration.

A *transaction hook* (at most one) lets the backend store messages only when the caller's
database transaction commits (OPTIONS ``on_commit``); the Django integration registers it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from mailpost.spool.api import Spool, ensure_in_process_worker
from mailpost.spool.record import Outcome, SpoolRecord
from mailpost.spool.store import Settled, SpoolStore

__all__ = [
    "Dispatcher",
    "DispatcherFactory",
    "Ready",
    "SpoolBackendLike",
    "TransactionHook",
    "deliver_ready",
    "dispatcher_names",
    "find_dispatcher",
    "register_dispatcher",
    "register_transaction_hook",
    "transaction_hook",
]

logger = logging.getLogger("mailpost.spool")


@dataclass(frozen=True)
class Ready:
    """A stored record to get delivered: its id, the attempts it has had, and the seconds
    until it is due (its ``send_at`` or its retry time)."""

    record_id: int
    attempts: int = 0
    wait: float = 0.0


class SpoolBackendLike(Protocol):
    """What a dispatcher may use of the spool backend it serves."""

    alias: str | None
    mailer: str
    path: str

    @property
    def label(self) -> str: ...

    def spool(self, *, clock: Any = None) -> Spool: ...


class Dispatcher(Protocol):
    """Gets records delivered once they are stored (a thread, a task queue ...)."""

    def dispatch(self, ready: Sequence[Ready]) -> None:
        """Arrange delivery of ``ready``; must not raise for a delivery problem (the
        records are stored already: log it, a worker or a sweep delivers them later)."""


#: Builds the dispatcher of one spool mailer from the OPTIONS the dispatcher claimed;
#: raises ValueError (naming the option) for a bad one.
DispatcherFactory = Callable[[SpoolBackendLike, Mapping[str, Any]], Dispatcher]


@dataclass(frozen=True)
class _Registration:
    factory: DispatcherFactory
    options: frozenset[str]


_dispatchers: dict[str, _Registration] = {}
_lock = threading.Lock()

#: What makes a well-known dispatcher available, for the error when it is not registered.
_HINTS = {
    "celery": (
        'import mailpost.integrations.celery in this process (pip install "mailpost[celery]"), '
        "e.g. where the Celery app is built, or use BACKEND "
        "'mailpost.integrations.celery.EmailBackend'"
    ),
}


def register_dispatcher(
    name: str, factory: DispatcherFactory, *, options: Collection[str] = ()
) -> None:
    """Make OPTIONS ``dispatch: name`` available; ``options`` are the OPTIONS keys that
    belong to this dispatcher (given to ``factory``). Registering a name again replaces it."""
    if not name or not isinstance(name, str):
        raise ValueError(f"a dispatcher needs a name, not {name!r}")
    with _lock:
        _dispatchers[name] = _Registration(factory, frozenset(options))


def find_dispatcher(name: str) -> tuple[DispatcherFactory, frozenset[str]] | None:
    """The factory and option names registered for ``name``, or None."""
    registration = _dispatchers.get(name)
    return None if registration is None else (registration.factory, registration.options)


def dispatcher_names() -> list[str]:
    """The registered dispatcher names, sorted."""
    return sorted(_dispatchers)


def missing_dispatcher(name: str) -> str:
    """Why ``dispatch: name`` cannot be used here, and what fixes it."""
    hint = _HINTS.get(name)
    known = ", ".join(map(repr, dispatcher_names()))
    if hint is not None:
        return f"OPTIONS 'dispatch' is {name!r}, but no {name!r} dispatcher is registered: {hint}"
    return f"OPTIONS 'dispatch' must be one of {known} or None, not {name!r}"


def claimed_options(name: str | None) -> dict[str, str]:
    """OPTIONS keys of registered dispatchers other than ``name``: key -> its dispatcher."""
    return {
        option: other
        for other, registration in sorted(_dispatchers.items())
        if other != name
        for option in registration.options
    }


# -- transaction hook -------------------------------------------------------------------


class TransactionHook(Protocol):
    """Defers work to the commit of the caller's open database transaction."""

    def deferrer(self, database: str | None) -> Callable[[Callable[[], None]], None] | None:
        """A function that runs its argument when the open transaction on ``database``
        (None: the default database) commits, and never if it rolls back; None when no
        transaction is open."""


_transaction_hook: TransactionHook | None = None


def register_transaction_hook(hook: TransactionHook | None) -> None:
    """Install the transaction hook (None removes it)."""
    global _transaction_hook
    _transaction_hook = hook


def transaction_hook() -> TransactionHook | None:
    """The registered transaction hook, or None."""
    return _transaction_hook


# -- delivering given records -------------------------------------------------------------


class _ScopedStore:
    """A store that leases ``ids`` first, then at most ``extra`` other due records, and
    notes how each attempt settled.

    Given to a :class:`~mailpost.spool.worker.Worker`, it makes the worker's full engine
    (one session, pipelined batches, group commits, heartbeat) deliver these records, if
    due, and nothing beyond the ``extra`` allowance.
    """

    def __init__(
        self,
        store: SpoolStore,
        ids: Iterable[int],
        attempts: Mapping[int, int] | None = None,
        extra: int = 0,
    ) -> None:
        self._store = store
        self.ids = {int(i) for i in ids}
        self.attempts = attempts
        self.extra = extra
        self.settled: dict[int, tuple[Settled | None, int, float]] = {}
        self.skipped: set[int] = set()
        self.taken: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def lease(
        self,
        owner: str,
        *,
        now: float,
        limit: int = 1,
        ids: Collection[int] | None = None,
        **kwargs: Any,
    ) -> list[SpoolRecord]:
        wanted = sorted(self.ids - self.taken - self.skipped)
        if ids is not None:
            wanted = sorted(set(wanted).intersection(ids))
        leased: list[SpoolRecord] = []
        if wanted:
            leased = self._store.lease(owner, now=now, limit=limit, ids=wanted, **kwargs)
            leased = self._keep_expected(leased, now)
        room = min(limit - len(leased), self.extra)
        if room > 0 and ids is None:
            more = self._store.lease(owner, now=now, limit=room, **kwargs)
            self.extra -= len(more)
            leased += more
        self.taken.update(record.id for record in leased)
        return leased

    def _keep_expected(self, leased: list[SpoolRecord], now: float) -> list[SpoolRecord]:
        """Give back the records that had another attempt since the caller looked."""
        if self.attempts is None:
            return leased
        kept = []
        for record in leased:
            if record.attempts == self.attempts.get(record.id, record.attempts):
                kept.append(record)
            else:  # not ours to make: the task of that attempt makes it
                self.skipped.add(record.id)
                self._store.release(record, now=now)
        return kept

    def _note(self, record: SpoolRecord, outcome: Outcome, result: Settled | None) -> None:
        self.settled[record.id] = (result, record.attempts + 1, outcome.retry_at)

    def complete(self, record: SpoolRecord, outcome: Outcome, *, worker: str) -> Any:
        fresh = self._store.complete(record, outcome, worker=worker)
        self._note(record, outcome, None if fresh is None else (fresh.state, fresh.last_error))
        return fresh

    def settle(
        self, outcomes: Sequence[tuple[SpoolRecord, Outcome]], *, worker: str, lease: Any = None
    ) -> tuple[list[Settled | None], list[SpoolRecord]]:
        settled: list[Settled | None] = []
        if outcomes:
            settled, _ = self._store.settle(outcomes, worker=worker)
            for (record, outcome), result in zip(outcomes, settled, strict=True):
                self._note(record, outcome, result)
        leased: list[SpoolRecord] = []
        if lease is not None and lease.limit > 0:
            leased = self.lease(
                lease.owner,
                now=lease.now,
                lease_seconds=lease.lease_seconds,
                limit=lease.limit,
                mailers=lease.mailers,
            )
        return settled, leased


@dataclass(frozen=True)
class Attempted:
    """How one record's attempt by :func:`deliver_ready` settled."""

    state: str | None  # "sent", "dead", "queued" (retry at ``retry_at``); None: purged
    attempts: int
    retry_at: float


def deliver_ready(
    spool: Spool,
    ids: Iterable[int],
    *,
    attempts: Mapping[int, int] | None = None,
    extra: int = 0,
    **worker_options: Any,
) -> dict[int, Attempted]:
    """Attempt the records ``ids`` of ``spool`` that are due, once each, with the worker's
    engine; returns how each attempted record settled (ids not attempted are absent: not
    due, held by another worker, finished or gone).

    With ``attempts`` (id -> attempts the caller saw), a record that has had another number
    of attempts since is left alone. ``extra`` lets the same run go on with up to that many
    other due records (of the worker's ``mailers``) once ``ids`` are leased: one long run
    delivers a backlog at engine speed where many small runs would each pay for a session
    and a final commit.
    """
    scoped = _ScopedStore(spool.store, ids, attempts, extra)
    if not scoped.ids and not extra:
        return {}
    worker = spool.worker(**worker_options)
    worker.store = cast(SpoolStore, scoped)
    worker.run(until_idle=True, max_messages=len(scoped.ids) + extra)
    return {
        record_id: Attempted(None if result is None else result[0], attempts, retry_at)
        for record_id, (result, attempts, retry_at) in scoped.settled.items()
    }


# -- the built-in dispatchers ---------------------------------------------------------------


class ThreadDispatcher:
    """Delivery by one background worker thread per (spool, mailer) in this process."""

    def __init__(self, backend: SpoolBackendLike) -> None:
        self.backend = backend

    def dispatch(self, ready: Sequence[Ready]) -> None:
        backend = self.backend
        key = backend.path if "://" in backend.path else os.path.abspath(backend.path)
        ensure_in_process_worker((key, backend.mailer), backend.spool())


class InlineDispatcher:
    """Delivery at once, in the sending thread, once the messages are stored."""

    def __init__(self, backend: SpoolBackendLike) -> None:
        self.backend = backend

    def dispatch(self, ready: Sequence[Ready]) -> None:
        due = [r.record_id for r in ready if r.wait <= 0]
        if not due:
            return
        try:
            deliver_ready(self.backend.spool(), due)
        except Exception:
            logger.exception(
                "%s: inline delivery of %d stored message(s) failed; a worker delivers them",
                self.backend.label,
                len(due),
            )


def _no_options(cls: Callable[[SpoolBackendLike], Dispatcher]) -> DispatcherFactory:
    def factory(backend: SpoolBackendLike, options: Mapping[str, Any]) -> Dispatcher:
        return cls(backend)

    return factory


register_dispatcher("thread", _no_options(ThreadDispatcher))
register_dispatcher("inline", _no_options(InlineDispatcher))
