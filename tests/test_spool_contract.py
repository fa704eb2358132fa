"""The shared backend contract, run against the spool backend.

What the spool "delivered" is what its worker hands on to the inner mailer once the spool
is drained: the contract then holds end to end, from ``send_messages`` on the spool to the
bytes and envelope the next mailer receives.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mailpost
from backend_contract import BackendContract, Delivered
from mailpost.spool import Spool
from spool_helpers import spool_entry


class TestSpoolContract(BackendContract):
    @pytest.fixture
    def make_backend(self, tmp_path: Path) -> Callable[..., Any]:
        path = str(tmp_path / "contract.sqlite3")

        def make(**options: Any) -> Any:
            mailpost.configure(
                MAILERS={
                    "mem": {"BACKEND": "mailpost.backends.locmem.EmailBackend"},
                    "contract": spool_entry(path, "mem", **options),
                }
            )
            return mailpost.mailers["contract"]

        return make

    @pytest.fixture
    def delivered(self) -> Callable[[], list[Delivered]]:
        def drain() -> list[Delivered]:
            Spool.from_mailer("contract").worker().run(until_idle=True)
            return [
                Delivered(m.from_email, list(m.recipients()), m.message().as_bytes())
                for m in getattr(mailpost, "outbox", [])
            ]

        return drain
