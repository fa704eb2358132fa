"""The spool's Python API: enqueue, inspect, retry, purge, count, and run workers.

``Spool.from_mailer("spool")`` opens the spool a ``MAILERS`` entry using
``mailpost.backends.spool.EmailBackend`` points at, with that entry's retry policy, rate
limit and lease settings; ``Spool.open(path, ...)`` opens a file directly. The CLI
(``mailpost spool ...``) is a thin shell over these methods.
"""

from __future__ import annotations

import atexit
import os
import random
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailpost.spool.clock import Clock, Sleep, system_clock, system_sleep
from mailpost.spool.codec import capture, timestamp
from mailpost.spool.policy import RetryPolicy
from mailpost.spool.record import Attempt, SpoolRecord
from mailpost.spool.store import SpoolStore, open_store
from mailpost.spool.worker import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LEASE_SECONDS,
    MailerFactory,
    Worker,
    default_mailer_factory,
)

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["Spool", "SpoolEntry", "WorkerThread"]


@dataclass
class SpoolEntry:
    """A record with its full attempt history (what ``mailpost spool show`` prints)."""

    record: SpoolRecord
    history: list[Attempt]


class Spool:
    """A spool: a store plus the settings its workers use.

    ``mailer`` is the default target alias for :meth:`enqueue`; ``rate_limits`` maps
    target aliases to messages per second for workers started from here.
    """

    def __init__(
        self,
        store: SpoolStore,
        *,
        mailer: str | None = None,
        policy: RetryPolicy | None = None,
        clock: Clock = system_clock,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        rate_limits: Mapping[str, float] | None = None,
        priority: int = 0,
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.batch_size = batch_size
        self.rate_limits = dict(rate_limits or {})
        self.priority = priority

    def __repr__(self) -> str:
        return f"<Spool {self.store!r} mailer={self.mailer!r}>"

    @classmethod
    def open(cls, path: str | os.PathLike[str], **kwargs: Any) -> Spool:
        """The spool at ``path``: a SQLite file (created if missing) or a
        ``postgresql://`` URL (tables created if missing)."""
        return cls(open_store(path), **kwargs)

    @classmethod
    def from_mailer(cls, alias: str = "spool", *, clock: Clock = system_clock) -> Spool:
        """The spool behind the spool mailer ``alias``, with that mailer's settings.

        Any mailer whose backend has a ``spool(clock=...)`` method returning a
        :class:`Spool` qualifies (the spool backend and its subclasses).
        """
        from mailpost.handler import mailers

        backend = mailers[alias]
        make = getattr(backend, "spool", None)
        spool = make(clock=clock) if callable(make) else None
        if not isinstance(spool, Spool):
            raise backend.invalid(
                f"is not a spool mailer (BACKEND is {type(backend).__module__}."
                f"{type(backend).__qualname__}, expected mailpost.backends.spool.EmailBackend)"
            )
        return spool

    # -- enqueue --------------------------------------------------------------------------

    def enqueue(
        self,
        messages: Sequence[EmailMessage],
        *,
        mailer: str | None = None,
        priority: int | None = None,
        send_at: Any = None,
    ) -> list[int]:
        """Store messages durably for delivery through ``mailer``; returns their ids.

        ``send_at`` (datetime or epoch seconds) delays the first attempt. A message's
        own ``priority`` / ``send_at`` attributes win over these arguments.
        """
        target = mailer or self.mailer
        if not target:
            raise ValueError("enqueue(): no target mailer given and the spool has no default")
        when = timestamp(send_at)
        batch = [
            capture(
                m,
                mailer=target,
                priority=self.priority if priority is None else priority,
                send_at=when,
            )
            for m in messages
        ]
        return self.store.enqueue(batch, now=self.clock())

    # -- inspection -----------------------------------------------------------------------

    def list(
        self,
        *,
        state: str | Collection[str] | None = None,
        mailer: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[SpoolRecord]:
        """Records, oldest first; filter by state(s) and target mailer."""
        states = [state] if isinstance(state, str) else state
        return self.store.list(states=states, mailer=mailer, limit=limit, offset=offset)

    def get(self, record_id: int, *, with_data: bool = False) -> SpoolRecord | None:
        return self.store.get(record_id, with_data=with_data)

    def show(self, record_id: int) -> SpoolEntry:
        """A record and its history; ``KeyError`` if there is no such record."""
        record = self.store.get(record_id)
        if record is None:
            raise KeyError(f"no spooled message with id {record_id}")
        return SpoolEntry(record, self.store.history(record_id))

    def stats(self) -> dict[str, Any]:
        """Counts by state and mailer, due now, next due time, age of the oldest pending."""
        return self.store.stats(now=self.clock())

    # -- operations -----------------------------------------------------------------------

    def retry(
        self, ids: Collection[int] | None = None, *, states: Collection[str] = ("dead",)
    ) -> int:
        """Make messages due now. Dead ones are requeued for the recipients that did not
        get them (never for those that did). Returns how many changed."""
        return self.store.retry(ids, states=states, now=self.clock())

    def purge(
        self,
        *,
        states: Collection[str] = ("sent",),
        ids: Collection[int] | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete messages in ``states`` (last changed more than ``older_than`` seconds
        ago, when given) with their history. Returns how many were deleted."""
        cutoff = None if older_than is None else self.clock() - older_than
        return self.store.purge(states=states, ids=ids, older_than=cutoff)

    # -- workers --------------------------------------------------------------------------

    def worker(
        self,
        *,
        worker_id: str | None = None,
        sleep: Sleep = system_sleep,
        rng: random.Random | None = None,
        mailers: Collection[str] | None = None,
        mailer_factory: MailerFactory = default_mailer_factory,
        **overrides: Any,
    ) -> Worker:
        """A :class:`Worker` on this spool with its policy, leases and rate limits."""
        settings: dict[str, Any] = {
            "lease_seconds": self.lease_seconds,
            "batch_size": self.batch_size,
            "rate_limits": self.rate_limits,
            "policy": self.policy,
            "heartbeat_interval": None,
        }
        unknown = sorted(set(overrides) - set(settings))
        if unknown:
            raise TypeError(f"worker(): unknown argument(s) {', '.join(unknown)}")
        settings.update(overrides)
        return Worker(
            self.store,
            worker_id=worker_id,
            clock=self.clock,
            sleep=sleep,
            rng=rng,
            mailers=mailers,
            mailer_factory=mailer_factory,
            **settings,
        )

    def start_worker(self, *, poll_interval: float = 1.0, **kwargs: Any) -> WorkerThread:
        """Run a worker in a background thread of this process (for small apps)."""
        thread = WorkerThread(self.worker(**kwargs), poll_interval=poll_interval)
        thread.start()
        return thread


class WorkerThread(threading.Thread):
    """A daemon thread running a :class:`Worker` until :meth:`stop`."""

    def __init__(self, worker: Worker, *, poll_interval: float = 1.0) -> None:
        super().__init__(name=f"mailpost-spool-{worker.worker_id}", daemon=True)
        self.worker = worker
        self.poll_interval = poll_interval

    def run(self) -> None:
        self.worker.run(poll_interval=self.poll_interval)

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop after the message in flight; wait up to ``timeout`` seconds."""
        self.worker.stop()
        if self.is_alive():
            self.join(timeout)


_in_process: dict[tuple[str, str, int], WorkerThread] = {}
_in_process_lock = threading.Lock()


def ensure_in_process_worker(key: tuple[str, str], spool: Spool) -> WorkerThread:
    """One background worker per (spool path, mailer alias) in this process."""
    full = (*key, os.getpid())
    with _in_process_lock:
        thread = _in_process.get(full)
        if thread is None or not thread.is_alive():
            thread = spool.start_worker()
            _in_process[full] = thread
        return thread


@atexit.register
def _stop_in_process_workers() -> None:
    with _in_process_lock:
        threads = list(_in_process.values())
        _in_process.clear()
    for thread in threads:
        thread.stop(timeout=5.0)
