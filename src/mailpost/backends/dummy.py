"""Dummy backend: accept every message and deliver none of them.

Messages are still composed and checked, and each gets a ``delivery`` result, so code that
works against the dummy backend also works against a real one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailpost.backends.base import BaseEmailBackend

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["DummyBackend", "EmailBackend"]


def _discard(message: EmailMessage, data: bytes, sender: str, recipients: list[str]) -> None:
    """Deliver nowhere."""


class DummyBackend(BaseEmailBackend):
    """Do nothing with messages; ``send_messages`` returns how many it was given. No OPTIONS.

    ``fail_silently`` is no option here, as for the in-memory backend (Django 6.1); passed
    by ``send_mail(fail_silently=...)`` or ``get_connection()`` (compat) or assigned, it only
    silences composing errors.
    """

    takes_fail_silently = False

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Compose and discard each message; returns how many there were."""
        if not email_messages:
            return 0
        return self.write_each(email_messages, _discard)


EmailBackend = DummyBackend
