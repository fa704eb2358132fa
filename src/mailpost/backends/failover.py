"""Failover mailer: send through the first mailer; when it fails retryably, the next one.

OPTIONS:

- ``mailers`` (required): aliases of other ``MAILERS`` entries, in order of preference,
  e.g. ``["primary", "backup"]``.

A message goes to the next mailer only for the recipients the previous one did not take
and did not refuse permanently: it could not be reached (connection refused, TLS or AUTH
failure, ``delivery.attempted`` false), the session was lost, or it answered 4xx. A
permanent refusal (5xx) or an acceptance is final. See :mod:`mailpost.backends._composite`
and ``docs/composite-mailers.md``. As a URL: ``failover://primary,backup``.
"""

from __future__ import annotations

from typing import Any

from mailpost.backends._composite import CompositeBackend, parse_mailers

__all__ = ["EmailBackend", "FailoverBackend"]


class FailoverBackend(CompositeBackend):
    """Try each mailer of ``OPTIONS["mailers"]`` in turn until one takes the message."""

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        mailers: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently, alias=alias, **kwargs)
        self._build_inner(parse_mailers(self, mailers))

    def routes(self, count: int) -> list[list[str]]:
        """Every message tries the mailers in the configured order."""
        return [self.aliases] * count


EmailBackend = FailoverBackend
