"""Between SQL rows and spool values: a record read from its row, and the rows one
outcome writes (by the rules of :mod:`~mailpost.spool.rules`), for the SQL store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailpost.spool.base import Settled
from mailpost.spool.codec import decode_recipients, encode_recipients, encode_results
from mailpost.spool.record import Outcome, SpoolRecord
from mailpost.spool.rules import Stored, apply_outcome

__all__ = ["Plan", "record_of", "rows_for"]


def record_of(row: Sequence[Any], *, with_data: bool = False) -> SpoolRecord:
    """A record from a row of :data:`~mailpost.spool.statements.COLUMNS` (then ``data``
    when ``with_data``); the fields in their declared order, positionally (called per
    leased record)."""
    data = row[18] if with_data else None
    return SpoolRecord(
        int(row[0]),
        row[1],
        str(row[2]),
        str(row[3]),
        decode_recipients(row[4]),
        int(row[5]),
        row[6],
        float(row[7]),
        None if row[8] is None else float(row[8]),
        float(row[9]),
        int(row[10]),
        row[11],
        None if row[12] is None else float(row[12]),
        row[13],
        float(row[14]),
        int(row[15]),
        float(row[17]),
        None if data is None else bytes(data),
        row[16],
        row[4],
    )


@dataclass
class Plan:
    """A group's settle rows (with what each record must still hold), history rows and
    results, worked out before its transaction."""

    rows: list[tuple[Any, ...]]
    history: list[tuple[Any, ...]]
    settled: list[Settled | None]


def rows_for(
    record: SpoolRecord, outcome: Outcome, stored: Stored, worker: str
) -> tuple[tuple[Any, ...], bool, tuple[Any, ...], Settled]:
    """What one outcome writes over ``stored``: the settle row (or the lease-lost row when
    the second item is False), the history row, and the record's new state and error."""
    result = apply_outcome(stored, record.lease_token, outcome)
    now = outcome.finished_at
    tried = encode_results(outcome.recipients)
    text = tried if result.as_tried else encode_recipients(result.recipients)
    if result.owner_settles:
        written: tuple[Any, ...] = (
            text,
            result.state,
            result.attempts,
            result.reschedule,
            outcome.retry_at,
            result.error,
            now,
            record.id,
        )
    else:
        written = (text, result.attempts, now, record.id)
    past = (
        record.id,
        result.attempts,
        outcome.started_at,
        now,
        worker,
        result.label,
        result.error,
        tried,
    )
    return written, result.owner_settles, past, (result.state, result.error)
