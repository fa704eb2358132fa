"""pytest-django with the MAILERS settings: mail sent through mailpost is captured in
pytest-django's ``mailoutbox`` (which is ``django.core.mail.outbox``) and ``mailpost.outbox``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core import mail
from django.test import Client, override_settings
from django.utils.functional import lazystr
from mysite import settings as project_settings
from shop.smtp_server import HOST, SMTPServer

import mailpost
from mailpost import EmailMultiAlternatives, mail_admins, send_mail


def test_view_mail_is_in_mailoutbox_and_mailpost_outbox(client: Client, mailoutbox: Any) -> None:
    response = client.post("/signup/", {"email": "ann@example.com"})

    assert response.content == b"sent 1"
    assert mailoutbox is mail.outbox
    (message,) = mailoutbox
    assert str(message.subject) == "Welcome to the shop"
    assert message.to == ["ann@example.com"]
    assert message.sent_using == "default"
    assert mailpost.outbox == [message]  # type: ignore[attr-defined]


def test_every_alias_is_captured(client: Client, mailoutbox: Any) -> None:
    for alias in ("default", "notifications", "esp"):
        client.get("/invoice/3/", {"using": alias})

    assert [m.sent_using for m in mailoutbox] == ["default", "notifications", "esp"]
    assert all(m.attachments[0].filename == "invoice-3.pdf" for m in mailoutbox)
    mailpost.testing.mail_outbox().assert_sent(1, using="esp", attachments=["invoice-3.pdf"])


def test_outboxes_start_empty_in_each_test(mailoutbox: Any) -> None:
    assert mailoutbox == []
    assert mailpost.outbox == []  # type: ignore[attr-defined]


def test_settings_fixture_is_read_live(settings: Any, mailoutbox: Any) -> None:
    settings.DEFAULT_FROM_EMAIL = "Sales <sales@example.com>"
    settings.EMAIL_SUBJECT_PREFIX = lazystr("[Lazy] ")
    settings.ADMINS = ["night@example.com"]

    send_mail("Quote", "Body", None, ["ann@example.com"])
    mail_admins("Alert", "Body")

    quote, alert = mailoutbox
    assert quote.from_email == "Sales <sales@example.com>"
    assert alert.subject == "[Lazy] Alert"
    assert alert.to == ["night@example.com"]


def test_async_send_is_captured(mailoutbox: Any) -> None:
    sent = asyncio.run(mailpost.asend_mail("Async", "Body", None, ["amy@example.com"]))

    assert sent == 1
    assert [m.to for m in mailoutbox] == [["amy@example.com"]]


@pytest.mark.mailpost_live
def test_live_marker_sends_through_anymail(settings: Any, mailoutbox: Any) -> None:
    """mailpost's live marker and MAILERS set by the test: the third-party backend runs."""
    settings.MAILERS = dict(project_settings.MAILERS)
    message = EmailMultiAlternatives(
        "Receipt", "Text", to=["ann@example.com"], headers={"X-Receipt": "9"}
    )
    message.attach_alternative("<p>HTML</p>", "text/html")
    message.attach("receipt.txt", "total: 9", "text/plain")

    assert message.send(using="esp") == 1

    (sent,) = mailoutbox  # anymail's test backend appends to django.core.mail.outbox
    params = sent.anymail_test_params
    assert params["subject"] == "Receipt"
    assert params["html_body"] == "<p>HTML</p>"
    assert [e.addr_spec for e in params["to"]] == ["ann@example.com"]
    assert dict(params["extra_headers"]) == {"X-Receipt": "9"}
    assert params["attachments"][0].name == "receipt.txt"
    assert mailpost.outbox == []  # type: ignore[attr-defined]


@pytest.mark.mailpost_live
def test_live_marker_with_overridden_mailers_sends_over_smtp(mailoutbox: Any) -> None:
    with SMTPServer("shop", "pw") as server:
        live = {
            **project_settings.MAILERS,
            "default": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {
                    "host": HOST,
                    "port": server.port,
                    "username": "shop",
                    "password": "pw",
                    "timeout": 5,
                },
            },
        }
        with override_settings(MAILERS=live):
            assert send_mail("Real", "Body", None, ["ann@example.com"]) == 1

    (received,) = server.received
    assert received.login == "shop"
    assert received.message["Subject"] == "Real"
    assert mailoutbox == []
