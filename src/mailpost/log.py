"""Logging integration: mail error records to the site admins.

``AdminEmailHandler`` is a :class:`logging.Handler` that sends each record it handles to
``ADMINS`` with :func:`mailpost.mail_admins`, through the mailer named by ``using``. It
never raises out of ``emit`` (a logging call must not crash the code that logs), it never
recurses (an error raised while mailing is not mailed again), and it throttles: a crash
loop that logs the same error thousands of times sends a handful of mails, each saying how
many similar records were suppressed since the last one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

__all__ = ["AdminEmailHandler"]

_SUBJECT_MAX = 150


def default_throttle_key(record: logging.LogRecord) -> Hashable:
    """Records are "the same error" when they come from the same place with the same
    exception type, whatever their formatted message says."""
    exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
    return (record.name, record.levelno, record.pathname, record.lineno, exc_type)


class AdminEmailHandler(logging.Handler):
    """Mail log records (ERROR and above by default) to ``ADMINS``.

    ``using``: the mailer alias to send through (``None``: the default mailer). Point it at
    a spool mailer to keep logging from waiting on SMTP.

    Throttling: at most ``throttle_count`` mails per ``throttle_seconds`` for records with
    the same ``throttle_key`` (same logger, level, source line and exception type), and at
    most ``max_per_window`` mails in any ``throttle_seconds`` overall. ``throttle_count=0``
    turns throttling off. ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        level: int = logging.ERROR,
        *,
        using: str | None = None,
        include_traceback: bool = True,
        throttle_seconds: float = 60.0,
        throttle_count: int = 1,
        max_per_window: int = 10,
        throttle_key: Callable[[logging.LogRecord], Hashable] = default_throttle_key,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(level)
        if throttle_seconds < 0 or throttle_count < 0 or max_per_window < 0:
            raise ValueError("AdminEmailHandler: throttle settings must not be negative")
        self.using = using
        self.include_traceback = include_traceback
        self.throttle_seconds = throttle_seconds
        self.throttle_count = throttle_count
        self.max_per_window = max_per_window
        self.throttle_key = throttle_key
        self.clock = clock
        self._sent: dict[Hashable, list[float]] = {}
        self._all_sent: list[float] = []
        self._suppressed: dict[Hashable, int] = {}
        self._state = threading.Lock()
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):
            return  # a record logged while mailing a record: never recurse
        self._local.busy = True
        try:
            suppressed = self._admit(record)
            if suppressed is None:
                return
            subject, body = self.compose(record, suppressed)
            from mailpost._admins import mail_admins

            mail_admins(subject, body, using=self.using)
        except Exception:
            self.handleError(record)
        finally:
            self._local.busy = False

    def _admit(self, record: logging.LogRecord) -> int | None:
        """How many similar records were suppressed before this one, or None to drop it."""
        if self.throttle_count == 0:
            return 0
        key = self.throttle_key(record)
        now = self.clock()
        horizon = now - self.throttle_seconds
        with self._state:
            recent = [t for t in self._sent.get(key, ()) if t > horizon]
            self._all_sent = [t for t in self._all_sent if t > horizon]
            if len(recent) >= self.throttle_count or len(self._all_sent) >= self.max_per_window:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                self._sent[key] = recent
                return None
            recent.append(now)
            self._sent[key] = recent
            self._all_sent.append(now)
            if len(self._sent) > 1000:  # forget quiet keys so memory stays bounded
                self._sent = {k: v for k, v in self._sent.items() if v and v[-1] > horizon}
            return self._suppressed.pop(key, 0)

    def compose(self, record: logging.LogRecord, suppressed: int = 0) -> tuple[str, str]:
        """The subject and body mailed for ``record``; override to customise."""
        message = record.getMessage()
        first_line = message.splitlines()[0] if message else ""
        subject = f"{record.levelname}: {first_line}"
        if len(subject) > _SUBJECT_MAX:
            subject = subject[: _SUBJECT_MAX - 3] + "..."
        body = self.format(record) if self.include_traceback else message
        details = f"Logger: {record.name}\nSource: {record.pathname}:{record.lineno}\n"
        if suppressed:
            details += f"Suppressed since the last mail: {suppressed} similar record(s)\n"
        return subject, f"{body}\n\n{details}"
