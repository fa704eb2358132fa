"""The ``mailpost`` command line: ``mailpost send ...`` (more subcommands to come).

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser
and sets ``handler`` to a function ``(args, io) -> exit code``. Exit codes: 0 success,
1 delivery failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mailpost._cli import send
from mailpost._cli._common import EXIT_USAGE, CliError, Streams

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
Send email from the command line with the mailers mailpost is configured with.

Mailers come from mailpost.configure(), Django's MAILERS setting, or the
MAILPOST_MAILERS environment variable (JSON; each value a dict or a mailer URL)."""

_EPILOG = """\
examples:
  # configure a mailer for this shell, then send
  export MAILPOST_MAILERS='{"default": "smtp://me%40example.com:PASSWORD@smtp.example.com:587?use_tls=true"}'
  mailpost send --to ann@example.com --subject "Hello" --body "It works."

  # no mailer configured yet? the message is printed instead of sent
  mailpost send --to ann@example.com --subject "Preview" --body-file note.txt

run "mailpost COMMAND --help" for a command's options."""


def build_parser() -> argparse.ArgumentParser:
    """The ``mailpost`` argument parser with every subcommand registered."""
    from mailpost import __version__

    parser = argparse.ArgumentParser(
        prog="mailpost",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mailpost {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    subparsers.required = True
    send.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mailpost`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit
    code instead of exiting, so it can be called from Python and from tests."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    streams = Streams(stdout=sys.stdout, stderr=sys.stderr)
    try:
        return int(args.handler(args, streams))
    except CliError as exc:
        streams.error(f"mailpost {args.command}: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        streams.error("mailpost: interrupted")
        return 130
