"""Testing mail: capture what would be sent and assert on it, with any test runner.

* :func:`capture` — a context manager that swaps every configured mailer for the
  in-memory backend and collects the mail sent in the current thread or asyncio task
  into an :class:`Outbox`. Works with unittest, pytest, or a plain script.
* :class:`Outbox` — a list of the sent messages with assertion helpers whose failure
  messages list what was actually sent.
* A pytest plugin (registered through the ``pytest11`` entry point, active as soon as
  mailpost is installed): in every test, every mailer is swapped for the in-memory backend
  and ``mailpost.outbox`` starts empty; the ``mailoutbox`` fixture returns it; the
  ``mailpost_live`` marker lets a test really send; the ``mailpost_capture = false`` ini
  option turns the automatic swap off for a whole suite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mailpost import _capture, _django
from mailpost._headers import parse_address

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["Outbox", "assert_none_sent", "assert_sent", "capture", "mail_outbox"]


def _addr(value: Any) -> str:
    try:
        return parse_address(value, "address").addr_spec.lower()
    except ValueError:
        return str(value).lower()


def _html(message: EmailMessage) -> list[str]:
    parts = [
        content if isinstance(content, str) else bytes(content).decode("utf-8", "replace")
        for content, mimetype in getattr(message, "alternatives", ())
        if str(mimetype).lower() == "text/html"
    ]
    if message.content_subtype == "html":
        parts.append(str(message.body))
    return parts


def _attachment_names(message: EmailMessage) -> list[str]:
    names = []
    for attachment in message.attachments:
        name = attachment[0] if isinstance(attachment, tuple) else attachment.get_filename()
        if name:
            names.append(str(name))
    return names


def _describe(message: EmailMessage) -> str:
    return (
        f"to={message.recipients()!r} subject={str(message.subject)!r} "
        f"using={getattr(message, 'sent_using', None)!r}"
        + (f" attachments={_attachment_names(message)!r}" if message.attachments else "")
    )


class Outbox(list["EmailMessage"]):
    """The messages sent while capturing, in order, with assertion helpers."""

    def filter(
        self,
        *,
        to: str | Iterable[str] | None = None,
        subject: str | None = None,
        subject_contains: str | None = None,
        body_contains: str | None = None,
        html_contains: str | None = None,
        attachments: Iterable[str] | None = None,
        using: str | None = None,
    ) -> list[EmailMessage]:
        """The messages that match every criterion given.

        ``to``: address(es) that must all be among the recipients (To, Cc or Bcc).
        ``attachments``: file names that must all be attached.
        """
        wanted_to = [to] if isinstance(to, str) else list(to or ())
        wanted_files = list(attachments or ())
        matches = []
        for message in self:
            recipients = {_addr(r) for r in message.recipients()}
            if any(_addr(a) not in recipients for a in wanted_to):
                continue
            if subject is not None and str(message.subject) != subject:
                continue
            if subject_contains is not None and subject_contains not in str(message.subject):
                continue
            if body_contains is not None and body_contains not in str(message.body):
                continue
            if html_contains is not None and not any(html_contains in h for h in _html(message)):
                continue
            if any(name not in _attachment_names(message) for name in wanted_files):
                continue
            if using is not None and getattr(message, "sent_using", None) != using:
                continue
            matches.append(message)
        return matches

    def assert_sent(self, count: int | None = None, **criteria: Any) -> list[EmailMessage]:
        """Assert that messages matching ``criteria`` (see :meth:`filter`) were sent.

        ``count=None`` means at least one. Returns the matching messages.
        """
        matches = self.filter(**criteria)
        if (count is None and matches) or (count is not None and len(matches) == count):
            return matches
        expected = "at least one message" if count is None else f"{count} message(s)"
        wanted = ", ".join(f"{k}={v!r}" for k, v in criteria.items()) or "any"
        sent = "\n".join(f"  {i}. {_describe(m)}" for i, m in enumerate(self, 1)) or "  (none)"
        raise AssertionError(
            f"expected {expected} matching {wanted}; {len(matches)} matched, "
            f"{len(self)} sent:\n{sent}"
        )

    def assert_count(self, count: int) -> None:
        """Assert exactly ``count`` messages were sent."""
        if len(self) != count:
            sent = "\n".join(f"  {i}. {_describe(m)}" for i, m in enumerate(self, 1))
            raise AssertionError(
                f"expected {count} message(s) sent, got {len(self)}:\n{sent or '  (none)'}"
            )

    def assert_none_sent(self) -> None:
        """Assert nothing was sent."""
        self.assert_count(0)


@contextmanager
def capture() -> Iterator[Outbox]:
    """Swap every configured mailer for memory and collect what this context sends.

    Isolated per thread and per asyncio task: mail sent by another task that is not
    inside this ``with`` block does not show up here. Messages still also go to
    ``mailpost.outbox``. Captures nest; an inner one's mail is in the outer one too.
    """
    outbox = Outbox()
    token = _capture.push(outbox)
    try:
        yield outbox
    finally:
        _capture.pop(token)


def mail_outbox() -> Outbox:
    """``mailpost.outbox`` (created empty if nothing was sent yet).

    During a Django test run that is Django's ``mail.outbox``; then this returns a snapshot
    of it (an ``Outbox`` to assert on), leaving Django's list in place.
    """
    import mailpost

    django_box = _django.outbox()
    if django_box is not None and "outbox" not in vars(mailpost):
        return Outbox(django_box)
    box = getattr(mailpost, "outbox", None)
    if box is None:
        box = Outbox()
        mailpost.outbox = box
    if not isinstance(box, Outbox):
        box = Outbox(box)
        mailpost.outbox = box
    return box


def assert_sent(count: int | None = None, **criteria: Any) -> list[EmailMessage]:
    """:meth:`Outbox.assert_sent` on ``mailpost.outbox``."""
    return mail_outbox().assert_sent(count, **criteria)


def assert_none_sent() -> None:
    """:meth:`Outbox.assert_none_sent` on ``mailpost.outbox``."""
    mail_outbox().assert_none_sent()


# -- pytest plugin ----------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the plugin needs pytest; capture() does not
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    def pytest_addoption(parser: pytest.Parser) -> None:
        parser.addini(
            "mailpost_capture",
            "swap every mailpost mailer for the in-memory backend in every test",
            type="bool",
            default=True,
        )

    def pytest_configure(config: pytest.Config) -> None:
        config.addinivalue_line(
            "markers", "mailpost_live: really send mail in this test (no in-memory swap)"
        )
        if not config.pluginmanager.hasplugin("django"):
            config.pluginmanager.register(_OutboxFixture(), "mailpost-mailoutbox")

    @pytest.fixture(autouse=True)
    def _mailpost_capture(request: pytest.FixtureRequest) -> Iterator[None]:
        """Every test starts with an empty outbox and, unless opted out, memory mailers."""
        import mailpost

        mailpost.outbox = Outbox()
        live = request.node.get_closest_marker("mailpost_live") is not None
        swap = bool(request.config.getini("mailpost_capture")) and not live
        if swap:
            _capture.enable_globally()
        try:
            yield
        finally:
            if swap:
                _capture.disable_globally()

    class _OutboxFixture:
        """``mailoutbox``, unless pytest-django (which has its own, same outbox) is active."""

        @pytest.fixture
        def mailoutbox(self) -> Outbox:
            """The messages sent during this test (``mailpost.outbox``)."""
            return mail_outbox()
