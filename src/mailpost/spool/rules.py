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

from typing import NamedTuple

from mailpost.spool.record import MessageState, Outcome, SpoolRecipient

__all__ = ["Settlement", "Stored", "apply_outcome", "label"]


class Stored(NamedTuple):
    """What the store holds for a record when an outcome arrives."""

    state: MessageState
    lease_token: str | None
    recipients: list[SpoolRecipient]
    attempts: int


class Settlement(NamedTuple):
    """What to write back after one outcome.

    ``owner_settles``: the record's state and lease are rewritten (the lease holder
    reported, or the record was no longer leased); otherwise only ``recipients`` and
    ``attempts`` are (the lease was lost to another worker). ``reschedule``: the next
    attempt is due at the outcome's ``retry_at``. ``as_tried``: ``recipients`` are the
    outcome's results, one for one, in order (a store may write the same text for both).
    """

    recipients: list[SpoolRecipient]
    attempts: int
    state: MessageState
    owner_settles: bool
    reschedule: bool
    error: str | None
    label: str
    as_tried: bool = False


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
    settled = _all_delivered(stored, lease_token, outcome)
    return _by_the_rules(stored, lease_token, outcome) if settled is None else settled


def _by_the_rules(stored: Stored, lease_token: str | None, outcome: Outcome) -> Settlement:
    """:func:`apply_outcome` for every case, rule by rule."""
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


def _all_delivered(stored: Stored, lease_token: str | None, outcome: Outcome) -> Settlement | None:
    """The usual case, worked out in one pass: the lease holder reports every recipient,
    all still pending, as delivered (the rules above give "sent"); None otherwise."""
    tried = outcome.recipients
    if (
        stored.state != "leased"
        or stored.lease_token != lease_token
        or len(tried) != len(stored.recipients)
        or len({result.address for result in tried}) != len(tried)  # an address twice
    ):
        return None
    recipients = []
    for current, result in zip(stored.recipients, tried, strict=True):
        if (
            result.status != "delivered"
            or current.status != "pending"
            or current.address != result.address
        ):
            return None
        recipients.append(SpoolRecipient(result.address, "delivered", result.code, result.reply))
    return Settlement(
        recipients, stored.attempts + 1, "sent", True, False, outcome.error, "delivered", True
    )
