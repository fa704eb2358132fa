"""Postmark: no signature, so basic auth (or a configured header token), then one
``RecordType`` object per request."""

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
    _opt,
    _reject,
    _status,
    _str,
    _when,
)

#: Postmark bounce ``Type`` values that mean the address itself is bad; every other type
#: (SoftBounce, Transient, DnsError, AutoResponder, Blocked, Unknown, ...) is soft.
_PM_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}


def _postmark(
    h: dict[str, str], body: bytes, cfg: WebhookConfig, now: float
) -> list[DeliveryEvent]:
    p = "postmark"
    if cfg.username is None and cfg.token is None:
        raise _reject(p, "no basic-auth credentials or token configured", 401)
    ok = _basic_ok(h, cfg) if cfg.username is not None else False
    if not ok and cfg.token is not None:
        ok = hmac.compare_digest(h.get(cfg.token_header.lower(), "").encode(), cfg.token.encode())
    if not ok:
        raise _reject(p, "missing or wrong credentials", 401)
    item = _dict(p, _json(p, body), "payload")
    record = _str(item.get("RecordType"))
    kinds: dict[str, Kind] = {
        "Delivery": "delivered",
        "Bounce": "bounced",
        "SpamComplaint": "complained",
        "Open": "opened",
        "Click": "clicked",
        "SubscriptionChange": "unsubscribed",
    }
    kind = kinds.get(record)
    recipient = _str(item.get("Recipient")) or _str(item.get("Email"))
    if kind is None or not recipient:
        return []
    if kind == "unsubscribed" and item.get("SuppressSending") is False:
        return []
    btype: Any = None
    reason = ""
    if kind == "bounced":
        pm_type = _str(item.get("Type"))
        if pm_type == "SpamComplaint":
            kind = "complained"
        elif pm_type == "Unsubscribe":
            kind = "unsubscribed"
        else:
            btype = "hard" if pm_type in _PM_HARD else "soft"
        reason = _str(item.get("Description")) or _str(item.get("Details"))
        details = _str(item.get("Details"))
    else:
        details = _str(item.get("Details"))
    when = (
        item.get("BouncedAt")
        or item.get("DeliveredAt")
        or item.get("ReceivedAt")
        or item.get("ChangedAt")
    )
    return [
        DeliveryEvent(
            kind=kind,
            recipient=recipient,
            provider=p,
            timestamp=_when(when),
            message_id=None,
            provider_message_id=_opt(item.get("MessageID")),
            bounce=btype,
            reason=reason or details,
            smtp_code=_code(details),
            status=_status(details),
            raw=item,
        )
    ]
