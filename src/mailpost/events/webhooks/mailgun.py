"""Mailgun: the HMAC-SHA256 ``signature`` object in the body, then its ``event-data``."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from mailpost.events.model import DeliveryEvent, Kind
from mailpost.events.webhooks._common import (
    WebhookConfig,
    _code,
    _dict,
    _fresh,
    _json,
    _msgid,
    _obj,
    _reject,
    _status,
    _str,
    _when,
)


def _mailgun(h: dict[str, str], body: bytes, cfg: WebhookConfig, now: float) -> list[DeliveryEvent]:
    p = "mailgun"
    payload = _dict(p, _json(p, body), "payload")
    sig = payload.get("signature")
    if not isinstance(sig, dict):
        raise _reject(p, "missing signature object", 401)
    stamp, token, digest = (sig.get(n) for n in ("timestamp", "token", "signature"))
    if not isinstance(stamp, str) or not isinstance(token, str) or not isinstance(digest, str):
        raise _reject(p, "signature needs timestamp, token and signature strings", 401)
    if cfg.secret is None:
        raise _reject(p, "no webhook signing key configured", 401)
    key = cfg.secret.encode() if isinstance(cfg.secret, str) else cfg.secret
    expected = hmac.new(key, (stamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(digest.encode(), expected.encode()):
        raise _reject(p, "signature does not match", 401)
    _fresh(p, stamp, cfg, now)
    data = _dict(p, payload.get("event-data"), "event-data")
    name = _str(data.get("event"))
    kinds: dict[str, Kind] = {
        "accepted": "sent",
        "delivered": "delivered",
        "opened": "opened",
        "clicked": "clicked",
        "unsubscribed": "unsubscribed",
        "complained": "complained",
        "rejected": "rejected",
    }
    btype: Any = None
    if name == "failed":
        permanent = _str(data.get("severity")) == "permanent"
        kind: Kind = "bounced" if permanent else "deferred"
        if permanent:
            btype = "hard"
    elif name in kinds:
        kind = kinds[name]
    else:
        return []
    recipient = _str(data.get("recipient"))
    if not recipient:
        return []
    status = _obj(data.get("delivery-status"))
    reason = (
        _str(status.get("description")) or _str(status.get("message")) or _str(data.get("reason"))
    )
    message = _obj(data.get("message"))
    mheaders = _obj(message.get("headers"))
    code = status.get("code")
    return [
        DeliveryEvent(
            kind=kind,
            recipient=recipient,
            provider=p,
            timestamp=_when(data.get("timestamp")),
            message_id=_msgid(mheaders.get("message-id")),
            provider_message_id=_msgid(mheaders.get("message-id")),
            bounce=btype,
            reason=reason,
            smtp_code=_code(code) or _code(reason),
            status=_status(_str(status.get("enhanced-code")) or reason),
            raw=data,
        )
    ]
