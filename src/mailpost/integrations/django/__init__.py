"""Django drop-in: ``from mailpost import send_mail`` in a Django project, unchanged settings.

Without this app, mailpost already reads a configured Django project's settings live
(``MAILERS``, or the legacy ``EMAIL_*`` ones), and under Django's test runner its
in-memory backend fills ``django.core.mail.outbox`` (legacy projects on every Django,
``MAILERS`` projects on Django 6.1+). Adding ``"mailpost.integrations.django"`` to
``INSTALLED_APPS`` adds:

* system checks (``mailpost.W001`` ...; see :mod:`.checks`): a missing ``default`` mailer,
  a mailer that cannot be built, a development-only default mailer under ``check --deploy``;
* the ``mailpost_sendtestemail`` management command (``--using``, ``--admins``,
  ``--managers``);
* on Django < 6.1 (which does not know ``MAILERS``), the swap Django 6.1's test runner
  makes: every ``MAILERS`` entry uses the in-memory backend while tests run.

See docs/django.md.
"""

from __future__ import annotations

from mailpost.exceptions import MissingDependency

try:
    import django.apps  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        'mailpost.integrations.django needs Django: pip install "mailpost[django]"'
    ) from exc
