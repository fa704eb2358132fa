"""Resend and Sequenzy: Svix / Standard Webhooks signatures and the ``email.<event>`` envelope
the two share."""

from __future__ import annotations

import base64
import binascii
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
    _opt,
    _recipients,
    _reject,
    _status,
    _str,
    _when,
)


def _svix_key(provider: str, secret: str | bytes | None) -> bytes:
    if secret is None:
        raise _reject(provider, "no signing secret configured", 401)
    if isinstance(secret, bytes):
        return secret
    text = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _reject(provider, "configured secret is not whsec_<base64>", 401) from None


def _verify_svix(
    provider: str, h: dict[str, str], body: bytes, cfg: WebhookConfig, now: float
) -> None:
    prefix = "svix-" if "svix-signature" in h else "webhook-"
    msg_id, stamp, sigs = (h.get(prefix + n) for n in ("id", "timestamp", "signature"))
    if not msg_id or not stamp or not sigs:
        raise _reject(provider, "missing svix-id/-timestamp/-signature (or webhook-*) headers", 401)
    key = _svix_key(provider, cfg.secret)
    _fresh(provider, stamp, cfg, now)
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for part in sigs.split():
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), expected):
            return
    raise _reject(provider, "signature does not match", 401)


_RESEND_KINDS: dict[str, Kind] = {
    "email.sent": "sent",
    "email.delivered": "delivered",
    "email.delivery_delayed": "deferred",
    "email.bounced": "bounced",
    "email.complained": "complained",
    "email.failed": "rejected",
    "email.suppressed": "rejected",
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.unsubscribed": "unsubscribed",
}


def _parse_resend_shape(provider: str, payload: Any) -> list[DeliveryEvent]:
    payload = _dict(provider, payload, "payload")
    kind = _RESEND_KINDS.get(_str(payload.get("type")))
    if kind is None:
        return []
    data = _dict(provider, payload.get("data"), "data")
    bounce = _obj(data.get("bounce"))
    btype: Any = None
    reason = ""
    if kind == "bounced":
        btype = "soft" if _str(bounce.get("type")).lower() in ("transient", "soft") else "hard"
        reason = _str(bounce.get("message")) or _str(bounce.get("subType"))
    elif isinstance(data.get("failed"), dict):
        reason = _str(data["failed"].get("reason"))
    headers = data.get("headers")
    message_id = None
    if isinstance(headers, list):
        for item in headers:
            if isinstance(item, dict) and _str(item.get("name")).lower() == "message-id":
                message_id = _msgid(item.get("value"))
    message_id = message_id or _msgid(data.get("message_id"))
    when = _when(payload.get("created_at") or data.get("created_at"))
    return [
        DeliveryEvent(
            kind=kind,
            recipient=r,
            provider=provider,
            timestamp=when,
            message_id=message_id,
            provider_message_id=_opt(data.get("email_id")) or _opt(data.get("id")),
            bounce=btype,
            reason=reason,
            smtp_code=_code(reason),
            status=_status(reason),
            raw=payload,
        )
        for r in _recipients(data.get("to") or data.get("email"))
    ]


def _resend(h: dict[str, str], body: bytes, cfg: WebhookConfig, now: float) -> list[DeliveryEvent]:
    _verify_svix("resend", h, body, cfg, now)
    return _parse_resend_shape("resend", _json("resend", body))


def _sequenzy(
    h: dict[str, str], body: bytes, cfg: WebhookConfig, now: float
) -> list[DeliveryEvent]:
    _verify_svix("sequenzy", h, body, cfg, now)
    return _parse_resend_shape("sequenzy", _json("sequenzy", body))
