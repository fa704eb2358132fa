"""The do-not-send list (SuppressionStore) and the suppress wrapper mailer."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

import mailpost
from helpers import configure_suppress_over_locmem
from mailpost import DeliveryError, EmailMessage, InvalidMailer
from mailpost._cli import main
from mailpost.events import DeliveryEvent, SuppressionStore
from mailpost.spool import Spool


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A suppression store: a SQLite file, or a fresh database on the test PostgreSQL server."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_server").database())
    return str(tmp_path / "s.sqlite3")


@pytest.fixture
def store(location: str) -> Iterator[SuppressionStore]:
    with SuppressionStore(location, soft_bounce_limit=2, soft_bounce_ttl=60) as s:
        yield s


def _event(
    kind: str, bounce: str | None = None, at: float = 1_000.0, who: str = "Ann@Example.org"
) -> DeliveryEvent:
    return DeliveryEvent(
        kind=kind,
        recipient=who,
        provider="test",
        bounce=bounce,  # type: ignore[arg-type]
        timestamp=dt.datetime.fromtimestamp(at, dt.timezone.utc),
        reason="550 no",
        message_id="m1@example.com",
    )


def test_hard_bounce_and_complaint_suppress_for_good(store: SuppressionStore) -> None:
    assert store.record([_event("bounced", "hard")], now=1_000) == ["ann@example.org"]
    assert store.record([_event("complained", who="bob@example.org")], now=1_000) == [
        "bob@example.org"
    ]
    entry = store.get("ANN@example.org", now=10**10)
    assert entry is not None
    assert entry.expires_at is None
    assert "bounced (hard)" in entry.reason
    assert "bob@example.org" in store


def test_soft_bounces_suppress_after_the_limit_and_expire(store: SuppressionStore) -> None:
    assert store.record([_event("bounced", "soft", at=1_000)], now=1_000) == []
    assert store.get("ann@example.org", now=1_000) is None
    assert store.record([_event("bounced", "soft", at=1_010)], now=1_010) == ["ann@example.org"]
    assert store.get("ann@example.org", now=1_020) is not None
    assert store.get("ann@example.org", now=1_071) is None  # ttl 60 s


def test_deliveries_and_opens_never_suppress(store: SuppressionStore) -> None:
    assert store.record([_event("delivered"), _event("opened"), _event("deferred")]) == []
    assert store.list() == []
    assert [e["kind"] for e in store.events(message_id="<m1@example.com>")] == [
        "delivered",
        "opened",
        "deferred",
    ]


def test_add_remove_import_export(store: SuppressionStore) -> None:
    store.add("x@example.org", "asked")
    with pytest.raises(ValueError, match="not an email address"):
        store.add("nobody")
    out = io.StringIO()
    assert store.export_csv(out) == 1
    assert store.remove("X@example.org") is True
    assert store.remove("x@example.org") is False
    assert store.import_lines(io.StringIO(out.getvalue())) == 1
    assert store.import_lines(io.StringIO("# list\na@example.org\nb@example.org\n")) == 2
    assert [s.address for s in store.list()] == ["x@example.org", "a@example.org", "b@example.org"]


def _configure(tmp_path: Path, path: str | None = None, **extra: object) -> str:
    path = path or str(tmp_path / "s.sqlite3")
    configure_suppress_over_locmem(path, **extra)
    return path


def _configure_with_spool(tmp_path: Path) -> str:
    """``_configure`` plus "spool": a spool that sends through the suppressing "default"."""
    return _configure(
        tmp_path,
        spool={
            "BACKEND": "mailpost.backends.spool.EmailBackend",
            "OPTIONS": {"mailer": "default", "path": str(tmp_path / "spool.sqlite3")},
        },
    )


def test_fully_suppressed_message_is_not_sent_and_does_not_raise(
    tmp_path: Path, location: str
) -> None:
    path = _configure(tmp_path, location)
    with SuppressionStore(path) as s:
        s.add("ann@example.org", "hard bounce")
    msg = EmailMessage("hi", "b", "shop@example.com", ["Ann <ANN@example.org>"])
    assert mailpost.mailers.default.send_messages([msg]) == 0
    assert mailpost.outbox == []
    (status,) = msg.delivery.recipients
    assert (status.address, status.status, status.retryable) == (
        "ANN@example.org",
        "suppressed",
        False,
    )
    assert "hard bounce" in status.reply
    assert msg.delivery.ok
    assert not msg.delivery.sent
    assert msg.sent_using == "default"


def test_cc_and_bcc_are_checked_too(tmp_path: Path) -> None:
    path = _configure(tmp_path)
    with SuppressionStore(path) as s:
        s.add("bcc@example.org")
    msg = EmailMessage(
        "hi",
        "b",
        "shop@example.com",
        ["to@example.org"],
        bcc=["bcc@example.org"],
        cc=["cc@example.org"],
    )
    assert mailpost.send_mail("s", "b", "shop@example.com", ["bcc@example.org"]) == 0
    assert mailpost.mailers.default.send_messages([msg]) == 1
    assert mailpost.outbox[-1].bcc == []
    assert msg.bcc == ["bcc@example.org"]  # the caller's message is left as it was
    assert msg.delivery.accepted == ["to@example.org", "cc@example.org"]


def test_suppress_mailer_needs_an_inner_mailer(tmp_path: Path) -> None:
    mailpost.configure(
        MAILERS={
            "default": {
                "BACKEND": "mailpost.backends.suppress.EmailBackend",
                "OPTIONS": {"store": str(tmp_path / "s")},
            }
        }
    )
    with pytest.raises(InvalidMailer, match=r"MAILERS\['default'\].*mailer"):
        mailpost.mailers.default  # noqa: B018


def test_inner_failures_still_raise(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    mailpost.configure(
        MAILERS={
            "smtp": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
            },
            "default": {
                "BACKEND": "mailpost.backends.suppress.EmailBackend",
                "OPTIONS": {"mailer": "smtp", "store": path},
            },
        }
    )
    msg = EmailMessage("hi", "b", "shop@example.com", ["to@example.org"])
    with pytest.raises(DeliveryError):
        mailpost.mailers.default.send_messages([msg])
    assert not msg.delivery.ok


def test_spool_worker_through_suppress_marks_suppressed_recipients_failed_not_retried(
    tmp_path: Path,
) -> None:
    path = _configure_with_spool(tmp_path)
    with SuppressionStore(path) as s:
        s.add("gone@example.org", "complained")
    msg = EmailMessage("hi", "b", "shop@example.com", ["gone@example.org", "ok@example.org"])
    mailpost.mailers["spool"].send_messages([msg])
    spool = Spool.from_mailer("spool")
    spool.worker().run(until_idle=True, max_seconds=20)
    record = spool.get(msg.spool_id)  # type: ignore[attr-defined]
    assert record is not None
    states = {r.address: r.status for r in record.recipients}
    assert states == {"gone@example.org": "failed", "ok@example.org": "delivered"}
    assert mailpost.outbox[-1].recipients() == ["ok@example.org"]


def test_cli_suppress_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "cli.sqlite3")
    assert main(["suppress", "add", "a@example.org", "--store", path, "--reason", "phone"]) == 0
    assert main(["suppress", "list", "--store", path]) == 0
    assert "a@example.org" in capsys.readouterr().out
    assert main(["suppress", "export", "--store", path]) == 0
    exported = capsys.readouterr().out
    assert exported.startswith("address,reason")
    assert main(["suppress", "remove", "a@example.org", "--store", path]) == 0
    assert main(["suppress", "remove", "a@example.org", "--store", path]) == 1
    listing = tmp_path / "list.csv"
    listing.write_text(exported)
    assert main(["suppress", "import", str(listing), "--store", path]) == 0
    assert main(["suppress", "list", "--json", "--store", path]) == 0
    assert '"reason": "phone"' in capsys.readouterr().out


def test_spool_show_lists_the_events_of_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _configure_with_spool(tmp_path)
    msg = EmailMessage("hi", "b", "shop@example.com", ["ann@example.org"])
    mailpost.mailers["spool"].send_messages([msg])
    spool_id = msg.spool_id  # type: ignore[attr-defined]
    record = Spool.from_mailer("spool").get(spool_id)
    assert record is not None
    assert record.message_id
    bounce = DeliveryEvent(
        kind="bounced",
        bounce="hard",
        recipient="ann@example.org",
        provider="resend",
        message_id=record.message_id,
        reason="550 5.1.1 unknown",
    )
    with SuppressionStore(path) as s:
        s.record([bounce])
    spool_file = str(tmp_path / "spool.sqlite3")
    assert main(["spool", "show", str(spool_id), "--path", spool_file, "--events", path]) == 0
    out = capsys.readouterr().out
    assert "events:" in out
    assert "bounced (hard)" in out
    assert "550 5.1.1 unknown" in out
    assert main(["spool", "show", str(spool_id), "--path", spool_file]) == 0
    assert "events:" not in capsys.readouterr().out  # not configured: not shown
