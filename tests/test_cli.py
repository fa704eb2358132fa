"""The mailpost command line: `mailpost send`, its errors and exit codes."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import mailpost
from mailpost._cli import main


def use_locmem(*aliases: str) -> None:
    mailpost.configure(MAILERS=dict.fromkeys(("default", *aliases), "locmem://"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SEND = ["send", "--to", "ann@example.com", "--subject", "Hello", "--body", "Hi Ann"]


def test_send_delivers_through_the_default_mailer(capsys: pytest.CaptureFixture[str]) -> None:
    use_locmem()
    assert main(SEND) == 0
    [msg] = mailpost.outbox
    assert (msg.to, msg.subject, msg.body) == (["ann@example.com"], "Hello", "Hi Ann")
    assert msg.sent_using == "default"
    err = capsys.readouterr().err
    assert err == "mailpost: sent to 1 recipient(s) via MAILERS['default']\n"


def test_send_with_every_address_option() -> None:
    use_locmem()
    argv = ["send", "--to", "a@example.com", "--to", "b@example.com", "--cc", "c@example.com",
            "--bcc", "d@example.com", "--reply-to", "r@example.com",
            "--from", "Shop <shop@example.com>", "--subject", "S", "--body", "B"]  # fmt: skip
    assert main(argv) == 0
    [msg] = mailpost.outbox
    assert msg.to == ["a@example.com", "b@example.com"]
    assert msg.cc == ["c@example.com"]
    assert msg.bcc == ["d@example.com"]
    assert msg.reply_to == ["r@example.com"]
    assert msg.from_email == "Shop <shop@example.com>"
    assert msg.delivery is not None
    assert sorted(msg.delivery.accepted) == [
        "a@example.com", "b@example.com", "c@example.com", "d@example.com"
    ]  # fmt: skip


def test_send_using_routes_to_that_mailer() -> None:
    use_locmem("bulk")
    assert main([*SEND, "--using", "bulk"]) == 0
    assert mailpost.outbox[0].sent_using == "bulk"


def test_send_uses_mailers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOST_MAILERS", json.dumps({"default": "locmem://"}))
    assert main(SEND) == 0
    assert len(mailpost.outbox) == 1


def test_body_file_html_file_and_attachments(tmp_path: Path) -> None:
    use_locmem()
    (tmp_path / "body.txt").write_text("Plain body ✓\n", encoding="utf-8")
    (tmp_path / "body.html").write_text("<p>HTML body</p>", encoding="utf-8")
    (tmp_path / "report.csv").write_text("a,b\n1,2\n")
    argv = ["send", "--to", "ann@example.com", "--subject", "Report",
            "--body-file", str(tmp_path / "body.txt"), "--html-file", str(tmp_path / "body.html"),
            "--attach", str(tmp_path / "report.csv")]  # fmt: skip
    assert main(argv) == 0
    [msg] = mailpost.outbox
    assert msg.body == "Plain body ✓\n"
    assert msg.alternatives == [("<p>HTML body</p>", "text/html")]
    assert [a.filename for a in msg.attachments] == ["report.csv"]
    assert msg.attachments[0].content == "a,b\n1,2\n"


def test_body_file_dash_reads_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    use_locmem()
    monkeypatch.setattr(sys, "stdin", io.StringIO("from a pipe\n"))
    assert main(["send", "--to", "a@example.com", "--subject", "S", "--body-file", "-"]) == 0
    assert mailpost.outbox[0].body == "from a pipe\n"


def test_without_any_mailer_the_message_is_printed_and_stderr_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(SEND) == 0
    out, err = capsys.readouterr()
    assert "Subject: Hello" in out
    assert "To: ann@example.com" in out
    assert out.endswith("-" * 79 + "\n")
    assert len(err.splitlines()) == 1
    assert "no mailer is configured" in err
    assert "MAILPOST_MAILERS" in err


def test_using_an_alias_without_any_mailer_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*SEND, "--using", "bulk"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("mailpost send: \"The mailer 'bulk' is not configured.\" No mailers")
    assert len(err.splitlines()) == 1


def test_unknown_alias_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    use_locmem()
    assert main([*SEND, "--using", "nope"]) == 2
    assert "The mailer 'nope' is not configured." in capsys.readouterr().err


def test_invalid_mailer_exits_2_naming_alias_and_problem(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mailpost.configure(MAILERS={"default": {"BACKEND": "mailpost.backends.locmem.EmailBackend",
                                            "OPTIONS": {"colour": "red"}}})  # fmt: skip
    assert main(SEND) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailpost send: MAILERS['default']: Unknown options 'colour'.")


def test_malformed_environment_configuration_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAILPOST_MAILERS", "{oops")
    assert main(SEND) == 2
    assert "MAILPOST_MAILERS: not valid JSON" in capsys.readouterr().err


def test_delivery_failure_exits_1_naming_the_mailer_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"smtp://user:hunter2-secret@127.0.0.1:{closed_port()}?timeout=5"
    mailpost.configure(MAILERS={"default": url})
    assert main(SEND) == 1
    err = capsys.readouterr().err
    assert err.startswith("mailpost send: delivery failed")
    assert "MAILERS['default']" in err
    assert "hunter2-secret" not in err
    assert len(err.splitlines()) == 1


def test_newline_in_subject_exits_2_as_an_invalid_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_locmem()
    argv = ["send", "--to", "a@example.com", "--subject", "Hi\nBcc: x@example.com", "--body", "B"]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("mailpost send: invalid message:")
    assert not hasattr(mailpost, "outbox")


def test_missing_body_file_exits_2_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_locmem()
    missing = tmp_path / "nope.txt"
    argv = ["send", "--to", "a@example.com", "--subject", "S", "--body-file", str(missing)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"cannot read --body-file {str(missing)!r}" in err


def test_missing_attachment_exits_2_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_locmem()
    assert main([*SEND, "--attach", str(tmp_path / "gone.pdf")]) == 2
    assert "cannot attach" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "--subject", "S", "--body", "B"],
        ["send", "--to", "a@example.com", "--body", "B"],
        ["send", "--to", "a@example.com", "--subject", "S"],
        ["send", "--to", "a@example.com", "--subject", "S", "--body", "B", "--body-file", "f"],
        [],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: mailpost" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "lines"),
    [
        (["send"], ["mailpost send --to ann@example.com", "--using ALIAS", "exit status: 0"]),
        (["check"], ["mailpost check --using bulk", "SSL_CERT_FILE=ca.pem mailpost check",
                     "exit status: 0"]),
        (["sendtestemail"], ["mailpost sendtestemail ann@example.com",
                             "mailpost sendtestemail --admins --managers", "exit status: 0"]),
        (["spool"], ["mailpost spool work --until-idle"]),
        (["lint"], ["exit status: 0"]),
    ],
)  # fmt: skip
def test_each_command_help_teaches_with_examples(
    command: list[str], lines: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    for line in lines:
        assert line in out


def test_top_level_help_explains_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "MAILPOST_MAILERS" in out
    assert "send" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mailpost {mailpost.__version__}"


def test_python_dash_m_mailpost_runs_the_cli(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "mailpost", *SEND],
        capture_output=True, text=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Subject: Hello" in done.stdout
    assert "no mailer is configured" in done.stderr


def test_no_arguments_prints_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: mailpost")
    assert "examples:" in err
    assert "mailpost check" in err


def test_top_level_help_lists_every_command_and_examples(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    commands = out.split("commands:")[1].split("examples:")[0]
    for name, purpose in [
        ("check", "connect, TLS, login \\(sends nothing\\)"),
        ("send", "send one email message"),
        ("sendtestemail", "send a test message and report"),
        ("spool", "spool"),
    ]:
        assert re.search(rf"^\s+{name}\s+.*{purpose}", commands, re.MULTILINE), name
    examples = out.split("examples:")[1]
    for example in ["export MAILPOST_MAILERS=", "mailpost check", "mailpost send --to",
                    "mailpost sendtestemail ann@example.com"]:  # fmt: skip
        assert example in examples


def spool_mailers(path: Path) -> dict[str, object]:
    spool = {"BACKEND": "mailpost.backends.spool.EmailBackend",
             "OPTIONS": {"path": str(path), "mailer": "mem"}}  # fmt: skip
    return {"mem": "locmem://", "spool": spool}


def test_spool_commands_run_through_the_main_entry_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mailpost.configure(MAILERS=spool_mailers(tmp_path / "spool.sqlite3"))
    mailpost.send_mail("Queued", "Body", "app@example.com", ["ann@example.com"], using="spool")
    assert main(["spool", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["states"]["queued"] == 1
    assert main(["spool", "work", "--until-idle"]) == 0
    assert [m.subject for m in mailpost.outbox] == ["Queued"]


def test_spool_without_a_spool_mailer_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_locmem()
    assert main(["spool", "stats"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailpost spool stats: \"The mailer 'spool' is not configured.\"")


def python_m_mailpost(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailpost", *argv], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env}, timeout=30, check=False,
    )  # fmt: skip


def test_python_dash_m_mailpost_check(tmp_path: Path) -> None:
    mailers = json.dumps({"default": "locmem://", "files": f"file://{tmp_path / 'out'}"})
    done = python_m_mailpost(tmp_path, "check", MAILPOST_MAILERS=mailers)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ok     default   locmem")
    assert lines[1].startswith(f"ok     files     file {tmp_path / 'out'} (directory writable)")
    assert lines[2] == "2 mailer(s) checked: 2 ok, 0 with warnings, 0 failed"


def test_python_dash_m_mailpost_without_arguments_exits_2(tmp_path: Path) -> None:
    done = python_m_mailpost(tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: mailpost")


def test_python_dash_m_mailpost_spool(tmp_path: Path) -> None:
    mailers = json.dumps(spool_mailers(tmp_path / "spool.sqlite3"))
    done = python_m_mailpost(tmp_path, "spool", "stats", MAILPOST_MAILERS=mailers)
    assert done.returncode == 0, done.stderr
    assert "total    0" in done.stdout
