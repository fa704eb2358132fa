"""The spool's Celery path as a ratio to direct sending, both measured in the same run.

Against one SMTP sink on loopback (as ``bench/spool_drain.py``: Postfix's ``smtp-sink``
when installed), a private ``redis-server`` broker on a free loopback port and one real
Celery worker process (prefork pool, ``--concurrency``), with 5,000 messages of ~1 KB and
3 recipients each:

* direct: ``send_messages`` on the SMTP mailer (one session), the baseline;
* Celery drain: 5,000 messages stored through the spool backend with
  ``dispatch: "celery"`` (100 per ``send_messages`` call: one task each, carrying record
  ids only) while no worker runs; then a worker starts, from its "ready" until the spool has
  every message sent (issue 16's figure: the Celery path's drain throughput);
* Celery end to end: the same with the worker running while the messages are sent, from
  the first ``send_messages`` to the last message sent (enqueue and delivery overlap);
* for reference, one ``mailpost spool work``-style worker draining the same number
  (``bench/spool_drain.py``'s figure): the engine both paths share.

Each figure is the median of ``--runs`` runs, and each ratio the median of the per-run
ratios to the direct figure of the same run (the machine is shared). Run: ``bench/run spool`` (or
``python bench/spool_celery.py``; needs ``redis-server`` and ``mailpost[celery]``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from spool_drain import Sink, direct, drain, messages

import mailpost

HOST = "127.0.0.1"
QUEUE = "mailpost-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Redis:
    """``redis-server`` on a free loopback port, without persistence."""

    def __init__(self, directory: str) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("bench/spool_celery.py: needs redis-server (scripts/services)")
        self.port = _free_port()
        self.process = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"],
            cwd=directory,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("bench/spool_celery.py: redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def celery_app(broker: str) -> Any:
    from celery import Celery

    app = Celery("mailpost_bench", broker=broker, set_as_current=False)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        worker_redirect_stdouts=False,
    )
    return app


def configure(app: Any, port: int, path: str) -> None:
    mailpost.configure(
        MAILERS={
            "smtp": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": HOST, "port": port, "timeout": 30},
            },
            "spool": {
                "BACKEND": "mailpost.integrations.celery.EmailBackend",
                "OPTIONS": {"path": path, "mailer": "smtp", "celery_app": app},
            },
        }
    )


def _worker_main(broker: str, port: int, path: str, concurrency: int) -> None:
    """The Celery worker process: prints "ready <epoch>" once it consumes; until SIGTERM."""
    from celery import signals

    from mailpost.integrations.celery import register

    app = celery_app(broker)
    configure(app, port, path)
    register(app)

    def ready(**kwargs: Any) -> None:
        sys.stdout.write(f"ready {time.time()}\n")
        sys.stdout.flush()

    signals.worker_ready.connect(ready, weak=False)
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
            f"--queues={QUEUE}",
            f"--hostname=mailpost-bench-{os.getpid()}@localhost",
        ]
    )


class Worker:
    """One Celery worker process (``--worker``), started and stopped by the benchmark."""

    def __init__(self, broker: str, port: int, path: str, concurrency: int) -> None:
        command = [sys.executable, __file__, "--worker", broker, str(port), path]
        self.process = subprocess.Popen(
            [*command, str(concurrency)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = ""
        for _ in range(500):  # the worker's banner comes first
            line = self.process.stdout.readline()
            if not line or line.startswith("ready "):
                break
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError("the Celery worker did not start")
        self.ready_at = float(line.split()[1])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _wait_sent(spool: Any, n: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while spool.stats()["states"]["sent"] < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Celery delivered {spool.stats()['states']} of {n} in {seconds}s")
        time.sleep(0.01)


def _fresh_spool(app: Any, port: int, path: str) -> tuple[Any, Any]:
    from mailpost.spool import Spool

    configure(app, port, path)
    spool = Spool.from_mailer("spool")
    spool.purge(states=("sent", "dead", "queued"))
    return spool, mailpost.mailers["spool"]


def end_to_end(app: Any, worker_args: tuple[str, int, str, int], n: int) -> float:
    """Messages per second from the first ``send_messages`` to the last message sent, the
    worker running all along (enqueue and delivery overlap)."""
    _, port, path, _ = worker_args
    worker = Worker(*worker_args)
    try:
        spool, backend = _fresh_spool(app, port, path)
        batch = messages(n)
        start = time.perf_counter()
        for i in range(0, n, 100):
            backend.send_messages(batch[i : i + 100])
        _wait_sent(spool, n, 300)
        return n / (time.perf_counter() - start)
    finally:
        worker.stop()


def drain_rate(app: Any, worker_args: tuple[str, int, str, int], n: int) -> float:
    """Messages per second for a Celery worker started on ``n`` stored messages whose tasks
    wait in the broker: from the worker's "ready" to the last message sent."""
    _, port, path, _ = worker_args
    spool, backend = _fresh_spool(app, port, path)
    batch = messages(n)
    for i in range(0, n, 100):
        backend.send_messages(batch[i : i + 100])
    worker = Worker(*worker_args)
    try:
        _wait_sent(spool, n, 300)
        return n / (time.time() - worker.ready_at)
    finally:
        worker.stop()


def _line(label: str, rates: list[float], bases: list[float]) -> str:
    rate = statistics.median(rates)
    ratio = statistics.median(r / b for r, b in zip(rates, bases, strict=True))
    spread = f"runs {min(rates):,.0f}-{max(rates):,.0f}"
    return f"{label:<40} {rate:>9,.0f}  {ratio:.2f}x  ({spread})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery pool processes")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        broker, port, path, concurrency = args.worker
        _worker_main(broker, int(port), path, int(concurrency))
        return 0
    n, runs = args.messages, args.runs
    sink = Sink()
    with tempfile.TemporaryDirectory() as directory:
        redis = Redis(directory)
        broker = f"redis://{HOST}:{redis.port}/0"
        path = str(Path(directory) / "spool.sqlite3")
        plain = str(Path(directory) / "plain.sqlite3")
        worker_args = (broker, sink.port, path, args.concurrency)
        app = celery_app(broker)
        try:
            machine = f"{platform.python_implementation()} {platform.python_version()}, "
            machine += f"{platform.machine()}, {os.cpu_count()} cores"
            print(f"# spool via Celery vs direct SMTP, messages/s — {machine}; {sink.kind};")
            print(
                f"# redis-server broker, 1 Celery worker (prefork, concurrency "
                f"{args.concurrency}); {runs} runs of {n:,} messages of ~1 KB, 3 recipients "
                "each; medians, ratios to direct in the same run"
            )
            drain_rate(app, worker_args, 100)  # warm up: the schema, the worker's imports
            bases, drains, ends, ones = [], [], [], []
            for _ in range(runs):
                bases.append(direct(sink.port, n))
                drains.append(drain_rate(app, worker_args, n))
                ends.append(end_to_end(app, worker_args, n))
                ones.append(drain(sink.port, plain, n, 1))
            print(_line("direct send_messages (baseline)", bases, bases), flush=True)
            print(_line("Celery drain (tasks queued, then worker)", drains, bases))
            print(_line("Celery end to end, 100 per send_messages", ends, bases))
            print(_line("drain, 1 spool worker (reference)", ones, bases), flush=True)
        finally:
            app.close()
            redis.stop()
            sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
