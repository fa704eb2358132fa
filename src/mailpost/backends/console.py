"""Console backend: write each message to a stream (stdout by default) instead of sending it.

Each message is written as its full text (headers and body, ``\\n`` line endings), a blank
line, then a line of 79 dashes, as Django's console backend does. Meant for development.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from mailpost.backends.base import BaseEmailBackend

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["ConsoleBackend", "EmailBackend"]

SEPARATOR = "-" * 79


def framed(data: bytes) -> bytes:
    """One message as the console and file backends write it: its bytes (ending in a line
    break), a blank line and the separator line."""
    if not data.endswith(b"\n"):
        data += b"\n"
    return data + b"\n" + SEPARATOR.encode() + b"\n"


class ConsoleBackend(BaseEmailBackend):
    """Write messages to ``stream`` (default: whatever ``sys.stdout`` is at write time).

    OPTIONS: ``stream`` (a text stream), ``fail_silently`` (ignore every error while
    composing or writing a message; kept for compatibility, not recommended).
    Safe to share between threads: a batch is written without interleaving.
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        stream: IO[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently, alias=alias, **kwargs)
        if stream is not None and not callable(getattr(stream, "write", None)):
            raise self.invalid(
                f"OPTIONS 'stream' must be a writable text stream, not {type(stream).__name__}"
            )
        self.stream = stream
        self._lock = threading.RLock()

    def _write(
        self, message: EmailMessage, data: bytes, sender: str, recipients: list[str]
    ) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write(framed(data).decode("utf-8", errors="replace"))
        flush = getattr(stream, "flush", None)
        if flush is not None:
            flush()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Write each message to the stream; returns how many were written."""
        if not email_messages:
            return 0
        with self._lock:
            return self.write_each(email_messages, self._write, eight_bit=True)


EmailBackend = ConsoleBackend
