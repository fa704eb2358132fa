"""The project with only the legacy EMAIL_* settings, under Django's test runner.

Run by scripts/test-django: ``manage.py test shop.tests_legacy`` with
mysite.settings_legacy and warnings as errors. Django 6.1 deprecates the EMAIL_* settings
and warns when code outside Django reads them through ``django.conf.settings``; mailpost
reads them for the project without causing any such warning.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import mail
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import TestCase, override_settings
from django.utils.version import get_complete_version

import mailpost
from mailpost import mail_admins, mail_managers, mailers, send_mail
from mailpost.backends.locmem import LocmemBackend
from mailpost.handler import legacy_options
from mailpost.testing import mail_outbox
from shop.smtp_server import HOST, SMTPServer

PROJECT_DIR = Path(__file__).resolve().parent.parent


@contextmanager
def legacy_settings(**settings: Any) -> Iterator[None]:
    """``override_settings`` for EMAIL_* settings, with warnings as errors inside.

    Setting them is the *test's* own use of deprecated settings (Django 6.1 warns about
    that); only what runs inside the block, i.e. mailpost, must not warn.
    """
    override = override_settings(**settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        override.enable()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            override.disable()


class LegacyCaptureTests(TestCase):
    """Django's runner switches EMAIL_BACKEND to its locmem path; mailpost maps it to its own."""

    def setUp(self) -> None:
        mail_outbox().clear()

    def test_signup_view_mail_is_in_django_and_mailpost_outboxes(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            response = self.client.post("/signup/", {"email": "ann@example.com"})

        assert response.content == b"sent 1"
        (message,) = mail.outbox
        assert message.to == ["ann@example.com"]
        assert message.from_email == "Shop <shop@example.com>"
        assert message.sent_using is None  # as in Django: the legacy backend has no alias
        assert mailpost.outbox == [message]  # type: ignore[attr-defined]

    def test_invoice_view_is_captured(self) -> None:
        self.client.get("/invoice/9/")

        (message,) = mail.outbox
        assert message.attachments[0].filename == "invoice-9.pdf"
        assert message.alternatives[0].mimetype == "text/html"

    def test_sending_reads_legacy_settings_without_any_warning(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert isinstance(mailers.default, LocmemBackend)
            assert list(mailers) == ["default"]
            send_mail("One", "Body", None, ["ann@example.com"])
            mail_admins("Two", "Body")
            mail_managers("Three", "Body")
            messages = run_checks(tags=["mailpost"], include_deployment_checks=False)

        assert messages == []
        assert [m.subject for m in mail.outbox] == ["One", "[Shop] Two", "[Shop] Three"]

    def test_reading_email_settings_through_django_would_be_caught(self) -> None:
        """The no-warning tests are not vacuous: where Django deprecates EMAIL_* (6.1+),
        the same filter turns a read through ``django.conf.settings`` into an error."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert settings.EMAIL_HOST == "smtp.shop.invalid"

        deprecations = [
            str(w.message) for w in caught if issubclass(w.category, PendingDeprecationWarning)
        ]
        if get_complete_version() >= (6, 1):
            assert len(deprecations) == 1
            assert "The EMAIL_HOST setting is deprecated" in deprecations[0]
        else:
            assert deprecations == []


class LegacyMappingTests(TestCase):
    """The default mailer is built from EMAIL_BACKEND and the EMAIL_* options."""

    def test_smtp_options_come_from_the_email_settings(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            options = legacy_options("django.core.mail.backends.smtp.EmailBackend")

        assert options == {
            "host": "smtp.shop.invalid",
            "port": 2525,
            "username": "shop",
            "password": "legacy-password",
            "use_tls": False,
            "use_ssl": False,
            "timeout": 7,
        }

    def test_file_backend_writes_to_email_file_path(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            with legacy_settings(
                EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
                EMAIL_FILE_PATH=directory,
            ):
                send_mail("Filed", "Body", None, ["ann@example.com"])
            (written,) = Path(directory).iterdir()
            content = written.read_text()

        assert "Subject: Filed" in content
        assert mail.outbox == []

    def test_console_backend_as_default_fails_check_deploy(self) -> None:
        with legacy_settings(EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend"):
            found = [m.id for m in run_checks(include_deployment_checks=True)]
            try:
                call_command("check", "--deploy", stderr=io.StringIO())
            except SystemCheckError as exc:
                error = str(exc)
            else:
                error = ""

        assert "mailpost.E004" in found
        assert "EMAIL_BACKEND uses the development-only backend" in error

    def test_empty_email_backend_means_no_default_mailer_warning(self) -> None:
        with legacy_settings(EMAIL_BACKEND=""):
            messages = run_checks(tags=["mailpost"])

        assert [m.id for m in messages] == ["mailpost.W001"]

    def test_legacy_settings_really_connect_with_credentials(self) -> None:
        """A real run (no test runner, so no capture): the management command, through
        the SMTP server named by EMAIL_HOST / EMAIL_PORT, logging in as EMAIL_HOST_USER."""
        with SMTPServer("legacy-user", "legacy-secret") as server:
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "mysite.settings_legacy",
                "SHOP_EMAIL_HOST": HOST,
                "SHOP_EMAIL_PORT": str(server.port),
                "SHOP_EMAIL_USER": "legacy-user",
                "SHOP_EMAIL_PASSWORD": "legacy-secret",
            }
            done = subprocess.run(
                [
                    sys.executable,
                    # Warnings are errors, except Django 6.1's deprecation of the
                    # project's own EMAIL_* settings, raised while manage.py loads them.
                    "-W",
                    "error",
                    "-W",
                    "ignore:The EMAIL_:PendingDeprecationWarning:__main__",
                    str(PROJECT_DIR / "manage.py"),
                    "mailpost_sendtestemail",
                    "ann@example.com",
                    "--admins",
                ],
                env=env,
                cwd=PROJECT_DIR,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        assert done.returncode == 0, done.stderr
        assert "Sent a test message through mailer 'default' to ann@example.com." in done.stdout
        first, second = server.received
        assert first.login == second.login == "legacy-user"
        assert first.rcpt_tos == ["ann@example.com"]
        assert first.mail_from == "shop@example.com"
        assert second.rcpt_tos == ["ops@example.com"]
        assert second.mail_from == "server@example.com"
        assert second.message["Subject"].startswith("[Shop] Test email from ")
