"""Django views receiving delivery webhooks, a URL include, and the ``delivery_event`` signal.

Either build a view yourself::

    path("hooks/resend/", webhook_view("resend", WebhookConfig(secret=...), store=...))

or describe the endpoints in settings and include them::

    MAILPOST_WEBHOOKS = {
        "resend": {"secret": env("RESEND_WEBHOOK_SECRET"), "store": "suppressions.sqlite3"},
    }
    urlpatterns = [path("hooks/", include("mailpost.integrations.django.webhooks"))]

which serves ``hooks/<provider>/`` for every provider configured. Each accepted event is sent
as the ``delivery_event`` signal (``sender`` = the provider name, ``event`` = the
:class:`~mailpost.events.DeliveryEvent`) after the ``mailpost.events.on_event`` handlers ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

from mailpost._suppressions import SuppressionStore
from mailpost.events.dispatch import Endpoint, dispatch, handle_request, status_body
from mailpost.events.webhooks import WebhookConfig

__all__ = ["delivery_event", "webhook_view"]  # and ``urlpatterns``, built from settings

#: Sent once per accepted event: ``sender`` is the provider, ``event`` the DeliveryEvent.
delivery_event = Signal()

_CONFIG_KEYS = {
    "secret",
    "public_key",
    "username",
    "password",
    "token",
    "token_header",
    "certificate_loader",
    "tolerance",
    "max_body",
}


def webhook_view(
    provider: str,
    config: WebhookConfig | None = None,
    *,
    store: SuppressionStore | str | None = None,
) -> Callable[..., Any]:
    """A CSRF-exempt, POST-only view receiving ``provider``'s webhooks."""
    from django.http import HttpResponse
    from django.views.decorators.csrf import csrf_exempt

    endpoint = Endpoint.build(provider, config, store)

    def view(request: Any) -> Any:
        if request.method != "POST":
            return HttpResponse(
                b'{"ok": false, "error": "POST only"}', status=405, content_type="application/json"
            )
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > endpoint.config.max_body:
            return HttpResponse(
                b'{"ok": false, "error": "body too large"}',
                status=413,
                content_type="application/json",
            )
        status, events = handle_request(endpoint, dict(request.headers.items()), request.body)
        if status == 200:
            dispatch(events)
            for event in events:
                delivery_event.send(sender=provider, event=event)
        return HttpResponse(status_body(status), status=status, content_type="application/json")

    exempt: Callable[..., Any] = csrf_exempt(view)
    return exempt


def _from_settings() -> list[Any]:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.urls import path

    hooks = getattr(settings, "MAILPOST_WEBHOOKS", {}) or {}
    patterns = []
    for provider, options in hooks.items():
        opts = dict(options)
        store = opts.pop("store", None)
        unknown = set(opts) - _CONFIG_KEYS
        if unknown:
            raise ImproperlyConfigured(
                f"MAILPOST_WEBHOOKS[{provider!r}]: unknown keys {sorted(unknown)}"
            )
        try:
            view = webhook_view(provider, WebhookConfig(**opts), store=store)
        except ValueError as exc:
            raise ImproperlyConfigured(f"MAILPOST_WEBHOOKS[{provider!r}]: {exc}") from exc
        patterns.append(path(f"{provider}/", view, name=f"mailpost-webhook-{provider}"))
    return patterns


def __getattr__(name: str) -> Any:
    # Built when Django's URL resolver first reads it, so settings are ready by then.
    if name == "urlpatterns":
        return _from_settings()
    raise AttributeError(name)
