"""Shared test setup: every test starts with no configuration, no MAILPOST_* environment
and an empty outbox, so tests never leak settings into each other."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import mailpost
from mailpost import _config
from pg_server import PostgresServer

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster on loopback for the session (started on first use)."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def spool_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's spool lives: a SQLite file, or (``indirect`` param ``"postgres"``) a
    fresh database on the test PostgreSQL server, reachable from any process by URL."""
    kind = getattr(request, "param", "sqlite")
    if kind == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.database()
    assert kind == "sqlite", kind
    return str(tmp_path / "spool.sqlite3")
