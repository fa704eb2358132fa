"""HTTP backend overhead: mailpost's Resend backend against a plain httpx loop.

Both post the same JSON payloads to the same local fake of Resend's ``POST /emails``
(``tests/http_fakes.py``, run in a child process so it does not share our GIL), one
request per message over one pooled connection, sync and async. The backend composes each
message (headers validated, Message-ID made), builds the payload, classifies the reply and
records a DeliveryResult; the plain loop only posts pre-built bytes. Then the backend's
throughput with 1, 4 and 16 concurrent requests (``max_connections``), and with the batch
endpoint. Every figure is the median of ``--runs`` runs.

Run with ``bench/run http`` or ``python bench/http_backends.py [-n 300] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

import mailpost
from mailpost.backends.http._base import json_body
from mailpost.backends.http._parts import message_parts
from mailpost.backends.http.resend import ResendBackend, resend_payload

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
KEY = "test-key-123"

_SERVE = f"""
import sys, time
sys.path.insert(0, {TESTS!r})
from http_fakes import start_fake
fake, server = start_fake("resend")
print(fake.url, flush=True)
sys.stdin.read()
"""


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
    every run sends new Message-IDs (a repeated one would hit the fake's idempotency path)."""
    rates = []
    for _ in range(runs):
        data = setup()
        started = time.perf_counter()
        fn(data)
        rates.append(n / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300, help="messages per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n, runs = args.n, args.runs

    child = subprocess.Popen(
        [sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()

        def backend(**options: Any) -> ResendBackend:
            options.setdefault("batch", False)
            return ResendBackend(KEY, base_url=url, timeout=30, **options)

        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

        def bodies() -> list[tuple[str, bytes]]:
            out = []
            for msg in messages(n):
                parts = message_parts(msg, "Resend")
                out.append((parts.message_id or "", json_body(resend_payload(parts))))
            return out

        def fresh() -> list[mailpost.EmailMultiAlternatives]:
            return messages(n)

        def plain_sync(items: list[tuple[str, bytes]]) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                for mid, body in items:
                    r = client.post(
                        "/emails", content=body, headers=headers | {"Idempotency-Key": mid}
                    )
                    r.raise_for_status()
                    r.json()

        async def plain_async(items: list[tuple[str, bytes]]) -> None:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                for mid, body in items:
                    r = await client.post(
                        "/emails", content=body, headers=headers | {"Idempotency-Key": mid}
                    )
                    r.raise_for_status()
                    r.json()

        def ours_sync(msgs: list[Any], **options: Any) -> None:
            assert backend(**options).send_messages(msgs) == n

        def ours_async(msgs: list[Any], **options: Any) -> None:
            assert asyncio.run(backend(**options).asend_messages(msgs)) == n

        ours_sync(fresh())  # warm up both sides
        plain_sync(bodies())
        base_s = median_rate(n, runs, plain_sync, bodies)
        ours_s = median_rate(n, runs, ours_sync, fresh)
        base_a = median_rate(n, runs, lambda b: asyncio.run(plain_async(b)), bodies)
        ours_a = median_rate(n, runs, ours_async, fresh)
        print(f"HTTP backend (Resend fake), {n} messages, median of {runs} runs, msg/s")
        print(f"{'':28}{'plain httpx':>12}{'mailpost':>10}{'ratio':>8}")
        print(f"{'sync, 1 connection':28}{base_s:12.0f}{ours_s:10.0f}{ours_s / base_s:8.2f}x")
        print(f"{'async, 1 connection':28}{base_a:12.0f}{ours_a:10.0f}{ours_a / base_a:8.2f}x")
        print("mailpost throughput by concurrent requests (max_connections), msg/s")
        for conns in (1, 4, 16):
            s = median_rate(n, runs, lambda m, c=conns: ours_sync(m, max_connections=c), fresh)
            a = median_rate(n, runs, lambda m, c=conns: ours_async(m, max_connections=c), fresh)
            print(f"  {conns:>2}: sync {s:7.0f}   async {a:7.0f}")
        b = median_rate(n, runs, lambda m: ours_sync(m, batch=True), fresh)
        print(f"  batch endpoint (100 per request), sync: {b:7.0f}")
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
