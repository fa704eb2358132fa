"""A real SMTP server for the tests that prove a configuration really connects.

aiosmtpd on 127.0.0.1 and a free port, in a background thread. It offers AUTH over plain
text (as a local relay may), checks the credentials and records every accepted message.
Bounded: start and stop time out, and every SMTP session times out after a few seconds.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    login: str | None
    data: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


class _Handler:
    def __init__(self) -> None:
        self.received: list[Received] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), login, envelope.content)
        )
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class SMTPServer:
    """``with SMTPServer(user, password) as server:`` -> ``server.port``, ``server.received``."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self.password = password
        self.port = _free_port()
        self._handler = _Handler()
        self._controller = Controller(
            self._handler,
            hostname=HOST,
            port=self.port,
            authenticator=self._authenticate,
            auth_required=False,
            auth_require_tls=False,
            ready_timeout=5.0,
            timeout=5,
        )

    @property
    def received(self) -> list[Received]:
        return self._handler.received

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user.encode()
            and auth_data.password == self.password.encode()
        )
        return AuthResult(success=ok, auth_data=auth_data.login if ok else None)

    def __enter__(self) -> SMTPServer:
        # aiosmtpd logs a deprecation of its own on every AUTH; keep test output clean.
        self._log = logging.getLogger("mail.log")
        self._log_level = self._log.level
        self._log.setLevel(logging.ERROR)
        self._controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()
        self._log.setLevel(self._log_level)
