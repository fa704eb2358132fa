"""HTTP backend overhead and concurrency: mailpost's Resend backend against plain httpx.

Two local servers, loopback only, each in child processes so neither shares our GIL:

* the documented fake (``tests/http_fakes.py``, the one the tests use: it rebuilds every
  accepted message as MIME, so each reply costs it a few ms);
* a fast server made for this bench (:func:`serve`): asyncio, HTTP/1.1 keep-alive, several
  worker processes accepting on one socket, the same Resend ``POST /emails`` contract (Bearer
  key, from/to/subject, Idempotency-Key replay, 200 ``{"id": ...}``) without the MIME
  rebuilding, and an optional fixed reply delay standing in for a real API's round trip.

First the backend against a plain httpx loop posting the same pre-built payloads (one
request per message, one pooled connection, sync and async): the backend composes each
message (headers validated, Message-ID made), builds the payload, classifies the reply and
records a DeliveryResult inside the timed part; the plain loop only posts bytes. Then the
backend's throughput at 1, 4 and 16 concurrent requests (``max_connections``) on the fast
server, with no delay (client CPU is the limit) and with a 20 ms delay (the round trip is the
limit, so concurrency should scale it), and with the batch endpoint. Every figure is the
median of ``--runs`` runs; ratios compare runs of the same process.

Run with ``bench/run http`` or ``python bench/http_backends.py [-n 300] [--runs 3]``.
The interpreter needs httpx and pytest (``tests/http_fakes.py`` imports the test helpers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

import mailpost
from mailpost.backends.http._base import json_body, shared_ssl_context
from mailpost.backends.http._parts import message_parts
from mailpost.backends.http.resend import ResendBackend, resend_payload

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
KEY = "test-key-123"

_SERVE_FAKE = f"""
import sys
sys.path.insert(0, {TESTS!r})
from http_fakes import start_fake
fake, server = start_fake("resend")
server.request_queue_size = 64
print(fake.url, flush=True)
sys.stdin.read()
"""

# -- the fast server ---------------------------------------------------------------------


def _reply(status: int, body: Any) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode("ascii") + data


def _error(status: int, name: str, message: str) -> bytes:
    return _reply(status, {"statusCode": status, "name": name, "message": message})


class _Resend(asyncio.Protocol):
    """Resend's send endpoints as the docs describe them (see tests/http_fakes.py), over
    keep-alive HTTP/1.1; replies go out in request order after ``delay`` seconds."""

    seen: dict[str, tuple[bytes, str]] = {}  # Idempotency-Key -> (body, id), per process

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        for _ in range(1000):  # requests pipelined in one read, bounded
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, path = [*lines[0].split(" "), "", ""][:2]
            reply = self.answer(method, path, headers, body)
            assert self.transport is not None
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self.transport.write, reply)
            else:
                self.transport.write(reply)

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> bytes:
        if method != "POST" or path not in ("/emails", "/emails/batch"):
            return _error(404, "not_found", "Not found")
        auth = headers.get("authorization", "")
        if not auth:
            return _error(401, "missing_api_key", "Missing API key in the authorization header.")
        if auth != f"Bearer {KEY}":
            return _error(403, "invalid_api_key", "API key is invalid")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(422, "validation_error", "Invalid JSON")
        emails = body if path == "/emails/batch" else [body]
        if not isinstance(emails, list) or not 1 <= len(emails) <= 100:
            return _error(422, "validation_error", "The batch must hold 1 to 100 emails.")
        for email in emails:
            for required in ("from", "to", "subject"):
                if not isinstance(email, dict) or not email.get(required):
                    return _error(422, "missing_required_field", f"Missing `{required}` field.")
        key = headers.get("idempotency-key")
        if key and key in self.seen:
            before, email_id = self.seen[key]
            if before != raw:
                return _error(
                    409,
                    "invalid_idempotent_request",
                    "Same idempotency key used with a different request payload.",
                )
            return _reply(200, {"id": email_id})
        ids = [str(uuid.uuid4()) for _ in emails]
        if key:
            self.seen[key] = (raw, ids[0])
        return _reply(
            200, {"data": [{"id": i} for i in ids]} if path != "/emails" else {"id": ids[0]}
        )


def serve(fd: int, delay: float) -> None:
    """One worker of the fast server: accept on the inherited listening socket ``fd``."""

    async def run() -> None:
        sock = socket.socket(fileno=fd)
        server = await asyncio.get_running_loop().create_server(
            lambda: _Resend(delay), sock=sock, backlog=256
        )
        async with server:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(run())


class FastServer:
    """``workers`` processes serving :class:`_Resend` on one loopback port."""

    def __init__(self, workers: int = 2, delay: float = 0.0) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        fd = self.sock.fileno()
        code = (
            f"import sys; sys.path.insert(0, {HERE!r}); import http_backends as b; "
            f"b.serve({fd}, {delay!r})"
        )
        self.children = [
            subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, pass_fds=[fd])
            for _ in range(workers)
        ]

    def close(self) -> None:
        for child in self.children:
            assert child.stdin is not None
            child.stdin.close()
        for child in self.children:
            child.wait(timeout=10)
        self.sock.close()

    def __enter__(self) -> FastServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- what is measured --------------------------------------------------------------------


def messages(n: int) -> list[mailpost.EmailMultiAlternatives]:
    out = []
    for i in range(n):
        msg = mailpost.EmailMultiAlternatives(
            f"Order {i} shipped",
            f"Hello,\nyour order {i} is on its way.\n",
            "Shop <shop@example.com>",
            [f"customer-{i}@example.com"],
            cc=["archive@example.com"],
        )
        msg.attach_alternative(f"<p>Your order <b>{i}</b> is on its way.</p>", "text/html")
        out.append(msg)
    return out


def median_rate(n: int, runs: int, fn: Callable[[Any], Any], setup: Callable[[], Any]) -> float:
    """Median messages/second of ``fn(setup())``; ``setup`` (untimed) makes fresh input, so
    every run sends new Message-IDs (a repeated one would hit the idempotency path)."""
    rates = []
    for _ in range(runs):
        data = setup()
        started = time.perf_counter()
        fn(data)
        rates.append(n / (time.perf_counter() - started))
    return statistics.median(rates)


class Bench:
    def __init__(self, url: str, n: int, runs: int) -> None:
        self.url, self.n, self.runs = url, n, runs
        self.headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def backend(self, **options: Any) -> ResendBackend:
        options.setdefault("batch", False)
        return ResendBackend(KEY, base_url=self.url, timeout=30, **options)

    def bodies(self) -> list[tuple[str, bytes]]:
        out = []
        for msg in messages(self.n):
            parts = message_parts(msg, "Resend")
            out.append((parts.message_id or "", json_body(resend_payload(parts))))
        return out

    def fresh(self) -> list[mailpost.EmailMultiAlternatives]:
        return messages(self.n)

    def plain_sync(self, items: list[tuple[str, bytes]]) -> None:
        with httpx.Client(base_url=self.url, timeout=30, verify=shared_ssl_context()) as client:
            for mid, body in items:
                r = client.post(
                    "/emails", content=body, headers=self.headers | {"Idempotency-Key": mid}
                )
                r.raise_for_status()
                r.json()

    async def plain_async(self, items: list[tuple[str, bytes]]) -> None:
        async with httpx.AsyncClient(
            base_url=self.url, timeout=30, verify=shared_ssl_context()
        ) as client:
            for mid, body in items:
                r = await client.post(
                    "/emails", content=body, headers=self.headers | {"Idempotency-Key": mid}
                )
                r.raise_for_status()
                r.json()

    def ours_sync(self, msgs: list[Any], **options: Any) -> None:
        assert self.backend(**options).send_messages(msgs) == self.n

    def ours_async(self, msgs: list[Any], **options: Any) -> None:
        assert asyncio.run(self.backend(**options).asend_messages(msgs)) == self.n

    def rate(self, fn: Callable[[Any], Any], setup: Callable[[], Any]) -> float:
        return median_rate(self.n, self.runs, fn, setup)

    def pair(
        self, plain: Callable[[Any], Any], ours: Callable[[Any], Any]
    ) -> tuple[float, float, float, float, float]:
        """Plain and mailpost runs interleaved (so a load change on the shared machine hits
        both): median msg/s of each, median of the per-run ratios, and the client process's
        CPU microseconds per message for each (the server runs in other processes)."""
        rates: tuple[list[float], list[float]] = ([], [])
        cpu: tuple[list[float], list[float]] = ([], [])
        for _ in range(self.runs):
            for side, (fn, setup) in enumerate(((plain, self.bodies), (ours, self.fresh))):
                data = setup()
                wall, used = time.perf_counter(), time.process_time()
                fn(data)
                cpu[side].append((time.process_time() - used) / self.n * 1e6)
                rates[side].append(self.n / (time.perf_counter() - wall))
        ratio = statistics.median(o / p for p, o in zip(*rates, strict=True))
        return (
            statistics.median(rates[0]),
            statistics.median(rates[1]),
            ratio,
            statistics.median(cpu[0]),
            statistics.median(cpu[1]),
        )

    def overhead(self, title: str) -> None:
        self.ours_sync(self.fresh())  # warm up both sides
        self.plain_sync(self.bodies())
        rows = {
            "sync, 1 connection": self.pair(self.plain_sync, self.ours_sync),
            "async, 1 connection": self.pair(
                lambda b: asyncio.run(self.plain_async(b)), self.ours_async
            ),
        }
        print(f"{title}, {self.n} messages, median of {self.runs} interleaved runs")
        print(
            f"{'':22}{'plain msg/s':>12}{'mailpost':>10}{'ratio':>8}"
            f"{'CPU us/msg plain':>18}{'mailpost':>10}"
        )
        for name, (base, ours, ratio, cpu_base, cpu_ours) in rows.items():
            print(f"{name:22}{base:12.0f}{ours:10.0f}{ratio:7.2f}x{cpu_base:18.0f}{cpu_ours:10.0f}")

    def concurrency(self, title: str) -> None:
        print(f"{title}: mailpost msg/s by concurrent requests (max_connections)")
        for conns in (1, 4, 16):
            s = self.rate(lambda m, c=conns: self.ours_sync(m, max_connections=c), self.fresh)
            a = self.rate(lambda m, c=conns: self.ours_async(m, max_connections=c), self.fresh)
            print(f"  {conns:>2}: sync {s:7.0f}   async {a:7.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300, help="messages per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="fast server processes")
    parser.add_argument("--delay", type=float, default=0.020, help="fast server reply delay (s)")
    args = parser.parse_args()
    n, runs = args.n, args.runs

    child = subprocess.Popen(
        [sys.executable, "-c", _SERVE_FAKE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        Bench(child.stdout.readline().strip(), n, runs).overhead(
            "Resend fake (tests/http_fakes.py)"
        )
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)

    with FastServer(args.workers) as server:
        bench = Bench(server.url, n, runs)
        bench.overhead(f"fast server ({args.workers} processes, no delay)")
        bench.concurrency("fast server, no delay")
        b = bench.rate(lambda m: bench.ours_sync(m, batch=True), bench.fresh)
        print(f"  batch endpoint (100 per request), sync: {b:7.0f}")
    with FastServer(1, args.delay) as server:
        Bench(server.url, n, runs).concurrency(f"fast server, {args.delay * 1000:g} ms reply delay")


if __name__ == "__main__":
    main()
