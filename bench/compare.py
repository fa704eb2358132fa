"""This checkout against another revision, in one process: SMTP sending, alternating runs.

Two separate benchmark runs on a shared machine differ by up to ~25% from run to run, which
hides a 5-10% regression. Here the other revision's ``src/mailpost`` is loaded beside this
checkout's as the package ``mailpost_base`` (its imports renamed), and the two send the same
pre-serialized messages to one Postfix ``smtp-sink`` in turn, run by run, the order flipped
on every other pair. Printed per shape and session count: each side's median messages/s
and CPU µs per message, how many pairs this checkout won, and the ratio of the medians.
About half the pairs won and a ratio near 1.00 is "unchanged within noise".

Run: ``.venv/bench/bin/python bench/compare.py 001435e`` (after ``bench/run smtp`` has made
the venv and installed Postfix), with ``--pairs``, ``--messages``, ``--connections``,
``--async`` to measure ``asend_messages`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serialize import shapes
from smtp import SENDER, SHAPES, Sink, prebuilt

import mailpost

BASE = "mailpost_base"
_IMPORTS = [
    (re.compile(r"\bmailpost\."), f"{BASE}."),
    (re.compile(r"\bfrom mailpost import\b"), f"from {BASE} import"),
    (re.compile(r"^(\s*)import mailpost\b", re.M), rf"\1import {BASE}"),
]


def load_revision(revision: str, into: Path) -> Any:
    """``revision``'s ``src/mailpost`` as the package ``mailpost_base`` (from ``git archive``)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", revision, "src/mailpost"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / BASE
    (into / "src" / "mailpost").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern, replacement in _IMPORTS:
            text = pattern.sub(replacement, text)
        path.write_text(text, encoding="utf-8")
    sys.path.insert(0, str(into))
    return importlib.import_module(BASE)


def messages(module: Any, wires: list[bytes], shape: dict[str, Any]) -> list[Any]:
    """One message per wire bytes, of ``module``'s own ``EmailMessage`` class."""

    class Prebuilt(module.EmailMessage):  # type: ignore[misc,name-defined]
        wire = b""

        def _render(self, *, eight_bit: bool = False) -> bytes:
            return self.wire

    out = []
    for wire in wires:
        msg = Prebuilt(from_email=SENDER, to=shape["to"], cc=shape["cc"], bcc=shape["bcc"])
        msg.wire = wire
        out.append(msg)
    return out


def one_run(module: Any, wires: list[bytes], shape: dict[str, Any], port: int,
            sessions: int, use_async: bool) -> tuple[float, float]:  # fmt: skip
    """(messages/s, CPU µs per message) for one send of ``wires`` through ``module``."""
    backend_class = importlib.import_module(f"{module.__name__}.backends.smtp").EmailBackend
    batch = messages(module, wires, shape)
    backend = backend_class(host="127.0.0.1", port=port, timeout=30, max_connections=sessions)
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    send = backend.send_messages
    sent = asyncio.run(backend.asend_messages(batch)) if use_async else send(batch)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if sent != len(wires):
        raise RuntimeError(f"{module.__name__}: sent {sent} of {len(wires)}")
    return len(wires) / elapsed, cpu / len(wires) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("revision", help="the git revision to compare with (e.g. main, 001435e)")
    parser.add_argument("--pairs", type=int, default=12, help="alternating pairs per figure")
    parser.add_argument("--messages", type=int, default=5000, help="messages per run")
    parser.add_argument("--connections", default="1,4,16", help="pool sizes to measure")
    parser.add_argument("--async", dest="use_async", action="store_true",
                        help="measure asend_messages instead of send_messages")  # fmt: skip
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # constructing the backend class directly is deprecated
    levels = [int(c) for c in args.connections.split(",")]
    with tempfile.TemporaryDirectory() as directory:
        base = load_revision(args.revision, Path(directory))
        sink = Sink()
        try:
            api = "asend_messages" if args.use_async else "send_messages"
            print(f"# {api}: this checkout against {args.revision}, one process, smtp-sink; "
                  f"{args.pairs} alternating pairs of {args.messages:,} messages")  # fmt: skip
            print(f"{'shape':<19} {'sessions':>8} {'base msg/s':>11} {'µs':>6} "
                  f"{'this msg/s':>11} {'µs':>6} {'won':>7} {'ratio':>6}")  # fmt: skip
            all_shapes = shapes()
            for name in SHAPES:
                shape = all_shapes[name]
                wires = [m.wire for m in prebuilt(shape, args.messages)]  # type: ignore[attr-defined]
                for sessions in levels:
                    runs: dict[str, list[tuple[float, float]]] = {"base": [], "this": []}
                    sides = [("base", base), ("this", mailpost)]
                    for pair in range(args.pairs):
                        for tag, module in sides if pair % 2 == 0 else sides[::-1]:
                            runs[tag].append(one_run(module, wires, shape, sink.port,
                                                     sessions, args.use_async))  # fmt: skip
                    won = sum(t[0] > b[0] for b, t in zip(runs["base"], runs["this"], strict=True))
                    rate = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
                    cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
                    print(f"{name:<19} {sessions:>8} {rate['base']:>11,.0f} {cpu['base']:>6.1f} "
                          f"{rate['this']:>11,.0f} {cpu['this']:>6.1f} "
                          f"{won:>3}/{args.pairs:<3} {rate['this'] / rate['base']:>5.2f}x",
                          flush=True)  # fmt: skip
        finally:
            sink.stop()


if __name__ == "__main__":
    main()
