"""The shared backend contract, run against the SMTP backend and a real SMTP server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import mailpost
from backend_contract import BackendContract, Delivered
from smtp_fixtures import mailer_entry
from smtpd_harness import SMTPServer


class TestSMTPContract(BackendContract):
    @pytest.fixture
    def make_backend(self, smtp_server: SMTPServer) -> Callable[..., Any]:
        def make(**options: Any) -> Any:
            entry = mailer_entry(smtp_server, **options)
            mailpost.configure(MAILERS={"contract": entry})
            return mailpost.mailers["contract"]

        return make

    @pytest.fixture
    def delivered(self, smtp_server: SMTPServer) -> Callable[[], list[Delivered]]:
        return lambda: [
            Delivered(m.mail_from, list(m.rcpt_tos), m.data) for m in smtp_server.messages
        ]
