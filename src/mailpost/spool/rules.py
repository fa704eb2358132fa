"""How one attempt's outcome changes a spooled record: the rules every store shares.

Pure functions over values (no SQL, no I/O), so each store only reads the stored row,
calls :func:`apply_outcome` and writes back what it returns.

- Delivered is final: a recipient once delivered is never changed again.
- A refusal or a failure changes only a recipient still pending.
- Only the holder of the current lease settles the record's state (queued for a retry,
  sent, dead); a worker whose lease was lost records only what it delivered.
- When the policy gives up, the recipients still pending fail and the record is dead.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailpost.spool.record import MessageState, Outcome, SpoolRecipient

__all__ = ["Settlement", "Stored", "apply_outcome", "label"]


@dataclass(frozen=True)
class Stored:
    """What the store holds for a record when an outcome arrives."""

    state: MessageState
    lease_token: str | None
    recipients: list[SpoolRecipient]
    attempts: int


@dataclass(frozen=True)
class Settlement:
    """What to write back after one outcome.

    ``owner_settles``: the record's state and lease are rewritten (the lease holder
    reported, or the record was no longer leased); otherwise only ``recipients`` and
    ``attempts`` are (the lease was lost to another worker). ``reschedule``: the next
    attempt is due at the outcome's ``retry_at``.
    """

    recipients: list[SpoolRecipient]
    attempts: int
    state: MessageState
    owner_settles: bool
    reschedule: bool
    error: str | None
    label: str


def label(outcome: Outcome, pending: bool) -> str:
    """The history's one-line summary of an attempt."""
    statuses = {r.status for r in outcome.recipients}
    if statuses <= {"delivered"}:
        return "delivered"
    if pending:
        return "partial, will retry" if "delivered" in statuses else "will retry"
    return "partial, refused" if "delivered" in statuses else "refused"


def apply_outcome(stored: Stored, lease_token: str | None, outcome: Outcome) -> Settlement:
    """The record after ``outcome``, reported by the worker that holds ``lease_token``.

    ``stored.recipients`` is not modified: the result carries new recipient objects.
    """
    recipients = [SpoolRecipient(r.address, r.status, r.code, r.reply) for r in stored.recipients]
    attempts = stored.attempts + 1
    by_address = {r.address: r for r in recipients}
    for result in outcome.recipients:
        current = by_address.get(result.address)
        if current is None or current.status == "delivered":
            continue
        if result.status == "delivered":
            current.status = "delivered"
        elif current.status == "pending":
            current.status = result.status
        else:
            continue
        current.code, current.reply = result.code, result.reply
    owns = stored.state == "leased" and stored.lease_token == lease_token
    pending = [r for r in recipients if r.status == "pending"]
    summary = label(outcome, bool(pending))
    error = outcome.error
    if owns and pending and outcome.give_up:
        for r in pending:
            r.status = "failed"
            r.reply = f"gave up after {attempts} attempt(s); last reply: {r.reply}".strip()
        error = f"gave up after {attempts} attempt(s): {error or 'not delivered'}"
        summary = "gave-up"
        pending = []
    if not owns and stored.state == "leased":
        return Settlement(
            recipients, attempts, stored.state, False, False, error, f"{summary} (lease lost)"
        )
    state: MessageState
    if pending:
        state = "queued" if owns else stored.state
    else:
        state = "dead" if any(r.status == "failed" for r in recipients) else "sent"
    return Settlement(recipients, attempts, state, True, bool(owns and pending), error, summary)
