"""Between messages and stored records: capture at enqueue, replay at delivery.

:func:`capture` serializes a message once (fixing its Message-ID) and takes its envelope.
:class:`SpooledMessage` replays the stored bytes through any mailpost backend to exactly
the recipients still pending, so every attempt sends the same bytes, same Message-ID.
"""

from __future__ import annotations

import json
from datetime import datetime
from email.parser import BytesHeaderParser
from json.encoder import encode_basestring_ascii as _quote  # the C encoder's
from typing import Any

from mailpost.message import EmailMessage, envelope, message_id_of, serialize
from mailpost.spool.record import NewMessage, RecipientResult, SpoolRecipient

__all__ = [
    "SpooledMessage",
    "capture",
    "decode_recipients",
    "encode_recipients",
    "encode_results",
    "message_id_of",
    "timestamp",
]

_parser = BytesHeaderParser()
_scan: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _header_block(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[: end + 2]


def _fast_message_id(data: bytes) -> str | None:
    """Message-ID as mailpost's writer emits it (one unfolded line), else a full parse."""
    head = _header_block(data)
    start = head.find(b"\r\nMessage-ID: ")
    if start >= 0:
        start += len(b"\r\nMessage-ID: ")
        end = head.find(b"\r\n", start)
        value = head[start:end]
        if (
            value.startswith(b"<")
            and value.endswith(b">")
            and head[end + 2 : end + 3]
            not in (
                b" ",
                b"\t",
            )
        ):
            return value.decode("ascii", "replace")
    return message_id_of(data)


def timestamp(value: Any, what: str = "send_at") -> float | None:
    """Seconds since the epoch from a datetime (naive = local time) or a number."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{what} must be a datetime or seconds since the epoch, not {value!r}")


def capture(
    message: EmailMessage, *, mailer: str, priority: int = 0, send_at: float | None = None
) -> NewMessage:
    """Serialize ``message`` once and describe it for the store.

    A message's own ``priority`` / ``send_at`` attributes, when set, override the defaults.
    """
    data = serialize(message)
    sender, recipients = envelope(message)
    own_priority = getattr(message, "priority", None)
    if own_priority is not None:
        if isinstance(own_priority, bool) or not isinstance(own_priority, int):
            raise TypeError(f"message priority must be an int, not {own_priority!r}")
        priority = own_priority
    own_send_at = timestamp(getattr(message, "send_at", None))
    if own_send_at is not None:
        send_at = own_send_at
    return NewMessage(
        data=data,
        sender=sender,
        recipients=recipients,
        mailer=mailer,
        message_id=_fast_message_id(data),
        priority=priority,
        send_at=send_at,
    )


def _recipient_json(address: str, status: str, code: int | None, reply: str) -> str:
    code_text = "null" if code is None else str(int(code))
    return f"[{_quote(address)},{_quote(status)},{code_text},{_quote(reply)}]"


def encode_recipients(recipients: list[SpoolRecipient]) -> str:
    """The stored JSON of a record's recipients: ``[[address, status, code, reply], ...]``."""
    return (
        "["
        + ",".join([_recipient_json(r.address, r.status, r.code, r.reply) for r in recipients])
        + "]"
    )


def encode_results(results: list[RecipientResult]) -> str:
    """The history's JSON of what one attempt did per recipient (same shape)."""
    return (
        "["
        + ",".join([_recipient_json(r.address, r.status, r.code, r.reply) for r in results])
        + "]"
    )


def new_recipients_json(addresses: list[str]) -> str:
    if any('"' in a or "\\" in a for a in addresses):  # quoted local parts
        return encode_recipients([SpoolRecipient(a) for a in addresses])
    # validated addr-specs are printable ASCII: nothing else needs escaping in JSON
    return "[" + ",".join(f'["{a}","pending",null,""]' for a in addresses) + "]"


def decode_recipients(text: str) -> list[SpoolRecipient]:
    """The recipients of :func:`encode_recipients`' JSON (read per leased record: the
    scanner is called directly, without ``json.loads``' checks around it)."""
    try:
        values, end = _scan(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        values = json.loads(text)  # not one JSON value: raises the decoder's own error
    return [SpoolRecipient(a, s, c, r) for a, s, c, r in values]


class SpooledMessage(EmailMessage):
    """A stored message replayed as-is: its bytes, to the given recipients only.

    ``spool_id`` is the record's id. ``subject`` and ``to`` are filled in for display;
    what is sent is always ``data``.
    """

    def __init__(
        self,
        data: bytes,
        sender: str,
        recipients: list[str],
        *,
        spool_id: int | None = None,
        message_id: str | None = None,
    ) -> None:
        self.spool_data = data
        self._spool_subject: str | None = None
        self._spool_sender = sender
        super().__init__(from_email=sender)
        self.spool_id = spool_id
        self._spool_recipients = list(recipients)
        self._spool_message_id = message_id

    def prerendered(self) -> tuple[str, list[str], bytes, str | None]:
        """(sender, recipients still to deliver to, bytes, Message-ID) as captured: what a
        backend sends without composing or validating again (validated when spooled)."""
        message_id = self._spool_message_id
        if message_id is None:
            message_id = self._spool_message_id = _fast_message_id(self.spool_data)
        # recipients() and not the stored list: a failover copy narrows it to those pending
        return self._spool_sender, self.recipients(), self.spool_data, message_id

    @property
    def subject(self) -> str:
        """The stored Subject, parsed on first read (for display: delivery never needs it)."""
        if self._spool_subject is None:
            subject = _parser.parsebytes(_header_block(self.spool_data)).get("Subject")
            self._spool_subject = str(subject) if subject is not None else ""
        return self._spool_subject

    @subject.setter
    def subject(self, value: str) -> None:
        self._spool_subject = value or None

    def _render(self, *, eight_bit: bool = False) -> bytes:
        return self.spool_data

    def recipients(self) -> list[str]:
        return list(self._spool_recipients)
