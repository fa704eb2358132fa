"""SMTPUTF8 interop through a real MTA: a private Postfix on loopback (tests/postfix_harness.py).

mailpost's SMTP backend sends to Postfix, which relays what it accepts to aiosmtpd in the
test process (offering SMTPUTF8 on that hop too). With ``smtputf8_enable = yes`` the UTF-8
envelope and header must come out of Postfix exactly as mailpost wrote them; with it off,
mailpost must refuse the message itself, per recipient, and still deliver the rest of the
batch (an ASCII message, and a message whose only non-ASCII address is a Bcc, to the ASCII
recipients). Skipped when Postfix is not installed (scripts/services installs it).
"""

from __future__ import annotations

import email
import email.message
import email.policy
import smtplib
import time
from collections.abc import Callable, Iterator

import pytest

from helpers import make_message as make
from mailpost import DeliveryError, EmailMessage
from mailpost.backends.smtp import SMTPBackend
from postfix_harness import PrivatePostfix, postfix_missing
from smtpd_harness import Received, SMTPServer
from test_smtp_utf8 import SENDER_WIRE, assert_partly_sent, assert_refused_for_smtputf8, parse_utf8

Mailer = Callable[..., SMTPBackend]

#: Bound on the time Postfix takes to pass a message on (it takes ~50 ms here).
RELAY_WAIT = 20.0

pytestmark = pytest.mark.skipif(postfix_missing() is not None, reason=postfix_missing() or "")


@pytest.fixture(scope="module")
def relay() -> Iterator[SMTPServer]:
    server = SMTPServer().start()
    yield server
    server.stop()


def _running(relay: SMTPServer, *, smtputf8: bool) -> Iterator[PrivatePostfix]:
    postfix = PrivatePostfix((relay.host, relay.port), smtputf8=smtputf8).start()
    try:
        yield postfix
    finally:
        root = postfix.root
        postfix.stop()
        assert postfix.processes() == []
        assert not root.exists()


@pytest.fixture(scope="module")
def postfix(relay: SMTPServer) -> Iterator[PrivatePostfix]:
    """Postfix with ``smtputf8_enable = yes``, relaying to ``relay``."""
    yield from _running(relay, smtputf8=True)


@pytest.fixture(scope="module")
def postfix_without_smtputf8(relay: SMTPServer) -> Iterator[PrivatePostfix]:
    yield from _running(relay, smtputf8=False)


def ehlo_keywords(postfix: PrivatePostfix) -> set[str]:
    with smtplib.SMTP(postfix.host, postfix.port, timeout=10) as client:
        client.ehlo("client.mailpost.test")
        return set(client.esmtp_features)


def relayed(relay: SMTPServer, message_id: str, postfix: PrivatePostfix) -> Received:
    """The copy of ``message_id`` Postfix relayed, waiting up to :data:`RELAY_WAIT`."""
    deadline = time.monotonic() + RELAY_WAIT
    while time.monotonic() < deadline:
        for got in list(relay.messages):
            if got.message_id == message_id:
                return got
        time.sleep(0.02)
    pytest.fail(f"Postfix did not relay {message_id} in {RELAY_WAIT} s:\n{postfix.log()}")


def utf8_mail(n: int, **kwargs: object) -> EmailMessage:
    """A message with UTF-8 addresses, names and subject; Date and Message-ID fixed, so
    the same bytes are written on every send."""
    fields: dict[str, object] = {
        "subject": f"Grüße aus Köln {n}",
        "body": "Hallo Zoë,\nbis bald.\n",
        "from_email": "Jörg Müller <jörg@bücher.example>",
        "to": ["Zoë Ångström <zoë@example.com>", "ascii@example.com"],
        "cc": ["用户@例子.广告"],
        "bcc": ["δοκιμή@example.com"],
        "headers": {
            "Message-ID": f"<postfix-{n}.{time.time_ns()}@mailpost.test>",
            "Date": "Mon, 07 Dec 2026 12:00:00 +0000",
        },
    }
    fields.update(kwargs)
    return EmailMessage(**fields)  # type: ignore[arg-type]


def test_postfix_offers_smtputf8_and_relays_utf8_mail_unchanged(
    postfix: PrivatePostfix, relay: SMTPServer, smtp_mailer: Mailer
) -> None:
    assert {"smtputf8", "8bitmime", "pipelining"} <= ehlo_keywords(postfix)
    msg = utf8_mail(1)
    message_id = msg.extra_headers["Message-ID"]
    assert smtp_mailer(postfix).send_messages([msg]) == 1
    result = msg.delivery
    assert result is not None
    assert result.ok
    assert result.response is not None
    code, text = result.response
    assert code == 250
    assert "queued as " in text
    queue_id = text.rsplit("queued as ", 1)[1].strip()

    got = relayed(relay, message_id, postfix)
    assert got.mail_from == SENDER_WIRE
    wide = ["zoë@example.com", "用户@xn--fsqu00a.xn--4rr70v", "δοκιμή@example.com"]
    # Postfix sorts the recipients of a queue file.
    assert sorted(got.rcpt_tos) == sorted([*wide, "ascii@example.com"])
    assert "SMTPUTF8" in got.mail_options
    # Postfix took it over SMTPUTF8 and prepended only its Received line.
    received, _, rest = got.data.partition(b"\r\n")
    assert received.startswith(b"Received: from ")
    while rest[:1] in (b" ", b"\t"):
        _, _, rest = rest.partition(b"\r\n")
    trace = got.data[: len(got.data) - len(rest)].decode()
    assert "with UTF8SMTP" in trace or "with UTF8ESMTP" in trace
    assert f" id {queue_id}" in trace

    # The rest is byte for byte what mailpost writes to a server offering SMTPUTF8.
    direct = smtp_mailer(relay, alias="direct")
    again = utf8_mail(1, headers=msg.extra_headers)
    assert direct.send_messages([again]) == 1
    [first] = [m for m in relay.messages if m.message_id == message_id and m is not got]
    assert rest == first.data
    head = rest.split(b"\r\n\r\n", 1)[0]
    assert f" <{SENDER_WIRE}>\r\n".encode() in head
    assert "Cc: 用户@xn--fsqu00a.xn--4rr70v\r\n".encode() in head
    assert "δοκιμή".encode() not in rest
    parsed = parse_utf8(rest)
    assert [(a.display_name, a.addr_spec) for a in parsed["To"].addresses] == [
        ("Zoë Ångström", "zoë@example.com"),
        ("", "ascii@example.com"),
    ]
    assert parsed["From"].addresses[0].display_name == "Jörg Müller"
    assert parsed["From"].addresses[0].addr_spec == SENDER_WIRE
    assert parsed["Subject"] == "Grüße aus Köln 1"
    body = email.message_from_bytes(rest, policy=email.policy.default)
    assert isinstance(body, email.message.EmailMessage)
    assert body.get_content() == "Hallo Zoë,\r\nbis bald.\r\n"  # 8bit, as on the wire


def test_postfix_without_smtputf8_gets_only_what_it_can_take(
    postfix_without_smtputf8: PrivatePostfix, relay: SMTPServer, smtp_mailer: Mailer
) -> None:
    postfix = postfix_without_smtputf8
    keywords = ehlo_keywords(postfix)
    assert "smtputf8" not in keywords
    assert "8bitmime" in keywords
    utf8 = utf8_mail(2)
    plain = make(2, headers={"Message-ID": f"<plain-2.{time.time_ns()}@mailpost.test>"})
    bcc_only = make(
        3,
        bcc=["δοκιμή@example.com"],
        headers={"Message-ID": f"<bcc-3.{time.time_ns()}@mailpost.test>"},
    )
    with pytest.raises(DeliveryError) as info:
        smtp_mailer(postfix).send_messages([utf8, plain, bcc_only])
    assert info.value.results[0] is utf8.delivery

    assert_refused_for_smtputf8(utf8)
    assert utf8.delivery is not None
    assert set(utf8.delivery.refused) == {
        "zoë@example.com",
        "ascii@example.com",
        "用户@xn--fsqu00a.xn--4rr70v",
        "δοκιμή@example.com",
    }
    assert plain.delivery is not None
    assert plain.delivery.ok
    assert_partly_sent(bcc_only, ["rcpt-3@example.com"], ["δοκιμή@example.com"])

    got_plain = relayed(relay, plain.extra_headers["Message-ID"], postfix)
    assert got_plain.rcpt_tos == ["rcpt-2@example.com"]
    got_bcc = relayed(relay, bcc_only.extra_headers["Message-ID"], postfix)
    assert got_bcc.mail_from == "sender@example.com"
    assert got_bcc.rcpt_tos == ["rcpt-3@example.com"]
    assert "SMTPUTF8" not in got_bcc.mail_options
    assert all(m.message_id != utf8.extra_headers["Message-ID"] for m in relay.messages)
    log = postfix.log()
    assert "jörg" not in log  # no MAIL FROM for the UTF-8 message ever reached Postfix
    assert "δοκιμή" not in log  # nor a RCPT for the non-ASCII Bcc
    assert log.count(" client=localhost[127.0.0.1]") == 2
