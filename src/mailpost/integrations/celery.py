"""Deliver spooled mail through Celery workers: the spool stays the truth, Celery dispatches.

Importing this module registers the ``"celery"`` dispatcher
(:mod:`mailpost.spool.dispatch`): the spool backend with ``OPTIONS["dispatch"] = "celery"``
(or this module's :class:`CelerySpoolBackend`) stores each message durably, then publishes
``mailpost.deliver`` tasks that carry only ``([[record_id, attempts], ...], spool_alias)``,
up to ``batch_size`` records a task: no message bytes, no settings, no credentials.

A task runs the spool worker's engine on its records (one SMTP session, pipelined, group
commits; the records are *leased*, so a task delivered twice never sends twice), then goes
on with up to :data:`EXTRA_BATCHES` batches of other due records of its spool's mailer,
and publishes the next attempt of each record it tried with a Celery ``countdown`` taken
from the spool's retry policy (4xx and lost connections retried with backoff, 5xx never).

The task is registered with ``acks_late=True`` and ``reject_on_worker_lost=True``: a worker
killed mid-task (OOM, SIGKILL) leaves its message unacknowledged, so the broker hands it
out again; the record's lease keeps a second worker off it until the lease expires.

``attempts`` makes stale tasks harmless: a task only acts on a record that has had exactly
that many attempts (whoever made an attempt publishes the next), so duplicates (broker
redelivery, a sweep) die out after one look. :func:`sweep` (task ``mailpost.sweep``, run it
from Celery beat) republishes records whose task was lost, e.g. when the broker restarted
without persistence.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from mailpost.spool.backend import SpoolBackend
from mailpost.spool.dispatch import Ready, SpoolBackendLike, deliver_ready, register_dispatcher
from mailpost.spool.record import SpoolRecord
from mailpost.spool.worker import new_worker_id

if TYPE_CHECKING:
    from mailpost.spool.api import Spool

__all__ = [
    "SWEEP_TASK_NAME",
    "TASK_NAME",
    "CeleryDispatcher",
    "CelerySpoolBackend",
    "EmailBackend",
    "batches",
    "deliver",
    "plan",
    "publish",
    "register",
    "sweep",
]

logger = logging.getLogger("mailpost.spool")

TASK_NAME = "mailpost.deliver"
SWEEP_TASK_NAME = "mailpost.sweep"

#: Longest countdown published. Redis and SQS redeliver an unacknowledged message after
#: their visibility timeout (Redis: one hour by default), and a task waiting for its ETA is
#: unacknowledged; a longer wait is split into hops, each re-checked when it wakes.
MAX_COUNTDOWN = 1800.0
#: After its own records, a task goes on with up to this many batches of other due records
#: of its spool's mailer, so a backlog is delivered by a few long runs at engine speed
#: (their own tasks then find them sent and stop).
EXTRA_BATCHES = 10
#: Pause before looking again when another worker leased the record between our look and
#: our lease.
RACE_PAUSE = 1.0

_INSTALL = 'Celery is not installed: pip install "mailpost[celery]"'

#: (record id, attempts the record has had, seconds to wait before the task runs)
Dispatch = tuple[int, int, float]


def _celery() -> Any:
    try:
        import celery  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    return celery


def resolve_app(app: Any = None) -> Any:
    """``app`` itself, the app at ``"module:attribute"``, or ``celery.current_app``."""
    if app is None:
        return _celery().current_app
    if isinstance(app, str):
        from importlib import import_module

        module_name, _, attribute = app.partition(":")
        module = import_module(module_name)
        return getattr(module, attribute or "app")
    return app


def max_countdown(app: Any) -> float:
    """:data:`MAX_COUNTDOWN`, or half the broker's visibility timeout when that is shorter."""
    options = app.conf.broker_transport_options or {}
    visibility = options.get("visibility_timeout")
    if visibility is None:
        return MAX_COUNTDOWN
    return max(0.1, min(MAX_COUNTDOWN, float(visibility) / 2))


# -- the dispatcher -------------------------------------------------------------------------


class CeleryDispatcher:
    """OPTIONS ``dispatch: "celery"``: a ``mailpost.deliver`` task per stored record.

    Takes the OPTIONS ``celery_app`` (an app or ``"module:attribute"``; default
    ``celery.current_app``, resolved when publishing) and ``celery_queue`` (default: the
    app's default queue).
    """

    def __init__(self, backend: SpoolBackendLike, options: Mapping[str, Any]) -> None:
        if backend.alias is None:
            raise ValueError(
                "OPTIONS 'dispatch': 'celery' needs the spool to be a MAILERS entry: the "
                "Celery task finds the spool by its alias"
            )
        queue = options.get("celery_queue")
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise ValueError(f"OPTIONS 'celery_queue' must be a queue name, not {queue!r}")
        try:
            import celery  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401
        except ImportError:
            raise ValueError(
                "OPTIONS 'dispatch': 'celery' needs Celery: pip install \"mailpost[celery]\""
            ) from None
        self.backend = backend
        self.app: Any = options.get("celery_app")
        self.queue: str | None = queue

    def dispatch(self, ready: Sequence[Ready]) -> None:
        publish(
            cast(SpoolBackend, self.backend), [(r.record_id, r.attempts, r.wait) for r in ready]
        )


register_dispatcher("celery", CeleryDispatcher, options=("celery_app", "celery_queue"))


def _dispatcher(backend: SpoolBackend) -> CeleryDispatcher | None:
    dispatcher = backend.dispatcher
    return dispatcher if isinstance(dispatcher, CeleryDispatcher) else None


# -- publishing ---------------------------------------------------------------------------


def batches(items: Sequence[Dispatch], size: int) -> list[tuple[float, list[Dispatch]]]:
    """``items`` in tasks of at most ``size`` records due at about the same time: each
    ``(wait, records)``, ``wait`` the longest of its records' waits.

    Records due now share tasks; a record waiting ``w`` seconds joins a task whose first
    record waits at least ``w - max(0.5, w / 10)`` (the cost: a retry runs up to that much
    later than its policy says).
    """
    groups: list[tuple[float, list[Dispatch]]] = []
    first = 0.0
    for item in sorted(items, key=lambda item: item[2]):
        wait = max(0.0, item[2])
        if groups and len(groups[-1][1]) < size and wait - first <= max(0.5, first / 10):
            groups[-1] = (wait, [*groups[-1][1], item])
        else:
            first = wait
            groups.append((wait, [item]))
    return groups


def publish(backend: SpoolBackend, items: Sequence[Dispatch], *, app: Any = None) -> int:
    """Publish ``mailpost.deliver`` tasks for ``items`` of the spool mailer ``backend``.

    One task carries up to ``batch_size`` records due at about the same time (see
    :func:`batches`): their ids and attempts, nothing else. Returns how many records were
    published. A broker that cannot be reached is logged, not raised: the messages are
    already stored, and :func:`sweep` republishes them.
    """
    if not items:
        return 0
    if backend.alias is None:
        raise backend.invalid("publishing to Celery needs the spool's MAILERS alias")
    dispatcher = _dispatcher(backend)
    if app is None and dispatcher is not None:
        app = dispatcher.app
    queue = None if dispatcher is None else dispatcher.queue
    celery_app = resolve_app(app)
    cap = max_countdown(celery_app)
    published = 0
    try:
        with celery_app.producer_or_acquire() as producer:
            for wait, group in batches(items, backend.batch_size):
                celery_app.send_task(
                    TASK_NAME,
                    args=[
                        [[record_id, attempts] for record_id, attempts, _ in group],
                        backend.alias,
                    ],
                    countdown=min(cap, wait) or None,
                    queue=queue,
                    producer=producer,
                )
                published += len(group)
    except Exception as exc:
        logger.warning(
            "%s: could not publish the delivery tasks of %d of %d record(s) to Celery (%s: %s); "
            "the messages are stored and mailpost.sweep will publish them",
            backend.label,
            len(items) - published,
            len(items),
            type(exc).__name__,
            exc,
        )
    return published


# -- the task -----------------------------------------------------------------------------


def plan(record: SpoolRecord | None, attempts: int, now: float) -> tuple[str, float]:
    """What a task expecting ``attempts`` previous attempts does with ``record`` at ``now``.

    Returns ``(action, wait)``: ``"gone"`` (no such record), ``"done"`` (sent or dead),
    ``"stale"`` (another task advanced it: drop this one), ``"wait"`` (not due for
    ``wait`` seconds), ``"held"`` (another worker's lease ends in ``wait`` seconds) or
    ``"deliver"``.
    """
    if record is None:
        return "gone", 0.0
    if record.state in ("sent", "dead"):
        return "done", 0.0
    if record.attempts != attempts:
        return "stale", 0.0
    if record.state == "queued":
        wait = record.next_attempt_at - now
    else:
        wait = (record.lease_expires_at or now) - now
    if wait > 0:
        return ("wait" if record.state == "queued" else "held"), wait
    return "deliver", 0.0


def _spool_backend(alias: str) -> SpoolBackend:
    from mailpost.handler import mailers

    backend = mailers[alias]
    if not isinstance(backend, SpoolBackend):
        raise backend.invalid(
            f"the Celery task {TASK_NAME} needs a spool mailer, not "
            f"{type(backend).__module__}.{type(backend).__qualname__}"
        )
    return backend


def deliver(
    records: int | Sequence[Sequence[int]], alias: str, attempts: int = 0, *, app: Any = None
) -> str:
    """The body of ``mailpost.deliver``: attempt once each record of spool ``alias`` that
    is due and has had the attempts its task says, then publish what comes next (retries,
    records not due yet or held by another worker). Returns what happened, for the log.

    ``records`` is a list of ``[record id, attempts]`` pairs; a single record id with
    ``attempts`` is the older one-record form.
    """
    if isinstance(records, int):  # compat: tasks published as (record_id, alias, attempts)
        records = [[records, attempts]]
    expected = {int(pair[0]): int(pair[1]) for pair in records}
    backend = _spool_backend(alias)
    spool = backend.spool()
    attempted = deliver_ready(
        spool,
        expected,
        attempts=expected,
        extra=EXTRA_BATCHES * backend.batch_size,
        mailers=[backend.mailer],
        worker_id=f"celery:{new_worker_id()}",
    )
    now = spool.clock()
    follow: list[Dispatch] = []
    counts: Counter[str] = Counter()
    for record_id, other in attempted.items():
        if record_id not in expected:  # another task's record, due now: its retry is ours
            if other.state == "queued":
                follow.append((record_id, other.attempts, max(0.0, other.retry_at - now)))
            counts["extra"] += 1
    for record_id, seen in expected.items():
        done = attempted.get(record_id)
        if done is not None:
            if done.state == "queued":
                follow.append((record_id, done.attempts, max(0.0, done.retry_at - now)))
                counts["retry"] += 1
            else:
                counts[done.state or "gone"] += 1
            continue
        action, wait = plan(spool.get(record_id), seen, now)
        if action == "deliver":  # due, but another worker leased it between look and lease
            action, wait = "wait", RACE_PAUSE
        if action in ("wait", "held"):
            follow.append((record_id, seen, wait))
        counts[action] += 1
    publish(backend, follow, app=app)
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    return f"{len(expected)} record(s): {summary}"


def sweep(alias: str = "spool", *, app: Any = None, grace: float = 60.0, limit: int = 1000) -> int:
    """Republish tasks for records of spool ``alias`` overdue by more than ``grace`` seconds.

    A record normally has a task on its way; one still due ``grace`` seconds after it fell
    due (or whose lease expired that long ago) has most likely lost it (broker restart,
    a failed publish, ``mailpost spool retry``). A record that did have a task gets a
    duplicate, which does nothing. Returns how many tasks were published.
    """
    backend = _spool_backend(alias)
    spool: Spool = backend.spool()
    overdue = spool.store.due(now=spool.clock() - grace, limit=limit)
    return publish(backend, [(r.id, r.attempts, 0.0) for r in overdue], app=app)


def register(app: Any = None) -> Any:
    """Register ``mailpost.deliver`` and ``mailpost.sweep`` on ``app`` (default: the
    current app); returns the deliver task. Safe to call more than once."""
    celery_app = resolve_app(app)
    if TASK_NAME in celery_app.tasks:
        return celery_app.tasks[TASK_NAME]

    def deliver_task(
        self: Any, records: int | list[list[int]], alias: str, attempts: int = 0
    ) -> str:
        return deliver(records, alias, attempts, app=self.app)

    def sweep_task(self: Any, alias: str = "spool", grace: float = 60.0) -> int:
        return sweep(alias, app=self.app, grace=grace)

    celery_app.task(name=SWEEP_TASK_NAME, bind=True, ignore_result=True)(sweep_task)
    return celery_app.task(
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        max_retries=None,
    )(deliver_task)


# -- the backend ----------------------------------------------------------------------------


class CelerySpoolBackend(SpoolBackend):
    """The spool backend with ``dispatch="celery"`` by default."""

    def __init__(
        self, fail_silently: bool = False, *, dispatch: str | None = "celery", **kwargs: Any
    ) -> None:
        super().__init__(fail_silently, dispatch=dispatch, **kwargs)


EmailBackend = CelerySpoolBackend
