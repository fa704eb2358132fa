"""Webhook verification and normalization for every provider (mailpost.events.parse)."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import random
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from events_signing import (
    CONFIGS,
    MAILGUN_FAILED,
    RESEND_BOUNCE,
    SES_BOUNCE,
    mailgun_body,
    sendgrid_headers,
    signed,
    sns_body,
    svix,
)
from mailpost.events import PROVIDERS, WebhookConfig, WebhookRejected, parse


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signed_bounce_is_a_hard_bounce_for_the_address(provider: str) -> None:
    headers, body = signed(provider)
    events = parse(provider, headers, body, CONFIGS[provider])
    bounce = events[0]
    assert bounce.kind == "bounced"
    assert bounce.bounce == "hard"
    assert bounce.recipient == "bounced@example.net"
    assert bounce.provider == provider
    assert bounce.permanent
    assert bounce.timestamp.tzinfo is not None


def test_resend_event_carries_both_message_ids_and_the_smtp_code() -> None:
    headers, body = signed("resend")
    (e,) = parse("resend", headers, body, CONFIGS["resend"])
    assert e.message_id == "abc.123@mail.example.com"
    assert e.provider_message_id == "56761188-7520-42d8-8898-ff6fc54ce618"
    assert e.smtp_code == 550
    assert e.status == "5.1.1"
    assert e.raw["type"] == "email.bounced"


def test_sendgrid_array_gives_one_event_per_entry() -> None:
    headers, body = signed("sendgrid")
    events = parse("sendgrid", headers, body, CONFIGS["sendgrid"])
    assert [e.kind for e in events] == ["bounced", "delivered"]
    assert events[0].message_id == "abc.123@mail.example.com"
    assert events[0].provider_message_id == "14c5d75ce93"


def test_ses_bounce_uses_the_common_headers_message_id() -> None:
    headers, body = signed("ses")
    (e,) = parse("ses", headers, body, CONFIGS["ses"])
    assert e.message_id == "abc.123@mail.example.com"
    assert e.provider_message_id == "EXAMPLE7c191be45-e9aedb9a"
    assert e.status == "5.1.1"


def test_ses_signature_version_2_is_accepted() -> None:
    body = sns_body(SES_BOUNCE, version="2")
    assert parse("ses", {}, body, CONFIGS["ses"])[0].kind == "bounced"


def test_mailgun_temporary_failure_is_deferred_not_bounced() -> None:
    body = mailgun_body({**MAILGUN_FAILED, "severity": "temporary"})
    (e,) = parse("mailgun", {}, body, CONFIGS["mailgun"])
    assert e.kind == "deferred"


def test_resend_soft_bounce_and_complaint() -> None:
    payload = json.loads(json.dumps(RESEND_BOUNCE))
    payload["data"]["bounce"]["type"] = "Transient"
    body = json.dumps(payload).encode()
    assert parse("resend", svix(body), body, CONFIGS["resend"])[0].bounce == "soft"
    payload["type"] = "email.complained"
    body = json.dumps(payload).encode()
    assert parse("resend", svix(body), body, CONFIGS["resend"])[0].kind == "complained"


def test_unknown_event_types_are_skipped_not_rejected() -> None:
    body = json.dumps({"type": "contact.created", "data": {}}).encode()
    assert parse("resend", svix(body), body, CONFIGS["resend"]) == []


# -- rejections ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unsigned_request_is_rejected_with_401(provider: str) -> None:
    _, body = signed(provider)
    if provider == "mailgun":
        data = json.loads(body)
        del data["signature"]
        body = json.dumps(data).encode()
    if provider == "ses":
        data = json.loads(body)
        del data["Signature"]
        body = json.dumps(data).encode()
    with pytest.raises(WebhookRejected) as info:
        parse(provider, {}, body, CONFIGS[provider])
    assert info.value.status == 401


def _tamper(provider: str, body: bytes) -> bytes:
    return body.replace(b"bounced@example.net", b"victim@example.org")


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p not in ("postmark", "brevo")])
def test_tampered_body_is_rejected(provider: str) -> None:
    headers, body = signed(provider)
    tampered = _tamper(provider, body)
    if provider == "mailgun":  # the Mailgun signature covers timestamp+token only; tamper those
        data = json.loads(body)
        data["signature"]["token"] = "b" * 50
        tampered = json.dumps(data).encode()
    assert tampered != body
    with pytest.raises(WebhookRejected) as info:
        parse(provider, headers, tampered, CONFIGS[provider])
    assert info.value.status == 401


WRONG = {
    "resend": WebhookConfig(secret="whsec_" + "d3Jvbmc="),
    "sequenzy": WebhookConfig(secret="whsec_" + "d3Jvbmc="),
    "sendgrid": WebhookConfig(
        public_key=__import__("base64")
        .b64encode(
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                __import__(
                    "cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]
                ).Encoding.DER,
                __import__(
                    "cryptography.hazmat.primitives.serialization", fromlist=["PublicFormat"]
                ).PublicFormat.SubjectPublicKeyInfo,
            )
        )
        .decode()
    ),
    "postmark": WebhookConfig(username="hook", password="other"),
    "mailgun": WebhookConfig(secret="another-key"),
    "brevo": WebhookConfig(token="other-token"),
}


@pytest.mark.parametrize("provider", sorted(WRONG))
def test_wrong_key_is_rejected(provider: str) -> None:
    headers, body = signed(provider)
    with pytest.raises(WebhookRejected) as info:
        parse(provider, headers, body, WRONG[provider])
    assert info.value.status == 401


def test_ses_signed_with_another_key_is_rejected() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(WebhookRejected, match="signature"):
        parse("ses", {}, sns_body(SES_BOUNCE, key=other), CONFIGS["ses"])


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com/x.txt",
    ],
)
def test_ses_certificate_url_must_be_an_sns_host(url: str) -> None:
    loaded = []
    config = WebhookConfig(certificate_loader=lambda u: loaded.append(u) or b"")
    with pytest.raises(WebhookRejected, match="SigningCertURL"):
        parse("ses", {}, sns_body(SES_BOUNCE, cert_url=url), config)
    assert loaded == []  # never fetched


def test_replayed_resend_request_outside_the_window_is_rejected() -> None:
    body = json.dumps(RESEND_BOUNCE).encode()
    old = svix(body, ts=time.time() - 301)
    with pytest.raises(WebhookRejected, match="replay window") as info:
        parse("resend", old, body, CONFIGS["resend"])
    assert info.value.status == 400
    wider = WebhookConfig(secret=CONFIGS["resend"].secret, tolerance=600)
    assert parse("resend", old, body, wider)


def test_stale_sendgrid_mailgun_and_ses_requests_are_rejected() -> None:
    old = time.time() - 3600
    body = json.dumps([]).encode()
    with pytest.raises(WebhookRejected, match="replay"):
        parse("sendgrid", sendgrid_headers(body, ts=old), body, CONFIGS["sendgrid"])
    with pytest.raises(WebhookRejected, match="replay"):
        parse("mailgun", {}, mailgun_body(MAILGUN_FAILED, ts=old), CONFIGS["mailgun"])
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    with pytest.raises(WebhookRejected, match="replay"):
        parse("ses", {}, sns_body(SES_BOUNCE, ts=when), CONFIGS["ses"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_oversized_body_is_rejected_before_anything_else(provider: str) -> None:
    headers, body = signed(provider)
    small = WebhookConfig(max_body=len(body) - 1)
    with pytest.raises(WebhookRejected, match="larger than") as info:
        parse(provider, headers, body, small)
    assert info.value.status == 400


@pytest.mark.parametrize("provider", PROVIDERS)
def test_truncated_body_is_rejected(provider: str) -> None:
    headers, body = signed(provider)
    with pytest.raises(WebhookRejected):
        parse(provider, headers, body[: len(body) // 2], CONFIGS[provider])


def test_missing_configuration_is_a_rejection_not_a_crash() -> None:
    headers, body = signed("resend")
    with pytest.raises(WebhookRejected, match="no signing secret") as info:
        parse("resend", headers, body)
    assert info.value.status == 401


def test_unknown_provider_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'mailchimp'"):
        parse("mailchimp", {}, b"{}")


def test_rejection_pickles_and_config_repr_hides_secrets() -> None:
    exc = WebhookRejected("x", status=401, provider="resend")
    again = pickle.loads(pickle.dumps(exc))
    assert (again.status, again.provider, str(again)) == (401, "resend", "x")
    assert "whsec" not in repr(CONFIGS["resend"])
    assert "brevo-token" not in repr(CONFIGS["brevo"])


# -- fuzz ------------------------------------------------------------------------------


def _mutations(rng: random.Random, body: bytes) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    if choice == 1:
        return body[: rng.randrange(len(body) + 1)]
    if choice == 2:
        b = bytearray(body)
        for _ in range(rng.randrange(1, 5)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if choice == 3:
        values: list[object] = [None, 1, 1.5, "x", [], {}, True, [1, {"a": None}], "@"]
        return json.dumps(rng.choice(values)).encode()
    if choice == 4:
        return b"[" * rng.randrange(1, 3000)
    data = json.loads(body)
    if isinstance(data, dict) and data:
        key = rng.choice(list(data))
        data[key] = rng.choice([None, 0, "", [], {}, "x" * 3, [None]])
    return json.dumps(data).encode()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fuzz_parse_raises_only_webhook_rejected(provider: str) -> None:
    rng = random.Random(provider)
    headers, body = signed(provider)
    config = CONFIGS[provider]
    # Most fuzzed bodies fail the signature; also fuzz what follows a good signature by
    # re-signing where the scheme signs the body (Svix, SendGrid).
    for i in range(10_000):
        fuzzed = _mutations(rng, body)
        h = headers
        if provider in ("resend", "sequenzy") and i % 2:
            h = svix(fuzzed, prefix="svix-" if provider == "resend" else "webhook-")
        elif provider == "sendgrid" and i % 20 == 0:
            h = sendgrid_headers(fuzzed)
        try:
            parse(provider, h, fuzzed, config)
        except WebhookRejected:
            pass


@pytest.mark.parametrize(
    ("pm_type", "kind", "bounce"),
    [
        ("HardBounce", "bounced", "hard"),
        ("SoftBounce", "bounced", "soft"),
        ("Transient", "bounced", "soft"),
        ("Blocked", "bounced", "soft"),
        ("SpamComplaint", "complained", None),
    ],
)
def test_postmark_bounce_types(pm_type: str, kind: str, bounce: str | None) -> None:
    from events_signing import POSTMARK_BOUNCE, basic

    body = json.dumps({**POSTMARK_BOUNCE, "Type": pm_type}).encode()
    (e,) = parse("postmark", basic("hook", "s3cret"), body, CONFIGS["postmark"])
    assert (e.kind, e.bounce) == (kind, bounce)
