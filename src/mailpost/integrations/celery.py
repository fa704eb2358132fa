"""Deliver spooled mail through Celery workers: the spool stays the truth, Celery dispatches.

The spool backend with ``OPTIONS["dispatch"] = "celery"`` (or this module's
:class:`CelerySpoolBackend`) stores each message durably, then publishes a
``mailpost.deliver`` task that carries only ``(record_id, spool_alias, attempts)``: no
message bytes, no settings, no credentials. The task calls
:meth:`mailpost.spool.Worker.deliver`, which leases the record, so a task delivered twice
never sends twice, and publishes the next attempt with a Celery ``countdown`` taken from
the spool's retry policy (4xx and lost connections retried with backoff, 5xx never).

The task is registered with ``acks_late=True`` and ``reject_on_worker_lost=True``: a worker
killed mid-task (OOM, SIGKILL) leaves its message unacknowledged, so the broker hands it
out again; the record's lease keeps a second worker off it until the lease expires.

``attempts`` makes stale tasks harmless: a task only acts on a record that has had exactly
that many attempts, so duplicates (broker redelivery, a sweep) die out after one look.
:func:`sweep` (task ``mailpost.sweep``, run it from Celery beat) republishes records whose
task was lost, e.g. when the broker restarted without persistence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from mailpost.spool.backend import SpoolBackend
from mailpost.spool.dispatch import Ready, SpoolMailer, register_dispatcher
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

    def __init__(self, backend: SpoolMailer, options: Mapping[str, Any]) -> None:
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


def publish(backend: SpoolBackend, items: Sequence[Dispatch], *, app: Any = None) -> int:
    """Publish a ``mailpost.deliver`` task per item for the spool mailer ``backend``.

    Returns how many were published. A broker that cannot be reached is logged, not
    raised: the messages are already stored, and :func:`sweep` republishes them.
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
            for record_id, attempts, wait in items:
                celery_app.send_task(
                    TASK_NAME,
                    args=[record_id, backend.alias, attempts],
                    countdown=min(cap, max(0.0, wait)) or None,
                    queue=queue,
                    producer=producer,
                )
                published += 1
    except Exception as exc:
        logger.warning(
            "%s: could not publish %d of %d delivery task(s) to Celery (%s: %s); the messages "
            "are stored and mailpost.sweep will publish them",
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


def deliver(record_id: int, alias: str, attempts: int, *, app: Any = None) -> str:
    """The body of ``mailpost.deliver``: attempt record ``record_id`` of spool ``alias``
    once if it is due, and publish the next step. Returns what happened, for the log."""
    backend = _spool_backend(alias)
    spool = backend.spool()
    action, wait = plan(spool.get(record_id), attempts, spool.clock())
    if action == "deliver":
        worker = spool.worker(worker_id=f"celery:{new_worker_id()}")
        settled = worker.deliver(record_id)
        if settled is None:
            action, wait = plan(spool.get(record_id), attempts, spool.clock())
            if action == "deliver":
                action, wait = "wait", RACE_PAUSE
        else:
            attempts = settled.attempts
            action, wait = plan(settled, attempts, spool.clock())
            if action == "done":
                action = settled.state
            elif action == "deliver":
                action, wait = "retry", 0.0
            else:
                action = "retry" if action == "wait" else action
    if action in ("wait", "held", "retry"):
        publish(backend, [(record_id, attempts, wait)], app=app)
        return f"record {record_id}: {action}, next look in {wait:.1f}s"
    return f"record {record_id}: {action}"


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

    def deliver_task(self: Any, record_id: int, alias: str, attempts: int = 0) -> str:
        return deliver(record_id, alias, attempts, app=self.app)

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
