"""The project after switching its default mailer from SMTP to Resend (mysite.settings_resend),
under Django's test runner: mail is still captured, and nothing reaches the API.

Run by scripts/test-django: ``manage.py test shop.tests_resend`` with mysite.settings_resend.
A listener on the mailer's configured base_url records any request, so "nothing posted" is
checked, not assumed; tests/test_http_backends.py shows the same settings posting to a local
Resend fake outside the test runner.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from django.core import mail
from django.test import TestCase
from mysite import settings as smtp_settings
from mysite import settings_resend

import mailpost
from mailpost import EmailMessage, mailers, send_mail, send_mass_mail
from mailpost.backends.locmem import LocmemBackend
from mailpost.testing import mail_outbox
from shop.http_server import RecordingAPI

RESEND_MAILERS: dict[str, Any] = settings_resend.MAILERS


class SwitchToResendTests(TestCase):
    api: RecordingAPI

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.api = RecordingAPI(settings_resend.RESEND_PORT)
        cls.api.__enter__()
        cls.addClassCleanup(cls.api.__exit__, None, None, None)

    def tearDown(self) -> None:
        assert self.api.requests == [], "a test run posted to the Resend API"

    def test_the_switch_is_one_mailers_entry(self) -> None:
        changed = {k for k in RESEND_MAILERS if RESEND_MAILERS[k] != smtp_settings.MAILERS[k]}
        assert changed == {"default"}
        assert set(RESEND_MAILERS) == set(smtp_settings.MAILERS)
        assert RESEND_MAILERS["default"]["BACKEND"] == "mailpost.backends.resend.EmailBackend"
        assert RESEND_MAILERS["default"]["OPTIONS"]["base_url"] == self.api.url

    def test_the_listener_would_see_a_post(self) -> None:
        reply = httpx.post(f"{self.api.url}/emails", json={"probe": True}, timeout=5)
        assert reply.status_code == 200
        assert self.api.requests == [("/emails", {"probe": True})]
        self.api.requests.clear()

    def test_view_mail_is_captured_in_both_outboxes(self) -> None:
        response = self.client.post("/signup/", {"email": "ann@example.com"})

        assert response.content == b"sent 1"
        (message,) = mail.outbox
        assert isinstance(message, EmailMessage)
        assert str(message.subject) == "Welcome to the shop"
        assert message.to == ["ann@example.com"]
        assert message.sent_using == "default"
        assert message.delivery is not None
        assert message.delivery.ok
        assert mailpost.outbox == [message]  # type: ignore[attr-defined]
        assert isinstance(mailers["default"], LocmemBackend)

    def test_attachments_alternatives_and_every_alias_are_captured(self) -> None:
        for alias in (None, "notifications", "transactional"):
            params = {"to": "bob@example.com", **({"using": alias} if alias else {})}
            assert self.client.get("/invoice/9/", params).content == b"sent 1"

        assert [m.sent_using for m in mail.outbox] == ["default", "notifications", "transactional"]
        mail_outbox().assert_sent(3, to="bob@example.com", attachments=["invoice-9.pdf"])

    def test_mass_mail_and_the_async_twin_are_captured(self) -> None:
        batch = [("A", "a", None, ["a@example.com"]), ("B", "b", None, ["b@example.com"])]
        assert send_mass_mail(batch) == 2
        assert asyncio.run(mailpost.asend_mail("C", "c", None, ["c@example.com"])) == 1
        assert send_mail("D", "d", None, ["d@example.com"]) == 1

        assert [m.to for m in mail.outbox] == [
            ["a@example.com"],
            ["b@example.com"],
            ["c@example.com"],
            ["d@example.com"],
        ]
