"""The socket side of an SMTP session: an asyncio protocol that collects replies.

:class:`Wire` reads into one buffer, parses replies with the sans-IO
:class:`~mailpost._smtp.protocol.ReplyParser`, and wakes whoever waits for them: a
coroutine blocked in :meth:`Wire.read`, or a callback driver (``pump``) that handles each
group of replies as it arrives. Every wait is bounded by one lazily re-armed timer.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections import deque
from typing import Protocol, cast

from mailpost._smtp.protocol import ProtocolError, Reply, ReplyParser

__all__ = ["Listener", "Wire"]


class Listener(Protocol):
    """A driver woken from ``data_received`` when the wanted replies are in."""

    def ready(self) -> None:
        """Handle the replies now waiting; never raises into the event loop."""


def _timed_out(what: str) -> smtplib.SMTPServerDisconnected:
    exc = smtplib.SMTPServerDisconnected(f"timed out waiting for {what}")
    exc.__cause__ = TimeoutError()
    return exc


#: Bytes read from the socket at a time: replies are small; bigger reads just take two turns.
_READ_BUFFER = 32 * 1024


class Wire(asyncio.BufferedProtocol):
    """The socket side: collects replies and wakes whoever waits for them.

    A buffered protocol: the transport reads into one buffer per session. A plain
    ``Protocol`` gets a new 256 KiB ``bytes`` per read, which glibc serves with mmap and
    munmap while its mmap threshold is low: measured 30% of the throughput on loopback.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._buffer = memoryview(bytearray(_READ_BUFFER))
        self.transport: asyncio.Transport | None = None
        self.parser = ReplyParser()
        self.replies: deque[Reply] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.wanted = 0
        self.closed = False
        self.error: BaseException | None = None
        #: The transport's buffer is over its high-water mark (``pause_writing``).
        self.paused = False
        self._drain: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._what = "the server"
        #: Called instead of waking ``waiter`` when the wanted replies are in.
        self.pump: Listener | None = None
        self._gone: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._buffer[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        try:
            replies = self.parser.feed(data)
        except ProtocolError as exc:
            self.fail(exc)
            return
        if replies:
            self.replies.extend(replies)
            if len(self.replies) >= self.wanted:
                if self.pump is not None:
                    self.pump.ready()
                    return
                waiter = self.waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.error is None:
            self.error = exc or smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        self._wake()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake()

    def _wake(self) -> None:
        for future in (self.waiter, self._drain):
            if future is not None and not future.done():
                future.set_result(None)

    def fail(self, exc: BaseException) -> None:
        """End the session now: nothing more is read or written."""
        if self.error is None:
            self.error = exc
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    async def wait_closed(self, timeout: float) -> None:
        """Wait until the transport has closed (a TLS session exchanges close_notify
        first), so a caller's event loop can end right after; abort after ``timeout``."""
        transport = self.transport
        if transport is None or self.error is not None:
            return
        gone = self._gone = self._gone or self.loop.create_future()
        try:
            await asyncio.wait_for(asyncio.shield(gone), timeout)
        except asyncio.TimeoutError:
            transport.abort()

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def writelines(self, lines: list[bytes]) -> None:
        """One ``send`` for small groups; a big payload is written on its own, not copied
        into a joined buffer. (Not ``transport.writelines``: on CPython 3.13.0-3.13.1 it
        never pauses the protocol, gh-127655, so a big message would skip flow control.)"""
        if not self.closed and self.transport is not None:
            if len(lines[0]) > 65536:
                transport = self.transport
                transport.write(lines[0])
                if len(lines) > 1:
                    transport.write(b"".join(lines[1:]))
            else:
                self.transport.write(b"".join(lines))

    async def drain(self, timeout: float | None) -> None:
        """Wait until the transport's buffer is below its high-water mark."""
        if not self.paused or self.closed:
            return
        self._drain = self.loop.create_future()
        handle = None
        if timeout is not None:
            handle = self.loop.call_later(timeout, self._expire, self._drain, "the server")
        try:
            await self._drain
        finally:
            self._drain = None
            if handle is not None:
                handle.cancel()

    def _expire(self, future: asyncio.Future[None], what: str) -> None:
        if not future.done():
            self.fail(_timed_out(what))

    async def read(self, n: int, timeout: float | None, what: str = "the server") -> list[Reply]:
        """The next ``n`` replies; fewer only when the session ended (see ``error``)."""
        if len(self.replies) < n and not self.closed:
            waiter = self.waiter = self.loop.create_future()
            self.wanted = n
            self.arm(timeout, what)
            try:
                await waiter
            finally:
                self.waiter = None
        return self.take(n)

    def arm(self, timeout: float | None, what: str = "the server") -> None:
        """Fail the session if ``waiter`` is still waiting ``timeout`` seconds from now."""
        if timeout is not None:
            self._deadline = self.loop.time() + timeout
            self._what = what
            timer = self._timer
            if timer is not None and timer.when() > self._deadline:
                timer.cancel()
                timer = None
            if timer is None:
                self._timer = self.loop.call_at(self._deadline, self._watch)

    def take(self, n: int) -> list[Reply]:
        """Up to ``n`` of the replies received, oldest first."""
        replies = self.replies
        if len(replies) <= n:
            taken = list(replies)
            replies.clear()
            return taken
        return [replies.popleft() for _ in range(n)]

    def _watch(self) -> None:
        """One timer per session, re-armed lazily: cheaper than one per reply."""
        self._timer = None
        waiter = self.waiter
        if self.pump is None and (waiter is None or waiter.done()):
            return  # (a pump is always waiting for replies, even between its futures)
        if self.loop.time() >= self._deadline:
            self.fail(_timed_out(self._what))
        else:
            self._timer = self.loop.call_at(self._deadline, self._watch)

    def failure(self) -> BaseException:
        return self.error or smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
