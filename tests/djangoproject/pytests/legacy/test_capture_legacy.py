"""pytest-django with the legacy EMAIL_* settings (warnings are errors in this suite)."""

from __future__ import annotations

from typing import Any

from django.test import Client

import mailpost
from mailpost import mail_managers, mailers, send_mail
from mailpost.backends.locmem import LocmemBackend


def test_view_mail_is_captured(client: Client, mailoutbox: Any) -> None:
    response = client.post("/signup/", {"email": "ann@example.com"})

    assert response.content == b"sent 1"
    (message,) = mailoutbox
    assert message.to == ["ann@example.com"]
    assert mailpost.outbox == [message]  # type: ignore[attr-defined]


def test_legacy_default_mailer_is_captured_without_warnings(mailoutbox: Any) -> None:
    assert list(mailers) == ["default"]
    assert isinstance(mailers.default, LocmemBackend)

    send_mail("One", "Body", None, ["ann@example.com"])
    mail_managers("Two", "Body")

    assert [m.subject for m in mailoutbox] == ["One", "[Shop] Two"]
    assert mailoutbox[1].to == ["boss@example.com", "Deputy <deputy@example.com>"]
