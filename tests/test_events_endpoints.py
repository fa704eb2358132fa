"""Done-when: a signed bounce posted to the ASGI app, the Flask blueprint or the Django view
puts the address on the do-not-send list, and the next send through a ``suppress`` mailer
reports it suppressed; an unsigned or forged post changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mailpost
from events_signing import CONFIGS, SVIX_SECRET, signed
from helpers import configure_suppress_over_locmem
from mailpost import EmailMessage
from mailpost.events import DeliveryEvent, SuppressionStore, off_event, on_event
from mailpost.events.asgi import webhook_app
from mailpost.integrations.flask_webhooks import webhook_blueprint


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    path = str(tmp_path / "suppressions.sqlite3")
    configure_suppress_over_locmem(path)
    return path


@pytest.fixture
def seen() -> Iterator[list[DeliveryEvent]]:
    events: list[DeliveryEvent] = []
    handler = on_event(events.append, kinds=["bounced"])
    yield events
    off_event(handler)


def _send_to_bounced() -> EmailMessage:
    msg = EmailMessage("hi", "body", "shop@example.com", ["bounced@example.net", "ann@example.org"])
    mailpost.mailers.default.send_messages([msg])
    return msg


def _assert_suppressed_on_next_send() -> None:
    msg = _send_to_bounced()
    statuses = {r.address: r.status for r in msg.delivery.recipients}
    assert statuses == {"ann@example.org": "accepted", "bounced@example.net": "suppressed"}
    assert mailpost.outbox[-1].to == ["ann@example.org"]
    assert "bounced@example.net" in msg.delivery.refused
    assert msg.delivery.ok


def _assert_nothing_changed(path: str) -> None:
    with SuppressionStore(path) as store:
        assert store.list() == []
    msg = _send_to_bounced()
    assert {r.status for r in msg.delivery.recipients} == {"accepted"}


def test_asgi_app_signed_bounce_suppresses(store_path: str, seen: list[DeliveryEvent]) -> None:
    app = webhook_app("resend", CONFIGS["resend"], store=store_path)
    headers, body = signed("resend")

    async def post(h: dict[str, str], b: bytes) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/", content=b, headers=h)

    forged = dict(headers, **{"svix-signature": "v1,AAAA"})
    assert asyncio.run(post(forged, body)).status_code == 401
    assert asyncio.run(post({}, body)).status_code == 401
    _assert_nothing_changed(store_path)
    response = asyncio.run(post(headers, body))
    assert response.status_code == 200
    assert [e.recipient for e in seen] == ["bounced@example.net"]
    _assert_suppressed_on_next_send()


def test_asgi_app_refuses_get_and_huge_bodies(store_path: str) -> None:
    from mailpost.events import WebhookConfig

    app = webhook_app("resend", WebhookConfig(secret=SVIX_SECRET, max_body=100), store=store_path)

    async def go() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            get = await client.get("/")
            big = await client.post("/", content=b"x" * 1000)
            return get.status_code, big.status_code

    assert asyncio.run(go()) == (405, 413)


def test_asgi_async_handler_is_awaited(store_path: str) -> None:
    got: list[str] = []

    async def handler(event: DeliveryEvent) -> None:
        await asyncio.sleep(0)
        got.append(event.recipient)

    on_event(handler)
    try:
        app = webhook_app("sendgrid", CONFIGS["sendgrid"], store=store_path)
        headers, body = signed("sendgrid")

        async def post() -> int:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return (await client.post("/", content=body, headers=headers)).status_code

        assert asyncio.run(post()) == 200
    finally:
        off_event(handler)
    assert got == ["bounced@example.net", "ann@example.net"]
    with SuppressionStore(store_path) as store:
        assert "bounced@example.net" in store


def test_flask_blueprint_signed_bounce_suppresses(
    store_path: str, seen: list[DeliveryEvent]
) -> None:
    import flask

    app = flask.Flask(__name__)
    app.register_blueprint(
        webhook_blueprint("resend", CONFIGS["resend"], store=store_path), url_prefix="/hooks/resend"
    )
    client = app.test_client()
    headers, body = signed("resend")
    assert (
        client.post(
            "/hooks/resend/", data=body.replace(b"Permanent", b"Transient"), headers=headers
        ).status_code
        == 401
    )
    _assert_nothing_changed(store_path)
    assert client.post("/hooks/resend/", data=body, headers=headers).status_code == 200
    assert len(seen) == 1
    _assert_suppressed_on_next_send()


DJANGO_SETTINGS = """
SECRET_KEY = "events-test"
ROOT_URLCONF = "events_urls"
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = []
USE_TZ = True
DATABASES = {{}}
MAILPOST_WEBHOOKS = {{"resend": {{"secret": {secret!r}, "store": {store!r}}}}}
MAILERS = {{
    "mem": {{"BACKEND": "mailpost.backends.locmem.EmailBackend"}},
    "default": {{"BACKEND": "mailpost.backends.suppress.EmailBackend",
                 "OPTIONS": {{"mailer": "mem", "store": {store!r}}}}},
}}
"""

DJANGO_URLS = """
from django.urls import include, path
urlpatterns = [path("hooks/", include("mailpost.integrations.django.webhooks"))]
"""

DJANGO_SCRIPT = """
import json, sys
import django
django.setup()
from django.test import Client
from mailpost.integrations.django.webhooks import delivery_event
import mailpost
from mailpost import EmailMessage

headers = json.loads(sys.argv[1]); body = sys.argv[2].encode()
got = []
def on_signal(sender, event, **kw):
    got.append((sender, event.recipient))
delivery_event.connect(on_signal, weak=False)
extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
client = Client()
out = {"forged": client.post("/hooks/resend/", data=body, content_type="application/json",
                             HTTP_SVIX_ID="x", HTTP_SVIX_TIMESTAMP=headers["svix-timestamp"],
                             HTTP_SVIX_SIGNATURE="v1,AAAA").status_code}
def send():
    m = EmailMessage("hi", "b", "shop@example.com", ["bounced@example.net"])
    mailpost.mailers.default.send_messages([m])
    return [r.status for r in m.delivery.recipients]
out["before"] = send()
signed = client.post("/hooks/resend/", data=body, content_type="application/json", **extra)
out["signed"] = signed.status_code
out["signal"] = got
out["after"] = send()
print(json.dumps(out))
"""


def test_django_view_signed_bounce_suppresses(tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite3")
    (tmp_path / "events_settings.py").write_text(
        DJANGO_SETTINGS.format(secret=SVIX_SECRET, store=store)
    )
    (tmp_path / "events_urls.py").write_text(DJANGO_URLS)
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(DJANGO_SCRIPT))
    headers, body = signed("resend")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "events_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
    }
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(headers), body.decode()],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    out = json.loads(done.stdout)
    assert out["forged"] == 401
    assert out["before"] == ["accepted"]  # the forged post changed nothing
    assert out["signed"] == 200
    assert out["signal"] == [["resend", "bounced@example.net"]]
    assert out["after"] == ["suppressed"]


def test_flask_runs_async_handlers_and_a_failing_handler_keeps_the_bounce(store_path: str) -> None:
    import flask

    got: list[str] = []

    async def handler(event: DeliveryEvent) -> None:
        await asyncio.sleep(0)
        got.append(event.recipient)

    def broken(event: DeliveryEvent) -> None:
        raise RuntimeError("handler bug")

    on_event(handler)
    on_event(broken)
    try:
        app = flask.Flask(__name__)
        app.register_blueprint(webhook_blueprint("postmark", CONFIGS["postmark"], store=store_path))
        headers, body = signed("postmark")
        response = app.test_client().post("/", data=body, headers=headers)
    finally:
        off_event(handler)
        off_event(broken)
    assert response.status_code == 500  # the provider will retry
    assert got == ["bounced@example.net"]  # the other handlers still ran
    with SuppressionStore(store_path) as store:
        assert "bounced@example.net" in store  # recorded before the handlers ran
