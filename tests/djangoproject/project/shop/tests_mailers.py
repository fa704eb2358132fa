"""The project configured with MAILERS, under Django's test runner (``manage.py test``).

Run by scripts/test-django: ``manage.py test shop.tests_mailers`` with mysite.settings.
"""

from __future__ import annotations

import io
from typing import Any

import django
from django.core import mail
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.test import SimpleTestCase, TestCase, override_settings
from django.utils import translation
from django.utils.functional import lazystr
from django.utils.translation import gettext, gettext_lazy
from django.utils.version import get_complete_version
from mysite import settings as project_settings

import mailpost
from mailpost import EmailMessage, EmailMultiAlternatives, mail_admins, mailers, send_mail
from mailpost.backends.locmem import LocmemBackend
from mailpost.testing import mail_outbox
from shop.smtp_server import HOST, SMTPServer, _free_port

#: The project's real MAILERS (Django's test runner swaps the live setting for memory).
PROJECT_MAILERS: dict[str, Any] = project_settings.MAILERS
CSV = "sku,qty\nA1,2\n"
PNG = b"\x89PNG\r\n\x1a\n"
DJANGO_CHECKS_MAILERS = get_complete_version() >= (6, 1)


def ids(messages: list[Any]) -> list[str]:
    return sorted(m.id for m in messages)


def raises(exc_type: type[BaseException], func: Any, *args: Any, **kwargs: Any) -> BaseException:
    """The exception ``func(*args, **kwargs)`` raised; fails if it raised none."""
    try:
        func(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError(f"{exc_type.__name__} not raised")


class MailpostTestCase(TestCase):
    """No setUp needed: mailpost.outbox is Django's mail.outbox, emptied before each test."""


class CaptureTests(MailpostTestCase):
    """Every message sent through mailpost in a test is kept, not sent, in both outboxes."""

    def test_signup_view_mail_is_in_django_and_mailpost_outboxes(self) -> None:
        response = self.client.post("/signup/", {"email": "ann@example.com"})

        assert response.content == b"sent 1"
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert isinstance(message, EmailMessage)
        assert str(message.subject) == "Welcome to the shop"
        assert message.to == ["ann@example.com"]
        assert message.from_email == "Shop <shop@example.com>"
        assert message.sent_using == "default"
        assert mailpost.outbox == [message]  # type: ignore[attr-defined]

    def test_mail_for_an_http_api_mailer_is_captured_too(self) -> None:
        send_mail("Receipt", "Thanks", "shop@example.com", ["ann@example.com"],
                  using="transactional")  # fmt: skip

        (message,) = mail.outbox
        assert message.sent_using == "transactional"
        assert message.delivery is not None
        assert message.delivery.ok

    def test_invoice_view_alternatives_and_attachment_are_captured(self) -> None:
        response = self.client.get("/invoice/42/", {"to": "bob@example.com"})

        assert response.content == b"sent 1"
        (message,) = mail.outbox
        assert isinstance(message, EmailMultiAlternatives)
        assert message.to == ["bob@example.com"]
        assert message.cc == ["accounts@example.com"]
        assert message.bcc == ["archive@example.com"]
        assert message.recipients() == [
            "bob@example.com",
            "accounts@example.com",
            "archive@example.com",
        ]
        assert message.alternatives[0].mimetype == "text/html"
        assert "<b>#42</b>" in message.alternatives[0].content
        assert message.attachments[0].filename == "invoice-42.pdf"
        assert message.attachments[0].mimetype == "application/pdf"
        assert message.extra_headers == {"X-Invoice": "42"}
        mail_outbox().assert_sent(1, to="bob@example.com", attachments=["invoice-42.pdf"])

    def test_every_mailer_is_captured_including_third_party_backends(self) -> None:
        for alias in ("notifications", "esp"):
            self.client.get("/invoice/7/", {"using": alias})

        assert [m.sent_using for m in mail.outbox] == ["notifications", "esp"]
        assert not hasattr(mail.outbox[1], "anymail_test_params")  # anymail never saw it
        assert isinstance(mailers["esp"], LocmemBackend)

    def test_django_resets_its_outbox_between_tests(self) -> None:
        assert mail.outbox == []
        assert mailpost.outbox is mail.outbox  # type: ignore[attr-defined]
        mail_outbox().assert_none_sent()

    def test_async_twin_is_captured(self) -> None:
        import asyncio

        sent = asyncio.run(mailpost.asend_mail("Async", "Body", None, ["amy@example.com"]))

        assert sent == 1
        assert [m.to for m in mail.outbox] == [["amy@example.com"]]


class LiveSettingsTests(MailpostTestCase):
    """Settings are read on every send, so override_settings applies at once."""

    def test_override_settings_changes_the_default_from_address(self) -> None:
        with self.settings(DEFAULT_FROM_EMAIL="Sales <sales@example.com>"):
            self.client.post("/signup/", {"email": "ann@example.com"})
        self.client.post("/signup/", {"email": "bob@example.com"})

        assert [m.from_email for m in mail.outbox] == [
            "Sales <sales@example.com>",
            "Shop <shop@example.com>",
        ]

    @override_settings(ADMINS=["night-shift@example.com"], EMAIL_SUBJECT_PREFIX="[Live] ")
    def test_override_settings_decorator_applies_to_mail_admins(self) -> None:
        assert mail_admins("Disk full", "90%") == 1

        (message,) = mail.outbox
        assert message.to == ["night-shift@example.com"]
        assert message.subject == "[Live] Disk full"
        assert message.from_email == "server@example.com"

    def test_lazy_strings_are_accepted_and_rendered_in_the_active_language(self) -> None:
        source = "Enter a valid email address."
        with translation.override("fr"):
            expected = gettext(source)
        assert expected != source  # Django ships a French catalog for it

        with override_settings(
            EMAIL_SUBJECT_PREFIX=lazystr("[Boutique] "),
            DEFAULT_FROM_EMAIL=lazystr("Boutique <boutique@example.com>"),
            ADMINS=["ops@example.com"],
        ):
            message = EmailMultiAlternatives(
                gettext_lazy(source),
                gettext_lazy(source),
                to=[lazystr("ann@example.com")],
                cc=[lazystr("Bob <bob@example.com>")],
                reply_to=[lazystr("help@example.com")],
            )
            message.attach_alternative(gettext_lazy(source), "text/html")
            with translation.override("fr"):
                message.send()
                mail_admins(gettext_lazy(source), gettext_lazy(source))

        first, admins = mail.outbox
        assert [str(r) for r in first.recipients()] == ["ann@example.com", "Bob <bob@example.com>"]
        with translation.override("fr"):  # the kept copies are still lazy, as in Django
            parsed = first.message()
            assert parsed["Subject"] == expected
            assert parsed["From"] == "Boutique <boutique@example.com>"
            assert parsed["To"] == "ann@example.com"
            assert parsed["Cc"] == "Bob <bob@example.com>"
            assert parsed["Reply-To"] == "help@example.com"
            assert parsed.get_body(("html",)).get_content().strip() == expected
            assert admins.message()["Subject"] == f"[Boutique] {expected}"
            assert expected in admins.message().get_body(("plain",)).get_content()


class RealSendingTests(SimpleTestCase):
    """A test that overrides MAILERS gets exactly that configuration: it really sends."""

    def test_overridden_mailers_send_through_smtp_with_django_backend_path(self) -> None:
        mail_outbox().clear()
        with SMTPServer("shop", "smtp-secret") as server:
            live = {
                "default": {
                    "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                    "OPTIONS": {
                        "host": HOST,
                        "port": server.port,
                        "username": "shop",
                        "password": "smtp-secret",
                        "timeout": 5,
                    },
                }
            }
            with override_settings(MAILERS=live):
                response = self.client.post("/signup/", {"email": "ann@example.com"})

        assert response.content == b"sent 1"
        (received,) = server.received
        assert received.login == "shop"
        assert received.mail_from == "shop@example.com"
        assert received.rcpt_tos == ["ann@example.com"]
        assert received.message["Subject"] == "Welcome to the shop"
        assert mail.outbox == []
        assert mail_outbox() == []

    def test_lazy_subject_is_sent_in_the_language_active_at_send_time(self) -> None:
        source = "Enter a valid email address."
        with translation.override("fr"):
            expected = gettext(source)
        with SMTPServer("shop", "smtp-secret") as server:
            live = {
                "default": {
                    "BACKEND": "mailpost.backends.smtp.EmailBackend",
                    "OPTIONS": {"host": HOST, "port": server.port, "timeout": 5},
                }
            }
            with override_settings(MAILERS=live), translation.override("fr"):
                send_mail(gettext_lazy(source), gettext_lazy(source), None, ["ann@example.com"])

        (received,) = server.received
        assert received.login is None
        assert received.message["Subject"] == expected
        assert received.message.get_payload(decode=True).decode().strip() == expected


class SendTestEmailCommandTests(MailpostTestCase):
    """``manage.py mailpost_sendtestemail``, like Django's sendtestemail plus --using."""

    def call(self, *args: str) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        call_command("mailpost_sendtestemail", *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    def test_sends_to_given_addresses_through_the_chosen_mailer(self) -> None:
        out, _ = self.call("ann@example.com", "bob@example.com", "--using", "notifications")

        (message,) = mail.outbox
        assert message.to == ["ann@example.com", "bob@example.com"]
        assert message.sent_using == "notifications"
        assert str(message.subject).startswith("Test email from ")
        assert message.from_email == "Shop <shop@example.com>"
        assert "'notifications'" in out
        assert "ann@example.com, bob@example.com" in out

    def test_default_mailer_when_using_is_not_given(self) -> None:
        self.call("ann@example.com")

        assert [m.sent_using for m in mail.outbox] == ["default"]

    def test_admins_and_managers(self) -> None:
        self.call("--admins", "--managers", "--using", "esp")

        managers, admins = mail.outbox
        assert managers.to == ["boss@example.com", "Deputy <deputy@example.com>"]
        assert admins.to == ["ops@example.com"]
        for message in (managers, admins):
            assert message.subject.startswith("[Shop] Test email from ")
            assert message.from_email == "server@example.com"
            assert message.sent_using == "esp"

    def test_addresses_admins_and_managers_together_send_three_messages(self) -> None:
        self.call("ann@example.com", "--admins", "--managers")

        assert [m.to for m in mail.outbox] == [
            ["ann@example.com"],
            ["boss@example.com", "Deputy <deputy@example.com>"],
            ["ops@example.com"],
        ]

    @override_settings(ADMINS=[])
    def test_empty_admins_is_reported_not_sent(self) -> None:
        _, err = self.call("--admins")

        assert mail.outbox == []
        assert "ADMINS is empty" in err

    def test_nothing_to_send_is_an_error(self) -> None:
        exc = raises(CommandError, self.call)

        assert "--admins or --managers" in str(exc)

    def test_unknown_mailer_is_an_error_naming_the_defined_ones(self) -> None:
        exc = raises(CommandError, self.call, "ann@example.com", "--using", "nope")

        assert "'nope'" in str(exc)
        assert "'default', 'esp', 'notifications'" in str(exc)
        assert mail.outbox == []

    def test_delivery_failure_is_a_command_error(self) -> None:
        closed_port = _free_port()
        broken = {
            "default": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"host": HOST, "port": closed_port, "timeout": 2},
            }
        }
        with override_settings(MAILERS=broken), self.assertLogs("mailpost", "WARNING") as logs:
            exc = raises(CommandError, self.call, "ann@example.com")

        assert "Sending through mailer 'default' failed" in str(exc)
        assert "MAILERS['default']" in logs.output[0]


class SystemCheckTests(SimpleTestCase):
    """The app's checks report mailer problems at startup, naming the alias."""

    def test_project_configuration_passes_all_checks(self) -> None:
        with override_settings(MAILERS=PROJECT_MAILERS):
            assert run_checks(tags=["mailpost"], include_deployment_checks=True) == []
            out = io.StringIO()
            call_command("check", "--deploy", "--tag", "mailpost", stdout=out)
        assert "no issues" in out.getvalue()

    def test_missing_default_mailer_is_a_warning(self) -> None:
        without_default = {"esp": PROJECT_MAILERS["esp"]}
        with override_settings(MAILERS=without_default):
            found = ids(run_checks())

        # Django 6.1 checks its own MAILERS (mail.W001); mailpost does not repeat it there.
        if DJANGO_CHECKS_MAILERS:
            assert "mail.W001" in found
            assert "mailpost.W001" not in found
        else:
            assert "mailpost.W001" in found

    def test_invalid_mailer_is_an_error_naming_alias_and_option(self) -> None:
        broken = {
            **PROJECT_MAILERS,
            "bulk": {
                "BACKEND": "mailpost.backends.smtp.EmailBackend",
                "OPTIONS": {"hots": "smtp.example.com", "password": "hunter2"},
            },
        }
        with override_settings(MAILERS=broken):
            (error,) = run_checks(tags=["mailpost"])
            exc = raises(SystemCheckError, call_command, "check", stderr=io.StringIO())

        assert error.id == "mailpost.E001"
        assert "MAILERS['bulk']" in error.msg
        assert "'hots'" in error.msg
        assert "hunter2" not in error.msg
        assert "mailpost.E001" in str(exc)
        assert "MAILERS['bulk']" in str(exc)

    def test_unimportable_backend_is_an_error(self) -> None:
        broken = {"default": {"BACKEND": "shop.nowhere.EmailBackend"}}
        with override_settings(MAILERS=broken):
            (error,) = run_checks(tags=["mailpost"])

        assert error.id == "mailpost.E001"
        assert "MAILERS['default']" in error.msg
        assert "shop.nowhere.EmailBackend" in error.msg

    def test_backend_with_a_missing_extra_is_an_error(self) -> None:
        needs_extra = {**PROJECT_MAILERS, "acme": {"BACKEND": "shop.needs_extra.EmailBackend"}}
        with override_settings(MAILERS=needs_extra):
            (error,) = run_checks(tags=["mailpost"])

        assert error.id == "mailpost.E002"
        assert error.msg.startswith("MAILERS['acme']: ")
        assert "pip install acme-mail" in error.msg

    def test_malformed_mailers_setting_is_an_error(self) -> None:
        with override_settings(MAILERS=["default"]):
            messages = run_checks(tags=["mailpost"])

        assert ids(messages) == ["mailpost.E003"]
        assert "MAILERS must be a dict" in messages[0].msg

    def test_admins_as_name_address_pairs_warn_only_where_django_deprecates_them(self) -> None:
        with override_settings(MAILERS=PROJECT_MAILERS, ADMINS=[("Ops", "ops@example.com")]):
            messages = run_checks(tags=["mailpost"])

        if django.VERSION >= (6, 1):
            assert ids(messages) == ["mailpost.W002"]
            assert "ADMINS setting uses (name, address) pairs" in messages[0].msg
        else:  # Django 4.2 / 5.2 document the pairs and accept them silently
            assert messages == []

    def test_admins_that_mail_admins_would_refuse_is_a_warning(self) -> None:
        with override_settings(MAILERS=PROJECT_MAILERS, MANAGERS="boss@example.com"):
            messages = run_checks(tags=["mailpost"])

        assert ids(messages) == ["mailpost.W002"]
        assert messages[0].msg.startswith("The MANAGERS setting must be a list of email address")
        assert messages[0].msg.endswith("mail_managers() will fail.")

    def test_development_backend_as_default_fails_check_deploy(self) -> None:
        console = {"default": {"BACKEND": "mailpost.backends.console.EmailBackend"}}
        with override_settings(MAILERS=console):
            assert run_checks(tags=["mailpost"]) == []  # fine outside --deploy
            exc = raises(SystemCheckError, call_command, "check", "--deploy", stderr=io.StringIO())

        assert "mailpost.E004" in str(exc)
        assert "mailpost.backends.console.EmailBackend" in str(exc)

    def test_django_development_backend_path_fails_check_deploy(self) -> None:
        for backend in ("locmem", "dummy", "filebased", "console"):
            path = f"django.core.mail.backends.{backend}.EmailBackend"
            entry: dict[str, Any] = {"BACKEND": path}
            if backend == "filebased":
                entry["OPTIONS"] = {"file_path": "/tmp/mailpost-never-written"}
            with override_settings(MAILERS={"default": entry}):
                found = ids(run_checks(include_deployment_checks=True))
            # Django 6.1 reports its own paths itself (mail.E001).
            assert ("mail.E001" if DJANGO_CHECKS_MAILERS else "mailpost.E004") in found, path

    def test_delivering_backend_passes_check_deploy(self) -> None:
        with override_settings(MAILERS={"default": PROJECT_MAILERS["esp"]}):
            assert run_checks(tags=["mailpost"], include_deployment_checks=True) == []


class AnymailBackendTests(MailpostTestCase):
    """A Django-native third-party backend receives mailpost messages and understands them."""

    def test_email_multi_alternatives_arrives_complete(self) -> None:
        message = EmailMultiAlternatives(
            subject="Your order",
            body="Plain text body",
            from_email="Shop <shop@example.com>",
            to=["Ann <ann@example.com>"],
            cc=["cc@example.com"],
            bcc=["bcc@example.com"],
            reply_to=["help@example.com"],
            headers={"X-Order": "1234"},
        )
        message.attach_alternative("<p>HTML body</p>", "text/html")
        message.attach("order.csv", CSV, "text/csv")
        message.attach("logo.png", PNG, "image/png")

        with override_settings(MAILERS=PROJECT_MAILERS):
            assert message.send(using="esp") == 1

        (sent,) = mail.outbox  # anymail's own record: mailpost's in-memory backend keeps copies
        assert sent is message
        params = sent.anymail_test_params
        assert params["subject"] == "Your order"
        assert params["text_body"] == "Plain text body"
        assert params["html_body"] == "<p>HTML body</p>"
        assert params["from"].address == "Shop <shop@example.com>"
        assert [e.addr_spec for e in params["to"]] == ["ann@example.com"]
        assert [e.display_name for e in params["to"]] == ["Ann"]
        assert [e.addr_spec for e in params["cc"]] == ["cc@example.com"]
        assert [e.addr_spec for e in params["bcc"]] == ["bcc@example.com"]
        assert [e.addr_spec for e in params["reply_to"]] == ["help@example.com"]
        assert dict(params["extra_headers"]) == {"X-Order": "1234"}
        csv, png = params["attachments"]
        assert (csv.name, csv.mimetype, csv.content) == ("order.csv", "text/csv", CSV)
        assert (png.name, png.mimetype, png.content) == ("logo.png", "image/png", PNG)
        assert sent.anymail_status.status == {"sent"}
        assert sent.anymail_status.recipients["bcc@example.com"].status == "sent"

    def test_send_mail_through_anymail(self) -> None:
        with override_settings(MAILERS=PROJECT_MAILERS):
            sent = send_mail(
                "Hello", "Text", None, ["ann@example.com"], html_message="<b>Hi</b>", using="esp"
            )

        assert sent == 1
        params = mail.outbox[0].anymail_test_params
        assert params["subject"] == "Hello"
        assert params["text_body"] == "Text"
        assert params["html_body"] == "<b>Hi</b>"
        assert params["from"].address == "Shop <shop@example.com>"
        assert [e.addr_spec for e in params["to"]] == ["ann@example.com"]
