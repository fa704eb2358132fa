"""The outcome rules every spool store shares (mailpost.spool.rules), without a database."""

from __future__ import annotations

from mailpost.spool.record import MessageState, Outcome, RecipientResult, SpoolRecipient
from mailpost.spool.rules import Stored, apply_outcome

TOKEN = "t1"


def _stored(*statuses: str, state: MessageState = "leased", token: str | None = TOKEN,
            attempts: int = 0) -> Stored:  # fmt: skip
    recipients = [
        SpoolRecipient(f"r{i}@x.test", status)  # type: ignore[arg-type]
        for i, status in enumerate(statuses)
    ]
    return Stored(state, token, recipients, attempts)


def _outcome(*statuses: str, give_up: bool = False, error: str | None = None) -> Outcome:
    results = [
        RecipientResult(f"r{i}@x.test", status, 250 if status == "delivered" else 451, "reply")  # type: ignore[arg-type]
        for i, status in enumerate(statuses)
        if status
    ]
    return Outcome(results, started_at=1.0, finished_at=2.0, retry_at=60.0, give_up=give_up,
                   error=error)  # fmt: skip


def test_every_recipient_delivered_by_the_holder_makes_the_record_sent() -> None:
    result = apply_outcome(_stored("pending", "pending"), TOKEN, _outcome("delivered", "delivered"))
    assert (result.state, result.owner_settles, result.reschedule) == ("sent", True, False)
    assert [r.status for r in result.recipients] == ["delivered", "delivered"]
    assert result.attempts == 1
    assert result.label == "delivered"


def test_a_temporary_failure_requeues_for_a_retry_keeping_what_was_delivered() -> None:
    result = apply_outcome(_stored("pending", "pending"), TOKEN, _outcome("delivered", "pending"))
    assert (result.state, result.reschedule) == ("queued", True)
    assert [r.status for r in result.recipients] == ["delivered", "pending"]
    assert result.label == "partial, will retry"


def test_delivered_is_final_even_if_a_later_attempt_reports_a_refusal() -> None:
    result = apply_outcome(_stored("delivered", "pending"), TOKEN, _outcome("failed", "delivered"))
    assert [r.status for r in result.recipients] == ["delivered", "delivered"]
    assert result.recipients[0].code is None  # the refusal did not touch it
    assert result.state == "sent"


def test_a_permanent_refusal_of_one_recipient_makes_the_record_dead_once_none_is_pending() -> None:
    result = apply_outcome(_stored("pending", "pending"), TOKEN, _outcome("delivered", "failed"))
    assert result.state == "dead"
    assert [r.status for r in result.recipients] == ["delivered", "failed"]
    assert result.label == "partial, refused"


def test_giving_up_fails_the_pending_recipients_and_names_the_attempts() -> None:
    stored = _stored("delivered", "pending", attempts=4)
    result = apply_outcome(stored, TOKEN, _outcome("", "pending", give_up=True, error="451 busy"))
    assert result.state == "dead"
    assert result.recipients[1].status == "failed"
    assert result.recipients[1].reply.startswith("gave up after 5 attempt(s)")
    assert result.error == "gave up after 5 attempt(s): 451 busy"
    assert (result.label, result.reschedule) == ("gave-up", False)


def test_a_worker_whose_lease_was_lost_records_deliveries_but_not_the_state() -> None:
    stored = _stored("pending", "pending", token="someone-else")
    result = apply_outcome(stored, TOKEN, _outcome("delivered", "pending", give_up=True))
    assert not result.owner_settles
    assert result.state == "leased"
    assert [r.status for r in result.recipients] == ["delivered", "pending"]  # no give-up
    assert result.label == "partial, will retry (lease lost)"


def test_an_outcome_for_a_record_no_longer_leased_still_settles_it_when_nothing_is_pending() -> (
    None
):
    result = apply_outcome(_stored("pending", state="queued"), TOKEN, _outcome("delivered"))
    assert (result.state, result.owner_settles, result.reschedule) == ("sent", True, False)
    waiting = apply_outcome(_stored("pending", state="queued"), TOKEN, _outcome("pending"))
    assert (waiting.state, waiting.reschedule) == ("queued", False)  # its schedule is kept


def test_the_stored_recipients_are_not_modified() -> None:
    stored = _stored("pending")
    apply_outcome(stored, TOKEN, _outcome("delivered"))
    assert stored.recipients[0].status == "pending"


def test_results_for_addresses_not_in_the_record_are_ignored() -> None:
    outcome = Outcome([RecipientResult("stranger@x.test", "delivered")], 1.0, 2.0, 60.0)
    result = apply_outcome(_stored("pending"), TOKEN, outcome)
    assert [r.address for r in result.recipients] == ["r0@x.test"]
    assert result.state == "queued"


def test_the_all_delivered_shortcut_gives_what_the_rules_give_and_only_when_they_give_sent() -> (
    None
):
    """apply_outcome works out the usual case (the holder reports every pending recipient
    delivered) in one pass; every other case, even a near miss, goes rule by rule."""
    from itertools import product

    from mailpost.spool.rules import _all_delivered, _by_the_rules

    statuses = ("pending", "delivered", "failed", "")
    shortcut = 0
    for stored_statuses, tried, (state, token) in product(
        product(statuses[:3], repeat=2),
        product(statuses, repeat=2),
        [("leased", TOKEN), ("leased", "other"), ("queued", None)],
    ):
        stored = _stored(*stored_statuses, state=state, token=token)  # type: ignore[arg-type]
        outcome = _outcome(*tried)
        fast = _all_delivered(stored, TOKEN, outcome)
        slow = _by_the_rules(stored, TOKEN, outcome)
        assert apply_outcome(stored, TOKEN, outcome) == (slow if fast is None else fast)
        if fast is not None:
            shortcut += 1
            assert fast._replace(as_tried=False) == slow
            assert (fast.state, fast.as_tried) == ("sent", True)
            assert [(r.address, r.status, r.code, r.reply) for r in fast.recipients] == [
                (r.address, r.status, r.code, r.reply) for r in outcome.recipients
            ]
    assert shortcut == 1  # pending, pending -> delivered, delivered by the holder
    # the same address twice is left to the rules (which deliver it once)
    twice = Stored("leased", TOKEN, [SpoolRecipient("a@x.test"), SpoolRecipient("a@x.test")], 0)
    both = Outcome([RecipientResult("a@x.test", "delivered", 250, "ok")] * 2, 1.0, 2.0, 60.0)
    assert _all_delivered(twice, TOKEN, both) is None
    assert apply_outcome(twice, TOKEN, both) == _by_the_rules(twice, TOKEN, both)
