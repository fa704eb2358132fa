"""The console backend: each message's text and a dashed line, written to a stream."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

import mailpost
from backend_contract import BackendContract, Delivered, make_message, parse
from mailpost.backends.console import SEPARATOR, ConsoleBackend, EmailBackend


def configure_console(alias: str = "contract", **options: Any) -> None:
    entry = {"BACKEND": "mailpost.backends.console.EmailBackend", "OPTIONS": options}
    mailpost.configure(MAILERS={alias: entry})


def split_output(text: str) -> list[str]:
    """The messages written to a console stream, without the blank line and separator line
    that follow each one."""
    chunks = text.split("\n" + SEPARATOR + "\n")
    assert chunks[-1] == ""
    return chunks[:-1]


class TestConsoleContract(BackendContract):
    observes_envelope = False

    @pytest.fixture
    def stream(self) -> io.StringIO:
        return io.StringIO()

    @pytest.fixture
    def make_backend(self, stream: io.StringIO) -> Callable[..., Any]:
        def make(**options: Any) -> Any:
            configure_console(**{"stream": stream, **options})
            return mailpost.mailers["contract"]

        return make

    @pytest.fixture
    def delivered(self, stream: io.StringIO) -> Callable[[], list[Delivered]]:
        return lambda: [Delivered("", [], c.encode()) for c in split_output(stream.getvalue())]


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("disk on fire")


def test_emailbackend_is_the_console_backend_class() -> None:
    assert EmailBackend is ConsoleBackend


def test_console_writes_message_then_a_blank_line_and_79_dashes() -> None:
    stream = io.StringIO()
    configure_console(stream=stream)
    mailpost.mailers["contract"].send_messages([make_message(1)])
    out = stream.getvalue()
    assert out.endswith("Body 1\n\n" + "-" * 79 + "\n")
    assert "Subject: Message 1\n" in out
    assert "\r" not in out
    assert "Body 1" in out


def test_console_shows_non_ascii_text_readably_as_8bit() -> None:
    stream = io.StringIO()
    configure_console(stream=stream)
    msg = mailpost.EmailMessage("Hi", "Grüße, ça va?", "from@example.com", ["to@example.com"])
    mailpost.mailers["contract"].send_messages([msg])
    out = stream.getvalue()
    assert "Content-Transfer-Encoding: 8bit\n" in out
    assert "\n\nGrüße, ça va?\n\n" + SEPARATOR + "\n" in out


def test_console_defaults_to_sys_stdout_looked_up_at_write_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure_console()
    backend = mailpost.mailers["contract"]
    replaced = io.StringIO()
    monkeypatch.setattr(sys, "stdout", replaced)
    backend.send_messages([make_message(1)])
    assert "Subject: Message 1" in replaced.getvalue()


def test_console_write_error_is_reported_as_delivery_error_after_the_batch() -> None:
    configure_console(stream=BrokenStream())
    messages = [make_message(1), make_message(2)]
    with pytest.raises(mailpost.DeliveryError) as info:
        mailpost.mailers["contract"].send_messages(messages)
    assert str(info.value).startswith("MAILERS['contract']: 2 of 2 message(s) not fully delivered")
    assert [r.sent for r in info.value.results] == [False, False]
    assert isinstance(info.value.__cause__, OSError)
    assert all(m.delivery is not None and "disk on fire" in (m.delivery.error or "")
               for m in messages)  # fmt: skip


def test_console_fail_silently_ignores_write_errors_and_returns_zero() -> None:
    configure_console(stream=BrokenStream(), fail_silently=True)
    msg = make_message(1)
    assert mailpost.mailers["contract"].send_messages([msg]) == 0
    assert msg.delivery is not None
    assert not msg.delivery.sent


def test_console_fail_silently_ignores_composing_errors() -> None:
    stream = io.StringIO()
    configure_console(stream=stream, fail_silently=True)
    bad = make_message(1)
    bad.subject = "a\nb"
    assert mailpost.mailers["contract"].send_messages([bad, make_message(2)]) == 1
    [only] = split_output(stream.getvalue())
    assert parse(only.encode())["Subject"] == "Message 2"


def test_console_bad_message_is_not_written_and_raised_after_the_others() -> None:
    stream = io.StringIO()
    configure_console(stream=stream)
    bad = make_message(2)
    bad.subject = "a\nb"
    good = make_message(1)
    with pytest.raises(ValueError, match="Subject"):
        mailpost.mailers["contract"].send_messages([good, bad, make_message(3)])
    written = [parse(text.encode())["Subject"] for text in split_output(stream.getvalue())]
    assert written == ["Message 1", "Message 3"]
    assert bad.delivery is not None
    assert "could not be composed" in (bad.delivery.error or "")
    assert good.delivery is not None
    assert good.delivery.ok


class FailsOnSecondWrite(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes == 2:
            raise OSError("hiccup")
        return super().write(text)


def test_console_write_failure_does_not_stop_the_other_messages() -> None:
    stream = FailsOnSecondWrite()
    configure_console(stream=stream)
    messages = [make_message(1), make_message(2), make_message(3)]
    with pytest.raises(mailpost.DeliveryError, match="1 of 3") as info:
        mailpost.mailers["contract"].send_messages(messages)
    subjects = [parse(c.encode())["Subject"] for c in split_output(stream.getvalue())]
    assert subjects == ["Message 1", "Message 3"]
    assert [r.sent for r in info.value.results] == [True, False, True]
    assert [m.delivery.sent for m in messages if m.delivery] == [True, False, True]


def test_console_stream_option_must_be_writable() -> None:
    configure_console(stream="stdout")
    with pytest.raises(mailpost.InvalidMailer, match=r"^MAILERS\['contract'\]: .*'stream'"):
        mailpost.mailers["contract"]


def test_console_rejects_unknown_options_by_name() -> None:
    configure_console(file_path="/tmp")
    with pytest.raises(mailpost.InvalidMailer, match=r"^MAILERS\['contract'\]: .*'file_path'"):
        mailpost.mailers["contract"]


def test_console_batches_from_threads_do_not_interleave() -> None:
    stream = io.StringIO()
    configure_console(stream=stream)
    backend = mailpost.mailers["contract"]

    def send(n: int) -> None:
        backend.send_messages([make_message(n * 10 + i, body="x" * 2000) for i in range(5)])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    chunks = split_output(stream.getvalue())
    assert len(chunks) == 40
    for chunk in chunks:
        parsed = parse(chunk.encode())
        assert parsed.get_content().rstrip("\n") == "x" * 2000
