"""The SMTP client's wire protocol, without sockets (sans-IO).

Parses server replies out of whatever bytes arrive (RFC 5321 section 4.2, multi-line
replies included), parses the EHLO extension list, builds command lines and AUTH
exchanges, and turns the replies of one mail transaction (MAIL, RCPT..., DATA, the data)
into a :class:`~mailpost.DeliveryResult`. The asyncio session (``_smtp.session``) only moves
these bytes; with ESMTP PIPELINING (RFC 2920) it sends MAIL, every RCPT and DATA as one
group and reads their replies together, without PIPELINING one command at a time. Both
feed the same :func:`settle` logic, so every reply means the same thing either way.
"""

from __future__ import annotations

import base64
import smtplib
from dataclasses import dataclass

from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost._smtp.replies import (
    Failure,
    classify_exception,
    closes_connection,
    decode_reply,
    describe_reply,
)

__all__ = [
    "Outcome",
    "ProtocolError",
    "Reply",
    "ReplyParser",
    "auth_login_steps",
    "auth_plain",
    "fail",
    "fail_smtputf8",
    "lost",
    "mail_command",
    "new_result",
    "parse_ehlo",
    "rcpt_command",
    "refuse_non_ascii",
    "settle",
    "settle_data",
]

#: (code, text): the text's lines joined by ``\n``, as smtplib returns them.
Reply = tuple[int, bytes]

_MAX_LINE = 65536


class ProtocolError(smtplib.SMTPServerDisconnected):
    """The server sent something that is not an SMTP reply; the session is unusable."""


class ReplyParser:
    """Splits a byte stream into complete replies; keeps partial lines for the next feed."""

    __slots__ = ("_partial", "_text")

    def __init__(self) -> None:
        self._partial = b""
        self._text: list[bytes] = []

    def feed(self, data: bytes) -> list[Reply]:
        """The replies completed by ``data`` (possibly none), in order."""
        if self._partial:
            data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > _MAX_LINE:
            raise ProtocolError("reply line too long")
        replies: list[Reply] = []
        text = self._text
        for line in lines:
            head = line[:3]
            if len(head) < 3 or not head.isdigit():
                raise ProtocolError(f"malformed reply: {line[:80]!r}")
            if line[3:4] == b"-":
                text.append(line[4:].strip(b" \t\r"))
            elif text:
                text.append(line[4:].strip(b" \t\r"))
                replies.append((int(head), b"\n".join(text)))
                text.clear()
            else:
                replies.append((int(head), line[4:].strip(b" \t\r")))
        return replies


def parse_ehlo(text: bytes) -> dict[str, str]:
    """The extensions of an EHLO reply: lower-case keyword -> its parameters."""
    features: dict[str, str] = {}
    for line in decode_reply(text).split("\n")[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            features[keyword.lower()] = params.strip()
    return features


def mail_command(sender: str, options: tuple[str, ...] = ()) -> bytes:
    """``MAIL FROM:<sender> [options]`` as a command line (UTF-8 only with ``SMTPUTF8``
    among the options: the envelope plan sees to it)."""
    params = (" " + " ".join(options)) if options else ""
    return f"MAIL FROM:<{sender}>{params}\r\n".encode()


def rcpt_command(recipient: str) -> bytes:
    """``RCPT TO:<recipient>`` as a command line."""
    return b"RCPT TO:<" + recipient.encode() + b">\r\n"


def auth_plain(username: str, password: str) -> bytes:
    """The ``AUTH PLAIN`` command line (RFC 4616) with its initial response."""
    token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    return f"AUTH PLAIN {token}\r\n".encode("ascii")


def auth_login_steps(username: str, password: str) -> list[bytes]:
    """``AUTH LOGIN``, then the user name, then the password, each a line."""
    return [
        b"AUTH LOGIN\r\n",
        base64.b64encode(username.encode()) + b"\r\n",
        base64.b64encode(password.encode()) + b"\r\n",
    ]


# -- one transaction's outcome ---------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """Where a transaction stands after its envelope replies.

    ``send_data``: DATA was answered 354 and recipients were accepted: send the message.
    ``dot_only``: DATA was answered 354 although nobody was accepted: send ``.`` alone.
    ``lost``: the session is over (421 or no reply); ``reset``: RSET before the next one.
    """

    result: DeliveryResult
    send_data: bool = False
    dot_only: bool = False
    lost: bool = False
    reset: bool = False


def settle(
    result: DeliveryResult,
    sender: str,
    replies: list[Reply],
    *,
    expected: int,
    cause: BaseException | None = None,
) -> Outcome:
    """Apply the replies to MAIL, each RCPT and DATA (``expected`` commands were sent).

    Fewer replies than ``expected`` means the session ended after the last one. Without
    pipelining the caller stops after a refused MAIL or when no RCPT was accepted, so the
    replies end there and ``expected`` says how many commands actually went out.
    ``cause`` is why the session ended, if it did. Recipients already refused before
    any command (:func:`refuse_non_ascii`) had no RCPT and keep their status.
    """
    statuses = [s for s in result.recipients if s.status == "unattempted"]
    if not replies:
        return _lost_outcome(result, "MAIL FROM", cause)
    code, raw = replies[0]
    if closes_connection(code):
        return _closed(result, "MAIL FROM", code, raw)
    if not 200 <= code < 300:
        failure = Failure.from_reply(code, decode_reply(raw))
        text = decode_reply(raw)
        for status in statuses:
            status.code, status.reply = code, text
        exc = smtplib.SMTPSenderRefused(code, raw, sender)
        fail(result, failure, f"MAIL FROM <{sender}> refused: {failure.text}", exc)
        data_reply = replies[len(statuses) + 1] if len(replies) > len(statuses) + 1 else None
        return Outcome(result, dot_only=data_reply is not None and data_reply[0] == 354, reset=True)
    n = len(statuses)
    for index in range(n):
        if index + 1 >= len(replies):
            if index + 1 < expected:
                return _lost_outcome(result, "RCPT TO", cause)
            break
        code, raw = replies[index + 1]
        if closes_connection(code):
            return _closed(result, "RCPT TO", code, raw)
        status = statuses[index]
        status.code, status.reply = code, decode_reply(raw)
        status.status = "accepted" if 200 <= code < 300 else "refused"
    accepted = any(s.status == "accepted" for s in statuses)
    if len(replies) < n + 2:
        if expected >= n + 2:
            return _lost_outcome(result, "DATA", cause)
        fail_recipients(result)  # lock-step: nobody accepted, DATA was not sent
        return Outcome(result, reset=True)
    code, raw = replies[n + 1]
    if closes_connection(code):
        return _closed(result, "DATA", code, raw)
    if not accepted:
        fail_recipients(result)
        return Outcome(result, dot_only=code == 354, reset=True)
    if code != 354:
        fail_data(result, code, raw, "DATA command refused")
        return Outcome(result, reset=True)
    return Outcome(result, send_data=True)


def settle_data(
    result: DeliveryResult, reply: Reply | None, *, cause: BaseException | None = None
) -> Outcome:
    """Apply the reply to the end of the data (None: the session ended first)."""
    if reply is None:
        return _lost_outcome(result, "the end of DATA", cause)
    code, raw = reply
    result.response = (code, decode_reply(raw))
    if closes_connection(code):
        return _closed(result, "the end of DATA", code, raw)
    if not 200 <= code < 300:
        fail_data(result, code, raw, "message refused")
        return Outcome(result)
    result.sent = True
    if any(s.status != "accepted" for s in result.recipients):
        fail_recipients(result)
    return Outcome(result)


def fail(result: DeliveryResult, failure: Failure, text: str, exc: BaseException | None) -> None:
    """Mark ``result`` failed with words, code, retry verdict and the exception."""
    result.error = text
    result.error_code = failure.code
    result.retryable = failure.retryable
    result.exception = exc


def fail_recipients(result: DeliveryResult) -> None:
    """Some (sent) or all (not sent) recipients were refused at RCPT TO."""
    statuses = result.recipients
    refused = [s for s in statuses if not s.accepted]
    details = "; ".join(f"<{s.address}>: {describe_reply(s.code, s.reply)}" for s in refused)
    if result.sent:
        text = f"{len(refused)} of {len(statuses)} recipient(s) refused: {details}"
    else:
        text = f"all {len(statuses)} recipient(s) refused: {details}"
    exc = smtplib.SMTPRecipientsRefused(
        {s.address: (s.code or 0, s.reply.encode()) for s in refused}
    )
    retryable = all(s.retryable for s in refused)
    fail(result, Failure(text, refused[0].code, retryable), text, exc)


_NON_ASCII_REPLY = "5.6.7 non-ASCII address: it needs SMTPUTF8, which the server does not offer"


def fail_smtputf8(result: DeliveryResult, sender: str, server: str = "the server") -> None:
    """The message needs SMTPUTF8 (RFC 6531) and ``server`` does not offer it: it is not
    sent, and every recipient is refused, permanently (a client-side verdict, given the
    codes RFC 6531 and RFC 3463 use for it: 553 5.6.7 for a non-ASCII address)."""
    addresses = [sender, *(s.address for s in result.recipients)]
    wide = [f"<{a}>" for a in addresses if not a.isascii()]
    noun = "address" if len(wide) == 1 else "addresses"
    why = f"non-ASCII {noun} {', '.join(wide)}" if wide else "UTF-8 headers (RFC 6532)"
    for status in result.recipients:
        status.status = "refused"
        if status.address.isascii():
            status.code = 554
            status.reply = f"5.6.7 not sent: the message needs SMTPUTF8 ({why})"
        else:
            status.code, status.reply = 553, _NON_ASCII_REPLY
    text = f"message not sent: it needs SMTPUTF8 ({why}), which {server} does not offer"
    fail(result, Failure(text, None, False), text, smtplib.SMTPNotSupportedError(text))


def refuse_non_ascii(result: DeliveryResult) -> None:
    """Refuse each non-ASCII recipient of ``result`` before the transaction, permanently
    (553 5.6.7, as :func:`fail_smtputf8`): the server does not offer SMTPUTF8, but the
    message is all ASCII without them (they were only in the envelope, e.g. Bcc), so it
    goes to the others, as when a server refuses one RCPT."""
    for status in result.recipients:
        if not status.address.isascii():
            status.status, status.code, status.reply = "refused", 553, _NON_ASCII_REPLY


def fail_data(result: DeliveryResult, code: int, raw: bytes, what: str) -> None:
    """The server refused the message at DATA: nobody got it."""
    failure = Failure.from_reply(code, decode_reply(raw))
    result.response = (code, decode_reply(raw))
    for status in result.recipients:
        if status.accepted:
            status.status, status.code, status.reply = "refused", code, decode_reply(raw)
    fail(result, failure, f"{what}: {failure.text}", smtplib.SMTPDataError(code, raw))


def _closed(result: DeliveryResult, stage: str, code: int, raw: bytes) -> Outcome:
    """The server answered 421 at ``stage``: it is closing the session."""
    failure = Failure.from_reply(code, decode_reply(raw))
    lost(result, stage, failure, smtplib.SMTPResponseException(code, raw))
    return Outcome(result, lost=True)


def _lost_outcome(result: DeliveryResult, stage: str, exc: BaseException | None) -> Outcome:
    exc = exc or smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    lost(result, stage, classify_exception(exc), exc)
    return Outcome(result, lost=True)


def lost(result: DeliveryResult, stage: str, failure: Failure, exc: BaseException | None) -> None:
    """The session ended (dropped, timed out, 421) before the server took the message."""
    if failure.code is not None:
        text = f"the server closed the connection at {stage}: {failure.text}"
    else:
        text = f"connection lost at {stage}: {failure.text}"
    for status in result.recipients:
        if status.accepted or status.status == "unattempted":
            status.status, status.code, status.reply = "unattempted", failure.code, failure.text
    result.sent = False
    fail(result, Failure(text, failure.code, True), text, exc)


def new_result(message_id: str | None, recipients: list[str]) -> DeliveryResult:
    """A result with every recipient not yet attempted."""
    return DeliveryResult(
        message_id=message_id, recipients=[RecipientStatus(a, "unattempted") for a in recipients]
    )
