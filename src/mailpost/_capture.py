"""Test-mode state: when mail is captured instead of sent, and where it is recorded.

Two switches put every configured mailer in memory mode (``mailers[alias]`` then returns
the in-memory backend):

* a process-wide one, turned on by the pytest plugin for each test;
* :class:`contextvars.ContextVar` captures, opened by :func:`mailpost.testing.capture`,
  which apply to the current thread or asyncio task (and what it starts) only, so two
  tasks capturing at once each see only their own mail.

No pytest here: the state is consulted on every ``mailers[alias]``.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

_captures: ContextVar[tuple[list[EmailMessage], ...]] = ContextVar("mailpost_captures", default=())
_global_lock = threading.Lock()
_global_depth = 0


def memory_mode() -> bool:
    """Whether mailers are swapped for the in-memory backend here and now."""
    return _global_depth > 0 or bool(_captures.get())


def enable_globally() -> None:
    global _global_depth
    with _global_lock:
        _global_depth += 1


def disable_globally() -> None:
    global _global_depth
    with _global_lock:
        _global_depth = max(0, _global_depth - 1)


def push(outbox: list[EmailMessage]) -> object:
    """Start recording into ``outbox`` in the current context; returns a reset token."""
    return _captures.set((*_captures.get(), outbox))


def pop(token: object) -> None:
    _captures.reset(token)  # type: ignore[arg-type]


def record(message: EmailMessage) -> None:
    """Called by the in-memory backend for every message it keeps."""
    for outbox in _captures.get():
        outbox.append(message)
