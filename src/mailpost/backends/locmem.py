"""In-memory backend: keep copies of sent messages in ``mailpost.outbox`` for tests.

``mailpost.outbox`` is created on the first send. Copies also go to every active
:func:`mailpost.testing.capture` of the sending context and, in a Django test run, to
``django.core.mail.outbox``. Each entry is a deep copy of the message
as it was sent, marked like the original with ``sent_using`` (the mailer alias) and
``delivery``. Messages are composed before they are stored, so a bad header fails here
just as it would on a real backend.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailpost import _capture, _django
from mailpost.backends.base import BaseEmailBackend

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["EmailBackend", "LocmemBackend"]

_outbox_lock = threading.Lock()


def _store(message: EmailMessage) -> None:
    """Append to ``mailpost.outbox`` and Django's test outbox, once each.

    In a Django test run with no ``mailpost.outbox`` of its own, ``mailpost.outbox`` *is*
    ``django.core.mail.outbox`` (see ``mailpost.__getattr__``), which Django empties before
    every test.
    """
    import mailpost

    with _outbox_lock:
        django_box = _django.outbox()
        own: list[EmailMessage] | None = vars(mailpost).get("outbox")
        if own is None and django_box is None:
            own = []
            mailpost.outbox = own
        if own is not None:
            own.append(message)
        if django_box is not None and django_box is not own:
            django_box.append(message)
    _capture.record(message)


class LocmemBackend(BaseEmailBackend):
    """Append a copy of every sent message to ``mailpost.outbox``. Takes no OPTIONS.

    As in Django 6.1, ``fail_silently`` is no option here: in ``OPTIONS`` it is an unknown
    option, given directly it is warned about, and reading the attribute is deprecated
    until it is assigned. compat: ``send_mail(fail_silently=...)`` and
    ``get_connection(fail_silently=...)`` still pass it silently; then composing errors
    are only recorded.
    """

    takes_fail_silently = False

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Store a copy of each message in ``mailpost.outbox``; returns how many."""
        if not email_messages:
            return 0
        copies: list[tuple[EmailMessage, EmailMessage]] = []

        def keep(message: EmailMessage, data: bytes, sender: str, recipients: list[str]) -> None:
            kept = _copy(message)
            kept.sent_using = self.alias
            copies.append((message, kept))
            _store(kept)

        try:
            return self.write_each(email_messages, keep)
        finally:
            for original, kept in copies:
                kept.delivery = original.delivery


def _copy(message: EmailMessage) -> EmailMessage:
    """A deep copy that shares the (deprecated) connection instead of copying it."""
    connection = getattr(message, "connection", None)
    memo: dict[int, Any] = {}
    if connection is not None:
        memo[id(connection)] = connection
    return copy.deepcopy(message, memo)


EmailBackend = LocmemBackend
