"""The bookkeeping of a batch sent over a pool: no I/O, one set of state transitions.

A :class:`Batch` is what the workers of one ``send_batch`` share: the queue of message
indexes still to send, one result per message, and the problem that stopped the batch.
A :class:`Lane` is one worker's progress through it: which message goes next (a message to
retry, the one whose envelope already went out, or the next queued), which may follow the
current one in the same write, and what a finished transaction means for the message (final
result, or retried once on a new session) and for the session (:class:`Then`).

Both drivers in :mod:`mailpost._smtp.drivers` (the worker coroutine and the callback pump)
make every such decision through a :class:`Lane`, so they cannot drift apart; they only do
the I/O the decision asks for.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable

from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost._smtp.policy import ReconnectPolicy
from mailpost._smtp.replies import Failure
from mailpost._smtp.session import Attempt, Item, Sent

__all__ = ["Batch", "Lane", "Problem", "Then", "unattempted"]

#: Why a batch stopped before every message was tried: text, failure, the exception.
Problem = tuple[str, Failure, BaseException | None]

#: The problem a worker reports when its session was lost again too soon.
LOST_AGAIN = "the connection was lost again before any message was delivered on it"


def unattempted(
    item: Item, text: str, failure: Failure, exc: BaseException | None
) -> DeliveryResult:
    """The result for a message that never reached the server."""
    return DeliveryResult(
        message_id=item.message_id,
        recipients=[
            RecipientStatus(a, "unattempted", failure.code, failure.text) for a in item.recipients
        ],
        error=f"not attempted: {text}",
        error_code=failure.code,
        retryable=failure.retryable,
        attempted=False,
        exception=exc,
    )


class Then(enum.Enum):
    """What a driver does with its session after a transaction."""

    KEEP = "keep"  #: send the next message on it
    DISCARD = "discard"  #: abort it (lost or unusable) and connect anew for the next
    RETIRE = "retire"  #: QUIT it: its ``messages_per_session`` allowance is used up


class Batch:
    """The shared state of one batch: the queue of message indexes and the results."""

    __slots__ = ("items", "on_result", "per_session", "problem", "queue", "results", "solo")

    def __init__(
        self,
        items: list[Item],
        on_result: Callable[[int, DeliveryResult], None] | None = None,
        per_session: int | None = None,
    ) -> None:
        self.items = items
        self.queue: deque[int] = deque(range(len(items)))
        self.results: list[DeliveryResult | None] = [None] * len(items)
        self.problem: Problem | None = None
        self.on_result = on_result
        self.per_session = per_session
        #: One session sends the whole batch: its pump works each next message out in
        #: full while the server works (:meth:`Session.plan`). With several, the head of
        #: the queue goes to whichever session is first, and they are busy enough.
        self.solo = False

    def settled(self, index: int, result: DeliveryResult) -> None:
        """Item ``index`` has its final result: keep it, let its bytes go, tell the caller."""
        self.results[index] = result
        self.items[index].done()
        if self.on_result is not None:
            self.on_result(index, result)

    def prime(self, extensions: dict[str, str] | None) -> None:
        """Compose the next queued message while the server works on the one just sent
        (on 2 cores, its CPU time then costs no wall time)."""
        queue = self.queue
        if queue and extensions is not None:
            self.items[queue[0]].ready("8bitmime" in extensions)

    def finish(self) -> list[DeliveryResult]:
        """One result per item, in order: a message no worker got to is unattempted, for
        the reason that stopped the batch."""
        results = self.results
        if self.queue or any(r is None for r in results):
            problem = self.problem
            assert problem is not None
            for index, result in enumerate(results):
                if result is None:
                    results[index] = result = unattempted(self.items[index], *problem)
                    if self.on_result is not None:
                        self.on_result(index, result)
        return [r for r in results if r is not None]


class Lane:
    """One worker's way through a :class:`Batch`: the state transitions both drivers call.

    ``interrupted``: the message whose session was lost before its final reply, retried once
    on a new session. ``ahead``: the message whose envelope went out behind the previous
    message's data (pipelined), with its replies so far. ``connected``: whether this lane
    has had a session, so that the next one is a reconnect under its
    :class:`~mailpost._smtp.policy.ReconnectPolicy`.
    """

    __slots__ = ("ahead", "batch", "connected", "interrupted", "policy")

    def __init__(self, batch: Batch, policy: ReconnectPolicy | None = None) -> None:
        self.batch = batch
        self.policy = policy or ReconnectPolicy()
        self.interrupted: tuple[int, Attempt] | None = None
        self.ahead: tuple[int, Sent] | None = None
        self.connected = False

    def next(self) -> tuple[int, Sent | None] | None:
        """The message to send now (with its envelope replies if they went out ahead), or
        None when there is nothing left for this lane."""
        if self.interrupted is not None:
            return self.interrupted[0], None
        ahead = self.ahead
        if ahead is not None:
            self.ahead = None
            return ahead
        queue = self.batch.queue
        if queue:
            return queue.popleft(), None
        return None

    def follow(self, transactions: int, may_follow: Callable[[Item], bool]) -> int | None:
        """The next queued message, taken if its envelope may follow the current message's
        data: the session has room for it (``transactions`` before the current one) and
        ``may_follow`` allows it (pipelining on, nothing streamed)."""
        batch = self.batch
        queue, per_session = batch.queue, batch.per_session
        if (
            queue
            and (per_session is None or transactions + 1 < per_session)
            and may_follow(batch.items[queue[0]])
        ):
            return queue.popleft()
        return None

    def followed(self, follow: int | None, following: Sent | None) -> None:
        """Where ``follow`` goes: ahead when its envelope went out (``following``), back to
        the front of the queue when it did not."""
        if follow is not None:
            if following is None:
                self.batch.queue.appendleft(follow)
            else:
                self.ahead = (follow, following)

    def hand_back(self, index: int, sent: Sent) -> None:
        """``index``'s envelope went out but its transaction goes on elsewhere (the pump
        hands it to the worker): it is the next message again."""
        self.ahead = (index, sent)

    def finished(
        self,
        index: int,
        attempt: Attempt,
        transactions: int,
        follow: int | None = None,
        following: Sent | None = None,
    ) -> Then:
        """A transaction on a session that has carried ``transactions`` ended in
        ``attempt``; ``follow`` was written behind it (``following``: its envelope went out).

        A message whose session was lost is retried once, on a new session; any other
        attempt is the message's result.
        """
        self.followed(follow, following)
        if attempt.lost and self.interrupted is None:
            self.interrupted = (index, attempt)
            return Then.DISCARD
        self.interrupted = None
        self.batch.settled(index, attempt.result)
        if attempt.result.sent:
            self.policy.delivered()
        if not attempt.usable:
            return Then.DISCARD
        per_session = self.batch.per_session
        if per_session is not None and transactions >= per_session:
            self.connected = False
            return Then.RETIRE
        return Then.KEEP

    def may_connect(self) -> Problem | None:
        """None if this lane may open a session now; else why not (lost again too soon)."""
        if self.connected and not self.policy.may_reconnect():
            return LOST_AGAIN, Failure(LOST_AGAIN, None, True), None
        return None

    def opened(self) -> None:
        """A session was opened for this lane (a reconnect if it had one before)."""
        if self.connected:
            self.policy.reconnected()
        self.connected = True

    def stopped(self, index: int, problem: Problem) -> None:
        """This lane cannot go on (no session): ``index`` goes back to the queue, or, if it
        was being retried, keeps the result of its lost attempt; the batch records why."""
        self.batch.problem = problem
        interrupted = self.interrupted
        if interrupted is not None:
            self.interrupted = None
            self.batch.settled(index, interrupted[1].result)
        else:
            self.batch.queue.appendleft(index)
