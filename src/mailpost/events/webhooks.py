"""``parse(provider, headers, body)``: verify a provider's webhook request, then normalize it.

Each provider is checked exactly as it documents its webhooks (verified December 2026):

- ``resend``: Svix signatures. Headers ``svix-id``, ``svix-timestamp``, ``svix-signature``
  (space-separated ``v1,<base64>``); HMAC-SHA256 over ``"{id}.{timestamp}.{body}"`` with the
  base64-decoded secret after its ``whsec_`` prefix. Payload ``{"type": "email.bounced",
  "created_at", "data": {"email_id", "to": [...], "bounce": {...}}}``.
- ``sequenzy``: the same Standard-Webhooks/Svix scheme (``webhook-*`` or ``svix-*`` headers)
  and a ``{"type": "email.<event>", "data": {...}}`` envelope. Sequenzy publishes no webhook
  reference we could read; this is our assumption, documented in docs/events.md.
- ``sendgrid``: Signed Event Webhook. ECDSA P-256 / SHA-256 over ``timestamp + body``;
  headers ``X-Twilio-Email-Event-Webhook-Signature`` (base64 DER) and ``...-Timestamp``;
  the public key is the base64 DER (or PEM) key from the SendGrid console. Body: a JSON array.
- ``postmark``: no signature; HTTP basic auth credentials in the webhook URL (and/or a custom
  header you configure). Body: one JSON object with ``RecordType``.
- ``mailgun``: ``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``;
  hex HMAC-SHA256 of ``timestamp + token`` with the webhook signing key.
- ``ses``: Amazon SNS HTTP(S) notification; the SNS message signature (SignatureVersion 1:
  SHA1withRSA, 2: SHA256withRSA) over the documented canonical string, verified with the
  certificate at ``SigningCertURL`` (which must be ``https://sns.<region>.amazonaws.com/...pem``)
  obtained through a configurable ``certificate_loader``. The SES event is in ``Message``.
- ``brevo``: no signature; HTTP basic auth in the URL or ``Authorization: Bearer <token>``.

Every request also has to fit ``max_body`` bytes, and signed timestamps must be within
``tolerance`` seconds of now (default 300). Secrets are compared with
:func:`hmac.compare_digest`; public-key cryptography comes from ``cryptography``
(``pip install "mailpost[events]"``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mailpost.events.model import DeliveryEvent, Kind, WebhookRejected

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_TOLERANCE",
    "PROVIDERS",
    "CertificateLoader",
    "WebhookConfig",
    "parse",
]

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_TOLERANCE = 300.0

#: ``loader(url) -> PEM bytes`` of the certificate at an SNS ``SigningCertURL``.
CertificateLoader = Callable[[str], bytes]

_SNS_CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


@dataclass(frozen=True, slots=True, repr=False)
class WebhookConfig:
    """How to authenticate one provider's webhook requests.

    Set what the provider uses: ``secret`` (Resend, Sequenzy: ``whsec_...``; Mailgun: the
    HTTP webhook signing key), ``public_key`` (SendGrid verification key), ``username`` and
    ``password`` (Postmark, Brevo basic auth), ``token`` (Brevo bearer token; Postmark: value
    expected in ``token_header``), ``certificate_loader`` (SES). ``repr`` never shows secrets.
    """

    secret: str | bytes | None = None
    public_key: str | bytes | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    token_header: str = "authorization"
    certificate_loader: CertificateLoader | None = None
    tolerance: float = DEFAULT_TOLERANCE
    max_body: int = DEFAULT_MAX_BODY

    def __repr__(self) -> str:
        present = [
            n
            for n in ("secret", "public_key", "username", "password", "token")
            if getattr(self, n) is not None
        ]
        return f"WebhookConfig(configured={present}, tolerance={self.tolerance})"


# -- helpers ---------------------------------------------------------------------------


def _reject(provider: str, problem: str, status: int = 400) -> WebhookRejected:
    return WebhookRejected(
        f"{provider} webhook rejected: {problem}", status=status, provider=provider
    )


def _lower(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for k, v in items:
        key = k.decode("latin-1") if isinstance(k, bytes) else str(k)
        val = v.decode("latin-1") if isinstance(v, bytes) else str(v)
        out[key.lower()] = val
    return out


def _json(provider: str, body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _reject(provider, f"body is not JSON ({type(exc).__name__})") from None


def _fresh(provider: str, stamp: str, cfg: WebhookConfig, now: float) -> None:
    try:
        when = float(stamp)
    except ValueError:
        raise _reject(provider, "timestamp is not a number", 401) from None
    if when != when or abs(now - when) > cfg.tolerance:  # NaN, or outside the replay window
        raise _reject(provider, "timestamp outside the replay window (stale or replayed)", 400)


def _when(value: Any) -> datetime:
    """A provider timestamp (epoch seconds or ISO 8601) as aware UTC; now if absent/bad."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(float(value), timezone.utc)
        if isinstance(value, str) and value:
            text = value.strip().replace("Z", "+00:00")
            try:
                return datetime.fromtimestamp(float(text), timezone.utc)
            except ValueError:
                pass
            dt = datetime.fromisoformat(text)
            return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    except (ValueError, TypeError, OverflowError, OSError):
        pass
    return datetime.now(timezone.utc)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _opt(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _msgid(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().strip("<>") or None


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 200 <= value < 600:
        return value
    if isinstance(value, str):
        m = re.match(r"\s*([245]\d\d)\b", value)
        if m:
            return int(m.group(1))
    return None


def _status(text: str) -> str | None:
    m = re.search(r"\b([245]\.\d{1,3}\.\d{1,3})\b", text)
    return m.group(1) if m else None


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (optional sub-objects)."""
    return value if isinstance(value, dict) else {}


def _dict(provider: str, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _reject(provider, f"{what} is not a JSON object")
    return value


def _basic_ok(headers: dict[str, str], cfg: WebhookConfig) -> bool:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic" or cfg.username is None or cfg.password is None:
        return False
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{cfg.username}:{cfg.password}".encode()
    return hmac.compare_digest(decoded, expected)


def _need_crypto(provider: str) -> Any:
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        from mailpost.exceptions import MissingDependency

        raise MissingDependency(
            f'verifying {provider} webhooks needs cryptography: pip install "mailpost[events]"'
        ) from exc


# -- Svix / Standard Webhooks (Resend, Sequenzy) ---------------------------------------


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


def _recipients(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


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


# -- SendGrid ---------------------------------------------------------------------------

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


# -- Postmark ---------------------------------------------------------------------------

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


# -- Mailgun ----------------------------------------------------------------------------


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


# -- Amazon SES via SNS -----------------------------------------------------------------

_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


def sns_string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The canonical text SNS signs: ``Name\\nvalue\\n`` per documented field, in order."""
    fields = _SNS_FIELDS.get(_str(message.get("Type")), ())
    out = []
    for name in fields:
        value = message.get(name)
        if name == "Subject" and value is None:
            continue
        out.append(f"{name}\n{value if isinstance(value, str) else ''}\n")
    return "".join(out).encode("utf-8")


def check_sns_cert_url(url: str) -> None:
    """Raise :class:`WebhookRejected` unless ``url`` is an https SNS certificate URL."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        raise _reject("ses", "SigningCertURL cannot be parsed", 401) from None
    host = parts.hostname or ""
    if parts.scheme != "https" or not _SNS_CERT_HOST.match(host) or not parts.path.endswith(".pem"):
        raise _reject(
            "ses", "SigningCertURL is not an https://sns.<region>.amazonaws.com/ .pem", 401
        )


_SES_KINDS: dict[str, Kind] = {
    "Send": "sent",
    "Delivery": "delivered",
    "DeliveryDelay": "deferred",
    "Bounce": "bounced",
    "Complaint": "complained",
    "Reject": "rejected",
    "Open": "opened",
    "Click": "clicked",
}


def _ses(h: dict[str, str], body: bytes, cfg: WebhookConfig, now: float) -> list[DeliveryEvent]:
    p = "ses"
    envelope = _dict(p, _json(p, body), "SNS message")
    for name in ("Type", "Signature", "SigningCertURL", "SignatureVersion", "Timestamp"):
        if not isinstance(envelope.get(name), str):
            raise _reject(p, f"SNS message without {name}", 401)
    if envelope["Type"] not in _SNS_FIELDS:
        raise _reject(p, "unknown SNS message Type")
    check_sns_cert_url(envelope["SigningCertURL"])
    if cfg.certificate_loader is None:
        raise _reject(p, "no certificate_loader configured", 401)
    _need_crypto(p)
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    version = envelope["SignatureVersion"]
    algorithm: hashes.HashAlgorithm
    if version == "1":
        algorithm = hashes.SHA1()
    elif version == "2":
        algorithm = hashes.SHA256()
    else:
        raise _reject(p, "unsupported SignatureVersion", 401)
    try:
        pem = cfg.certificate_loader(envelope["SigningCertURL"])
    except Exception:  # the loader is the caller's (a cache, a fetch): any failure rejects
        raise _reject(p, "signing certificate could not be loaded", 401) from None
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except (ValueError, TypeError):
        raise _reject(p, "signing certificate cannot be read", 401) from None
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise _reject(p, "signing certificate has no RSA key", 401)
    try:
        signature = base64.b64decode(envelope["Signature"], validate=True)
        key.verify(signature, sns_string_to_sign(envelope), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, binascii.Error, ValueError):
        raise _reject(p, "signature does not match", 401) from None
    sent = _when(envelope["Timestamp"]).timestamp()
    if abs(now - sent) > cfg.tolerance:
        raise _reject(p, "timestamp outside the replay window (stale or replayed)", 400)
    if envelope["Type"] != "Notification":
        return []  # subscription (un)confirmations carry no delivery event
    message = envelope.get("Message")
    inner = _dict(p, _json(p, message.encode() if isinstance(message, str) else b""), "Message")
    name = _str(inner.get("eventType")) or _str(inner.get("notificationType"))
    kind = _SES_KINDS.get(name)
    if kind is None:
        return []
    mail = _obj(inner.get("mail"))
    common = _obj(mail.get("commonHeaders"))
    message_id = _msgid(common.get("messageId"))
    provider_id = _opt(mail.get("messageId"))
    section_name = {"DeliveryDelay": "deliveryDelay"}.get(name, name[:1].lower() + name[1:])
    section = _obj(inner.get(section_name))
    base: dict[str, Any] = {
        "provider": p,
        "message_id": message_id,
        "provider_message_id": provider_id,
    }
    events: list[DeliveryEvent] = []
    when = _when(section.get("timestamp") or mail.get("timestamp"))
    if kind == "bounced":
        btype: Any = "hard" if _str(section.get("bounceType")) == "Permanent" else "soft"
        for r in section.get("bouncedRecipients") or []:
            if not isinstance(r, dict) or not _str(r.get("emailAddress")):
                continue
            diag = _str(r.get("diagnosticCode"))
            events.append(
                DeliveryEvent(
                    kind=kind,
                    recipient=r["emailAddress"],
                    timestamp=when,
                    bounce=btype,
                    reason=diag or _str(section.get("bounceSubType")),
                    smtp_code=_code(diag),
                    status=_opt(r.get("status")) or _status(diag),
                    raw=inner,
                    **base,
                )
            )
    elif kind == "complained":
        for r in section.get("complainedRecipients") or []:
            if isinstance(r, dict) and _str(r.get("emailAddress")):
                events.append(
                    DeliveryEvent(
                        kind=kind,
                        recipient=r["emailAddress"],
                        timestamp=when,
                        reason=_str(section.get("complaintFeedbackType")),
                        raw=inner,
                        **base,
                    )
                )
    elif kind == "deferred":
        for r in section.get("delayedRecipients") or []:
            if isinstance(r, dict) and _str(r.get("emailAddress")):
                diag = _str(r.get("diagnosticCode"))
                events.append(
                    DeliveryEvent(
                        kind=kind,
                        recipient=r["emailAddress"],
                        timestamp=when,
                        reason=diag,
                        smtp_code=_code(diag),
                        status=_opt(r.get("status")),
                        raw=inner,
                        **base,
                    )
                )
    else:
        recipients = section.get("recipients") if kind == "delivered" else mail.get("destination")
        reason = _str(section.get("smtpResponse")) or _str(section.get("reason"))
        for r in _recipients(recipients):
            events.append(
                DeliveryEvent(
                    kind=kind,
                    recipient=r,
                    timestamp=when,
                    reason=reason,
                    smtp_code=_code(reason),
                    raw=inner,
                    **base,
                )
            )
    return events


# -- Brevo ------------------------------------------------------------------------------

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


_Parser = Callable[[dict[str, str], bytes, WebhookConfig, float], list[DeliveryEvent]]
_PARSERS: dict[str, _Parser] = {
    "brevo": _brevo,
    "mailgun": _mailgun,
    "postmark": _postmark,
    "resend": _resend,
    "sendgrid": _sendgrid,
    "sequenzy": _sequenzy,
    "ses": _ses,
}
PROVIDERS: tuple[str, ...] = tuple(sorted(_PARSERS))


def parse(
    provider: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    config: WebhookConfig | None = None,
    *,
    now: float | None = None,
) -> list[DeliveryEvent]:
    """Verify one webhook request from ``provider`` and return its events.

    ``headers`` are the request headers (any case); ``body`` the raw bytes as received,
    never re-serialized. Raises :class:`WebhookRejected` (``.status`` 400 or 401) for
    anything unsigned, tampered, stale, malformed or larger than ``config.max_body``; never
    any other exception for any body. Events of kinds mailpost does not model are skipped.
    """
    parser = _PARSERS.get(provider)
    if parser is None:
        raise ValueError(f"unknown webhook provider {provider!r}; expected one of {PROVIDERS}")
    cfg = config or WebhookConfig()
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise _reject(provider, "body must be bytes")
    body = bytes(body)
    if len(body) > cfg.max_body:
        raise _reject(provider, f"body larger than {cfg.max_body} bytes")
    if not body:
        raise _reject(provider, "empty body")
    when = time.time() if now is None else now
    try:
        return parser(_lower(headers), body, cfg, when)
    except WebhookRejected:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise _reject(provider, f"malformed payload ({type(exc).__name__})") from None
