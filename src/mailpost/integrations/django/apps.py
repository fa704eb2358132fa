"""The Django app: ``INSTALLED_APPS = [..., "mailpost.integrations.django"]``."""

from __future__ import annotations

from django.apps import AppConfig


class MailpostConfig(AppConfig):  # type: ignore[misc]  # django has no type stubs here
    """Registers mailpost's system checks and the spool's transaction hook (test runs
    capture mail with or without it)."""

    name = "mailpost.integrations.django"
    label = "mailpost"
    verbose_name = "mailpost"

    def ready(self) -> None:
        from mailpost.integrations.django import checks, transactions

        checks.register()
        transactions.register()
