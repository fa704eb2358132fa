"""A loopback HTTP listener that answers like Resend's ``POST /emails`` and records every
request, for the tests that prove a test run posts nothing to the configured API.

Stdlib ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread; each connection times
out after a few seconds and start/stop are bounded.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"


class RecordingAPI:
    """``with RecordingAPI(port) as api:`` -> ``api.url``, ``api.requests`` (path, body)."""

    def __init__(self, port: int) -> None:
        self.requests: list[tuple[str, Any]] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorded.append((self.path, json.loads(raw or b"null")))
                body = json.dumps({"id": str(uuid.uuid4())}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((HOST, port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{HOST}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> RecordingAPI:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
