"""A pool of SMTP sessions to one server, on one event loop.

A :class:`Pool` holds up to ``max_connections`` sessions and hands them to batches: an
idle one (health-checked with NOOP after ``health_check_after`` seconds idle), a new one,
or the next one released. It is kept across batches while the backend is open.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from mailpost._smtp.session import ClientConfig, Session, open_session

__all__ = ["Pool"]


class Pool:
    """Up to ``max_connections`` sessions to one server, on one event loop."""

    def __init__(self, config: ClientConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.idle: list[Session] = []
        self.count = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False
        self.extensions: dict[str, str] | None = None

    @property
    def tls_version(self) -> str | None:
        """The TLS version of an idle session (e.g. ``"TLSv1.3"``), None without TLS."""
        for session in self.idle:
            transport = session.wire.transport
            tls = transport.get_extra_info("ssl_object") if transport is not None else None
            if tls is not None:
                version: str | None = tls.version()
                return version
        return None

    @property
    def usable(self) -> bool:
        """Whether the pool's loop can still run it."""
        return not self.closed and not self.loop.is_closed()

    async def acquire(self, *, fresh: bool = False) -> Session:
        """An idle healthy session, a new one, or the next one released.

        ``fresh``: a new session (to retry a message whose session was lost: a reused one
        might be about to reach the server's per-session limit too).
        """
        config = self.config
        while True:
            if fresh and self.idle and self.count >= config.max_connections:
                self.discard(self.idle.pop(0))  # make room for the new session
            while self.idle and not fresh:
                session = self.idle.pop()
                check = config.health_check_after
                if session.alive and (
                    check is None
                    or time.monotonic() - session.last_used < check
                    or await session.noop()
                ):
                    return session
                self.discard(session)
            if self.count < config.max_connections:
                self.count += 1
                try:
                    session = await open_session(config)
                except BaseException:
                    self.count -= 1
                    self._wake()
                    raise
                self.extensions = session.extensions
                return session
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
                self._wake()
                raise

    def release(self, session: Session) -> None:
        """Give a session back for the next sender."""
        if self.closed or not session.alive:
            self.discard(session)
            return
        self.idle.append(session)
        self._wake()

    def discard(self, session: Session) -> None:
        """Drop a session that cannot be used any more."""
        session.abort()
        self.count -= 1
        self._wake()

    async def retire(self, session: Session) -> None:
        """QUIT a healthy session (its message allowance is used up)."""
        self.count -= 1
        self._wake()
        await session.quit()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """QUIT every idle session; sessions still in use are closed when released."""
        self.closed = True
        idle, self.idle = self.idle, []
        self.count -= len(idle)
        await asyncio.gather(*(session.quit() for session in idle))
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
