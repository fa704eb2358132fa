"""Spool backend: store messages durably now, deliver them through another mailer later.

The spec-style path ``mailpost.backends.spool.EmailBackend`` re-exports this class; it
lives with the spool it feeds (the deliver layer).

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
- ``dispatch``: who delivers what is stored, besides workers polling the spool (see
  :mod:`mailpost.spool.dispatch`): ``"thread"`` (a background worker thread in this
  process; ``in_process_worker: True`` is the same), ``"inline"`` (at once, in the sending
  thread), or one an integration registered: ``"celery"`` publishes tasks that carry record
  ids only, for Celery workers (:mod:`mailpost.integrations.celery`, which takes
  ``celery_app`` and ``celery_queue`` too).
- ``on_commit``: inside a Django ``atomic`` block, store the messages only once the
  transaction commits (``True`` for the default database, or a database alias); needs
  ``"mailpost.integrations.django"`` in ``INSTALLED_APPS``, which registers the hook.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost.backends.base import BaseEmailBackend
from mailpost.spool.api import Spool
from mailpost.spool.clock import Clock, system_clock
from mailpost.spool.codec import capture
from mailpost.spool.dispatch import (
    Dispatcher,
    Ready,
    claimed_options,
    find_dispatcher,
    missing_dispatcher,
    transaction_hook,
)
from mailpost.spool.policy import RetryPolicy
from mailpost.spool.record import NewMessage
from mailpost.spool.store import SpoolStore, display_location, open_store

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["DEFAULT_PATH", "EmailBackend", "SpoolBackend"]

logger = logging.getLogger("mailpost.spool")

#: Where the spool lives when OPTIONS has no ``path``: relative to the working directory.
DEFAULT_PATH = "mailpost-spool.sqlite3"


class SpoolBackend(BaseEmailBackend):
    """Queue messages durably for delivery through another mailer."""

    #: Time source for enqueue timestamps; tests may replace it on an instance.
    clock: Clock = staticmethod(system_clock)

    @classmethod
    def routes_through(cls, options: Mapping[str, Any]) -> list[str]:
        mailer = options.get("mailer")
        return [mailer] if isinstance(mailer, str) else []

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
        on_commit: bool | str = False,
        **kwargs: Any,
    ) -> None:
        self.alias = alias
        dispatch_options = self._take_dispatch_options(dispatch, kwargs)
        super().__init__(fail_silently, alias=alias, **kwargs)
        self.mailer = self._check_mailer(mailer)
        self.path = self._check_path(path)
        self.priority = self._check_priority(priority)
        self.policy = self._check_retry(retry)
        self.rate_limit = self._check_rate_limit(rate_limit)
        self.lease_seconds = self._check_positive("lease_seconds", lease_seconds)
        self.batch_size = int(self._check_positive("batch_size", batch_size))
        self.on_commit = self._check_on_commit(on_commit)
        self.dispatch = self._check_dispatch(dispatch, in_process_worker)
        self.in_process_worker = self.dispatch == "thread"
        self.dispatcher = self._make_dispatcher(self.dispatch, dispatch_options)
        self._store: tuple[int, SpoolStore] | None = None

    # -- OPTIONS, one check each --------------------------------------------------------

    def _take_dispatch_options(self, dispatch: object, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Remove from ``kwargs`` the OPTIONS that belong to dispatcher ``dispatch``."""
        found = find_dispatcher(dispatch) if isinstance(dispatch, str) else None
        own = found[1] if found is not None else frozenset()
        others = claimed_options(dispatch if isinstance(dispatch, str) else None)
        misplaced = sorted(k for k in kwargs if k in others and k not in own)
        if misplaced:
            names = " / ".join(repr(k) for k in misplaced)
            verb = "needs" if len(misplaced) == 1 else "need"
            raise self.invalid(f"OPTIONS {names} {verb} 'dispatch': {others[misplaced[0]]!r}")
        return {k: kwargs.pop(k) for k in sorted(own) if k in kwargs}

    def _check_mailer(self, mailer: object) -> str:
        if not mailer or not isinstance(mailer, str):
            raise self.invalid(
                "OPTIONS 'mailer' is required: the alias of the mailer that delivers spooled "
                "messages (e.g. 'smtp')"
            )
        if self.alias is not None and mailer == self.alias:
            raise self.invalid(
                f"OPTIONS 'mailer' is {mailer!r}, this spool itself; it must name the mailer "
                "that delivers (a spool delivering into itself would loop forever)"
            )
        return mailer

    def _check_path(self, path: object) -> str:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise self.invalid(f"OPTIONS 'path' must be a file path, not {path!r}")
        return str(os.fspath(path))

    def _check_priority(self, priority: object) -> int:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise self.invalid(f"OPTIONS 'priority' must be an int, not {priority!r}")
        return priority

    def _check_retry(self, retry: dict[str, Any] | None) -> RetryPolicy:
        try:
            return RetryPolicy.from_options(retry)
        except (TypeError, ValueError) as exc:
            raise self.invalid(f"OPTIONS 'retry': {exc}") from None

    def _check_rate_limit(self, rate_limit: object) -> float | None:
        if rate_limit is None:
            return None
        if (
            isinstance(rate_limit, bool)
            or not isinstance(rate_limit, (int, float))
            or not rate_limit > 0
        ):
            raise self.invalid(
                f"OPTIONS 'rate_limit' must be a positive number of messages per second, "
                f"not {rate_limit!r}"
            )
        return float(rate_limit)

    def _check_positive(self, name: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self.invalid(f"OPTIONS {name!r} must be a positive number, not {value!r}")
        return float(value)

    def _check_on_commit(self, on_commit: object) -> bool | str:
        if not isinstance(on_commit, (bool, str)) or on_commit == "":
            raise self.invalid(
                f"OPTIONS 'on_commit' must be True, False or a Django database alias, "
                f"not {on_commit!r}"
            )
        return on_commit

    def _check_dispatch(self, dispatch: object, in_process_worker: object) -> str | None:
        """The dispatcher's name; ``in_process_worker`` is the older spelling of "thread"."""
        if in_process_worker:
            if dispatch not in (None, "thread"):
                raise self.invalid(
                    f"OPTIONS 'in_process_worker' and 'dispatch': {dispatch!r} conflict: "
                    "in_process_worker is 'dispatch': 'thread'"
                )
            return "thread"
        if dispatch is None:
            return None
        if not isinstance(dispatch, str) or find_dispatcher(dispatch) is None:
            raise self.invalid(missing_dispatcher(str(dispatch)))
        return dispatch

    def _make_dispatcher(self, name: str | None, options: dict[str, Any]) -> Dispatcher | None:
        found = None if name is None else find_dispatcher(name)
        if found is None:
            return None
        try:
            return found[0](self, options)
        except (TypeError, ValueError, ImportError) as exc:
            raise self.invalid(str(exc)) from None

    def __repr__(self) -> str:
        return f"<SpoolBackend {self.label} path={self.location!r} mailer={self.mailer!r}>"

    @property
    def location(self) -> str:
        """:attr:`path` for messages and logs (a URL's password masked)."""
        return display_location(self.path)

    @property
    def store(self) -> SpoolStore:
        """This process's store for :attr:`path`, opened on first use."""
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
            defer = self._deferrer()
            if defer is None:
                results.update(self._store_now(captured))
            else:
                results.update(self._defer(captured, defer))
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
        if self.dispatcher is not None:
            self._dispatch(self.dispatcher, [item for _, item in captured], ids, now)
        return results

    def _dispatch(
        self, dispatcher: Dispatcher, items: list[NewMessage], ids: list[int], now: float
    ) -> None:
        """Hand the stored records to the dispatcher; its failure leaves them queued."""
        ready = [
            Ready(record_id, 0, max(0.0, (item.send_at or now) - now))
            for item, record_id in zip(items, ids, strict=True)
        ]
        try:
            dispatcher.dispatch(ready)
        except Exception:
            logger.exception(
                "%s: dispatching %d stored message(s) failed; they stay queued for a worker",
                self.label,
                len(ready),
            )

    # -- on_commit --------------------------------------------------------------------------

    def _deferrer(self) -> Callable[[Callable[[], None]], None] | None:
        """With ``on_commit`` inside an open transaction: what runs a function at its commit.

        The transaction hook is registered by the Django integration (its app's ``ready``);
        the spool never imports Django. Django loaded without that hook would make
        ``on_commit`` store mail of transactions that roll back: an error, not a guess.
        """
        if not self.on_commit:
            return None
        hook = transaction_hook()
        if hook is None:
            if "django.db" in sys.modules:
                raise self.invalid(
                    "OPTIONS 'on_commit' needs mailpost's Django app to see transactions: add "
                    "'mailpost.integrations.django' to INSTALLED_APPS (or call "
                    "mailpost.integrations.django.transactions.register())"
                )
            return None
        return hook.deferrer(None if self.on_commit is True else self.on_commit)

    def _defer(
        self,
        captured: list[tuple[EmailMessage, NewMessage]],
        defer: Callable[[Callable[[], None]], None],
    ) -> dict[int, DeliveryResult]:
        """Store the messages when the transaction commits; report "queued on commit"."""
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

        defer(enqueue_on_commit)
        return results


EmailBackend = SpoolBackend
