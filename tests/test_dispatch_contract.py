"""The shared backend contract, run against the spool backend end to end over real SMTP.

Two spool mailers in front of the SMTP backend and a real SMTP server on loopback:

- ``dispatch: "inline"``: what ``send_messages`` returns is already on the server (stored,
  then delivered by the worker engine in the sending thread);
- no dispatcher: a worker drains the spool, and what the server received is what the
  contract checks (the pipelined SMTP path of the worker, not the in-memory backend's).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mailpost
from backend_contract import BackendContract, Delivered
from mailpost.spool import Spool
from smtp_fixtures import mailer_entry
from smtpd_harness import SMTPServer


def _spool_mailers(server: SMTPServer, path: Path, **options: Any) -> dict[str, Any]:
    return {
        "smtp": mailer_entry(server),
        "contract": {
            "BACKEND": "mailpost.backends.spool.EmailBackend",
            "OPTIONS": {"mailer": "smtp", "path": str(path), **options},
        },
    }


def _received(server: SMTPServer) -> list[Delivered]:
    return [Delivered(m.mail_from, list(m.rcpt_tos), m.data) for m in server.messages]


class TestInlineDispatchContract(BackendContract):
    @pytest.fixture
    def make_backend(self, smtp_server: SMTPServer, tmp_path: Path) -> Callable[..., Any]:
        def make(**options: Any) -> Any:
            path = tmp_path / "inline.sqlite3"
            mailpost.configure(
                MAILERS=_spool_mailers(smtp_server, path, dispatch="inline", **options)
            )
            return mailpost.mailers["contract"]

        return make

    @pytest.fixture
    def delivered(self, smtp_server: SMTPServer) -> Callable[[], list[Delivered]]:
        return lambda: _received(smtp_server)


class TestWorkerOverSMTPContract(BackendContract):
    @pytest.fixture
    def make_backend(self, smtp_server: SMTPServer, tmp_path: Path) -> Callable[..., Any]:
        def make(**options: Any) -> Any:
            mailpost.configure(
                MAILERS=_spool_mailers(smtp_server, tmp_path / "worker.sqlite3", **options)
            )
            return mailpost.mailers["contract"]

        return make

    @pytest.fixture
    def delivered(self, smtp_server: SMTPServer) -> Callable[[], list[Delivered]]:
        def drain() -> list[Delivered]:
            Spool.from_mailer("contract").worker().run(until_idle=True, max_seconds=30)
            return _received(smtp_server)

        return drain
