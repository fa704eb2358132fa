"""The asyncio SMTP engine: connections, a pool, and batches sent over it.

A :class:`Connection` is an :class:`asyncio.Protocol` plus the session logic: greeting,
EHLO, STARTTLS (never falling back to cleartext), AUTH, then mail transactions. The reply
parsing and the meaning of every reply live in the sans-IO :mod:`mailpost._smtp.protocol`;
this module only writes command bytes (one ``writelines`` per pipelined group) and waits
for replies, each wait bounded by a timeout.

A :class:`Pool` holds up to ``max_connections`` sessions to one server and hands them to
batches. :func:`send_batch` spreads a batch over the pool (one worker per connection,
taking messages from a shared queue) and returns one result per message, in order. A
worker whose connection is lost (dropped, timed out, 421) reconnects and retries the
interrupted message once, under :class:`~mailpost._smtp.policy.ReconnectPolicy`.

The native async API runs this on the caller's event loop. The sync API runs it on
:func:`background_loop`, one private event loop in a daemon thread, never through
``asyncio.run()`` per call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost._smtp.envelope import LINE_DOT, data_parts, plan_for, plan_mail
from mailpost._smtp.policy import ReconnectPolicy
from mailpost._smtp.protocol import (
    Outcome,
    ProtocolError,
    Reply,
    ReplyParser,
    auth_login_steps,
    auth_plain,
    fail,
    mail_command,
    new_result,
    parse_ehlo,
    rcpt_command,
    settle,
    settle_data,
)
from mailpost._smtp.ratelimit import RateLimit
from mailpost._smtp.replies import Failure, classify_exception
from mailpost.message import StreamedMessage

__all__ = [
    "Attempt",
    "ClientConfig",
    "Connection",
    "Item",
    "Pool",
    "background_loop",
    "composition_failed",
    "open_connection",
    "run_sync",
    "send_batch",
    "unattempted",
]

logger = logging.getLogger("mailpost.smtp")

T = TypeVar("T")

#: RFC 5321 section 4.5.3.2 minimums, used when no timeout is configured at all.
DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_GREETING_TIMEOUT = 300.0
DEFAULT_COMMAND_TIMEOUT = 300.0
DEFAULT_DATA_TIMEOUT = 600.0


@dataclass(frozen=True)
class ClientConfig:
    """Everything a connection needs, resolved once by the backend."""

    host: str
    port: int
    label: str = "SMTP"
    use_tls: bool = False
    use_ssl: bool = False
    ssl_context: ssl.SSLContext | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    local_hostname: str = "localhost"
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    greeting_timeout: float | None = DEFAULT_GREETING_TIMEOUT
    command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT
    data_timeout: float | None = DEFAULT_DATA_TIMEOUT
    pipelining: bool = True
    max_connections: int = 1
    messages_per_connection: int | None = None
    health_check_after: float | None = 30.0
    rate_limit: RateLimit | None = None


class Item:
    """One message for the wire: its envelope, and its bytes computed once.

    ``prepare``, when given, makes the bytes on first use (:meth:`ready`), with 8-bit text
    if the connection it is about to go on offers 8BITMIME; until then ``data`` is empty.
    ``render`` re-renders the message 7-bit clean, for a server that turns out not to
    offer 8BITMIME after the bytes were made 8-bit. ``stream``: the message has files read
    while it is written (``data`` is then only its head, for the Message-ID). ``error``:
    why the message could not be composed; it is then not sent.
    """

    __slots__ = (
        "data",
        "eight_bit",
        "error",
        "message",
        "message_id",
        "prepare",
        "recipients",
        "render",
        "sender",
        "stream",
    )

    def __init__(
        self,
        message: Any,
        sender: str,
        recipients: list[str],
        data: bytes,
        message_id: str | None,
        *,
        eight_bit: bool = False,
        render: Callable[[], tuple[bytes, str | None]] | None = None,
        stream: StreamedMessage | None = None,
        prepare: Callable[[Item, bool], None] | None = None,
    ) -> None:
        self.prepare = prepare
        self.error: Exception | None = None
        self.stream = stream
        self.message = message
        self.sender = sender
        self.recipients = recipients
        self.data = data
        self.message_id = message_id
        self.eight_bit = eight_bit
        self.render = render

    def done(self) -> None:
        """The message has its result: let its bytes go (a batch holds only the bytes of
        the messages in flight, not of every message it sent)."""
        self.data = b""
        self.stream = None
        self.render = None

    def ready(self, eight_bit: bool) -> bool:
        """Compose the message now if that is still to do; False if it cannot be."""
        prepare = self.prepare
        if prepare is not None:
            self.prepare = None
            try:
                prepare(self, eight_bit)
            except Exception as exc:
                self.error = exc
        return self.error is None


@dataclass(slots=True)
class Attempt:
    """One transaction's outcome. ``lost``: the session ended before the server's final
    reply (if the data had gone out, the server may have stored the message: the retry
    is the documented ack-lost duplicate, same Message-ID). ``usable``: the connection
    can carry the next message."""

    result: DeliveryResult
    lost: bool = False
    usable: bool = True


@dataclass(slots=True)
class Sent:
    """A transaction whose envelope went out ahead (pipelined): its replies so far, and
    what they mean once :func:`settle` has read them (``outcome``)."""

    result: DeliveryResult
    replies: list[Reply]
    expected: int
    outcome: Outcome | None = None


class _Ahead:
    """The next transaction's envelope, written after a message's data: its result and
    how many commands (hence replies) it was."""

    __slots__ = ("commands", "result", "wanted")

    def __init__(self, result: DeliveryResult, commands: int) -> None:
        self.result = result
        self.commands = commands
        self.wanted = commands + 1  # with the reply to the data before it


def _timed_out(what: str) -> smtplib.SMTPServerDisconnected:
    exc = smtplib.SMTPServerDisconnected(f"timed out waiting for {what}")
    exc.__cause__ = TimeoutError()
    return exc


#: Bytes read from the socket at a time: replies are small; bigger reads just take two turns.
_READ_BUFFER = 32 * 1024


class _Wire(asyncio.BufferedProtocol):
    """The socket side: collects replies and wakes whoever waits for them.

    A buffered protocol: the transport reads into one buffer per connection. A plain
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
        self._paused = False
        self._drain: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._what = "the server"
        #: Called instead of waking ``waiter`` when the wanted replies are in (see _Pump).
        self.pump: _Pump | None = None
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
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
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
        if not self._paused or self.closed:
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
        """One timer per connection, re-armed lazily: cheaper than one per reply."""
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


class Connection:
    """One SMTP session, ready for mail transactions."""

    def __init__(self, wire: _Wire, config: ClientConfig) -> None:
        self.wire = wire
        self.config = config
        self.extensions: dict[str, str] = {}
        self.esmtp = False
        self.transactions = 0
        self.last_used = time.monotonic()

    @property
    def alive(self) -> bool:
        return not self.wire.closed

    @property
    def pipelining(self) -> bool:
        return self.config.pipelining and "pipelining" in self.extensions

    # -- session setup ------------------------------------------------------------------

    async def command(self, line: bytes, timeout: float | None = None) -> Reply:
        """Send one command and return its reply; raise if the session ended."""
        self.wire.write(line)
        replies = await self.wire.read(1, timeout or self.config.command_timeout)
        if not replies:
            raise self.wire.failure()
        return replies[0]

    async def greet(self) -> None:
        replies = await self.wire.read(1, self.config.greeting_timeout, "the server's greeting")
        if not replies:
            raise self.wire.failure()
        code, raw = replies[0]
        if code != 220:
            raise smtplib.SMTPConnectError(code, raw)

    async def hello(self) -> None:
        name = self.config.local_hostname
        code, raw = await self.command(f"EHLO {name}\r\n".encode("ascii"))
        if code == 250:
            self.esmtp = True
            self.extensions = parse_ehlo(raw)
            return
        code, raw = await self.command(f"HELO {name}\r\n".encode("ascii"))
        if not 200 <= code < 300:
            raise smtplib.SMTPHeloError(code, raw)
        self.esmtp = False
        self.extensions = {}

    async def starttls(self) -> None:
        """Upgrade to TLS; raise (never continue in clear) if that is not possible."""
        if "starttls" not in self.extensions:
            raise smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server.")
        code, raw = await self.command(b"STARTTLS\r\n")
        if code != 220:
            raise smtplib.SMTPResponseException(code, raw)
        loop = asyncio.get_running_loop()
        wire, config = self.wire, self.config
        assert wire.transport is not None
        assert config.ssl_context is not None
        transport = await loop.start_tls(
            wire.transport,
            wire,
            config.ssl_context,
            server_hostname=config.host,
            ssl_handshake_timeout=config.connect_timeout,
        )
        wire.transport = cast(asyncio.Transport, transport)
        wire.parser = ReplyParser()  # RFC 3207: discard anything received before TLS
        wire.replies.clear()

    async def login(self) -> None:
        """AUTH PLAIN, else AUTH LOGIN (RFC 4954); raise SMTPAuthenticationError if refused."""
        if "auth" not in self.extensions:
            raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
        mechanisms = self.extensions["auth"].upper().split()
        user, password = self.config.username, self.config.password
        if "PLAIN" in mechanisms:
            code, raw = await self.command(auth_plain(user, password))
        elif "LOGIN" in mechanisms:
            steps = auth_login_steps(user, password)
            for step in steps:
                code, raw = await self.command(step)
                if code != 334:
                    break
        else:
            raise smtplib.SMTPException("No suitable authentication method found.")
        if code not in (235, 503):
            raise smtplib.SMTPAuthenticationError(code, raw)

    async def noop(self) -> bool:
        """Whether the session still answers (health check of an idle connection)."""
        if not self.alive:
            return False
        try:
            code, _ = await self.command(b"NOOP\r\n")
        except OSError:
            self.abort()
            return False
        return 200 <= code < 300

    async def quit(self) -> None:
        """Say QUIT, wait briefly for the reply, close and wait until the socket is closed.
        Never raises for the network."""
        bound = min(self.config.command_timeout or 5.0, 5.0)
        if self.alive:
            try:
                await self.command(b"QUIT\r\n", bound)
            except OSError as exc:
                logger.debug("%s: QUIT failed: %s", self.config.label, classify_exception(exc).text)
        self.close()
        await self.wire.wait_closed(bound)

    def close(self) -> None:
        transport = self.wire.transport
        if transport is not None and not transport.is_closing():
            transport.close()
        self.wire.closed = True

    def abort(self) -> None:
        self.wire.fail(smtplib.SMTPServerDisconnected("connection closed by the client"))

    # -- one mail transaction -------------------------------------------------------------

    def _envelope(self, item: Item) -> tuple[DeliveryResult, list[bytes] | None]:
        """A new result for ``item`` and its MAIL/RCPT/DATA lines (None: not to be sent)."""
        if not item.ready("8bitmime" in self.extensions):
            return composition_failed(item), None
        if item.eight_bit and "8bitmime" not in self.extensions and item.render is not None:
            item.data, item.message_id = item.render()
            item.eight_bit = False
        result = new_result(item.message_id, item.recipients)
        stream = item.stream
        if stream is None:
            plan = plan_mail(item.data, self.extensions)
        else:
            plan = plan_for(stream.size, stream.isascii(), self.extensions)
        if plan.problem is not None:
            fail(result, Failure(plan.problem), plan.problem, smtplib.SMTPException(plan.problem))
            return result, None
        lines = [mail_command(item.sender, plan.options)]
        lines += [rcpt_command(r) for r in item.recipients]
        lines.append(b"DATA\r\n")
        return result, lines

    def can_pipeline(self, item: Item) -> bool:
        """Whether ``item``'s envelope may follow the previous message's data in one write
        (composing it now, to know whether it streams files)."""
        if not self.pipelining or self.wire.closed:
            return False
        item.ready("8bitmime" in self.extensions)
        return item.stream is None

    async def transact(
        self,
        item: Item,
        follow: Item | None = None,
        sent: Sent | None = None,
        prime: Callable[[], object] | None = None,
    ) -> tuple[Attempt, Sent | None]:
        """MAIL, RCPT for each recipient, DATA, the data: every reply recorded.

        With PIPELINING, ``follow``'s envelope is written right after this message's data
        (RFC 2920 allows the next transaction to follow the end of data), and its replies
        are read with the reply to the data: one round trip per message. The returned
        :class:`Sent` carries them to the next call (``sent``); None when ``follow`` was
        not sent, e.g. because this message ended the session. ``prime`` is called once
        the data is written, while the server works on it.
        """
        self.transactions += 1
        wire = self.wire
        timeout = self.config.command_timeout
        if sent is not None:
            result, replies, expected = sent.result, sent.replies, sent.expected
        else:
            result, lines = self._envelope(item)
            if lines is None:
                return Attempt(result), None
            if self.pipelining:
                wire.writelines(lines)
                replies = await wire.read(len(lines), timeout)
                expected = len(lines)
            else:
                replies, expected = await self._lockstep(lines, timeout)
        if sent is not None and sent.outcome is not None:
            outcome = sent.outcome
        else:
            outcome = settle(result, item.sender, replies, expected=expected, cause=wire.error)
        if outcome.lost:
            self.abort()
            return Attempt(result, lost=True, usable=False), None
        if outcome.send_data:
            if item.stream is None:
                ahead = self.write_data(item, follow)
            else:
                ahead = None
                await self._write_stream(item.stream)
            if prime is not None:
                prime()
            await wire.drain(self.config.data_timeout)
            got = await wire.read(ahead.wanted if ahead else 1, self.config.data_timeout)
            return self.data_done(result, got, ahead)
        usable = True
        if outcome.dot_only:
            wire.write(b".\r\n")
            usable = bool(await wire.read(1, timeout))
        if outcome.reset and usable:
            usable = await self._reset()
        if not usable:
            self.abort()
        self.last_used = time.monotonic()
        return Attempt(result, usable=usable), None

    def write_data(self, item: Item, follow: Item | None) -> _Ahead | None:
        """Write ``item``'s data, then ``follow``'s envelope when there is one to send."""
        stuffed, end = data_parts(item.data)
        if follow is None:
            self.wire.writelines([stuffed, end])
            return None
        next_result, lines = self._envelope(follow)
        if lines is None:
            self.wire.writelines([stuffed, end])
            return None
        self.wire.writelines([stuffed, end, *lines])
        return _Ahead(next_result, len(lines))

    def data_done(
        self, result: DeliveryResult, got: list[Reply], ahead: _Ahead | None
    ) -> tuple[Attempt, Sent | None]:
        """Apply the reply to the data; the next envelope's replies go to its :class:`Sent`."""
        outcome = settle_data(result, got[0] if got else None, cause=self.wire.error)
        if outcome.lost:
            self.abort()
            return Attempt(result, lost=True, usable=False), None
        self.last_used = time.monotonic()
        if ahead is None:
            return Attempt(result), None
        return Attempt(result), Sent(ahead.result, got[1:], ahead.commands)

    async def _write_stream(self, stream: StreamedMessage) -> None:
        """Write a message chunk by chunk, waiting for the socket between chunks, so only
        about one chunk of a large file is in memory at a time. Base64 text never starts a
        line with a dot; only the wire-bytes segments are dot-stuffed."""
        wire, timeout = self.wire, self.config.data_timeout
        first, tail = True, b""
        for chunk in stream.chunks():
            if wire.closed:
                return
            if LINE_DOT.search(chunk):
                chunk = chunk.replace(b"\r\n.", b"\r\n..")
            if chunk[:1] == b"." and (first or tail.endswith(b"\n")):  # a line starts here
                chunk = b"." + chunk
            first = False
            if chunk:
                tail = chunk[-2:]
            wire.write(chunk)
            await wire.drain(timeout)
        wire.write(b".\r\n" if tail == b"\r\n" else b"\r\n.\r\n")

    async def _lockstep(self, lines: list[bytes], timeout: float | None) -> tuple[list[Reply], int]:
        """One command at a time (no PIPELINING): stop where the transaction cannot go on."""
        wire = self.wire
        replies: list[Reply] = []
        last_rcpt = len(lines) - 2
        accepted = False
        for index, line in enumerate(lines):
            wire.write(line)
            got = await wire.read(1, timeout)
            if not got:
                return replies, index + 1
            replies += got
            code = got[0][0]
            if code == 421 or (index == 0 and not 200 <= code < 300):
                return replies, index + 1
            if 0 < index <= last_rcpt:
                accepted = accepted or 200 <= code < 300
                if index == last_rcpt and not accepted:
                    return replies, index + 1
        return replies, len(lines)

    async def _reset(self) -> bool:
        """RSET after a failed transaction; whether the session is still usable."""
        try:
            code, _ = await self.command(b"RSET\r\n")
        except OSError:
            return False
        return 200 <= code < 300


async def open_connection(config: ClientConfig) -> Connection:
    """A new session: connected, greeted, TLS on if configured, logged in.

    Raises the underlying error (an ``OSError``: smtplib and ssl errors are). STARTTLS
    that is not offered or fails raises; the session is never used in clear.
    """
    loop = asyncio.get_running_loop()
    tls = config.ssl_context if config.use_ssl else None
    try:
        _, wire = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Wire(loop),
                config.host,
                config.port,
                ssl=tls,
                server_hostname=config.host if tls is not None else None,
                ssl_handshake_timeout=config.connect_timeout if tls is not None else None,
            ),
            config.connect_timeout,
        )
    except asyncio.TimeoutError:
        raise TimeoutError(f"timed out connecting to {config.host}:{config.port}") from None
    conn = Connection(wire, config)
    try:
        await conn.greet()
        await conn.hello()
        if config.use_tls:
            await conn.starttls()
            await conn.hello()
        if config.username and config.password:
            await conn.login()
    except BaseException:
        conn.abort()
        raise
    return conn


class Pool:
    """Up to ``max_connections`` sessions to one server, on one event loop."""

    def __init__(self, config: ClientConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.idle: list[Connection] = []
        self.count = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False
        self.extensions: dict[str, str] | None = None

    @property
    def tls_version(self) -> str | None:
        """The TLS version of an idle session (e.g. ``"TLSv1.3"``), None without TLS."""
        for conn in self.idle:
            transport = conn.wire.transport
            tls = transport.get_extra_info("ssl_object") if transport is not None else None
            if tls is not None:
                version: str | None = tls.version()
                return version
        return None

    @property
    def usable(self) -> bool:
        """Whether the pool's loop can still run it."""
        return not self.closed and not self.loop.is_closed()

    async def acquire(self, *, fresh: bool = False) -> Connection:
        """An idle healthy session, a new one, or the next one released.

        ``fresh``: a new session (to retry a message whose session was lost: a reused one
        might be about to reach the server's per-connection limit too).
        """
        config = self.config
        while True:
            if fresh and self.idle and self.count >= config.max_connections:
                self.discard(self.idle.pop(0))  # make room for the new session
            while self.idle and not fresh:
                conn = self.idle.pop()
                check = config.health_check_after
                if conn.alive and (
                    check is None or time.monotonic() - conn.last_used < check or await conn.noop()
                ):
                    return conn
                self.discard(conn)
            if self.count < config.max_connections:
                self.count += 1
                try:
                    conn = await open_connection(config)
                except BaseException:
                    self.count -= 1
                    self._wake()
                    raise
                self.extensions = conn.extensions
                return conn
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
                self._wake()
                raise

    def release(self, conn: Connection) -> None:
        """Give a session back for the next sender."""
        if self.closed or not conn.alive:
            self.discard(conn)
            return
        self.idle.append(conn)
        self._wake()

    def discard(self, conn: Connection) -> None:
        """Drop a session that cannot be used any more."""
        conn.abort()
        self.count -= 1
        self._wake()

    async def retire(self, conn: Connection) -> None:
        """QUIT a healthy session (its message allowance is used up)."""
        self.count -= 1
        self._wake()
        await conn.quit()

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
        await asyncio.gather(*(conn.quit() for conn in idle))
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)


Problem = tuple[str, Failure, BaseException | None]


def composition_failed(item: Item) -> DeliveryResult:
    """The result for a message that could not be composed: not sent, not retryable."""
    return DeliveryResult(
        message_id=item.message_id,
        recipients=[RecipientStatus(a, "unattempted") for a in item.recipients],
        error=f"message could not be composed: {item.error}",
        attempted=False,
        exception=item.error,
    )


def unattempted(
    item: Item, text: str, failure: Failure, exc: BaseException | None
) -> DeliveryResult:
    """The result for a message that never reached the server."""
    return DeliveryResult(
        message_id=item.message_id,
        recipients=[
            RecipientStatus(a, "unattempted", failure.code, failure.text) for a in item.recipients
        ],
        error=f"not attempted: {text}",
        error_code=failure.code,
        retryable=failure.retryable,
        attempted=False,
        exception=exc,
    )


class _Batch:
    """The shared state of one batch: the queue of message indexes and the results."""

    def __init__(
        self,
        pool: Pool,
        items: list[Item],
        on_result: Callable[[int, DeliveryResult], None] | None = None,
    ) -> None:
        self.pool = pool
        self.items = items
        self.queue: deque[int] = deque(range(len(items)))
        self.results: list[DeliveryResult | None] = [None] * len(items)
        self.problem: Problem | None = None
        self.on_result = on_result

    def settled(self, index: int, result: DeliveryResult) -> None:
        """Item ``index`` has its final result: keep it, let its bytes go, tell the caller."""
        self.results[index] = result
        self.items[index].done()
        if self.on_result is not None:
            self.on_result(index, result)

    async def worker(self) -> None:
        pool, config, items = self.pool, self.pool.config, self.items
        limit = config.rate_limit
        per_connection = config.messages_per_connection
        policy = ReconnectPolicy()
        conn: Connection | None = None
        had_connection = False
        interrupted: tuple[int, Attempt] | None = None
        ahead: tuple[int, Sent] | None = None  # the next message, its envelope already sent
        try:
            while True:
                sent = None
                if interrupted is not None:
                    index = interrupted[0]
                elif ahead is not None:
                    index, sent = ahead
                    ahead = None
                elif self.queue:
                    index = self.queue.popleft()
                else:
                    return
                item = items[index]
                if conn is None:
                    conn, problem = await self._connect(policy, had_connection)
                    if problem is not None:
                        self.problem = problem
                        if interrupted is not None:
                            self.settled(index, interrupted[1].result)
                        else:
                            self.queue.appendleft(index)
                        return
                    had_connection = True
                    assert conn is not None
                if limit is not None:
                    delay = limit.reserve()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if sent is not None and sent.outcome is None and limit is None:
                    stop = await _Pump(self, conn, policy).run(index, sent)
                    if stop.attempt is None:  # that message needs the general path
                        assert stop.sent is not None
                        ahead = (stop.index, stop.sent)
                        continue
                    index, attempt = stop.index, stop.attempt
                    follow, following = stop.follow, stop.following
                else:
                    follow = self._follow(conn) if limit is None else None
                    attempt, following = await conn.transact(
                        item, items[follow] if follow is not None else None, sent, self.prime
                    )
                if follow is not None:
                    if following is None:
                        self.queue.appendleft(follow)  # not sent: back to the queue
                    else:
                        ahead = (follow, following)
                if attempt.lost and interrupted is None:
                    pool.discard(conn)
                    conn = None
                    interrupted = (index, attempt)  # retried once, on a new connection
                    continue
                interrupted = None
                self.settled(index, attempt.result)
                if attempt.result.sent:
                    policy.delivered()
                if not attempt.usable:
                    pool.discard(conn)
                    conn = None
                elif per_connection is not None and conn.transactions >= per_connection:
                    await pool.retire(conn)
                    conn, had_connection = None, False
        finally:
            if conn is not None:
                pool.release(conn)

    def prime(self) -> None:
        """Compose the next queued message while the server works on the one just sent
        (on 2 cores, its CPU time then costs no wall time)."""
        queue, extensions = self.queue, self.pool.extensions
        if queue and extensions is not None:
            self.items[queue[0]].ready("8bitmime" in extensions)

    def _follow(self, conn: Connection) -> int | None:
        """The next queued message, taken if its envelope may follow the current data."""
        per_connection = self.pool.config.messages_per_connection
        queue = self.queue
        if (
            queue
            and (per_connection is None or conn.transactions + 1 < per_connection)
            and conn.can_pipeline(self.items[queue[0]])
        ):
            return queue.popleft()
        return None

    async def _connect(
        self, policy: ReconnectPolicy, reconnect: bool
    ) -> tuple[Connection | None, Problem | None]:
        config = self.pool.config
        where = f"{config.host}:{config.port}"
        if reconnect:
            if not policy.may_reconnect():
                text = "the connection was lost again before any message was delivered on it"
                return None, (text, Failure(text, None, True), None)
            logger.info("%s: connection lost; reconnecting to %s", config.label, where)
        try:
            conn = await self.pool.acquire(fresh=reconnect)
        except OSError as exc:
            failure = classify_exception(exc)
            verb = "reconnect" if reconnect else "connect"
            text = f"could not {verb} to {where}: {failure.text}"
            if reconnect:
                logger.warning("%s: %s", config.label, text)
            return None, (text, failure, exc)
        if reconnect:
            policy.reconnected()
        return conn, None


class _Stop:
    """Where a :class:`_Pump` handed back to the worker: either the last transaction it
    ran (``attempt``, with the message that followed it), or a message whose envelope
    replies need the general path (``sent``, already settled)."""

    __slots__ = ("attempt", "follow", "following", "index", "sent")

    def __init__(
        self,
        index: int,
        *,
        sent: Sent | None = None,
        attempt: Attempt | None = None,
        follow: int | None = None,
        following: Sent | None = None,
    ) -> None:
        self.index = index
        self.sent = sent
        self.attempt = attempt
        self.follow = follow
        self.following = following


class _Pump:
    """Pipelined transactions driven from ``data_received`` while everything is normal.

    In the steady state of a pipelined batch each group of replies (to one message's data
    and to the next message's envelope) is handled as it arrives: apply it, write the next
    message's data with the envelope after it, wait for the next group. The worker's
    coroutine is not woken per message. Anything else (a refusal, RSET, a lost session,
    a full socket buffer, a streamed message, the end of the queue) stops the pump and
    hands that transaction back to the worker, which goes on with
    :meth:`Connection.transact`: the same sans-IO steps, never a second set of rules.
    """

    def __init__(self, batch: _Batch, conn: Connection, policy: ReconnectPolicy) -> None:
        self.batch = batch
        self.conn = conn
        self.policy = policy
        self.wire = conn.wire
        self.stop: _Stop | None = None
        self.error: BaseException | None = None
        # the transaction in flight: its index, result, the message after it, its envelope
        self.index = -1
        self.result: DeliveryResult | None = None
        self.follow: int | None = None
        self.ahead: _Ahead | None = None

    async def run(self, index: int, sent: Sent) -> _Stop:
        wire = self.wire
        if self.step(index, sent):
            wire.pump = self
            try:
                while self.stop is None:
                    if len(wire.replies) >= wire.wanted:
                        self.ready()
                    elif wire.closed:  # fewer replies than wanted: the session ended
                        self.complete(wire.take(wire.wanted))
                    else:  # woken for nothing (e.g. resume_writing): wait on
                        waiter = wire.waiter = wire.loop.create_future()
                        try:
                            await waiter
                        finally:
                            wire.waiter = None
            finally:
                wire.pump = None
        if self.error is not None:
            raise self.error
        assert self.stop is not None
        return self.stop

    def ready(self) -> None:
        """The wanted replies are in: go through as many transactions as they allow."""
        wire = self.wire
        try:
            while self.stop is None and len(wire.replies) >= wire.wanted:
                self.complete(wire.take(wire.wanted))
        except BaseException as exc:  # never into the event loop: the worker raises it
            self.error = exc
            self.stop = _Stop(self.index)
        waiter = wire.waiter
        if self.stop is not None and waiter is not None and not waiter.done():
            waiter.set_result(None)

    def complete(self, got: list[Reply]) -> None:
        """Apply the replies to the data in flight, then start the message after it."""
        assert self.result is not None
        attempt, following = self.conn.data_done(self.result, got, self.ahead)
        if attempt.lost or following is None:
            self.stop = _Stop(self.index, attempt=attempt, follow=self.follow, following=following)
            return
        assert self.follow is not None
        self.batch.settled(self.index, attempt.result)
        if attempt.result.sent:
            self.policy.delivered()
        self.step(self.follow, following)

    def step(self, index: int, sent: Sent) -> bool:
        """Settle ``index``'s envelope replies; if all is normal write its data and the
        next envelope and return True, else stop."""
        conn, batch, wire = self.conn, self.batch, self.wire
        item = batch.items[index]
        sent.outcome = settle(
            sent.result, item.sender, sent.replies, expected=sent.expected, cause=wire.error
        )
        if not sent.outcome.send_data or item.stream is not None or wire._paused or wire.closed:
            self.stop = _Stop(index, sent=sent)
            return False
        follow = batch._follow(conn)  # counts the transactions before this one, as transact
        conn.transactions += 1
        ahead = conn.write_data(item, batch.items[follow] if follow is not None else None)
        if follow is not None and ahead is None:
            batch.queue.appendleft(follow)  # its envelope was not sent
            follow = None
        self.index, self.result, self.follow, self.ahead = index, sent.result, follow, ahead
        wire.wanted = ahead.wanted if ahead is not None else 1
        wire.arm(conn.config.data_timeout)
        batch.prime()
        return True


async def send_batch(
    pool: Pool,
    items: list[Item],
    on_result: Callable[[int, DeliveryResult], None] | None = None,
) -> list[DeliveryResult]:
    """Send every item over the pool; one result per item, in order.

    ``on_result(index, result)``, when given, is called on the pool's loop as soon as
    each item's result is final (the spool worker records outcomes while the batch goes
    on); it must be quick and must not raise.
    """
    batch = _Batch(pool, items, on_result)
    workers = min(pool.config.max_connections, len(items))
    if workers == 1:
        await batch.worker()
    else:
        await asyncio.gather(*(batch.worker() for _ in range(workers)))
    results = batch.results
    if batch.queue or any(r is None for r in results):
        problem = batch.problem
        assert problem is not None
        for index, result in enumerate(results):
            if result is None:
                results[index] = result = unattempted(items[index], *problem)
                if on_result is not None:
                    on_result(index, result)
    return [r for r in results if r is not None]


# -- the private event loop of the sync API -------------------------------------------------


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
