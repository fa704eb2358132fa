"""send_mail & co, EmailMessage.send(), get_connection() and the async twins."""

from __future__ import annotations

import asyncio
import io
import smtplib
import socket
from collections.abc import Sequence
from typing import Any

import pytest

import mailpost
from mailpost import (
    DeliveryError,
    EmailMessage,
    ImproperlyConfigured,
    InvalidMailer,
    MailerDoesNotExist,
    MailpostDeprecationWarning,
    get_connection,
    mail_admins,
    mail_managers,
    send_mail,
    send_mass_mail,
)
from mailpost._admins import amail_admins, amail_managers
from mailpost._api import asend_mail, asend_mass_mail
from mailpost.backends.base import BaseEmailBackend
from mailpost.backends.console import ConsoleBackend
from mailpost.backends.locmem import LocmemBackend

HERE = __name__


class RecordingBackend(BaseEmailBackend):
    """Counts opens and closes and keeps what it was given; takes SMTP-style credentials."""

    instances: list[RecordingBackend] = []

    def __init__(self, *, username: str = "", password: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.username = username
        self.password = password
        self.opened = 0
        self.closed = 0
        self.is_open = False
        self.sent: list[list[Any]] = []
        RecordingBackend.instances.append(self)

    def open(self) -> bool:
        if self.is_open:
            return False
        self.is_open = True
        self.opened += 1
        return True

    def close(self) -> None:
        if self.is_open:
            self.closed += 1
        self.is_open = False

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        if not email_messages:
            return 0
        opened = self.open()
        try:
            self.sent.append(list(email_messages))
            return len(email_messages)
        finally:
            if opened:
                self.close()


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("stream is gone")


@pytest.fixture(autouse=True)
def _fresh_recordings() -> None:
    RecordingBackend.instances.clear()


def use_locmem(*aliases: str) -> None:
    mailpost.configure(MAILERS=dict.fromkeys(("default", *aliases), "locmem://"))


def use_recording() -> None:
    mailpost.configure(MAILERS={"default": {"BACKEND": f"{HERE}.RecordingBackend"}})


def use_broken() -> None:
    entry = {"BACKEND": "mailpost.backends.console.EmailBackend",
             "OPTIONS": {"stream": BrokenStream()}}  # fmt: skip
    mailpost.configure(MAILERS={"default": entry})


def outbox() -> list[Any]:
    return list(getattr(mailpost, "outbox", []))


# -- send_mail -----------------------------------------------------------------------------


def test_send_mail_sends_one_message_to_all_recipients_and_returns_1() -> None:
    use_locmem()
    assert send_mail("Subj", "Body", "from@example.com", ["a@example.com", "b@example.com"]) == 1
    [msg] = outbox()
    assert (msg.subject, msg.body, msg.from_email) == ("Subj", "Body", "from@example.com")
    assert msg.to == ["a@example.com", "b@example.com"]
    assert msg.sent_using == "default"


def test_send_mail_without_from_uses_default_from_email() -> None:
    mailpost.configure(MAILERS={"default": "locmem://"}, DEFAULT_FROM_EMAIL="app@example.com")
    send_mail("Subj", "Body", None, ["a@example.com"])
    assert outbox()[0].from_email == "app@example.com"


def test_send_mail_html_message_becomes_a_text_html_alternative() -> None:
    use_locmem()
    send_mail("Subj", "plain", None, ["a@example.com"], html_message="<p>html</p>")
    [msg] = outbox()
    assert msg.alternatives == [("<p>html</p>", "text/html")]
    parsed = msg.message()
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>html</p>"
    assert parsed.get_body(("plain",)).get_content().strip() == "plain"


def test_send_mail_using_routes_to_that_mailer() -> None:
    use_locmem("notifications")
    send_mail("S", "B", None, ["a@example.com"], using="notifications")
    assert outbox()[0].sent_using == "notifications"


def test_send_mail_unknown_alias_raises_mailer_does_not_exist() -> None:
    use_locmem()
    with pytest.raises(MailerDoesNotExist, match="The mailer 'nope' is not configured"):
        send_mail("S", "B", None, ["a@example.com"], using="nope")


def test_send_mail_without_any_mailer_raises_mailer_does_not_exist() -> None:
    with pytest.raises(MailerDoesNotExist, match="No mailers are configured"):
        send_mail("S", "B", None, ["a@example.com"])


def test_send_mail_invalid_mailer_is_raised_when_sending() -> None:
    mailpost.configure(MAILERS={"default": {"BACKEND": "nope.Backend"}})
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['default'\]"):
        send_mail("S", "B", None, ["a@example.com"])


def test_send_mail_with_no_recipients_returns_0_and_sends_nothing() -> None:
    use_locmem()
    assert send_mail("S", "B", None, []) == 0
    assert outbox() == []


def test_send_mail_newline_in_subject_raises_value_error_and_sends_nothing() -> None:
    use_locmem()
    with pytest.raises(ValueError):
        send_mail("Hi\nBcc: victim@example.com", "B", None, ["a@example.com"])
    assert outbox() == []


def test_send_mail_newline_in_recipient_raises_value_error() -> None:
    use_locmem()
    with pytest.raises(ValueError):
        send_mail("Hi", "B", None, ["a@example.com\nBcc: victim@example.com"])
    assert outbox() == []


def test_send_mail_delivery_failure_raises_smtp_exception() -> None:
    use_broken()
    with pytest.raises(smtplib.SMTPException) as info:
        send_mail("S", "B", None, ["a@example.com"])
    assert isinstance(info.value, DeliveryError)
    assert "stream is gone" in str(info.value)


def test_send_mail_connection_failure_raises_smtp_exception_with_a_result() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mailpost.configure(MAILERS={"default": f"smtp://127.0.0.1:{port}?timeout=5"})
    with pytest.raises(smtplib.SMTPException) as info:
        send_mail("S", "B", None, ["a@example.com"])
    assert isinstance(info.value, DeliveryError)
    [result] = info.value.results
    assert not result.sent
    assert result.mailer == "default"


def test_send_mail_opens_and_closes_the_mailer_once() -> None:
    use_recording()
    send_mail("S", "B", None, ["a@example.com"])
    [backend] = RecordingBackend.instances
    assert (backend.opened, backend.closed) == (1, 1)


# -- send_mail: deprecated arguments ------------------------------------------------------------


def test_send_mail_fail_silently_is_deprecated_and_returns_0_on_failure() -> None:
    use_broken()
    with pytest.warns(MailpostDeprecationWarning, match="fail_silently"):
        assert send_mail("S", "B", None, ["a@example.com"], fail_silently=True) == 0


def test_send_mail_fail_silently_false_is_deprecated_too() -> None:
    use_locmem()
    with pytest.warns(MailpostDeprecationWarning, match="fail_silently"):
        assert send_mail("S", "B", None, ["a@example.com"], fail_silently=False) == 1


def test_send_mail_positional_fail_silently_warns_about_both_deprecations() -> None:
    use_broken()
    with pytest.warns(MailpostDeprecationWarning) as record:
        assert send_mail("S", "B", None, ["a@example.com"], True) == 0
    messages = [str(w.message) for w in record]
    assert any("positionally" in m for m in messages)
    assert any("argument(s) are deprecated" in m for m in messages)


def test_send_mail_positional_html_message_still_works_with_a_warning() -> None:
    use_locmem()
    with pytest.warns(MailpostDeprecationWarning, match="positionally"):
        send_mail("S", "B", None, ["a@example.com"], None, None, None, None, "<b>x</b>")
    assert outbox()[0].alternatives == [("<b>x</b>", "text/html")]


def test_send_mail_too_many_positional_arguments_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="at most 9 positional"):
        send_mail("S", "B", None, ["a@example.com"], *([None] * 6))


def test_send_mail_argument_given_positionally_and_by_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="multiple values for argument 'fail_silently'"):
        send_mail("S", "B", None, ["a@example.com"], True, fail_silently=True)


def test_send_mail_auth_arguments_are_deprecated_and_reach_the_backend() -> None:
    use_recording()
    with pytest.warns(MailpostDeprecationWarning, match="auth_user, auth_password"):
        send_mail("S", "B", None, ["a@example.com"], auth_user="u", auth_password="pw")
    [backend] = RecordingBackend.instances
    assert (backend.username, backend.password) == ("u", "pw")


def test_send_mail_auth_arguments_are_dropped_for_backends_without_credentials() -> None:
    use_locmem()
    with pytest.warns(MailpostDeprecationWarning):
        assert send_mail("S", "B", None, ["a@example.com"], auth_user="u") == 1


def test_send_mail_connection_is_deprecated_and_used_without_closing_it() -> None:
    use_locmem()
    connection = RecordingBackend()
    connection.open()
    with pytest.warns(MailpostDeprecationWarning, match="connection"):
        assert send_mail("S", "B", None, ["a@example.com"], connection=connection) == 1
    assert len(connection.sent) == 1
    assert connection.is_open
    assert outbox() == []


@pytest.mark.parametrize(
    "legacy",
    [{"fail_silently": True}, {"auth_user": "u"}, {"auth_password": "p"}, {"connection": "c"}],
)
def test_send_mail_using_with_a_legacy_argument_is_a_type_error(legacy: dict[str, Any]) -> None:
    use_locmem()
    if legacy.get("connection"):
        legacy = {"connection": RecordingBackend()}
    with pytest.raises(TypeError, match=r"(is|are) not compatible with 'using'"):
        send_mail("S", "B", None, ["a@example.com"], using="default", **legacy)
    assert outbox() == []


@pytest.mark.parametrize("legacy", [{"fail_silently": True}, {"auth_user": "u"}])
def test_send_mail_connection_with_fail_silently_or_auth_is_a_type_error(
    legacy: dict[str, Any],
) -> None:
    with pytest.raises(TypeError, match="cannot be used with a connection"):
        send_mail("S", "B", None, ["a@example.com"], connection=RecordingBackend(), **legacy)


# -- send_mass_mail ---------------------------------------------------------------------------


def test_send_mass_mail_sends_one_message_per_tuple_over_one_connection() -> None:
    use_recording()
    datatuple = (
        ("S1", "B1", "from@example.com", ["a@example.com", "b@example.com"]),
        ("S2", "B2", None, ["c@example.com"]),
    )
    assert send_mass_mail(datatuple) == 2
    [backend] = RecordingBackend.instances
    assert backend.opened == 1
    [batch] = backend.sent
    assert [(m.subject, m.to) for m in batch] == [
        ("S1", ["a@example.com", "b@example.com"]),
        ("S2", ["c@example.com"]),
    ]


def test_send_mass_mail_messages_carry_the_callers_connection_like_django() -> None:
    use_locmem()
    connection = RecordingBackend()
    with pytest.warns(MailpostDeprecationWarning, match="connection"):
        sent = send_mass_mail([("A", "1", None, ["a@example.com"])] * 2, connection=connection)
    assert sent == 2
    assert [m.connection for m in connection.sent[0]] == [connection, connection]
    assert type(connection.sent[0][0]) is mailpost.EmailMessage  # plain, as Django sends


def test_send_mass_mail_using_routes_to_that_mailer() -> None:
    use_locmem("bulk")
    send_mass_mail([("S", "B", None, ["a@example.com"])], using="bulk")
    assert outbox()[0].sent_using == "bulk"


def test_send_mass_mail_skips_and_does_not_count_messages_without_recipients() -> None:
    use_locmem()
    assert send_mass_mail([("S1", "B", None, []), ("S2", "B", None, ["a@example.com"])]) == 1
    assert [m.subject for m in outbox()] == ["S2"]


def test_send_mass_mail_with_nothing_to_send_opens_nothing() -> None:
    use_recording()
    assert send_mass_mail([]) == 0
    assert RecordingBackend.instances[0].opened == 0


def test_send_mass_mail_rejects_malformed_items_naming_the_index() -> None:
    use_locmem()
    with pytest.raises(TypeError, match=r"datatuple\[1\]"):
        send_mass_mail([("S", "B", None, ["a@example.com"]), ("S", "B", ["x@example.com"])])
    assert outbox() == []


def test_send_mass_mail_positional_fail_silently_is_deprecated() -> None:
    use_broken()
    with pytest.warns(MailpostDeprecationWarning) as record:
        assert send_mass_mail([("S", "B", None, ["a@example.com"])], True) == 0
    assert any("positionally" in str(w.message) for w in record)


def test_send_mass_mail_using_with_fail_silently_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="'fail_silently' is not compatible with 'using'"):
        send_mass_mail([], fail_silently=True, using="default")


def test_send_mass_mail_connection_with_auth_is_a_type_error() -> None:
    with pytest.raises(
        TypeError, match="auth_user and auth_password cannot be used with a connection"
    ):
        send_mass_mail([], connection=RecordingBackend(), auth_password="p")


def test_send_mass_mail_failures_raise_after_all_messages_were_tried() -> None:
    use_broken()
    with pytest.raises(DeliveryError) as info:
        send_mass_mail([("S1", "B", None, ["a@example.com"]), ("S2", "B", None, ["b@example.com"])])
    assert len(info.value.results) == 2
    assert not any(r.sent for r in info.value.results)


# -- mail_admins / mail_managers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "setting"), [(mail_admins, "ADMINS"), (mail_managers, "MANAGERS")]
)
def test_server_mail_goes_to_the_setting_from_server_email_with_prefix(
    func: Any, setting: str
) -> None:
    mailpost.configure(
        MAILERS={"default": "locmem://"},
        SERVER_EMAIL="server@example.com",
        EMAIL_SUBJECT_PREFIX="[app] ",
        **{setting: ["ops@example.com", "Jo <jo@example.com>"]},
    )
    assert func("Disk full", "Details") == 1
    [msg] = outbox()
    assert msg.subject == "[app] Disk full"
    assert msg.from_email == "server@example.com"
    assert msg.to == ["ops@example.com", "Jo <jo@example.com>"]
    assert msg.body == "Details"


def test_mail_admins_subject_prefix_defaults_to_empty() -> None:
    mailpost.configure(MAILERS={"default": "locmem://"}, ADMINS=["ops@example.com"])
    mail_admins("Disk full", "Details")
    assert outbox()[0].subject == "Disk full"


def test_mail_admins_html_message_becomes_an_alternative() -> None:
    mailpost.configure(MAILERS={"default": "locmem://"}, ADMINS=["ops@example.com"])
    mail_admins("S", "text", html_message="<p>html</p>")
    assert outbox()[0].alternatives == [("<p>html</p>", "text/html")]


@pytest.mark.parametrize("func", [mail_admins, mail_managers])
def test_server_mail_with_empty_setting_returns_0_without_needing_a_mailer(func: Any) -> None:
    assert func("S", "B") == 0
    assert outbox() == []


@pytest.mark.parametrize("empty", [[], (), None, ""])
def test_server_mail_with_a_falsy_setting_sends_nothing(empty: Any) -> None:
    mailpost.configure(MAILERS={"default": "locmem://"}, ADMINS=empty, MANAGERS=empty)
    assert mail_admins("S", "B") == 0
    assert mail_managers("S", "B") == 0
    assert outbox() == []


def test_server_mail_setting_as_a_tuple_of_strings_is_sent_as_given() -> None:
    mailpost.configure(
        MAILERS={"default": "locmem://"}, MANAGERS=("a@example.com", "Bo <b@example.com>")
    )
    assert mail_managers("S", "B") == 1
    assert outbox()[0].to == ["a@example.com", "Bo <b@example.com>"]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("ADMINS", "ops@example.com"),
        ("ADMINS", [("Ops", "ops@example.com", "extra")]),
        ("ADMINS", [("Ops", "ops@example.com"), "b@example.com"]),
        ("ADMINS", [("ops@example.com",)]),
        ("ADMINS", {"ops@example.com": "Ops"}),
        ("MANAGERS", {"ops@example.com"}),
        ("MANAGERS", [42]),
        ("MANAGERS", 42),
        ("MANAGERS", [b"ops@example.com"]),
    ],
)
def test_server_mail_setting_must_be_a_list_of_strings(setting: str, value: Any) -> None:
    mailpost.configure(MAILERS={"default": "locmem://"}, **{setting: value})
    func = mail_admins if setting == "ADMINS" else mail_managers
    message = f"The {setting} setting must be a list of email address strings. Got {value!r}"
    with pytest.raises(ImproperlyConfigured) as info:
        func("S", "B")
    assert str(info.value).startswith(message)
    assert outbox() == []


@pytest.mark.parametrize(
    ("func", "setting"), [(mail_admins, "ADMINS"), (mail_managers, "MANAGERS")]
)
def test_server_mail_pairs_send_to_the_addresses_with_djangos_deprecation_text(
    func: Any, setting: str
) -> None:
    pairs = [("Ops Team", "ops@example.com"), ["Bo", "b@example.com"]]
    mailpost.configure(MAILERS={"default": "locmem://"}, **{setting: pairs})
    with pytest.warns(MailpostDeprecationWarning) as record:
        assert func("S", "B") == 1
    [warning] = record
    assert str(warning.message) == (
        f"Using (name, address) pairs in the {setting} setting is deprecated. "
        "Replace with a list of email address strings."
    )
    assert warning.filename == __file__
    [msg] = outbox()
    assert msg.to == ["ops@example.com", "b@example.com"]
    assert msg.message()["To"] == "ops@example.com, b@example.com"


def test_async_server_mail_pairs_warn_and_send_to_the_addresses() -> None:
    mailpost.configure(MAILERS={"default": "locmem://"}, ADMINS=(("Ops", "ops@example.com"),))
    with pytest.warns(MailpostDeprecationWarning, match="pairs in the ADMINS setting"):
        assert asyncio.run(amail_admins("S", "B")) == 1
    assert outbox()[0].to == ["ops@example.com"]


def test_server_mail_pair_with_a_non_string_address_warns_then_is_rejected() -> None:
    mailpost.configure(MAILERS={"default": "locmem://"}, ADMINS=[("Ops", 42)])
    with (
        pytest.warns(MailpostDeprecationWarning, match="pairs in the ADMINS setting"),
        pytest.raises(ImproperlyConfigured, match="The ADMINS setting must be a list"),
    ):
        mail_admins("S", "B")
    assert outbox() == []


_DJANGO_ADMINS_SCRIPT = """
import json, warnings
import django
from django.conf import settings
settings.configure(MAILERS={"default": {"BACKEND": "mailpost.backends.locmem.EmailBackend"}},
                   ADMINS=[("Ops", "ops@example.com")], MANAGERS="ops@example.com")
django.setup()
import mailpost
from mailpost import ImproperlyConfigured
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    sent = mailpost.mail_admins("S", "B")
try:
    mailpost.mail_managers("S", "B")
    rejected = None
except ImproperlyConfigured as exc:
    rejected = str(exc)
print(json.dumps({
    "sent": sent,
    "to": [m.to for m in mailpost.outbox],
    "django": list(django.VERSION[:2]),
    "warnings": [[w.category.__name__, str(w.message),
                  [c.__module__ for c in w.category.__mro__]] for w in caught],
    "rejected": rejected,
}))
"""


@pytest.mark.parametrize(
    ("django_version", "warns"),
    [
        (None, True),
        ((4, 2), False),
        ((5, 2), False),
        ((6, 0), True),
        ((6, 1), True),
        ((7, 0), True),
    ],
)
def test_pairs_are_deprecated_from_django_6_0_and_outside_django(
    django_version: tuple[int, int] | None, warns: bool
) -> None:
    """Django 6.0 deprecated ``(name, address)`` pairs in ADMINS / MANAGERS (6.1 keeps the
    warning); 4.2 and 5.2 document them."""
    from mailpost._admins import pairs_deprecated_on

    assert pairs_deprecated_on(django_version) is warns


@pytest.mark.parametrize(("release", "warns"), [((5, 2, 9), False), ((6, 0, 10), True)])
def test_pairs_rule_reads_the_running_projects_django(
    monkeypatch: pytest.MonkeyPatch, release: tuple[int, ...], warns: bool
) -> None:
    """A configured project's ``django.VERSION`` decides (here a stand-in Django package)."""
    import sys
    import types

    from mailpost import _django
    from mailpost._admins import pairs_are_deprecated

    fake = types.ModuleType("django")
    fake.VERSION = (*release, "final", 0)  # type: ignore[attr-defined]
    conf = types.ModuleType("django.conf")
    conf.settings = types.SimpleNamespace(configured=True)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "django", fake)
    monkeypatch.setitem(sys.modules, "django.conf", conf)
    assert _django.version() == release[:2]
    assert pairs_are_deprecated() is warns
    monkeypatch.delitem(sys.modules, "django.conf")
    assert _django.version() is None
    assert pairs_are_deprecated() is True


def test_inside_django_pairs_warn_as_that_django_does(tmp_path: Any) -> None:
    """Django 6.0 and 6.1 warn about pairs in their own category; 4.2 / 5.2 take them
    silently."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "-c", _DJANGO_ADMINS_SCRIPT],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (got["sent"], got["to"]) == (1, [["ops@example.com"]])
    if got["django"] >= [6, 0]:
        [(name, text, bases)] = got["warnings"]
        assert name == "RemovedInDjango2028Warning"
        assert text == (
            "Using (name, address) pairs in the ADMINS setting is deprecated. "
            "Replace with a list of email address strings."
        )
        assert {"django.utils.deprecation", "mailpost.exceptions"} <= set(bases)
    else:
        assert got["warnings"] == []
    assert got["rejected"].startswith(
        "The MANAGERS setting must be a list of email address strings."
    )


def test_mail_managers_using_routes_to_that_mailer() -> None:
    mailpost.configure(MAILERS={"default": "dummy://", "ops": "locmem://"},
                       MANAGERS=["m@example.com"])  # fmt: skip
    assert mail_managers("S", "B", using="ops") == 1
    assert outbox()[0].sent_using == "ops"


def test_mail_admins_positional_fail_silently_is_deprecated() -> None:
    mailpost.configure(MAILERS={"default": {"BACKEND": "mailpost.backends.console.EmailBackend",
                                            "OPTIONS": {"stream": BrokenStream()}}},
                       ADMINS=["ops@example.com"])  # fmt: skip
    with pytest.warns(MailpostDeprecationWarning) as record:
        assert mail_admins("S", "B", True) == 0
    assert any("positionally" in str(w.message) for w in record)


def test_mail_admins_using_with_connection_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="'connection' is not compatible with 'using'"):
        mail_admins("S", "B", connection=RecordingBackend(), using="default")


def test_mail_managers_connection_with_fail_silently_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="fail_silently cannot be used with a connection"):
        mail_managers("S", "B", connection=RecordingBackend(), fail_silently=True)


# -- EmailMessage.send() ------------------------------------------------------------------------


def test_message_send_uses_the_default_mailer_and_returns_1() -> None:
    use_locmem()
    msg = EmailMessage("S", "B", None, ["a@example.com"])
    assert msg.send() == 1
    assert msg.sent_using == "default"
    assert msg.delivery is not None
    assert msg.delivery.ok


def test_message_send_using_routes_to_that_mailer() -> None:
    use_locmem("other")
    EmailMessage("S", "B", None, ["a@example.com"]).send(using="other")
    assert outbox()[0].sent_using == "other"


def test_message_without_recipients_returns_0_even_without_mailers() -> None:
    assert EmailMessage("S", "B").send() == 0


def test_message_send_connection_and_using_is_a_type_error() -> None:
    with pytest.warns(MailpostDeprecationWarning):
        msg = EmailMessage("S", "B", None, ["a@example.com"], connection=RecordingBackend())
    with pytest.raises(TypeError, match="connection"):
        msg.send(using="default")


def test_message_send_fail_silently_with_using_is_a_type_error() -> None:
    msg = EmailMessage("S", "B", None, ["a@example.com"])
    with pytest.raises(TypeError, match="'fail_silently' is not compatible with 'using'"):
        msg.send(fail_silently=True, using="default")


def test_message_send_fail_silently_with_connection_is_a_type_error() -> None:
    with pytest.warns(MailpostDeprecationWarning):
        msg = EmailMessage("S", "B", None, ["a@example.com"], connection=RecordingBackend())
    with pytest.raises(TypeError, match="fail_silently cannot be used with a connection"):
        msg.send(fail_silently=True)


def test_message_send_through_its_deprecated_connection() -> None:
    connection = RecordingBackend()
    with pytest.warns(MailpostDeprecationWarning):
        msg = EmailMessage("S", "B", None, ["a@example.com"], connection=connection)
    assert msg.send() == 1
    assert connection.sent == [[msg]]


def test_message_send_fail_silently_is_deprecated_and_returns_0_on_failure() -> None:
    use_broken()
    msg = EmailMessage("S", "B", None, ["a@example.com"])
    with pytest.warns(MailpostDeprecationWarning, match="fail_silently"):
        assert msg.send(fail_silently=True) == 0
    assert msg.delivery is not None
    assert not msg.delivery.sent


def test_message_send_failure_raises_delivery_error() -> None:
    use_broken()
    with pytest.raises(DeliveryError):
        EmailMessage("S", "B", None, ["a@example.com"]).send()


# -- async twins ---------------------------------------------------------------------------------


def test_asend_mail_sends_like_send_mail() -> None:
    use_locmem("other")
    sent = asyncio.run(asend_mail("S", "B", None, ["a@example.com"], using="other"))
    assert sent == 1
    assert [(m.subject, m.sent_using) for m in outbox()] == [("S", "other")]


def test_asend_mail_with_no_recipients_returns_0() -> None:
    use_locmem()
    assert asyncio.run(asend_mail("S", "B", None, [])) == 0


def test_asend_mail_rejects_the_same_argument_combinations() -> None:
    with pytest.raises(TypeError, match="is not compatible with 'using'"):
        asyncio.run(asend_mail("S", "B", None, ["a@example.com"], fail_silently=True, using="x"))


def test_asend_mail_positional_fail_silently_is_deprecated() -> None:
    use_broken()
    with pytest.warns(MailpostDeprecationWarning) as record:
        assert asyncio.run(asend_mail("S", "B", None, ["a@example.com"], True)) == 0
    messages = [str(w.message) for w in record]
    assert any("to asend_mail() positionally" in m for m in messages)
    assert any(m.startswith("asend_mail(): the fail_silently") for m in messages)


def test_asend_mail_delivery_failure_raises_delivery_error() -> None:
    use_broken()
    with pytest.raises(DeliveryError):
        asyncio.run(asend_mail("S", "B", None, ["a@example.com"]))


def test_asend_mass_mail_opens_the_backend_once() -> None:
    use_recording()
    datatuple = [("S1", "B", None, ["a@example.com"]), ("S2", "B", None, ["b@example.com"])]
    assert asyncio.run(asend_mass_mail(datatuple)) == 2
    [backend] = RecordingBackend.instances
    assert (backend.opened, backend.closed) == (1, 1)
    assert len(backend.sent) == 1


@pytest.mark.parametrize(("func", "setting"), [(amail_admins, "ADMINS"),
                                               (amail_managers, "MANAGERS")])  # fmt: skip
def test_async_server_mail_matches_the_sync_one(func: Any, setting: str) -> None:
    mailpost.configure(MAILERS={"default": "locmem://"}, EMAIL_SUBJECT_PREFIX="[x] ",
                       **{setting: ["ops@example.com"]})  # fmt: skip
    assert asyncio.run(func("S", "B", html_message="<p>h</p>")) == 1
    [msg] = outbox()
    assert (msg.subject, msg.to) == ("[x] S", ["ops@example.com"])


def test_amail_admins_with_empty_admins_returns_0() -> None:
    assert asyncio.run(amail_admins("S", "B")) == 0


def test_message_asend_sends_and_records() -> None:
    use_locmem()
    msg = EmailMessage("S", "B", None, ["a@example.com"])
    assert asyncio.run(msg.asend()) == 1
    assert msg.sent_using == "default"


def test_message_asend_rejects_fail_silently_with_using() -> None:
    msg = EmailMessage("S", "B", None, ["a@example.com"])
    with pytest.raises(TypeError):
        asyncio.run(msg.asend(fail_silently=True, using="default"))


def test_async_twins_are_coroutine_functions() -> None:
    import inspect

    for func in (asend_mail, asend_mass_mail, amail_admins, amail_managers):
        assert inspect.iscoroutinefunction(func), func.__name__


# -- get_connection (deprecated) -------------------------------------------------------------------


def test_get_connection_is_deprecated_and_returns_the_default_mailer() -> None:
    use_locmem()
    with pytest.warns(MailpostDeprecationWarning, match=r"get_connection\(\) is deprecated"):
        backend = get_connection()
    assert isinstance(backend, LocmemBackend)
    assert backend.alias == "default"


def test_get_connection_keywords_are_added_to_the_default_options() -> None:
    stream = io.StringIO()
    mailpost.configure(MAILERS={"default": "console://"})
    with pytest.warns(MailpostDeprecationWarning):
        backend = get_connection(stream=stream, fail_silently=True)
    assert isinstance(backend, ConsoleBackend)
    assert backend.stream is stream
    assert backend.fail_silently is True


def test_get_connection_ignores_keywords_the_backend_does_not_take_like_django() -> None:
    use_locmem()
    with pytest.warns(MailpostDeprecationWarning, match=r"get_connection\(\) is deprecated"):
        backend = get_connection(colour="red")
    assert isinstance(backend, LocmemBackend)
    assert not hasattr(backend, "colour")


def test_get_connection_backend_path_with_mailers_defined_is_a_runtime_error() -> None:
    use_locmem()
    with (
        pytest.warns(MailpostDeprecationWarning),
        pytest.raises(RuntimeError, match=r"not supported with MAILERS"),
    ):
        get_connection("mailpost.backends.console.EmailBackend")


def test_get_connection_backend_path_without_mailers_builds_that_backend() -> None:
    stream = io.StringIO()
    with pytest.warns(MailpostDeprecationWarning):
        backend = get_connection("django.core.mail.backends.console.EmailBackend", stream=stream)
    assert isinstance(backend, ConsoleBackend)
    assert backend.stream is stream
    assert backend.alias is None


def test_get_connection_uses_legacy_email_backend_without_mailers() -> None:
    mailpost.configure(EMAIL_BACKEND="mailpost.backends.locmem.EmailBackend")
    with pytest.warns(MailpostDeprecationWarning):
        backend = get_connection(fail_silently=True)
    assert isinstance(backend, LocmemBackend)
    with pytest.warns(MailpostDeprecationWarning, match="fail_silently is deprecated"):
        assert backend.fail_silently is True  # locmem takes no such option (Django 6.1)


def test_get_connection_without_any_configuration_raises_mailer_does_not_exist() -> None:
    with pytest.warns(MailpostDeprecationWarning), pytest.raises(MailerDoesNotExist):
        get_connection()


def test_get_connection_positional_fail_silently_is_deprecated() -> None:
    use_locmem()
    with pytest.warns(MailpostDeprecationWarning) as record:
        backend = get_connection(None, True)
    assert backend._fail_silently is True
    assert any("positionally" in str(w.message) for w in record)


def test_deprecation_warnings_point_at_the_caller() -> None:
    use_locmem()
    msg = EmailMessage("S", "B", None, ["a@example.com"])
    with pytest.warns(MailpostDeprecationWarning) as sent:
        send_mail("S", "B", None, ["a@example.com"], fail_silently=False)
    with pytest.warns(MailpostDeprecationWarning) as connected:
        get_connection()
    with pytest.warns(MailpostDeprecationWarning) as message_sent:
        msg.send(fail_silently=True)
    with pytest.warns(MailpostDeprecationWarning) as positional:
        send_mail("S", "B", None, ["a@example.com"], False)
    for record in (sent, connected, message_sent, positional):
        assert {w.filename for w in record} == {__file__}
