"""Time for the spool: a clock is any callable returning seconds since the epoch.

The worker and store never call :func:`time.time` directly; they take a ``clock`` (and
the worker a ``sleep``), so tests drive five days of retries in milliseconds with
:class:`FakeClock`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "FakeClock", "Sleep", "system_clock", "system_sleep"]

#: Returns the current time in seconds since the epoch.
Clock = Callable[[], float]
#: Waits for the given number of seconds.
Sleep = Callable[[float], None]

system_clock: Clock = time.time
system_sleep: Sleep = time.sleep


class FakeClock:
    """A clock that moves only when told: ``clock()`` reads it, ``advance()`` moves it.

    ``sleep`` advances the clock instead of waiting, so code under test that sleeps
    returns at once. Thread-safe.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("FakeClock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance instead of waiting."""
        self.advance(max(0.0, seconds))

    def __repr__(self) -> str:
        return f"<FakeClock {self._now:.3f}>"
