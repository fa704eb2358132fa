"""The SQL spool store's fixed statements, spelled for one database by its dialect.

:class:`~mailpost.spool.sqlstore.SQLStore` runs them; the statements that depend on a
call's arguments (lease filters, ``IN`` lists) are built there.
"""

from __future__ import annotations

from mailpost.spool.dialect import Dialect

__all__ = ["COLUMNS", "JSON_COLUMNS", "Statements"]

#: A record's columns, in the order ``rows.record_of`` reads them.
COLUMNS = (
    "id, message_id, mailer, sender, recipients, priority, state, created_at, send_at, "
    "next_attempt_at, attempts, lease_owner, lease_expires_at, last_error, updated_at, size, "
    "lease_token, queued_at"
)

#: The same columns for ``json_array``: times as 17-digit text, since SQLite writes a REAL
#: in JSON with 15 significant digits (10 us off for a timestamp); ``_record`` reads both.
JSON_COLUMNS = ", ".join(
    f"CASE WHEN {c} IS NULL THEN NULL ELSE printf('%!.17g', {c}) END" if c.endswith("_at") else c
    for c in COLUMNS.split(", ")
)


class Statements:
    """The store's fixed statements in one dialect's spelling."""

    def __init__(self, d: Dialect) -> None:
        p = d.param
        self.insert = (
            "INSERT INTO messages (message_id, mailer, sender, recipients, size, "
            "priority, state, created_at, queued_at, send_at, next_attempt_at, updated_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, 'queued', {p}, {p}, {p}, {p}, {p})"
        )
        self.insert_data = f"INSERT INTO message_data (id, data) VALUES ({p}, {p})"
        self.history = (
            "INSERT INTO attempts (message, attempt, started_at, finished_at, worker, "
            f"outcome, error, recipients) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
        )
        self.expired_history = (
            "INSERT INTO attempts (message, attempt, started_at, finished_at, worker, "
            f"outcome, error, recipients) SELECT id, attempts, {p}, {p}, {p}, 'lease-expired', "
            f"{p}, '[]' FROM messages WHERE id = {p}"
        )
        self.take_where = (
            f"UPDATE messages SET state = 'leased', lease_owner = {p}, lease_token = {p}, "
            f"lease_expires_at = {p}, updated_at = {p} WHERE id"
        )
        #: The records one lease took (its expiry and token), by the index of leases.
        self.leased_by = f"state = 'leased' AND lease_expires_at = {p} AND lease_token = {p}"
        self.settle = (
            f"UPDATE messages SET recipients = {p}, state = {p}, attempts = {p}, "
            f"next_attempt_at = CASE WHEN {p} THEN {p} ELSE next_attempt_at END, "
            "lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, "
            f"last_error = {p}, updated_at = {p} WHERE id = {p}"
        )
        #: The same two for a whole group, where the dialect runs multi-row statements.
        self.settle_rows: str | None = None
        self.history_rows: str | None = None
        self.settle_guarded: str | None = None
        if d.multirow:
            self.settle_rows = (
                "UPDATE messages SET recipients = v.column1, state = v.column2, "
                "attempts = v.column3, next_attempt_at = CASE WHEN v.column4 THEN v.column5 "
                "ELSE messages.next_attempt_at END, lease_owner = NULL, lease_token = NULL, "
                "lease_expires_at = NULL, last_error = v.column6, updated_at = v.column7 "
                "FROM (VALUES {values}) AS v WHERE messages.id = v.column8"
            )
            self.history_rows = (
                "INSERT INTO attempts (message, attempt, started_at, finished_at, worker, "
                "outcome, error, recipients) VALUES {values}"
            )
            #: settle_rows for records still as leased (token, attempts, recipients).
            self.settle_guarded = self.settle_rows + (
                " AND messages.state = 'leased' AND messages.lease_token = v.column9 "
                "AND messages.attempts = v.column10 AND messages.recipients = v.column11"
            )
        self.lost = (
            f"UPDATE messages SET recipients = {p}, attempts = {p}, updated_at = {p} WHERE id = {p}"
        )
        self.renew = (
            f"UPDATE messages SET lease_expires_at = {p} WHERE id = {p} AND state = 'leased' "
            f"AND lease_token = {p}"
        )
        self.release = (
            "UPDATE messages SET state = 'queued', lease_owner = NULL, lease_token = NULL, "
            f"lease_expires_at = NULL, updated_at = {p} WHERE id = {p} AND state = 'leased' "
            f"AND lease_token = {p}"
        )
        self.get = f"SELECT {COLUMNS} FROM messages WHERE id = {p}"
        self.get_with_data = (
            f"SELECT {COLUMNS}, (SELECT data FROM message_data WHERE message_data.id = "
            f"messages.id) FROM messages WHERE id = {p}"
        )
        self.attempts_of = (
            "SELECT attempt, started_at, finished_at, worker, outcome, error, recipients "
            f"FROM attempts WHERE message = {p} ORDER BY id"
        )
        self.due_count = (
            f"SELECT COUNT(*) FROM messages WHERE (state = 'queued' AND next_attempt_at <= {p})"
            f" OR (state = 'leased' AND lease_expires_at <= {p})"
        )
        self.due = (
            f"SELECT {COLUMNS} FROM messages WHERE state = 'queued' AND next_attempt_at <= {p}"
            " UNION ALL "
            f"SELECT {COLUMNS} FROM messages WHERE state = 'leased' AND lease_expires_at <= {p}"
            f" ORDER BY next_attempt_at, id LIMIT {p}"
        )
        self.reschedule = (
            f"UPDATE messages SET next_attempt_at = {p}, updated_at = {p} WHERE id = {p}"
        )
        self.requeue = (
            f"UPDATE messages SET state = 'queued', recipients = {p}, next_attempt_at = {p}, "
            f"queued_at = {p}, updated_at = {p} WHERE id = {p}"
        )
        self.requeued_history = (
            "INSERT INTO attempts (message, attempt, started_at, finished_at, worker, "
            f"outcome, error, recipients) SELECT id, attempts, {p}, {p}, 'operator', "
            f"'requeued', NULL, '[]' FROM messages WHERE id = {p}"
        )
