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
}
