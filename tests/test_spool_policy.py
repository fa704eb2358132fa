"""Retry policy and per-recipient classification: pure functions, no I/O."""

from __future__ import annotations

import random

import pytest

from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost.exceptions import InvalidAddress
from mailpost.spool.policy import RetryPolicy, classify


def test_default_schedule_follows_postfix() -> None:
    policy = RetryPolicy(jitter=0)
    delays = [policy.delay(n) for n in range(1, 8)]
    assert delays == [300, 600, 1200, 2400, 4000, 4000, 4000]
    assert policy.max_age == 5 * 86400


def test_jitter_only_shortens_and_stays_within_bounds() -> None:
    policy = RetryPolicy(first_delay=100, max_delay=1000, jitter=0.25)
    rng = random.Random(7)
    for failures in range(1, 12):
        base = policy.base_delay(failures)
        samples = [policy.delay(failures, rng) for _ in range(200)]
        assert all(base * 0.75 <= s <= base for s in samples)
        assert max(samples) - min(samples) > base * 0.1  # actually spread out


def test_huge_attempt_counts_stay_capped() -> None:
    assert RetryPolicy(jitter=0).delay(10_000) == 4000


def test_gives_up_after_max_age_or_max_attempts() -> None:
    policy = RetryPolicy(max_age=3600, max_attempts=5)
    assert not policy.gives_up(created_at=0, now=3599, attempts=4)
    assert policy.gives_up(created_at=0, now=3600, attempts=1)
    assert policy.gives_up(created_at=0, now=10, attempts=5)


def test_from_options_validates_names_and_values() -> None:
    assert RetryPolicy.from_options({"first_delay": 60, "max_age": 600}).first_delay == 60
    with pytest.raises(ValueError, match="unknown 'retry' key"):
        RetryPolicy.from_options({"frist_delay": 60})
    with pytest.raises(ValueError, match="max_delay"):
        RetryPolicy.from_options({"first_delay": 60, "max_delay": 10})
    with pytest.raises(ValueError, match="must be a number"):
        RetryPolicy.from_options({"jitter": "lots"})


def _result(statuses: list[RecipientStatus], **kw: object) -> DeliveryResult:
    return DeliveryResult(recipients=statuses, **kw)  # type: ignore[arg-type]


def test_accepted_recipients_are_delivered_and_5xx_permanent_4xx_pending() -> None:
    result = _result(
        [
            RecipientStatus("a@x.test", "accepted", 250, "ok"),
            RecipientStatus("b@x.test", "refused", 550, "no such user"),
            RecipientStatus("c@x.test", "refused", 451, "busy"),
        ],
        sent=True,
        response=(250, "queued"),
    )
    results, summary = classify(["a@x.test", "b@x.test", "c@x.test"], result)
    assert [(r.address, r.status, r.code) for r in results] == [
        ("a@x.test", "delivered", 250),
        ("b@x.test", "failed", 550),
        ("c@x.test", "pending", 451),
    ]
    assert summary is not None


def test_rcpt_accepted_but_data_refused_is_not_delivered() -> None:
    for code, expected in ((451, "pending"), (554, "failed")):
        result = _result(
            [RecipientStatus("a@x.test", "accepted", 250)],
            sent=False,
            error=f"message refused: {code}",
            error_code=code,
        )
        results, _ = classify(["a@x.test"], result)
        assert results[0].status == expected


def test_connection_lost_is_retried() -> None:
    result = _result(
        [RecipientStatus("a@x.test", "unattempted")],
        error="connection lost at DATA",
        retryable=True,
    )
    results, summary = classify(["a@x.test"], result)
    assert results[0].status == "pending"
    assert summary == "connection lost at DATA"


def test_backend_without_delivery_result() -> None:
    ok, summary = classify(["a@x.test"], None, returned=1)
    assert ok[0].status == "delivered"
    assert summary is None
    failed, summary = classify(["a@x.test"], None, error=ConnectionResetError("gone"))
    assert failed[0].status == "pending"
    assert summary == "ConnectionResetError: gone"
    zero, _ = classify(["a@x.test"], None, returned=0)
    assert zero[0].status == "pending"
    bad, _ = classify(["a@x.test"], None, error=InvalidAddress("bad address"))
    assert bad[0].status == "failed"


def test_a_message_that_never_reached_the_server_is_retried_even_on_a_5xx() -> None:
    delivery = DeliveryResult(
        recipients=[RecipientStatus("a@x.test", "unattempted", 535, "5.7.8 bad credentials")],
        error="not attempted: could not connect: 535 5.7.8 bad credentials",
        error_code=535,
        attempted=False,
    )
    results, summary = classify(["a@x.test"], delivery)
    assert [(r.status, r.code) for r in results] == [("pending", 535)]
    assert summary == delivery.error


def test_a_5xx_for_a_message_the_server_saw_is_permanent() -> None:
    delivery = DeliveryResult(
        recipients=[RecipientStatus("a@x.test", "unattempted", 554, "5.6.0 rejected")],
        error="554 5.6.0 rejected",
        error_code=554,
    )
    results, _ = classify(["a@x.test"], delivery)
    assert [r.status for r in results] == ["failed"]
