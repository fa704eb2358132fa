"""Round-robin mailer: spread messages over several mailers by weight, failing over too.

OPTIONS:

- ``mailers`` (required): aliases of other ``MAILERS`` entries, either a list
  (``["a", "b"]``, equal weights) or a dict of alias -> weight (``{"a": 3, "b": 1}``).
- ``weights``: with a list of ``mailers``, their weights in the same order
  (``[3, 1]``). Weights are integers >= 0, at least one positive. A mailer of weight 0 is
  never picked first, only failed over to.

Each message is given to the next mailer of a smooth weighted round robin (deterministic:
weights 3 and 1 give ``a a b a``, then again), whose state is shared by every instance
built for the same ``MAILERS`` alias in this process, so ``send_mail(using=...)`` call
after call is spread too. When the picked mailer fails retryably (or cannot be reached),
the message falls over to the following mailers, in configured order, exactly as the
failover mailer does. As a URL: ``round-robin://a,b?weights=3,1``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from mailpost.backends._composite import CompositeBackend, parse_mailers

__all__ = ["EmailBackend", "RoundRobinBackend", "SmoothWeightedRoundRobin"]


class SmoothWeightedRoundRobin:
    """Deterministic smooth weighted round robin: picks spread evenly, in weight ratio.

    Every pick adds each weight to its counter, takes the largest counter (the first on a
    tie) and subtracts the total weight from it. Thread-safe.
    """

    def __init__(self, weights: Sequence[int]) -> None:
        if not weights or any(w < 0 for w in weights) or not any(weights):
            raise ValueError(f"weights must be >= 0 with at least one positive: {weights!r}")
        self.weights = list(weights)
        self.total = sum(self.weights)
        self._current = [0] * len(self.weights)
        self._lock = threading.Lock()

    def pick(self) -> int:
        """The index of the next choice."""
        with self._lock:
            current = self._current
            best = 0
            for i, weight in enumerate(self.weights):
                current[i] += weight
                if current[i] > current[best]:
                    best = i
            current[best] -= self.total
            return best


_SHARED: dict[tuple[str, tuple[str, ...], tuple[int, ...]], SmoothWeightedRoundRobin] = {}
_SHARED_LOCK = threading.Lock()


def _scheduler(
    alias: str | None, aliases: list[str], weights: list[int]
) -> SmoothWeightedRoundRobin:
    """The scheduler for ``alias`` (shared per process), or a new one without an alias."""
    if alias is None:
        return SmoothWeightedRoundRobin(weights)
    key = (alias, tuple(aliases), tuple(weights))
    with _SHARED_LOCK:
        scheduler = _SHARED.get(key)
        if scheduler is None:
            scheduler = _SHARED[key] = SmoothWeightedRoundRobin(weights)
        return scheduler


class RoundRobinBackend(CompositeBackend):
    """Spread messages over ``OPTIONS["mailers"]`` by weight; fail over on retryable errors."""

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        mailers: list[str] | dict[str, int] | None = None,
        weights: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently, alias=alias, **kwargs)
        if isinstance(mailers, Mapping):
            if weights is not None:
                raise self.invalid(
                    "OPTIONS 'weights' cannot be given when 'mailers' is a dict of weights"
                )
            aliases = parse_mailers(self, list(mailers))
            given: Any = [mailers[a] for a in aliases]
            option = "mailers"
        else:
            aliases = parse_mailers(self, mailers)
            given = [1] * len(aliases) if weights is None else weights
            option = "weights"
        self.weights = self._check_weights(given, len(aliases), option)
        self._build_inner(aliases)
        self.scheduler = _scheduler(alias, aliases, self.weights)

    def _check_weights(self, weights: Any, count: int, option: str) -> list[int]:
        if isinstance(weights, str) or not isinstance(weights, Sequence):
            raise self.invalid(f"OPTIONS {option!r} must be a list of integer weights")
        values = list(weights)
        if len(values) != count:
            raise self.invalid(
                f"OPTIONS 'weights' has {len(values)} weight(s) for {count} mailer(s)"
            )
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise self.invalid(f"OPTIONS {option!r}: weight {value!r} is not an integer >= 0")
        if not any(values):
            raise self.invalid(f"OPTIONS {option!r}: at least one weight must be positive")
        return values

    def routes(self, count: int) -> list[list[str]]:
        """Each message starts at the next weighted pick, then the others in order."""
        aliases = self.aliases
        routes = []
        for _ in range(count):
            i = self.scheduler.pick()
            routes.append(aliases[i:] + aliases[:i])
        return routes


EmailBackend = RoundRobinBackend
