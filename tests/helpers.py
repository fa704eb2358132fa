"""Test helpers shared by every test module: message factories and common MAILERS setups.

The SMTP fault-injecting server lives in ``smtpd_harness``; the backend contract in
``backend_contract``. Import from here rather than writing another factory.
"""

from __future__ import annotations

from typing import Any

import mailpost
from mailpost import EmailMessage

__all__ = ["configure_suppress_over_locmem", "make_message"]


def make_message(n: int = 1, **kwargs: Any) -> EmailMessage:
    """A plain message numbered ``n``: subject "Message n", body "Body n", to rcpt-n."""
    fields: dict[str, Any] = {
        "subject": f"Message {n}",
        "body": f"Body {n}\n",
        "from_email": "sender@example.com",
        "to": [f"rcpt-{n}@example.com"],
    }
    fields.update(kwargs)
    return EmailMessage(**fields)


def configure_suppress_over_locmem(store: str, **mailers: Any) -> None:
    """``MAILERS``: "default" checks the suppression list in ``store`` and sends through the
    in-memory "mem"; ``mailers`` adds entries. The outbox starts empty."""
    mailpost.configure(
        MAILERS={
            "mem": {"BACKEND": "mailpost.backends.locmem.EmailBackend"},
            "default": {
                "BACKEND": "mailpost.backends.suppress.EmailBackend",
                "OPTIONS": {"mailer": "mem", "store": store},
            },
            **mailers,
        }
    )
    mailpost.outbox = []
