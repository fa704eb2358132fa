"""SMTP delivery throughput against Postfix's smtp-sink on loopback, same machine, same run.

Two tables, each figure the median of several runs:

* sending alone: messages already serialized (an ``EmailMessage`` whose ``_render`` returns
  fixed bytes), 5,000 messages with 3 recipients, mailpost's sync ``send_messages`` over
  1, 4 and 16 pooled connections, against Postfix's C client ``smtp-source`` pushing the
  same bytes with the same number of sessions (``-d``: sessions are kept open);
* end to end: ``EmailMultiAlternatives`` objects in, delivered out, through mailpost's sync
  and async API, against Django's ``django.core.mail`` SMTP backend over one connection.

Run with ``bench/run smtp`` (installs Postfix for smtp-sink/smtp-source and Django 6.1.3),
or ``python bench/smtp.py`` where they are installed. The Postfix daemon is never started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serialize import shapes

import mailpost
from mailpost.message import serialize

SBIN = "/usr/sbin"
SENDER = "shop@example.com"
SHAPES = ("short text 1.2 KB", "text+HTML 7.2 KB")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Sink:
    """smtp-sink on 127.0.0.1: accepts everything, stores nothing."""

    def __init__(self) -> None:
        self.port = free_port()
        command = [os.path.join(SBIN, "smtp-sink")]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]
        command += [f"127.0.0.1:{self.port}", "1024"]
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("smtp-sink did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def build(shape: dict[str, Any], n: int) -> mailpost.EmailMultiAlternatives:
    msg = mailpost.EmailMultiAlternatives(
        "Your order has shipped",
        shape["body"],
        f"Shop <{SENDER}>",
        shape["to"],
        cc=shape["cc"],
        bcc=shape["bcc"],
        headers={"X-Order": str(n)},
    )
    if shape["html"]:
        msg.attach_alternative(shape["html"], "text/html")
    return msg


class Prebuilt(mailpost.EmailMessage):
    """A message whose wire bytes were made beforehand (the transport-alone case)."""

    wire = b""

    def _render(self, *, eight_bit: bool = False) -> bytes:
        return self.wire


def prebuilt(shape: dict[str, Any], count: int) -> list[mailpost.EmailMessage]:
    messages: list[mailpost.EmailMessage] = []
    for n in range(count):
        msg = Prebuilt(from_email=SENDER, to=shape["to"], cc=shape["cc"], bcc=shape["bcc"])
        msg.wire = serialize(build(shape, n), eight_bit=True)
        messages.append(msg)
    return messages


def mailer(port: int, connections: int) -> Any:
    mailpost.configure(
        MAILERS={
            "bench": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {
                    "host": "127.0.0.1",
                    "port": port,
                    "timeout": 30,
                    "max_connections": connections,
                },
            }
        }
    )
    return mailpost.mailers["bench"]


def rate(fn: Callable[[], int], count: int) -> float:
    start = time.perf_counter()
    sent = fn()
    elapsed = time.perf_counter() - start
    if sent != count:
        raise RuntimeError(f"sent {sent} of {count}")
    return count / elapsed


def smtp_source(port: int, shape: dict[str, Any], sessions: int, count: int) -> float:
    """smtp-source's rate for ``count`` messages of ``shape`` over ``sessions`` sessions."""
    wire = serialize(build(shape, 0), eight_bit=True)
    with tempfile.NamedTemporaryFile("wb", suffix=".eml", delete=False) as f:
        f.write(wire.replace(b"\r\n", b"\n"))  # smtp-source appends CRLF to each line
    try:
        command = [os.path.join(SBIN, "smtp-source"), "-d", "-s", str(sessions),
                   "-m", str(count), "-r", "3", "-F", f.name, "-f", SENDER,
                   "-t", "ann@example.com", f"127.0.0.1:{port}"]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return count / (time.perf_counter() - start)
    finally:
        os.unlink(f.name)


def django_sender(port: int) -> Callable[[dict[str, Any], int], float] | None:
    try:
        import django
        from django.conf import settings
    except ImportError:
        return None
    if not settings.configured:
        settings.configure(DEFAULT_CHARSET="utf-8", DEFAULT_FROM_EMAIL=SENDER,
                           EMAIL_HOST="127.0.0.1", EMAIL_PORT=port)  # fmt: skip
        django.setup()
    from django.core.mail import EmailMultiAlternatives
    from django.core.mail.backends.smtp import EmailBackend

    def send(shape: dict[str, Any], count: int) -> float:
        messages = []
        for n in range(count):
            msg = EmailMultiAlternatives("Your order has shipped", shape["body"],
                                         f"Shop <{SENDER}>", shape["to"], cc=shape["cc"],
                                         bcc=shape["bcc"], headers={"X-Order": str(n)})  # fmt: skip
            if shape["html"]:
                msg.attach_alternative(shape["html"], "text/html")
            messages.append(msg)
        backend = EmailBackend(host="127.0.0.1", port=port, timeout=30)
        return rate(lambda: backend.send_messages(messages), count)

    return send


def median(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--messages", type=int, default=5000, help="messages per run")
    parser.add_argument("--django-messages", type=int, default=1000,
                        help="messages per Django run (it is ~50x slower)")  # fmt: skip
    parser.add_argument("--connections", default="1,4,16", help="pool sizes to measure")
    args = parser.parse_args()
    if not shutil.which("smtp-sink", path=SBIN):
        sys.exit("bench/smtp.py: needs Postfix's smtp-sink and smtp-source (bench/run installs)")
    count, runs = args.messages, args.runs
    levels = [int(c) for c in args.connections.split(",")]
    all_shapes = shapes()
    machine = f"{platform.python_implementation()} {platform.python_version()}, "
    machine += f"{platform.machine()}, {os.cpu_count()} cores"
    sink = Sink()
    try:
        print(f"# SMTP throughput, messages/s — {machine}; smtp-sink on 127.0.0.1; "
              f"median of {runs} runs of {count:,} messages, 3 recipients each")  # fmt: skip
        print("\n## sending alone (pre-serialized), mailpost sync send_messages vs smtp-source")
        print(f"{'shape':<19} {'sessions':>8} {'smtp-source':>12} {'mailpost':>10} {'ratio':>7}")
        for name in SHAPES:
            shape = all_shapes[name]
            for sessions in levels:
                theirs = median(
                    runs, lambda s=shape, c=sessions: smtp_source(sink.port, s, c, count)
                )

                def ours(shape: dict[str, Any] = shape, sessions: int = sessions) -> float:
                    messages = prebuilt(shape, count)
                    backend = mailer(sink.port, sessions)
                    return rate(lambda: backend.send_messages(messages), count)

                mine = median(runs, ours)
                print(f"{name:<19} {sessions:>8} {theirs:>12,.0f} {mine:>10,.0f} "
                      f"{mine / theirs:>6.2f}x", flush=True)  # fmt: skip
        django_send = django_sender(sink.port)
        print("\n## end to end (EmailMultiAlternatives in, delivered out)")
        if django_send is None:
            print("# Django not installed: mailpost figures only (bench/run installs it)")
        else:
            import django

            print(f"# baseline: Django {django.get_version()} smtp.EmailBackend.send_messages, "
                  f"one connection, {args.django_messages:,} messages per run")  # fmt: skip
        print(f"{'shape':<19} {'sessions':>8} {'django':>8} {'sync':>8} {'ratio':>7} "
              f"{'async':>8} {'ratio':>7}")  # fmt: skip
        for name in SHAPES:
            shape = all_shapes[name]
            theirs = 0.0
            if django_send is not None:
                theirs = median(runs, lambda s=shape: django_send(s, args.django_messages))
            for sessions in levels:

                def sync(shape: dict[str, Any] = shape, sessions: int = sessions) -> float:
                    messages = [build(shape, n) for n in range(count)]
                    backend = mailer(sink.port, sessions)
                    return rate(lambda: backend.send_messages(messages), count)

                def async_(shape: dict[str, Any] = shape, sessions: int = sessions) -> float:
                    messages = [build(shape, n) for n in range(count)]
                    backend = mailer(sink.port, sessions)
                    return rate(lambda: asyncio.run(backend.asend_messages(messages)), count)

                mine, mine_async = median(runs, sync), median(runs, async_)
                if theirs:
                    print(f"{name:<19} {sessions:>8} {theirs:>8,.0f} {mine:>8,.0f} "
                          f"{mine / theirs:>6.1f}x {mine_async:>8,.0f} "
                          f"{mine_async / theirs:>6.1f}x", flush=True)  # fmt: skip
                else:
                    print(f"{name:<19} {sessions:>8} {'-':>8} {mine:>8,.0f} {'':>7} "
                          f"{mine_async:>8,.0f}", flush=True)  # fmt: skip
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
