"""Spool backend: store messages durably now, deliver them through another mailer later.

``send_messages`` serializes each message once (fixing its Message-ID), writes it with its
envelope to the spool and returns after the commit is on disk. A worker
(``mailpost spool work``, :meth:`mailpost.spool.Spool.start_worker`, or the
``in_process_worker`` option) delivers through ``OPTIONS["mailer"]`` with retries.
Nothing from settings or OPTIONS is stored: no host, no user, no password.

OPTIONS:

- ``mailer`` (required): alias of the mailer that delivers, e.g. ``"smtp"``.
- ``path``: the SQLite file, default ``"mailpost-spool.sqlite3"`` in the current directory.
- ``priority``: default priority (int, higher first; default 0).
- ``retry``: retry policy overrides, e.g. ``{"first_delay": 60, "max_age": 86400}``.
- ``rate_limit``: messages per second through ``mailer``, per worker (default: none).
- ``lease_seconds`` (default 300), ``batch_size`` (default 20): worker tuning.
- ``in_process_worker``: start a background delivery thread in this process on first send.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost.backends.base import BaseEmailBackend
from mailpost.spool.clock import Clock, system_clock
from mailpost.spool.policy import RetryPolicy

if TYPE_CHECKING:
    from mailpost.message import EmailMessage
    from mailpost.spool.api import Spool
    from mailpost.spool.record import NewMessage
    from mailpost.spool.store import SQLiteStore

__all__ = ["DEFAULT_PATH", "EmailBackend", "SpoolBackend"]

#: Where the spool lives when OPTIONS has no ``path``: relative to the working directory.
DEFAULT_PATH = "mailpost-spool.sqlite3"


class SpoolBackend(BaseEmailBackend):
    """Queue messages durably for delivery through another mailer."""

    #: Time source for enqueue timestamps; tests may replace it on an instance.
    clock: Clock = staticmethod(system_clock)

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        mailer: str | None = None,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        priority: int = 0,
        retry: dict[str, Any] | None = None,
        rate_limit: float | None = None,
        lease_seconds: float = 300.0,
        batch_size: int = 20,
        in_process_worker: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently, alias=alias, **kwargs)
        if not mailer or not isinstance(mailer, str):
            raise self.invalid(
                "OPTIONS 'mailer' is required: the alias of the mailer that delivers spooled "
                "messages (e.g. 'smtp')"
            )
        if alias is not None and mailer == alias:
            raise self.invalid(
                f"OPTIONS 'mailer' is {mailer!r}, this spool itself; it must name the mailer "
                "that delivers (a spool delivering into itself would loop forever)"
            )
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise self.invalid(f"OPTIONS 'path' must be a file path, not {path!r}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise self.invalid(f"OPTIONS 'priority' must be an int, not {priority!r}")
        try:
            self.policy = RetryPolicy.from_options(retry)
        except (TypeError, ValueError) as exc:
            raise self.invalid(f"OPTIONS 'retry': {exc}") from None
        if rate_limit is not None and (
            isinstance(rate_limit, bool)
            or not isinstance(rate_limit, (int, float))
            or not rate_limit > 0
        ):
            raise self.invalid(
                f"OPTIONS 'rate_limit' must be a positive number of messages per second, "
                f"not {rate_limit!r}"
            )
        for name, value in (("lease_seconds", lease_seconds), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise self.invalid(f"OPTIONS {name!r} must be a positive number, not {value!r}")
        self.mailer = mailer
        self.path = os.fspath(path)
        self.priority = priority
        self.rate_limit = None if rate_limit is None else float(rate_limit)
        self.lease_seconds = float(lease_seconds)
        self.batch_size = int(batch_size)
        self.in_process_worker = bool(in_process_worker)
        self._store: tuple[int, SQLiteStore] | None = None

    def __repr__(self) -> str:
        return f"<SpoolBackend {self.label} path={self.path!r} mailer={self.mailer!r}>"

    @property
    def store(self) -> SQLiteStore:
        """This process's store for :attr:`path`, opened on first use."""
        from mailpost.spool.store import shared_sqlite_store

        cached = self._store
        if cached is not None and cached[0] == os.getpid():
            return cached[1]
        try:
            store = shared_sqlite_store(self.path)
            self._store = (os.getpid(), store)
            return store
        except (OSError, ValueError) as exc:
            raise self.invalid(f"cannot open spool {self.path!r}: {exc}") from exc
        except Exception as exc:  # sqlite3.Error
            raise self.invalid(f"cannot open spool {self.path!r}: {exc}") from exc

    def spool(self, *, clock: Clock | None = None) -> Spool:
        """The :class:`~mailpost.spool.Spool` API on this mailer's store and settings."""
        from mailpost.spool.api import Spool

        return Spool(
            self.store,
            mailer=self.mailer,
            policy=self.policy,
            clock=clock or self.clock,
            lease_seconds=self.lease_seconds,
            batch_size=self.batch_size,
            rate_limits={self.mailer: self.rate_limit} if self.rate_limit else None,
            priority=self.priority,
        )

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Store every message durably; returns how many were queued.

        Each message gets ``delivery.response == (250, "queued as <id>")`` and
        ``spool_id``. A message that cannot be composed is not queued (its error is raised
        after the others are stored, unless ``fail_silently``).
        """
        if not email_messages:
            return 0
        from mailpost.spool.codec import capture

        captured: list[tuple[EmailMessage, NewMessage]] = []
        results: dict[int, DeliveryResult] = {}
        compose_error: Exception | None = None
        for message in email_messages:
            try:
                captured.append(
                    (message, capture(message, mailer=self.mailer, priority=self.priority))
                )
            except Exception as exc:
                results[id(message)] = self.record(
                    message,
                    DeliveryResult(error=f"message could not be composed: {exc}", exception=exc),
                )
                if compose_error is None and not self.fail_silently:
                    compose_error = exc
        if captured:
            store = self.store
            try:
                ids = store.enqueue([c for _, c in captured], now=self.clock())
            except Exception as exc:
                for message, item in captured:
                    results[id(message)] = self.record(
                        message,
                        DeliveryResult(
                            message_id=item.message_id,
                            recipients=[RecipientStatus(a, "unattempted") for a in item.recipients],
                            error=f"could not write to spool {self.path!r}: {exc}",
                            retryable=True,
                            exception=exc,
                        ),
                    )
            else:
                for (message, item), record_id in zip(captured, ids, strict=True):
                    reply = f"queued as {record_id}"
                    message.spool_id = record_id  # type: ignore[attr-defined]
                    results[id(message)] = self.record(
                        message,
                        DeliveryResult(
                            message_id=item.message_id,
                            sent=True,
                            recipients=[
                                RecipientStatus(a, "accepted", 250, reply) for a in item.recipients
                            ],
                            response=(250, reply),
                        ),
                    )
                if self.in_process_worker:
                    from mailpost.spool.api import ensure_in_process_worker

                    ensure_in_process_worker(
                        (os.path.abspath(self.path), self.mailer), self.spool()
                    )
        if compose_error is not None:
            raise compose_error
        return self.finish(results[id(m)] for m in email_messages)


EmailBackend = SpoolBackend
