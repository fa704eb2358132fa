"""What a ``mailpost.deliver`` task does with a record, without a broker: pure decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

import mailpost
from mailpost import EmailMessage
from mailpost.integrations.celery import CelerySpoolBackend, batches, max_countdown, plan
from mailpost.spool.record import SpoolRecipient, SpoolRecord

NOW = 1_700_000_000.0


def _record(state: str = "queued", attempts: int = 1, **fields: float) -> SpoolRecord:
    return SpoolRecord(
        id=7,
        message_id="<m@x>",
        mailer="smtp",
        sender="s@x.test",
        recipients=[SpoolRecipient("a@x.test")],
        priority=0,
        state=state,  # type: ignore[arg-type]
        created_at=NOW - 100,
        send_at=None,
        next_attempt_at=fields.get("next_attempt_at", NOW),
        attempts=attempts,
        lease_owner="w" if state == "leased" else None,
        lease_expires_at=fields.get("lease_expires_at"),
        last_error=None,
        updated_at=NOW - 100,
        size=10,
    )


def test_a_due_record_with_the_expected_attempts_is_delivered() -> None:
    assert plan(_record(), 1, NOW) == ("deliver", 0.0)


def test_a_record_not_yet_due_waits_for_its_backoff() -> None:
    assert plan(_record(next_attempt_at=NOW + 30), 1, NOW) == ("wait", 30.0)


def test_a_record_another_task_already_advanced_is_stale() -> None:
    assert plan(_record(attempts=2), 1, NOW) == ("stale", 0.0)


def test_a_record_leased_by_a_live_lease_is_looked_at_again_when_it_ends() -> None:
    assert plan(_record("leased", lease_expires_at=NOW + 2), 1, NOW) == ("held", 2.0)
    assert plan(_record("leased", lease_expires_at=NOW - 1), 1, NOW) == ("deliver", 0.0)


@pytest.mark.parametrize("state", ["sent", "dead"])
def test_finished_and_missing_records_need_nothing(state: str) -> None:
    assert plan(_record(state), 0, NOW) == ("done", 0.0)
    assert plan(None, 0, NOW) == ("gone", 0.0)


def test_countdowns_stay_under_half_the_visibility_timeout() -> None:
    from celery import Celery

    app = Celery("t", set_as_current=False)
    assert max_countdown(app) == 1800.0
    app.conf.broker_transport_options = {"visibility_timeout": 600}
    assert max_countdown(app) == 300.0
    app.close()


def test_celery_backend_dispatches_by_default_and_needs_an_alias(tmp_path: Path) -> None:
    mailpost.configure(
        MAILERS={
            "spool": {
                "BACKEND": "mailpost.integrations.celery.EmailBackend",
                "OPTIONS": {"mailer": "smtp", "path": str(tmp_path / "s.sqlite3")},
            }
        }
    )
    backend = mailpost.mailers["spool"]
    assert isinstance(backend, CelerySpoolBackend)
    assert backend.dispatch == "celery"
    with pytest.raises(mailpost.InvalidMailer, match="needs the spool to be a MAILERS entry"):
        CelerySpoolBackend(mailer="smtp", path=str(tmp_path / "s.sqlite3"))


def test_celery_options_without_celery_dispatch_are_named(tmp_path: Path) -> None:
    mailpost.configure(
        MAILERS={
            "spool": {
                "BACKEND": "mailpost.backends.spool.EmailBackend",
                "OPTIONS": {"mailer": "smtp", "path": str(tmp_path / "s"), "celery_queue": "m"},
            }
        }
    )
    with pytest.raises(mailpost.InvalidMailer) as info:
        mailpost.mailers["spool"]
    assert str(info.value) == "MAILERS['spool']: OPTIONS 'celery_queue' needs 'dispatch': 'celery'"


def test_a_bad_celery_queue_is_named(tmp_path: Path) -> None:
    with pytest.raises(mailpost.InvalidMailer, match="OPTIONS 'celery_queue' must be a queue"):
        CelerySpoolBackend(alias="spool", mailer="smtp", path=str(tmp_path / "s"), celery_queue=3)


def test_records_due_together_share_a_task_and_retries_group_by_time() -> None:
    due_now = [(i, 0, 0.0) for i in range(5)]
    assert [(wait, [r[0] for r in group]) for wait, group in batches(due_now, 2)] == [
        (0.0, [0, 1]),
        (0.0, [2, 3]),
        (0.0, [4]),
    ]
    retries = [(1, 1, 60.0), (2, 1, 63.0), (3, 1, 70.0), (4, 2, 0.2)]
    assert [(wait, [r[0] for r in group]) for wait, group in batches(retries, 100)] == [
        (0.2, [4]),
        (63.0, [1, 2]),  # 63 is within 6 s (a tenth) of 60: one task, when both are due
        (70.0, [3]),
    ]


def test_tasks_carry_record_ids_and_attempts_only(tmp_path: Path) -> None:
    from celery import Celery

    app = Celery("ids-only", broker="memory://", set_as_current=False)
    app.conf.task_default_queue = "mail-ids"
    mailpost.configure(
        MAILERS={
            "smtp": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "password": "pw-never-sent"},
            },
            "spool": {
                "BACKEND": "mailpost.integrations.celery.EmailBackend",
                "OPTIONS": {
                    "mailer": "smtp",
                    "path": str(tmp_path / "s.sqlite3"),
                    "celery_app": app,
                    "batch_size": 2,
                },
            },
        }
    )
    messages = [
        EmailMessage(f"subject {i}", "secret body", "f@x.test", [f"t{i}@x.test"]) for i in range(3)
    ]
    assert mailpost.mailers["spool"].send_messages(messages) == 3
    tasks = []
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue("mail-ids")
        for _ in range(2):
            message = queue.get(timeout=2)
            tasks.append((message.headers["task"], message.payload[0], message.payload[1]))
            message.ack()
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.1)
        queue.close()
    app.close()
    a, b, c = (m.spool_id for m in messages)  # type: ignore[attr-defined]
    assert tasks == [
        ("mailpost.deliver", [[[a, 0], [b, 0]], "spool"], {}),
        ("mailpost.deliver", [[[c, 0]], "spool"], {}),
    ]
    text = repr(tasks)
    assert "secret" not in text
    assert "x.test" not in text
    assert "pw-never-sent" not in text


def test_a_task_delivers_its_due_records_and_other_due_ones_leaves_stale_ones_and_reschedules(
    tmp_path: Path,
) -> None:
    from celery import Celery

    from mailpost.integrations.celery import deliver
    from mailpost.spool import Spool
    from mailpost.spool.record import Outcome, RecipientResult

    app = Celery("task-body", broker="memory://", set_as_current=False)
    app.conf.task_default_queue = "mail-body"
    mailpost.configure(
        MAILERS={
            "mem": {"BACKEND": "mailpost.backends.locmem.EmailBackend"},
            "plain": {
                "BACKEND": "mailpost.backends.spool.EmailBackend",
                "OPTIONS": {"mailer": "mem", "path": str(tmp_path / "s.sqlite3")},
            },
            "spool": {
                "BACKEND": "mailpost.integrations.celery.EmailBackend",
                "OPTIONS": {
                    "mailer": "mem",
                    "path": str(tmp_path / "s.sqlite3"),
                    "celery_app": app,
                },
            },
        }
    )
    due, stale, later, other = (
        EmailMessage(s, "b", "f@x.test", [f"{s}@x.test"])
        for s in ("due", "stale", "later", "other")
    )
    later.send_at = 4_000_000_000  # type: ignore[attr-defined]
    assert mailpost.mailers["plain"].send_messages([due, stale, later, other]) == 4
    spool = Spool.from_mailer("plain")
    now = spool.clock()
    # "stale" had an attempt since its task was published (a 4xx, retried in a minute):
    # this task is a duplicate, and the task of that attempt looks at it next.
    [held] = spool.store.lease("test", now=now, lease_seconds=5, ids=[stale.spool_id])  # type: ignore[attr-defined]
    pending = [RecipientResult("stale@x.test", "pending", 451, "busy")]
    spool.store.complete(held, Outcome(pending, now, now, now + 60, False, "451 busy"), worker="t")

    result = deliver(
        [[due.spool_id, 0], [stale.spool_id, 0], [later.spool_id, 0]],  # type: ignore[attr-defined]
        "spool",
        app=app,
    )

    assert sorted(m.subject for m in mailpost.outbox) == ["due", "other"]  # type: ignore[attr-defined]
    assert result == "3 record(s): 1 extra, 1 sent, 1 stale, 1 wait"
    after = spool.get(stale.spool_id)  # type: ignore[attr-defined]
    assert after is not None
    assert (after.state, after.attempts) == ("queued", 1)  # left alone, not rescheduled
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue("mail-body")
        follow = queue.get(timeout=2)
        assert follow.payload[0] == [[[later.spool_id, 0]], "spool"]  # type: ignore[attr-defined]
        assert follow.headers["eta"] is not None  # looked at again when it falls due
        follow.ack()
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.1)
        queue.close()
    app.close()
