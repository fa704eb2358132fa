"""The spool's value objects: what is stored per message, per recipient, per attempt.

A record never holds settings, OPTIONS or credentials: only the wire bytes, the envelope,
the target mailer's alias and the delivery bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Attempt",
    "MessageState",
    "NewMessage",
    "Outcome",
    "RecipientResult",
    "RecipientState",
    "SpoolRecipient",
    "SpoolRecord",
]

#: queued: waiting for its next attempt; leased: a worker holds it; sent: every recipient
#: accepted it; dead: no recipient is pending and at least one will never get it.
MessageState = Literal["queued", "leased", "sent", "dead"]
STATES: tuple[MessageState, ...] = ("queued", "leased", "sent", "dead")

#: pending: still to be delivered; delivered: the mailer accepted it (never resent);
#: failed: refused permanently (5xx) or given up on.
RecipientState = Literal["pending", "delivered", "failed"]


@dataclass(slots=True)
class SpoolRecipient:
    """One envelope recipient of a spooled message and what happened to it so far."""

    address: str
    status: RecipientState = "pending"
    code: int | None = None
    reply: str = ""


@dataclass
class SpoolRecord:
    """A spooled message: envelope, bookkeeping and (when loaded) its wire bytes."""

    id: int
    message_id: str | None
    mailer: str
    sender: str
    recipients: list[SpoolRecipient]
    priority: int
    state: MessageState
    created_at: float
    send_at: float | None
    next_attempt_at: float
    attempts: int
    lease_owner: str | None
    lease_expires_at: float | None
    last_error: str | None
    updated_at: float
    size: int
    queued_at: float = 0.0
    data: bytes | None = field(default=None, repr=False)
    lease_token: str | None = field(default=None, repr=False)
    #: The stored recipients as read (lets a settle skip decoding them again).
    recipients_text: str | None = field(default=None, repr=False, compare=False)

    @property
    def pending(self) -> list[str]:
        """Addresses still to be delivered."""
        return [r.address for r in self.recipients if r.status == "pending"]

    @property
    def delivered(self) -> list[str]:
        return [r.address for r in self.recipients if r.status == "delivered"]

    @property
    def failed(self) -> list[SpoolRecipient]:
        return [r for r in self.recipients if r.status == "failed"]


@dataclass
class Attempt:
    """One delivery attempt in a message's history."""

    attempt: int
    started_at: float
    finished_at: float
    worker: str
    outcome: str
    error: str | None
    recipients: list[SpoolRecipient]


@dataclass
class NewMessage:
    """What :meth:`SpoolStore.enqueue` stores: bytes, envelope, target mailer, schedule."""

    data: bytes
    sender: str
    recipients: list[str]
    mailer: str
    message_id: str | None = None
    priority: int = 0
    send_at: float | None = None


@dataclass(slots=True)
class RecipientResult:
    """What one attempt did for one recipient."""

    address: str
    status: RecipientState
    code: int | None = None
    reply: str = ""


@dataclass(slots=True)
class Outcome:
    """What a worker reports after one attempt on a leased record.

    ``recipients`` lists the recipients that were tried; ``retry_at`` is when to try the
    still-pending ones again; ``give_up`` turns them into failures instead.
    """

    recipients: list[RecipientResult]
    started_at: float
    finished_at: float
    retry_at: float
    give_up: bool = False
    error: str | None = None
