"""The dummy backend: accepts and counts every message, delivers nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import mailpost
from backend_contract import BackendContract, make_message
from mailpost.backends.dummy import DummyBackend, EmailBackend


def configure_dummy(**options: Any) -> None:
    entry = {"BACKEND": "mailpost.backends.dummy.EmailBackend", "OPTIONS": options}
    mailpost.configure(MAILERS={"contract": entry})


class TestDummyContract(BackendContract):
    @pytest.fixture
    def make_backend(self) -> Callable[..., Any]:
        def make(**options: Any) -> Any:
            fail_silently = options.pop("fail_silently", None)  # no option here (Django 6.1)
            configure_dummy(**options)
            backend = mailpost.mailers["contract"]
            if fail_silently is not None:
                backend.fail_silently = fail_silently
            return backend

        return make

    @pytest.fixture
    def delivered(self) -> Callable[[], None]:
        return lambda: None


def test_emailbackend_is_the_dummy_backend_class() -> None:
    assert EmailBackend is DummyBackend


def test_dummy_returns_the_number_of_messages_and_stores_nothing() -> None:
    configure_dummy()
    assert mailpost.mailers["contract"].send_messages([make_message(n) for n in range(5)]) == 5
    assert not hasattr(mailpost, "outbox")


def test_dummy_records_results_naming_every_recipient() -> None:
    configure_dummy()
    msg = make_message(1, cc=["cc@example.com"])
    mailpost.mailers["contract"].send_messages([msg])
    assert msg.delivery is not None
    assert msg.delivery.accepted == ["rcpt-1@example.com", "cc@example.com"]
    assert msg.delivery.message_id is not None


def test_dummy_rejects_options_by_name() -> None:
    configure_dummy(host="localhost")
    with pytest.raises(mailpost.InvalidMailer, match=r"^MAILERS\['contract'\]: .*'host'"):
        mailpost.mailers["contract"]
