"""The sans-IO SMTP client logic: reply parsing, EHLO, command bytes, and how the replies of
one transaction (pipelined or lock-step) become a DeliveryResult. No sockets."""

from __future__ import annotations

import base64
import smtplib

import pytest

from mailpost._smtp.envelope import data_parts, plan_for
from mailpost._smtp.protocol import (
    ProtocolError,
    ReplyParser,
    auth_login_steps,
    auth_plain,
    mail_command,
    new_result,
    parse_ehlo,
    rcpt_command,
    settle,
    settle_data,
)


def test_replies_are_parsed_across_arbitrary_chunk_boundaries() -> None:
    wire = b"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n354 go ahead\r\n550 5.1.1 no\r\n"
    for cut in range(len(wire)):
        parser = ReplyParser()
        replies = parser.feed(wire[:cut]) + parser.feed(wire[cut:])
        assert replies == [
            (250, b"mx.test\nPIPELINING\nSIZE 1000"),
            (354, b"go ahead"),
            (550, b"5.1.1 no"),
        ]


def test_a_partial_reply_waits_for_the_rest() -> None:
    parser = ReplyParser()
    assert parser.feed(b"250-first\r\n250 sec") == []
    assert parser.feed(b"ond\r\n") == [(250, b"first\nsecond")]


@pytest.mark.parametrize("garbage", [b"hello\r\n", b"2x0 no\r\n", b"\r\n"])
def test_something_that_is_not_a_reply_is_a_protocol_error(garbage: bytes) -> None:
    with pytest.raises(ProtocolError, match="malformed reply"):
        ReplyParser().feed(garbage)
    assert issubclass(ProtocolError, smtplib.SMTPServerDisconnected)


def test_an_endless_line_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="too long"):
        ReplyParser().feed(b"250 " + b"x" * 70000)


def test_ehlo_extensions_are_keyed_by_lower_case_keyword() -> None:
    assert parse_ehlo(b"mx.test greets you\nPIPELINING\nSIZE 1000\nAUTH PLAIN LOGIN\n") == {
        "pipelining": "",
        "size": "1000",
        "auth": "PLAIN LOGIN",
    }


def test_command_lines() -> None:
    assert mail_command("a@example.com", ("SIZE=10", "BODY=8BITMIME")) == (
        b"MAIL FROM:<a@example.com> SIZE=10 BODY=8BITMIME\r\n"
    )
    assert mail_command("") == b"MAIL FROM:<>\r\n"
    assert rcpt_command("b@example.com") == b"RCPT TO:<b@example.com>\r\n"
    token = auth_plain("alice", "s3cret").split()[2]
    assert base64.b64decode(token) == b"\0alice\0s3cret"
    assert [base64.b64decode(s) for s in auth_login_steps("alice", "pw")[1:]] == [b"alice", b"pw"]


def test_pipelined_replies_are_matched_to_each_recipient() -> None:
    result = new_result("<id@x>", ["a@x.org", "b@x.org", "c@x.org"])
    replies = [(250, b"ok"), (250, b"ok"), (550, b"5.1.1 no"), (450, b"4.2.1 busy"), (354, b"go")]
    outcome = settle(result, "s@x.org", replies, expected=5)
    assert outcome.send_data
    assert [(s.status, s.code) for s in result.recipients] == [
        ("accepted", 250),
        ("refused", 550),
        ("refused", 450),
    ]
    final = settle_data(result, (250, b"queued"))
    assert final.result.sent
    assert result.refused == {"b@x.org": (550, "5.1.1 no"), "c@x.org": (450, "4.2.1 busy")}
    assert not result.retryable  # one refusal is permanent


def test_a_refused_sender_ignores_the_pipelined_503s_that_follow() -> None:
    result = new_result(None, ["a@x.org"])
    replies = [(451, b"4.3.0 later"), (503, b"need MAIL"), (503, b"need RCPT")]
    outcome = settle(result, "s@x.org", replies, expected=3)
    assert outcome.reset
    assert not outcome.send_data
    assert result.error == "MAIL FROM <s@x.org> refused: 451 4.3.0 later"
    assert [(s.status, s.code) for s in result.recipients] == [("unattempted", 451)]
    assert result.retryable


def test_354_with_nobody_accepted_ends_with_a_lone_dot() -> None:
    result = new_result(None, ["a@x.org"])
    outcome = settle(result, "s@x.org", [(250, b"ok"), (550, b"no"), (354, b"go")], expected=3)
    assert outcome.dot_only
    assert outcome.reset
    assert not outcome.send_data
    assert "all 1 recipient(s) refused" in (result.error or "")


def test_replies_missing_after_a_421_mean_the_session_closed_at_that_stage() -> None:
    result = new_result(None, ["a@x.org", "b@x.org"])
    outcome = settle(result, "s@x.org", [(250, b"ok"), (421, b"4.3.2 bye")], expected=4)
    assert outcome.lost
    assert result.error == "the server closed the connection at RCPT TO: 421 4.3.2 bye"
    assert all(s.status == "unattempted" for s in result.recipients)
    assert result.retryable


def test_replies_missing_without_a_reason_are_a_lost_connection() -> None:
    result = new_result(None, ["a@x.org"])
    outcome = settle(result, "s@x.org", [(250, b"ok"), (250, b"ok")], expected=3)
    assert outcome.lost
    assert (result.error or "").startswith("connection lost at DATA")
    lost = new_result(None, ["a@x.org"])
    assert settle_data(lost, None).lost
    assert (lost.error or "").startswith("connection lost at the end of DATA")


def test_lockstep_stops_before_data_when_nobody_was_accepted() -> None:
    result = new_result(None, ["a@x.org"])
    outcome = settle(result, "s@x.org", [(250, b"ok"), (550, b"no")], expected=2)
    assert outcome.reset
    assert not outcome.lost
    assert not outcome.dot_only


@pytest.mark.parametrize(
    ("data", "stuffed", "end"),
    [
        (b"a\r\n.b\r\n", b"a\r\n..b\r\n", b".\r\n"),
        (b".x", b"..x", b"\r\n.\r\n"),
        (b"plain\r\n", b"plain\r\n", b".\r\n"),
    ],
)
def test_dot_stuffing_is_one_replace_over_the_payload(
    data: bytes, stuffed: bytes, end: bytes
) -> None:
    got, terminator = data_parts(data)
    assert (got, terminator) == (stuffed, end)
    if b"\n." not in data and not data.startswith(b"."):
        assert got is data  # no copy


def test_a_streamed_message_is_planned_by_its_size() -> None:
    assert plan_for(100, True, {"size": "1000"}).options == ("SIZE=100",)
    assert plan_for(2000, True, {"size": "1000"}).problem is not None
    assert plan_for(10, False, {"8bitmime": ""}).options == ("BODY=8BITMIME",)
