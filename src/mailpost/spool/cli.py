"""``mailpost spool list|show|retry|purge|stats|work``: the CLI over :class:`Spool`.

:func:`add_spool_commands` registers the ``spool`` command on the main parser's
subparsers. Every leaf sets ``func``: call ``args.func(args)``, which returns the exit
status. The spool is chosen by ``--using ALIAS`` (a spool mailer, default ``spool``) or
``--path FILE`` (a spool file, with default settings).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from types import FrameType
from typing import IO, Any

from mailpost.spool.api import Spool
from mailpost.spool.record import STATES, SpoolRecord
from mailpost.spool.worker import Worker

__all__ = ["add_spool_commands", "main"]

Handler = Callable[[argparse.Namespace], int]


def add_spool_commands(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Add ``spool`` and its subcommands to ``subparsers``; returns the ``spool`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument(
        "--using",
        metavar="ALIAS",
        default=None,
        help="the spool mailer (a MAILERS alias using mailpost.backends.spool; default: spool)",
    )
    where.add_argument(
        "--path", metavar="FILE|URL", help="open this spool directly (a file, or postgresql://)"
    )

    spool = subparsers.add_parser(
        "spool", help="inspect and operate the durable spool", description=__doc__
    )
    commands = spool.add_subparsers(dest="spool_command", metavar="COMMAND")
    commands.required = True

    p = commands.add_parser("list", parents=[common], help="list spooled messages")
    p.add_argument("--state", action="append", choices=STATES, help="only these states")
    p.add_argument("--mailer", help="only messages for this target mailer")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_list)

    p = commands.add_parser("show", parents=[common], help="one message with its history")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--events",
        metavar="STORE",
        default=None,
        help="also show delivery events recorded in this suppression store "
        "(default: $MAILPOST_SUPPRESSIONS, if set)",
    )
    p.set_defaults(func=_show)

    p = commands.add_parser(
        "retry",
        parents=[common],
        help="requeue dead messages (for the recipients that did not get them)",
    )
    p.add_argument("ids", type=int, nargs="*", help="message ids (default: every dead one)")
    p.add_argument(
        "--queued", action="store_true", help="also make waiting (queued) messages due now"
    )
    p.set_defaults(func=_retry)

    p = commands.add_parser("purge", parents=[common], help="delete finished messages")
    p.add_argument("ids", type=int, nargs="*", help="only these ids")
    p.add_argument(
        "--state",
        action="append",
        choices=STATES,
        help="states to delete (repeatable; default: sent)",
    )
    p.add_argument("--older-than", type=float, metavar="SECONDS", help="last changed before")
    p.set_defaults(func=_purge)

    p = commands.add_parser("stats", parents=[common], help="counts by state and mailer")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=2.0,
        metavar="SECONDS",
        help="print the counts again every SECONDS (default 2) until interrupted",
    )
    p.add_argument("--count", type=int, help="with --watch: stop after this many reports")
    p.set_defaults(func=_stats)

    p = commands.add_parser("work", parents=[common], help="run a delivery worker")
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is due")
    p.add_argument("--max-seconds", type=float, help="exit after this long")
    p.add_argument("--max-messages", type=int, help="exit after this many attempts")
    p.add_argument("--poll-interval", type=float, default=1.0)
    p.add_argument("--worker-id", help="name in the history (default host:pid:random)")
    p.add_argument(
        "--quiet", action="store_true", help="no progress line (it is shown only on a terminal)"
    )
    p.set_defaults(func=_work)
    parser: argparse.ArgumentParser = spool
    return parser


def _open(args: argparse.Namespace) -> Spool:
    if getattr(args, "path", None):
        return Spool.open(args.path)
    return Spool.from_mailer(getattr(args, "using", None) or "spool")


def _out(args: argparse.Namespace) -> IO[str]:
    stream: IO[str] = getattr(args, "stdout", None) or sys.stdout
    return stream


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _row(record: SpoolRecord) -> dict[str, Any]:
    data = asdict(record)
    data.pop("data", None)
    data.pop("lease_token", None)
    return data


def _list(args: argparse.Namespace) -> int:
    spool = _open(args)
    records = spool.list(state=args.state, mailer=args.mailer, limit=args.limit, offset=args.offset)
    out = _out(args)
    if args.json:
        for record in records:
            out.write(json.dumps(_row(record)) + "\n")
        return 0
    out.write(
        f"{'ID':>6} {'STATE':<7} {'PRI':>3} {'TRIES':>5} {'NEXT ATTEMPT':<19} "
        f"{'MAILER':<10} {'RCPT ok/fail/pend':<17} MESSAGE-ID\n"
    )
    for r in records:
        counts = f"{len(r.delivered)}/{len(r.failed)}/{len(r.pending)}"
        next_at = _when(r.next_attempt_at) if r.state == "queued" else "-"
        out.write(
            f"{r.id:>6} {r.state:<7} {r.priority:>3} {r.attempts:>5} {next_at:<19} "
            f"{r.mailer:<10} {counts:<17} {r.message_id or '-'}\n"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    spool = _open(args)
    out = _out(args)
    try:
        entry = spool.show(args.id)
    except KeyError as exc:
        sys.stderr.write(f"mailpost spool show: {exc.args[0]}\n")
        return 1
    r = entry.record
    events = _linked_events(args, r.message_id)
    if args.json:
        shown = {"record": _row(r), "history": [asdict(a) for a in entry.history]}
        if events is not None:
            shown["events"] = events
        out.write(json.dumps(shown) + "\n")
        return 0
    out.write(
        f"id:           {r.id}\nmessage-id:   {r.message_id}\nstate:        {r.state}\n"
        f"mailer:       {r.mailer}\nsender:       {r.sender}\npriority:     {r.priority}\n"
        f"queued:       {_when(r.created_at)}\nsend at:      {_when(r.send_at)}\n"
        f"attempts:     {r.attempts}\n"
        f"next attempt: {_when(r.next_attempt_at) if r.state == 'queued' else '-'}\n"
        f"size:         {r.size} bytes\nlast error:   {r.last_error or '-'}\nrecipients:\n"
    )
    for rcpt in r.recipients:
        code = "" if rcpt.code is None else f" {rcpt.code}"
        out.write(f"  {rcpt.status:<9} {rcpt.address}{code} {rcpt.reply}".rstrip() + "\n")
    out.write("history:\n")
    for a in entry.history:
        out.write(f"  #{a.attempt} {_when(a.finished_at)} {a.worker} {a.outcome}")
        out.write(f": {a.error}\n" if a.error else "\n")
        for rcpt in a.recipients:
            code = "" if rcpt.code is None else f" {rcpt.code}"
            out.write(f"      {rcpt.status:<9} {rcpt.address}{code} {rcpt.reply}".rstrip() + "\n")
    if events is not None:
        out.write("events:\n")
        for e in events:
            kind = e["kind"] + (f" ({e['bounce']})" if e["bounce"] else "")
            out.write(f"  {_when(e['at'])} {kind:<16} {e['recipient']} [{e['provider']}]")
            out.write(f" {e['reason']}\n" if e["reason"] else "\n")
    return 0


def _linked_events(args: argparse.Namespace, message_id: str | None) -> list[dict[str, Any]] | None:
    """Delivery events (webhooks, bounces) recorded for this Message-ID, when a store is named."""
    import os

    location = getattr(args, "events", None) or os.environ.get("MAILPOST_SUPPRESSIONS")
    is_url = str(location or "").startswith(("postgresql://", "postgres://"))
    if not location or not message_id or not (is_url or os.path.exists(location)):
        return None
    from mailpost._suppressions import SuppressionStore

    with SuppressionStore(location) as store:
        return store.events(message_id=message_id)


def _retry(args: argparse.Namespace) -> int:
    spool = _open(args)
    states = ("dead", "queued") if args.queued else ("dead",)
    count = spool.retry(args.ids or None, states=states)
    _out(args).write(f"requeued {count} message(s)\n")
    return 0


def _purge(args: argparse.Namespace) -> int:
    spool = _open(args)
    count = spool.purge(
        states=args.state or ("sent",), ids=args.ids or None, older_than=args.older_than
    )
    _out(args).write(f"purged {count} message(s)\n")
    return 0


def _stats(args: argparse.Namespace) -> int:
    spool = _open(args)
    out = _out(args)
    if args.watch is None:
        _print_stats(spool, out, as_json=args.json)
        return 0
    if not args.watch > 0:
        sys.stderr.write("mailpost spool stats: --watch needs a positive number of seconds\n")
        return 2
    clear = not args.json and out.isatty()
    reports = 0
    try:
        while args.count is None or reports < args.count:
            if reports:
                time.sleep(args.watch)
            if clear:
                out.write("\x1b[H\x1b[J")  # home, clear screen: the counts stay in place
            elif reports and not args.json:
                out.write("\n")
            out.write(f"{_when(time.time())}\n" if not args.json else "")
            _print_stats(spool, out, as_json=args.json)
            out.flush()
            reports += 1
    except KeyboardInterrupt:
        out.write("\n")
    return 0


def _print_stats(spool: Spool, out: IO[str], *, as_json: bool) -> None:
    stats = spool.stats()
    if as_json:
        out.write(json.dumps(stats) + "\n")
        return
    for state in STATES:
        out.write(f"{state:<8} {stats['states'].get(state, 0)}\n")
    out.write(f"{'total':<8} {stats['total']}\n{'due':<8} {stats['due']}\n")
    age = stats["oldest_pending_age"]
    out.write(f"oldest pending: {'-' if age is None else f'{age:.0f} s'}\n")
    for mailer, counts in sorted(stats["mailers"].items()):
        text = " ".join(f"{k}={v}" for k, v in counts.items() if v)
        out.write(f"mailer {mailer}: {text}\n")


def _work(args: argparse.Namespace) -> int:
    spool = _open(args)
    worker = spool.worker(worker_id=args.worker_id)

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    status: IO[str] = getattr(args, "stderr", None) or sys.stderr
    line = None if args.quiet or not status.isatty() else status_display(spool, worker, status)
    try:
        if line is not None:
            line.start()
        done = worker.run(
            until_idle=args.until_idle,
            max_messages=args.max_messages,
            max_seconds=args.max_seconds,
            poll_interval=args.poll_interval,
        )
    finally:
        if line is not None:
            line.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _out(args).write(f"worker {worker.worker_id}: {done} attempt(s)\n")
    return 0


class StatusLine:
    """What a working worker shows on a terminal: counts, rate and queue depth, kept fresh.

    The text is one line (:meth:`render`); the queue depth is one cheap count, taken at
    most once a second. :meth:`start` and :meth:`stop` drive the display: rich's live
    display when ``rich`` is installed (``pip install "mailpost[cli]"``), which redraws
    from its own thread and knows the terminal; otherwise a plain ``\\r``-rewritten line
    from a daemon thread, so the core keeps no dependency.
    """

    def __init__(self, spool: Spool, worker: Worker, stream: IO[str], interval: float = 0.5):
        self.spool = spool
        self.worker = worker
        self.stream = stream
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailpost-spool-status")
        self._thread.daemon = True
        self._depth: int | None = None
        self._depth_at = float("-inf")
        self._width = 0

    def render(self, now: float) -> str:
        p = self.worker.progress
        elapsed = max(now - p.started, 1e-9)
        depth = "?" if self._depth is None else str(self._depth)
        return (
            f"delivered {p.delivered}  retrying {p.retrying}  failed {p.failed}  "
            f"{p.attempts / elapsed:,.0f} msg/s  queue {depth}"
        )

    def text(self) -> str:
        """The line as of now, with a queue depth at most a second old."""
        now = self.worker.clock()
        if now - self._depth_at >= 1.0:
            self._refresh_depth()
            self._depth_at = now
        return self.render(now)

    def _refresh_depth(self) -> None:
        try:
            states = self.spool.stats()["states"]
            self._depth = int(states["queued"]) + int(states["leased"])
        except Exception:  # the store is busy: show the last depth
            pass

    def _draw(self) -> None:
        text = self.text()
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._draw()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self._depth_at = float("-inf")
        self._draw()
        self.stream.write("\n")
        self.stream.flush()


class RichStatus(StatusLine):
    """The same line through rich's ``Live`` display (the ``[cli]`` extra)."""

    def __init__(self, spool: Spool, worker: Worker, stream: IO[str], interval: float = 0.5):
        super().__init__(spool, worker, stream, interval)
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        self._live = Live(
            console=Console(file=stream, highlight=False),
            get_renderable=lambda: Text(self.text(), no_wrap=True, overflow="ellipsis"),
            refresh_per_second=1 / interval,
            transient=False,
        )

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        self._depth_at = float("-inf")
        self._live.stop()
        self.stream.flush()


def status_display(spool: Spool, worker: Worker, stream: IO[str]) -> StatusLine:
    """rich's live line when rich is installed, else the plain one."""
    try:
        import rich.live  # noqa: F401
    except ImportError:
        return StatusLine(spool, worker, stream)
    return RichStatus(spool, worker, stream)


def main(argv: list[str] | None = None) -> int:
    """``python -m mailpost.spool.cli ...``: the spool commands without the main CLI."""
    parser = argparse.ArgumentParser(prog="mailpost")
    add_spool_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    handler: Handler = args.func
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
