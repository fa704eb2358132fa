"""``mailpost sendtestemail`` through a real SMTP server (aiosmtpd): what the server got,
what was printed, and the exit status."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

import mailpost
from mailpost._cli import main
from smtpd_harness import SMTPServer


def use_env(monkeypatch: pytest.MonkeyPatch, **mailers: Any) -> None:
    monkeypatch.setenv("MAILPOST_MAILERS", json.dumps(mailers))


def smtp_url(server: SMTPServer) -> str:
    return f"smtp://{server.host}:{server.port}?timeout=5"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["sendtestemail", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def parsed(data: bytes) -> Message:
    return message_from_bytes(data)


def test_sends_to_the_addresses_and_reports_each_recipient(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default=smtp_url(smtp_server))
    code, lines, err = run(capsys, "ann@example.com", "bob@example.com")
    assert code == 0, lines
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["ann@example.com", "bob@example.com"]
    assert received.mail_from == "webmaster@localhost"
    msg = parsed(received.data)
    host = socket.gethostname()
    assert re.fullmatch(
        rf"Test email from mailpost on {re.escape(host)} at "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}",
        str(msg["Subject"]),
    )
    body = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "sent by the mailer MAILERS['default']: smtp 127.0.0.1:" in body
    assert lines[0].startswith(
        "ok     test message to ann@example.com, bob@example.com via MAILERS['default'] "
        f"(smtp 127.0.0.1:{smtp_server.port}): 250 2.0.0 OK: queued as m1"
    )
    assert lines[1] == "         accepted    ann@example.com  250 2.1.5 Recipient OK"
    assert lines[2] == "         accepted    bob@example.com  250 2.1.5 Recipient OK"
    assert lines[3] == "1 test message(s): 1 delivered, 0 failed"
    assert err == ""


def test_from_option_sets_the_sender(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default=smtp_url(smtp_server))
    code, _, _ = run(capsys, "--from", "App <app@example.com>", "ann@example.com")
    assert code == 0
    assert smtp_server.messages[0].mail_from == "app@example.com"


def test_admins_and_managers_get_it_through_mail_admins_and_mail_managers(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default=smtp_url(smtp_server))
    monkeypatch.setenv("MAILPOST_ADMINS", "ops@example.com,dev@example.com")
    monkeypatch.setenv("MAILPOST_MANAGERS", '["boss@example.com"]')
    monkeypatch.setenv("MAILPOST_SERVER_EMAIL", "server@example.com")
    monkeypatch.setenv("MAILPOST_EMAIL_SUBJECT_PREFIX", "[app] ")
    code, lines, _ = run(capsys, "--admins", "--managers")
    assert code == 0, lines
    admins, managers = smtp_server.messages
    assert admins.rcpt_tos == ["ops@example.com", "dev@example.com"]
    assert managers.rcpt_tos == ["boss@example.com"]
    assert {admins.mail_from, managers.mail_from} == {"server@example.com"}
    assert str(parsed(admins.data)["Subject"]).startswith("[app] Test email from mailpost on ")
    assert lines[0].startswith(
        "ok     test message to ADMINS (ops@example.com, dev@example.com) via MAILERS['default']"
    )
    assert lines[1:3] == [
        "         accepted    ops@example.com",
        "         accepted    dev@example.com",
    ]
    assert lines[3].startswith("ok     test message to MANAGERS (boss@example.com) via ")
    assert lines[-1] == "2 test message(s): 2 delivered, 0 failed"


def test_a_refused_recipient_exits_1_and_prints_the_servers_code(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    smtp_server.faults.refuse["bad@example.com"] = "550 5.1.1 No such user here"
    use_env(monkeypatch, default=smtp_url(smtp_server))
    code, lines, _ = run(capsys, "ann@example.com", "bad@example.com")
    assert code == 1
    assert smtp_server.messages[0].rcpt_tos == ["ann@example.com"]
    assert lines[0].startswith("FAIL   test message to ann@example.com, bad@example.com via ")
    assert "1 of 2 recipient(s) refused" in lines[0]
    assert lines[1] == "         accepted    ann@example.com  250 2.1.5 Recipient OK"
    assert lines[2] == "         refused     bad@example.com  550 5.1.1 No such user here"
    assert lines[3] == "1 test message(s): 0 delivered, 1 failed"


def test_admins_all_refused_exits_1_with_the_codes(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    smtp_server.faults.refuse["ops@example.com"] = "450 4.2.1 Mailbox busy, try later"
    use_env(monkeypatch, default=smtp_url(smtp_server))
    mailpost.configure(MAILERS={"default": smtp_url(smtp_server)}, ADMINS=["ops@example.com"])
    code, lines, _ = run(capsys, "--admins")
    assert code == 1
    assert smtp_server.messages == []
    assert lines[0].startswith("FAIL   test message to ADMINS (ops@example.com) via ")
    assert lines[1] == "         refused     ops@example.com  450 4.2.1 Mailbox busy, try later"


def test_unreachable_server_exits_1_saying_why(
    closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default=f"smtp://u:pw-s3cret@127.0.0.1:{closed_port}?timeout=5")
    code, lines, err = run(capsys, "ann@example.com")
    assert code == 1
    assert "not attempted: could not connect to 127.0.0.1:" in lines[0]
    assert lines[1].startswith("         unattempted ann@example.com")
    assert "pw-s3cret" not in "\n".join(lines) + err


def test_using_sends_through_that_mailer(capsys: pytest.CaptureFixture[str]) -> None:
    mailpost.configure(MAILERS={"default": "dummy://", "bulk": "locmem://"})
    code, lines, _ = run(capsys, "ann@example.com", "--using", "bulk")
    assert code == 0
    [msg] = mailpost.outbox
    assert msg.sent_using == "bulk"
    assert "MAILERS['bulk']" in msg.body
    assert lines[0].startswith(
        "ok     test message to ann@example.com via MAILERS['bulk'] (locmem (messages are kept"
    )
    assert lines[1] == "         accepted    ann@example.com"


def test_nothing_to_send_to_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    mailpost.configure(MAILERS={"default": "locmem://"})
    code, lines, err = run(capsys)
    assert code == 2
    assert lines == []
    assert (
        err == "mailpost sendtestemail: give at least one ADDRESS, or --admins and/or --managers\n"
    )


def test_admins_requested_but_empty_exits_2_before_sending_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mailpost.configure(MAILERS={"default": "locmem://"})
    code, _, err = run(capsys, "ann@example.com", "--admins")
    assert code == 2
    assert "--admins: the ADMINS setting is empty; set it, e.g. MAILPOST_ADMINS=" in err
    assert not hasattr(mailpost, "outbox")


@pytest.mark.parametrize(
    "value", ["jo@example.com", [("Jo", "jo@example.com"), "b@example.com"], {"jo@example.com"}]
)
def test_malformed_managers_exits_2_before_sending_anything(
    capsys: pytest.CaptureFixture[str], value: Any
) -> None:
    mailpost.configure(MAILERS={"default": "locmem://"}, MANAGERS=value)
    code, _, err = run(capsys, "ann@example.com", "--managers")
    assert code == 2
    assert (
        "--managers: The MANAGERS setting must be a list of email address strings. "
        f"Got {value!r}" in err
    )
    assert not hasattr(mailpost, "outbox")


def test_admins_as_name_address_pairs_go_to_the_addresses_with_a_deprecation_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mailpost.configure(
        MAILERS={"default": "locmem://"},
        ADMINS=[("Jo", "jo@example.com"), ("Al", "al@example.com")],
    )
    code, lines, err = run(capsys, "--admins")
    assert code == 0, err
    assert err == (
        "note: Using (name, address) pairs in the ADMINS setting is deprecated. "
        "Replace with a list of email address strings.\n"
    )
    assert lines[0].startswith(
        "ok     test message to ADMINS (jo@example.com, al@example.com) via "
    )
    [msg] = mailpost.outbox
    assert msg.to == ["jo@example.com", "al@example.com"]


def test_no_mailers_exits_2_and_explains_how_to_configure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "ann@example.com")
    assert code == 2
    assert err.startswith("mailpost sendtestemail: no mailers are configured")
    assert "MAILPOST_MAILERS" in err


def test_unknown_alias_exits_2_listing_the_defined_ones(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default="locmem://")
    code, _, err = run(capsys, "ann@example.com", "--using", "bulk")
    assert code == 2
    assert "MAILERS['bulk']: no such mailer (defined aliases: 'default')" in err


def test_invalid_address_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    mailpost.configure(MAILERS={"default": "locmem://"})
    code, _, err = run(capsys, "ann@example.com\nBcc: x@example.com")
    assert code == 2
    assert err.startswith("mailpost sendtestemail: invalid ")
    assert not hasattr(mailpost, "outbox")


_MANAGEMENT_COMMAND = """
import json, sys, warnings
import django
from django.conf import settings
settings.configure(
    MAILERS={"default": {"BACKEND": "mailpost.backends.locmem.EmailBackend"}},
    INSTALLED_APPS=["mailpost.integrations.django"],
    ADMINS=[("Ops", "ops@example.com")], MANAGERS="boss@example.com",
)
django.setup()
from django.core.management import CommandError, call_command
import mailpost
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    call_command("mailpost_sendtestemail", "--admins", stdout=sys.stderr)
try:
    call_command("mailpost_sendtestemail", "--managers", stdout=sys.stderr)
    rejected = None
except CommandError as exc:
    rejected = str(exc)
print(json.dumps({
    "django": list(django.VERSION[:2]),
    "to": [m.to for m in mailpost.outbox],
    "warnings": [[w.category.__name__, str(w.message)] for w in caught],
    "rejected": rejected,
}))
"""


def test_management_command_applies_the_same_admins_and_managers_rules(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "-c", _MANAGEMENT_COMMAND],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["to"] == [["ops@example.com"]]
    pairs_warning = [
        "RemovedInDjango2028Warning",
        "Using (name, address) pairs in the ADMINS setting is deprecated. "
        "Replace with a list of email address strings.",
    ]
    assert (pairs_warning in got["warnings"]) == (got["django"] >= [6, 0])
    assert got["rejected"].startswith(
        "The MANAGERS setting must be a list of email address strings. Got 'boss@example.com'"
    )
