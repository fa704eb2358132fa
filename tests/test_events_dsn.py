"""SMTP bounces: RFC 3464 DSNs and common non-standard shapes, into DeliveryEvents."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from mailpost._cli import main
from mailpost.events import SuppressionStore, parse_dsn, parse_mailbox

RFC3464 = b"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: shop@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Arrival-Date: Sun, 6 Dec 2026 12:00:00 +0000

Final-Recipient: rfc822; gone@example.net
Original-Recipient: rfc822;gone@example.net
Last-Attempt-Date: Sun, 6 Dec 2026 12:30:00 +0100
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address
 rejected: User unknown

Final-Recipient: rfc822; full@example.net
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

--BOUND
Content-Type: message/rfc822

Message-ID: <orig.42@shop.example.com>
From: shop@example.com
Subject: hello

body
--BOUND--
"""

QMAIL = b"""\
From: MAILER-DAEMON@qmail.example.com
Subject: failure notice

Hi. This is the qmail-send program at qmail.example.com.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@example.net>:
192.0.2.1 does not like recipient.
Remote host said: 550 5.1.1 No such user

--- Below this line is a copy of the message.

Message-ID: <orig.7@shop.example.com>
"""

EXIM = b"""\
From: Mail Delivery System <Mailer-Daemon@exim.example.com>
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  lost@example.net
    host mx.example.net [192.0.2.7]
    SMTP error from remote mail server after RCPT TO:<lost@example.net>:
    550 5.1.1 User unknown

------ This is a copy of the message, including all the headers. ------

Message-ID: <orig.9@shop.example.com>
"""


def test_rfc3464_one_event_per_recipient_with_status_and_diagnostic() -> None:
    gone, full = parse_dsn(RFC3464)
    assert (gone.kind, gone.bounce, gone.recipient, gone.status, gone.smtp_code) == (
        "bounced",
        "hard",
        "gone@example.net",
        "5.1.1",
        550,
    )
    assert "User unknown" in gone.reason
    assert gone.message_id == "orig.42@shop.example.com"
    assert (full.kind, full.status, full.smtp_code) == ("deferred", "4.2.2", 452)
    assert gone.provider == "smtp"
    assert gone.timestamp.isoformat() == "2026-12-06T11:30:00+00:00"


def test_qmail_and_exim_bounces() -> None:
    (q,) = parse_dsn(QMAIL)
    assert (q.kind, q.bounce, q.recipient, q.status) == (
        "bounced",
        "hard",
        "nobody@example.net",
        "5.1.1",
    )
    assert q.message_id == "orig.7@shop.example.com"
    (e,) = parse_dsn(EXIM.decode())
    assert (e.kind, e.bounce, e.recipient, e.smtp_code) == (
        "bounced",
        "hard",
        "lost@example.net",
        550,
    )


@pytest.mark.parametrize(
    "junk",
    [b"", b"Subject: hi\n\nhello", b"\xff\xfe\x00", b"Content-Type: multipart/report\n\n--x"],
)
def test_non_bounces_give_no_events(junk: bytes) -> None:
    assert parse_dsn(junk) == []


def test_mbox_and_maildir(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(RFC3464)
    box.add(QMAIL)
    box.close()
    assert [e.recipient for e in parse_mailbox(tmp_path / "bounces.mbox")] == [
        "gone@example.net",
        "full@example.net",
        "nobody@example.net",
    ]
    md = mailbox.Maildir(tmp_path / "Maildir")
    md.add(EXIM)
    md.close()
    assert [e.recipient for e in parse_mailbox(tmp_path / "Maildir")] == ["lost@example.net"]


def test_cli_bounces_feeds_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b.eml").write_bytes(RFC3464)
    store = str(tmp_path / "s.sqlite3")
    assert main(["bounces", str(tmp_path / "b.eml"), "--suppress", store]) == 0
    captured = capsys.readouterr()
    assert '"recipient": "gone@example.net"' in captured.out
    assert "1 address(es) suppressed" in captured.err
    with SuppressionStore(store) as s:
        assert "gone@example.net" in s
        assert "full@example.net" not in s  # one delay is not a bounce


def test_fuzzed_messages_never_raise() -> None:
    import random

    rng = random.Random(3464)
    samples = [RFC3464, QMAIL, EXIM]
    for _ in range(2_000):
        base = bytearray(rng.choice(samples))
        for _ in range(rng.randrange(1, 8)):
            base[rng.randrange(len(base))] = rng.randrange(256)
        cut = bytes(base[: rng.randrange(len(base) + 1)])
        for event in parse_dsn(cut):
            assert event.kind in ("bounced", "deferred", "delivered")
