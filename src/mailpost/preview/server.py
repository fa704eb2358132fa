"""Serving the preview: a threaded stdlib HTTP server for the WSGI app, and an SMTP capture
server (aiosmtpd, extra ``mailpost[preview]``) that stores whatever any program sends it.
"""

from __future__ import annotations

import socketserver
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from mailpost._preview_store import CaptureStore
from mailpost.preview.app import PreviewApp

__all__ = ["PreviewServer", "SMTPCaptureServer", "loopback_hosts"]


_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def loopback_hosts(host: str, port: int) -> set[str]:
    """The Host header values a browser sends for a server on ``host:port``."""
    names = (
        {host, "localhost", "127.0.0.1", "[::1]"}
        if host in ("127.0.0.1", "localhost", "::1")
        else {host}
    )
    return {f"{name}:{port}" for name in names} | ({host} if port == 80 else set())


class PreviewServer:
    """The preview web app on ``host:port`` (0 picks a free port), served by threads.

    ``start()`` returns at once (a background thread); ``serve_forever()`` blocks.
    """

    def __init__(self, app: PreviewApp, host: str = "127.0.0.1", port: int = 8025) -> None:
        self.app = app
        self._server = make_server(
            host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.host = host
        self.port = int(self._server.server_address[1])
        if app.allowed_hosts is None and host not in _WILDCARDS:
            # A wildcard bind was asked to be reachable under any name: no Host check then.
            app.allowed_hosts = loopback_hosts(host, self.port)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/"

    def start(self) -> PreviewServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="mailpost-preview",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.5)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> PreviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SMTPCaptureServer:
    """An SMTP server on ``host:port`` that accepts every message and stores it, with its
    envelope, in ``store`` (origin ``smtp``). Needs ``pip install "mailpost[preview]"``."""

    def __init__(self, store: CaptureStore, host: str = "127.0.0.1", port: int = 1025) -> None:
        try:
            from aiosmtpd.controller import Controller
        except ImportError as exc:
            raise ImportError(
                'the SMTP capture server needs aiosmtpd: pip install "mailpost[preview]"'
            ) from exc
        self.store = store
        self.host = host
        handler = _CaptureHandler(store)
        self._controller = Controller(
            handler,
            hostname=host,
            port=port,
            ready_timeout=10,
            data_size_limit=50 * 1024 * 1024,
            enable_SMTPUTF8=True,  # mail to non-ASCII addresses is captured too
        )
        self.port = port

    def start(self) -> SMTPCaptureServer:
        self._controller.start()
        server = getattr(self._controller, "server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SMTPCaptureServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _CaptureHandler:
    def __init__(self, store: CaptureStore) -> None:
        self.store = store

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        sender = envelope.mail_from or ""
        recipients = list(envelope.rcpt_tos)
        await asyncio.to_thread(
            self.store.add, bytes(data), sender=sender, recipients=recipients, origin="smtp"
        )
        return "250 Message captured"
