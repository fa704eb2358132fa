"""Delivery events: webhooks from every provider, SMTP bounces, and a do-not-send list.

- :func:`parse` verifies and normalizes one provider webhook request into
  :class:`DeliveryEvent` objects (or raises :class:`WebhookRejected`);
- :func:`on_event` subscribes a handler (sync or async) to the events every endpoint
  receives (:func:`mailpost.events.asgi.webhook_app`,
  :func:`mailpost.integrations.flask_webhooks.webhook_blueprint`,
  :func:`mailpost.integrations.django.webhooks.webhook_view`);
- :class:`SuppressionStore` is the do-not-send list fed by hard bounces and complaints,
  which :mod:`mailpost.backends.suppress` obeys;
- :func:`parse_dsn` reads RFC 3464 bounce messages (and common non-standard ones).

See docs/events.md.
"""

from __future__ import annotations

from mailpost._suppressions import Suppression, SuppressionStore, open_suppressions
from mailpost.events.dispatch import (
    Endpoint,
    adispatch,
    dispatch,
    handle_request,
    off_event,
    on_event,
)
from mailpost.events.dsn import parse_dsn, parse_mailbox
from mailpost.events.model import KINDS, DeliveryEvent, WebhookRejected
from mailpost.events.webhooks import PROVIDERS, WebhookConfig, parse

__all__ = [
    "KINDS",
    "PROVIDERS",
    "DeliveryEvent",
    "Endpoint",
    "Suppression",
    "SuppressionStore",
    "WebhookConfig",
    "WebhookRejected",
    "adispatch",
    "dispatch",
    "handle_request",
    "off_event",
    "on_event",
    "open_suppressions",
    "parse",
    "parse_dsn",
    "parse_mailbox",
]
