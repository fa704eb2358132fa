"""pytest-django with mysite.settings_resend (the default mailer switched to Resend): mail is
captured in ``mailoutbox`` and ``mailpost.outbox``, and nothing reaches the API's URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from mysite import settings_resend
from shop.http_server import RecordingAPI

import mailpost


@pytest.fixture
def api() -> Iterator[RecordingAPI]:
    with RecordingAPI(settings_resend.RESEND_PORT) as listener:
        yield listener
    assert listener.requests == [], "a test run posted to the Resend API"


def test_view_mail_is_captured_not_posted(
    api: RecordingAPI, client: Client, mailoutbox: Any
) -> None:
    assert settings_resend.MAILERS["default"]["OPTIONS"]["base_url"] == api.url

    response = client.post("/signup/", {"email": "ann@example.com"})

    assert response.content == b"sent 1"
    (message,) = mailoutbox
    assert message.sent_using == "default"
    assert message.to == ["ann@example.com"]
    assert mailpost.outbox == [message]  # type: ignore[attr-defined]
