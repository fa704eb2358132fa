"""Webhook events parsed per second per provider, signature verification included.

    python bench/events.py [--seconds 1.0]

Each provider's request is a correctly signed bounce built with test keys (tests/events_signing.py);
the figure is full ``mailpost.events.parse`` calls (verify + decode + normalize) per second on
one core. Needs the test extra (cryptography).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from events_signing import CONFIGS, signed
from mailpost.events import PROVIDERS, parse


def rate(provider: str, seconds: float) -> tuple[float, int]:
    headers, body = signed(provider)
    config = CONFIGS[provider]
    count = 0
    events = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            events += len(parse(provider, headers, body, config))
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start), events // count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per provider")
    args = parser.parse_args()
    print(f"{'provider':<10} {'requests/s':>12} {'events/req':>11} {'events/s':>12}")
    for provider in PROVIDERS:
        per_second, per_request = rate(provider, args.seconds)
        total = per_second * per_request
        print(f"{provider:<10} {per_second:>12,.0f} {per_request:>11} {total:>12,.0f}")


if __name__ == "__main__":
    main()
