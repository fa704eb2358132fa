"""File backend: write messages into a ``.log`` file in a directory instead of sending them.

Each backend instance writes to one uniquely named file, created when it is first opened
(the spec's "session"); closing and reopening the same instance appends to that file, as
Django's does (``mailers[alias]`` builds a new instance, hence a new file, on every
lookup). Each message is written as its exact bytes (``\\n`` line endings), a blank line,
then a line of 79 dashes. Meant for development.
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
from mailpost.backends.console import framed
from mailpost.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["EmailBackend", "FileBackend"]


class FileBackend(BaseEmailBackend):
    """Write messages to a ``.log`` file of this instance in ``file_path``.

    OPTIONS: ``file_path`` (required; str or :class:`pathlib.Path`, created if missing;
    kept as an absolute ``str``; bytes are decoded; another type is Django's
    ``TypeError``), ``fail_silently`` (ignore errors composing or writing a message, but
    never problems with the directory itself). Constructed directly without
    ``file_path`` (deprecated), the legacy ``EMAIL_FILE_PATH`` setting is used.
    """

    file_path: str

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        file_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently, alias=alias, **kwargs)
        if file_path is None and alias is None:  # compat: Django's legacy EMAIL_FILE_PATH
            from mailpost._config import settings

            file_path = settings.EMAIL_FILE_PATH
            if file_path is None:
                raise ImproperlyConfigured(
                    "The EMAIL_FILE_PATH setting must be set to use the file EmailBackend. "
                    "(Or give the backend a 'file_path' option: the directory to write "
                    "message files to.)"
                )
        if file_path is None:
            raise self.invalid(
                "OPTIONS must define 'file_path'. (The directory to write message files to.)"
            )
        try:
            path = os.fspath(file_path)
        except TypeError as exc:  # Django's error (from os.path.abspath), then which option
            raise TypeError(
                f"{exc} ({self.label}: 'file_path' is the directory to write message files "
                "to, a str or pathlib.Path)"
            ) from None
        self.file_path = os.path.abspath(os.fsdecode(path))
        self._ensure_directory()
        self._fname: str | None = None
        self._file: IO[bytes] | None = None
        self._lock = threading.RLock()

    def _directory_error(self, with_alias: str, without: str) -> Exception:
        """Django's two wordings: the mailer's (with its alias), or the legacy one."""
        if self.alias is not None:
            return self.invalid(with_alias)
        return ImproperlyConfigured(without)

    def _ensure_directory(self) -> None:
        path = self.file_path
        if os.path.exists(path) and not os.path.isdir(path):
            raise self._directory_error(
                f"'file_path' is not a directory: {path}",
                f"Path for saving email messages exists, but is not a directory: {path}",
            )
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise self._directory_error(
                f"Could not create 'file_path': {path} ({exc})",
                f"Could not create directory for saving email messages: {path} ({exc})",
            ) from exc
        if not os.access(path, os.W_OK | os.X_OK):
            raise self._directory_error(
                f"'file_path' is not writable: {path}",
                f"Directory for saving email messages is not writable: {path}",
            )

    @property
    def current_file(self) -> Path | None:
        """The file written while the backend is open, or None when it is not open."""
        return Path(self._file.name) if self._file is not None else None

    def _new_file(self) -> IO[bytes]:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for _ in range(100):
            name = os.path.join(self.file_path, f"{stamp}-{secrets.token_hex(6)}.log")
            try:
                return open(name, "xb")
            except FileExistsError:
                continue
        raise FileExistsError(f"could not pick a new file name in {self.file_path!r}")

    def open(self) -> bool:
        """Open this instance's file (created on the first open, appended to after that).
        False if it is already open."""
        with self._lock:
            if self._file is not None:
                return False
            self._ensure_directory()
            if self._fname is None:
                self._file = self._new_file()
                self._fname = self._file.name
            else:
                self._file = open(self._fname, "ab")  # noqa: SIM115 - closed by close()
            return True

    def close(self) -> None:
        """Close the file; safe to call when nothing is open."""
        with self._lock:
            file, self._file = self._file, None
            if file is not None:
                file.close()

    def _write(
        self, message: EmailMessage, data: bytes, sender: str, recipients: list[str]
    ) -> None:
        assert self._file is not None
        self._file.write(framed(data))
        self._file.flush()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Write each message to this instance's file; returns how many were written."""
        if not email_messages:
            return 0
        with self._lock:
            opened = self.open()
            try:
                return self.write_each(email_messages, self._write, eight_bit=True)
            finally:
                if opened:
                    self.close()


EmailBackend = FileBackend
