"""The preview UI inside a Django project, under DEBUG only.

::

    # urls.py
    from django.conf import settings
    from django.urls import include, path

    if settings.DEBUG:
        urlpatterns += [path("_mail/", include("mailpost.integrations.django.preview"))]

The pages are the WSGI app of :mod:`mailpost.preview.app`, called from one Django view (no
logic of its own here). Sources: ``MAILPOST_PREVIEW_SOURCES`` (a list of
:class:`mailpost.preview.Source`) if set, else every configured mailer that keeps messages
(``capture://``, file backend, spool). With ``DEBUG = False`` every page is a 404.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import re_path

from mailpost.preview.app import PreviewApp

__all__ = ["preview_view", "urlpatterns"]

_app: PreviewApp | None = None
_lock = threading.Lock()


def _preview_app() -> PreviewApp:
    global _app
    with _lock:
        if _app is None:
            from mailpost.preview import sources_from_mailers

            sources = getattr(settings, "MAILPOST_PREVIEW_SOURCES", None)
            _app = PreviewApp(list(sources) if sources is not None else sources_from_mailers())
        return _app


def preview_view(request: HttpRequest, path: str = "") -> HttpResponse:
    """Serve one preview page; 404 unless ``settings.DEBUG``."""
    if not settings.DEBUG:
        raise Http404("the mail preview is only served with DEBUG = True")
    prefix = request.path[: len(request.path) - len(path)].rstrip("/")
    environ: dict[str, Any] = dict(request.META)
    environ.update(
        REQUEST_METHOD=request.method or "GET",
        SCRIPT_NAME=prefix,
        PATH_INFO="/" + path,
        QUERY_STRING=request.META.get("QUERY_STRING", ""),
    )
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started["status"], started["headers"] = status, headers

    body = b"".join(_preview_app()(environ, start_response))
    response = HttpResponse(body, status=int(started["status"][:3]))
    for name, value in started["headers"]:
        if name.lower() != "content-length":
            response[name] = value
    # The message HTML is framed by the UI page of the same origin; XFrameOptionsMiddleware
    # keeps a header that is already set.
    response["X-Frame-Options"] = "SAMEORIGIN"
    return response


urlpatterns = [re_path(r"^(?P<path>.*)$", preview_view, name="mailpost-preview")]
