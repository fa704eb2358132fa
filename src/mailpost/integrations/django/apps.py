"""The Django app: ``INSTALLED_APPS = [..., "mailpost.integrations.django"]``."""

from __future__ import annotations

from django.apps import AppConfig


class MailpostConfig(AppConfig):  # type: ignore[misc]  # django has no type stubs here
    """Registers mailpost's system checks and, on Django < 6.1, the test-run mailer swap."""

    name = "mailpost.integrations.django"
    label = "mailpost"
    verbose_name = "mailpost"

    def ready(self) -> None:
        from mailpost.integrations.django import _testenv, checks

        checks.register()
        _testenv.register()
