"""The native async API on uvloop, the event loop uvicorn (FastAPI's server) runs apps on
when it is installed: pooled PIPELINING batches, STARTTLS through uvloop's ``start_tls``,
untrusted certificates, and the reconnect-and-retry rules after a dropped connection or a
421. Most scenarios run once on asyncio's own loop and once on uvloop, each against a
fresh real aiosmtpd server, and uvloop must give the same delivery records.

Regression: uvloop's transports are not :class:`asyncio.Transport` subclasses, and an
``isinstance`` assertion in the engine's ``connection_made`` made every send on uvloop time
out. Only the client runs on uvloop: the test server keeps the asyncio loop of its thread
(:mod:`smtpd_harness`), and no event loop policy is installed.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import email.parser
import email.policy
import re
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

import mailpost
from helpers import make_message as make
from mailpost import DeliveryError, DeliveryResult, EmailMessage
from mailpost._smtp import session as engine
from smtp_fixtures import SMTP_BACKEND, mailer_entry
from smtpd_harness import DROP, Faults, SMTPServer, TLSMaterial

uvloop = pytest.importorskip("uvloop", reason="uvloop does not support this platform")

T = TypeVar("T")

#: Bounds a whole scenario; each client step is bounded by the mailer's ``timeout`` (5 s).
SCENARIO_TIMEOUT = 20.0

#: How long the connections of a scenario may take to close once it is over.
CLOSE_TIMEOUT = 3.0

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}

_QUEUE_ID = re.compile(r"queued as m\d+")


# -- running a coroutine on a chosen loop -----------------------------------------------------


class RecordingWire(engine._Wire):
    """The engine's protocol (``engine._Wire``, whose ``connection_made`` once rejected
    uvloop's transports), also noting the transport it was handed and when it was lost."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sessions: Sessions) -> None:
        super().__init__(loop)
        self.made_with: type | None = None
        self.socket_transport: asyncio.BaseTransport | None = None
        self.gone: asyncio.Future[None] = loop.create_future()
        sessions.wires.append(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made_with = type(transport)
        self.socket_transport = transport
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.gone.done():
            self.gone.set_result(None)

    @property
    def starttls_failed(self) -> bool:
        """STARTTLS began (the loop put its TLS layer between the socket and this protocol)
        and did not finish. The loop then closes the socket itself, and its TLS layer,
        never established, need not pass ``connection_lost`` on (asyncio on Python 3.10)."""
        raw = self.socket_transport
        return raw is not None and self.transport is raw and raw.get_protocol() is not self


class Sessions:
    """Every connection the engine makes (see :class:`RecordingWire`)."""

    def __init__(self) -> None:
        self.wires: list[RecordingWire] = []

    @property
    def transports(self) -> list[type | None]:
        """The class of each connection's transport, as the event loop handed it over."""
        return [wire.made_with for wire in self.wires]

    def clear(self) -> None:
        self.wires.clear()

    async def all_gone(self, after: BaseException | None = None) -> None:
        """Check that every connection made on this loop has been lost (closed).

        ``Connection.quit()`` waits for ``connection_lost``: over TLS the close_notify
        exchange needs the loop, and a loop closed right after ``asend_messages`` must not
        find a socket still open (a ResourceWarning on asyncio's loop; on uvloop's,
        ``OSError: [Errno 16]`` from ``loop.close()``). Bounded: a connection that never
        closes fails the test.
        """
        running = asyncio.get_running_loop()
        pending = [
            w.gone
            for w in self.wires
            if w.loop is running and not w.gone.done() and not w.starttls_failed
        ]
        if pending:
            _, never = await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)
            cause = "" if after is None else f" after {after!r}"
            assert not never, f"{len(never)} SMTP connection(s) still open{cause}"


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> Sessions:
    """Record every connection the engine makes, from its protocol's point of view."""
    seen = Sessions()
    monkeypatch.setattr(engine, "_Wire", lambda loop: RecordingWire(loop, seen))
    return seen


def bounded(
    loop: str, main: Callable[[], Awaitable[T]], sessions: Sessions
) -> Callable[[], Awaitable[T]]:
    """``main`` checked to run on ``loop``, bounded in time, and followed by the closing of
    every connection it made."""

    async def run_main() -> T:
        running = asyncio.get_running_loop()
        assert isinstance(running, uvloop.Loop) is (loop == "uvloop"), running
        try:
            result = await asyncio.wait_for(main(), SCENARIO_TIMEOUT)
        except BaseException as exc:
            await sessions.all_gone(after=exc)
            raise
        await sessions.all_gone()
        return result

    return run_main


def run(loop: str, main: Callable[[], Awaitable[T]], sessions: Sessions) -> T:
    """``main()`` on a new ``loop`` ("asyncio" or "uvloop"), then the loop closed."""
    factory = LOOPS[loop]
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(bounded(loop, main, sessions)())
    return run_by_hand(factory, bounded(loop, main, sessions))


def run_by_hand(
    factory: Callable[[], asyncio.AbstractEventLoop], main: Callable[[], Awaitable[T]]
) -> T:
    """What ``asyncio.Runner(loop_factory=...)`` does, for Python 3.10: no ``uvloop.install()``
    and no event loop policy, just a loop made, used and closed."""
    loop = factory()
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


# -- scenarios: one run on each loop, then compared -------------------------------------------


def header_of(data: bytes, name: str) -> str:
    return str(email.parser.BytesParser(policy=email.policy.default).parsebytes(data)[name])


def subject_of(data: bytes) -> str:
    return header_of(data, "Subject")


def message_id_of(data: bytes) -> str:
    return header_of(data, "Message-ID")


def transport_family(transport_class: type | None) -> str:
    """Whose transport the engine was handed: "asyncio" or "uvloop"."""
    assert transport_class is not None, "a connection was never made"
    return transport_class.__module__.split(".")[0]


@dataclass
class Outcome:
    """One run of a scenario: what ``asend_messages`` returned or raised, what the server
    stored, and the class of each session's transport as the engine opened it."""

    loop: str
    server: SMTPServer
    messages: list[EmailMessage]
    returned: int | None
    error: DeliveryError | None
    transports: list[type | None]

    def _anonymous(self, text: str) -> str:
        return text.replace(f"{self.server.host}:{self.server.port}", "SERVER")

    @property
    def records(self) -> list[DeliveryResult]:
        """Each message's ``delivery`` without what differs between any two runs: the
        Message-ID, the server's queue id, its port."""
        records = []
        for msg in self.messages:
            result = msg.delivery
            assert result is not None
            response = result.response
            if response is not None:
                response = (response[0], _QUEUE_ID.sub("queued as m?", response[1]))
            error = None if result.error is None else self._anonymous(result.error)
            records.append(
                dataclasses.replace(result, message_id=None, response=response, error=error)
            )
        return records

    @property
    def summary(self) -> str | None:
        return None if self.error is None else self._anonymous(str(self.error))

    @property
    def stored(self) -> list[tuple[int, str, list[str]]]:
        """(session, subject, recipients) of each message the server took, in order."""
        return [(m.session, subject_of(m.data), m.rcpt_tos) for m in self.server.messages]

    @property
    def stored_anywhere(self) -> list[tuple[str, list[str]]]:
        """The messages the server took, whichever session they came on."""
        return sorted((subject, rcpts) for _, subject, rcpts in self.stored)

    def verbs_of(self, session: int) -> list[str]:
        return [c.verb for c in self.server.commands if c.session == session]

    def nothing_in_the_clear(self) -> bool:
        return not any(
            c.verb in {"MAIL", "RCPT", "DATA", "AUTH"} and not c.tls for c in self.server.commands
        )


Send = Callable[..., Outcome]


@pytest.fixture
def send_on(make_smtp_server: Callable[..., SMTPServer], sessions: Sessions) -> Send:
    """``send_on(loop, messages, faults=None, server=None, backend=None, **options)``: a new
    server (``Faults`` copied, ``server`` options), a mailer ``bulk`` for it with
    ``options``, and ``await mailers["bulk"].asend_messages(messages)`` on ``loop``."""

    def send(
        loop: str,
        messages: list[EmailMessage],
        *,
        faults: Faults | None = None,
        server: dict[str, Any] | None = None,
        backend: str | None = None,
        **options: Any,
    ) -> Outcome:
        smtpd = make_smtp_server(faults=copy.deepcopy(faults or Faults()), **(server or {}))
        mailpost.configure(MAILERS={"bulk": mailer_entry(smtpd, backend=backend, **options)})
        sessions.clear()

        async def main() -> int:
            return await mailpost.mailers["bulk"].asend_messages(messages)

        returned, error = None, None
        try:
            returned = run(loop, main, sessions)
        except DeliveryError as exc:
            error = exc
        return Outcome(loop, smtpd, messages, returned, error, sessions.transports)

    return send


def on_both_loops(
    send: Send, batch: Callable[[], list[EmailMessage]], **kwargs: Any
) -> tuple[Outcome, Outcome]:
    """The scenario on asyncio's loop, then on uvloop (each with a fresh server and fresh
    messages); check what must not depend on the loop, and return both runs."""
    reference, got = send("asyncio", batch(), **kwargs), send("uvloop", batch(), **kwargs)
    assert {transport_family(t) for t in reference.transports} <= {"asyncio"}
    assert {transport_family(t) for t in got.transports} <= {"uvloop"}
    assert len(got.transports) == len(reference.transports)
    assert got.returned == reference.returned
    assert got.summary == reference.summary
    assert got.records == reference.records
    assert got.stored_anywhere == reference.stored_anywhere
    assert got.server.sessions == reference.server.sessions
    if got.error is not None:
        assert got.error.results == [m.delivery for m in got.messages]
    return reference, got


# -- (1) pooled batches with PIPELINING -------------------------------------------------------


def test_a_pooled_pipelined_batch_on_uvloop_is_delivered_as_on_asyncio(send_on: Send) -> None:
    """60 messages, composed on the loop as they are sent, over 4 pipelining sessions."""
    _, got = on_both_loops(
        send_on,
        lambda: [make(n, to=[f"a{n}@example.com", f"b{n}@example.com"]) for n in range(60)],
        faults=Faults(pipelining=True),
        max_connections=4,
    )
    assert got.returned == 60
    assert got.stored_anywhere == sorted(
        (f"Message {n}", [f"a{n}@example.com", f"b{n}@example.com"]) for n in range(60)
    )
    assert 1 < got.server.sessions <= 4
    assert len(got.transports) == got.server.sessions
    assert got.server.verbs().count("QUIT") == got.server.sessions
    mails = [c for c in got.server.commands if c.verb == "MAIL"]
    assert len(mails) == 60
    assert all(c.buffered for c in mails)  # RCPT and DATA came in the same write
    message_ids = {subject_of(m.data): message_id_of(m.data) for m in got.server.messages}
    for msg in got.messages:
        assert msg.delivery is not None
        assert msg.delivery.ok
        assert msg.delivery.mailer == "bulk"
        assert msg.delivery.message_id == message_ids[msg.subject]
        assert [(r.address, r.status, r.code) for r in msg.delivery.recipients] == [
            (address, "accepted", 250) for address in msg.to
        ]


def test_pipelined_refusals_on_uvloop_are_recorded_per_recipient_as_on_asyncio(
    send_on: Send,
) -> None:
    def batch() -> list[EmailMessage]:
        return [
            make(0, to=["good@example.com", "bad@example.com", "busy@example.com"]),
            make(1, to=["bad@example.com", "busy@example.com"]),
            *(make(n) for n in range(2, 10)),
        ]

    faults = Faults(
        pipelining=True,
        refuse={"bad@example.com": "550 5.1.1 no such user", "busy@example.com": "450 4.2.1 busy"},
    )
    _, got = on_both_loops(send_on, batch, faults=faults, max_connections=2)
    assert got.error is not None
    mixed, nobody, *rest = got.error.results
    assert mixed.sent
    assert [(r.address, r.status, r.code, r.reply) for r in mixed.recipients] == [
        ("good@example.com", "accepted", 250, "2.1.5 Recipient OK"),
        ("bad@example.com", "refused", 550, "5.1.1 no such user"),
        ("busy@example.com", "refused", 450, "4.2.1 busy"),
    ]
    assert not mixed.retryable
    assert not nobody.sent
    assert [r.status for r in nobody.recipients] == ["refused", "refused"]
    assert nobody.retryable is False
    assert all(r.ok for r in rest)
    assert sorted(s for s, _ in got.stored_anywhere) == [
        f"Message {n}" for n in range(10) if n != 1
    ]


def test_asend_mail_and_asend_mass_mail_deliver_on_uvloop(
    make_smtp_server: Callable[..., SMTPServer], sessions: Sessions
) -> None:
    server = make_smtp_server(faults=Faults(pipelining=True))
    mailpost.configure(
        MAILERS={"default": mailer_entry(server), "bulk": mailer_entry(server, max_connections=2)}
    )

    async def main() -> tuple[int, int]:
        one = await mailpost.asend_mail(
            "Hello", "Body", "from@example.com", ["to@example.com", "cc@example.com"]
        )
        many = await mailpost.asend_mass_mail(
            [(f"Mass {n}", "Body", "from@example.com", [f"m{n}@example.com"]) for n in range(4)],
            using="bulk",
        )
        return one, many

    assert run("uvloop", main, sessions) == (1, 4)
    got = sorted((subject_of(m.data), m.rcpt_tos) for m in server.messages)
    assert got == [
        ("Hello", ["to@example.com", "cc@example.com"]),
        *((f"Mass {n}", [f"m{n}@example.com"]) for n in range(4)),
    ]
    assert len(sessions.transports) == server.sessions
    assert {transport_family(t) for t in sessions.transports} == {"uvloop"}
    assert server.verbs().count("QUIT") == server.sessions


# -- (2) TLS ----------------------------------------------------------------------------------


def test_starttls_on_uvloop_encrypts_every_pooled_session_as_on_asyncio(
    send_on: Send, trust_test_ca: TLSMaterial
) -> None:
    _, got = on_both_loops(
        send_on,
        lambda: [make(n) for n in range(6)],
        server={"starttls": trust_test_ca.server_context()},
        use_tls=True,
        max_connections=2,
    )
    assert got.returned == 6
    assert all(m.tls for m in got.server.messages)
    assert got.nothing_in_the_clear()
    assert got.server.sessions == 2
    for session in (1, 2):
        assert got.verbs_of(session)[:3] == ["EHLO", "STARTTLS", "EHLO"]
    assert len(got.transports) == 2  # both upgraded by uvloop's start_tls


def test_an_open_starttls_session_on_uvloop_serves_several_batches(
    make_smtp_server: Callable[..., SMTPServer], trust_test_ca: TLSMaterial, sessions: Sessions
) -> None:
    server = make_smtp_server(starttls=trust_test_ca.server_context())
    mailpost.configure(MAILERS={"bulk": mailer_entry(server, use_tls=True)})
    backend = mailpost.mailers["bulk"]

    async def main() -> tuple[str | None, int, int]:
        async with backend:
            pool = backend.connection
            assert pool is not None
            assert pool.loop is asyncio.get_running_loop()
            version = pool.tls_version  # ssl_object from uvloop's TLS transport
            first = await backend.asend_messages([make(1)])
            second = await backend.asend_messages([make(2), make(3)])
        return version, first, second

    version, first, second = run("uvloop", main, sessions)
    assert version in {"TLSv1.2", "TLSv1.3"}
    assert (first, second) == (1, 2)
    assert backend.connection is None
    assert server.sessions == 1
    assert server.verbs()[:3] == ["EHLO", "STARTTLS", "EHLO"]
    assert server.verbs()[-1] == "QUIT"
    assert [subject_of(m.data) for m in server.messages] == ["Message 1", "Message 2", "Message 3"]
    assert all(m.tls for m in server.messages)


def test_implicit_tls_on_uvloop_delivers_as_on_asyncio(
    send_on: Send, trust_test_ca: TLSMaterial
) -> None:
    _, got = on_both_loops(
        send_on,
        lambda: [make(1), make(2)],
        server={"implicit_tls": trust_test_ca.server_context()},
        use_ssl=True,
    )
    assert got.returned == 2
    assert all(m.tls for m in got.server.messages)
    assert "STARTTLS" not in got.server.verbs()


@pytest.mark.parametrize(
    ("certificate", "backend", "words"),
    [
        ("self-signed", None, "self-signed certificate"),
        ("self-signed", SMTP_BACKEND, "self-signed certificate"),
        ("test CA", SMTP_BACKEND, "TLS certificate verification failed"),
    ],
    ids=["self-signed", "self-signed-stock-backend", "untrusted-CA"],
)
def test_an_untrusted_certificate_is_refused_on_uvloop_as_on_asyncio(
    send_on: Send, trust_test_ca: TLSMaterial, certificate: str, backend: str | None, words: str
) -> None:
    """``backend=None``: the test backend, which trusts the test CA but not a self-signed
    certificate; the stock backend trusts neither."""
    context = (
        trust_test_ca.self_signed_context()
        if certificate == "self-signed"
        else trust_test_ca.server_context()
    )
    _, got = on_both_loops(
        send_on,
        lambda: [make(1), make(2)],
        server={"starttls": context},
        backend=backend,
        use_tls=True,
    )
    assert got.error is not None
    assert isinstance(got.error.__cause__, ssl.SSLCertVerificationError)
    for result in got.error.results:
        assert words in (result.error or "")
        assert not result.sent
        assert not result.retryable
        assert not result.attempted
    assert got.server.messages == []
    assert got.nothing_in_the_clear()
    assert got.server.sessions == 1  # no second attempt once the certificate is refused


# -- (3) faults: the same retry and reconnect outcome -----------------------------------------


@pytest.fixture(params=[False, True], ids=["lockstep", "pipelined"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


def test_a_drop_mid_data_on_uvloop_retries_on_a_new_session_as_on_asyncio(
    send_on: Send, pipelining: bool
) -> None:
    reference, got = on_both_loops(
        send_on,
        lambda: [make(n) for n in range(1, 5)],
        faults=Faults(pipelining=pipelining, data_replies={2: DROP}),
    )
    assert got.stored == reference.stored
    assert got.returned == 4
    assert [(session, subject) for session, subject, _ in got.stored] == [
        (1, "Message 1"),
        (2, "Message 2"),
        (2, "Message 3"),
        (2, "Message 4"),
    ]
    assert all(m.delivery is not None and m.delivery.ok for m in got.messages)


def test_421_after_n_messages_on_uvloop_reconnects_as_on_asyncio(
    send_on: Send, pipelining: bool
) -> None:
    reference, got = on_both_loops(
        send_on,
        lambda: [make(n) for n in range(1, 11)],
        faults=Faults(pipelining=pipelining, close_after=3),
    )
    assert got.stored == reference.stored
    assert got.returned == 10
    assert [session for session, _, _ in got.stored] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    assert [subject for _, subject, _ in got.stored] == [f"Message {n}" for n in range(1, 11)]


def test_421_again_on_the_retry_on_uvloop_stops_the_batch_as_on_asyncio(
    send_on: Send, pipelining: bool
) -> None:
    _, got = on_both_loops(
        send_on,
        lambda: [make(1, to=["busy@example.com"]), make(2)],
        faults=Faults(
            pipelining=pipelining, refuse={"busy@example.com": "421 4.3.2 shutting down"}
        ),
    )
    assert got.error is not None
    first, second = got.error.results
    assert first.error == "the server closed the connection at RCPT TO: 421 4.3.2 shutting down"
    assert first.retryable
    assert not second.sent
    assert second.retryable
    assert got.server.sessions == 2
    assert got.server.messages == []


def test_a_slow_reply_on_uvloop_times_out_as_on_asyncio(send_on: Send) -> None:
    _, got = on_both_loops(
        send_on,
        lambda: [make(1)],
        faults=Faults(mail_delay=3.0),
        command_timeout=0.3,
    )
    assert got.error is not None
    [result] = got.error.results
    assert result.error == "connection lost at MAIL FROM: timed out waiting for the server"
    assert result.retryable
    assert got.server.messages == []


# -- Python 3.10: no asyncio.Runner -----------------------------------------------------------


def test_a_uvloop_loop_made_by_hand_sends_and_closes(
    make_smtp_server: Callable[..., SMTPServer], sessions: Sessions
) -> None:
    """The path taken on Python 3.10, run on every version so it cannot rot."""
    server = make_smtp_server(faults=Faults(pipelining=True))
    mailpost.configure(MAILERS={"bulk": mailer_entry(server, max_connections=2)})
    loops: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        loops.append(uvloop.new_event_loop())
        return loops[-1]

    async def main() -> int:
        return await mailpost.mailers["bulk"].asend_messages([make(n) for n in range(4)])

    assert run_by_hand(factory, bounded("uvloop", main, sessions)) == 4
    [loop] = loops
    assert loop.is_closed()
    assert sorted(subject_of(m.data) for m in server.messages) == [f"Message {n}" for n in range(4)]
