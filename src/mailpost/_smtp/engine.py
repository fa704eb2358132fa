"""The asyncio SMTP engine: the names the backends use, from the modules that hold them.

- :mod:`~mailpost._smtp.wire`: the asyncio protocol under a session (bytes, replies, timers);
- :mod:`~mailpost._smtp.session`: one SMTP session (:class:`Session`) and its mail
  transactions, over the sans-IO :mod:`~mailpost._smtp.protocol`;
- :mod:`~mailpost._smtp.pool`: up to ``max_connections`` sessions to one server;
- :mod:`~mailpost._smtp.batch`: a batch's bookkeeping, the one set of state transitions;
- :mod:`~mailpost._smtp.drivers`: :func:`send_batch`, its worker coroutine and callback pump;
- :mod:`~mailpost._smtp.loop`: the private event loop of the sync API.
"""

from __future__ import annotations

from mailpost._smtp.batch import unattempted
from mailpost._smtp.drivers import send_batch
from mailpost._smtp.loop import background_loop, run_sync
from mailpost._smtp.pool import Pool
from mailpost._smtp.session import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DATA_TIMEOUT,
    DEFAULT_GREETING_TIMEOUT,
    Attempt,
    ClientConfig,
    Item,
    Session,
    composition_failed,
    open_session,
)

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_DATA_TIMEOUT",
    "DEFAULT_GREETING_TIMEOUT",
    "Attempt",
    "ClientConfig",
    "Item",
    "Pool",
    "Session",
    "background_loop",
    "composition_failed",
    "open_session",
    "run_sync",
    "send_batch",
    "unattempted",
]
