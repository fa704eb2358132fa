"""``mailpost preview`` (the local web UI for captured mail) and ``mailpost lint FILE.eml``."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from mailpost._cli._common import EXIT_DELIVERY, EXIT_OK, CliError, HelpFormatter, Streams

__all__ = ["register"]

_PREVIEW_EPILOG = """\
examples:
  mailpost preview                               # the mailers' capture/file/spool stores
  mailpost preview --smtp 127.0.0.1:1025         # also catch any program's SMTP mail
  mailpost preview --capture mail.sqlite3 --dir /tmp/mail --spool spool.sqlite3
  mailpost preview --previews myapp.mail_previews  # code-defined previews (gallery)

Messages from --smtp go into the --capture store (default mailpost-capture.sqlite3).
The UI listens on 127.0.0.1:8025 unless --host/--port say otherwise; it has no login,
so only bind it to a non-loopback address on a network you trust."""

_LINT_EPILOG = """\
examples:
  mailpost lint welcome.eml
  mailpost lint /tmp/mail/*.log          # file-backend output: every message in each file

exit status: 0 no errors (warnings allowed; --strict: none), 1 a message has errors,
             2 a file cannot be read."""


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def register(subparsers: Any) -> None:
    """Add the ``preview`` and ``lint`` subcommands."""
    parser = subparsers.add_parser(
        "preview",
        help="browse captured mail in a local web UI",
        description="Serve a local web app listing captured messages, newest first, with "
        "their HTML (sandboxed), text, headers, source, attachments and deliverability checks.",
        epilog=_PREVIEW_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8025, help="port for the web UI (default: 8025)"
    )
    parser.add_argument("--capture", metavar="PATH", help="a capture store (SQLite file) to show")
    parser.add_argument("--dir", metavar="PATH", help="a file-backend directory to show")
    parser.add_argument("--spool", metavar="PATH", help="a spool to show (read only)")
    parser.add_argument(
        "--smtp",
        metavar="HOST:PORT",
        type=_address,
        help="run an SMTP capture server there, storing into --capture",
    )
    parser.add_argument(
        "--previews",
        metavar="MODULE",
        action="append",
        default=[],
        help="import MODULE to register @mailpost.preview.preview functions",
    )
    parser.set_defaults(handler=run_preview)

    lint = subparsers.add_parser(
        "lint",
        help="check messages for deliverability problems",
        description="Check .eml files (or file-backend .log files) for deliverability problems.",
        epilog=_LINT_EPILOG,
        formatter_class=HelpFormatter,
    )
    lint.add_argument("files", nargs="+", metavar="FILE")
    lint.add_argument("--strict", action="store_true", help="fail on warnings too")
    lint.set_defaults(handler=run_lint)


def _sources(args: argparse.Namespace) -> list[Any]:
    from mailpost.preview import (
        DEFAULT_CAPTURE_PATH,
        CaptureSource,
        DirectorySource,
        PreviewsSource,
        SpoolSource,
        sources_from_mailers,
    )

    sources: dict[str, Any] = {}
    if not (args.capture or args.dir or args.spool):
        try:
            sources.update((s.name, s) for s in sources_from_mailers())
        except Exception:
            pass
    if args.capture or (args.smtp and "capture" not in sources) or not sources:
        sources["capture"] = CaptureSource(args.capture or DEFAULT_CAPTURE_PATH)
    if args.dir:
        sources["file"] = DirectorySource(args.dir)
    if args.spool:
        sources["spool"] = SpoolSource(args.spool)
    for module in args.previews:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise CliError(f"cannot import previews module {module!r}: {exc}") from exc
    if args.previews:
        sources["previews"] = PreviewsSource()
    return list(sources.values())


def run_preview(args: argparse.Namespace, streams: Streams) -> int:
    from mailpost.preview import PreviewApp, PreviewServer, SMTPCaptureServer

    sources = _sources(args)
    try:
        server = PreviewServer(PreviewApp(sources), args.host, args.port)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    smtp = None
    if args.smtp:
        store = next(s.store for s in sources if s.name == "capture")
        try:
            smtp = SMTPCaptureServer(store, *args.smtp).start()
        except ImportError as exc:
            server.stop()
            raise CliError(str(exc)) from exc
        except (OSError, RuntimeError) as exc:
            server.stop()
            raise CliError(
                f"cannot start the SMTP capture server on {args.smtp[0]}:{args.smtp[1]}: {exc}"
            ) from exc
    for source in sources:
        streams.out(f"source: {source!r}")
    if smtp is not None:
        streams.out(f"SMTP capture on {smtp.host}:{smtp.port}")
    streams.out(f"mailpost preview on {server.url} (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        if smtp is not None:
            smtp.stop()
        server._server.server_close()
    return EXIT_OK


def run_lint(args: argparse.Namespace, streams: Streams) -> int:
    from mailpost.preview.lint import lint
    from mailpost.preview.parse import split_log

    failed = False
    for name in args.files:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {name!r}: {exc.strerror or exc}") from exc
        messages = split_log(data) if name.endswith(".log") else [data]
        for position, message in enumerate(messages):
            label = name if len(messages) == 1 else f"{name}#{position}"
            findings = lint(message)
            if not findings:
                streams.out(f"{label}: ok")
            for finding in findings:
                streams.out(f"{label}: {finding}")
            if any(f.severity == "error" or args.strict for f in findings):
                failed = True
    return EXIT_DELIVERY if failed else EXIT_OK
