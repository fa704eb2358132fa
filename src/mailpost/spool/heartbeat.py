"""Lease renewal: a worker's leases stay alive while it works, and only while it does.

Leases are short (20 s by default) so that a killed worker's messages are free again
within seconds; a :class:`Heartbeat` renews every lease the worker holds every
``lease_seconds / 4`` seconds from a daemon thread, so a live worker waiting on a slow
server keeps them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from mailpost.spool.base import SpoolStore
from mailpost.spool.clock import Clock, system_clock
from mailpost.spool.record import SpoolRecord

__all__ = ["Heartbeat"]

logger = logging.getLogger("mailpost.spool")


class Heartbeat:
    """Keeps the leases a worker holds alive: renews them every ``interval`` seconds from a
    daemon thread while work is in progress.

    A record whose renewal fails (another worker took it after the lease expired) is
    marked :meth:`lost`, and the worker does not send it. A record marked :meth:`settling`
    (its outcome is being committed) is not: its renewal fails once that commit is in, and
    that is no loss. Use as a context manager.
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
        self._settling: set[int] = set()
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
            self._settling.discard(record.id)

    def settling(self, records: Sequence[SpoolRecord]) -> None:
        """``records``' outcomes are being committed by this worker; :meth:`drop` follows."""
        with self._lock:
            self._settling.update(record.id for record in records)

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
                if (
                    record.id not in renewed
                    and record.id in self._held
                    and record.id not in self._settling
                ):
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
