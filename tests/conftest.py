"""Shared test setup: every test starts with no configuration, no MAILPOST_* environment
and an empty outbox, so tests never leak settings into each other."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import mailpost
from mailpost import _config

pytest_plugins = ["smtp_fixtures", "pytester"]


@pytest.fixture(autouse=True)
def _isolated_mailpost(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("MAILPOST_"):
            monkeypatch.delenv(name)
    _config.reset()
    if hasattr(mailpost, "outbox"):
        del mailpost.outbox
    yield
    _config.reset()
    if hasattr(mailpost, "outbox"):
        del mailpost.outbox
