"""Test helpers shared by every test module: message factories and common MAILERS setups.

The SMTP fault-injecting server lives in ``smtpd_harness``; the backend contract in
``backend_contract``. Import from here rather than writing another factory.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import mailpost
from mailpost import EmailMessage

__all__ = ["EXAMPLES", "configure_suppress_over_locmem", "load_example", "make_message"]


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str, module_name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as ``module_name`` (registered in ``sys.modules``, as
    frameworks that look their app module up by name need)."""
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def make_message(n: int = 1, **kwargs: Any) -> EmailMessage:
    """A plain message numbered ``n``: subject "Message n", body "Body n", to rcpt-n."""
    fields: dict[str, Any] = {
        "subject": f"Message {n}",
        "body": f"Body {n}\n",
        "from_email": "sender@example.com",
        "to": [f"rcpt-{n}@example.com"],
    }
    fields.update(kwargs)
    return EmailMessage(**fields)


def configure_suppress_over_locmem(store: str, **mailers: Any) -> None:
    """``MAILERS``: "default" checks the suppression list in ``store`` and sends through the
    in-memory "mem"; ``mailers`` adds entries. The outbox starts empty."""
    mailpost.configure(
        MAILERS={
            "mem": {"BACKEND": "mailpost.backends.locmem.EmailBackend"},
            "default": {
                "BACKEND": "mailpost.backends.suppress.EmailBackend",
                "OPTIONS": {"mailer": "mem", "store": store},
            },
            **mailers,
        }
    )
    mailpost.outbox = []
