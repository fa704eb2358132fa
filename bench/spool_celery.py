"""The spool's Celery path as a ratio to direct sending, both measured in the same run.

Against one SMTP sink on loopback (as ``bench/spool_drain.py``: Postfix's ``smtp-sink``
when installed), a private ``redis-server`` broker on a free loopback port and one real
Celery worker process (prefork pool, ``--concurrency``), with 5,000 messages of ~1 KB and
3 recipients each:

* direct: ``send_messages`` on the SMTP mailer (one session), the baseline;
* celery: the spool backend with ``dispatch: "celery"``, 100 messages per
  ``send_messages`` call (durable enqueue, then one task carrying record ids only), from
  the first call until the spool has every message sent.

Each figure is the median of ``--runs`` runs. Run: ``bench/run spool`` (or
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

from spool_drain import Sink, direct, messages

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
    """The Celery worker process: prints "ready" once it consumes, runs until SIGTERM."""
    from celery import signals

    from mailpost.integrations.celery import register

    app = celery_app(broker)
    configure(app, port, path)
    register(app)

    def ready(**kwargs: Any) -> None:
        sys.stdout.write("ready\n")
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


def _wait_sent(spool: Any, n: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while spool.stats()["states"]["sent"] < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Celery delivered {spool.stats()['states']} of {n} in {seconds}s")
        time.sleep(0.01)


def celery_rate(app: Any, port: int, path: str, n: int) -> float:
    """Messages per second from the first ``send_messages`` to the last one sent."""
    from mailpost.spool import Spool

    configure(app, port, path)
    spool = Spool.from_mailer("spool")
    spool.purge(states=("sent", "dead", "queued"))
    backend = mailpost.mailers["spool"]
    batch = messages(n)
    start = time.perf_counter()
    for i in range(0, n, 100):
        backend.send_messages(batch[i : i + 100])
    _wait_sent(spool, n, 300)
    return n / (time.perf_counter() - start)


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
        command = [sys.executable, __file__, "--worker", broker, str(sink.port), path]
        worker = subprocess.Popen(
            [*command, str(args.concurrency)],
            stdout=subprocess.PIPE,
            text=True,
        )
        app = celery_app(broker)
        try:
            assert worker.stdout is not None
            for _ in range(500):  # the worker's banner comes first
                line = worker.stdout.readline()
                if not line or line.strip() == "ready":
                    break
            if line.strip() != "ready":
                raise RuntimeError("the Celery worker did not start")
            machine = f"{platform.python_implementation()} {platform.python_version()}, "
            machine += f"{platform.machine()}, {os.cpu_count()} cores"
            print(f"# spool via Celery vs direct SMTP, messages/s — {machine}; {sink.kind};")
            print(
                f"# redis-server broker, 1 Celery worker (prefork, concurrency "
                f"{args.concurrency}); median of {runs} runs of {n:,} messages of ~1 KB, "
                "3 recipients each"
            )
            base = statistics.median(direct(sink.port, n) for _ in range(runs))
            print(f"{'direct send_messages (baseline)':<36} {base:>9,.0f}  1.00x", flush=True)
            celery_rate(app, sink.port, path, 100)  # warm up: schema, worker imports
            rates = [celery_rate(app, sink.port, path, n) for _ in range(runs)]
            rate = statistics.median(rates)
            spread = f"  (runs {min(rates):,.0f}-{max(rates):,.0f})"
            label = "SQLite spool via Celery, 100/call"
            print(f"{label:<36} {rate:>9,.0f}  {rate / base:.2f}x{spread}", flush=True)
        finally:
            app.close()
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
            redis.stop()
            sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
