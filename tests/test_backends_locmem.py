"""The in-memory backend: copies in mailpost.outbox, marked with the mailer alias."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import mailpost
from backend_contract import BackendContract, Delivered, make_message
from mailpost.backends.locmem import EmailBackend, LocmemBackend
from mailpost.message import envelope, serialize


def configure_locmem(alias: str = "contract", **options: Any) -> None:
    entry = {"BACKEND": "mailpost.backends.locmem.EmailBackend", "OPTIONS": options}
    mailpost.configure(MAILERS={alias: entry})


class TestLocmemContract(BackendContract):
    @pytest.fixture
    def make_backend(self) -> Callable[..., Any]:
        def make(**options: Any) -> Any:
            fail_silently = options.pop("fail_silently", None)  # no option here (Django 6.1)
            configure_locmem(**options)
            backend = mailpost.mailers["contract"]
            if fail_silently is not None:
                backend.fail_silently = fail_silently
            return backend

        return make

    @pytest.fixture
    def delivered(self) -> Callable[[], list[Delivered]]:
        def seen() -> list[Delivered]:
            result = []
            for msg in getattr(mailpost, "outbox", []):
                sender, recipients = envelope(msg)
                result.append(Delivered(sender, recipients, serialize(msg)))
            return result

        return seen


def test_emailbackend_is_the_locmem_backend_class() -> None:
    assert EmailBackend is LocmemBackend


def test_outbox_does_not_exist_before_the_first_send() -> None:
    configure_locmem()
    mailpost.mailers["contract"]
    assert not hasattr(mailpost, "outbox")


def test_outbox_is_created_on_first_send_and_collects_messages() -> None:
    configure_locmem()
    mailpost.mailers["contract"].send_messages([make_message(1)])
    mailpost.mailers["contract"].send_messages([make_message(2)])
    assert [m.subject for m in mailpost.outbox] == ["Message 1", "Message 2"]


def test_outbox_holds_copies_not_the_sent_objects() -> None:
    configure_locmem()
    msg = make_message(1)
    mailpost.mailers["contract"].send_messages([msg])
    msg.subject = "changed after sending"
    [stored] = mailpost.outbox
    assert stored is not msg
    assert stored.subject == "Message 1"


def test_outbox_copy_and_original_are_marked_with_the_alias() -> None:
    configure_locmem("notifications")
    msg = make_message(1)
    mailpost.mailers["notifications"].send_messages([msg])
    assert msg.sent_using == "notifications"
    assert mailpost.outbox[0].sent_using == "notifications"


def test_outbox_copy_carries_the_delivery_result() -> None:
    configure_locmem()
    msg = make_message(1)
    mailpost.mailers["contract"].send_messages([msg])
    stored = mailpost.outbox[0]
    assert stored.delivery is not None
    assert stored.delivery.ok
    assert stored.delivery.accepted == ["rcpt-1@example.com"]


def test_bad_message_is_not_delivered_and_raised_after_the_batch_like_smtp() -> None:
    configure_locmem()
    bad = make_message(2)
    bad.subject = "bad\nX-Injected: 1"
    with pytest.raises(ValueError, match="ubject"):
        mailpost.mailers["contract"].send_messages([make_message(1), bad, make_message(3)])
    assert [m.subject for m in mailpost.outbox] == ["Message 1", "Message 3"]
    assert bad.delivery is not None
    assert not bad.delivery.sent


def test_locmem_rejects_options_by_name() -> None:
    configure_locmem(stream="x")
    with pytest.raises(mailpost.InvalidMailer, match=r"^MAILERS\['contract'\]: .*'stream'"):
        mailpost.mailers["contract"]


def test_deprecated_connection_is_shared_not_copied_into_the_outbox() -> None:
    configure_locmem()
    backend = mailpost.mailers["contract"]
    with pytest.deprecated_call():
        msg = mailpost.EmailMessage("Hi", "body", "a@example.com", ["b@example.com"],
                                    connection=backend)  # fmt: skip
    backend.send_messages([msg])
    assert mailpost.outbox[0].connection is backend


def test_fail_silently_is_no_option_but_an_assigned_one_skips_bad_messages() -> None:
    configure_locmem(fail_silently=True)
    with pytest.raises(mailpost.InvalidMailer, match="Unknown options 'fail_silently'"):
        mailpost.mailers["contract"]
    configure_locmem()
    backend = mailpost.mailers["contract"]
    backend.fail_silently = True
    bad = make_message(2)
    bad.subject = "bad\nX-Injected: 1"
    assert backend.send_messages([make_message(1), bad]) == 1
    assert [m.subject for m in mailpost.outbox] == ["Message 1"]
