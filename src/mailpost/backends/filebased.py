"""File backend: write messages into ``.log`` files in a directory instead of sending them.

Every opened session (a ``with`` block, or one ``send_messages`` call outside one) gets a
new, uniquely named file; each message is written as its exact bytes (``\\n`` line
endings) followed by a line of 79 dashes. Meant for development.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mailpost.backends.base import BaseEmailBackend
from mailpost.backends.console import SEPARATOR

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["EmailBackend", "FileBackend"]


class FileBackend(BaseEmailBackend):
    """Write messages to a new ``.log`` file in ``file_path`` for each session.

    OPTIONS: ``file_path`` (required; str or :class:`pathlib.Path`, created if missing),
    ``fail_silently`` (ignore errors composing or writing a message, but never problems
    with the directory itself).
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        file_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently, alias=alias, **kwargs)
        if file_path is None:
            raise self.invalid(
                "OPTIONS 'file_path' is required: the directory to write message files to"
            )
        if not isinstance(file_path, (str, os.PathLike)):
            raise self.invalid(
                f"OPTIONS 'file_path' must be a str or pathlib.Path, not {type(file_path).__name__}"
            )
        self.file_path = Path(file_path).expanduser().absolute()
        self._ensure_directory()
        self._file: IO[bytes] | None = None
        self._lock = threading.RLock()

    def _ensure_directory(self) -> None:
        path = self.file_path
        if path.exists() and not path.is_dir():
            raise self.invalid(f"file_path {str(path)!r} exists but is not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self.invalid(
                f"cannot create file_path directory {str(path)!r}: {exc.strerror or exc}"
            ) from exc
        if not os.access(path, os.W_OK | os.X_OK):
            raise self.invalid(f"file_path directory {str(path)!r} is not writable")

    @property
    def current_file(self) -> Path | None:
        """The file of the open session, or None when no session is open."""
        return Path(self._file.name) if self._file is not None else None

    def _new_file(self) -> IO[bytes]:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for _ in range(100):
            name = self.file_path / f"{stamp}-{secrets.token_hex(6)}.log"
            try:
                return open(name, "xb")
            except FileExistsError:
                continue
        raise FileExistsError(f"could not pick a new file name in {str(self.file_path)!r}")

    def open(self) -> bool:
        """Start a session: create a new ``.log`` file. False if one is already open."""
        with self._lock:
            if self._file is not None:
                return False
            self._ensure_directory()
            self._file = self._new_file()
            return True

    def close(self) -> None:
        """End the session and close its file; safe to call when nothing is open."""
        with self._lock:
            file, self._file = self._file, None
            if file is not None:
                file.close()

    def _write(
        self, message: EmailMessage, data: bytes, sender: str, recipients: list[str]
    ) -> None:
        assert self._file is not None
        if not data.endswith(b"\n"):
            data += b"\n"
        self._file.write(data + SEPARATOR.encode() + b"\n")
        self._file.flush()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Write each message to the session's file; returns how many were written."""
        if not email_messages:
            return 0
        with self._lock:
            opened = self.open()
            try:
                return self.write_each(email_messages, self._write)
            finally:
                if opened:
                    self.close()


EmailBackend = FileBackend
