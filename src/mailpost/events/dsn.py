"""SMTP bounces: RFC 3464 delivery status notifications, and common non-standard shapes.

:func:`parse_dsn` reads one bounce message (bytes, text or an ``email.message.Message``) into
:class:`DeliveryEvent` objects, ``provider="smtp"``:

- RFC 3464 ``multipart/report; report-type=delivery-status``: one event per recipient block
  (``Final-Recipient``/``Original-Recipient``, ``Action``, ``Status``, ``Diagnostic-Code``).
  ``Action: failed`` is a bounce (hard for 5.x.x, soft for 4.x.x), ``delayed`` deferred,
  ``delivered``/``relayed``/``expanded`` delivered. The original Message-ID comes from the
  returned ``message/rfc822`` or ``text/rfc822-headers`` part.
- qmail / netqmail ("Hi. This is the qmail-send program ..."): ``<address>:`` followed by the
  remote reply.
- Exim and other plain-text bounces ("This message was created automatically by mail
  delivery software" ... indented addresses, then the SMTP error).

:func:`parse_mailbox` walks an mbox file or a Maildir directory.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from email.message import Message
from typing import Any

from mailpost.events.model import DeliveryEvent, Kind

__all__ = ["parse_dsn", "parse_mailbox"]

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_CODE = re.compile(r"\b([245]\d\d)\b")
_ADDR = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")


def _load(source: bytes | str | Message) -> Message:
    if isinstance(source, Message):
        return source
    if isinstance(source, str):
        source = source.encode("utf-8", "surrogateescape")
    return email.message_from_bytes(source, policy=email.policy.compat32)


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:
            return payload.decode("utf-8", "replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _original_id(msg: Message) -> str | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                value = inner[0].get("Message-ID")
                if value:
                    return str(value).strip().strip("<>")
        elif ctype == "text/rfc822-headers":
            m = re.search(r"^Message-ID:\s*<?([^>\s]+)>?", _text(part), re.I | re.M)
            if m:
                return m.group(1)
    # plain-text bounces often quote the original headers in the body
    body = "\n".join(_text(p) for p in msg.walk() if p.get_content_maintype() == "text")
    m = re.search(r"^\s*Message-ID:\s*<([^>\s]+)>", body, re.I | re.M)
    return m.group(1) if m else None


def _fields_blocks(part: Message) -> list[dict[str, str]]:
    """The per-message and per-recipient field blocks of a message/delivery-status part."""
    payload = part.get_payload()
    texts: list[str] = []
    if isinstance(payload, list):  # the email package parses each block as a Message
        for block in payload:
            if isinstance(block, Message):
                texts.append("".join(f"{k}: {v}\n" for k, v in block.items()))
    else:
        texts = re.split(r"\r?\n\s*\r?\n", _text(part))
    blocks = []
    for text in texts:
        fields: dict[str, str] = {}
        current = None
        for line in text.splitlines():
            if line[:1] in (" ", "\t") and current:
                fields[current] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                current = name.strip().lower()
                fields[current] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _addr(value: str) -> str:
    _, _, rest = value.partition(";")
    m = _ADDR.search(rest or value)
    return m.group(1) if m else ""


def _event(
    recipient: str, kind: Kind, status: str | None, diag: str, message_id: str | None, raw: Any
) -> DeliveryEvent:
    code_m = _CODE.search(diag)
    bounce: Any = None
    if kind == "bounced":
        first = status[0] if status else (code_m.group(1)[0] if code_m else "5")
        bounce = "soft" if first == "4" else "hard"
    return DeliveryEvent(
        kind=kind,
        recipient=recipient,
        provider="smtp",
        message_id=message_id,
        bounce=bounce,
        reason=diag,
        smtp_code=int(code_m.group(1)) if code_m else None,
        status=status,
        raw=raw,
    )


def _rfc3464(msg: Message, message_id: str | None) -> list[DeliveryEvent] | None:
    report = None
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            report = part
            break
    if report is None:
        return None
    events = []
    for fields in _fields_blocks(report):
        recipient = _addr(fields.get("final-recipient", "") or fields.get("original-recipient", ""))
        action = fields.get("action", "").lower()
        if not recipient or not action:
            continue
        kinds: dict[str, Kind] = {
            "failed": "bounced",
            "delayed": "deferred",
            "delivered": "delivered",
            "relayed": "delivered",
            "expanded": "delivered",
        }
        kind = kinds.get(action)
        if kind is None:
            continue
        sm = _STATUS.search(fields.get("status", ""))
        diag = fields.get("diagnostic-code", "")
        diag = diag.partition(";")[2].strip() if ";" in diag else diag
        events.append(
            _event(recipient, kind, sm.group(0) if sm else None, diag, message_id, fields)
        )
    return events


def _plain(msg: Message, message_id: str | None) -> list[DeliveryEvent]:
    body = "\n".join(_text(p) for p in msg.walk() if p.get_content_type() == "text/plain")
    events = []
    if "qmail-send program" in body or "qmail" in str(msg.get("From", "")).lower():
        # "<ann@example.com>:\n1.2.3.4 does not like recipient.\nRemote host said: 550 ..."
        for m in re.finditer(r"^<([^>\s]+@[^>\s]+)>:\s*\n((?:.+\n?)*?)(?:\n|\Z)", body, re.M):
            diag = " ".join(m.group(2).split())
            sm = _STATUS.search(diag)
            soft = "try again" in diag.lower() or diag.startswith("4")
            status = sm.group(0) if sm else ("4.0.0" if soft else None)
            events.append(
                _event(m.group(1), "bounced", status, diag, message_id, {"text": m.group(0)})
            )
        return events
    lowered = body.lower()
    if "could not be delivered" in lowered or "delivery software" in lowered or "failed" in lowered:
        # Exim: "  ann@example.com\n    host mx.example.com [1.2.3.4]\n    SMTP error ...: 550 ..."
        for m in re.finditer(r"^  ([^\s@]+@[^\s@]+)\s*\n((?:    .*\n?)*)", body, re.M):
            diag = " ".join(m.group(2).split())
            sm = _STATUS.search(diag)
            status = sm.group(0) if sm else None
            deferred = "delayed" in lowered and "permanent" not in lowered
            kind: Kind = "deferred" if deferred else "bounced"
            events.append(
                _event(
                    m.group(1).strip("<>:"), kind, status, diag, message_id, {"text": m.group(0)}
                )
            )
    return events


def parse_dsn(source: bytes | str | Message) -> list[DeliveryEvent]:
    """The delivery events a bounce message reports; empty if it is not one we recognize."""
    msg = _load(source)
    message_id = _original_id(msg)
    events = _rfc3464(msg, message_id)
    if events is None:
        events = _plain(msg, message_id)
    sent = _date(str(msg.get("Date", "")))
    for e in events:  # when it happened: the recipient's last attempt, else the bounce's Date
        fields = e.raw if isinstance(e.raw, dict) else {}
        when = _date(str(fields.get("last-attempt-date", ""))) or sent
        if when is not None:
            e.timestamp = when
    return events


def _date(value: str) -> datetime | None:
    from email.utils import parsedate_to_datetime

    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_mailbox(path: str | os.PathLike[str]) -> Iterator[DeliveryEvent]:
    """Every event in every message of an mbox file or a Maildir directory."""
    location = os.fspath(path)
    box: mailbox.Mailbox[Any]
    box = (
        mailbox.Maildir(location, create=False)
        if os.path.isdir(location)
        else mailbox.mbox(location, create=False)
    )
    try:
        for key in box.iterkeys():
            raw = box.get_bytes(key)
            yield from parse_dsn(raw)
    finally:
        box.close()
