"""Test helpers for the spool: a fault-injecting SMTP server keyed on message identity.

:class:`FaultServer` is aiosmtpd on 127.0.0.1 (free port) on its own event-loop thread.
Unlike a counter-based harness, its :class:`Profile` decides per message (by the number
in the Subject, ``msg <n>``) and per delivery try, so "refuse the first try of every
fifth message" stays true however the worker batches, retries or crashes. It records
every accepted copy with its Message-ID, and every RCPT reply, so tests can count
deliveries and prove what was never retried.

Run as a script (``python spool_helpers.py worker ...``) it is the worker process the
crash test kills with SIGKILL; ``python spool_helpers.py celery-worker ...`` is a real
Celery worker (prefork, two children) for the Celery tests.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

HOST = "127.0.0.1"
_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 5.0
_SUBJECT = re.compile(rb"^Subject: msg (\d+)\r?$", re.MULTILINE)
_MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>\r\n]+>)\r?$", re.MULTILINE | re.IGNORECASE)

#: Actions a profile can take at the end of DATA.
ACCEPT = "accept"
DROP = "drop"  # hang up without accepting (connection lost mid-DATA)
ACK_LOST = "ack-lost"  # accept and store, then hang up before the 250 reaches the client


@dataclass
class Copy:
    """One accepted copy of a message."""

    number: int
    message_id: str
    rcpt_tos: list[str]


class Profile:
    """Default behaviour: accept everything. Subclass and override the hooks.

    ``rcpt(address, tries)``: a reply to refuse with, or None to accept. ``tries`` counts
    this address's RCPT commands so far (1 on the first).
    ``data(number, tries)``: ``ACCEPT``, ``DROP``, ``ACK_LOST`` or a reply string;
    ``tries`` counts the ends of DATA seen for message ``number`` (1 on the first).
    ``delay(number, tries)``: seconds to wait before replying to DATA (after storing).
    ``close_after``: answer 421 at MAIL after this many messages on one connection.
    """

    close_after: int | None = None

    def rcpt(self, address: str, tries: int) -> str | None:
        return None

    def data(self, number: int, tries: int) -> str:
        return ACCEPT

    def delay(self, number: int, tries: int) -> float:
        return 0.0


@dataclass
class _Log:
    copies: list[Copy] = field(default_factory=list)
    rcpt_tries: Counter[str] = field(default_factory=Counter)
    rcpt_replies: list[tuple[str, str]] = field(default_factory=list)
    data_tries: Counter[int] = field(default_factory=Counter)
    sessions: int = 0


class _Session(SMTP):
    def __init__(self, owner: FaultServer, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self.owner = owner
        self.accepted_here = 0

    def hang_up(self, *, graceful: bool = False) -> None:
        if self.transport is None:
            return
        if graceful:
            self.transport.close()
        else:
            self.transport.abort()  # type: ignore[attr-defined]


class FaultServer:
    """An SMTP server driven by a :class:`Profile`; a context manager."""

    def __init__(self, profile: Profile | None = None, *, session_timeout: float = 10.0) -> None:
        self.profile = profile or Profile()
        self.session_timeout = session_timeout
        self.log = _Log()
        self.host = HOST
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._sessions: list[_Session] = []
        self._ready = threading.Event()

    # -- what it saw --------------------------------------------------------------------

    @property
    def copies(self) -> list[Copy]:
        with self._lock:
            return list(self.log.copies)

    def deliveries(self) -> Counter[tuple[str, str]]:
        """(Message-ID, recipient) -> how many copies the server accepted."""
        out: Counter[tuple[str, str]] = Counter()
        for copy in self.copies:
            for rcpt in copy.rcpt_tos:
                out[(copy.message_id, rcpt)] += 1
        return out

    def rcpt_count(self, address: str) -> int:
        with self._lock:
            return self.log.rcpt_tries[address]

    # -- aiosmtpd hooks -------------------------------------------------------------------

    async def handle_MAIL(
        self, server: _Session, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        limit = self.profile.close_after
        if limit is not None and server.accepted_here >= limit:
            server.loop.call_soon(lambda: server.hang_up(graceful=True))
            return "421 4.7.0 Too many messages on this connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: _Session, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self._lock:
            self.log.rcpt_tries[address] += 1
            tries = self.log.rcpt_tries[address]
        reply = self.profile.rcpt(address, tries)
        with self._lock:
            self.log.rcpt_replies.append((address, reply or "250"))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: _Session, session: Any, envelope: Any) -> str:
        data = bytes(envelope.original_content)
        head = data.split(b"\r\n\r\n", 1)[0]
        number_match = _SUBJECT.search(head)
        number = int(number_match.group(1)) if number_match else -1
        mid_match = _MESSAGE_ID.search(head)
        message_id = mid_match.group(1).decode() if mid_match else ""
        with self._lock:
            self.log.data_tries[number] += 1
            tries = self.log.data_tries[number]
        action = self.profile.data(number, tries)
        if action == DROP:
            server.hang_up()
            await asyncio.sleep(_STOP_TIMEOUT)  # cancelled as the connection goes
            return "451 unreachable"
        if action not in (ACCEPT, ACK_LOST):
            return action
        with self._lock:
            self.log.copies.append(Copy(number, message_id, list(envelope.rcpt_tos)))
        server.accepted_here += 1
        if action == ACK_LOST:
            server.hang_up()
            await asyncio.sleep(_STOP_TIMEOUT)
            return "451 unreachable"
        pause = self.profile.delay(number, tries)
        if pause:
            await asyncio.sleep(pause)
        return "250 2.0.0 OK"

    # -- lifecycle ----------------------------------------------------------------------

    def _factory(self) -> _Session:
        self.log.sessions += 1
        session = _Session(
            self, hostname="mx.spool.test", timeout=self.session_timeout, loop=self._loop
        )
        self._sessions.append(session)
        return session

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(loop.create_server(self._factory, HOST, 0))
            self.port = self._server.sockets[0].getsockname()[1]
        finally:
            self._ready.set()
        try:
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for session in self._sessions:
            session.hang_up()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), _STOP_TIMEOUT)

    def start(self) -> FaultServer:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="spool-smtpd", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT) or not self.port:
            raise RuntimeError("spool test SMTP server did not start")
        return self

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("spool test SMTP server did not stop")

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def smtp_entry(server: FaultServer, *, timeout: float = 5.0) -> dict[str, Any]:
    """A MAILERS entry for the SMTP backend pointed at ``server``."""
    return {
        "BACKEND": "mailpost.backends.smtp.EmailBackend",
        "OPTIONS": {"host": server.host, "port": server.port, "timeout": timeout},
    }


def spool_entry(path: str, mailer: str = "smtp", **options: Any) -> dict[str, Any]:
    """A MAILERS entry for the spool backend at ``path`` delivering through ``mailer``."""
    return {
        "BACKEND": "mailpost.backends.spool.EmailBackend",
        "OPTIONS": {"path": path, "mailer": mailer, **options},
    }


def _worker_main(argv: list[str]) -> int:
    """``worker PATH PORT [LEASE]``: deliver from the spool at PATH until killed or drained
    (default lease and batch size unless LEASE is given)."""
    path, port = argv[0], int(argv[1])
    options: dict[str, Any] = {}
    if len(argv) > 2:
        options = {"lease_seconds": float(argv[2]), "batch_size": 5}
    import mailpost
    from mailpost.spool import Spool

    mailpost.configure(
        MAILERS={
            "smtp": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": HOST, "port": port, "timeout": 5.0},
            },
            "spool": spool_entry(path, **options),
        }
    )
    worker = Spool.from_mailer("spool").worker()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    worker.run(max_seconds=60.0, poll_interval=0.05)
    return 0


#: A short retry policy for the Celery tests: the same classification, seconds not minutes.
CELERY_TEST_RETRY = {"first_delay": 0.3, "max_delay": 0.6, "jitter": 0.0, "max_age": 120.0}
#: Lease of a record in the Celery tests: a killed worker's records are free after this.
CELERY_TEST_LEASE = 2.0
CELERY_TEST_QUEUE = "mailpost-test"


def celery_test_app(broker_url: str) -> Any:
    """A Celery app on ``broker_url`` that recovers a dead worker's messages in seconds."""
    from celery import Celery

    app = Celery("mailpost_test", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_transport_options={
            "visibility_timeout": 3,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        task_default_queue=CELERY_TEST_QUEUE,
        worker_prefetch_multiplier=4,
        worker_redirect_stdouts=False,
    )
    return app


def celery_mailers(path: str, smtp_port: int, app: Any, **options: Any) -> dict[str, Any]:
    """MAILERS for the Celery tests: ``spool`` dispatches to Celery, delivering via ``smtp``."""
    return {
        "smtp": {
            "BACKEND": "mailpost.backends.smtp.EmailBackend",
            "OPTIONS": {"host": HOST, "port": smtp_port, "timeout": 5.0},
        },
        "spool": spool_entry(
            path,
            dispatch="celery",
            celery_app=app,
            lease_seconds=CELERY_TEST_LEASE,
            retry=CELERY_TEST_RETRY,
            **options,
        ),
    }


def _celery_worker_main(argv: list[str]) -> int:
    """``celery-worker BROKER SMTP_PORT PATH STATE_DIR``: a prefork Celery worker.

    It writes ``STATE_DIR/ready`` once consuming, and ``STATE_DIR/child-<pid>`` per pool
    process, so the test knows when to send and whom to kill.
    """
    broker, port, path, state_dir = argv[0], int(argv[1]), argv[2], Path(argv[3])
    from celery import signals

    import mailpost
    from mailpost.integrations.celery import register

    app = celery_test_app(broker)
    mailpost.configure(MAILERS=celery_mailers(path, port, app))
    register(app)

    def ready(**kwargs: Any) -> None:
        (state_dir / "ready").write_text(str(os.getpid()))

    def child(**kwargs: Any) -> None:
        (state_dir / f"child-{os.getpid()}").touch()

    signals.worker_ready.connect(ready, weak=False)
    signals.worker_process_init.connect(child, weak=False)
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
            f"--queues={CELERY_TEST_QUEUE}",
            f"--hostname=mailpost-test-{os.getpid()}@localhost",
        ]
    )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        raise SystemExit(_worker_main(sys.argv[2:]))
    if sys.argv[1:2] == ["celery-worker"]:
        raise SystemExit(_celery_worker_main(sys.argv[2:]))
    raise SystemExit(
        "usage: spool_helpers.py worker PATH PORT [LEASE_SECONDS]\n"
        "       spool_helpers.py celery-worker BROKER_URL SMTP_PORT PATH STATE_DIR"
    )
