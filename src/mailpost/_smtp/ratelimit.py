"""A messages-per-second limit, shared by every SMTP session or HTTP request of a mailer.

Pure arithmetic on an injectable clock: :meth:`RateLimit.reserve` books the next slot and
says how long to wait for it. Slots are spaced ``1 / rate`` apart, with a burst of up to
``burst`` messages after an idle spell, so the long-run rate never exceeds ``rate``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimit", "shared_limit"]


class RateLimit:
    """Books send slots at most ``rate`` per second (``burst`` may go at once)."""

    def __init__(
        self, rate: float, *, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be a positive number of messages per second")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self.burst = max(1, int(burst))
        self.clock = clock
        self._next = -float("inf")
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; return how many seconds to wait before using it (>= 0)."""
        with self._lock:
            now = self.clock()
            earliest = now - (self.burst - 1) * self.interval
            slot = max(self._next, earliest)
            self._next = slot + self.interval
            return max(0.0, slot - now)


_shared: dict[tuple[str, float], RateLimit] = {}
_shared_lock = threading.Lock()


def shared_limit(alias: str, rate: float) -> RateLimit:
    """The one limit for mailer ``alias`` at ``rate``, kept across backend instances (each
    ``mailers[alias]`` is a new backend, but the rate applies to the mailer)."""
    with _shared_lock:
        limit = _shared.get((alias, rate))
        if limit is None:
            limit = _shared[(alias, rate)] = RateLimit(rate)
        return limit
