"""The spool's transaction hook for Django: ``on_commit`` stores mail when ``atomic`` commits.

Registered by the app's ``ready()`` (``"mailpost.integrations.django"`` in
``INSTALLED_APPS``), or by :func:`register`. The spool asks it, on each send with
``on_commit``, whether a transaction is open on the database and, if so, defers the enqueue
with ``transaction.on_commit``.
"""

from __future__ import annotations

from collections.abc import Callable

from mailpost.spool.dispatch import register_transaction_hook

__all__ = ["DjangoTransactions", "register"]


class DjangoTransactions:
    """``transaction.on_commit`` for the spool backend's ``on_commit`` option."""

    def deferrer(self, database: str | None) -> Callable[[Callable[[], None]], None] | None:
        """Run-at-commit for the open ``atomic`` block on ``database`` (None: the default
        database); None when Django is not configured or no block is open."""
        from django.conf import settings

        if not settings.configured:
            return None
        from django.db import DEFAULT_DB_ALIAS, transaction

        using = database or DEFAULT_DB_ALIAS
        if not transaction.get_connection(using).in_atomic_block:
            return None

        def defer(function: Callable[[], None]) -> None:
            transaction.on_commit(function, using=using)

        return defer


def register() -> None:
    """Make the spool's ``on_commit`` option use Django's transactions."""
    register_transaction_hook(DjangoTransactions())
