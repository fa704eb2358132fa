"""HTTP email-API backends: one model (:class:`HTTPBackend`), a module per provider.

Each provider is configured as ``mailpost.backends.<name>.EmailBackend`` (``resend``,
``sendgrid``, ``postmark``, ``brevo``, ``sequenzy``, ``mailgun``, ``ses``); see
``docs/providers.md``. Provider-side features
(tags, metadata, scheduled send, stored templates, tracking) are set on a message as
``message.provider_extras = ProviderExtras(...)``. Needs ``pip install "mailpost[http]"``.
"""

from __future__ import annotations

from mailpost.backends.http._base import HTTPBackend, Request
from mailpost.backends.http._parts import Attachment, Parts, ProviderExtras, UnsupportedFeature

__all__ = ["Attachment", "HTTPBackend", "Parts", "ProviderExtras", "Request", "UnsupportedFeature"]
