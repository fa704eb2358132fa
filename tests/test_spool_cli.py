"""``mailpost spool ...`` through add_spool_commands on our own argparse parser."""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path

import pytest

import mailpost
from mailpost import EmailMessage
from mailpost.spool import Spool
from mailpost.spool.cli import add_spool_commands
from spool_helpers import spool_entry


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="mailpost")
    add_spool_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def spool_path(tmp_path: Path) -> str:
    path = str(tmp_path / "spool.sqlite3")
    mailpost.configure(
        MAILERS={
            "mem": {"BACKEND": "mailpost.backends.locmem.EmailBackend"},
            "spool": spool_entry(path, "mem"),
        }
    )
    messages = [
        EmailMessage(f"msg {i}", "b", "from@example.com", [f"u{i}@x.test"]) for i in range(3)
    ]
    mailpost.mailers["spool"].send_messages(messages)
    return path


def test_list_and_stats(spool_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("spool", "list", "--using", "spool") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["ID", "STATE", "PRI"]
    assert len(out.splitlines()) == 4
    assert "queued" in out
    assert _run("spool", "stats", "--path", spool_path, "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["states"]["queued"] == 3
    assert stats["total"] == 3


def test_work_then_show_history(spool_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("spool", "work", "--until-idle") == 0
    assert "3 attempt(s)" in capsys.readouterr().out
    assert len(mailpost.outbox) == 3  # type: ignore[attr-defined]
    assert _run("spool", "show", "1") == 0
    out = capsys.readouterr().out
    assert "state:        sent" in out
    assert "delivered u0@x.test" in out
    assert "#1 " in out
    assert "delivered" in out
    assert _run("spool", "show", "1", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["record"]["state"] == "sent"
    assert shown["history"][0]["outcome"] == "delivered"
    assert "lease_token" not in shown["record"]
    assert "data" not in shown["record"]


def test_show_missing_id_fails(spool_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("spool", "show", "99") == 1
    assert "no spooled message with id 99" in capsys.readouterr().err


def test_retry_and_purge(spool_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    spool = Spool.open(spool_path)
    [record] = spool.store.lease("w", now=spool.clock(), lease_seconds=60, ids=[2])
    from mailpost.spool.record import Outcome, RecipientResult

    spool.store.complete(
        record,
        Outcome(
            [RecipientResult("u1@x.test", "failed", 550, "no")],
            started_at=spool.clock(),
            finished_at=spool.clock(),
            retry_at=0,
        ),
        worker="w",
    )
    assert _run("spool", "list", "--state", "dead", "--json") == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["id"] == 2
    assert _run("spool", "retry") == 0
    assert "requeued 1 message(s)" in capsys.readouterr().out
    assert _run("spool", "work", "--until-idle") == 0
    capsys.readouterr()
    assert _run("spool", "purge", "--older-than", "3600") == 0
    assert "purged 0 message(s)" in capsys.readouterr().out
    assert _run("spool", "purge") == 0
    assert "purged 3 message(s)" in capsys.readouterr().out
    assert Spool.open(spool_path).stats()["total"] == 0


def test_using_a_non_spool_mailer_is_an_error(spool_path: str) -> None:
    with pytest.raises(mailpost.InvalidMailer, match=r"MAILERS\['mem'\]: is not a spool mailer"):
        _run("spool", "stats", "--using", "mem")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_work_shows_progress_on_a_terminal_with_rich(
    spool_path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("rich.live", reason="the [cli] extra is part of the test extra")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert _run("spool", "work", "--until-idle") == 0
    written = terminal.getvalue()
    assert "\x1b[?25l" in written  # rich's live display hid the cursor, so it drove the line
    assert written.rindex("\x1b[?25h") > written.rindex("delivered")  # and showed it again
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", written)
    assert text.endswith("\n")
    final = text.splitlines()[-1]
    assert final.startswith("delivered 3  retrying 0  failed 0  ")
    assert final.rstrip().endswith("msg/s  queue 0")
    assert "3 attempt(s)" in capsys.readouterr().out


def test_work_shows_a_plain_line_without_rich(
    spool_path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich.live", None)  # import fails as if not installed
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert _run("spool", "work", "--until-idle") == 0
    final = terminal.getvalue().split("\r")[-1]
    assert "\x1b" not in terminal.getvalue()
    assert final.startswith("delivered 3  retrying 0  failed 0  ")
    assert "msg/s  queue 0" in final
    assert final.endswith("\n")
    assert "3 attempt(s)" in capsys.readouterr().out


@pytest.mark.parametrize("quiet", [True, False])
def test_work_is_quiet_with_quiet_or_without_a_terminal(
    spool_path: str, monkeypatch: pytest.MonkeyPatch, quiet: bool
) -> None:
    stream: io.StringIO = _Terminal() if quiet else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    argv = ["spool", "work", "--until-idle"] + (["--quiet"] if quiet else [])
    assert _run(*argv) == 0
    assert stream.getvalue() == ""
    assert len(mailpost.outbox) == 3  # type: ignore[attr-defined]


def test_stats_watch_reports_again(spool_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("spool", "stats", "--watch", "0.05", "--count", "2", "--json") == 0
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(reports) == 2
    assert all(r["states"]["queued"] == 3 for r in reports)
    assert _run("spool", "stats", "--watch", "0.01", "--count", "2") == 0
    out = capsys.readouterr().out
    assert out.count("queued   3") == 2
    assert _run("spool", "stats", "--watch", "0") == 2
