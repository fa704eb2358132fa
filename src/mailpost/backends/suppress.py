"""Suppress wrapper mailer: never send to an address on the do-not-send list.

OPTIONS:

- ``mailer`` (required): alias of the mailer that sends what is left, e.g. ``"smtp"``.
- ``store``: the suppression store's SQLite file (default ``mailpost-suppressions.sqlite3``).

Every envelope recipient (to, cc, bcc) is checked before sending. Suppressed ones are taken
off a copy of the message, which goes to the inner mailer with the others; they appear in
``msg.delivery.recipients`` with status ``"suppressed"`` (``reply`` says why) and in
``refused``. A suppressed recipient is not a failure: ``ok`` stays true when everyone else
got the message, nothing is retried, and a message whose recipients are all suppressed is not
sent (``sent`` false, ``send_messages`` counts it as not sent) without raising.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost._suppressions import DEFAULT_PATH, SuppressionStore, open_suppressions
from mailpost.backends.base import BaseEmailBackend

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["EmailBackend", "SuppressBackend"]


class SuppressBackend(BaseEmailBackend):
    """Check every recipient against a :class:`~mailpost.events.SuppressionStore`, then send
    the message to the rest through ``OPTIONS["mailer"]``."""

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        mailer: str | None = None,
        store: str | SuppressionStore = DEFAULT_PATH,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently, alias=alias, **kwargs)
        if not mailer or not isinstance(mailer, str):
            raise self.invalid("OPTIONS['mailer'] (the alias that sends) is required")
        if mailer == alias:
            raise self.invalid("OPTIONS['mailer'] cannot be this mailer itself")
        self.mailer = mailer
        self.store = open_suppressions(store)

    def _inner(self) -> BaseEmailBackend:
        from mailpost.handler import mailers

        inner = mailers[self.mailer]
        inner.fail_silently = self.fail_silently
        return inner

    def _split(
        self, messages: Sequence[EmailMessage]
    ) -> tuple[
        list[tuple[EmailMessage, EmailMessage | None, list[RecipientStatus]]], Exception | None
    ]:
        """Per message: (original, what to send or None, suppressed recipient statuses)."""
        from mailpost._headers import parse_address

        plan: list[tuple[EmailMessage, EmailMessage | None, list[RecipientStatus]]] = []
        from mailpost.message import EmailMessage as _Base

        for message in messages:
            if type(message).recipients is not _Base.recipients:
                plan.append(self._split_custom(message))
                continue
            fields: dict[str, list[Any]] = {
                "to": list(message.to),
                "cc": list(message.cc),
                "bcc": list(message.bcc),
            }
            addrs: dict[Any, str] = {}  # as written (str or (name, address)) -> addr-spec
            for name, items in fields.items():
                for a in items:
                    if a:
                        try:
                            addrs[a] = parse_address(a, name).addr_spec
                        except ValueError:
                            addrs[a] = str(a)  # the inner mailer reports the bad address
            hits = self.store.suppressed(set(addrs.values()))
            if not hits:
                plan.append((message, message, []))
                continue
            statuses = [
                RecipientStatus(spec, "suppressed", None, f"suppressed: {hits[spec].reason}")
                for spec in dict.fromkeys(addrs.values())
                if spec in hits
            ]
            kept = {
                n: [a for a in items if addrs.get(a, "") not in hits] for n, items in fields.items()
            }
            if not any(kept.values()):
                plan.append((message, None, statuses))
                continue
            clone = copy.copy(message)
            clone.to, clone.cc, clone.bcc = kept["to"], kept["cc"], kept["bcc"]
            plan.append((message, clone, statuses))
        return plan, None

    def _split_custom(
        self, message: EmailMessage
    ) -> tuple[EmailMessage, EmailMessage | None, list[RecipientStatus]]:
        """A message with its own ``recipients()`` (e.g. replayed from the spool)."""
        recipients = message.recipients()
        hits = self.store.suppressed(recipients)
        if not hits:
            return message, message, []
        statuses = [
            RecipientStatus(a, "suppressed", None, f"suppressed: {hits[a].reason}")
            for a in dict.fromkeys(recipients)
            if a in hits
        ]
        kept = [a for a in recipients if a not in hits]
        if not kept:
            return message, None, statuses
        if not hasattr(message, "_spool_recipients"):
            raise self.invalid(
                f"cannot take suppressed recipients off a {type(message).__name__} "
                "(it overrides recipients()); put this mailer in front of the spool instead"
            )
        clone = copy.copy(message)
        clone._spool_recipients = kept
        return message, clone, statuses

    def _merge(
        self, plan: list[tuple[EmailMessage, EmailMessage | None, list[RecipientStatus]]]
    ) -> list[DeliveryResult]:
        results = []
        for original, sent, statuses in plan:
            if sent is None:
                result = DeliveryResult(recipients=list(statuses))
            else:
                inner = getattr(sent, "delivery", None)
                result = inner if isinstance(inner, DeliveryResult) else DeliveryResult()
                if sent is not original:
                    result.recipients = [*result.recipients, *statuses]
            results.append(self.record(original, result))
        return results

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send each message to its recipients that are not suppressed; returns how many sent."""
        if not email_messages:
            return 0
        plan, _ = self._split(email_messages)
        outgoing = [s for _, s, _st in plan if s is not None]
        error: Exception | None = None
        if outgoing:
            try:
                self._inner().send_messages(outgoing)
            except Exception as exc:  # the inner mailer's DeliveryError or a compose error
                error = exc
        results = self._merge(plan)
        if error is not None and not self.fail_silently:
            raise error
        return sum(1 for r in results if r.sent)


EmailBackend = SuppressBackend
