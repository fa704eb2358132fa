"""mailpost: send email from any Python program.

The names below are the public API; they follow the ``django.core.mail`` documentation
(``send_mail``, ``EmailMessage``, ``mailers``, ...) so code written for it runs unchanged.
"""

from __future__ import annotations

from typing import Any

from mailpost import _django
from mailpost._admins import amail_admins, amail_managers, mail_admins, mail_managers
from mailpost._api import asend_mail, asend_mass_mail, get_connection, send_mail, send_mass_mail
from mailpost._config import configure
from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost._mime_compat import forbid_multi_line_headers
from mailpost.exceptions import (
    BadHeaderError,
    DeliveryError,
    ImproperlyConfigured,
    InvalidAddress,
    InvalidMailer,
    MailerDoesNotExist,
    MailpostDeprecationWarning,
    MailpostError,
    MissingDependency,
)
from mailpost.handler import mailers
from mailpost.message import (
    DEFAULT_ATTACHMENT_MIME_TYPE,
    EmailAlternative,
    EmailAttachment,
    EmailMessage,
    EmailMultiAlternatives,
    make_msgid,
)
from mailpost.utils import DNS_NAME, CachedDnsName

__version__ = "0.1.0"


#: compat: deprecated names Django 6.1 still exports; reading one warns, as in Django.
_DEPRECATED_NAMES = ("SafeMIMEMultipart", "SafeMIMEText")


def __getattr__(name: str) -> Any:
    """``mailpost.outbox`` during a Django test run is Django's ``mail.outbox``; the
    deprecated ``SafeMIMEText`` / ``SafeMIMEMultipart`` warn when read."""
    if name == "outbox":
        box = _django.outbox()
        if box is not None:
            return box
    if name in _DEPRECATED_NAMES:
        from mailpost import _mime_compat

        _mime_compat.warn_name(name)
        return getattr(_mime_compat, name)
    raise AttributeError(f"module 'mailpost' has no attribute {name!r}")


__all__ = [
    "DEFAULT_ATTACHMENT_MIME_TYPE",
    "DNS_NAME",
    "BadHeaderError",
    "CachedDnsName",
    "DeliveryError",
    "DeliveryResult",
    "EmailAlternative",
    "EmailAttachment",
    "EmailMessage",
    "EmailMultiAlternatives",
    "ImproperlyConfigured",
    "InvalidAddress",
    "InvalidMailer",
    "MailerDoesNotExist",
    "MailpostDeprecationWarning",
    "MailpostError",
    "MissingDependency",
    "RecipientStatus",
    "SafeMIMEMultipart",
    "SafeMIMEText",
    "amail_admins",
    "amail_managers",
    "asend_mail",
    "asend_mass_mail",
    "configure",
    "forbid_multi_line_headers",
    "get_connection",
    "mail_admins",
    "mail_managers",
    "mailers",
    "make_msgid",
    "send_mail",
    "send_mass_mail",
]
