"""One SMTP session: greeting, EHLO, STARTTLS, AUTH, then mail transactions.

A :class:`Session` drives a :class:`~mailpost._smtp.wire.Wire`: greeting, EHLO,
STARTTLS (never falling back to cleartext), AUTH, then mail transactions. The reply
parsing and the meaning of every reply live in the sans-IO :mod:`mailpost._smtp.protocol`;
this module only writes command bytes (one ``writelines`` per pipelined group) and waits
for replies, each wait bounded by a timeout. An :class:`Item` is one message for the wire,
an :class:`Attempt` one transaction's outcome.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost._smtp.envelope import LINE_DOT, data_parts, needs_smtputf8, plan_for
from mailpost._smtp.protocol import (
    Outcome,
    Reply,
    ReplyParser,
    auth_login_steps,
    auth_plain,
    fail,
    fail_smtputf8,
    mail_command,
    new_result,
    parse_ehlo,
    rcpt_command,
    refuse_non_ascii,
    settle,
    settle_data,
)
from mailpost._smtp.ratelimit import RateLimit
from mailpost._smtp.replies import Failure, classify_exception
from mailpost._smtp.wire import Wire
from mailpost.message import StreamedMessage

__all__ = [
    "Ahead",
    "Attempt",
    "ClientConfig",
    "Item",
    "Sent",
    "Session",
    "composition_failed",
    "open_session",
]

logger = logging.getLogger("mailpost.smtp")

#: RFC 5321 section 4.5.3.2 minimums, used when no timeout is configured at all.
DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_GREETING_TIMEOUT = 300.0
DEFAULT_COMMAND_TIMEOUT = 300.0
DEFAULT_DATA_TIMEOUT = 600.0


@dataclass(frozen=True)
class ClientConfig:
    """Everything a session needs, resolved once by the backend."""

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
    if the session it is about to go on offers 8BITMIME; until then ``data`` is empty.
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
        "parts",
        "planned",
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
        #: Worked out ahead by :meth:`Session.plan` (the session's extensions, the result,
        #: the envelope lines), and the dot-stuffed data with its end, once that plan is used.
        self.planned: (
            tuple[dict[str, str], DeliveryResult, list[bytes], tuple[bytes, bytes]] | None
        ) = None
        self.parts: tuple[bytes, bytes] | None = None
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
        self.parts = None

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
    is the documented ack-lost duplicate, same Message-ID). ``usable``: the session
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


class Ahead:
    """The next transaction's envelope, written after a message's data: its result and
    how many commands (hence replies) it was."""

    __slots__ = ("commands", "result", "wanted")

    def __init__(self, result: DeliveryResult, commands: int) -> None:
        self.result = result
        self.commands = commands
        self.wanted = commands + 1  # with the reply to the data before it


def composition_failed(item: Item) -> DeliveryResult:
    """The result for a message that could not be composed: not sent, not retryable."""
    return DeliveryResult(
        message_id=item.message_id,
        recipients=[RecipientStatus(a, "unattempted") for a in item.recipients],
        error=f"message could not be composed: {item.error}",
        attempted=False,
        exception=item.error,
    )


#: The protocol :func:`open_session` makes sessions with (a module attribute, so a test
#: can substitute a recording subclass).
_Wire = Wire


class Session:
    """One SMTP session, ready for mail transactions."""

    def __init__(self, wire: Wire, config: ClientConfig) -> None:
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
        """Whether the session still answers (health check of an idle session)."""
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

    def plan(self, item: Item) -> None:
        """Compose ``item`` and work out its envelope and dot-stuffed data now, while the
        server works on the message before it: when its turn comes, writing it is only a
        write (the time between a reply and the next write is the round trip's share that
        is ours). The plan is used by a session whose extensions equal this one's; any
        other works the message out again."""
        if item.planned is not None or item.stream is not None:
            return
        result, lines = self._envelope(item)
        if lines is not None and item.stream is None:
            item.planned = (self.extensions, result, lines, data_parts(item.data))

    def _envelope(self, item: Item) -> tuple[DeliveryResult, list[bytes] | None]:
        """A new result for ``item`` and its MAIL/RCPT/DATA lines (None: not to be sent)."""
        planned = item.planned
        if planned is not None:
            item.planned = None
            if planned[0] == self.extensions:
                item.parts = planned[3]
                return planned[1], planned[2]
        item.parts = None
        if not item.ready("8bitmime" in self.extensions):
            return composition_failed(item), None
        if item.eight_bit and "8bitmime" not in self.extensions and item.render is not None:
            item.data, item.message_id = item.render()
            item.eight_bit = False
        result = new_result(item.message_id, item.recipients)
        stream = item.stream
        if stream is None:
            head = item.data
            size, ascii = len(head), head.isascii()
        else:
            head, size, ascii = stream.head, stream.size, stream.isascii()
        recipients = item.recipients
        utf8 = needs_smtputf8(item.sender, recipients, ascii, head)
        plan = plan_for(size, ascii, self.extensions, utf8)
        if plan.no_smtputf8 and not needs_smtputf8(item.sender, (), ascii, head):
            # Only envelope recipients (Bcc) are not ASCII: the message itself can go.
            narrow = [r for r in recipients if r.isascii()]
            if narrow:
                refuse_non_ascii(result)
                recipients = narrow
                plan = plan_for(size, ascii, self.extensions)
        if plan.problem is not None:
            if plan.no_smtputf8:
                fail_smtputf8(result, item.sender, f"{self.config.host}:{self.config.port}")
            else:
                exc = smtplib.SMTPException(plan.problem)
                fail(result, Failure(plan.problem), plan.problem, exc)
            return result, None
        lines = [mail_command(item.sender, plan.options)]
        lines += [rcpt_command(r) for r in recipients]
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

    def write_data(self, item: Item, follow: Item | None) -> Ahead | None:
        """Write ``item``'s data, then ``follow``'s envelope when there is one to send."""
        parts = item.parts
        stuffed, end = data_parts(item.data) if parts is None else parts
        if follow is None:
            self.wire.writelines([stuffed, end])
            return None
        next_result, lines = self._envelope(follow)
        if lines is None:
            self.wire.writelines([stuffed, end])
            return None
        self.wire.writelines([stuffed, end, *lines])
        return Ahead(next_result, len(lines))

    def data_done(
        self, result: DeliveryResult, got: list[Reply], ahead: Ahead | None
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


async def open_session(config: ClientConfig) -> Session:
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
    session = Session(wire, config)
    try:
        await session.greet()
        await session.hello()
        if config.use_tls:
            await session.starttls()
            await session.hello()
        if config.username and config.password:
            await session.login()
    except BaseException:
        session.abort()
        raise
    return session
