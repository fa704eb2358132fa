"""What happened to a message when a backend tried to send it.

Every backend sets ``message.delivery`` (a :class:`DeliveryResult`) and
``message.sent_using`` (the mailer alias) on each message it handles, delivered or not.
SMTP fills in the per-recipient replies and the server's reply to DATA; other backends
record every recipient as accepted once the message is written out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["DeliveryResult", "RecipientStatus", "is_retryable_code"]

Status = Literal["accepted", "refused", "unattempted", "suppressed"]
#: "suppressed": on the do-not-send list (mailpost.backends.suppress); never sent to, not an
#: error (``ok`` ignores it) and never retried, but listed in ``refused``.


def is_retryable_code(code: int | None) -> bool:
    """A reply code means "try again later": 4xx, or no reply at all (connection lost)."""
    return code is None or 400 <= code < 500


@dataclass(slots=True)
class RecipientStatus:
    """One envelope recipient's outcome: the server's RCPT reply when there was one."""

    address: str
    status: Status
    code: int | None = None
    reply: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def retryable(self) -> bool:
        """Refused or never tried for a transient reason (4xx, or no reply)."""
        if self.status == "suppressed":
            return False
        return self.status != "accepted" and is_retryable_code(self.code)


@dataclass(slots=True)
class DeliveryResult:
    """What happened to one message on one mailer.

    ``sent`` is true when the server (or provider) took the message for at least one recipient (the
    count ``send_messages`` returns). ``ok`` is true only when it was taken for every one.
    ``error`` describes the failure in words that never include credentials.
    ``attempted`` is false when the message never reached the server (it could not be
    connected to, TLS or authentication failed, or the batch stopped before this message):
    then nothing was said about the message itself, whatever ``error_code`` is.
    """

    mailer: str | None = None
    message_id: str | None = None
    sent: bool = False
    recipients: list[RecipientStatus] = field(default_factory=list)
    response: tuple[int, str] | None = None
    error: str | None = None
    error_code: int | None = None
    retryable: bool = False
    attempted: bool = True
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    #: The id an HTTP email API gave the message (Resend, SendGrid, Postmark ...), if any.
    provider_message_id: str | None = None
    #: Seconds the provider asked us to wait before retrying (HTTP 429 ``Retry-After``).
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """Nothing went wrong: sent to every recipient (or there was no one to send to)."""
        if self.error is not None:
            return False
        for r in self.recipients:
            if r.status not in ("accepted", "suppressed"):
                return False
        return self.sent or all(r.status == "suppressed" for r in self.recipients)

    @property
    def accepted(self) -> list[str]:
        """Recipients the message was delivered to (empty when the message was not sent)."""
        if not self.sent:
            return []
        return [r.address for r in self.recipients if r.accepted]

    @property
    def refused(self) -> dict[str, tuple[int | None, str]]:
        """Recipients that did not get the message, with the reply code and text."""
        return {
            r.address: (r.code, r.reply) for r in self.recipients if not r.accepted or not self.sent
        }

    @classmethod
    def all_accepted(
        cls, recipients: list[str], *, mailer: str | None, message_id: str | None = None
    ) -> DeliveryResult:
        """The result for a backend that takes every message whole (console, file, memory)."""
        return cls(
            mailer=mailer,
            message_id=message_id,
            sent=True,
            recipients=[RecipientStatus(a, "accepted") for a in recipients],
        )
