"""AdminEmailHandler: error records reach ADMINS, never raise, never recurse, never flood."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import pytest

import mailpost
from mailpost.backends.base import BaseEmailBackend
from mailpost.log import AdminEmailHandler
from mailpost.message import EmailMessage


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def logger(clock: FakeClock) -> Iterator[tuple[logging.Logger, AdminEmailHandler]]:
    mailpost.configure(
        MAILERS={
            "default": {"BACKEND": "mailpost.backends.dummy.EmailBackend"},
            "ops": {"BACKEND": "mailpost.backends.locmem.EmailBackend"},
        },
        ADMINS=["ops@example.com", "Lead <lead@example.com>"],
        SERVER_EMAIL="server@example.com",
        EMAIL_SUBJECT_PREFIX="[app] ",
    )
    log = logging.getLogger("test_log.app")
    log.propagate = False
    handler = AdminEmailHandler(using="ops", clock=clock)
    log.addHandler(handler)
    yield log, handler
    log.removeHandler(handler)


def outbox() -> list[EmailMessage]:
    return list(getattr(mailpost, "outbox", []))


def test_error_with_traceback_is_mailed_to_admins_through_the_chosen_mailer(
    logger: tuple[logging.Logger, AdminEmailHandler],
) -> None:
    log, _ = logger
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.exception("Payment failed for order %s", 42)
    [mail] = outbox()
    assert mail.subject == "[app] ERROR: Payment failed for order 42"
    assert mail.to == ["ops@example.com", "Lead <lead@example.com>"]
    assert mail.from_email == "server@example.com"
    assert mail.sent_using == "ops"
    assert "Traceback (most recent call last)" in mail.body
    assert "ZeroDivisionError" in mail.body
    assert "Logger: test_log.app" in mail.body


def test_records_below_the_level_are_not_mailed(
    logger: tuple[logging.Logger, AdminEmailHandler],
) -> None:
    log, _ = logger
    log.warning("disk at 80%")
    log.info("hello")
    assert outbox() == []


def test_multiline_message_gives_a_one_line_truncated_subject(
    logger: tuple[logging.Logger, AdminEmailHandler],
) -> None:
    log, _ = logger
    log.error("first line %s\r\nInjected: header\u2028more", "x" * 300)
    [mail] = outbox()
    assert "\n" not in mail.subject
    assert "\r" not in mail.subject
    assert mail.subject.startswith("[app] ERROR: first line xxx")
    assert len(mail.subject) <= len("[app] ") + 150
    assert "Injected: header" in mail.body


def test_the_same_error_in_a_loop_sends_one_mail_per_window_and_counts_the_rest(
    logger: tuple[logging.Logger, AdminEmailHandler], clock: FakeClock
) -> None:
    log, _ = logger

    def crash(attempt: int) -> None:
        log.error("worker crashed (attempt %d)", attempt)

    for i in range(1000):
        crash(i)
    assert len(outbox()) == 1
    clock.now += 61
    crash(1000)
    mails = outbox()
    assert len(mails) == 2
    assert "Suppressed since the last mail: 999 similar record(s)" in mails[1].body


def test_many_different_errors_are_capped_per_window(
    logger: tuple[logging.Logger, AdminEmailHandler], clock: FakeClock
) -> None:
    log, handler = logger
    handler.throttle_key = lambda record: record.getMessage()
    for i in range(50):
        log.error("distinct error %d", i)
    assert len(outbox()) == handler.max_per_window == 10
    clock.now += 61
    log.error("distinct error %d", 99)
    assert len(outbox()) == 11


def test_throttle_count_zero_mails_every_record(
    logger: tuple[logging.Logger, AdminEmailHandler],
) -> None:
    log, handler = logger
    handler.throttle_count = 0
    for _ in range(25):
        log.error("same")
    assert len(outbox()) == 25


def test_emit_never_raises_when_the_mailer_is_missing(
    logger: tuple[logging.Logger, AdminEmailHandler], monkeypatch: pytest.MonkeyPatch
) -> None:
    log, handler = logger
    handler.using = "no-such-mailer"
    handled: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", handled.append)
    log.error("boom")
    assert [r.getMessage() for r in handled] == ["boom"]
    assert outbox() == []


class LoggingBackend(BaseEmailBackend):
    """A backend that logs an error to the same logger while sending (a feedback loop)."""

    sent: list[EmailMessage] = []

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        logging.getLogger("test_log.app").error("SMTP server unreachable")
        LoggingBackend.sent.extend(email_messages)
        return len(email_messages)


def test_an_error_logged_while_mailing_is_not_mailed_again(
    logger: tuple[logging.Logger, AdminEmailHandler],
) -> None:
    log, handler = logger
    mailpost.configure(
        MAILERS={"ops": {"BACKEND": f"{__name__}.LoggingBackend"}}, ADMINS=["ops@example.com"]
    )
    handler.throttle_count = 0
    LoggingBackend.sent = []
    log.error("original failure")
    assert [m.subject for m in LoggingBackend.sent] == ["ERROR: original failure"]


def test_no_admins_means_nothing_is_sent_and_nothing_raised(
    logger: tuple[logging.Logger, AdminEmailHandler],
) -> None:
    log, _ = logger
    mailpost.configure(
        MAILERS={"ops": {"BACKEND": "mailpost.backends.locmem.EmailBackend"}}, ADMINS=[]
    )
    log.error("nobody listens")
    assert outbox() == []


def test_negative_throttle_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="throttle"):
        AdminEmailHandler(throttle_seconds=-1)
