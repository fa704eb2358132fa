"""Subscribers to delivery events, and the one request handler every endpoint wraps.

``on_event(handler, kinds=...)`` subscribes a function (sync or ``async``) to events;
:func:`handle_request` verifies and parses a webhook request, records its events in the
suppression store (when one is given) and calls every subscriber, then says what HTTP status
to answer. Integrations register their own hooks here (the Django signal does), so this
layer never imports them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from mailpost._suppressions import SuppressionStore, open_suppressions
from mailpost.events.model import KINDS, DeliveryEvent, WebhookRejected
from mailpost.events.webhooks import WebhookConfig, parse

__all__ = [
    "Endpoint",
    "Handler",
    "adispatch",
    "dispatch",
    "handle_request",
    "off_event",
    "on_event",
    "status_body",
]

logger = logging.getLogger("mailpost.events")

Handler = Callable[[DeliveryEvent], "Awaitable[None] | None"]

_handlers: list[tuple[Handler, frozenset[str] | None]] = []
_lock = threading.Lock()


def on_event(handler: Handler, *, kinds: Iterable[str] | None = None) -> Handler:
    """Call ``handler(event)`` for every event (or only these ``kinds``); returns ``handler``.

    ``handler`` may be ``async``: from a sync endpoint it is run to completion with
    :func:`asyncio.run`; from the ASGI app it is awaited.
    """
    wanted = None if kinds is None else frozenset(kinds)
    if wanted is not None and not wanted <= set(KINDS):
        raise ValueError(f"unknown event kinds {sorted(wanted - set(KINDS))}; expected {KINDS}")
    with _lock:
        _handlers.append((handler, wanted))
    return handler


def off_event(handler: Handler) -> None:
    """Unsubscribe ``handler`` (every registration of it)."""
    with _lock:
        _handlers[:] = [(h, k) for h, k in _handlers if h is not handler]


def _targets(event: DeliveryEvent) -> list[Handler]:
    with _lock:
        return [h for h, k in _handlers if k is None or event.kind in k]


def dispatch(events: Iterable[DeliveryEvent]) -> None:
    """Call the subscribers for each event, in order; a failing handler is logged and re-raised
    once every handler had its turn, so the provider retries the webhook."""
    first: BaseException | None = None
    for event in events:
        for h in _targets(event):
            try:
                result = h(event)
                if inspect.isawaitable(result):
                    asyncio.run(_await(result))
            except Exception as exc:
                logger.exception("mailpost.events: handler %r failed on %s", h, event.kind)
                first = first or exc
    if first is not None:
        raise first


async def _await(result: Awaitable[None]) -> None:
    await result


async def adispatch(events: Iterable[DeliveryEvent]) -> None:
    """Async :func:`dispatch`: awaits async handlers, runs sync ones in a worker thread."""
    first: BaseException | None = None
    for event in events:
        for h in _targets(event):
            try:
                if inspect.iscoroutinefunction(h):
                    await h(event)
                else:
                    result = await asyncio.to_thread(h, event)
                    if inspect.isawaitable(result):
                        await result
            except Exception as exc:
                logger.exception("mailpost.events: handler %r failed on %s", h, event.kind)
                first = first or exc
    if first is not None:
        raise first


@dataclass(slots=True)
class Endpoint:
    """One webhook endpoint: which provider, its credentials, where suppressions go."""

    provider: str
    config: WebhookConfig
    store: SuppressionStore | None = None

    @classmethod
    def build(
        cls,
        provider: str,
        config: WebhookConfig | None = None,
        store: SuppressionStore | str | None = None,
    ) -> Endpoint:
        from mailpost.events.webhooks import PROVIDERS

        if provider not in PROVIDERS:
            raise ValueError(f"unknown webhook provider {provider!r}; expected one of {PROVIDERS}")
        resolved = open_suppressions(store) if store is not None else None
        return cls(provider, config or WebhookConfig(), resolved)


def handle_request(
    endpoint: Endpoint, headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes
) -> tuple[int, list[DeliveryEvent]]:
    """Verify, parse, record and dispatch one request: ``(http status, events)``.

    Rejected requests answer 400/401 and change nothing. Accepted ones are recorded in the
    store first (so a failing handler never loses a bounce), then dispatched.
    """
    try:
        events = parse(endpoint.provider, headers, body, endpoint.config)
    except WebhookRejected as exc:
        logger.warning("%s", exc)
        return exc.status, []
    if endpoint.store is not None and events:
        endpoint.store.record(events)
    return 200, events


def status_body(status: int) -> bytes:
    """The small JSON body each endpoint answers with."""
    return b'{"ok": true}' if status == 200 else b'{"ok": false, "error": "rejected"}'
