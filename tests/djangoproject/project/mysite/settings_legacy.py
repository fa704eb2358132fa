"""The project as it was before MAILERS: only Django's EMAIL_* settings.

The SMTP server comes from the environment so a test can point a real run (a subprocess)
at a local SMTP server; by default it is a host that never resolves.
"""

from __future__ import annotations

import os

from mysite.base import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ.get("SHOP_EMAIL_HOST", "smtp.shop.invalid")
EMAIL_PORT = int(os.environ.get("SHOP_EMAIL_PORT", "2525"))
EMAIL_HOST_USER = os.environ.get("SHOP_EMAIL_USER", "shop")
EMAIL_HOST_PASSWORD = os.environ.get("SHOP_EMAIL_PASSWORD", "legacy-password")
EMAIL_USE_TLS = False
EMAIL_TIMEOUT = 7
