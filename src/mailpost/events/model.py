"""The one event model every webhook parser and the DSN parser produce.

A :class:`DeliveryEvent` says what happened to one message for one recipient, after the
mailer accepted it: delivered, bounced, complained about, opened... ``kind`` is one of
:data:`KINDS`; bounces also carry ``bounce`` (``"hard"`` or ``"soft"``).
:class:`WebhookRejected` is the only exception :func:`mailpost.events.parse` raises for
anything it will not believe: unsigned, badly signed, stale, malformed or oversized.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, get_args

from mailpost.exceptions import MailpostError

__all__ = ["BOUNCE_TYPES", "KINDS", "DeliveryEvent", "Kind", "WebhookRejected"]

Kind = Literal[
    "sent",
    "delivered",
    "deferred",
    "bounced",
    "complained",
    "rejected",
    "opened",
    "clicked",
    "unsubscribed",
]
KINDS: tuple[str, ...] = get_args(Kind)
BounceType = Literal["hard", "soft"]
BOUNCE_TYPES: tuple[str, ...] = get_args(BounceType)


@dataclass(slots=True)
class DeliveryEvent:
    """What happened to one message for one recipient, as a provider or a DSN reported it.

    ``message_id`` is our RFC 5322 Message-ID (angle brackets stripped) when the provider
    echoes it back; ``provider_message_id`` is the provider's own id (what its API returned
    on send). ``timestamp`` is timezone-aware UTC. ``raw`` is the provider's record for this
    event, decoded from JSON (or the DSN's per-recipient fields).
    """

    kind: Kind
    recipient: str
    provider: str
    timestamp: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    message_id: str | None = None
    provider_message_id: str | None = None
    bounce: BounceType | None = None
    reason: str = ""
    smtp_code: int | None = None
    status: str | None = None  # enhanced status code, e.g. "5.1.1"
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def permanent(self) -> bool:
        """A hard bounce, a rejection or a complaint: stop sending to this address."""
        return (
            (self.kind == "bounced" and self.bounce == "hard")
            or self.kind == "complained"
            or self.kind == "unsubscribed"
        )


class WebhookRejected(MailpostError, ValueError):
    """A webhook request that must not be believed.

    ``status`` is the HTTP status to answer with: 401 when authentication or the signature
    is missing or wrong, 400 for a stale timestamp, a body too large or not in the
    provider's format. The message says which, without echoing secrets.
    """

    def __init__(self, message: str, *, status: int = 400, provider: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.provider = provider

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (str(self), self.status, self.provider))


def _rebuild(message: str, status: int, provider: str | None) -> WebhookRejected:
    return WebhookRejected(message, status=status, provider=provider)
