"""Brevo: no signature, so basic auth or a bearer token, then one event or a batched array."""

from __future__ import annotations

import hmac
from typing import Any

from mailpost.events.model import DeliveryEvent, Kind
from mailpost.events.webhooks._common import (
    WebhookConfig,
    _basic_ok,
    _code,
    _dict,
    _json,
    _msgid,
    _reject,
    _status,
    _str,
    _when,
)

_BREVO_KINDS: dict[str, tuple[Kind, Any]] = {
    "request": ("sent", None),
    "sent": ("sent", None),
    "delivered": ("delivered", None),
    "deferred": ("deferred", None),
    "soft_bounce": ("bounced", "soft"),
    "hard_bounce": ("bounced", "hard"),
    "invalid_email": ("bounced", "hard"),
    "blocked": ("rejected", None),
    "error": ("rejected", None),
    "spam": ("complained", None),
    "complaint": ("complained", None),
    "opened": ("opened", None),
    "unique_opened": ("opened", None),
    "click": ("clicked", None),
    "unsubscribed": ("unsubscribed", None),
}


def _brevo(h: dict[str, str], body: bytes, cfg: WebhookConfig, now: float) -> list[DeliveryEvent]:
    p = "brevo"
    if cfg.username is None and cfg.token is None:
        raise _reject(p, "no basic-auth credentials or bearer token configured", 401)
    ok = cfg.username is not None and _basic_ok(h, cfg)
    if not ok and cfg.token is not None:
        expected = f"Bearer {cfg.token}".encode()
        ok = hmac.compare_digest(h.get("authorization", "").encode(), expected)
    if not ok:
        raise _reject(p, "missing or wrong credentials", 401)
    payload = _json(p, body)
    items = payload if isinstance(payload, list) else [payload]  # batched webhooks: an array
    events = []
    for item in items:
        item = _dict(p, item, "event")
        found = _BREVO_KINDS.get(_str(item.get("event")))
        recipient = _str(item.get("email"))
        if found is None or not recipient:
            continue
        kind, btype = found
        reason = _str(item.get("reason"))
        stamp = item.get("ts_event") or item.get("ts_epoch") or item.get("date")
        if isinstance(item.get("ts_epoch"), int) and item["ts_epoch"] > 10**11:
            stamp = item["ts_epoch"] / 1000  # milliseconds
        events.append(
            DeliveryEvent(
                kind=kind,
                recipient=recipient,
                provider=p,
                timestamp=_when(stamp),
                message_id=_msgid(item.get("message-id")),
                provider_message_id=_msgid(item.get("message-id")),
                bounce=btype,
                reason=reason,
                smtp_code=_code(reason),
                status=_status(reason),
                raw=item,
            )
        )
    return events
