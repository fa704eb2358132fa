"""A plain ASGI webhook app (no dependencies): mount it in Starlette/FastAPI or serve it alone.

``webhook_app(provider, config, store=...)`` answers ``POST`` with 200 after verifying,
recording and dispatching, 400/401 for a rejected request, 405 for other methods and 413
when the body grows past ``config.max_body`` (it stops reading then).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mailpost._suppressions import SuppressionStore
from mailpost.events.dispatch import Endpoint, adispatch, handle_request, status_body
from mailpost.events.webhooks import WebhookConfig

__all__ = ["webhook_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def webhook_app(
    provider: str,
    config: WebhookConfig | None = None,
    *,
    store: SuppressionStore | str | None = None,
) -> ASGIApp:
    """An ASGI app receiving ``provider``'s webhooks (see :func:`mailpost.events.parse`)."""
    endpoint = Endpoint.build(provider, config, store)

    async def reply(send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope.get("method") != "POST":
            await reply(send, 405, b'{"ok": false, "error": "POST only"}')
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > endpoint.config.max_body:
                await reply(send, 413, b'{"ok": false, "error": "body too large"}')
                return
            chunks.append(chunk)
            more = bool(message.get("more_body"))
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        status, events = await asyncio.to_thread(
            handle_request, endpoint, headers, b"".join(chunks)
        )
        if status == 200:
            await adispatch(events)
        await reply(send, status, status_body(status))

    return app
