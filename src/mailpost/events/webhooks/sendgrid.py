"""SendGrid: the Signed Event Webhook (ECDSA P-256 over timestamp and body) and its JSON array
of events."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from mailpost.events.model import DeliveryEvent, Kind
from mailpost.events.webhooks._common import (
    WebhookConfig,
    _code,
    _dict,
    _fresh,
    _json,
    _msgid,
    _need_crypto,
    _opt,
    _reject,
    _status,
    _str,
    _when,
)

_SG_KINDS: dict[str, Kind] = {
    "processed": "sent",
    "delivered": "delivered",
    "deferred": "deferred",
    "bounce": "bounced",
    "dropped": "rejected",
    "spamreport": "complained",
    "open": "opened",
    "click": "clicked",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
}


def _load_ec_key(provider: str, key: str | bytes | None) -> Any:
    _need_crypto(provider)
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    if key is None:
        raise _reject(provider, "no verification public key configured", 401)
    raw = key.encode() if isinstance(key, str) else key
    try:
        if b"-----BEGIN" in raw:
            loaded = load_pem_public_key(raw)
        else:
            loaded = load_der_public_key(base64.b64decode(raw.strip(), validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise _reject(provider, "configured public key cannot be read", 401) from None
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise _reject(provider, "configured public key is not an EC key", 401)
    return loaded


def _sendgrid(
    h: dict[str, str], body: bytes, cfg: WebhookConfig, now: float
) -> list[DeliveryEvent]:
    p = "sendgrid"
    sig = h.get("x-twilio-email-event-webhook-signature")
    stamp = h.get("x-twilio-email-event-webhook-timestamp")
    if not sig or not stamp:
        raise _reject(p, "missing X-Twilio-Email-Event-Webhook-Signature/-Timestamp", 401)
    key = _load_ec_key(p, cfg.public_key)
    _fresh(p, stamp, cfg, now)
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key.verify(
            base64.b64decode(sig, validate=True), stamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise _reject(p, "signature does not match", 401) from None
    payload = _json(p, body)
    if not isinstance(payload, list):
        raise _reject(p, "body is not a JSON array of events")
    events = []
    for item in payload:
        item = _dict(p, item, "event")
        kind = _SG_KINDS.get(_str(item.get("event")))
        recipient = _str(item.get("email"))
        if kind is None or not recipient:
            continue
        reason = _str(item.get("reason")) or _str(item.get("response"))
        btype: Any = None
        if kind == "bounced":
            # "blocked" bounces (type) and classifications other than invalid address are soft.
            soft = _str(item.get("type")) == "blocked" or _str(item.get("status")).startswith("4")
            btype = "soft" if soft else "hard"
        sgid = _opt(item.get("sg_message_id"))
        events.append(
            DeliveryEvent(
                kind=kind,
                recipient=recipient,
                provider=p,
                timestamp=_when(item.get("timestamp")),
                message_id=_msgid(item.get("smtp-id")),
                provider_message_id=sgid.split(".")[0] if sgid else None,
                bounce=btype,
                reason=reason,
                smtp_code=_code(reason),
                status=_opt(item.get("status")) or _status(reason),
                raw=item,
            )
        )
    return events
