"""mailpost.testing: capture(), Outbox assertions, and the pytest plugin (via pytester)."""

from __future__ import annotations

import asyncio
import threading

import pytest

import mailpost
from mailpost.testing import Outbox, assert_none_sent, assert_sent, capture

UNREACHABLE_SMTP = {
    "default": {
        "BACKEND": "mailpost.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": 1, "timeout": 0.5},
    },
    "bulk": "smtp://127.0.0.1:1",
}


@pytest.fixture(autouse=True)
def _unreachable_mailers() -> None:
    mailpost.configure(MAILERS=UNREACHABLE_SMTP, DEFAULT_FROM_EMAIL="app@example.com")


def test_capture_swaps_every_configured_mailer_for_memory() -> None:
    with capture() as outbox:
        assert mailpost.send_mail("One", "b", None, ["a@example.com"]) == 1
        assert mailpost.send_mail("Two", "b", None, ["b@example.com"], using="bulk") == 1
    assert [(m.subject, m.sent_using) for m in outbox] == [("One", "default"), ("Two", "bulk")]
    assert [m.subject for m in mailpost.outbox] == ["One", "Two"]


def test_outside_capture_the_real_mailer_is_used_again() -> None:
    with capture():
        pass
    with pytest.raises(mailpost.DeliveryError):
        mailpost.send_mail("s", "b", None, ["a@example.com"])


def test_capture_still_reports_undefined_and_invalid_mailers() -> None:
    mailpost.configure(MAILERS={"broken": {"BACKEND": "no.such.module.Backend", "X": 1}})
    with capture():
        with pytest.raises(mailpost.MailerDoesNotExist):
            mailpost.send_mail("s", "b", "a@example.com", ["a@example.com"], using="nope")
        with pytest.raises(mailpost.InvalidMailer, match=r"MAILERS\['broken'\]"):
            mailpost.mailers["broken"]


def test_concurrent_asyncio_tasks_each_capture_only_their_own_mail() -> None:
    async def task(name: str, start: asyncio.Event, other_done: asyncio.Event) -> list[str]:
        with capture() as outbox:
            start.set()
            await mailpost.asend_mail(f"{name}-1", "b", None, [f"{name}@example.com"])
            await asyncio.sleep(0)
            await mailpost.asend_mail(f"{name}-2", "b", None, [f"{name}@example.com"])
            await other_done.wait()
        return [m.subject for m in outbox]

    async def main() -> tuple[list[str], list[str]]:
        a_start, b_start = asyncio.Event(), asyncio.Event()
        a_done, b_done = asyncio.Event(), asyncio.Event()

        async def run(name: str, start: asyncio.Event, done: asyncio.Event,
                      other: asyncio.Event) -> list[str]:  # fmt: skip
            try:
                return await task(name, start, other)
            finally:
                done.set()

        return await asyncio.wait_for(
            asyncio.gather(run("a", a_start, a_done, b_start), run("b", b_start, b_done, a_start)),
            timeout=10,
        )

    a, b = asyncio.run(main())
    assert a == ["a-1", "a-2"]
    assert b == ["b-1", "b-2"]


def test_threads_each_capture_only_their_own_mail() -> None:
    results: dict[str, list[str]] = {}
    barrier = threading.Barrier(2, timeout=10)

    def worker(name: str) -> None:
        with capture() as outbox:
            barrier.wait()
            for i in range(5):
                mailpost.send_mail(f"{name}{i}", "b", None, ["x@example.com"])
            barrier.wait()
        results[name] = [m.subject for m in outbox]

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("p", "q")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == {"p": [f"p{i}" for i in range(5)], "q": [f"q{i}" for i in range(5)]}


def test_nested_captures_both_see_the_inner_mail() -> None:
    with capture() as outer:
        mailpost.send_mail("before", "b", None, ["a@example.com"])
        with capture() as inner:
            mailpost.send_mail("inside", "b", None, ["a@example.com"])
    assert [m.subject for m in inner] == ["inside"]
    assert [m.subject for m in outer] == ["before", "inside"]


def make_message() -> mailpost.EmailMultiAlternatives:
    msg = mailpost.EmailMultiAlternatives(
        "Invoice 7", "Amount: 10 EUR", "shop@example.com", ["Ann <ANN@Example.com>"],
        bcc=["audit@example.com"],
    )  # fmt: skip
    msg.attach_alternative("<p>Amount: <b>10 EUR</b></p>", "text/html")
    msg.attach("invoice-7.pdf", b"%PDF", "application/pdf")
    return msg


def test_assert_sent_matches_on_every_documented_criterion() -> None:
    with capture() as outbox:
        make_message().send(using="bulk")
    [msg] = outbox.assert_sent(
        1,
        to=["ann@example.com", "audit@example.com"],
        subject="Invoice 7",
        subject_contains="Invoice",
        body_contains="10 EUR",
        html_contains="<b>10 EUR</b>",
        attachments=["invoice-7.pdf"],
        using="bulk",
    )
    assert msg.subject == "Invoice 7"


def test_assert_sent_failure_lists_what_was_sent() -> None:
    with capture() as outbox:
        make_message().send()
    with pytest.raises(AssertionError) as info:
        outbox.assert_sent(to="bob@example.com", subject="Invoice 7")
    text = str(info.value)
    assert "expected at least one message matching to='bob@example.com'" in text
    assert "0 matched, 1 sent" in text
    assert "subject='Invoice 7'" in text
    assert "attachments=['invoice-7.pdf']" in text


def test_assert_count_and_none_sent() -> None:
    outbox = Outbox()
    outbox.assert_none_sent()
    with capture() as outbox:
        mailpost.send_mail("s", "b", None, ["a@example.com"])
    outbox.assert_count(1)
    with pytest.raises(AssertionError, match="expected 0 message"):
        outbox.assert_none_sent()


def test_module_level_helpers_use_mailpost_outbox() -> None:
    with capture():
        assert_none_sent()
        mailpost.send_mail("hello", "b", None, ["a@example.com"])
    assert_sent(1, subject="hello")


PLUGIN_TESTS = """
import pytest
import mailpost

@pytest.fixture(autouse=True)
def _smtp_nowhere(tmp_path):
    mailpost.configure(
        MAILERS={"default": {"BACKEND": "mailpost.backends.smtp.EmailBackend",
                             "OPTIONS": {"host": "127.0.0.1", "port": 1, "timeout": 0.5}},
                 "files": {"BACKEND": "mailpost.backends.filebased.EmailBackend",
                           "OPTIONS": {"file_path": str(tmp_path / "mail")}}},
        DEFAULT_FROM_EMAIL="app@example.com",
    )

def test_first_sends_two(mailoutbox):
    mailpost.send_mail("a", "b", None, ["x@example.com"])
    mailpost.send_mail("c", "d", None, ["y@example.com"])
    assert [m.subject for m in mailoutbox] == ["a", "c"]
    assert mailoutbox is mailpost.outbox

def test_second_starts_with_an_empty_outbox(mailoutbox):
    assert mailoutbox == []
    mailoutbox.assert_none_sent()

@pytest.mark.mailpost_live
def test_live_marker_really_sends(tmp_path):
    assert mailpost.send_mail("live", "b", None, ["x@example.com"], using="files") == 1
    assert len(list((tmp_path / "mail").iterdir())) == 1
"""


def test_plugin_swaps_mailers_resets_the_outbox_and_honours_the_live_marker(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_plugin_swap_can_be_turned_off_for_a_suite(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmailpost_capture = false\n")
    pytester.makepyfile(
        """
        import pytest, mailpost
        def test_really_tries_smtp():
            mailpost.configure(MAILERS={"default": "smtp://127.0.0.1:1?timeout=0.5"})
            with pytest.raises(mailpost.DeliveryError):
                mailpost.send_mail("s", "b", "a@example.com", ["x@example.com"])
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
