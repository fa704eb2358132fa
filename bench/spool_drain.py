"""Spool throughput as ratios to direct sending, all measured in the same run.

Against one SMTP sink on loopback (Postfix's ``smtp-sink`` when installed, as in
``bench/smtp.py``; else a small asyncio sink in a subprocess), with 5,000 messages of
~1 KB and 3 recipients each:

* direct: ``send_messages`` on the SMTP mailer (one session), the baseline;
* enqueue: the spool backend's ``send_messages``, 100 messages per call (durable commits);
* drain: ``mailpost spool work``-style worker processes (1, then 2) emptying the spool
  through the same mailer, from the first lease to the last commit.

Each figure is the median of ``--runs`` runs; ratios are to the direct figure of the same
run. ``--url postgresql://...`` measures the PostgreSQL store as well as SQLite.
Run: ``bench/run spool`` (or ``python bench/spool_drain.py``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mailpost
from mailpost import EmailMessage

SBIN = "/usr/sbin"
SENDER = "shop@example.com"
BODY = "Thank you for your order. It ships tomorrow; we will tell you when it does.\n" * 10

#: A sink for machines without Postfix: accepts everything, keeps nothing, pipelines.
_PY_SINK = r"""
import asyncio, sys

async def session(reader, writer):
    writer.write(b"220 sink ESMTP\r\n")
    in_data = False
    while True:
        line = await reader.readline()
        if not line:
            break
        if in_data:
            if line == b".\r\n":
                in_data = False
                writer.write(b"250 2.0.0 Ok\r\n")
            continue
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            writer.write(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n")
        elif verb == b"DATA":
            in_data = True
            writer.write(b"354 go\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
        else:
            writer.write(b"250 2.0.0 Ok\r\n")
        if reader._buffer.find(b"\n") < 0:  # the pipelined group is answered: flush
            await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(session, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class Sink:
    """smtp-sink (or the asyncio sink) on 127.0.0.1 in a subprocess."""

    def __init__(self) -> None:
        smtp_sink = os.path.join(SBIN, "smtp-sink")
        if os.access(smtp_sink, os.X_OK):
            from smtp import Sink as PostfixSink

            self._postfix: Any = PostfixSink()
            self.port = self._postfix.port
            self.kind = "Postfix smtp-sink"
            return
        self._postfix = None
        self.process = subprocess.Popen(
            [sys.executable, "-c", _PY_SINK], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.kind = "asyncio sink (Postfix smtp-sink not installed)"

    def stop(self) -> None:
        if self._postfix is not None:
            self._postfix.stop()
            return
        self.process.terminate()
        self.process.wait(10)


def configure(port: int, path: str) -> None:
    mailpost.configure(
        MAILERS={
            "smtp": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 30},
            },
            "spool": {
                "BACKEND": "mailpost.backends.spool.EmailBackend",
                "OPTIONS": {"path": path, "mailer": "smtp"},
            },
        }
    )


def messages(n: int) -> list[EmailMessage]:
    return [
        EmailMessage(
            f"Order {i} confirmed",
            BODY,
            SENDER,
            ["ann@example.org", "bob@example.org"],
            cc=["orders@example.com"],
        )
        for i in range(n)
    ]


def direct(port: int, n: int) -> float:
    configure(port, os.devnull)
    batch = messages(n)
    backend = mailpost.mailers["smtp"]
    start = time.perf_counter()
    sent = backend.send_messages(batch)
    elapsed = time.perf_counter() - start
    assert sent == n, sent
    return n / elapsed


def enqueue(port: int, path: str, n: int) -> float:
    configure(port, path)
    backend = mailpost.mailers["spool"]
    batch = messages(n)
    backend.send_messages(batch[:1])  # open the store, create the schema
    start = time.perf_counter()
    for i in range(1, n, 100):
        backend.send_messages(batch[i : i + 100])
    elapsed = time.perf_counter() - start
    return (n - 1) / elapsed


def _worker_main(port: int, path: str) -> None:
    """A worker process: waits for "go" on stdin, drains, prints first/last timestamps."""
    configure(port, path)
    from mailpost.spool import Spool

    worker = Spool.from_mailer("spool").worker()
    mailpost.mailers["smtp"]  # the backend's code loaded, as for the direct baseline
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    start = time.time()
    done = worker.run(until_idle=True, max_seconds=300)
    sys.stdout.write(f"{start} {time.time()} {done}\n")
    sys.stdout.flush()


def drain(port: int, path: str, n: int, workers: int) -> float:
    """Messages per second for ``workers`` worker processes emptying a spool of ``n``."""
    configure(port, path)
    from mailpost.spool import Spool

    spool = Spool.from_mailer("spool")
    spool.purge(states=("sent", "dead", "queued"))
    mailpost.mailers["spool"].send_messages(messages(n))
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(port), path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    starts, ends, total = [], [], 0
    for proc in procs:
        assert proc.stdout is not None
        first, last, done = proc.stdout.readline().split()
        starts.append(float(first))
        ends.append(float(last))
        total += int(done)
        proc.wait(60)
    states = spool.stats()["states"]
    if total != n or states["sent"] != n:
        raise RuntimeError(f"drained {total} of {n}: {states}")
    return n / (max(ends) - min(starts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--url", help="also measure a PostgreSQL spool (postgresql://...)")
    parser.add_argument("--worker", nargs=2, metavar=("PORT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(int(args.worker[0]), args.worker[1])
        return 0
    n, runs = args.messages, args.runs
    sink = Sink()
    try:
        machine = f"{platform.python_implementation()} {platform.python_version()}, "
        machine += f"{platform.machine()}, {os.cpu_count()} cores"
        print(f"# spool vs direct SMTP, messages/s — {machine}; {sink.kind} on 127.0.0.1;")
        print(f"# median of {runs} runs of {n:,} messages of ~1 KB, 3 recipients each")
        base = statistics.median(direct(sink.port, n) for _ in range(runs))
        print(f"{'direct send_messages (baseline)':<36} {base:>9,.0f}  1.00x", flush=True)
        with tempfile.TemporaryDirectory() as directory:
            stores = [("SQLite", str(Path(directory) / "spool.sqlite3"))]
            if args.url:
                stores.append(("PostgreSQL", args.url))
            for name, path in stores:
                figures = [
                    ("enqueue, 100 per call", lambda p=path: enqueue(sink.port, p, n)),
                    ("drain, 1 worker", lambda p=path: drain(sink.port, p, n, 1)),
                    ("drain, 2 workers", lambda p=path: drain(sink.port, p, n, 2)),
                ]
                one = 0.0
                for label, fn in figures:
                    rate = statistics.median(fn() for _ in range(runs))
                    extra = ""
                    if label.endswith("1 worker"):
                        one = rate
                    elif label.endswith("2 workers") and one:
                        extra = f"  ({rate / one:.2f}x one worker)"
                    print(
                        f"{name + ' ' + label:<36} {rate:>9,.0f}  {rate / base:.2f}x{extra}",
                        flush=True,
                    )
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
