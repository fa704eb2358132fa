"""The two drivers of a batch: the worker coroutine and the callback pump.

:func:`send_batch` spreads a batch over a :class:`~mailpost._smtp.pool.Pool`: one
:class:`Worker` per session, taking messages from the batch's shared queue, returns
one result per message, in order. A worker whose session is lost (dropped, timed out,
421) reconnects and retries the interrupted message once, under
:class:`~mailpost._smtp.policy.ReconnectPolicy`.

In the steady state of a pipelined batch the worker hands over to a :class:`Pump`, which
handles each group of replies from ``data_received`` instead of waking the coroutine per
message. Both make every bookkeeping decision through the worker's
:class:`~mailpost._smtp.batch.Lane`; they differ only in how they wait for the wire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mailpost._delivery import DeliveryResult
from mailpost._smtp.batch import Batch, Lane, Problem, Then
from mailpost._smtp.pool import Pool
from mailpost._smtp.protocol import Reply, settle
from mailpost._smtp.replies import classify_exception
from mailpost._smtp.session import Ahead, Item, Sent, Session

__all__ = ["Pump", "Worker", "send_batch"]

logger = logging.getLogger("mailpost.smtp")


class Worker:
    """One session's worth of a batch: connects, sends, reconnects, as its lane decides."""

    def __init__(self, pool: Pool, batch: Batch) -> None:
        self.pool = pool
        self.batch = batch
        self.lane = Lane(batch)

    def prime(self) -> None:
        """Compose the next queued message while the server works on the one just sent."""
        self.batch.prime(self.pool.extensions)

    async def run(self) -> None:
        pool, lane, items = self.pool, self.lane, self.batch.items
        limit = pool.config.rate_limit
        session: Session | None = None
        try:
            while True:
                step = lane.next()
                if step is None:
                    return
                index, sent = step
                if session is None:
                    session, problem = await self._connect()
                    if problem is not None:
                        lane.stopped(index, problem)
                        return
                    assert session is not None
                if limit is not None:
                    delay = limit.reserve()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if sent is not None and sent.outcome is None and limit is None:
                    then = await Pump(self, session).run(index, sent)
                    if then is None:  # that message needs the general path
                        continue
                else:
                    follow = (
                        lane.follow(session.transactions, session.can_pipeline)
                        if limit is None
                        else None
                    )
                    attempt, following = await session.transact(
                        items[index],
                        items[follow] if follow is not None else None,
                        sent,
                        self.prime,
                    )
                    then = lane.finished(index, attempt, session.transactions, follow, following)
                if then is Then.DISCARD:
                    pool.discard(session)
                    session = None
                elif then is Then.RETIRE:
                    await pool.retire(session)
                    session = None
        finally:
            if session is not None:
                pool.release(session)

    async def _connect(self) -> tuple[Session | None, Problem | None]:
        config, lane = self.pool.config, self.lane
        where = f"{config.host}:{config.port}"
        reconnect = lane.connected
        if reconnect:
            problem = lane.may_connect()
            if problem is not None:
                return None, problem
            logger.info("%s: connection lost; reconnecting to %s", config.label, where)
        try:
            session = await self.pool.acquire(fresh=reconnect)
        except OSError as exc:
            failure = classify_exception(exc)
            verb = "reconnect" if reconnect else "connect"
            text = f"could not {verb} to {where}: {failure.text}"
            if reconnect:
                logger.warning("%s: %s", config.label, text)
            return None, (text, failure, exc)
        lane.opened()
        return session, None


class Pump:
    """Pipelined transactions driven from ``data_received`` while everything is normal.

    In the steady state of a pipelined batch each group of replies (to one message's data
    and to the next message's envelope) is handled as it arrives: apply it, write the next
    message's data with the envelope after it, wait for the next group. The worker's
    coroutine is not woken per message. Anything else (a refusal, RSET, a lost session,
    a full socket buffer, a streamed message, the end of the queue) stops the pump and
    hands back to the worker, which goes on with :meth:`Session.transact`: the same
    sans-IO steps and the same :class:`~mailpost._smtp.batch.Lane`, never a second set of
    rules.
    """

    __slots__ = (
        "ahead",
        "batch",
        "error",
        "follow",
        "index",
        "items",
        "lane",
        "pool",
        "result",
        "session",
        "stop",
        "then",
        "wire",
    )

    def __init__(self, worker: Worker, session: Session) -> None:
        self.lane = worker.lane
        self.pool = worker.pool
        self.batch = worker.batch
        self.items = worker.batch.items
        self.session = session
        self.wire = session.wire
        self.stop = False
        #: What the worker does with the session after the last transaction the pump
        #: finished; None: the next message goes the general path on the same session.
        self.then: Then | None = None
        self.error: BaseException | None = None
        # the transaction in flight: its index, result, the message after it, its envelope
        self.index = -1
        self.result: DeliveryResult | None = None
        self.follow: int | None = None
        self.ahead: Ahead | None = None

    async def run(self, index: int, sent: Sent) -> Then | None:
        """Go on from ``index``, whose envelope replies are ``sent``, until something is not
        normal; what to do with the session then (see :attr:`then`)."""
        wire = self.wire
        if self.step(index, sent):
            wire.pump = self
            try:
                while not self.stop:
                    if len(wire.replies) >= wire.wanted:
                        self.ready()
                    elif wire.closed:  # fewer replies than wanted: the session ended
                        self.complete(wire.take(wire.wanted))
                    else:  # woken for nothing (e.g. resume_writing): wait on
                        waiter = wire.waiter = wire.loop.create_future()
                        try:
                            await waiter
                        finally:
                            wire.waiter = None
            finally:
                wire.pump = None
        if self.error is not None:
            raise self.error
        return self.then

    def ready(self) -> None:
        """The wanted replies are in: go through as many transactions as they allow."""
        wire = self.wire
        try:
            while not self.stop and len(wire.replies) >= wire.wanted:
                self.complete(wire.take(wire.wanted))
        except BaseException as exc:  # never into the event loop: the worker raises it
            self.error = exc
            self.stop = True
        waiter = wire.waiter
        if self.stop and waiter is not None and not waiter.done():
            waiter.set_result(None)

    def complete(self, got: list[Reply]) -> None:
        """Apply the replies to the data in flight, then start the message after it."""
        assert self.result is not None
        session, lane = self.session, self.lane
        attempt, following = session.data_done(self.result, got, self.ahead)
        then = lane.finished(self.index, attempt, session.transactions, self.follow, following)
        if then is not Then.KEEP or following is None:
            self.then, self.stop = then, True
            return
        step = lane.next()  # the message that followed: ahead, as finished() left it
        assert step is not None
        self.step(step[0], following)

    def step(self, index: int, sent: Sent) -> bool:
        """Settle ``index``'s envelope replies; if all is normal write its data and the
        next envelope and return True, else hand the message back to the worker."""
        session, wire, lane, items = self.session, self.wire, self.lane, self.items
        item = items[index]
        sent.outcome = settle(
            sent.result, item.sender, sent.replies, expected=sent.expected, cause=wire.error
        )
        if not sent.outcome.send_data or item.stream is not None or wire.paused or wire.closed:
            lane.hand_back(index, sent)
            self.then, self.stop = None, True
            return False
        follow = lane.follow(
            session.transactions, session.can_pipeline
        )  # before this one, as transact
        session.transactions += 1
        ahead = session.write_data(item, items[follow] if follow is not None else None)
        if follow is not None and ahead is None:
            lane.followed(follow, None)  # its envelope was not sent
            follow = None
        self.index, self.result, self.follow, self.ahead = index, sent.result, follow, ahead
        wire.wanted = ahead.wanted if ahead is not None else 1
        wire.arm(session.config.data_timeout)
        batch = self.batch
        if not batch.solo:
            batch.prime(self.pool.extensions)  # as Worker.prime
        elif batch.queue:  # the message after the one that follows: its turn is next
            session.plan(items[batch.queue[0]])
        return True


async def send_batch(
    pool: Pool,
    items: list[Item],
    on_result: Callable[[int, DeliveryResult], None] | None = None,
) -> list[DeliveryResult]:
    """Send every item over the pool; one result per item, in order.

    ``on_result(index, result)``, when given, is called on the pool's loop as soon as
    each item's result is final (the spool worker records outcomes while the batch goes
    on); it must be quick and must not raise.
    """
    batch = Batch(items, on_result, pool.config.messages_per_connection)
    workers = min(pool.config.max_connections, len(items))
    batch.solo = workers == 1
    if workers == 1:
        await Worker(pool, batch).run()
    else:
        await asyncio.gather(*(Worker(pool, batch).run() for _ in range(workers)))
    return batch.finish()
