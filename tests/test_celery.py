"""Celery dispatch against a real Redis broker and real Celery workers.

Each test starts ``redis-server`` on a free loopback port (installed by
``scripts/services``), a prefork Celery worker subprocess (``spool_helpers.py
celery-worker``) and :class:`smtpd_harness.SMTPServer` with per-message faults. Messages go
in through the spool backend with ``dispatch="celery"``; the worker delivers them. The
promises: each recipient gets each message exactly once with the spool's Message-ID, 4xx is
retried on the policy, 5xx is never retried, the spool holds the per-recipient truth, and a
worker SIGKILLed mid-batch loses nothing.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mailpost
import mailpost.integrations.celery  # registers the "celery" dispatcher in this process
from mailpost import EmailMessage
from mailpost.spool import Spool
from mailpost.spool.record import SpoolRecord
from smtpd_harness import ACCEPT, Faults, SMTPServer
from spool_helpers import HOST, celery_mailers, celery_test_app, spool_entry

HELPER = Path(__file__).with_name("spool_helpers.py")
_DATABASES = itertools.count(1)


# A real broker and worker: generous bounds for a loaded CI machine (waits end early).
pytestmark = pytest.mark.timeout(300)


def _require_celery() -> None:
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        pytest.fail(
            f"Celery tests need Celery with Redis support ({exc}): "
            'pip install "mailpost[celery]" (part of the test extra)'
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A private redis-server on a free loopback port; its port."""
    _require_celery()
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail(
            "redis-server is not installed; run scripts/services (installs Debian's "
            "redis-server) before the test suite"
        )
    directory = tmp_path_factory.mktemp("redis")
    port = _free_port()
    with open(directory / "redis.log", "wb") as log:
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def answers() -> bool:
            assert proc.poll() is None, (directory / "redis.log").read_text()
            try:
                with socket.create_connection((HOST, port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    return conn.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        _wait(answers, 20, "redis-server to answer PING")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class CeleryWorker:
    """``spool_helpers.py celery-worker`` in its own process group."""

    def __init__(self, broker: str, smtp_port: int, path: str, state_dir: Path) -> None:
        self.args = [sys.executable, str(HELPER), "celery-worker", broker, str(smtp_port)]
        self.args += [path, str(state_dir)]
        self.state_dir = state_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = state_dir / "worker.log"

    def start(self) -> CeleryWorker:
        for stale in self.state_dir.glob("child-*"):
            stale.unlink()
        (self.state_dir / "ready").unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

        def ready() -> bool:
            assert self.proc is not None
            assert self.proc.poll() is None, f"celery worker exited:\n{self.log.read_text()}"
            return (self.state_dir / "ready").exists()

        _wait(ready, 60, "the Celery worker to be ready")
        return self

    def children(self) -> list[int]:
        return [int(p.name.split("-", 1)[1]) for p in self.state_dir.glob("child-*")]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as the OOM killer would."""
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)  # warm shutdown: finish tasks in flight
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None


@pytest.fixture
def celery_env(
    redis_server: int, tmp_path: Path, spool_location: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[SMTPServer], tuple[Any, CeleryWorker]]]:
    """Configure mailpost for ``server`` on a fresh Redis database; returns (app, worker)."""
    broker = f"redis://{HOST}:{redis_server}/{next(_DATABASES) % 16}"
    made: list[CeleryWorker] = []
    apps: list[Any] = []

    def make(server: SMTPServer) -> tuple[Any, CeleryWorker]:
        app = celery_test_app(broker)
        apps.append(app)
        with app.connection_for_write() as conn:
            conn.default_channel.client.flushdb()
        path = spool_location
        mailpost.configure(MAILERS=celery_mailers(path, server.port, app))
        state = tmp_path / "worker"
        state.mkdir(exist_ok=True)
        worker = CeleryWorker(broker, server.port, path, state)
        made.append(worker)
        return app, worker

    yield make
    for worker in made:
        worker.stop()
    for app in apps:
        app.close()


def _send(n: int, rcpts: Callable[[int], list[str]]) -> None:
    messages = [
        EmailMessage(f"msg {i}", f"body {i}", "sender@example.com", rcpts(i)) for i in range(n)
    ]
    backend = mailpost.mailers["spool"]
    for start in range(0, n, 100):
        batch = messages[start : start + 100]
        assert backend.send_messages(batch) == len(batch)
    assert all(m.spool_id for m in messages)  # type: ignore[attr-defined]


def _drain(
    spool: Spool, seconds: float, *, app: Any = None, sweep_after: float | None = None
) -> list[SpoolRecord]:
    """Wait until nothing is queued or leased. With ``app`` and ``sweep_after``, also run
    the documented safety net (what Celery beat runs in production: ``sweep``) every 5 s
    once ``sweep_after`` seconds have passed, for a task lost outside Celery's guarantees."""
    from mailpost.integrations.celery import sweep

    started = time.monotonic()
    last_sweep = 0.0

    def drained() -> bool:
        nonlocal last_sweep
        states = spool.stats()["states"]
        if states["queued"] == 0 and states["leased"] == 0:
            return True
        now = time.monotonic()
        overdue = sweep_after is not None and now - started > sweep_after
        if app is not None and overdue and now - last_sweep > 5:
            last_sweep = now
            sweep("spool", app=app, grace=5)
        return False

    _wait(drained, seconds, "the spool to drain")
    return spool.list(limit=100_000)


def _check_exactly_once(server: SMTPServer, records: list[SpoolRecord]) -> Counter[str]:
    """Each delivered recipient got exactly one copy with its Message-ID; failures none."""
    deliveries = server.deliveries()
    assert {mid for mid, _ in deliveries} <= {r.message_id for r in records}
    statuses: Counter[str] = Counter()
    for record in records:
        assert record.state in ("sent", "dead"), record
        for rcpt in record.recipients:
            statuses[rcpt.status] += 1
            copies = deliveries[(record.message_id, rcpt.address)]  # type: ignore[index]
            if rcpt.status == "delivered":
                assert copies == 1, (record, rcpt, copies)
            else:
                assert (rcpt.status, copies) == ("failed", 0), rcpt
                assert rcpt.code is not None, rcpt
                assert 500 <= rcpt.code < 600, rcpt
    return statuses


class Mixed(Faults):
    """451 at DATA on the first try of every third message, 450 on the first RCPT of
    ``tmp*``, 550 for ``bad*`` always."""

    def rcpt(self, address: str, tries: int) -> str | None:
        if address.startswith("bad"):
            return "550 5.1.1 No such user here"
        if address.startswith("tmp") and tries == 1:
            return "450 4.2.1 Mailbox busy, try later"
        return None

    def data(self, number: int, tries: int) -> str:
        if number % 3 == 0 and tries == 1:
            return "451 4.3.0 Temporary local problem, try again"
        return ACCEPT


def _mixed_rcpts(i: int) -> list[str]:
    if i % 25 == 0:
        return [f"bad{i}@x.test"]
    if i % 10 == 0:
        return [f"u{i}@x.test", f"bad{i}@x.test"]
    if i % 7 == 0:
        return [f"u{i}@x.test", f"tmp{i}@x.test"]
    return [f"u{i}@x.test"]


@pytest.mark.parametrize("spool_location", ["sqlite", "postgres"], indirect=True)
def test_celery_delivers_each_message_once_retrying_4xx_never_5xx(
    celery_env: Callable[[SMTPServer], tuple[Any, CeleryWorker]],
) -> None:
    n = 400
    with SMTPServer(faults=Mixed()) as server:
        _app, worker = celery_env(server)
        worker.start()
        _send(n, _mixed_rcpts)
        spool = Spool.from_mailer("spool")
        records = _drain(spool, 80)
        worker.stop()
        statuses = _check_exactly_once(server, records)
        bad = [i for i in range(n) if i % 10 == 0 or i % 25 == 0]
        assert all(server.rcpt_count(f"bad{i}@x.test") == 1 for i in bad)  # 5xx: never retried
        tmp = [i for i in range(n) if i % 7 == 0 and i % 10 and i % 25]
        assert all(server.rcpt_count(f"tmp{i}@x.test") == 2 for i in tmp)  # 4xx: retried once
        assert all(
            server.rcpt_count(f"u{i}@x.test") == 1 + (i % 3 == 0) for i in range(n) if i % 25
        )
    expected_failed = len(bad)
    assert statuses == {"delivered": n - n // 25 + len(tmp), "failed": expected_failed}
    by_number = dict(enumerate(records))  # ids follow the sending order
    # Per-recipient truth in the spool.
    only_bad = by_number[25]
    assert (only_bad.state, only_bad.attempts) == ("dead", 1)
    assert [(r.address, r.status, r.code) for r in only_bad.recipients] == [
        ("bad25@x.test", "failed", 550)
    ]
    partial = by_number[20]  # u20 + bad20, no 451 (20 % 3 != 0)
    assert partial.state == "dead"
    assert [(r.address, r.status, r.code) for r in partial.recipients] == [
        ("u20@x.test", "delivered", 250),
        ("bad20@x.test", "failed", 550),
    ]
    retried = by_number[3]
    assert (retried.state, retried.attempts) == ("sent", 2)
    history = spool.show(retried.id).history
    assert "451" in (history[0].error or "")
    assert history[-1].outcome == "delivered"
    busy = by_number[7]
    assert (busy.state, busy.attempts) == ("sent", 2)
    assert [r.status for r in busy.recipients] == ["delivered", "delivered"]


class SlowForty(Faults):
    """Message 40 is stored, then its 250 held back 3 s on the first try; others are quick."""

    def delay(self, number: int, tries: int) -> float:
        return 3.0 if number == 40 and tries == 1 else 0.005


@pytest.mark.parametrize("spool_location", ["sqlite", "postgres"], indirect=True)
def test_sigkilled_celery_worker_loses_nothing_and_duplicates_at_most_in_flight(
    celery_env: Callable[[SMTPServer], tuple[Any, CeleryWorker]],
) -> None:
    n = 300
    with SMTPServer(faults=SlowForty()) as server:
        app, worker = celery_env(server)
        worker.start()
        _send(n, lambda i: [f"u{i}@x.test"])
        # The pool processes die mid-task (one of them surely: it is waiting for message
        # 40's reply); reject_on_worker_lost puts their tasks back on the queue ...
        _wait(lambda: server.recorder.data_tries[40] >= 1, 40, "message 40 to reach DATA")
        for child in worker.children():
            os.kill(child, signal.SIGKILL)
        seen = len(server.messages)
        _wait(lambda: len(server.messages) >= seen + 20, 40, "the pool to go on after a child died")
        # ... then the whole worker is SIGKILLed (late ack: its tasks stay on the broker).
        worker.kill()
        assert len(server.messages) < n, "the worker finished before it could be killed"
        worker.start()
        spool = Spool.from_mailer("spool")
        records = _drain(spool, 150, app=app, sweep_after=45)
        worker.stop()
    assert all(r.state == "sent" for r in records)
    per_id = Counter(c.message_id for c in server.messages)
    assert set(per_id) == {r.message_id for r in records}  # nothing lost
    # A kill repeats only a message whose 250 came back before its outcome's group commit:
    # each repeated message was held by a dead process (its lease expired), never by two
    # live ones, and the two kills repeat a handful of pipelined messages at most.
    repeated = [r for r in records if per_id[r.message_id] > 1]
    for record in repeated:
        assert "lease-expired" in [a.outcome for a in spool.show(record.id).history]
    assert len(repeated) <= n // 10
    assert per_id[records[40].message_id] >= 2  # stored, its reply lost with the dead child
    outcomes = [a.outcome for a in spool.show(records[40].id).history]
    assert outcomes[0] == "lease-expired"  # its requeued task took over the dead one's lease
    assert outcomes[-1] == "delivered"


def test_sweep_republishes_records_whose_tasks_were_lost(
    celery_env: Callable[[SMTPServer], tuple[Any, CeleryWorker]], tmp_path: Path
) -> None:
    from mailpost.integrations.celery import sweep

    with SMTPServer() as server:
        app, worker = celery_env(server)
        path = str(tmp_path / "spool.sqlite3")
        # Stored without publishing, as if the broker had lost every task.
        mailpost.configure(
            MAILERS={**celery_mailers(path, server.port, app), "plain": spool_entry(path)}
        )
        messages = [EmailMessage(f"msg {i}", "b", "s@x.test", [f"u{i}@x.test"]) for i in range(50)]
        assert mailpost.mailers["plain"].send_messages(messages) == 50
        spool = Spool.from_mailer("spool")
        assert sweep("spool", app=app, grace=60) == 0  # not overdue yet
        assert sweep("spool", app=app, grace=0) == 50
        assert sweep("spool", app=app, grace=0) == 50  # duplicates are harmless
        worker.start()
        records = _drain(spool, 40)
        worker.stop()
        assert _check_exactly_once(server, records) == {"delivered": 50}


def test_unreachable_broker_keeps_the_message_queued_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _require_celery()
    app = celery_test_app(f"redis://{HOST}:{_free_port()}/0")
    app.conf.broker_connection_timeout = 0.5
    app.conf.task_publish_retry = False
    mailpost.configure(MAILERS=celery_mailers(str(tmp_path / "s.sqlite3"), 25, app))
    message = EmailMessage("msg 1", "b", "s@x.test", ["u@x.test"])
    with caplog.at_level(logging.WARNING, logger="mailpost.spool"):
        assert mailpost.mailers["spool"].send_messages([message]) == 1
    app.close()
    assert message.delivery.response == (250, f"queued as {message.spool_id}")  # type: ignore[attr-defined]
    assert Spool.from_mailer("spool").get(message.spool_id).state == "queued"  # type: ignore[attr-defined,union-attr]
    assert "could not publish the delivery tasks of 1 of 1 record(s)" in caplog.text
    assert "mailpost.sweep" in caplog.text
