"""Build webhook requests signed the way each provider documents, with test keys."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from helpers import self_signed_pem
from mailpost.events import WebhookConfig
from mailpost.events.webhooks import sns_string_to_sign

SVIX_SECRET = "whsec_" + base64.b64encode(b"test-secret-for-svix-0123456789").decode()
MAILGUN_KEY = "key-test-mailgun-signing"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_PUBLIC = base64.b64encode(
    EC_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"


CERT_PEM = self_signed_pem(RSA_KEY, "sns.test")


def cert_loader(url: str) -> bytes:
    if url != CERT_URL:
        raise LookupError(f"no test certificate at {url}")
    return CERT_PEM


CONFIGS = {
    "resend": WebhookConfig(secret=SVIX_SECRET),
    "sequenzy": WebhookConfig(secret=SVIX_SECRET),
    "sendgrid": WebhookConfig(public_key=EC_PUBLIC),
    "postmark": WebhookConfig(username="hook", password="s3cret"),
    "mailgun": WebhookConfig(secret=MAILGUN_KEY),
    "ses": WebhookConfig(certificate_loader=cert_loader),
    "brevo": WebhookConfig(token="brevo-token"),
}


def svix(
    body: bytes,
    *,
    secret: str = SVIX_SECRET,
    ts: float | None = None,
    msg_id: str = "msg_2abc",
    prefix: str = "svix-",
) -> dict[str, str]:
    stamp = str(int(time.time() if ts is None else ts))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(
        hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    )
    return {
        prefix + "id": msg_id,
        prefix + "timestamp": stamp,
        prefix + "signature": "v1,bogus v1," + sig.decode(),
    }


def sendgrid_headers(body: bytes, *, key: Any = EC_KEY, ts: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if ts is None else ts))
    sig = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def mailgun_body(
    event_data: dict[str, Any], *, key: str = MAILGUN_KEY, ts: float | None = None
) -> bytes:
    stamp = str(int(time.time() if ts is None else ts))
    token = "a" * 50
    sig = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": stamp, "token": token, "signature": sig},
            "event-data": event_data,
        }
    ).encode()


def sns_body(
    message: dict[str, Any],
    *,
    key: Any = RSA_KEY,
    ts: dt.datetime | None = None,
    version: str = "1",
    cert_url: str = CERT_URL,
) -> bytes:
    when = ts or dt.datetime.now(dt.timezone.utc)
    env = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
        "Message": json.dumps(message),
        "Timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
    }
    algo = hashes.SHA1() if version == "1" else hashes.SHA256()
    env["Signature"] = base64.b64encode(
        key.sign(sns_string_to_sign(env), padding.PKCS1v15(), algo)
    ).decode()
    return json.dumps(env).encode()


# -- sample payloads, shaped as each provider's docs show them ---------------------------

RESEND_BOUNCE = {
    "type": "email.bounced",
    "created_at": "2026-12-06T12:00:00.000Z",
    "data": {
        "created_at": "2026-12-06T11:59:58.000Z",
        "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
        "from": "Acme <onboarding@example.com>",
        "to": ["bounced@example.net"],
        "subject": "Sending this example",
        "headers": [{"name": "Message-ID", "value": "<abc.123@mail.example.com>"}],
        "bounce": {
            "message": "550 5.1.1 The email account does not exist.",
            "subType": "Suppressed",
            "type": "Permanent",
        },
    },
}
SENDGRID_EVENTS = [
    {
        "email": "bounced@example.net",
        "timestamp": 1765000000,
        "smtp-id": "<abc.123@mail.example.com>",
        "event": "bounce",
        "category": ["cat"],
        "sg_event_id": "x",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "reason": "500 unknown recipient",
        "status": "5.0.0",
        "type": "bounce",
    },
    {
        "email": "ann@example.net",
        "timestamp": 1765000000,
        "event": "delivered",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "response": "250 OK",
    },
]
POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "MessageStream": "outbound",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Description": "The server was unable to deliver your message "
    "(ex: unknown user, mailbox not found).",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    "Email": "bounced@example.net",
    "From": "sender@example.com",
    "BouncedAt": "2026-12-06T12:00:00Z",
}
MAILGUN_FAILED = {
    "event": "failed",
    "severity": "permanent",
    "reason": "bounce",
    "recipient": "bounced@example.net",
    "timestamp": 1765000000.5,
    "id": "CPgfbmQMTCKtHW6uIWtuVe",
    "message": {"headers": {"message-id": "20261206.abc@mg.example.com"}},
    "delivery-status": {
        "code": 550,
        "message": "5.1.1 No such user",
        "description": "No such user",
    },
}
SES_BOUNCE = {
    "eventType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "bounced@example.net",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2026-12-06T12:00:00.000Z",
        "feedbackId": "0100",
    },
    "mail": {
        "timestamp": "2026-12-06T11:59:59.000Z",
        "messageId": "EXAMPLE7c191be45-e9aedb9a",
        "destination": ["bounced@example.net"],
        "commonHeaders": {"messageId": "<abc.123@mail.example.com>"},
    },
}
BREVO_HARD = {
    "event": "hard_bounce",
    "email": "bounced@example.net",
    "id": 26224,
    "date": "2026-12-06 13:00:00",
    "ts": 1765000000,
    "message-id": "<abc.123@mail.example.com>",
    "ts_event": 1765000000,
    "subject": "Hi",
    "reason": "550 5.1.1 user unknown",
}


def signed(provider: str, *, kind: str = "bounce") -> tuple[dict[str, str], bytes]:
    """A correctly signed bounce request for ``provider``."""
    if provider in ("resend", "sequenzy"):
        body = json.dumps(RESEND_BOUNCE).encode()
        return svix(body, prefix="svix-" if provider == "resend" else "webhook-"), body
    if provider == "sendgrid":
        body = json.dumps(SENDGRID_EVENTS).encode()
        return sendgrid_headers(body), body
    if provider == "postmark":
        return basic("hook", "s3cret"), json.dumps(POSTMARK_BOUNCE).encode()
    if provider == "mailgun":
        return {}, mailgun_body(MAILGUN_FAILED)
    if provider == "ses":
        return {"x-amz-sns-message-type": "Notification"}, sns_body(SES_BOUNCE)
    if provider == "brevo":
        return {"Authorization": "Bearer brevo-token"}, json.dumps(BREVO_HARD).encode()
    raise AssertionError(provider)
