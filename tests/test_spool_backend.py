"""The spool backend: durable before it returns, Message-ID fixed, configuration checked."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

import mailpost
from mailpost import EmailMessage, InvalidMailer
from mailpost.backends.spool import SpoolBackend
from mailpost.spool import Spool, dispatch
from spool_helpers import spool_entry


def _configure(tmp_path: Path, **options: object) -> str:
    path = str(tmp_path / "spool.sqlite3")
    mailpost.configure(
        MAILERS={
            "mem": {"BACKEND": "mailpost.backends.locmem.EmailBackend"},
            "spool": spool_entry(path, "mem", **options),
        }
    )
    return path


def test_send_messages_is_committed_before_it_returns(tmp_path: Path) -> None:
    path = _configure(tmp_path)
    msg = EmailMessage("hello", "body", "from@example.com", ["to@example.com"], bcc=["b@x.test"])
    assert mailpost.mailers["spool"].send_messages([msg]) == 1
    # A separate connection (as another process would) sees the committed row.
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT message_id, sender, recipients, mailer FROM messages").fetchone()
    finally:
        db.close()
    assert row[0] == msg.delivery.message_id  # type: ignore[union-attr]
    assert row[1] == "from@example.com"
    assert "to@example.com" in row[2]
    assert "b@x.test" in row[2]
    assert row[3] == "mem"
    assert msg.delivery is not None
    assert msg.delivery.sent
    assert msg.delivery.response == (250, f"queued as {msg.spool_id}")  # type: ignore[attr-defined]
    assert msg.sent_using == "spool"


def test_message_id_is_fixed_at_enqueue_and_resent_bytes_are_identical(tmp_path: Path) -> None:
    _configure(tmp_path)
    msg = EmailMessage("hello", "body", "from@example.com", ["to@example.com"])
    mailpost.mailers["spool"].send_messages([msg])
    spool = Spool.from_mailer("spool")
    stored = spool.get(msg.spool_id, with_data=True)  # type: ignore[attr-defined]
    assert stored is not None
    assert stored.data is not None
    assert f"Message-ID: {stored.message_id}".encode() in stored.data
    spool.worker().run(until_idle=True)
    [sent] = mailpost.outbox  # type: ignore[attr-defined]
    assert sent.message()["Message-ID"] == stored.message_id
    assert sent.recipients() == ["to@example.com"]


def test_send_mail_through_the_spool(tmp_path: Path) -> None:
    _configure(tmp_path)
    assert mailpost.send_mail("s", "b", "f@example.com", ["t@example.com"], using="spool") == 1
    assert Spool.from_mailer("spool").stats()["states"]["queued"] == 1


def test_no_credentials_are_stored(tmp_path: Path) -> None:
    path = str(tmp_path / "spool.sqlite3")
    mailpost.configure(
        MAILERS={
            "smtp": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "username": "u", "password": "s3cr3t-pw"},
            },
            "spool": spool_entry(path, "smtp"),
        }
    )
    mailpost.send_mail("s", "b", "f@example.com", ["t@example.com"], using="spool")
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"s3cr3t-pw" not in raw
    assert b"127.0.0.1" not in raw


def test_mailer_option_is_required_and_must_not_be_the_spool_itself(tmp_path: Path) -> None:
    with pytest.raises(InvalidMailer, match=r"MAILERS\['spool'\]: OPTIONS 'mailer' is required"):
        SpoolBackend(alias="spool", path=str(tmp_path / "s"))
    with pytest.raises(InvalidMailer, match=r"MAILERS\['spool'\]: .*this spool itself"):
        SpoolBackend(alias="spool", mailer="spool", path=str(tmp_path / "s"))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"colour": "blue"}, "Unknown options 'colour'."),
        ({"retry": {"first": 1}}, "OPTIONS 'retry': unknown 'retry' key"),
        ({"rate_limit": 0}, "OPTIONS 'rate_limit' must be a positive number"),
        ({"priority": "high"}, "OPTIONS 'priority' must be an int"),
    ],
)
def test_bad_options_name_the_mailer_and_option(
    tmp_path: Path, options: dict[str, object], match: str
) -> None:
    _configure(tmp_path, **options)
    with pytest.raises(InvalidMailer, match=r"MAILERS\['spool'\]") as info:
        mailpost.mailers["spool"]
    assert match in str(info.value)


def test_unopenable_path_is_reported(tmp_path: Path) -> None:
    backend = SpoolBackend(alias="q", mailer="mem", path=str(tmp_path / "missing" / "s.db"))
    msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"])
    with pytest.raises(InvalidMailer, match=r"MAILERS\['q'\]: cannot open spool"):
        backend.send_messages([msg])


def test_uncomposable_message_is_not_queued_but_the_others_are(tmp_path: Path) -> None:
    _configure(tmp_path)
    good = EmailMessage("ok", "b", "f@example.com", ["t@example.com"])
    bad = EmailMessage("bad", "b", "f@example.com", ["not an address"])
    with pytest.raises(ValueError, match="To"):
        mailpost.mailers["spool"].send_messages([bad, good])
    assert bad.delivery is not None
    assert not bad.delivery.sent
    assert good.delivery is not None
    assert good.delivery.sent
    assert Spool.from_mailer("spool").stats()["total"] == 1


def test_priority_and_send_at_from_message_attributes(tmp_path: Path) -> None:
    _configure(tmp_path, priority=3)
    plain = EmailMessage("a", "b", "f@example.com", ["t@example.com"])
    urgent = EmailMessage("a", "b", "f@example.com", ["t@example.com"])
    urgent.priority = 9  # type: ignore[attr-defined]
    later = EmailMessage("a", "b", "f@example.com", ["t@example.com"])
    later.send_at = 4_000_000_000  # type: ignore[attr-defined]
    mailpost.mailers["spool"].send_messages([plain, urgent, later])
    records = Spool.from_mailer("spool").list()
    assert [r.priority for r in records] == [3, 9, 3]
    assert records[2].send_at == 4_000_000_000 == records[2].next_attempt_at


def test_in_process_worker_delivers_in_the_background(tmp_path: Path) -> None:
    import time

    _configure(tmp_path, in_process_worker=True)
    mailpost.send_mail("bg", "b", "f@example.com", ["t@example.com"], using="spool")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not getattr(mailpost, "outbox", None):
        time.sleep(0.02)
    from mailpost.spool import api

    for thread in list(api._in_process.values()):
        thread.stop()
    api._in_process.clear()
    assert [m.subject for m in mailpost.outbox] == ["bg"]  # type: ignore[attr-defined]


def test_dispatch_thread_is_the_in_process_worker(tmp_path: Path) -> None:
    _configure(tmp_path, dispatch="thread")
    backend = mailpost.mailers["spool"]
    assert backend.in_process_worker is True
    assert backend.dispatch == "thread"


def test_inline_dispatch_delivers_before_send_returns_and_keeps_the_record(
    tmp_path: Path,
) -> None:
    _configure(tmp_path, dispatch="inline")
    first = EmailMessage("now", "b", "f@example.com", ["t@example.com"])
    later = EmailMessage("later", "b", "f@example.com", ["t@example.com"])
    later.send_at = 4_000_000_000  # type: ignore[attr-defined]
    assert mailpost.mailers["spool"].send_messages([first, later]) == 2
    assert [m.subject for m in mailpost.outbox] == ["now"]  # type: ignore[attr-defined]
    spool = Spool.from_mailer("spool")
    assert spool.get(first.spool_id).state == "sent"  # type: ignore[attr-defined, union-attr]
    assert spool.get(later.spool_id).state == "queued"  # type: ignore[attr-defined, union-attr]


class _Recorder:
    """A dispatcher that keeps what it was handed."""

    seen: list[tuple[str | None, dict[str, object], list[dispatch.Ready]]] = []

    def __init__(self, backend: SpoolBackend, options: Mapping[str, object]) -> None:
        if options.get("recorder_colour") == "red":
            raise ValueError("OPTIONS 'recorder_colour' must not be red")
        self.alias = backend.alias
        self.options = dict(options)

    def dispatch(self, ready: Sequence[dispatch.Ready]) -> None:
        self.seen.append((self.alias, self.options, list(ready)))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> type[_Recorder]:
    monkeypatch.setattr(dispatch, "_dispatchers", dict(dispatch._dispatchers))
    monkeypatch.setattr(_Recorder, "seen", [])
    dispatch.register_dispatcher("recorder", _Recorder, options=["recorder_colour"])
    return _Recorder


def test_a_registered_dispatcher_gets_the_stored_ids_and_its_options(
    tmp_path: Path, recorder: type[_Recorder]
) -> None:
    _configure(tmp_path, dispatch="recorder", recorder_colour="blue")
    now = EmailMessage("now", "b", "f@example.com", ["t@example.com"])
    later = EmailMessage("later", "b", "f@example.com", ["t@example.com"])
    backend = mailpost.mailers["spool"]
    backend.clock = lambda: 1_000.0
    later.send_at = 1_030.0  # type: ignore[attr-defined]
    backend.send_messages([now, later])
    [(alias, options, ready)] = recorder.seen
    assert (alias, options) == ("spool", {"recorder_colour": "blue"})
    assert ready == [
        dispatch.Ready(now.spool_id, 0, 0.0),  # type: ignore[attr-defined]
        dispatch.Ready(later.spool_id, 0, 30.0),  # type: ignore[attr-defined]
    ]


def test_dispatcher_options_are_checked_and_belong_to_their_dispatcher(
    tmp_path: Path, recorder: type[_Recorder]
) -> None:
    _configure(tmp_path, dispatch="recorder", recorder_colour="red")
    with pytest.raises(InvalidMailer, match=r"MAILERS\['spool'\]: OPTIONS 'recorder_colour'"):
        mailpost.mailers["spool"]
    _configure(tmp_path, recorder_colour="blue")
    with pytest.raises(
        InvalidMailer, match=r"OPTIONS 'recorder_colour' needs 'dispatch': 'recorder'"
    ):
        mailpost.mailers["spool"]


def test_a_dispatcher_that_raises_leaves_the_messages_stored(
    tmp_path: Path, recorder: type[_Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: _Recorder, ready: Sequence[dispatch.Ready]) -> None:
        raise RuntimeError("broker on fire")

    _configure(tmp_path, dispatch="recorder")
    backend = mailpost.mailers["spool"]
    backend.dispatcher.dispatch = broken.__get__(backend.dispatcher)
    msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"])
    assert backend.send_messages([msg]) == 1
    assert Spool.from_mailer("spool").get(msg.spool_id).state == "queued"  # type: ignore[attr-defined, union-attr]
    assert "dispatching 1 stored message(s) failed" in caplog.text


def test_celery_dispatch_without_the_integration_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        dispatch,
        "_dispatchers",
        {k: v for k, v in dispatch._dispatchers.items() if k != "celery"},
    )
    _configure(tmp_path, dispatch="celery")
    with pytest.raises(InvalidMailer) as info:
        mailpost.mailers["spool"]
    text = str(info.value)
    assert text.startswith("MAILERS['spool']: OPTIONS 'dispatch' is 'celery'")
    assert "import mailpost.integrations.celery" in text
    assert 'pip install "mailpost[celery]"' in text


def test_deliver_ready_attempts_only_the_given_due_records_with_the_expected_attempts(
    tmp_path: Path,
) -> None:
    from mailpost.spool.record import Outcome, RecipientResult

    _configure(tmp_path)
    mine, moved_on, not_mine = (
        EmailMessage(s, "b", "f@example.com", [f"{s}@example.com"])
        for s in ("mine", "moved-on", "not-mine")
    )
    mailpost.mailers["spool"].send_messages([mine, moved_on, not_mine])
    spool = Spool.from_mailer("spool")
    now = spool.clock()
    [held] = spool.store.lease("t", now=now, lease_seconds=5, ids=[moved_on.spool_id])  # type: ignore[attr-defined]
    pending = [RecipientResult("moved-on@example.com", "pending", 451, "busy")]
    spool.store.complete(held, Outcome(pending, now, now, now - 1, False, "451"), worker="t")
    ids = [mine.spool_id, moved_on.spool_id]  # type: ignore[attr-defined]

    done = dispatch.deliver_ready(spool, ids, attempts=dict.fromkeys(ids, 0))

    assert list(done) == [mine.spool_id]  # type: ignore[attr-defined]
    assert (done[mine.spool_id].state, done[mine.spool_id].attempts) == ("sent", 1)  # type: ignore[attr-defined]
    assert [m.subject for m in mailpost.outbox] == ["mine"]  # type: ignore[attr-defined]
    again = spool.get(moved_on.spool_id)  # type: ignore[attr-defined]
    assert again is not None
    assert (again.state, again.attempts) == ("queued", 1)  # due, but given back untouched
    assert spool.get(not_mine.spool_id).state == "queued"  # type: ignore[attr-defined, union-attr]
