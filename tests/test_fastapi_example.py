"""The FastAPI example app (examples/fastapi_app.py) against a real SMTP server: the request
handler's ``await asend_mail(...)`` delivers, and errors become HTTP statuses. Requests go
through httpx's ASGI transport on the test's own event loop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

import mailpost
from helpers import load_example
from smtp_fixtures import mailer_entry
from smtpd_harness import SMTPServer


def post(app: Any, payload: dict[str, str]) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/contact", json=payload)

    return asyncio.run(main())


@pytest.fixture
def example(smtp_server: SMTPServer) -> Iterator[ModuleType]:
    mailpost.configure(MAILERS={"default": mailer_entry(smtp_server)})
    yield load_example("fastapi_app", "fastapi_app_example")
    del sys.modules["fastapi_app_example"]


def test_contact_form_is_delivered_by_the_request_handler(
    example: ModuleType, smtp_server: SMTPServer
) -> None:
    reply = post(example.app, {"email": "ann@example.com", "message": "Hi!"})
    assert reply.status_code == 200
    assert reply.json() == {"sent": 1}
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["support@example.com"]
    assert got.mail_from == "website@example.com"
    assert b"Subject: Contact form: ann@example.com" in got.data


def test_concurrent_requests_on_one_event_loop_are_all_delivered(
    example: ModuleType, smtp_server: SMTPServer
) -> None:
    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=example.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            replies = await asyncio.gather(
                *(
                    client.post("/contact", json={"email": f"u{n}@example.com", "message": "x"})
                    for n in range(5)
                )
            )
        return [r.status_code for r in replies]

    assert asyncio.run(main()) == [200] * 5
    assert len(smtp_server.messages) == 5


def test_header_injection_is_a_400_and_nothing_is_sent(
    example: ModuleType, smtp_server: SMTPServer
) -> None:
    reply = post(example.app, {"email": "x@example.com\nBcc: victim@example.com", "message": "x"})
    assert reply.status_code == 400
    assert smtp_server.messages == []


def test_a_refusing_mail_server_is_a_503(example: ModuleType, smtp_server: SMTPServer) -> None:
    smtp_server.faults.refuse["support@example.com"] = "451 4.3.0 try later"
    reply = post(example.app, {"email": "ann@example.com", "message": "Hi"})
    assert reply.status_code == 503
