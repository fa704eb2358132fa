"""The preview web app: a WSGI application over a list of sources.

Stdlib only (``wsgiref``), so ``mailpost preview`` needs no web framework and Django can
mount the very same app (:mod:`mailpost.integrations.django.preview`). Routes::

    GET /                          the UI (static HTML + JS; every value set via textContent)
    GET /static/app.js|app.css
    GET /api/version               {"version": ...}: the UI polls it for live updates
    GET /api/messages?q=TEXT       newest first, filtered by a case-insensitive search
    GET /api/messages/ID           headers, text part, attachments, lint findings
    GET /m/ID/html[?remote=1]      the HTML part for the sandboxed iframe, strict CSP
    GET /m/ID/raw                  the raw message as text/plain
    GET /m/ID/part/N               an attachment, as a download

The message HTML is never put into the UI's pages: it is served as its own document with
``Content-Security-Policy: default-src 'none'; img-src cid: data:; style-src 'unsafe-inline'``
plus a CSP ``sandbox`` (an opaque origin even when opened directly), and shown in an
``<iframe sandbox>`` without ``allow-scripts`` or ``allow-same-origin``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote

from mailpost.preview.parse import ParsedMessage, frame_html, has_remote_content, parse
from mailpost.preview.sources import Entry, Source

__all__ = ["FRAME_CSP", "UI_CSP", "PreviewApp"]

StartResponse = Callable[..., Any]

#: The UI's own pages: only its own script and style, no inline code, no framing.
UI_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
#: The message HTML: nothing runs, nothing loads but inline styles and cid/data images.
FRAME_CSP = (
    "default-src 'none'; img-src cid: data:; style-src 'unsafe-inline'; form-action 'none'; "
    "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
#: The same after the user clicked "allow remote images".
FRAME_CSP_REMOTE = FRAME_CSP.replace("img-src cid: data:", "img-src cid: data: https: http:")

_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


class _NotFound(Exception):
    pass


class PreviewApp:
    """WSGI app showing the messages of ``sources``.

    ``allowed_hosts`` (for a standalone server): Host header values accepted, to keep other
    web sites from reading captured mail through DNS rebinding; None accepts any (Django
    checks ALLOWED_HOSTS itself).
    """

    def __init__(
        self, sources: Sequence[Source], *, allowed_hosts: Iterable[str] | None = None
    ) -> None:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"preview sources need distinct names, got {names}")
        self.sources = {s.name: s for s in sources}
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    def __repr__(self) -> str:
        return f"<PreviewApp sources={list(self.sources.values())!r}>"

    # -- data -----------------------------------------------------------------------------

    def version(self) -> str:
        return "|".join(f"{name}:{s.version()}" for name, s in self.sources.items())

    def entries(self, query: str = "") -> list[tuple[str, Entry]]:
        """``(source name, entry)`` of every source, newest first, matching ``query``."""
        words = query.lower().split()
        found = [
            (name, entry)
            for name, source in self.sources.items()
            for entry in source.entries()
            if all(w in entry.summary.search_text for w in words)
        ]
        found.sort(key=lambda item: item[1].received_at, reverse=True)
        return found

    def load(self, message_id: str) -> tuple[Source, str, bytes]:
        name, _, key = message_id.partition("-")
        source = self.sources.get(name)
        data = source.load(key) if source is not None and key else None
        if source is None or data is None:
            raise _NotFound(message_id)
        return source, key, data

    # -- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        if self.allowed_hosts is not None:
            host = str(environ.get("HTTP_HOST", "")).lower()
            if host not in self.allowed_hosts:
                return _respond(
                    start_response,
                    "400 Bad Request",
                    b"unexpected Host header\n",
                    "text/plain; charset=utf-8",
                )
        if method not in ("GET", "HEAD"):
            return _respond(
                start_response,
                "405 Method Not Allowed",
                b"read only\n",
                "text/plain; charset=utf-8",
                [("Allow", "GET, HEAD")],
            )
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            return self._route(path, query, environ, start_response)
        except _NotFound:
            return _respond(
                start_response, "404 Not Found", b"not found\n", "text/plain; charset=utf-8"
            )

    def _route(
        self,
        path: str,
        query: dict[str, list[str]],
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return self._index(environ, start_response)
        if parts[0] == "static" and len(parts) == 2 and parts[1] in _STATIC:
            body = (resources.files("mailpost.preview") / "static" / parts[1]).read_bytes()
            return _respond(
                start_response, "200 OK", body, _STATIC[parts[1]], [("Cache-Control", "no-cache")]
            )
        if parts == ["api", "version"]:
            return _json(start_response, {"version": self.version()})
        if parts == ["api", "messages"]:
            return _json(start_response, self._list(query.get("q", [""])[0]))
        if len(parts) == 3 and parts[:2] == ["api", "messages"]:
            return _json(start_response, self._detail(parts[2], environ))
        if len(parts) >= 3 and parts[0] == "m":
            return self._message_route(parts[1], parts[2:], query, start_response)
        raise _NotFound(path)

    def _index(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        base = quote(environ.get("SCRIPT_NAME", "").rstrip("/"))
        html = (resources.files("mailpost.preview") / "static" / "index.html").read_text()
        body = html.replace("{{BASE}}", base).encode()
        return _respond(
            start_response,
            "200 OK",
            body,
            "text/html; charset=utf-8",
            [("Content-Security-Policy", UI_CSP)],
        )

    def _list(self, query: str) -> dict[str, Any]:
        version = self.version()
        messages = []
        for name, entry in self.entries(query):
            s = entry.summary
            messages.append(
                {
                    "id": f"{name}-{entry.key}",
                    "source": name,
                    "origin": entry.origin,
                    "received_at": entry.received_at,
                    "subject": s.subject,
                    "from": s.sender,
                    "to": s.to,
                    "date": s.date,
                    "size": s.size,
                    "snippet": s.snippet,
                    "has_html": s.has_html,
                    "attachments": s.attachments,
                }
            )
        return {"version": version, "messages": messages}

    def _detail(self, message_id: str, environ: dict[str, Any]) -> dict[str, Any]:
        from mailpost.preview.lint import lint_parsed

        source, key, data = self.load(message_id)
        parsed = parse(data)
        base = environ.get("SCRIPT_NAME", "").rstrip("/") + f"/m/{message_id}"
        summary = source.summary(key, lambda: data)
        assert summary is not None
        return {
            "id": message_id,
            "source": source.name,
            "subject": summary.subject,
            "from": summary.sender,
            "to": summary.to,
            "date": summary.date,
            "size": len(data),
            "headers": parsed.headers,
            "text": parsed.text,
            "has_html": parsed.html is not None,
            "remote_content": has_remote_content(parsed.html or ""),
            "html_url": f"{base}/html",
            "raw_url": f"{base}/raw",
            "attachments": [
                {
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                    "inline": a.inline,
                    "url": f"{base}/part/{a.index}",
                }
                for a in parsed.attachments
            ],
            "lint": [f.as_dict() for f in lint_parsed(parsed, data)],
        }

    def _message_route(
        self,
        message_id: str,
        rest: list[str],
        query: dict[str, list[str]],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        _, _, data = self.load(message_id)
        if rest == ["raw"]:
            return _respond(
                start_response,
                "200 OK",
                data,
                "text/plain; charset=utf-8",
                [("Content-Security-Policy", "default-src 'none'; sandbox")],
            )
        parsed = parse(data)
        if rest == ["html"]:
            return self._frame(
                parsed, remote=query.get("remote", [""])[0] == "1", start_response=start_response
            )
        if len(rest) == 2 and rest[0] == "part" and rest[1].isdigit():
            index = int(rest[1])
            payload = parsed.payload(index)
            if payload is None:
                raise _NotFound(message_id)
            name = next(a.filename for a in parsed.attachments if a.index == index)
            disposition = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
            return _respond(
                start_response,
                "200 OK",
                payload,
                "application/octet-stream",
                [
                    ("Content-Disposition", disposition),
                    ("Content-Security-Policy", "default-src 'none'; sandbox"),
                ],
            )
        raise _NotFound(message_id)

    def _frame(
        self, parsed: ParsedMessage, *, remote: bool, start_response: StartResponse
    ) -> Iterable[bytes]:
        if parsed.html is None:
            raise _NotFound("html")
        body = frame_html(parsed).encode("utf-8")
        csp = FRAME_CSP_REMOTE if remote else FRAME_CSP
        return _respond(
            start_response,
            "200 OK",
            body,
            "text/html; charset=utf-8",
            [("Content-Security-Policy", csp)],
        )


def _json(start_response: StartResponse, payload: Any) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    return _respond(start_response, "200 OK", body, "application/json")


def _respond(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str,
    extra: list[tuple[str, str]] | None = None,
) -> Iterable[bytes]:
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ]
    names = {name.lower() for name, _ in extra or []}
    headers = [h for h in headers if h[0].lower() not in names] + list(extra or [])
    if "content-security-policy" not in {n.lower() for n, _ in headers}:
        headers.append(("Content-Security-Policy", "default-src 'none'"))
    start_response(status, headers)
    return [body]
