"""``mailpost suppress list|add|remove|import|export`` and ``mailpost bounces``.

Registered on the main parser by :func:`register`; each leaf sets ``handler(args, streams)``.
The store is ``--store FILE`` (default: ``$MAILPOST_SUPPRESSIONS`` or
``mailpost-suppressions.sqlite3``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from typing import Any

from mailpost._cli._common import EXIT_OK, CliError, HelpFormatter, Streams
from mailpost._suppressions import DEFAULT_PATH, SuppressionStore

__all__ = ["register"]

_SUPPRESS_EPILOG = """\
examples:
  mailpost suppress list                       # the do-not-send list
  mailpost suppress add ann@example.com --reason "asked by phone"
  mailpost suppress remove ann@example.com
  mailpost suppress export > list.csv
  mailpost suppress import list.csv            # CSV as exported, or one address per line"""

_BOUNCES_EPILOG = """\
examples:
  mailpost bounces bounce.eml                  # the events in one bounce message
  mailpost bounces ~/Maildir/.bounces --suppress suppressions.sqlite3
  cat bounce.eml | mailpost bounces -          # from stdin"""


def _store(args: argparse.Namespace) -> SuppressionStore:
    return SuppressionStore(args.store or os.environ.get("MAILPOST_SUPPRESSIONS") or DEFAULT_PATH)


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _list(args: argparse.Namespace, streams: Streams) -> int:
    with _store(args) as store:
        for s in store.list():
            if args.json:
                streams.stdout.write(
                    json.dumps(
                        {
                            "address": s.address,
                            "reason": s.reason,
                            "source": s.source,
                            "created_at": s.created_at,
                            "expires_at": s.expires_at,
                        }
                    )
                    + "\n"
                )
            else:
                streams.stdout.write(
                    f"{s.address}\t{s.source}\t{_when(s.created_at)}\t"
                    f"expires {_when(s.expires_at)}\t{s.reason}\n"
                )
    return EXIT_OK


def _add(args: argparse.Namespace, streams: Streams) -> int:
    with _store(args) as store:
        for address in args.addresses:
            try:
                store.add(address, args.reason)
            except ValueError as exc:
                raise CliError(str(exc)) from None
    return EXIT_OK


def _remove(args: argparse.Namespace, streams: Streams) -> int:
    missing = []
    with _store(args) as store:
        for address in args.addresses:
            if not store.remove(address):
                missing.append(address)
    if missing:
        raise CliError(f"not on the list: {', '.join(missing)}", 1)
    return EXIT_OK


def _import(args: argparse.Namespace, streams: Streams) -> int:
    with _store(args) as store:
        try:
            if args.file == "-":
                n = store.import_lines(sys.stdin, reason=args.reason)
            else:
                with open(args.file, encoding="utf-8") as f:
                    n = store.import_lines(f, reason=args.reason)
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot import {args.file}: {exc}") from None
    streams.stderr.write(f"imported {n} address(es)\n")
    return EXIT_OK


def _export(args: argparse.Namespace, streams: Streams) -> int:
    with _store(args) as store:
        store.export_csv(streams.stdout)
    return EXIT_OK


def _bounces(args: argparse.Namespace, streams: Streams) -> int:
    from mailpost.events.dsn import parse_dsn, parse_mailbox

    events = []
    for source in args.sources:
        try:
            if source == "-":
                events.extend(parse_dsn(sys.stdin.buffer.read()))
            elif os.path.isdir(source):
                events.extend(parse_mailbox(source))
            else:
                with open(source, "rb") as f:
                    head = f.read(5)
                    data = head + f.read()
                events.extend(parse_mailbox(source) if head == b"From " else parse_dsn(data))
        except OSError as exc:
            raise CliError(f"cannot read {source}: {exc}") from None
    for e in events:
        streams.stdout.write(
            json.dumps(
                {
                    "kind": e.kind,
                    "bounce": e.bounce,
                    "recipient": e.recipient,
                    "status": e.status,
                    "smtp_code": e.smtp_code,
                    "message_id": e.message_id,
                    "reason": e.reason,
                }
            )
            + "\n"
        )
    if args.suppress:
        with SuppressionStore(args.suppress) as store:
            added = store.record(events)
        streams.stderr.write(f"{len(events)} event(s); {len(added)} address(es) suppressed\n")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``suppress`` and ``bounces`` to the ``mailpost`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", metavar="FILE", help=f"suppression store (default {DEFAULT_PATH})"
    )
    sp = subparsers.add_parser(
        "suppress",
        help="the do-not-send list",
        epilog=_SUPPRESS_EPILOG,
        formatter_class=HelpFormatter,
    )
    commands = sp.add_subparsers(dest="suppress_command", metavar="COMMAND")
    commands.required = True
    p = commands.add_parser("list", parents=[common], help="show suppressed addresses")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=_list)
    p = commands.add_parser("add", parents=[common], help="suppress addresses")
    p.add_argument("addresses", nargs="+")
    p.add_argument("--reason", default="added by hand")
    p.set_defaults(handler=_add)
    p = commands.add_parser("remove", parents=[common], help="stop suppressing addresses")
    p.add_argument("addresses", nargs="+")
    p.set_defaults(handler=_remove)
    p = commands.add_parser(
        "import", parents=[common], help="add addresses from a file (- = stdin)"
    )
    p.add_argument("file")
    p.add_argument("--reason", default="imported")
    p.set_defaults(handler=_import)
    p = commands.add_parser("export", parents=[common], help="write the list as CSV")
    p.set_defaults(handler=_export)

    bp = subparsers.add_parser(
        "bounces",
        help="read SMTP bounce messages (DSNs) into events",
        epilog=_BOUNCES_EPILOG,
        formatter_class=HelpFormatter,
    )
    bp.add_argument(
        "sources",
        nargs="+",
        metavar="FILE|MAILDIR|-",
        help="a message, an mbox file, a Maildir, or - for stdin",
    )
    bp.add_argument("--suppress", metavar="STORE", help="also feed this suppression store")
    bp.set_defaults(handler=_bounces)
