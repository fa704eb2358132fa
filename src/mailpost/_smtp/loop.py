"""The private event loop of the sync API.

The native async API runs the SMTP engine on the caller's event loop. The sync API runs it
on :func:`background_loop`, one private event loop in a daemon thread (started on first
use, and anew after fork), never through ``asyncio.run()`` per call.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["background_loop", "run_sync"]

T = TypeVar("T")


class _LoopThread:
    """One event loop in a daemon thread, started on first use (and anew after fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="mailpost-smtp", daemon=True).start()
                ready.wait()
                self._loop = loop
            return self._loop

    def forget(self) -> None:
        self._loop = None
        self._lock = threading.Lock()


_background = _LoopThread()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_background.forget)


def background_loop() -> asyncio.AbstractEventLoop:
    """The private event loop the sync API runs SMTP sessions on."""
    return _background.get()


def run_sync(coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop | None = None) -> T:
    """Run ``coro`` on ``loop`` (default: the background loop) and wait for its result."""
    loop = loop or background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError(
            "a blocking SMTP call was made inside the event loop that owns the connection; "
            "use the async twin (await backend.asend_messages(...)) there"
        )
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise
