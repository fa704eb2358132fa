"""``mailpost sendtestemail``: send a test message and say exactly what became of it.

The message goes to the addresses given and/or to ``ADMINS`` / ``MANAGERS`` (through
:func:`mailpost.mail_admins` / :func:`mailpost.mail_managers`, so their settings apply).
Each message gets one line, then one line per recipient with the server's reply.
"""

from __future__ import annotations

import argparse
import socket
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailpost._cli._common import (
    EXIT_DELIVERY,
    EXIT_OK,
    CliError,
    HelpFormatter,
    Streams,
    backend_for,
    describe_backend,
    required_aliases,
)

__all__ = ["register"]

_PAIRS_WARNING = r"Using \(name, address\) pairs in the"

_EPILOG = """\
examples:
  mailpost sendtestemail ann@example.com
  mailpost sendtestemail ann@example.com bob@example.com --using bulk
  mailpost sendtestemail --admins --managers
  mailpost sendtestemail --from "App <app@example.com>" ann@example.com

output (one line per message, then each recipient with the server's reply):
  ok     test message to ann@example.com via MAILERS['default'] (smtp ...): 250 OK
           accepted  ann@example.com  250 2.1.5 Recipient OK

--admins / --managers send with mail_admins() / mail_managers(): From SERVER_EMAIL, to
the ADMINS / MANAGERS setting (e.g. MAILPOST_ADMINS='ops@example.com,dev@example.com'),
subject prefixed with EMAIL_SUBJECT_PREFIX. Other messages are From DEFAULT_FROM_EMAIL.
exit status: 0 every recipient accepted, 1 a message or recipient was not delivered,
             2 usage or configuration error."""


@dataclass
class _Report:
    """What became of one test message."""

    target: str
    result: Any = None  # the message's DeliveryResult, when the backend recorded one
    recipients: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        if self.error is not None:
            return False
        return self.result is None or bool(self.result.ok)


def register(subparsers: Any) -> None:
    """Add the ``sendtestemail`` subcommand."""
    parser = subparsers.add_parser(
        "sendtestemail",
        help="send a test message and report the server's replies",
        description="Send a test message through a mailer and report, for every recipient,\n"
        "whether the server accepted it.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("addresses", nargs="*", metavar="ADDRESS", help="recipient address")
    parser.add_argument(
        "--admins", action="store_true", help="also send to ADMINS (with mail_admins())"
    )
    parser.add_argument(
        "--managers", action="store_true", help="also send to MANAGERS (with mail_managers())"
    )
    parser.add_argument(
        "--using", metavar="ALIAS", help='the MAILERS alias to send with (default: "default")'
    )
    parser.add_argument(
        "--from",
        dest="from_email",
        metavar="ADDR",
        help="sender of the message to ADDRESSes (default: DEFAULT_FROM_EMAIL)",
    )
    parser.set_defaults(handler=run)


def _server_recipients(setting: str, option: str, streams: Streams) -> list[str]:
    """``ADMINS`` / ``MANAGERS`` by the rules ``mail_admins()`` applies, checked before
    anything is sent; a deprecation is shown as a note, and an empty setting is an error
    here because the user asked for it by name."""
    from mailpost._admins import server_recipients
    from mailpost.exceptions import ImproperlyConfigured

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            recipients = server_recipients(setting)
        except ImproperlyConfigured as exc:
            raise CliError(f"{option}: {exc}") from None
    for warning in caught:
        streams.note(f"note: {warning.message}")
    if not recipients:
        env = f"MAILPOST_{setting}='ops@example.com'"
        raise CliError(f"{option}: the {setting} setting is empty; set it, e.g. {env}")
    return recipients


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Validate everything first, then send each test message and report."""
    if not (args.addresses or args.admins or args.managers):
        raise CliError("give at least one ADDRESS, or --admins and/or --managers")
    alias = args.using or "default"
    required_aliases(alias, otherwise="nothing can be sent")
    admins = _server_recipients("ADMINS", "--admins", streams) if args.admins else []
    managers = _server_recipients("MANAGERS", "--managers", streams) if args.managers else []
    backend = backend_for(alias)  # validates the mailer before anything is sent
    via = f"{backend.label if hasattr(backend, 'label') else alias} ({describe_backend(backend)})"
    host = socket.gethostname()
    subject = (
        f"Test email from mailpost on {host} at {datetime.now().astimezone():%Y-%m-%d %H:%M:%S %z}"
    )
    body = (
        "This is a test message from `mailpost sendtestemail`.\n\n"
        f"It was sent by the mailer MAILERS[{alias!r}]: {describe_backend(backend)},\n"
        f"from the host {host}. If you are reading this, that mailer delivers mail.\n"
    )
    reports: list[_Report] = []
    if args.addresses:
        reports.append(_send_to(backend, args.addresses, args.from_email, subject, body))
    if args.admins:
        reports.append(_send_server_mail("mail_admins", "ADMINS", admins, subject, body, alias))
    if args.managers:
        reports.append(
            _send_server_mail("mail_managers", "MANAGERS", managers, subject, body, alias)
        )
    for report in reports:
        _print(report, via, streams)
    failed = sum(not r.ok for r in reports)
    streams.out(
        f"{len(reports)} test message(s): {len(reports) - failed} delivered, {failed} failed"
    )
    return EXIT_DELIVERY if failed else EXIT_OK


def _send_to(
    backend: Any, addresses: list[str], from_email: str | None, subject: str, body: str
) -> _Report:
    from mailpost.exceptions import DeliveryError
    from mailpost.message import EmailMessage

    try:
        msg = EmailMessage(subject, body, from_email, addresses)
        recipients = msg.recipients()
    except ValueError as exc:
        raise CliError(f"invalid address: {exc}") from None
    report = _Report(", ".join(addresses), recipients=recipients)
    try:
        sent = backend.send_messages([msg])
    except ValueError as exc:
        raise CliError(f"invalid message: {exc}") from None
    except DeliveryError:
        sent = 0  # msg.delivery tells the story
    except OSError as exc:  # a backend that raises instead of recording (smtplib errors too)
        report.error = str(exc) or type(exc).__name__
        return report
    report.result = getattr(msg, "delivery", None)
    if report.result is None and not sent:
        report.error = "the mailer reported the message as not sent"
    return report


def _send_server_mail(
    func: str, setting: str, recipients: list[str], subject: str, body: str, alias: str
) -> _Report:
    import mailpost
    from mailpost.exceptions import DeliveryError, ImproperlyConfigured

    report = _Report(f"{setting} ({', '.join(recipients)})", recipients=recipients)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _PAIRS_WARNING)  # already shown as a note
            sent = getattr(mailpost, func)(subject, body, using=alias)
    except ImproperlyConfigured as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:
        raise CliError(f"invalid {setting}: {exc}") from None
    except DeliveryError as exc:
        report.result = exc.results[0] if exc.results else None
        if report.result is None:
            report.error = str(exc)
        return report
    except OSError as exc:
        report.error = str(exc) or type(exc).__name__
        return report
    if not sent:
        report.error = "the mailer reported the message as not sent"
    return report


def _print(report: _Report, via: str, streams: Streams) -> None:
    from mailpost._smtp.replies import describe_reply

    result = report.result
    head = f"{'ok' if report.ok else 'FAIL':<7}test message to {report.target} via {via}"
    if report.error is not None:
        streams.out(f"{head}: {report.error}")
    elif result is None:
        streams.out(f"{head}: sent")
    elif result.ok:
        reply = f": {describe_reply(*result.response)}" if result.response else ": sent"
        streams.out(f"{head}{reply}")
    else:
        streams.out(f"{head}: {result.error or 'not delivered'}")
    if result is None:
        if report.ok:
            for address in report.recipients:
                streams.out(f"{'':9}accepted    {address}")
        return
    for status in result.recipients:
        word = status.status if result.sent or status.status != "accepted" else "not sent"
        reply = describe_reply(status.code, status.reply) if status.code or status.reply else ""
        streams.out(f"{'':9}{word:<11} {status.address}  {reply}".rstrip())
