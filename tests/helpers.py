"""Test helpers shared by every test module: message factories and common MAILERS setups.

The SMTP fault-injecting server lives in ``smtpd_harness``; the backend contract in
``backend_contract``. Import from here rather than writing another factory.
"""

from __future__ import annotations

import datetime
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import mailpost
from mailpost import EmailMessage

__all__ = [
    "EXAMPLES",
    "configure_suppress_over_locmem",
    "load_example",
    "make_message",
    "self_signed_pem",
]


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


def self_signed_pem(key: Any, common_name: str, alt_names: Sequence[Any] = ()) -> bytes:
    """A PEM certificate for ``key``'s public half, signed by ``key`` itself (no CA), valid
    from a day ago to a day from now; ``alt_names`` are ``x509.GeneralName``s."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
