"""Pytest fixtures for a real in-process SMTP server (aiosmtpd) with trustme TLS.

Servers start on 127.0.0.1 with a free port and stop at teardown. ``smtp_mailer(server,
**options)`` configures ``MAILERS`` with an SMTP mailer pointed at ``server`` and returns
``mailpost.mailers[alias]``; for TLS servers it uses :class:`TrustingSMTPBackend`, the
documented way to trust a private CA: a subclass that extends ``ssl_context``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, ClassVar

import pytest

import mailpost
from mailpost.backends.smtp import SMTPBackend
from smtpd_harness import Faults, SilentServer, SMTPServer, TLSMaterial, unused_port

#: Every client operation in these tests is bounded by this many seconds.
CLIENT_TIMEOUT = 5.0

USERS = {"alice": "correct horse battery staple"}


class TrustingSMTPBackend(SMTPBackend):
    """The SMTP backend, also trusting the test CA (``ca_pem``) for the server cert."""

    ca_pem: ClassVar[str | None] = None

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        context = super().ssl_context
        if self.ca_pem is not None:
            context.load_verify_locations(cadata=self.ca_pem)
        return context


TRUSTING_BACKEND = f"{__name__}.TrustingSMTPBackend"
SMTP_BACKEND = "mailpost.backends.smtp.EmailBackend"


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    return TLSMaterial(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trust_test_ca(tls_material: TLSMaterial, monkeypatch: pytest.MonkeyPatch) -> TLSMaterial:
    """Make :class:`TrustingSMTPBackend` trust the test CA for this test."""
    monkeypatch.setattr(TrustingSMTPBackend, "ca_pem", tls_material.ca_pem)
    return tls_material


@pytest.fixture
def make_smtp_server() -> Iterator[Callable[..., SMTPServer]]:
    """``make_smtp_server(**kwargs)`` starts an :class:`SMTPServer`; all stop at teardown."""
    servers: list[SMTPServer] = []

    def make(**kwargs: Any) -> SMTPServer:
        server = SMTPServer(**kwargs)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(make_smtp_server: Callable[..., SMTPServer]) -> SMTPServer:
    """A plain SMTP server (no TLS, no AUTH); set ``smtp_server.faults`` to misbehave."""
    return make_smtp_server(faults=Faults())


@pytest.fixture
def tls_smtp_server(
    make_smtp_server: Callable[..., SMTPServer], trust_test_ca: TLSMaterial
) -> SMTPServer:
    """An SMTP server offering STARTTLS with a certificate from the test CA."""
    return make_smtp_server(starttls=trust_test_ca.server_context())


@pytest.fixture
def ssl_smtp_server(
    make_smtp_server: Callable[..., SMTPServer], trust_test_ca: TLSMaterial
) -> SMTPServer:
    """An SMTP server speaking TLS from the first byte (implicit TLS, SMTPS)."""
    return make_smtp_server(implicit_tls=trust_test_ca.server_context())


@pytest.fixture
def auth_smtp_server(
    make_smtp_server: Callable[..., SMTPServer], trust_test_ca: TLSMaterial
) -> SMTPServer:
    """STARTTLS, then AUTH required: user ``alice`` with the password in ``USERS``."""
    return make_smtp_server(starttls=trust_test_ca.server_context(), users=dict(USERS))


@pytest.fixture
def self_signed_smtp_server(
    make_smtp_server: Callable[..., SMTPServer], tls_material: TLSMaterial
) -> SMTPServer:
    """STARTTLS with a self-signed certificate that no client should trust."""
    return make_smtp_server(starttls=tls_material.self_signed_context())


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """Accepts TCP connections and never says a word (the client must time out)."""
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    return unused_port()


def mailer_entry(server: Any, *, backend: str | None = None, **options: Any) -> dict[str, Any]:
    """A ``MAILERS`` entry for an SMTP mailer pointed at ``server``."""
    opts: dict[str, Any] = {"host": server.host, "port": server.port, "timeout": CLIENT_TIMEOUT}
    opts.update(options)
    if backend is None:
        backend = TRUSTING_BACKEND if getattr(server, "tls", False) else SMTP_BACKEND
    return {"BACKEND": backend, "OPTIONS": opts}


@pytest.fixture
def smtp_mailer() -> Callable[..., SMTPBackend]:
    """``smtp_mailer(server, alias="test", backend=None, **options)``: configure MAILERS
    with one SMTP mailer for ``server`` and return ``mailpost.mailers[alias]``."""

    def make(
        server: Any, *, alias: str = "test", backend: str | None = None, **options: Any
    ) -> SMTPBackend:
        mailpost.configure(MAILERS={alias: mailer_entry(server, backend=backend, **options)})
        built = mailpost.mailers[alias]
        assert isinstance(built, SMTPBackend)
        return built

    return make
