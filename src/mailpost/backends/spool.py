"""Spool backend: store messages durably now, deliver them through another mailer later.

``send_messages`` serializes each message once (fixing its Message-ID), writes it with its
envelope to the spool and returns after the commit is on disk. A worker
(``mailpost spool work``, :meth:`mailpost.spool.Spool.start_worker`, or the
``in_process_worker`` option) delivers through ``OPTIONS["mailer"]`` with retries.
Nothing from settings or OPTIONS is stored: no host, no user, no password.

OPTIONS:

- ``mailer`` (required): alias of the mailer that delivers, e.g. ``"smtp"``.
- ``path``: the SQLite file, default ``"mailpost-spool.sqlite3"`` in the current directory;
  or a ``postgresql://`` URL, for workers on several machines (``mailpost[postgres]``).
- ``priority``: default priority (int, higher first; default 0).
- ``retry``: retry policy overrides, e.g. ``{"first_delay": 60, "max_age": 86400}``.
- ``rate_limit``: messages per second through ``mailer``, evenly spaced, shared by every
  worker of this spool file (threads and processes; default: none).
- ``lease_seconds`` (default 20; renewed every quarter of it while a worker holds the
  record, so a killed worker's messages are free again within it), ``batch_size``
  (default 100: records per lease and per pipelined SMTP batch): worker tuning.
- ``in_process_worker``: start a background delivery thread in this process on first send.
- ``dispatch``: ``"celery"`` publishes one ``mailpost.deliver`` task per stored message
  (its id only) so Celery workers deliver it; see :mod:`mailpost.integrations.celery`.
- ``celery_app``: the Celery app to publish with (an app or ``"module:attribute"``; default
  ``celery.current_app``); ``celery_queue``: the queue to publish to (default: the app's).
- ``on_commit``: inside a Django ``atomic`` block, store the messages only once the
  transaction commits (``True`` for the default database, or a database alias).
"""

from __future__ import annotations

import logging
import os
import sys
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
    from mailpost.spool.store import SpoolStore

__all__ = ["DEFAULT_PATH", "EmailBackend", "SpoolBackend"]

logger = logging.getLogger("mailpost.spool")

#: Values of OPTIONS ``dispatch``: who delivers what this spool stores, besides workers.
DISPATCHERS = ("celery",)

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
        lease_seconds: float = 20.0,
        batch_size: int = 100,
        in_process_worker: bool = False,
        dispatch: str | None = None,
        celery_app: Any = None,
        celery_queue: str | None = None,
        on_commit: bool | str = False,
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
        if dispatch is not None and dispatch not in DISPATCHERS:
            raise self.invalid(
                f"OPTIONS 'dispatch' must be one of {', '.join(map(repr, DISPATCHERS))} "
                f"or None, not {dispatch!r}"
            )
        if dispatch is None and (celery_app is not None or celery_queue is not None):
            raise self.invalid("OPTIONS 'celery_app' / 'celery_queue' need 'dispatch': 'celery'")
        if dispatch == "celery":
            if alias is None:
                raise self.invalid(
                    "OPTIONS 'dispatch': 'celery' needs the spool to be a MAILERS entry: the "
                    "Celery task finds the spool by its alias"
                )
            if celery_queue is not None and (not isinstance(celery_queue, str) or not celery_queue):
                raise self.invalid(
                    f"OPTIONS 'celery_queue' must be a queue name, not {celery_queue!r}"
                )
            try:
                import celery  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401
            except ImportError:
                raise self.invalid(
                    "OPTIONS 'dispatch': 'celery' needs Celery: pip install \"mailpost[celery]\""
                ) from None
        if not isinstance(on_commit, (bool, str)) or on_commit == "":
            raise self.invalid(
                f"OPTIONS 'on_commit' must be True, False or a Django database alias, "
                f"not {on_commit!r}"
            )
        self.dispatch = dispatch
        self.celery_app = celery_app
        self.celery_queue = celery_queue
        self.on_commit = on_commit
        self._store: tuple[int, SpoolStore] | None = None

    def __repr__(self) -> str:
        return f"<SpoolBackend {self.label} path={self.location!r} mailer={self.mailer!r}>"

    @property
    def location(self) -> str:
        """:attr:`path` for messages and logs (a URL's password masked)."""
        from mailpost.spool.store import display_location

        return display_location(self.path)

    @property
    def store(self) -> SpoolStore:
        """This process's store for :attr:`path`, opened on first use."""
        from mailpost.spool.store import open_store

        cached = self._store
        if cached is not None and cached[0] == os.getpid():
            return cached[1]
        try:
            store = open_store(self.path)
            self._store = (os.getpid(), store)
            return store
        except (OSError, ValueError) as exc:
            raise self.invalid(f"cannot open spool {self.location!r}: {exc}") from exc
        except Exception as exc:  # sqlite3.Error, psycopg.Error
            raise self.invalid(f"cannot open spool {self.location!r}: {exc}") from exc

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
        after the others are stored, unless ``fail_silently``). With ``on_commit`` inside a
        Django transaction, the messages are composed now (their Message-ID fixed) and
        stored when it commits; until then the response is ``(250, "queued on commit")``.
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
            database = self._open_transaction()
            if database is None:
                results.update(self._store_now(captured))
            else:
                results.update(self._defer(captured, database))
        return self.finish((results[id(m)] for m in email_messages), compose_error)

    def _store_now(
        self, captured: list[tuple[EmailMessage, NewMessage]]
    ) -> dict[int, DeliveryResult]:
        """Enqueue in one transaction, then dispatch; a result per message (by ``id()``)."""
        results: dict[int, DeliveryResult] = {}
        store = self.store
        now = self.clock()
        try:
            ids = store.enqueue([c for _, c in captured], now=now)
        except Exception as exc:
            for message, item in captured:
                results[id(message)] = self.record(
                    message,
                    DeliveryResult(
                        message_id=item.message_id,
                        recipients=[RecipientStatus(a, "unattempted") for a in item.recipients],
                        error=f"could not write to spool {self.location!r}: {exc}",
                        retryable=True,
                        exception=exc,
                    ),
                )
            return results
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

            key = self.path if "://" in self.path else os.path.abspath(self.path)
            ensure_in_process_worker((key, self.mailer), self.spool())
        if self.dispatch == "celery":
            from mailpost.integrations.celery import publish

            due = [max(0.0, (item.send_at or now) - now) for _, item in captured]
            publish(self, [(record_id, 0, wait) for record_id, wait in zip(ids, due, strict=True)])
        return results

    # -- Django on_commit -----------------------------------------------------------------

    def _open_transaction(self) -> str | None:
        """The Django database alias whose open ``atomic`` block defers the enqueue, if any.

        Only with ``on_commit``, and only when Django is already imported and configured:
        the spool never imports Django itself.
        """
        if not self.on_commit or "django.db" not in sys.modules:
            return None
        from django.conf import settings
        from django.db import DEFAULT_DB_ALIAS, transaction

        if not settings.configured:
            return None
        database = DEFAULT_DB_ALIAS if self.on_commit is True else str(self.on_commit)
        in_block: bool = transaction.get_connection(database).in_atomic_block
        return database if in_block else None

    def _defer(
        self, captured: list[tuple[EmailMessage, NewMessage]], database: str
    ) -> dict[int, DeliveryResult]:
        """Register the enqueue with ``transaction.on_commit``; report "queued on commit"."""
        from django.db import transaction

        reply = "queued on commit"
        results = {
            id(message): self.record(
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
            for message, item in captured
        }

        def enqueue_on_commit() -> None:
            stored = self._store_now(captured)
            self.finish(stored[id(message)] for message, _ in captured)

        transaction.on_commit(enqueue_on_commit, using=database)
        return results


EmailBackend = SpoolBackend
