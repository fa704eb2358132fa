"""The behaviour every mailpost backend shares, as one test suite to subclass.

Usage, in a test module::

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def make_backend(self):
            def make(**options):
                mailpost.configure(MAILERS={"contract": {"BACKEND": "...", "OPTIONS": options}})
                return mailpost.mailers["contract"]
            return make

        @pytest.fixture
        def delivered(self):
            return lambda: [...]  # list[Delivered], or None when nothing is observable

Backends that deliver bytes without an envelope (console, file) set
``observes_envelope = False``: their ``Delivered.recipients`` is not checked, but every
message's ``delivery`` result still has to name the envelope recipients.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage as StdlibMessage
from typing import Any

import pytest

import mailpost
from helpers import make_message
from mailpost import DeliveryResult

__all__ = ["BackendContract", "Delivered", "make_message", "outbox_delivered"]


@dataclass
class Delivered:
    """One message as a backend delivered it."""

    sender: str  # envelope sender (addr-spec)
    recipients: list[str]  # envelope recipients
    data: bytes  # the message bytes as delivered


MakeBackend = Callable[..., Any]
DeliveredFn = Callable[[], "list[Delivered] | None"]


def outbox_delivered() -> list[Delivered]:
    """What the in-memory backends put in ``mailpost.outbox``, as the contract compares it."""
    from mailpost.message import envelope, serialize

    result = []
    for msg in getattr(mailpost, "outbox", []):
        sender, recipients = envelope(msg)
        result.append(Delivered(sender, recipients, serialize(msg)))
    return result


def parse(data: bytes) -> StdlibMessage:
    """Parse delivered bytes the way a mail client would."""
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, StdlibMessage)
    return parsed


def track_opens(backend: Any) -> list[Any]:
    """Record what every ``backend.open()`` call returns (True means it opened now)."""
    calls: list[Any] = []
    original = backend.open

    def open_and_record() -> Any:
        result = original()
        calls.append(result)
        return result

    backend.open = open_and_record
    return calls


class BackendContract:
    """Behaviour every mailpost backend shares.

    Subclass in a test module and provide two fixtures:

    ``make_backend``: a callable (**options) -> a fresh backend instance built as MAILERS
    alias "contract" (e.g. via mailpost.configure(MAILERS=...) + mailpost.mailers["contract"]);

    ``delivered``: a callable () -> list[Delivered] of what the backend delivered so far,
    or None for a backend that delivers nothing observable (dummy).
    """

    #: Whether ``Delivered.recipients`` reports the envelope (False for console / file).
    observes_envelope: bool = True
    #: The aliases ``delivery.mailer`` may name: the inner mailers, for a composite one.
    result_mailers: tuple[str, ...] = ("contract",)

    # -- counting ---------------------------------------------------------------

    def test_send_messages_returns_number_sent(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        backend = make_backend()
        assert backend.send_messages([make_message(1), make_message(2), make_message(3)]) == 3
        seen = delivered()
        if seen is not None:
            assert [parse(d.data)["Subject"] for d in seen] == [
                "Message 1",
                "Message 2",
                "Message 3",
            ]

    def test_empty_list_returns_zero_and_opens_nothing(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        backend = make_backend()
        opens = track_opens(backend)
        assert backend.send_messages([]) == 0
        assert not any(opens)
        assert delivered() in ([], None)

    # -- results ------------------------------------------------------------------

    def test_each_message_gets_a_successful_delivery_result(
        self, make_backend: MakeBackend
    ) -> None:
        messages = [make_message(1), make_message(2)]
        make_backend().send_messages(messages)
        for n, msg in enumerate(messages, start=1):
            result = msg.delivery
            assert isinstance(result, DeliveryResult)
            assert result.sent is True
            assert result.ok is True
            assert result.mailer in self.result_mailers
            assert result.accepted == [f"rcpt-{n}@example.com"]

    def test_each_message_is_marked_with_the_mailer_alias(self, make_backend: MakeBackend) -> None:
        messages = [make_message(1), make_message(2)]
        make_backend().send_messages(messages)
        assert [m.sent_using for m in messages] == ["contract", "contract"]

    # -- envelope and content ---------------------------------------------------------

    def test_bcc_recipient_gets_the_message_without_a_bcc_header(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        msg = make_message(1, bcc=["hidden@example.com"])
        assert make_backend().send_messages([msg]) == 1
        assert sorted(msg.delivery.accepted) == ["hidden@example.com", "rcpt-1@example.com"]
        seen = delivered()
        if seen is None:
            return
        [one] = seen
        assert parse(one.data)["Bcc"] is None
        assert b"hidden@example.com" not in one.data
        if self.observes_envelope:
            assert sorted(one.recipients) == ["hidden@example.com", "rcpt-1@example.com"]
            assert one.sender == "sender@example.com"

    def test_delivered_bytes_parse_to_the_same_subject_body_and_recipients(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        msg = make_message(
            7,
            subject="Grüße aus Köln",
            body="Hallo Welt \N{EM DASH} ünïcödé body\n",
            to=["a@example.com", "b@example.com"],
            cc=["c@example.com"],
        )
        assert make_backend().send_messages([msg]) == 1
        seen = delivered()
        if seen is None:
            return
        [one] = seen
        parsed = parse(one.data)
        assert parsed["Subject"] == "Grüße aus Köln"
        body = parsed.get_body(("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")  # 8bit text keeps the wire's CRLF
        assert text.rstrip("\n") == "Hallo Welt \N{EM DASH} ünïcödé body"
        assert [a.addr_spec for a in parsed["To"].addresses] == ["a@example.com", "b@example.com"]
        assert [a.addr_spec for a in parsed["Cc"].addresses] == ["c@example.com"]
        assert parsed["From"].addresses[0].addr_spec == "sender@example.com"
        if self.observes_envelope:
            assert sorted(one.recipients) == ["a@example.com", "b@example.com", "c@example.com"]

    def test_header_with_newline_raises_value_error_and_is_not_delivered(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        msg = make_message(1)
        msg.subject = "Hello\nBcc: victim@example.com"
        with pytest.raises(ValueError):
            make_backend().send_messages([msg])
        assert delivered() in ([], None)

    def test_a_bad_header_does_not_stop_the_batch_and_is_raised_after_it(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        messages = [make_message(1), make_message(2), make_message(3)]
        messages[1].subject = "Hello\nBcc: victim@example.com"
        with pytest.raises(ValueError, match="Subject") as info:
            make_backend().send_messages(messages)
        seen = delivered()
        if seen is not None:
            assert [parse(m.data)["Subject"] for m in seen] == ["Message 1", "Message 3"]
            assert not any(b"victim" in m.data for m in seen)
        first, bad, last = (m.delivery for m in messages)
        assert first is not None
        assert first.ok
        assert last is not None
        assert last.ok
        assert bad is not None
        assert not bad.sent
        assert bad.exception is info.value
        assert bad.error is not None
        assert bad.error.startswith("message could not be composed")

    def test_a_bad_header_is_recorded_not_raised_when_failing_silently(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        messages = [make_message(1), make_message(2)]
        messages[0].subject = "Hello\nBcc: victim@example.com"
        assert make_backend(fail_silently=True).send_messages(messages) == 1
        seen = delivered()
        if seen is not None:
            assert [parse(m.data)["Subject"] for m in seen] == ["Message 2"]
        assert messages[0].delivery is not None
        assert not messages[0].delivery.sent
        assert messages[1].delivery is not None
        assert messages[1].delivery.ok

    # -- open and close -------------------------------------------------------------------

    def test_with_block_opens_once_and_stays_open(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        backend = make_backend()
        opens = track_opens(backend)
        with backend as entered:
            assert entered is backend
            assert backend.send_messages([make_message(1)]) == 1
            assert backend.send_messages([make_message(2), make_message(3)]) == 2
            assert not backend.open(), "open() on an open backend must not open it again"
        assert sum(1 for r in opens if r) <= 1
        seen = delivered()
        if seen is not None:
            assert len(seen) == 3

    def test_backend_can_send_again_after_the_with_block_closed_it(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        backend = make_backend()
        with backend:
            backend.send_messages([make_message(1)])
        assert backend.send_messages([make_message(2)]) == 1
        seen = delivered()
        if seen is not None:
            assert [parse(d.data)["Subject"] for d in seen] == ["Message 1", "Message 2"]

    def test_with_block_closes_the_backend_when_the_block_raises(
        self, make_backend: MakeBackend
    ) -> None:
        backend = make_backend()
        closed: list[bool] = []
        original_close = backend.close

        def close_and_record() -> None:
            original_close()
            closed.append(True)

        backend.close = close_and_record
        with pytest.raises(RuntimeError, match="boom"), backend:
            raise RuntimeError("boom")
        assert closed

    def test_close_is_safe_twice(self, make_backend: MakeBackend) -> None:
        backend = make_backend()
        backend.open()
        backend.close()
        backend.close()

    def test_close_without_open_is_safe(self, make_backend: MakeBackend) -> None:
        make_backend().close()

    # -- async twins --------------------------------------------------------------------------

    def test_asend_messages_returns_number_sent_and_records_results(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        backend = make_backend()
        messages = [make_message(1), make_message(2)]
        assert asyncio.run(backend.asend_messages(messages)) == 2
        assert [m.sent_using for m in messages] == ["contract", "contract"]
        assert all(m.delivery.ok and m.delivery.sent for m in messages)
        seen = delivered()
        if seen is not None:
            assert [parse(d.data)["Subject"] for d in seen] == ["Message 1", "Message 2"]

    def test_async_with_block_sends_twice_while_open_once(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        backend = make_backend()

        async def run() -> tuple[int, int]:
            async with backend as entered:
                assert entered is backend
                first = await backend.asend_messages([make_message(1)])
                second = await backend.asend_messages([make_message(2), make_message(3)])
            await backend.aclose()  # closing again is safe
            return first, second

        assert asyncio.run(run()) == (1, 2)
        seen = delivered()
        if seen is not None:
            assert len(seen) == 3

    def test_asend_messages_with_empty_list_returns_zero(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        assert asyncio.run(make_backend().asend_messages([])) == 0
        assert delivered() in ([], None)

    def test_asend_messages_rejects_header_with_newline(
        self, make_backend: MakeBackend, delivered: DeliveredFn
    ) -> None:
        msg = make_message(1)
        msg.subject = "Hello\r\nX-Injected: yes"
        with pytest.raises(ValueError):
            asyncio.run(make_backend().asend_messages([msg]))
        assert delivered() in ([], None)
