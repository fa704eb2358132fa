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

import time
from collections.abc import Callable, Iterable, Mapping

from mailpost.events.model import DeliveryEvent, WebhookRejected
from mailpost.events.webhooks._common import (
    DEFAULT_MAX_BODY,
    DEFAULT_TOLERANCE,
    CertificateLoader,
    WebhookConfig,
    _lower,
    _reject,
)
from mailpost.events.webhooks.brevo import _brevo
from mailpost.events.webhooks.mailgun import _mailgun
from mailpost.events.webhooks.postmark import _postmark
from mailpost.events.webhooks.sendgrid import _sendgrid
from mailpost.events.webhooks.ses import _ses
from mailpost.events.webhooks.ses import check_sns_cert_url as check_sns_cert_url
from mailpost.events.webhooks.ses import sns_string_to_sign as sns_string_to_sign
from mailpost.events.webhooks.svix import _resend, _sequenzy

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_TOLERANCE",
    "PROVIDERS",
    "CertificateLoader",
    "WebhookConfig",
    "parse",
]


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
