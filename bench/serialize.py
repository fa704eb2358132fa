"""Build + serialize to wire bytes: mailpost against Django's django.core.mail, same process.

Prints, per message shape, the median time per message of each library over several runs,
the ratio (Django time / mailpost time), and the peak traced memory relative to the wire
size. Run with ``bench/run serialize`` (installs Django 6.1.3 in a Python >= 3.12 venv), or
directly with ``python bench/serialize.py`` where Django is installed (without Django it
prints mailpost's figures only).
"""

from __future__ import annotations

import argparse
import email.policy
import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import mailpost
from mailpost.message import serialize

TEXT_LINE = "Your order #12345 has shipped and is on its way to you. Grüße, the team.\n"
HTML_LINE = (
    '<tr><td style="padding:4px;font-family:Arial">Your order <b>#12345</b> has shipped '
    "&mdash; Grüße</td></tr>\n"
)


def shapes() -> dict[str, dict[str, Any]]:
    """The message shapes the issue names, as plain data both libraries consume."""
    rcpt = {"to": ["Ann Example <ann@example.com>"], "cc": ["bob@example.org"],
            "bcc": ["audit@example.net"]}  # fmt: skip
    return {
        "short text 1.2 KB": {**rcpt, "body": TEXT_LINE * 16, "html": None, "attachment": None},
        "text+HTML 7.2 KB": {
            **rcpt,
            "body": TEXT_LINE * 33,
            "html": "<table>\n" + HTML_LINE * 42 + "</table>\n",
            "attachment": None,
        },
        "1 MB attachment": {
            **rcpt,
            "body": TEXT_LINE * 4,
            "html": None,
            "attachment": ("report.pdf", os.urandom(1024 * 1024), "application/pdf"),
        },
    }


def build_mailpost(shape: dict[str, Any], eight_bit: bool = False) -> bytes:
    msg = mailpost.EmailMultiAlternatives(
        "Your order has shipped",
        shape["body"],
        "Shop <shop@example.com>",
        shape["to"],
        cc=shape["cc"],
        bcc=shape["bcc"],
    )
    if shape["html"]:
        msg.attach_alternative(shape["html"], "text/html")
    if shape["attachment"]:
        msg.attach(*shape["attachment"])
    return serialize(msg, eight_bit=eight_bit)


def build_mailpost_8bit(shape: dict[str, Any]) -> bytes:
    return build_mailpost(shape, eight_bit=True)


def django_builder() -> Callable[[dict[str, Any]], bytes] | None:
    try:
        import django
        from django.conf import settings
    except ImportError:
        return None
    if not settings.configured:
        settings.configure(DEFAULT_CHARSET="utf-8", DEFAULT_FROM_EMAIL="shop@example.com")
        django.setup()
    from django.core.mail import EmailMultiAlternatives

    def build(shape: dict[str, Any]) -> bytes:
        msg = EmailMultiAlternatives(
            "Your order has shipped",
            shape["body"],
            "Shop <shop@example.com>",
            shape["to"],
            cc=shape["cc"],
            bcc=shape["bcc"],
        )
        if shape["html"]:
            msg.attach_alternative(shape["html"], "text/html")
        if shape["attachment"]:
            msg.attach(*shape["attachment"])
        return msg.message(policy=email.policy.SMTP).as_bytes()

    return build


def per_message(fn: Callable[[dict[str, Any]], bytes], shape: dict[str, Any], n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        fn(shape)
    return (time.perf_counter() - start) / n


def peak_ratio(fn: Callable[[dict[str, Any]], bytes], shape: dict[str, Any]) -> float:
    """Peak memory traced while building and serializing, relative to the wire size.

    Counted above the shape's own input data, which both libraries are given.
    """
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    data = fn(shape)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / len(data)


def median_time(fn: Callable[[dict[str, Any]], bytes], shape: dict[str, Any], runs: int,
                seconds: float) -> float:  # fmt: skip
    once = per_message(fn, shape, 3)
    n = max(3, int(seconds / max(once, 1e-7)))
    return statistics.median(per_message(fn, shape, n) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--seconds", type=float, default=0.4, help="target time per run")
    args = parser.parse_args()
    django_build = django_builder()
    machine = f"{platform.python_implementation()} {platform.python_version()}, "
    machine += f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"# build + serialize — {machine}, median of {args.runs} runs")
    if django_build is None:
        print("# Django not installed: mailpost figures only (bench/run installs Django 6.1.3)")
    else:
        import django

        print(f"# baseline: Django {django.get_version()} message(policy=SMTP).as_bytes(), "
              "same process")  # fmt: skip
    print("# mailpost 7-bit: default output (QP/base64); 8BITMIME: output for servers that "
          "offer it (Django always emits 8bit)")  # fmt: skip
    print(f"{'shape':<19} {'django':>10} {'mailpost 7-bit':>22} {'mailpost 8BITMIME':>22} "
          f"{'peak mem / wire':>24}")  # fmt: skip
    for name, shape in shapes().items():
        wire = build_mailpost(shape)
        seven = median_time(build_mailpost, shape, args.runs, args.seconds)
        eight = median_time(build_mailpost_8bit, shape, args.runs, args.seconds)
        our_peak = peak_ratio(build_mailpost, shape)
        if django_build is not None:
            theirs = median_time(django_build, shape, args.runs, args.seconds)
            their_peak = peak_ratio(django_build, shape)
            print(
                f"{name:<19} {theirs * 1e6:>7.0f} us"
                f" {seven * 1e6:>9.1f} us {theirs / seven:>7.1f}x"
                f" {eight * 1e6:>9.1f} us {theirs / eight:>7.1f}x"
                f"   mailpost {our_peak:.2f}x django {their_peak:.2f}x"
                f"  (wire {len(wire):,} B)"
            )
        else:
            print(
                f"{name:<19} {'-':>10} {seven * 1e6:>9.1f} us {'':>8} {eight * 1e6:>9.1f} us"
                f" {'':>8}   mailpost {our_peak:.2f}x  (wire {len(wire):,} B)"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
