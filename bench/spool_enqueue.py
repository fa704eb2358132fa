"""Enqueue throughput of the spool backend with the SQLite store (durable: WAL, FULL).

Two figures: one ``send_messages`` call (one fsync'd commit) per message, and batches of
100 messages per call. Each prints measured msg/s and the ratio to its target
(2,000 msg/s single, 20,000 msg/s batched). Run: ``python bench/spool_enqueue.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

try:
    import mailpost
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    import mailpost

from mailpost import EmailMessage
from mailpost.backends.spool import SpoolBackend

TARGET_SINGLE = 2_000.0
TARGET_BATCH = 20_000.0


def _messages(n: int) -> list[EmailMessage]:
    return [
        EmailMessage(
            f"Order {i} confirmed",
            "Thank you for your order.\nIt ships tomorrow.\n" * 4,
            "shop@example.com",
            [f"customer{i}@example.org"],
        )
        for i in range(n)
    ]


def _measure(directory: str, n: int, batch: int, url: str | None = None) -> float:
    path = url or os.path.join(directory, f"bench-{batch}.sqlite3")
    backend = SpoolBackend(alias="spool", mailer="smtp", path=path)
    backend.send_messages(_messages(1))  # open the store, create the schema
    messages = _messages(n)
    start = time.perf_counter()
    for i in range(0, n, batch):
        backend.send_messages(messages[i : i + batch])
    elapsed = time.perf_counter() - start
    return n / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--single", type=int, default=3_000, help="messages, one per call")
    parser.add_argument("--batched", type=int, default=30_000, help="messages in batches")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--dir", help="where to put the spool files (default: a temp dir)")
    parser.add_argument("--url", help="measure a PostgreSQL spool instead (postgresql://...)")
    args = parser.parse_args(argv)
    mailpost.configure()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        single = _measure(directory, args.single, 1, args.url)
        batched = _measure(directory, args.batched, args.batch_size, args.url)
    print(f"durable enqueue, 1 message per call:  {single:9.0f} msg/s  "
          f"(target {TARGET_SINGLE:.0f}, ratio {single / TARGET_SINGLE:.2f})")  # fmt: skip
    print(f"durable enqueue, {args.batch_size} per call:       {batched:9.0f} msg/s  "
          f"(target {TARGET_BATCH:.0f}, ratio {batched / TARGET_BATCH:.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
