"""A Flask blueprint receiving delivery webhooks: a thin shell over
:func:`mailpost.events.parse`.

    app.register_blueprint(webhook_blueprint("resend", WebhookConfig(secret=...),
                                             store="suppressions.sqlite3"),
                           url_prefix="/hooks/resend")
"""

from __future__ import annotations

from typing import Any

from mailpost._suppressions import SuppressionStore
from mailpost.events.dispatch import Endpoint, dispatch, handle_request, status_body
from mailpost.events.webhooks import WebhookConfig
from mailpost.exceptions import MissingDependency

__all__ = ["webhook_blueprint"]


def webhook_blueprint(
    provider: str,
    config: WebhookConfig | None = None,
    *,
    store: SuppressionStore | str | None = None,
    name: str | None = None,
) -> Any:
    """A blueprint with one ``POST /`` route for ``provider``'s webhooks."""
    try:
        from flask import Blueprint, Response, request
    except ImportError as exc:
        raise MissingDependency(
            'the Flask webhook blueprint needs Flask: pip install "mailpost[flask]"'
        ) from exc
    endpoint = Endpoint.build(provider, config, store)
    bp = Blueprint(name or f"mailpost_{provider}_webhooks", __name__)

    @bp.post("/")
    def receive() -> Any:
        length = request.content_length
        if length is not None and length > endpoint.config.max_body:
            return Response(
                b'{"ok": false, "error": "body too large"}', 413, mimetype="application/json"
            )
        body = request.stream.read(endpoint.config.max_body + 1)
        status, events = handle_request(endpoint, list(request.headers.items()), body)
        if status == 200:
            dispatch(events)
        return Response(status_body(status), status, mimetype="application/json")

    return bp
