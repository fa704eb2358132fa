"""When to try again, when to give up, and what a delivery result means per recipient.

Defaults follow Postfix: the first retry after ``minimal_backoff_time`` (300 s), the delay
doubling up to ``maximal_backoff_time`` (4000 s), bouncing after ``maximal_queue_lifetime``
(5 days). Jitter only ever shortens a delay, so ``max_delay`` is a hard cap and workers
retrying the same outage spread out instead of reconnecting in lockstep.

Classification (:func:`classify`) is pure: a recipient the mailer accepted is delivered
and never sent again; a 5xx refusal is permanent and never retried; anything else (4xx,
421, connection loss, timeout, an exception) is retried until the policy gives up.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost.exceptions import BadHeaderError
from mailpost.spool.record import RecipientResult, RecipientState

__all__ = ["RetryPolicy", "classify", "is_permanent_code"]


def is_permanent_code(code: int | None) -> bool:
    """A 5xx reply: the server will never take this, so it is not retried."""
    return code is not None and 500 <= code < 600


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with downward jitter and a maximum message age.

    After the n-th failed attempt the next one is due after
    ``min(max_delay, first_delay * multiplier ** (n - 1))`` seconds, shortened by up to
    ``jitter`` (a fraction). A message still pending ``max_age`` seconds after it was
    queued (or after ``max_attempts`` attempts, when set) is given up: dead-lettered.
    """

    first_delay: float = 300.0
    max_delay: float = 4000.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_age: float = 5 * 86400.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not self.first_delay > 0:
            raise ValueError(f"retry first_delay must be > 0, got {self.first_delay!r}")
        if self.max_delay < self.first_delay:
            raise ValueError(
                f"retry max_delay ({self.max_delay!r}) must be >= first_delay "
                f"({self.first_delay!r})"
            )
        if self.multiplier < 1:
            raise ValueError(f"retry multiplier must be >= 1, got {self.multiplier!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"retry jitter must be in [0, 1), got {self.jitter!r}")
        if not self.max_age > 0:
            raise ValueError(f"retry max_age must be > 0, got {self.max_age!r}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"retry max_attempts must be >= 1, got {self.max_attempts!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> RetryPolicy:
        """Build from a ``{"first_delay": 60, ...}`` mapping; unknown keys are rejected."""
        if options is None:
            return cls()
        if not isinstance(options, Mapping):
            raise ValueError(f"'retry' must be a dict, not {type(options).__name__}")
        known = {"first_delay", "max_delay", "multiplier", "jitter", "max_age", "max_attempts"}
        unknown = sorted(str(k) for k in set(options) - known)
        if unknown:
            raise ValueError(
                f"unknown 'retry' key(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {}
        for key, value in options.items():
            if key == "max_attempts":
                kwargs[key] = None if value is None else int(value)
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"'retry' {key!r} must be a number, not {value!r}")
                kwargs[key] = float(value)
        return cls(**kwargs)

    def base_delay(self, failures: int) -> float:
        """The delay after the ``failures``-th failed attempt, before jitter."""
        exponent = max(0, failures - 1)
        try:
            raw = self.first_delay * self.multiplier**exponent
        except OverflowError:
            return self.max_delay
        return min(self.max_delay, raw)

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """The jittered delay: in ``[base * (1 - jitter), base]``."""
        base = self.base_delay(failures)
        if not self.jitter:
            return base
        r = (rng or random).random()
        return base * (1.0 - self.jitter * r)

    def gives_up(self, *, created_at: float, now: float, attempts: int) -> bool:
        """Whether a message still pending after ``attempts`` attempts is abandoned now."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return now - created_at >= self.max_age


def _find(statuses: list[RecipientStatus], address: str) -> RecipientStatus | None:
    for status in statuses:
        if status.address == address:
            return status
    low = address.lower()
    for status in statuses:
        if status.address.lower() == low:
            return status
    return None


def classify(
    pending: list[str],
    delivery: DeliveryResult | None,
    *,
    returned: int | None = None,
    error: BaseException | None = None,
) -> tuple[list[RecipientResult], str | None]:
    """Turn what a mailer reported for one message into a result per pending recipient.

    ``delivery`` is the result the backend recorded on the message (built-in backends
    always do). Without one, a return value of 1 means every recipient got it and an
    exception (or 0) means none did, retryably. Returns the per-recipient results and a
    one-line error for the history (None when everything was delivered).
    """
    if delivery is None:
        if error is None and returned == 1:
            return [RecipientResult(a, "delivered") for a in pending], None
        text = _describe(error) if error is not None else "the mailer reported 0 messages sent"
        verdict: RecipientState = "failed" if isinstance(error, BadHeaderError) else "pending"
        return [RecipientResult(a, verdict, None, text) for a in pending], text
    if not delivery.attempted and not delivery.sent:
        # The server never saw this message (connection, TLS or AUTH failed): a mailer
        # problem, not the message's. Wait and retry, even on a 5xx such as 535.
        text = delivery.error or "the message did not reach the server"
        return [RecipientResult(a, "pending", delivery.error_code, text) for a in pending], text
    statuses = delivery.recipients
    if delivery.sent and len(statuses) == len(pending):  # the usual case: all accepted
        response = delivery.response
        accepted: list[RecipientResult] = []
        for address, given in zip(pending, statuses, strict=True):
            if given.address != address or not given.accepted:
                break
            code, reply = response if response else (given.code, given.reply)
            accepted.append(RecipientResult(address, "delivered", code, reply))
        else:
            return accepted, None
    message_permanent = is_permanent_code(delivery.error_code) or isinstance(
        delivery.exception, BadHeaderError
    )
    message_reply = delivery.error or (_describe(error) if error is not None else "")
    results: list[RecipientResult] = []
    for address in pending:
        status = _find(delivery.recipients, address)
        if delivery.sent and status is not None and status.accepted:
            code, reply = delivery.response if delivery.response else (status.code, status.reply)
            results.append(RecipientResult(address, "delivered", code, reply))
        elif status is not None and status.status == "refused" and status.code is not None:
            refusal: RecipientState = "failed" if is_permanent_code(status.code) else "pending"
            results.append(RecipientResult(address, refusal, status.code, status.reply))
        elif status is not None and status.status == "suppressed":  # do-not-send list: final
            results.append(RecipientResult(address, "failed", None, status.reply))
        elif delivery.sent and status is None and not delivery.recipients:
            results.append(RecipientResult(address, "delivered"))
        else:
            other: RecipientState = "failed" if message_permanent else "pending"
            results.append(RecipientResult(address, other, delivery.error_code, message_reply))
    errors = [
        f"{r.address}: {r.code or ''} {r.reply}".strip() for r in results if r.status != "delivered"
    ]
    summary = None
    if errors:
        summary = delivery.error or "; ".join(errors[:3]) + (" ..." if len(errors) > 3 else "")
    return results, summary


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
