"""HTTP email-API backends against local fakes of each provider's documented API."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from email.message import MIMEPart
from pathlib import Path
from typing import Any

import pytest

import mailpost
from backend_contract import BackendContract, Delivered, make_message, parse
from http_fakes import API_KEY, MAILGUN_DOMAIN, SES_SECRET, FakeProvider, Fault, start_fake
from mailpost import DeliveryError, EmailMultiAlternatives
from mailpost.backends.http import ProviderExtras, UnsupportedFeature
from mailpost.backends.http._parts import classify, message_parts, parse_retry_after

PROVIDERS = {
    "resend": "mailpost.backends.resend.EmailBackend",
    "sendgrid": "mailpost.backends.sendgrid.EmailBackend",
    "postmark": "mailpost.backends.postmark.EmailBackend",
    "brevo": "mailpost.backends.brevo.EmailBackend",
    "ses": "mailpost.backends.ses.EmailBackend",
    "mailgun": "mailpost.backends.mailgun.EmailBackend",
}
ALL_BACKENDS = {**PROVIDERS, "sequenzy": "mailpost.backends.sequenzy.EmailBackend"}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> Iterator[FakeProvider]:
    fake, server = start_fake(request.param)
    yield fake
    server.shutdown()
    server.server_close()


def configure(fake: FakeProvider, alias: str = "contract", **options: Any) -> Any:
    opts = {"api_key": API_KEY, "base_url": fake.url, "timeout": 5.0, **options}
    if fake.name == "ses":  # SigV4 credentials instead of one key
        opts["access_key_id"] = opts.pop("api_key")
        opts.setdefault("secret_access_key", SES_SECRET)
    if fake.name == "mailgun":
        opts.setdefault("domain", MAILGUN_DOMAIN)
    mailpost.configure(MAILERS={alias: {"BACKEND": ALL_BACKENDS[fake.name], "OPTIONS": opts}})
    return mailpost.mailers[alias]


class TestHTTPContract(BackendContract):
    @pytest.fixture
    def make_backend(self, provider: FakeProvider) -> Callable[..., Any]:
        return lambda **options: configure(provider, **options)

    @pytest.fixture
    def delivered(self, provider: FakeProvider) -> Callable[[], list[Delivered]]:
        return lambda: list(provider.accepted)


# -- results and classification ---------------------------------------------------------


def test_accepted_message_records_provider_id_and_every_recipient(provider: FakeProvider) -> None:
    msg = make_message(1, cc=["c@example.com"], bcc=["b@example.com"])
    assert configure(provider).send_messages([msg]) == 1
    result = msg.delivery
    assert result.ok
    assert sorted(result.accepted) == ["b@example.com", "c@example.com", "rcpt-1@example.com"]
    assert result.provider_message_id
    assert result.message_id
    assert result.message_id.startswith("<")


def test_wrong_api_key_is_a_mailer_problem_not_attempted(provider: FakeProvider) -> None:
    msg = make_message(1)
    with pytest.raises(DeliveryError) as info:
        configure(provider, api_key="wrong").send_messages([msg])
    assert msg.delivery.attempted is False
    assert msg.delivery.retryable is True
    assert not msg.delivery.sent
    assert info.value.retryable
    assert "wrong" not in str(info.value)
    assert provider.accepted == []


def test_validation_error_is_permanent_with_the_providers_text(provider: FakeProvider) -> None:
    msg = make_message(1, to=[f"r{i}@example.com" for i in range(1001)])
    with pytest.raises(DeliveryError):
        configure(provider).send_messages([msg])
    assert msg.delivery.retryable is False
    assert msg.delivery.attempted is True
    assert msg.delivery.error_code == 550
    assert msg.delivery.response is not None
    assert msg.delivery.response[0] in (400, 422)
    assert "recipient" in msg.delivery.error.lower() or "50" in msg.delivery.error


def test_429_is_retryable_and_carries_retry_after(provider: FakeProvider) -> None:
    provider.faults.append(Fault("429", retry_after="7"))
    msg = make_message(1)
    with pytest.raises(DeliveryError) as info:
        configure(provider).send_messages([msg])
    assert msg.delivery.retryable
    assert msg.delivery.retry_after == 7.0
    assert info.value.retryable


@pytest.mark.parametrize("kind", ["500", "reset"])
def test_server_error_and_reset_connection_are_retryable(provider: FakeProvider, kind: str) -> None:
    provider.faults.append(Fault(kind))
    msg = make_message(1)
    with pytest.raises(DeliveryError):
        configure(provider).send_messages([msg])
    assert msg.delivery.retryable
    assert not msg.delivery.sent


def test_slow_reply_times_out_retryably(provider: FakeProvider) -> None:
    provider.faults.append(Fault("slow", delay=1.5))
    msg = make_message(1)
    with pytest.raises(DeliveryError, match="timed out"):
        configure(provider, timeout=0.3).send_messages([msg])
    assert msg.delivery.retryable


@pytest.mark.parametrize("name", ["resend", "postmark"])  # SendGrid's 202 has no body
def test_malformed_json_on_success_is_still_sent(name: str) -> None:
    fake, server = start_fake(name)
    try:
        fake.faults.append(Fault("malformed"))
        msg = make_message(1)
        assert configure(fake).send_messages([msg]) == 1
        assert msg.delivery.sent
        assert msg.delivery.provider_message_id is None
    finally:
        server.shutdown()
        server.server_close()


def test_connection_refused_is_retryable_and_not_attempted() -> None:
    mailpost.configure(
        MAILERS={
            "x": {
                "BACKEND": PROVIDERS["resend"],
                "OPTIONS": {"api_key": API_KEY, "base_url": "http://127.0.0.1:9", "timeout": 2},
            }
        }
    )
    msg = make_message(1)
    with pytest.raises(DeliveryError):
        mailpost.mailers["x"].send_messages([msg])
    assert msg.delivery.retryable
    assert msg.delivery.attempted is False


def test_a_failed_message_does_not_stop_the_batch(provider: FakeProvider) -> None:
    provider.faults.append(Fault("500"))
    messages = [make_message(1), make_message(2), make_message(3)]
    with pytest.raises(DeliveryError) as info:
        configure(provider, max_connections=1, batch=False).send_messages(messages)
    assert [m.delivery.sent for m in messages] == [False, True, True]
    assert len(info.value.failed) == 1
    assert configure(provider, fail_silently=True).send_messages([make_message(4)]) == 1


def test_concurrent_batch_sends_every_message(provider: FakeProvider) -> None:
    messages = [make_message(n) for n in range(20)]
    assert configure(provider, max_connections=8).send_messages(messages) == 20
    assert (
        asyncio.run(
            configure(provider, max_connections=8).asend_messages(
                [make_message(n) for n in range(20, 40)]
            )
        )
        == 20
    )
    assert len(provider.accepted) == 40


def test_postmark_batch_reports_each_message_on_its_own() -> None:
    fake, server = start_fake("postmark")
    try:
        messages = [make_message(n) for n in range(5)]
        messages[2].to = [f"r{i}@example.com" for i in range(60)]  # over Postmark's 50
        with pytest.raises(DeliveryError) as info:
            configure(fake).send_messages(messages)
        assert [r.path for r in fake.requests] == ["/email/batch"]
        assert [m.delivery.sent for m in messages] == [True, True, False, True, True]
        assert messages[2].delivery.retryable is False
        assert "ErrorCode 300" in messages[2].delivery.error
        assert len({m.delivery.provider_message_id for m in messages if m.delivery.sent}) == 4
        assert len(info.value.failed) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_resend_batches_what_it_can_and_sends_attachments_alone() -> None:
    fake, server = start_fake("resend")
    try:
        messages = [make_message(n) for n in range(4)]
        messages[1].attach("a.txt", "hello", "text/plain")
        assert asyncio.run(configure(fake).asend_messages(messages)) == 4
        assert sorted(r.path for r in fake.requests) == ["/emails", "/emails/batch"]
        batch = next(r for r in fake.requests if r.path == "/emails/batch")
        assert len(batch.body) == 3
        assert batch.headers["idempotency-key"].startswith("batch-")
        assert all(m.delivery.provider_message_id for m in messages)
    finally:
        server.shutdown()
        server.server_close()


def test_a_batch_level_failure_fails_every_message_in_it_retryably() -> None:
    fake, server = start_fake("postmark")
    try:
        fake.faults.append(Fault("500"))
        messages = [make_message(n) for n in range(3)]
        with pytest.raises(DeliveryError) as info:
            configure(fake).send_messages(messages)
        assert info.value.retryable
        assert not any(m.delivery.sent for m in messages)
    finally:
        server.shutdown()
        server.server_close()


def test_async_reports_failures_like_sync(provider: FakeProvider) -> None:
    provider.faults.append(Fault("429", retry_after="2"))
    msg = make_message(1)
    with pytest.raises(DeliveryError):
        asyncio.run(configure(provider, max_connections=1).asend_messages([msg]))
    assert msg.delivery.retry_after == 2.0


# -- mapping ---------------------------------------------------------------------------------


def inline_image() -> MIMEPart:
    logo = MIMEPart()
    logo.set_content(b"\x89PNG", maintype="image", subtype="png", cid="<logo>")
    return logo


def rich_message() -> EmailMultiAlternatives:
    msg = EmailMultiAlternatives(
        "Rich",
        "plain text",
        "Ann Lee <ann@example.com>",
        ["to@example.com"],
        cc=["cc@example.com"],
        bcc=["bcc@example.com"],
        reply_to=["reply@example.com"],
        headers={"X-Campaign": "spring"},
    )
    msg.attach_alternative("<p>html <img src='cid:logo'></p>", "text/html")
    msg.attach("report.pdf", b"%PDF-1.4", "application/pdf")
    msg.attach(inline_image())
    return msg


def _body(provider: FakeProvider) -> Any:
    [seen] = provider.requests
    return seen.body, seen.headers


def test_every_part_reaches_the_provider_fields(provider: FakeProvider) -> None:
    msg = rich_message()
    if provider.name == "brevo":  # no cid images on Brevo: tested to raise below
        msg.attachments.pop()
    assert configure(provider).send_messages([msg]) == 1
    body, headers = _body(provider)
    text = str(body)
    if provider.name in ("ses", "mailgun"):  # raw MIME: every part is in the message itself
        if provider.name == "ses":
            raw = base64.b64decode(body["Content"]["Raw"]["Data"])
            text = raw.decode("ascii") + str(body["Destination"])
        else:
            raw = provider.accepted[0].data
            text = raw.decode("ascii") + str(provider.accepted[0].recipients)
        assert b"bcc@example.com" not in raw
        assert b"Content-ID: <logo>" in raw
    for needle in (
        "to@example.com",
        "cc@example.com",
        "bcc@example.com",
        "reply@example.com",
        "plain text",
        "<p>html",
        "X-Campaign",
        "spring",
        "report.pdf",
        base64.b64encode(b"%PDF-1.4").decode(),
        msg.delivery.message_id,
        "Ann Lee",
    ):
        assert needle in text, needle
    if provider.name != "brevo":
        assert "logo" in text
    if provider.name == "resend":
        assert headers["idempotency-key"] == msg.delivery.message_id
        assert body["attachments"][1]["content_id"] == "logo"
    if provider.name == "sendgrid":
        assert body["attachments"][1]["disposition"] == "inline"
        assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    if provider.name == "postmark":
        assert body["Attachments"][1]["ContentID"] == "cid:logo"


def test_brevo_refuses_inline_images_before_sending() -> None:
    fake, server = start_fake("brevo")
    try:
        with pytest.raises(UnsupportedFeature, match="Brevo cannot send inline"):
            configure(fake).send_messages([rich_message()])
        assert fake.requests == []
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("name", ["resend", "brevo"])
def test_retry_with_same_message_id_is_not_delivered_twice(name: str) -> None:
    fake, server = start_fake(name)
    try:
        msg = make_message(
            1, headers={"Message-ID": mailpost.make_msgid()}
        )  # as the spool keeps it
        backend = configure(fake)
        backend.send_messages([msg])
        first = msg.delivery.provider_message_id
        backend.send_messages([msg])  # same Message-ID: a retry after a lost reply
        assert msg.delivery.provider_message_id == first
        assert len(fake.accepted) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_extras_map_to_provider_fields(provider: FakeProvider) -> None:
    msg = make_message(1)
    extras: dict[str, Any] = {"tags": ("welcome",), "metadata": {"user": "42"}}
    if provider.name == "sendgrid":
        extras |= {"track_opens": False, "send_at": datetime(2030, 1, 1, tzinfo=timezone.utc)}
    if provider.name == "postmark":
        extras |= {"track_clicks": True, "stream": "outbound"}
    if provider.name == "brevo":
        extras |= {"send_at": datetime(2030, 1, 1, tzinfo=timezone.utc)}
    msg.provider_extras = ProviderExtras(**extras)  # type: ignore[attr-defined]
    assert configure(provider).send_messages([msg]) == 1
    body, _ = _body(provider)
    if provider.name == "resend":
        assert {"name": "user", "value": "42"} in body["tags"]
    elif provider.name == "sendgrid":
        assert body["categories"] == ["welcome"]
        assert body["custom_args"] == {"user": "42"}
        assert body["tracking_settings"]["open_tracking"] == {"enable": False}
        assert body["send_at"] == 1893456000
    elif provider.name == "mailgun":
        [seen] = provider.requests
        assert seen.body is None  # multipart form, checked by the fake
        assert provider.accepted[0].recipients == ["rcpt-1@example.com"]
    elif provider.name == "ses":
        assert body["EmailTags"] == [
            {"Name": "welcome", "Value": "true"},
            {"Name": "user", "Value": "42"},
        ]
    elif provider.name == "brevo":
        assert body["tags"] == ["welcome"]
        assert body["headers"]["X-Mailin-custom"] == '{"user":"42"}'
        assert body["scheduledAt"] == "2030-01-01T00:00:00+00:00"
    else:
        assert body["Tag"] == "welcome"
        assert body["Metadata"] == {"user": "42"}
        assert body["TrackLinks"] == "HtmlAndText"
        assert body["MessageStream"] == "outbound"


@pytest.mark.parametrize(
    ("name", "extras", "feature"),
    [
        ("resend", {"track_opens": True}, "tracking"),
        ("postmark", {"send_at": datetime(2030, 1, 1, tzinfo=timezone.utc)}, "scheduled"),
        ("postmark", {"tags": ("a", "b")}, "more than one tag"),
        ("sendgrid", {"stream": "x"}, "stream"),
        ("brevo", {"track_clicks": False}, "tracking"),
        ("sequenzy", {"tags": ("a",)}, "tags"),
        ("sequenzy", {"send_at": datetime(2030, 1, 1, tzinfo=timezone.utc)}, "scheduled"),
    ],
)
def test_an_extra_the_provider_cannot_honour_raises_before_sending(
    name: str, extras: dict[str, Any], feature: str
) -> None:
    fake, server = start_fake(name)
    try:
        msg = make_message(1)
        msg.provider_extras = ProviderExtras(**extras)  # type: ignore[attr-defined]
        with pytest.raises(UnsupportedFeature, match=feature) as info:
            configure(fake).send_messages([msg])
        assert info.value.provider.lower() == name
        assert fake.requests == []
    finally:
        server.shutdown()
        server.server_close()


def test_a_non_html_alternative_raises_naming_the_feature(provider: FakeProvider) -> None:
    msg = EmailMultiAlternatives("s", "b", "a@example.com", ["b@example.com"])
    msg.attach_alternative("BEGIN:VCALENDAR", "text/calendar")
    with pytest.raises(UnsupportedFeature, match="text/calendar"):
        configure(provider).send_messages([msg])
    assert provider.requests == []


def test_a_to_header_override_raises_instead_of_being_dropped(provider: FakeProvider) -> None:
    msg = make_message(1, headers={"To": "shown@example.com"})
    with pytest.raises(UnsupportedFeature, match="To header"):
        configure(provider).send_messages([msg])


# -- configuration ------------------------------------------------------------------------


def test_unknown_option_is_rejected_by_name(provider: FakeProvider) -> None:
    with pytest.raises(mailpost.InvalidMailer, match="'api_kye'"):
        configure(provider, api_kye="x")


def test_missing_api_key_names_the_mailer() -> None:
    mailpost.configure(MAILERS={"mail": {"BACKEND": PROVIDERS["sendgrid"], "OPTIONS": {}}})
    with pytest.raises(mailpost.InvalidMailer, match=r"MAILERS\['mail'\].*api_key"):
        mailpost.mailers["mail"]


def test_repr_never_shows_the_api_key(provider: FakeProvider) -> None:
    assert API_KEY not in repr(configure(provider))


def test_send_mail_through_a_resend_mailers_entry() -> None:
    fake, server = start_fake("resend")
    try:
        mailpost.configure(
            MAILERS={
                "default": {
                    "BACKEND": "mailpost.backends.resend.EmailBackend",
                    "OPTIONS": {"api_key": API_KEY, "base_url": fake.url},
                }
            }
        )
        assert mailpost.send_mail("Hi", "Body", "a@example.com", ["b@example.com"]) == 1
        assert fake.accepted[0].recipients == ["b@example.com"]
    finally:
        server.shutdown()
        server.server_close()


_DJANGO_PROJECT = Path(__file__).resolve().parent / "djangoproject" / "project"
_SIGNUP_OUTSIDE_THE_TEST_RUNNER = """
import django, sys
django.setup()
from django.test import Client
reply = Client().post("/signup/", {"email": "ann@example.com"}, HTTP_HOST="localhost")
print(reply.status_code, reply.content.decode())
"""


def test_django_project_switched_to_resend_posts_outside_the_test_runner() -> None:
    # tests/djangoproject's mysite.settings_resend: the project whose default mailer moved
    # from SMTP to Resend by one MAILERS entry. Under manage.py test that mail is captured
    # (shop/tests_resend.py); run for real, the same settings post it to Resend.
    fake, server = start_fake("resend")
    try:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mysite.settings_resend",
            "SHOP_RESEND_URL": fake.url,
            "SHOP_RESEND_KEY": API_KEY,
            "PYTHONPATH": os.pathsep.join(
                [str(_DJANGO_PROJECT), str(Path(mailpost.__file__).resolve().parents[1])]
            ),
        }
        done = subprocess.run(
            [sys.executable, "-W", "error", "-c", _SIGNUP_OUTSIDE_THE_TEST_RUNNER],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["200", "sent", "1"]
        (request,) = fake.requests
        assert request.path == "/emails"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.body["to"] == ["ann@example.com"]
        assert request.body["from"] == "Shop <shop@example.com>"
        assert request.body["subject"] == "Welcome to the shop"
        (delivered,) = fake.accepted
        assert delivered.recipients == ["ann@example.com"]
    finally:
        server.shutdown()
        server.server_close()


def test_ses_mailer_url_carries_both_keys_and_the_region() -> None:
    from mailpost._urls import parse_mailer_url

    entry = parse_mailer_url("ses://AKID:se%2Fcret@eu-west-1", alias="m")
    assert entry == {
        "BACKEND": PROVIDERS["ses"],
        "OPTIONS": {"access_key_id": "AKID", "secret_access_key": "se/cret", "region": "eu-west-1"},
    }


def test_mailgun_form_carries_extras_as_documented_fields() -> None:
    from mailpost.backends.http.mailgun import mailgun_form

    msg = make_message(1, bcc=["b@example.com"])
    msg.provider_extras = ProviderExtras(  # type: ignore[attr-defined]
        tags=("t",), metadata={"user": "42"}, track_clicks=False
    )
    form = mailgun_form(message_parts(msg, "Mailgun"))
    assert [f for f in form if f[0] != "message"] == [
        ("to", "rcpt-1@example.com"),
        ("to", "b@example.com"),
        ("o:tag", "t"),
        ("v:user", "42"),
        ("o:tracking-clicks", "no"),
    ]
    assert b"b@example.com" not in dict(form)["message"]


def test_mailgun_needs_a_domain() -> None:
    mailpost.configure(
        MAILERS={"mg": {"BACKEND": PROVIDERS["mailgun"], "OPTIONS": {"api_key": "k"}}}
    )
    with pytest.raises(mailpost.InvalidMailer, match="'domain'"):
        mailpost.mailers["mg"]


@pytest.mark.parametrize("scheme", sorted(set(ALL_BACKENDS) - {"ses", "mailgun"}))
def test_mailer_url_builds_the_backend(scheme: str) -> None:
    from mailpost._urls import parse_mailer_url

    entry = parse_mailer_url(f"{scheme}://KEY%2F1@default?timeout=3", alias="m")
    assert entry == {
        "BACKEND": ALL_BACKENDS[scheme],
        "OPTIONS": {"api_key": "KEY/1", "timeout": 3.0},
    }
    entry = parse_mailer_url(f"{scheme}://KEY@127.0.0.1:8025", alias="m")
    assert entry["OPTIONS"] == {"api_key": "KEY", "base_url": "http://127.0.0.1:8025"}


def test_rate_limit_spaces_requests(provider: FakeProvider) -> None:
    started = time.monotonic()
    configure(provider, rate_limit=20.0, max_connections=4, batch=False).send_messages(
        [make_message(n) for n in range(6)]
    )
    assert time.monotonic() - started >= 0.2


# -- pure pieces ---------------------------------------------------------------------------


def test_classify_shares_one_meaning_across_providers() -> None:
    assert classify(202, {}, "").kind == "accepted"
    assert classify(422, {}, "").kind == "permanent"
    assert classify(400, {}, "").kind == "permanent"
    assert classify(401, {}, "").kind == "unauthorized"
    assert classify(403, {}, "").kind == "unauthorized"
    assert classify(503, {}, "").kind == "retryable"
    v = classify(429, {"retry-after": "12"}, "")
    assert (v.kind, v.retry_after) == ("retryable", 12.0)


def test_retry_after_accepts_an_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None


def test_reply_text_honours_the_charset_the_provider_names() -> None:
    import httpx

    from mailpost.backends.http._base import _read

    utf8 = '{"message":"adresse refusée"}'.encode()
    assert _read(httpx.Response(422, content=utf8), True) == (
        {"message": "adresse refusée"},
        '{"message":"adresse refusée"}',
    )
    typed = {"content-type": "application/json; charset=UTF-8"}
    assert _read(httpx.Response(422, headers=typed, content=utf8), True)[0] == {
        "message": "adresse refusée"
    }
    latin = {"content-type": "text/plain; charset=iso-8859-1"}
    body, text = _read(
        httpx.Response(400, headers=latin, content="refusée".encode("latin-1")), False
    )
    assert (body, text) == (None, "refusée")
    assert _read(httpx.Response(200, content=b"{not json"), True) == (None, "{not json")
    assert _read(httpx.Response(202, content=b""), True) == (None, "")


def test_message_parts_is_pure_and_validates_headers() -> None:
    parts = message_parts(rich_message(), "Test")
    assert parts.from_email == "Ann Lee <ann@example.com>"
    assert [a.content_id for a in parts.attachments] == [None, "logo"]
    assert b"bcc@example.com" not in parts.raw
    bad = make_message(1, subject="x\ny")
    with pytest.raises(ValueError, match="Subject"):
        message_parts(bad, "Test")


# -- Sequenzy: one HTML body, no custom headers ----------------------------------------------


class TestSequenzyContract(BackendContract):
    """The shared contract. Sequenzy's ``body`` is HTML only, so the text body arrives as
    escaped text in a pre-wrap block rather than as a text/plain part."""

    @pytest.fixture
    def fake(self) -> Iterator[FakeProvider]:
        fake, server = start_fake("sequenzy")
        yield fake
        server.shutdown()
        server.server_close()

    @pytest.fixture
    def make_backend(self, fake: FakeProvider) -> Callable[..., Any]:
        return lambda **options: configure(fake, **options)

    @pytest.fixture
    def delivered(self, fake: FakeProvider) -> Callable[[], list[Delivered]]:
        return lambda: list(fake.accepted)

    def test_delivered_bytes_parse_to_the_same_subject_body_and_recipients(
        self, make_backend: Callable[..., Any], delivered: Callable[[], list[Delivered]]
    ) -> None:
        msg = make_message(
            7,
            subject="Grüße aus Köln",
            body="Hallo <Welt> & \N{EM DASH} ü\nzweite Zeile\n",
            to=["a@example.com", "b@example.com"],
            cc=["c@example.com"],
        )
        assert make_backend().send_messages([msg]) == 1
        [one] = delivered()
        parsed = parse(one.data)
        assert parsed["Subject"] == "Grüße aus Köln"
        assert [a.addr_spec for a in parsed["To"].addresses] == ["a@example.com", "b@example.com"]
        assert [a.addr_spec for a in parsed["Cc"].addresses] == ["c@example.com"]
        assert parsed["From"].addresses[0].addr_spec == "sender@example.com"
        assert sorted(one.recipients) == ["a@example.com", "b@example.com", "c@example.com"]
        html_part = parsed.get_body(("html",))
        assert html_part is not None
        assert html_part.get_content().strip() == (
            '<div style="white-space:pre-wrap">'
            "Hallo &lt;Welt&gt; &amp; \N{EM DASH} ü\nzweite Zeile\n</div>"
        )


def test_sequenzy_maps_every_documented_field() -> None:
    fake, server = start_fake("sequenzy")
    try:
        msg = EmailMultiAlternatives(
            "s",
            "text",
            "Ann Lee <ann@example.com>",
            ["b@example.com"],
            cc=["c@example.com"],
            bcc=["d@example.com"],
            reply_to=["Help <help@example.com>"],
        )
        msg.attach_alternative("<b>html</b>", "text/html")
        msg.attach("a.csv", "x,y\n", "text/csv")
        assert configure(fake).send_messages([msg]) == 1
        assert fake.requests[0].path == "/api/v1/transactional/send"
        assert fake.requests[0].body == {
            "to": ["b@example.com"],
            "cc": ["c@example.com"],
            "bcc": ["d@example.com"],
            "from": "Ann Lee <ann@example.com>",
            "replyTo": "Help <help@example.com>",
            "subject": "s",
            "body": "<b>html</b>",
            "attachments": [{"filename": "a.csv", "content": base64.b64encode(b"x,y\n").decode()}],
        }
        assert msg.delivery.provider_message_id.startswith("job_")
        assert sorted(msg.delivery.accepted) == ["b@example.com", "c@example.com", "d@example.com"]

        templated = make_message(2)
        templated.provider_extras = ProviderExtras(  # type: ignore[attr-defined]
            template_id="welcome", template_data={"NAME": "Ann"}
        )
        assert configure(fake).send_messages([templated]) == 1
        body = fake.requests[1].body
        assert (body["slug"], body["variables"]) == ("welcome", {"NAME": "Ann"})
        assert "subject" not in body
        assert "body" not in body
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("change", "feature"),
    [
        (lambda m: m.extra_headers.update({"X-Campaign": "spring"}), "custom headers"),
        (lambda m: setattr(m, "reply_to", ["a@example.com", "b@example.com"]), "Reply-To"),
        (lambda m: setattr(m, "to", [f"r{n}@example.com" for n in range(51)]), "50 to"),
        (lambda m: m.attach(inline_image()), "inline images"),
    ],
)
def test_sequenzy_raises_for_what_its_api_cannot_carry(
    change: Callable[[Any], Any], feature: str
) -> None:
    fake, server = start_fake("sequenzy")
    try:
        msg = make_message(1)
        change(msg)
        with pytest.raises(UnsupportedFeature, match=feature):
            configure(fake).send_messages([msg])
        assert fake.requests == []
    finally:
        server.shutdown()
        server.server_close()


def test_capture_still_catches_mail_sent_through_a_provider_mailer() -> None:
    from mailpost.testing import capture

    fake, server = start_fake("resend")
    try:
        mailpost.configure(
            MAILERS={
                "default": {
                    "BACKEND": PROVIDERS["resend"],
                    "OPTIONS": {"api_key": API_KEY, "base_url": fake.url},
                }
            }
        )
        with capture() as outbox:
            mailpost.send_mail("Hi", "Body", "a@example.com", ["b@example.com"])
        assert [m.subject for m in outbox] == ["Hi"]
        assert fake.requests == []
    finally:
        server.shutdown()
        server.server_close()


# -- Amazon SES: SigV4 ------------------------------------------------------------------------


def test_sigv4_matches_awss_published_examples() -> None:
    import hashlib

    from mailpost.backends.http._sigv4 import sign

    # AWS General Reference, SigV4 test suite "get-vanilla".
    vanilla = sign(
        method="GET",
        path="/",
        headers={"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
        payload=b"",
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        service="service",
        amz_date="20150830T123600Z",
    )
    assert vanilla == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    # Amazon S3 API reference, "Signature Calculations for the Authorization Header",
    # example GET Object.
    empty = hashlib.sha256(b"").hexdigest()
    s3 = sign(
        method="GET",
        path="/test.txt",
        headers={
            "Host": "examplebucket.s3.amazonaws.com",
            "Range": "bytes=0-9",
            "x-amz-content-sha256": empty,
            "x-amz-date": "20130524T000000Z",
        },
        payload=b"",
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        service="s3",
        amz_date="20130524T000000Z",
    )
    assert s3.endswith("Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_ses_wrong_secret_is_a_mailer_problem() -> None:
    fake, server = start_fake("ses")
    try:
        msg = make_message(1)
        with pytest.raises(DeliveryError, match="SignatureDoesNotMatch"):
            configure(fake, secret_access_key="not-the-secret").send_messages([msg])
        assert msg.delivery.attempted is False
        assert "not-the-secret" not in msg.delivery.error
    finally:
        server.shutdown()
        server.server_close()


def test_ses_needs_its_secret() -> None:
    mailpost.configure(
        MAILERS={"aws": {"BACKEND": PROVIDERS["ses"], "OPTIONS": {"access_key_id": "AK"}}}
    )
    with pytest.raises(mailpost.InvalidMailer, match=r"MAILERS\['aws'\].*secret_access_key"):
        mailpost.mailers["aws"]


def test_mailgun_mailer_url_takes_the_domain() -> None:
    from mailpost._urls import parse_mailer_url

    entry = parse_mailer_url("mailgun://key-1@default?domain=mg.example.com", alias="m")
    assert entry["OPTIONS"] == {"api_key": "key-1", "domain": "mg.example.com"}


# -- under the spool -------------------------------------------------------------------------


def test_spool_retries_429_keeps_mail_on_401_and_dead_letters_422(
    tmp_path: pytest.TempPathFactory,
) -> None:
    from pathlib import Path

    from mailpost.spool import FakeClock, RetryPolicy, Spool, SQLiteStore

    fake, server = start_fake("resend")
    store = SQLiteStore(Path(str(tmp_path)) / "s.db")
    try:
        configure(fake, alias="resend")
        clock = FakeClock(1_000_000.0)
        spool = Spool(store, mailer="resend", clock=clock, policy=RetryPolicy(jitter=0))
        [busy, refused] = spool.enqueue(
            [make_message(1), make_message(2, to=[f"r{i}@example.com" for i in range(60)])]
        )
        fake.faults.append(Fault("429", retry_after="30"))
        spool.worker(sleep=clock.sleep).run(until_idle=True)
        states = {rid: spool.get(rid).state for rid in (busy, refused)}  # type: ignore[union-attr]
        assert states == {busy: "queued", refused: "dead"}

        configure(fake, alias="resend", api_key="rotated-away")
        clock.advance(3600)
        spool.worker(sleep=clock.sleep).run(until_idle=True)
        assert spool.get(busy).state == "queued"  # type: ignore[union-attr]

        configure(fake, alias="resend")
        clock.advance(3600)
        spool.worker(sleep=clock.sleep).run(until_idle=True)
        assert spool.get(busy).state == "sent"  # type: ignore[union-attr]
        assert [d.recipients for d in fake.accepted] == [["rcpt-1@example.com"]]
    finally:
        store.close()
        server.shutdown()
        server.server_close()


def test_a_spooled_message_is_taken_apart_from_its_stored_bytes() -> None:
    from mailpost.message import serialize
    from mailpost.spool.codec import SpooledMessage

    original = rich_message()
    data = serialize(original)
    # a retry for two recipients still pending: one To, one Bcc
    replay = SpooledMessage(data, "ann@example.com", ["to@example.com", "bcc@example.com"])
    parts = message_parts(replay, "Test")
    assert parts.to == ["to@example.com"]
    assert parts.cc == []  # cc@example.com was delivered before: not sent again
    assert parts.bcc == ["bcc@example.com"]
    assert parts.reply_to == ["reply@example.com"]
    assert parts.from_email == "Ann Lee <ann@example.com>"
    assert parts.subject == "Rich"
    assert parts.text is not None
    assert parts.text.strip() == "plain text"
    assert parts.html is not None
    assert parts.html.startswith("<p>html")
    assert sorted((a.filename or "", a.content_id or "") for a in parts.attachments) == [
        ("", "logo"),
        ("report.pdf", ""),
    ]
    assert parts.headers == {"X-Campaign": "spring"}
    assert parts.message_id is not None
    assert parts.message_id.encode() in data


def test_resend_same_key_with_a_different_payload_is_permanent() -> None:
    fake, server = start_fake("resend")
    try:
        msg = make_message(1, headers={"Message-ID": mailpost.make_msgid()})
        backend = configure(fake)
        backend.send_messages([msg])
        msg.body = "changed"
        with pytest.raises(DeliveryError, match="different request payload"):
            backend.send_messages([msg])
        assert msg.delivery.retryable is False
        assert len(fake.accepted) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_resend_same_key_while_the_first_is_in_flight_is_retryable_and_sent_once() -> None:
    # Resend "Idempotency Keys": 409 concurrent_idempotent_requests is safe to retry later;
    # the retry then gets the first request's reply and nothing is sent twice.
    from mailpost.backends.resend import EmailBackend as Resend

    fake, server = start_fake("resend")
    try:
        message_id = mailpost.make_msgid()
        first = make_message(1, headers={"Message-ID": message_id})
        twin = make_message(1, headers={"Message-ID": message_id})
        fake.faults.append(Fault("slow", delay=1.5))
        sender = threading.Thread(
            target=Resend(API_KEY, base_url=fake.url, timeout=5).send_messages, args=([first],)
        )
        sender.start()
        deadline = time.monotonic() + 5
        while not fake.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(DeliveryError, match="still in progress"):
            Resend(API_KEY, base_url=fake.url, timeout=5).send_messages([twin])
        assert twin.delivery.retryable is True
        assert twin.delivery.sent is False
        sender.join(timeout=10)
        assert first.delivery.ok

        assert Resend(API_KEY, base_url=fake.url, timeout=5).send_messages([twin]) == 1
        assert twin.delivery.provider_message_id == first.delivery.provider_message_id
        assert len(fake.accepted) == 1
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("name", "body", "kind"),
    [
        (
            "resend",
            {"name": "concurrent_idempotent_requests", "message": "in progress"},
            "retryable",
        ),
        ("resend", {"name": "invalid_idempotent_request", "message": "other payload"}, "permanent"),
        ("sequenzy", {"success": False, "error": "already exists"}, "permanent"),
        ("sendgrid", {"errors": [{"message": "conflict"}]}, "retryable"),
        ("postmark", {"ErrorCode": 0, "Message": "conflict"}, "retryable"),
        ("brevo", {"code": "conflict", "message": "conflict"}, "retryable"),
        ("mailgun", {"message": "conflict"}, "retryable"),
        ("ses", {"message": "conflict"}, "retryable"),
    ],
)
def test_409_means_what_each_provider_documents(name: str, body: Any, kind: str) -> None:
    # Only Resend (idempotency) and Sequenzy ("resource already exists") document a 409 for
    # sending; elsewhere an unexplained 409 keeps the shared meaning: try again later.
    import httpx

    fake, server = start_fake(name)
    try:
        backend = configure(fake)
        verdict = backend.judge(409, httpx.Headers(), body, json.dumps(body))
        assert verdict.kind == kind
        assert verdict.status == 409
    finally:
        server.shutdown()
        server.server_close()


def test_https_providers_are_verified_through_one_shared_tls_context(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Every backend's client reuses one TLS context (building one per Client costs tens of
    # ms per send_mail); it still verifies: SSL_CERT_FILE's CA is trusted, others are not.
    import ssl

    import trustme

    from mailpost.backends.http._base import shared_ssl_context
    from mailpost.backends.resend import EmailBackend as Resend

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    fake, server = start_fake("resend", ssl_context=server_context)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        shared_ssl_context.cache_clear()
        first, second = make_message(1), make_message(2)
        assert Resend(API_KEY, base_url=fake.url, timeout=5).send_messages([first]) == 1
        assert Resend(API_KEY, base_url=fake.url, timeout=5).send_messages([second]) == 1
        assert shared_ssl_context.cache_info().misses == 1
        assert len(fake.accepted) == 2

        monkeypatch.delenv("SSL_CERT_FILE")
        shared_ssl_context.cache_clear()
        untrusted = make_message(3)
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            Resend(API_KEY, base_url=fake.url, timeout=5).send_messages([untrusted])
        assert untrusted.delivery.attempted is False
        assert untrusted.delivery.retryable is True
        assert len(fake.accepted) == 2
    finally:
        shared_ssl_context.cache_clear()
        server.shutdown()
        server.server_close()
