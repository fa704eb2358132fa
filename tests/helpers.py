"""Test helpers shared by every test module: message factories.

The SMTP fault-injecting server lives in ``smtpd_harness``; the backend contract in
``backend_contract``. Import from here rather than writing another factory.
"""

from __future__ import annotations

from typing import Any

from mailpost import EmailMessage

__all__ = ["make_message"]


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
