"""Test helpers for the spool: MAILERS entries, a worker process and a Celery worker.

The fault-injecting SMTP server the spool tests deliver to is
:class:`smtpd_harness.SMTPServer`, with per-message :class:`smtpd_harness.Faults`.

Run as a script (``python spool_helpers.py worker ...``) it is the worker process the
crash test kills with SIGKILL; ``python spool_helpers.py celery-worker ...`` is a real
Celery worker (prefork, two children) for the Celery tests. Neither imports the server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smtpd_harness import SMTPServer

HOST = "127.0.0.1"


def smtp_entry(server: SMTPServer, *, timeout: float = 5.0) -> dict[str, Any]:
    """A MAILERS entry for the SMTP backend pointed at ``server``."""
    return {
        "BACKEND": "mailpost.backends.smtp.EmailBackend",
        "OPTIONS": {"host": server.host, "port": server.port, "timeout": timeout},
    }


def spool_entry(path: str, mailer: str = "smtp", **options: Any) -> dict[str, Any]:
    """A MAILERS entry for the spool backend at ``path`` delivering through ``mailer``."""
    return {
        "BACKEND": "mailpost.backends.spool.EmailBackend",
        "OPTIONS": {"path": path, "mailer": mailer, **options},
    }


def _worker_main(argv: list[str]) -> int:
    """``worker PATH PORT [LEASE]``: deliver from the spool at PATH until killed or drained
    (default lease and batch size unless LEASE is given)."""
    path, port = argv[0], int(argv[1])
    options: dict[str, Any] = {}
    if len(argv) > 2:
        options = {"lease_seconds": float(argv[2]), "batch_size": 5}
    import mailpost
    from mailpost.spool import Spool

    mailpost.configure(
        MAILERS={
            "smtp": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": HOST, "port": port, "timeout": 5.0},
            },
            "spool": spool_entry(path, **options),
        }
    )
    worker = Spool.from_mailer("spool").worker()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    worker.run(max_seconds=60.0, poll_interval=0.05)
    return 0


#: A short retry policy for the Celery tests: the same classification, seconds not minutes.
CELERY_TEST_RETRY = {"first_delay": 0.3, "max_delay": 0.6, "jitter": 0.0, "max_age": 120.0}
#: Lease of a record in the Celery tests: a killed worker's records are free after this.
CELERY_TEST_LEASE = 2.0
CELERY_TEST_QUEUE = "mailpost-test"


def celery_test_app(broker_url: str) -> Any:
    """A Celery app on ``broker_url`` that recovers a dead worker's messages in seconds."""
    from celery import Celery

    app = Celery("mailpost_test", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_transport_options={
            "visibility_timeout": 3,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        task_default_queue=CELERY_TEST_QUEUE,
        worker_prefetch_multiplier=4,
        worker_redirect_stdouts=False,
    )
    return app


def celery_mailers(path: str, smtp_port: int, app: Any, **options: Any) -> dict[str, Any]:
    """MAILERS for the Celery tests: ``spool`` dispatches to Celery, delivering via ``smtp``."""
    return {
        "smtp": {
            "BACKEND": "mailpost.backends.smtp.EmailBackend",
            "OPTIONS": {"host": HOST, "port": smtp_port, "timeout": 5.0},
        },
        "spool": spool_entry(
            path,
            dispatch="celery",
            celery_app=app,
            lease_seconds=CELERY_TEST_LEASE,
            retry=CELERY_TEST_RETRY,
            **options,
        ),
    }


def _celery_worker_main(argv: list[str]) -> int:
    """``celery-worker BROKER SMTP_PORT PATH STATE_DIR``: a prefork Celery worker.

    It writes ``STATE_DIR/ready`` once consuming, and ``STATE_DIR/child-<pid>`` per pool
    process, so the test knows when to send and whom to kill.
    """
    broker, port, path, state_dir = argv[0], int(argv[1]), argv[2], Path(argv[3])
    from celery import signals

    import mailpost
    from mailpost.integrations.celery import register

    app = celery_test_app(broker)
    mailpost.configure(MAILERS=celery_mailers(path, port, app))
    register(app)

    def ready(**kwargs: Any) -> None:
        (state_dir / "ready").write_text(str(os.getpid()))

    def child(**kwargs: Any) -> None:
        (state_dir / f"child-{os.getpid()}").touch()

    signals.worker_ready.connect(ready, weak=False)
    signals.worker_process_init.connect(child, weak=False)
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
            f"--queues={CELERY_TEST_QUEUE}",
            f"--hostname=mailpost-test-{os.getpid()}@localhost",
        ]
    )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        raise SystemExit(_worker_main(sys.argv[2:]))
    if sys.argv[1:2] == ["celery-worker"]:
        raise SystemExit(_celery_worker_main(sys.argv[2:]))
    raise SystemExit(
        "usage: spool_helpers.py worker PATH PORT [LEASE_SECONDS]\n"
        "       spool_helpers.py celery-worker BROKER_URL SMTP_PORT PATH STATE_DIR"
    )
