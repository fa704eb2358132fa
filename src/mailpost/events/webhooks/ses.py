"""Amazon SES through SNS: the SNS message signature, checked with the certificate at a
verified ``SigningCertURL``, then the SES event inside ``Message``."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from mailpost.events.model import DeliveryEvent, Kind
from mailpost.events.webhooks._common import (
    WebhookConfig,
    _code,
    _dict,
    _json,
    _msgid,
    _need_crypto,
    _obj,
    _opt,
    _recipients,
    _reject,
    _status,
    _str,
    _when,
)

_SNS_CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")

_SNS_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _SNS_CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": _SNS_CONFIRMATION_FIELDS,
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
