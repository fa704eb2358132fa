"""``manage.py mailpost_sendtestemail``: send a test message through a chosen mailer.

Mirrors Django's ``sendtestemail`` (positional addresses, ``--managers``, ``--admins``)
and adds ``--using ALIAS`` to pick the ``MAILERS`` entry to test.
"""

from __future__ import annotations

import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from mailpost import mail_admins, mail_managers, mailers, send_mail
from mailpost.exceptions import ImproperlyConfigured, MailpostError

BODY = "If you're reading this, mail from this project reaches its recipients."


class Command(BaseCommand):  # type: ignore[misc]  # django has no type stubs here
    help = (
        "Sends a test email through a mailpost mailer (the default one unless --using) "
        "to the given addresses and/or the site's ADMINS / MANAGERS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", nargs="*", help="One or more email addresses to send to.")
        parser.add_argument(
            "--using",
            metavar="ALIAS",
            help="The MAILERS alias to send through (default: the 'default' mailer).",
        )
        parser.add_argument(
            "--managers",
            action="store_true",
            help="Send a test email to the addresses in the MANAGERS setting.",
        )
        parser.add_argument(
            "--admins",
            action="store_true",
            help="Send a test email to the addresses in the ADMINS setting.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        emails: list[str] = list(options["email"])
        using: str | None = options["using"]
        if not emails and not options["managers"] and not options["admins"]:
            raise CommandError(
                "Nothing to send: give one or more email addresses, --admins or --managers."
            )
        alias = using if using is not None else "default"
        if alias not in mailers:
            defined = ", ".join(repr(a) for a in sorted(mailers)) or "none"
            raise CommandError(f"No mailer {alias!r} is configured (defined: {defined}).")
        subject = f"Test email from {socket.gethostname()} on {timezone.now():%Y-%m-%d %H:%M:%S %Z}"
        try:
            if emails:
                sent = send_mail(subject, BODY, None, emails, using=using)
                self._report(sent, alias, ", ".join(emails))
            if options["managers"]:
                sent = mail_managers(subject, BODY, using=using)
                self._report(sent, alias, "MANAGERS", empty_setting="MANAGERS")
            if options["admins"]:
                sent = mail_admins(subject, BODY, using=using)
                self._report(sent, alias, "ADMINS", empty_setting="ADMINS")
        except ImproperlyConfigured as exc:  # ADMINS / MANAGERS, checked by mail_admins()
            raise CommandError(str(exc)) from exc
        except (MailpostError, OSError, ValueError) as exc:
            raise CommandError(f"Sending through mailer {alias!r} failed: {exc}") from exc

    def _report(self, sent: int, alias: str, to: str, empty_setting: str | None = None) -> None:
        if sent:
            self.stdout.write(f"Sent a test message through mailer {alias!r} to {to}.")
        elif empty_setting is not None:
            self.stderr.write(f"{empty_setting} is empty: no test message sent to it.")
        else:
            self.stderr.write(f"Mailer {alias!r} did not send the test message to {to}.")
