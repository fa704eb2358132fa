"""Non-ASCII addresses end to end (RFC 6531 SMTPUTF8, RFC 6532 UTF-8 headers).

Against aiosmtpd in the test process: a server offering SMTPUTF8 receives the UTF-8
envelope and header intact; one that does not is sent nothing and every recipient gets a
permanent refusal in ``msg.delivery``, except when only envelope recipients (Bcc) are not
ASCII: the message then goes to the others and only those are refused; ASCII mail is
unchanged. When Postfix's
``smtp-sink`` is installed (it does not offer SMTPUTF8), the same refusal and ASCII
delivery are checked against it too; tests/test_smtp_postfix.py goes through a real
Postfix, with and without SMTPUTF8.
"""

from __future__ import annotations

import asyncio
import email.message
import email.policy
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers import make_message as make
from mailpost import DeliveryError, EmailMessage
from mailpost._smtp.envelope import needs_smtputf8, plan_for, plan_mail
from mailpost.backends.smtp import SMTPBackend
from smtpd_harness import HOST, SMTPServer

Mailer = Callable[..., SMTPBackend]

SENDER = "jörg@bücher.example"
SENDER_WIRE = "jörg@xn--bcher-kva.example"


def utf8_message(**kwargs: object) -> EmailMessage:
    fields: dict[str, object] = {
        "subject": "Grüße",
        "body": "Hallo\n",
        "from_email": f"Jörg <{SENDER}>",
        "to": ["Zoë <zoë@example.com>", "ascii@example.com"],
        "cc": ["用户@例子.广告"],
        "bcc": ["δοκιμή@example.com"],
        "reply_to": ["ответ@example.com"],
    }
    fields.update(kwargs)
    return EmailMessage(**fields)  # type: ignore[arg-type]


def parse_utf8(data: bytes) -> email.message.EmailMessage:
    """What a reader of RFC 6532 mail sees: the bytes as UTF-8 text, under SMTPUTF8 (the
    stdlib's bytes parser leaves a non-ASCII local part undecoded)."""
    text = data.decode("utf-8").replace("\r\n", "\n")
    parsed = email.message_from_string(text, policy=email.policy.SMTPUTF8)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def send_expecting_error(backend: SMTPBackend, messages: list[EmailMessage]) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        backend.send_messages(messages)
    return info.value


# -- the envelope plan, without sockets ---------------------------------------------------


def test_ascii_mail_does_not_need_smtputf8_even_with_an_8bit_body() -> None:
    data = "Subject: x\r\n\r\nGrüße\r\n".encode()
    assert not needs_smtputf8("a@example.com", ["b@example.com"], data.isascii(), data)


def test_a_non_ascii_envelope_or_header_needs_smtputf8() -> None:
    ascii_data = b"Subject: x\r\n\r\nbody\r\n"
    assert needs_smtputf8("jörg@example.com", ["b@example.com"], True, ascii_data)
    assert needs_smtputf8("a@example.com", ["b@example.com", "ü@example.com"], True, ascii_data)
    header = "Reply-To: ü@example.com\r\n\r\nbody\r\n".encode()
    assert needs_smtputf8("a@example.com", ["b@example.com"], False, header)


def test_smtputf8_goes_with_body_8bitmime_when_offered() -> None:
    offered = {"8bitmime": "", "smtputf8": "", "size": "1000"}
    assert plan_for(10, False, offered, utf8=True).options == (
        "SIZE=10",
        "BODY=8BITMIME",
        "SMTPUTF8",
    )
    data = "From: ü@example.com\r\n\r\nb\r\n".encode()
    assert plan_mail(data, offered, "ü@example.com", ["a@example.com"]).options[-1] == "SMTPUTF8"


def test_a_server_without_smtputf8_is_a_permanent_problem() -> None:
    plan = plan_for(10, False, {"8bitmime": ""}, utf8=True)
    assert plan.no_smtputf8
    assert plan.problem == "the server does not offer SMTPUTF8"


def test_ascii_plans_are_unchanged() -> None:
    offered = {"8bitmime": "", "smtputf8": ""}
    assert plan_mail(b"Subject: x\r\n\r\nb\r\n", offered, "a@x.com", ["b@x.com"]).options == ()
    assert plan_mail("Subject: x\r\n\r\nü\r\n".encode(), offered).options == ("BODY=8BITMIME",)


# -- a server that offers SMTPUTF8 (aiosmtpd) -----------------------------------------------


def test_utf8_envelope_and_headers_arrive_intact(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    msg = utf8_message()
    assert smtp_mailer(smtp_server).send_messages([msg]) == 1
    [got] = smtp_server.messages
    assert got.mail_from == SENDER_WIRE
    assert got.rcpt_tos == [
        "zoë@example.com",
        "ascii@example.com",
        "用户@xn--fsqu00a.xn--4rr70v",
        "δοκιμή@example.com",
    ]
    assert "SMTPUTF8" in got.mail_options
    assert "BODY=8BITMIME" in got.mail_options
    head = got.data.split(b"\r\n\r\n", 1)[0]
    assert f" <{SENDER_WIRE}>\r\nTo: ".encode() in head  # the name encoded, not the address
    assert "Cc: 用户@xn--fsqu00a.xn--4rr70v\r\n".encode() in head
    assert "δοκιμή".encode() not in got.data  # Bcc stays in the envelope
    parsed = parse_utf8(got.data)
    assert [(a.display_name, a.addr_spec) for a in parsed["To"].addresses] == [
        ("Zoë", "zoë@example.com"),
        ("", "ascii@example.com"),
    ]
    assert parsed["From"].addresses[0].addr_spec == SENDER_WIRE
    assert parsed["Reply-To"].addresses[0].username == "ответ"
    assert parsed["Subject"] == "Grüße"
    assert parsed.get_content() == "Hallo\n"
    assert msg.delivery is not None
    assert msg.delivery.ok
    assert msg.delivery.accepted == got.rcpt_tos


def test_a_non_ascii_bcc_alone_takes_smtputf8_with_an_ascii_header(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    msg = make(1, bcc=["δοκιμή@example.com"])
    assert smtp_mailer(smtp_server).send_messages([msg]) == 1
    [got] = smtp_server.messages
    assert got.data.isascii()
    assert got.rcpt_tos == ["rcpt-1@example.com", "δοκιμή@example.com"]
    assert "SMTPUTF8" in got.mail_options


def test_utf8_and_ascii_messages_share_a_pipelined_session(
    make_smtp_server: Callable[..., SMTPServer], smtp_mailer: Mailer
) -> None:
    server = make_smtp_server()
    server.faults.pipelining = True
    messages = [make(1), utf8_message(), make(3)]
    assert smtp_mailer(server).send_messages(messages) == 3
    options = [m.mail_options for m in server.messages]
    assert options[0] == options[2]
    assert "SMTPUTF8" not in options[0]
    assert "SMTPUTF8" in options[1]
    assert server.sessions == 1


def test_async_send_is_the_same(smtp_server: SMTPServer, smtp_mailer: Mailer) -> None:
    backend = smtp_mailer(smtp_server)
    msg = utf8_message()
    assert asyncio.run(backend.asend_messages([msg])) == 1
    [got] = smtp_server.messages
    assert got.mail_from == SENDER_WIRE
    assert "SMTPUTF8" in got.mail_options
    assert parse_utf8(got.data)["Cc"].addresses[0].username == "用户"


def test_ascii_mail_is_sent_as_before(smtp_server: SMTPServer, smtp_mailer: Mailer) -> None:
    msg = make(1, body="Grüße\n")
    assert smtp_mailer(smtp_server).send_messages([msg]) == 1
    [got] = smtp_server.messages
    assert got.mail_options == [f"SIZE={len(got.data)}", "BODY=8BITMIME"]
    assert got.data.split(b"\r\n\r\n", 1)[0].isascii()


# -- a server that does not offer SMTPUTF8 ------------------------------------------------


def assert_refused_for_smtputf8(msg: EmailMessage) -> None:
    result = msg.delivery
    assert result is not None
    assert not result.sent
    assert result.retryable is False
    assert "needs SMTPUTF8" in (result.error or "")
    assert isinstance(result.exception, smtplib.SMTPNotSupportedError)
    by_address = {r.address: r for r in result.recipients}
    assert all(r.status == "refused" and not r.retryable for r in result.recipients)
    for address, status in by_address.items():
        if address.isascii():
            assert status.code == 554
            assert status.reply.startswith("5.6.7 not sent: the message needs SMTPUTF8")
        else:
            assert status.code == 553
            assert status.reply.startswith("5.6.7 non-ASCII address")


def test_without_smtputf8_nothing_is_sent_and_each_recipient_is_refused(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    utf8 = utf8_message()
    plain = make(2)
    error = send_expecting_error(smtp_mailer(smtp_server), [utf8, plain])
    assert [m.mail_from for m in smtp_server.messages] == ["sender@example.com"]
    assert smtp_server.verbs().count("MAIL") == 1
    assert_refused_for_smtputf8(utf8)
    assert utf8.delivery is not None
    assert "<zoë@example.com>" in (utf8.delivery.error or "")
    assert set(utf8.delivery.refused) == {
        "zoë@example.com",
        "ascii@example.com",
        "用户@xn--fsqu00a.xn--4rr70v",
        "δοκιμή@example.com",
    }
    assert error.results[0] is utf8.delivery
    assert isinstance(error.__cause__, smtplib.SMTPNotSupportedError)
    assert plain.delivery is not None
    assert plain.delivery.ok


def test_utf8_headers_alone_need_smtputf8(smtp_server: SMTPServer, smtp_mailer: Mailer) -> None:
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    msg = make(1, reply_to=["ответ@example.com"])
    send_expecting_error(smtp_mailer(smtp_server), [msg])
    assert smtp_server.messages == []
    assert_refused_for_smtputf8(msg)
    assert msg.delivery is not None
    assert "UTF-8 headers" in (msg.delivery.error or "")


def test_without_smtputf8_fail_silently_only_records(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    msg = utf8_message()
    assert smtp_mailer(smtp_server, fail_silently=True).send_messages([msg]) == 0
    assert smtp_server.messages == []
    assert_refused_for_smtputf8(msg)


def test_without_smtputf8_async_send_is_the_same(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    msg = utf8_message()
    with pytest.raises(DeliveryError):
        asyncio.run(smtp_mailer(smtp_server).asend_messages([msg]))
    assert smtp_server.messages == []
    assert_refused_for_smtputf8(msg)


# -- only an envelope recipient (Bcc) is not ASCII: the others get the message ------------

WIDE_BCC = "δοκιμή@example.com"


def assert_partly_sent(msg: EmailMessage, accepted: list[str], wide: list[str]) -> None:
    result = msg.delivery
    assert result is not None
    assert result.sent
    assert not result.ok
    assert result.retryable is False
    assert result.accepted == accepted
    assert set(result.refused) == set(wide)
    for address in wide:
        code, reply = result.refused[address]
        assert code == 553
        assert reply.startswith("5.6.7 non-ASCII address")
    total = len(accepted) + len(wide)
    assert (result.error or "").startswith(f"{len(wide)} of {total} recipient(s) refused: <")
    assert isinstance(result.exception, smtplib.SMTPRecipientsRefused)
    assert set(result.exception.recipients) == set(wide)


@pytest.mark.parametrize("pipelining", [False, True], ids=["lockstep", "pipelined"])
def test_without_smtputf8_a_non_ascii_bcc_alone_is_refused_and_the_rest_sent(
    smtp_server: SMTPServer, smtp_mailer: Mailer, pipelining: bool
) -> None:
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    smtp_server.faults.pipelining = pipelining
    msg = make(1, cc=["Zoë Ascii <cc@example.com>"], bcc=[WIDE_BCC, "bcc@example.com"])
    after = make(2)
    error = send_expecting_error(smtp_mailer(smtp_server), [msg, after])
    first, second = smtp_server.messages
    assert first.mail_from == "sender@example.com"
    assert first.rcpt_tos == ["rcpt-1@example.com", "cc@example.com", "bcc@example.com"]
    assert "SMTPUTF8" not in first.mail_options
    assert first.data.isascii()
    assert WIDE_BCC.encode() not in first.data
    rcpts = [c.arg or "" for c in smtp_server.commands if c.verb == "RCPT"]
    assert not any("δ" in arg for arg in rcpts)  # never offered to the server
    assert len(rcpts) == 4
    assert smtp_server.verbs().count("MAIL") == 2
    assert_partly_sent(msg, first.rcpt_tos, [WIDE_BCC])
    assert [r.address for r in msg.delivery.recipients] == [  # type: ignore[union-attr]
        "rcpt-1@example.com",
        "cc@example.com",
        WIDE_BCC,
        "bcc@example.com",
    ]
    assert error.results[0] is msg.delivery
    assert second.rcpt_tos == ["rcpt-2@example.com"]
    assert after.delivery is not None
    assert after.delivery.ok


def test_without_smtputf8_a_bcc_refusal_is_only_recorded_with_fail_silently(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    msg = make(1, bcc=[WIDE_BCC])
    assert smtp_mailer(smtp_server, fail_silently=True).send_messages([msg]) == 1
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["rcpt-1@example.com"]
    assert_partly_sent(msg, ["rcpt-1@example.com"], [WIDE_BCC])


def test_without_smtputf8_async_bcc_refusal_is_the_same(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    msg = make(1, bcc=[WIDE_BCC])
    with pytest.raises(DeliveryError):
        asyncio.run(smtp_mailer(smtp_server).asend_messages([msg]))
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["rcpt-1@example.com"]
    assert_partly_sent(msg, ["rcpt-1@example.com"], [WIDE_BCC])


def test_without_smtputf8_a_streamed_message_with_a_non_ascii_bcc_goes_to_the_rest(
    smtp_server: SMTPServer, smtp_mailer: Mailer, tmp_path: Path
) -> None:
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 64)
    msg = make(1, bcc=[WIDE_BCC])
    msg.attach_file(path, stream=True)
    send_expecting_error(smtp_mailer(smtp_server), [msg])
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["rcpt-1@example.com"]
    assert "SMTPUTF8" not in got.mail_options
    assert_partly_sent(msg, ["rcpt-1@example.com"], [WIDE_BCC])


def test_without_smtputf8_the_server_still_judges_the_ascii_recipients(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    """The server refusing the one ASCII recipient left: nobody gets it, DATA not sent."""
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    smtp_server.faults.refuse["rcpt-1@example.com"] = "550 5.1.1 no such user"
    msg = make(1, bcc=[WIDE_BCC])
    send_expecting_error(smtp_mailer(smtp_server), [msg])
    assert smtp_server.messages == []
    assert "DATA" not in smtp_server.verbs()
    result = msg.delivery
    assert result is not None
    assert not result.sent
    assert result.refused == {
        "rcpt-1@example.com": (550, "5.1.1 no such user"),
        WIDE_BCC: (553, result.refused[WIDE_BCC][1]),
    }
    assert (result.error or "").startswith("all 2 recipient(s) refused")


def test_without_smtputf8_only_non_ascii_bcc_recipients_send_nothing(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    msg = make(1, to=[], bcc=[WIDE_BCC])
    send_expecting_error(smtp_mailer(smtp_server), [msg])
    assert smtp_server.messages == []
    assert "MAIL" not in smtp_server.verbs()
    assert_refused_for_smtputf8(msg)


def test_without_smtputf8_a_non_ascii_to_with_a_bcc_still_refuses_everyone(
    smtp_server: SMTPServer, smtp_mailer: Mailer
) -> None:
    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    msg = make(1, to=["zoë@example.com", "ascii@example.com"], bcc=[WIDE_BCC])
    send_expecting_error(smtp_mailer(smtp_server), [msg])
    assert smtp_server.messages == []
    assert "MAIL" not in smtp_server.verbs()
    assert_refused_for_smtputf8(msg)
    assert msg.delivery is not None
    assert set(msg.delivery.refused) == {"zoë@example.com", "ascii@example.com", WIDE_BCC}


# -- interop: Postfix's smtp-sink (no SMTPUTF8) ---------------------------------------------

SMTP_SINK = "/usr/sbin/smtp-sink"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


class Sink:
    def __init__(self, port: int, dumps: Path) -> None:
        self.host, self.port, self.dumps = HOST, port, dumps

    def messages(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(self.dumps.iterdir())]


@pytest.fixture
def smtp_sink() -> Iterator[Sink]:
    if not os.path.exists(SMTP_SINK):
        pytest.skip("Postfix's smtp-sink is not installed")
    dumps = Path(tempfile.mkdtemp(prefix="mailpost-sink-"))  # reachable after -u nobody
    dumps.chmod(0o777)
    port = _free_port()
    args = [SMTP_SINK, "-d", f"{dumps}/%H%M%S."]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    proc = subprocess.Popen([*args, f"{HOST}:{port}", "16"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection((HOST, port), 0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"smtp-sink did not start: {proc.stderr.read()!r}")  # type: ignore[union-attr]
                time.sleep(0.05)
        yield Sink(port, dumps)
    finally:
        proc.terminate()
        proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(dumps, ignore_errors=True)


def test_smtp_sink_gets_ascii_mail_and_no_utf8_mail(smtp_sink: Sink, smtp_mailer: Mailer) -> None:
    utf8 = utf8_message()
    plain = make(2)
    send_expecting_error(smtp_mailer(smtp_sink), [utf8, plain])
    deadline = time.monotonic() + 5
    while not smtp_sink.messages() and time.monotonic() < deadline:
        time.sleep(0.05)
    [dump] = smtp_sink.messages()
    assert b"X-Mail-Args: <sender@example.com>" in dump
    assert b"Subject: Message 2" in dump
    assert_refused_for_smtputf8(utf8)
    assert plain.delivery is not None
    assert plain.delivery.ok


# -- through the spool ---------------------------------------------------------------------


def _spool_to(server: SMTPServer, path: Path) -> None:
    import mailpost
    from smtp_fixtures import mailer_entry

    mailpost.configure(
        MAILERS={
            "smtp": mailer_entry(server),
            "spool": {
                "BACKEND": "mailpost.backends.spool.EmailBackend",
                "OPTIONS": {"path": str(path), "mailer": "smtp"},
            },
        }
    )


def test_a_spooled_utf8_message_goes_out_with_smtputf8(
    smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """The worker replays the captured bytes: the same envelope, SMTPUTF8, same headers."""
    import mailpost
    from mailpost.spool import Spool

    _spool_to(smtp_server, tmp_path / "spool.sqlite3")
    msg = utf8_message()
    assert mailpost.mailers["spool"].send_messages([msg]) == 1
    spool = Spool.from_mailer("spool")
    assert spool.worker().run(until_idle=True) == 1
    [got] = smtp_server.messages
    assert got.mail_from == SENDER_WIRE
    assert "zoë@example.com" in got.rcpt_tos
    assert "δοκιμή@example.com" in got.rcpt_tos
    assert "SMTPUTF8" in got.mail_options
    assert parse_utf8(got.data)["Reply-To"].addresses[0].username == "ответ"
    record = spool.get(msg.spool_id)  # type: ignore[attr-defined]
    assert record is not None
    assert record.state == "sent"
    assert [r.status for r in record.recipients] == ["delivered"] * 4


def test_a_spooled_utf8_message_for_a_server_without_smtputf8_is_dead_not_retried(
    smtp_server: SMTPServer, tmp_path: Path
) -> None:
    import mailpost
    from mailpost.spool import Spool

    smtp_server.faults.hide_extensions.add("SMTPUTF8")
    _spool_to(smtp_server, tmp_path / "spool.sqlite3")
    msg = utf8_message()
    mailpost.mailers["spool"].send_messages([msg])
    spool = Spool.from_mailer("spool")
    spool.worker().run(until_idle=True)
    assert smtp_server.messages == []
    record = spool.get(msg.spool_id)  # type: ignore[attr-defined]
    assert record is not None
    assert record.state == "dead"
    assert {r.status for r in record.recipients} == {"failed"}
    assert {r.code for r in record.recipients} == {553, 554}
    assert "SMTPUTF8" in (record.last_error or "")
