"""The ``mailpost`` command line: ``check``, ``send``, ``sendtestemail`` and ``spool``.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser
and sets ``handler`` to a function ``(args, streams) -> exit code``. The ``spool`` commands
come from :mod:`mailpost.spool.cli` (their leaves set ``func(args) -> exit code``).
Exit codes: 0 success, 1 delivery failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from mailpost._cli import check, send, sendtestemail
from mailpost._cli import preview as preview_cli
from mailpost._cli._common import EXIT_USAGE, CliError, HelpFormatter, Streams, quiet_library_log

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
Send and check email with the mailers mailpost is configured with.

Mailers come from mailpost.configure(), Django's MAILERS setting, or the
MAILPOST_MAILERS environment variable (JSON; each value a mailer URL or a dict)."""

_EPILOG = """\
examples:
  # configure mailers for this shell (JSON: alias -> mailer URL or dict)
  export MAILPOST_MAILERS='{"default": "smtp://me%40example.com:PASSWORD@smtp.example.com:587?use_tls=true&timeout=10"}'

  # is every mailer reachable, with TLS and a working login? (nothing is sent)
  mailpost check

  # send a test message and see each recipient's reply from the server
  mailpost sendtestemail ann@example.com

  # send a real message
  mailpost send --to ann@example.com --subject "Hello" --body "It works."

run "mailpost COMMAND --help" for a command's options and examples.
exit status: 0 success, 1 delivery or check failed, 2 usage or configuration error."""

_SPOOL_EPILOG = """\
examples:
  mailpost spool stats                       # counts by state, for MAILERS["spool"]
  mailpost spool list --state dead           # messages that gave up
  mailpost spool show 42                     # one message with its delivery history
  mailpost spool retry                       # requeue every dead message
  mailpost spool work --until-idle           # deliver what is due, then exit
  mailpost spool purge --older-than 604800   # delete sent messages older than a week

run "mailpost spool COMMAND --help" for a command's options."""


def _add_spool(subparsers: Any) -> None:
    """``mailpost spool ...``, when the spool package is installed with this version."""
    try:
        from mailpost.spool.cli import add_spool_commands
    except ImportError:  # the spool (or one of its dependencies) is not available
        return
    parser = add_spool_commands(subparsers)
    if isinstance(parser, argparse.ArgumentParser) and not parser.epilog:
        parser.epilog = _SPOOL_EPILOG
        parser.formatter_class = HelpFormatter


def build_parser() -> argparse.ArgumentParser:
    """The ``mailpost`` argument parser with every subcommand registered."""
    from mailpost import __version__

    parser = argparse.ArgumentParser(
        prog="mailpost",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mailpost {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    subparsers.required = True
    check.register(subparsers)
    send.register(subparsers)
    sendtestemail.register(subparsers)
    _add_spool(subparsers)
    from mailpost.events import cli as events_cli

    events_cli.register(subparsers)
    preview_cli.register(subparsers)
    return parser


def _dispatch(args: argparse.Namespace, streams: Streams) -> int:
    handler = getattr(args, "handler", None)
    if handler is not None:
        with quiet_library_log():
            return int(handler(args, streams))
    return int(args.func(args))  # spool commands: their workers' logs are worth seeing


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mailpost`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit
    code instead of exiting, so it can be called from Python and from tests."""
    parser = build_parser()
    arguments = list(argv) if argv is not None else sys.argv[1:]
    if not arguments:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    streams = Streams(stdout=sys.stdout, stderr=sys.stderr)
    name = f"mailpost {args.command}"
    if args.command == "spool" and getattr(args, "spool_command", None):
        name += f" {args.spool_command}"
    from mailpost.exceptions import ImproperlyConfigured, InvalidMailer, MailerDoesNotExist

    try:
        return _dispatch(args, streams)
    except CliError as exc:
        streams.error(f"{name}: {exc}")
        return exc.exit_code
    except (MailerDoesNotExist, InvalidMailer, ImproperlyConfigured) as exc:
        streams.error(f"{name}: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        streams.error("mailpost: interrupted")
        return 130
