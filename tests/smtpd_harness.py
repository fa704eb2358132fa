"""A real SMTP server inside the test process: aiosmtpd on 127.0.0.1, a free port.

:class:`SMTPServer` records what it received (sessions, every command, MAIL parameters,
RCPT replies, the DATA bytes) and misbehaves on request through :class:`Faults`: refuse
recipients, answer 4xx/5xx at MAIL / RCPT / DATA, hang up in the middle of DATA, answer
421 after N messages, refuse new sessions or refuse them at the greeting, hide EHLO
extensions. Those knobs count commands over the server's life; a :class:`Faults` subclass
can instead decide per message (by the number in its Subject, ``msg <n>``) and per try,
so "refuse the first try of every fifth message" stays true however the client batches,
retries or crashes: refuse or defer a recipient, answer or hang up at the end of DATA,
store a message and lose its 250 (:data:`ACK_LOST`), reply late. It speaks STARTTLS or
implicit TLS with trustme certificates and can require AUTH or a client certificate.

:class:`LoopServer` is the event-loop thread, start/stop and shutdown every server here
shares (a new test server subclasses it rather than writing its own).
:class:`SilentServer` accepts TCP connections and never answers (timeouts).
Every loop is bounded: sessions time out after ``session_timeout`` seconds and
:meth:`SMTPServer.stop` aborts whatever is still connected.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from helpers import self_signed_pem

HOST = "127.0.0.1"

#: A reply that makes the server hang up without answering (a dropped connection).
DROP = "__drop__"
#: :meth:`Faults.data`: store the message and answer 250.
ACCEPT = "__accept__"
#: :meth:`Faults.data`: store the message, then hang up before the 250 reaches the client.
ACK_LOST = "__ack_lost__"

_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 5.0
_SUBJECT = re.compile(rb"^Subject: msg (\d+)\r?$", re.MULTILINE)
_MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>\r\n]+>)\r?$", re.MULTILINE | re.IGNORECASE)


def _head(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def message_number(data: bytes) -> int:
    """The ``n`` of a ``Subject: msg <n>`` header in ``data``, or -1."""
    match = _SUBJECT.search(_head(data))
    return int(match.group(1)) if match else -1


@dataclass
class Received:
    """One message the server accepted (250 after DATA)."""

    session: int  # 1-based number of the connection it arrived on
    mail_from: str
    mail_options: list[str]
    rcpt_tos: list[str]  # the recipients accepted at RCPT TO
    data: bytes  # the DATA content, dot-unstuffed, as the client meant it
    tls: bool
    login: str | None  # AUTH user name, if the session authenticated
    peer_cert: dict[str, Any] | None  # the client certificate, if one was presented

    @property
    def number(self) -> int:
        """The message's number (its Subject is ``msg <n>``), or -1."""
        return message_number(self.data)

    @property
    def message_id(self) -> str:
        """The Message-ID header with its angle brackets, or "" without one."""
        match = _MESSAGE_ID.search(_head(self.data))
        return match.group(1).decode() if match else ""


@dataclass
class Command:
    """One command line the server received."""

    session: int
    verb: str
    arg: str | None
    tls: bool
    buffered: bool = False  # more client input was already waiting (sent pipelined)


@dataclass
class Faults:
    """How the server misbehaves. Counters (``n``) are 1-based over the server's life."""

    refuse: dict[str, str] = field(default_factory=dict)  # RCPT address -> reply
    mail_replies: dict[int, str] = field(default_factory=dict)  # n-th MAIL -> reply
    data_command_replies: dict[int, str] = field(default_factory=dict)  # n-th DATA -> reply
    data_replies: dict[int, str] = field(default_factory=dict)  # n-th end of DATA -> reply
    close_after: int | None = None  # 421 at MAIL after this many messages on a connection
    max_sessions: int | None = None  # later connections are closed before the greeting
    hide_extensions: set[str] = field(default_factory=set)  # EHLO keywords not to announce
    pipelining: bool = False  # announce PIPELINING (RFC 2920); aiosmtpd reads in order
    mail_delay: float = 0.0  # seconds to wait before answering MAIL (a slow server)
    greeting: str | None = None  # a reply such as "554 ..." instead of the 220 greeting

    # Per message: override in a subclass. ``tries`` is 1-based; the knobs above go first.

    def rcpt(self, address: str, tries: int) -> str | None:
        """The reply to the ``tries``-th RCPT of ``address`` if refused, or None to accept."""
        return None

    def data(self, number: int, tries: int) -> str:
        """At the ``tries``-th end of DATA of message ``number`` (-1 without a ``msg <n>``
        Subject): :data:`ACCEPT`, :data:`ACK_LOST`, :data:`DROP` or a refusing reply."""
        return ACCEPT

    def delay(self, number: int, tries: int) -> float:
        """Seconds to hold back the 250 of a stored message (bounded by the session timeout)."""
        return 0.0


class _Recorder:
    """Everything the server saw, shared by its sessions (only the loop thread writes)."""

    def __init__(self) -> None:
        self.sessions = 0
        self.messages: list[Received] = []
        self.commands: list[Command] = []
        self.rcpt_replies: list[tuple[int, str, str]] = []  # (session, address, reply)
        self.rcpt_tries: Counter[str] = Counter()  # address -> RCPT commands for it
        self.data_tries: Counter[int] = Counter()  # message number -> ends of DATA for it
        self.auth_tries: list[tuple[str, bool]] = []  # (user name, succeeded)
        self.mail_count = 0
        self.data_command_count = 0
        self.data_count = 0


class _Session(SMTP):
    """aiosmtpd's protocol, plus a command log, DROP / 421 hang-ups and DATA faults."""

    def __init__(self, owner: SMTPServer, number: int, **kwargs: Any) -> None:
        super().__init__(owner.handler, **kwargs)
        self.owner = owner
        self.number = number
        self.delivered_here = 0
        self._smtp_methods = {
            verb: self._logged(verb, method) for verb, method in self._smtp_methods.items()
        }

    @property
    def tls_active(self) -> bool:
        return self.owner.implicit_tls or self._tls_protocol is not None

    def _logged(self, verb: str, method: Callable[[str | None], Any]) -> Any:
        async def run(arg: str | None) -> None:
            rec = self.owner.recorder
            reader = getattr(self, "_reader", None)
            waiting = bool(getattr(reader, "_buffer", b""))
            rec.commands.append(Command(self.number, verb, arg, self.tls_active, waiting))
            if verb == "DATA" and self.envelope is not None and self.envelope.rcpt_tos:
                rec.data_command_count += 1
                reply = self.owner.faults.data_command_replies.get(rec.data_command_count)
                if reply is not None:
                    await self.push(reply)
                    return
            await method(arg)

        return run

    async def push(self, status: Any) -> None:
        if status == DROP:
            self._hang_up()
            return
        await super().push(status)
        text = status.decode() if isinstance(status, bytes) else str(status)
        if text.startswith("421"):
            self._hang_up(graceful=True)

    def _hang_up(self, *, graceful: bool = False) -> None:
        transport = self.transport
        if transport is None:
            return
        if graceful:
            transport.close()
        else:
            transport.abort()  # type: ignore[attr-defined]
            if self._original_transport is not None:
                self._original_transport.abort()  # type: ignore[attr-defined]


class _Handler:
    """aiosmtpd hooks: record, and apply the owner's faults."""

    def __init__(self, owner: SMTPServer) -> None:
        self.owner = owner

    async def handle_EHLO(
        self, server: _Session, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        hidden = {k.upper() for k in self.owner.faults.hide_extensions}
        kept = [line for line in responses if line[4:].split(" ")[0].upper() not in hidden]
        if self.owner.faults.pipelining:
            kept.insert(len(kept) - 1, "250-PIPELINING")
        return kept

    async def handle_MAIL(
        self, server: _Session, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        rec, faults = self.owner.recorder, self.owner.faults
        rec.mail_count += 1
        if faults.mail_delay:
            await asyncio.sleep(min(faults.mail_delay, self.owner.session_timeout))
        if faults.close_after is not None and server.delivered_here >= faults.close_after:
            return "421 4.7.0 Too many messages on this connection, closing"
        reply = faults.mail_replies.get(rec.mail_count)
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: _Session, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        rec, faults = self.owner.recorder, self.owner.faults
        rec.rcpt_tries[address] += 1
        reply = faults.refuse.get(address.lower())
        if reply is None:
            reply = faults.rcpt(address, rec.rcpt_tries[address])
        rec.rcpt_replies.append((server.number, address, reply or "250"))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: _Session, session: Any, envelope: Any) -> str:
        rec, faults = self.owner.recorder, self.owner.faults
        rec.data_count += 1
        data = bytes(envelope.original_content)
        number = message_number(data)
        rec.data_tries[number] += 1
        tries = rec.data_tries[number]
        action = faults.data_replies.get(rec.data_count)
        if action is None:
            action = faults.data(number, tries)
        if action not in (ACCEPT, ACK_LOST):
            return action
        auth = session.auth_data
        transport = server.transport
        rec.messages.append(
            Received(
                session=server.number,
                mail_from=envelope.mail_from,
                mail_options=list(envelope.mail_options),
                rcpt_tos=list(envelope.rcpt_tos),
                data=data,
                tls=server.tls_active,
                login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
                peer_cert=transport.get_extra_info("peercert") if transport else None,
            )
        )
        server.delivered_here += 1
        if action == ACK_LOST:
            return DROP
        pause = faults.delay(number, tries)
        if pause:
            await asyncio.sleep(min(pause, self.owner.session_timeout))
        return f"250 2.0.0 OK: queued as m{len(rec.messages)}"


class _Refuse(asyncio.Protocol):
    """A connection over ``max_sessions``: closed before any greeting."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


class _Unwelcome(asyncio.Protocol):
    """A session refused at the greeting (RFC 5321 4.3.1): every command but QUIT gets 503."""

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(f"{self.greeting}\r\n".encode())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        for line in data.splitlines():
            if line.strip().upper() == b"QUIT":
                self.transport.write(b"221 2.0.0 Bye\r\n")
                self.transport.close()
                return
            self.transport.write(b"503 5.5.1 No service\r\n")


_Server = TypeVar("_Server", bound="LoopServer")


class LoopServer:
    """A TCP server on 127.0.0.1 (a free port) run by its own event-loop thread; use as a
    context manager. Subclasses give ``_factory()`` (the protocol for one connection) and
    ``_hang_up(session)`` (how shutdown drops a connection still open)."""

    thread_name = "smtpd-harness"

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._sessions: list[asyncio.Protocol] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _factory(self) -> asyncio.Protocol:
        raise NotImplementedError

    def _hang_up(self, session: asyncio.Protocol) -> None:
        raise NotImplementedError

    def _listen_tls(self) -> ssl.SSLContext | None:
        """The context for TLS from the first byte (SMTPS), or None for plain TCP."""
        return None

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                loop.create_server(self._factory, HOST, 0, ssl=self._listen_tls())
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for session in self._sessions:
            self._hang_up(session)
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), _STOP_TIMEOUT)

    def start(self: _Server) -> _Server:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError(f"test server {self.thread_name} did not start")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError(f"test server {self.thread_name} did not stop")

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SMTPServer(LoopServer):
    """An aiosmtpd server on its own event-loop thread; use as a context manager.

    ``starttls``: an SSL context to offer STARTTLS with. ``implicit_tls``: an SSL context
    for TLS from the first byte (SMTPS). ``users``: user name -> password, and AUTH is then
    required (over TLS, as aiosmtpd insists).
    """

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
        faults: Faults | None = None,
        session_timeout: float = 10.0,
        data_size_limit: int = 33554432,
    ) -> None:
        super().__init__()
        self.starttls_context = starttls
        self.implicit_context = implicit_tls
        self.implicit_tls = implicit_tls is not None
        self.users = users
        self.faults = faults or Faults()
        self.session_timeout = session_timeout
        self.data_size_limit = data_size_limit
        self.recorder = _Recorder()
        self.handler = _Handler(self)

    # -- what the server saw ----------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages

    @property
    def sessions(self) -> int:
        return self.recorder.sessions

    @property
    def commands(self) -> list[Command]:
        return self.recorder.commands

    def verbs(self) -> list[str]:
        return [c.verb for c in self.recorder.commands]

    def deliveries(self) -> Counter[tuple[str, str]]:
        """(Message-ID, recipient) -> how many copies the server accepted."""
        out: Counter[tuple[str, str]] = Counter()
        for message in list(self.recorder.messages):
            for rcpt in message.rcpt_tos:
                out[(message.message_id, rcpt)] += 1
        return out

    def rcpt_count(self, address: str) -> int:
        """How many RCPT commands named ``address`` (refused or not)."""
        return self.recorder.rcpt_tries[address]

    @property
    def tls(self) -> bool:
        return self.starttls_context is not None or self.implicit_tls

    # -- lifecycle ----------------------------------------------------------------------

    def _factory(self) -> asyncio.Protocol:
        rec = self.recorder
        max_sessions = self.faults.max_sessions
        if max_sessions is not None and rec.sessions >= max_sessions:
            return _Refuse()
        rec.sessions += 1
        if self.faults.greeting is not None:
            return _Unwelcome(self.faults.greeting)
        kwargs: dict[str, Any] = {
            "hostname": "mx.test",
            "enable_SMTPUTF8": True,
            "timeout": self.session_timeout,
            "data_size_limit": self.data_size_limit,
            "loop": self._loop,
            "tls_context": self.starttls_context,
            "require_starttls": False,
        }
        if self.users is not None:
            kwargs.update(
                auth_required=True, auth_require_tls=True, authenticator=self._authenticate
            )
        session = _Session(self, rec.sessions, **kwargs)
        self._sessions.append(session)
        return session

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.users is not None
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = self.users.get(user) == password
        self.recorder.auth_tries.append((user, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _listen_tls(self) -> ssl.SSLContext | None:
        return self.implicit_context

    def _hang_up(self, session: asyncio.Protocol) -> None:
        if isinstance(session, _Session):
            session._hang_up()


class SilentServer:
    """Accepts TCP connections (in the kernel's backlog) and never sends a byte."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((HOST, 0))
        self._sock.listen(8)
        self.host = HOST
        self.port: int = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()


def unused_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


class TLSMaterial:
    """A trustme CA, a server certificate for 127.0.0.1/localhost and a client cert."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.server_cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.client_cert = self.ca.issue_cert("client.example.com")
        self.other_host_cert = self.ca.issue_cert("mail.example.net")
        self.ca_pem = self.ca.cert_pem.bytes().decode("ascii")
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.client_combined = directory / "client-key-and-cert.pem"
        self.client_cert.private_key_and_cert_chain_pem.write_to_path(str(self.client_combined))
        self.client_certfile = directory / "client-cert.pem"
        self.client_keyfile = directory / "client-key.pem"
        self.client_cert.cert_chain_pems[0].write_to_path(str(self.client_certfile))
        self.client_cert.private_key_pem.write_to_path(str(self.client_keyfile))
        self.self_signed_certfile, self.self_signed_keyfile = _self_signed(directory)

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(context)
        return context

    def wrong_host_context(self) -> ssl.SSLContext:
        """A certificate from the trusted CA, but for another host name."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.other_host_cert.configure_cert(context)
        return context

    def self_signed_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.self_signed_certfile, self.self_signed_keyfile)
        return context


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (no CA anyone trusts)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
    certfile, keyfile = directory / "self-signed.pem", directory / "self-signed.key"
    certfile.write_bytes(self_signed_pem(key, "self-signed.test", names))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


class _SinkSession(asyncio.Protocol):
    """A minimal SMTP server session that counts message bytes and keeps none of them."""

    def __init__(self, owner: SinkServer) -> None:
        self.owner = owner
        self.buffer = b""
        self.in_data = False
        self.size = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.owner._sessions.append(self)
        transport.write(b"220 sink ESMTP\r\n")
        self.timer = asyncio.get_running_loop().call_later(60, transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.in_data:
            tail = self.buffer + data
            end = tail.find(b"\r\n.\r\n")
            if end < 0:
                self.size += len(data)
                self.buffer = tail[-4:]
                return
            self.size += len(data) - (len(tail) - end - 5)
            self.owner.sizes.append(self.size)
            self.in_data, self.size = False, 0
            self.transport.write(b"250 2.0.0 counted\r\n")
            data, self.buffer = tail[end + 5 :], b""
        self.buffer += data
        while b"\r\n" in self.buffer and not self.in_data:
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.transport.write(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE\r\n")
            elif verb == b"DATA":
                self.transport.write(b"354 go ahead\r\n")
                self.in_data, rest, self.buffer = True, self.buffer, b""
                if rest:
                    self.data_received(rest)
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                self.transport.write(b"250 2.0.0 ok\r\n")


class SinkServer(SMTPServer):
    """Accepts any mail and stores only each message's size (for big-message tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def _factory(self) -> asyncio.Protocol:
        return _SinkSession(self)

    def _hang_up(self, session: asyncio.Protocol) -> None:
        if isinstance(session, _SinkSession) and session.transport is not None:
            session.transport.abort()
