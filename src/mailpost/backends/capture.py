"""Capture backend: keep every message in a local capture store for ``mailpost preview``.

For development settings: nothing leaves the machine, every message is kept durably (a
SQLite file, see :class:`mailpost.preview.CaptureStore`) and shows up in the preview UI seconds
later. ``MAILERS = {"default": "capture://mail.sqlite3"}`` or, as a dict,
``{"BACKEND": "mailpost.backends.capture.EmailBackend", "OPTIONS": {"path": ...}}``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailpost.backends.base import BaseEmailBackend

if TYPE_CHECKING:
    from mailpost._preview_store import CaptureStore
    from mailpost.message import EmailMessage

__all__ = ["CaptureBackend", "EmailBackend"]


class CaptureBackend(BaseEmailBackend):
    """Store each message's exact bytes (with its envelope) in a capture store.

    OPTIONS: ``path`` (the SQLite file; default ``mailpost-capture.sqlite3`` in the current
    directory, created with its directory), ``max_messages`` (keep only the newest N;
    default: keep all), ``fail_silently``.
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        path: str | os.PathLike[str] | None = None,
        max_messages: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently, alias=alias, **kwargs)
        from mailpost._preview_store import DEFAULT_CAPTURE_PATH, CaptureStore

        if path is None:
            path = DEFAULT_CAPTURE_PATH
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise self.invalid(
                f"OPTIONS 'path' must be a non-empty str or pathlib.Path, not {path!r}"
            )
        if max_messages is not None and (
            isinstance(max_messages, bool) or not isinstance(max_messages, int) or max_messages < 1
        ):
            raise self.invalid(
                f"OPTIONS 'max_messages' must be a positive int or None, not {max_messages!r}"
            )
        self.store: CaptureStore = CaptureStore(path)
        self.max_messages = max_messages
        self._lock = threading.Lock()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Store each message; returns how many were stored."""
        if not email_messages:
            return 0
        origin = f"mailer:{self.alias}" if self.alias else "mailer"

        def write(message: EmailMessage, data: bytes, sender: str, recipients: list[str]) -> None:
            self.store.add(data, sender=sender, recipients=recipients, origin=origin)

        with self._lock:
            sent = self.write_each(email_messages, write, linesep="\r\n")  # as on the wire
            if self.max_messages is not None:
                self.store.prune(self.max_messages)
        return sent


EmailBackend = CaptureBackend
