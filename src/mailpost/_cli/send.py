"""``mailpost send``: compose one message from the command line and send it through a mailer."""

from __future__ import annotations

import argparse
import smtplib
import sys
from pathlib import Path
from typing import Any

from mailpost._cli._common import (
    EXIT_DELIVERY,
    EXIT_OK,
    CliError,
    HelpFormatter,
    Streams,
    backend_for,
)

__all__ = ["register"]

_NO_MAILER_NOTE = (
    "mailpost: no mailer is configured, so the message is printed below instead of sent; "
    "to send for real set MAILPOST_MAILERS, e.g. "
    'MAILPOST_MAILERS=\'{"default": "smtp://user:password@smtp.example.com:587?use_tls=true"}\''
)

_EPILOG = """\
examples:
  mailpost send --to ann@example.com --subject "Build passed" --body "All green."
  mailpost send --to ann@example.com --to bob@example.com --cc ops@example.com \\
      --subject "Report" --body-file report.txt --html-file report.html --attach report.pdf
  echo "piped body" | mailpost send --to ann@example.com --subject "From a pipe" --body-file -
  mailpost send --using bulk --from "Shop <shop@example.com>" --to ann@example.com \\
      --subject "Receipt" --body "Thanks!"

The mailer is MAILERS["default"] unless --using names another. With no mailer configured
at all, the message is printed to stdout instead (a note on stderr says so).
exit status: 0 sent, 1 delivery failed, 2 usage or configuration error."""


def register(subparsers: Any) -> None:
    """Add the ``send`` subcommand."""
    parser = subparsers.add_parser(
        "send",
        help="send one email message",
        description="Compose one email message and send it through a configured mailer.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--to", action="append", required=True, metavar="ADDR",
                        help="recipient (repeat for more)")  # fmt: skip
    parser.add_argument("--cc", action="append", default=[], metavar="ADDR",
                        help="Cc recipient (repeat for more)")  # fmt: skip
    parser.add_argument("--bcc", action="append", default=[], metavar="ADDR",
                        help="Bcc recipient, hidden from the others (repeat for more)")  # fmt: skip
    parser.add_argument("--reply-to", action="append", default=[], metavar="ADDR",
                        help="Reply-To address (repeat for more)")  # fmt: skip
    parser.add_argument("--from", dest="from_email", metavar="ADDR",
                        help="sender (default: the DEFAULT_FROM_EMAIL setting)")  # fmt: skip
    parser.add_argument("--subject", required=True, metavar="TEXT", help="subject line")
    body = parser.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", metavar="TEXT", help="plain-text body")
    body.add_argument("--body-file", metavar="PATH",
                      help="read the plain-text body from a file ('-': stdin)")  # fmt: skip
    parser.add_argument("--html-file", metavar="PATH",
                        help="add an HTML version of the body from a UTF-8 file")  # fmt: skip
    parser.add_argument("--attach", action="append", default=[], metavar="PATH",
                        help="attach a file (repeat for more)")  # fmt: skip
    parser.add_argument("--using", metavar="ALIAS",
                        help='the MAILERS alias to send with (default: "default")')  # fmt: skip
    parser.set_defaults(handler=run)


def _read_text(option: str, path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"cannot read {option} {path!r}: {reason}") from None


def _compose(args: argparse.Namespace) -> Any:
    from mailpost.message import EmailMultiAlternatives

    body = args.body if args.body is not None else _read_text("--body-file", args.body_file)
    try:
        msg = EmailMultiAlternatives(
            args.subject,
            body,
            args.from_email,
            args.to,
            cc=args.cc,
            bcc=args.bcc,
            reply_to=args.reply_to,
        )
        if args.html_file is not None:
            msg.attach_alternative(_read_text("--html-file", args.html_file), "text/html")
    except ValueError as exc:
        raise CliError(f"invalid message: {exc}") from None
    for path in args.attach:
        try:
            msg.attach_file(path)
        except OSError as exc:
            raise CliError(f"cannot attach {path!r}: {exc.strerror or exc}") from None
    return msg


def _no_mailer_configured() -> bool:
    from mailpost import _config
    from mailpost.handler import mailers_defined

    return not mailers_defined() and not _config.is_defined("EMAIL_BACKEND")


def _backend(args: argparse.Namespace, streams: Streams) -> Any:
    from mailpost.backends.console import ConsoleBackend

    if args.using is None and _no_mailer_configured():
        streams.note(_NO_MAILER_NOTE)
        return ConsoleBackend(stream=streams.stdout)
    return backend_for(args.using or "default")


def _label(backend: Any, alias: str | None) -> str:
    label = getattr(backend, "label", None)
    return str(label) if label else f"MAILERS[{alias or 'default'!r}]"


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Compose, send, and report in one line on stderr."""
    from mailpost.exceptions import DeliveryError

    msg = _compose(args)
    backend = _backend(args, streams)
    label = _label(backend, args.using)
    try:
        with backend:
            sent = backend.send_messages([msg])
    except ValueError as exc:
        raise CliError(f"invalid message: {exc}") from None
    except DeliveryError as exc:
        raise CliError(f"delivery failed: {exc}", EXIT_DELIVERY) from None
    except (smtplib.SMTPException, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise CliError(f"delivery failed via {label}: {reason}", EXIT_DELIVERY) from None
    if not sent:
        raise CliError(f"the message was not sent by {label}", EXIT_DELIVERY)
    count = len(msg.recipients())
    if getattr(backend, "alias", None) is not None:
        streams.note(f"mailpost: sent to {count} recipient(s) via {label}")
    return EXIT_OK
