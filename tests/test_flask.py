"""The Flask extension and the example app, through Flask's test client."""

from __future__ import annotations

from types import ModuleType

import pytest
from flask import Flask

import mailpost
from helpers import load_example
from mailpost.integrations.flask import Mailpost

LOCMEM = {"default": {"BACKEND": "mailpost.backends.locmem.EmailBackend"}}


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return load_example("flask_app", "mailpost_example_flask_app")


def outbox() -> list[mailpost.EmailMessage]:
    return list(getattr(mailpost, "outbox", []))


def test_example_contact_form_sends_one_message_with_reply_to_the_visitor(
    example: ModuleType,
) -> None:
    app = example.create_app({"MAILERS": LOCMEM})
    response = app.test_client().post(
        "/contact", data={"subject": "Refund", "message": "Order 7", "email": "ann@example.org"}
    )
    assert response.status_code == 202
    [msg] = outbox()
    assert msg.subject == "Contact form: Refund"
    assert msg.to == ["support@example.com"]
    assert msg.reply_to == ["ann@example.org"]
    assert msg.from_email == "Website <noreply@example.com>"
    assert response.get_json() == {"sent": 1, "message_id": msg.delivery.message_id}


def test_example_rejects_header_injection_and_sends_nothing(example: ModuleType) -> None:
    app = example.create_app({"MAILERS": LOCMEM})
    response = app.test_client().post(
        "/contact",
        data={"subject": "Hi\r\nBcc: victim@example.net", "message": "x", "email": "a@b.org"},
    )
    assert response.status_code == 400
    assert "Subject" in response.get_json()["error"]
    assert outbox() == []


def test_two_apps_in_one_process_each_use_their_own_mailers() -> None:
    ext = Mailpost()
    shop, blog = Flask("shop"), Flask("blog")
    shop.config.update(MAILERS=LOCMEM, DEFAULT_FROM_EMAIL="shop@example.com")
    blog.config.update(
        MAILERS={"default": {"BACKEND": "mailpost.backends.dummy.EmailBackend"}},
        DEFAULT_FROM_EMAIL="blog@example.com",
    )
    ext.init_app(shop)
    ext.init_app(blog)
    with blog.app_context():
        assert mailpost.send_mail("s", "b", None, ["x@example.com"]) == 1
    assert outbox() == []
    with shop.app_context():
        mailpost.send_mail("s", "b", None, ["x@example.com"])
    assert [m.from_email for m in outbox()] == ["shop@example.com"]


def test_outside_an_app_context_configure_applies() -> None:
    app = Flask("site")
    app.config.update(MAILERS=LOCMEM)
    Mailpost(app)
    mailpost.configure(MAILERS={"other": {"BACKEND": "mailpost.backends.dummy.EmailBackend"}})
    assert list(mailpost.mailers) == ["other"]
    with app.app_context():
        assert list(mailpost.mailers) == ["default"]


def test_an_app_without_the_extension_does_not_supply_settings() -> None:
    plain = Flask("plain")
    plain.config.update(MAILERS=LOCMEM)
    Mailpost(Flask("other"))
    mailpost.configure(MAILERS={"configured": {"BACKEND": "mailpost.backends.dummy.EmailBackend"}})
    with plain.app_context():
        assert list(mailpost.mailers) == ["configured"]


def test_a_misconfigured_mailer_fails_at_init_app_naming_the_alias() -> None:
    app = Flask("broken")
    app.config.update(MAILERS={"bulk": {"BACKEND": "mailpost.backends.smtp.EmailBackend"}})
    with pytest.raises(mailpost.InvalidMailer, match=r"MAILERS\['bulk'\]"):
        Mailpost(app)
