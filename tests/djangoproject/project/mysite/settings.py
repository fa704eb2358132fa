"""The project configured the mailpost way: MAILERS.

Hosts ending in ``.invalid`` never resolve: if the test-run capture did not apply, the
send would fail loudly instead of reaching a real server.
"""

from __future__ import annotations

from mysite.base import *  # noqa: F403

MAILERS = {
    "default": {
        "BACKEND": "mailpost.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "smtp.shop.invalid", "port": 2525, "timeout": 5},
    },
    # Django's own dotted path: mailpost maps it to its SMTP backend.
    "notifications": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "notify.shop.invalid", "use_tls": True},
    },
    # A Django-native third-party backend, used as is.
    "esp": {"BACKEND": "anymail.backends.test.EmailBackend"},
    # An HTTP email API: switching a mailer from SMTP to Resend is this one entry.
    "transactional": {
        "BACKEND": "mailpost.backends.resend.EmailBackend",
        "OPTIONS": {"api_key": "re_test", "base_url": "https://api.resend.invalid"},
    },
}
