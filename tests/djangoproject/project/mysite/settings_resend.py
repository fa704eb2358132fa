"""The MAILERS project after moving its default mailer from SMTP to Resend.

The whole change is the ``"default"`` entry; every other mailer is the one in
mysite.settings. ``SHOP_RESEND_URL`` and ``SHOP_RESEND_KEY`` stand in for a production
deployment's environment; without them the mailer points at a loopback port picked here,
where the project's tests listen to prove that a test run posts nothing.
"""

from __future__ import annotations

import os
import socket

from mysite.settings import *  # noqa: F403
from mysite.settings import MAILERS as SMTP_MAILERS


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


RESEND_PORT = _free_loopback_port()

MAILERS = {
    **SMTP_MAILERS,
    "default": {
        "BACKEND": "mailpost.backends.resend.EmailBackend",
        "OPTIONS": {
            "api_key": os.environ.get("SHOP_RESEND_KEY", "re_test"),
            "base_url": os.environ.get("SHOP_RESEND_URL", f"http://127.0.0.1:{RESEND_PORT}"),
        },
    },
}
