"""EmailMessage / EmailMultiAlternatives construction: parameters, attributes, deprecations."""

from __future__ import annotations

import email.message
import email.policy
import socket
from email.mime.text import MIMEText
from pathlib import Path

import pytest

import mailpost
import mailpost.utils
from mailpost import (
    DEFAULT_ATTACHMENT_MIME_TYPE,
    EmailAlternative,
    EmailAttachment,
    EmailMessage,
    EmailMultiAlternatives,
    MailpostDeprecationWarning,
)
from strategies import FQDN, parse


@pytest.fixture(autouse=True)
def _fixed_fqdn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda name="": FQDN)
    monkeypatch.setattr(mailpost.utils.DNS_NAME, "_fqdn", None)


# ---------------------------------------------------------------- public names


def test_public_names_are_reexported_from_mailpost() -> None:
    import mailpost.message as module

    for name in (
        "EmailMessage",
        "EmailMultiAlternatives",
        "EmailAttachment",
        "EmailAlternative",
        "make_msgid",
        "DEFAULT_ATTACHMENT_MIME_TYPE",
    ):
        assert getattr(mailpost, name) is getattr(module, name)


def test_default_attachment_mime_type_is_octet_stream() -> None:
    assert DEFAULT_ATTACHMENT_MIME_TYPE == "application/octet-stream"


def test_email_multi_alternatives_is_an_email_message() -> None:
    assert issubclass(EmailMultiAlternatives, EmailMessage)


def test_email_attachment_is_a_named_tuple_of_filename_content_mimetype() -> None:
    att = EmailAttachment("a.txt", "hi", "text/plain")
    assert att == ("a.txt", "hi", "text/plain")
    assert (att.filename, att.content, att.mimetype) == ("a.txt", "hi", "text/plain")
    assert EmailAttachment._fields == ("filename", "content", "mimetype")


def test_email_alternative_is_a_named_tuple_of_content_mimetype() -> None:
    alt = EmailAlternative("<p>hi</p>", "text/html")
    assert alt == ("<p>hi</p>", "text/html")
    assert (alt.content, alt.mimetype) == ("<p>hi</p>", "text/html")
    assert EmailAlternative._fields == ("content", "mimetype")


# ---------------------------------------------------------------- defaults


def test_all_parameters_are_optional_with_empty_defaults() -> None:
    msg = EmailMessage()
    assert msg.subject == ""
    assert msg.body == ""
    assert msg.to == []
    assert msg.cc == []
    assert msg.bcc == []
    assert msg.reply_to == []
    assert msg.attachments == []
    assert msg.extra_headers == {}
    assert msg.connection is None


def test_from_email_defaults_to_default_from_email_setting() -> None:
    assert EmailMessage().from_email == "webmaster@localhost"


def test_from_email_default_follows_configure() -> None:
    mailpost.configure(DEFAULT_FROM_EMAIL="Robot <robot@example.com>")
    msg = EmailMessage("s", "b", None, ["to@example.com"])
    assert msg.from_email == "Robot <robot@example.com>"
    assert parse(msg)["From"].addresses[0].addr_spec == "robot@example.com"


def test_explicit_from_email_wins_over_setting() -> None:
    mailpost.configure(DEFAULT_FROM_EMAIL="robot@example.com")
    assert EmailMessage(from_email="me@example.com").from_email == "me@example.com"


def test_class_attribute_defaults_for_subtypes() -> None:
    msg = EmailMultiAlternatives()
    assert msg.content_subtype == "plain"
    assert msg.mixed_subtype == "mixed"
    assert msg.alternative_subtype == "alternative"
    assert EmailMessage.content_subtype == "plain"
    assert EmailMessage.mixed_subtype == "mixed"


def test_encoding_defaults_to_none() -> None:
    assert EmailMessage().encoding is None


def test_alternatives_default_to_empty_list() -> None:
    assert EmailMultiAlternatives().alternatives == []


# ---------------------------------------------------------------- positional / keyword


def test_first_four_parameters_are_positional() -> None:
    msg = EmailMessage("Subject", "Body", "from@example.com", ["to@example.com"])
    assert msg.subject == "Subject"
    assert msg.body == "Body"
    assert msg.from_email == "from@example.com"
    assert msg.to == ["to@example.com"]


def test_keyword_parameters_set_attributes() -> None:
    msg = EmailMessage(
        subject="S",
        body="B",
        from_email="f@example.com",
        to=["t@example.com"],
        cc=["c@example.com"],
        bcc=["b@example.com"],
        reply_to=["r@example.com"],
        headers={"X-Tag": "1"},
        attachments=[("a.txt", "hello", "text/plain")],
    )
    assert msg.cc == ["c@example.com"]
    assert msg.bcc == ["b@example.com"]
    assert msg.reply_to == ["r@example.com"]
    assert msg.extra_headers == {"X-Tag": "1"}
    assert msg.attachments == [EmailAttachment("a.txt", "hello", "text/plain")]


def test_fifth_positional_parameter_is_bcc_and_deprecated() -> None:
    with pytest.warns(MailpostDeprecationWarning):
        msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"], ["b@example.com"])
    assert msg.bcc == ["b@example.com"]


def test_deprecation_warning_is_a_deprecation_warning() -> None:
    assert issubclass(MailpostDeprecationWarning, DeprecationWarning)
    with pytest.deprecated_call():
        EmailMessage("s", "b", "f@example.com", ["t@example.com"], ["b@example.com"])


def test_all_parameters_positional_still_work_with_a_warning() -> None:
    with pytest.warns(MailpostDeprecationWarning):
        msg = EmailMessage(
            "s",
            "b",
            "f@example.com",
            ["t@example.com"],
            ["bcc@example.com"],
            None,
            [("a.txt", "x", "text/plain")],
            {"X-Tag": "1"},
            ["cc@example.com"],
            ["reply@example.com"],
        )
    assert msg.bcc == ["bcc@example.com"]
    assert msg.attachments == [EmailAttachment("a.txt", "x", "text/plain")]
    assert msg.extra_headers == {"X-Tag": "1"}
    assert msg.cc == ["cc@example.com"]
    assert msg.reply_to == ["reply@example.com"]


def test_multi_alternatives_fifth_positional_is_bcc_and_deprecated() -> None:
    with pytest.warns(MailpostDeprecationWarning):
        msg = EmailMultiAlternatives("s", "b", "f@example.com", ["t@example.com"], ["b@ex.com"])
    assert msg.bcc == ["b@ex.com"]


def test_four_positionals_emit_no_warning() -> None:
    EmailMessage("s", "b", "f@example.com", ["t@example.com"], cc=["c@example.com"])
    EmailMultiAlternatives("s", "b", "f@example.com", ["t@example.com"], alternatives=[])


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        EmailMessage(too=["x@example.com"])  # type: ignore[call-arg]


def test_connection_argument_is_deprecated_but_kept() -> None:
    backend = object()
    with pytest.warns(MailpostDeprecationWarning):
        msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"], connection=backend)
    assert msg.connection is backend


# ---------------------------------------------------------------- address list types


@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to"])
def test_address_list_given_as_string_is_a_type_error_naming_it(field: str) -> None:
    with pytest.raises(TypeError, match=field):
        EmailMessage(**{field: "someone@example.com"})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to"])
def test_address_list_accepts_tuple_and_stores_a_list(field: str) -> None:
    msg = EmailMessage(**{field: ("a@example.com", "b@example.com")})  # type: ignore[arg-type]
    value = getattr(msg, field)
    assert isinstance(value, list)
    assert value == ["a@example.com", "b@example.com"]


def test_address_list_is_copied_from_the_argument() -> None:
    to = ["a@example.com"]
    msg = EmailMessage(to=to)
    to.append("b@example.com")
    assert msg.to == ["a@example.com"]


# ---------------------------------------------------------------- recipients()


def test_recipients_are_to_then_cc_then_bcc() -> None:
    msg = EmailMessage(
        to=["t@example.com"], cc=["c@example.com"], bcc=["b@example.com"], reply_to=["r@x.com"]
    )
    assert msg.recipients() == ["t@example.com", "c@example.com", "b@example.com"]


def test_recipients_drop_empty_entries() -> None:
    msg = EmailMessage(to=["", "t@example.com"], cc=[""], bcc=["b@example.com", ""])
    assert msg.recipients() == ["t@example.com", "b@example.com"]


def test_recipients_reflect_attributes_changed_after_construction() -> None:
    msg = EmailMessage(to=["t@example.com"])
    msg.to = ["new@example.com"]
    msg.bcc = ["hidden@example.com"]
    assert msg.recipients() == ["new@example.com", "hidden@example.com"]


def test_recipients_keep_addresses_as_given() -> None:
    msg = EmailMessage(to=["Name <n@example.com>"], cc=[("Other", "o@example.com")])
    assert msg.recipients()[0] == "Name <n@example.com>"


def test_recipients_of_empty_message_is_empty_list() -> None:
    assert EmailMessage().recipients() == []


# ---------------------------------------------------------------- attachments attribute


def test_attachment_tuples_become_email_attachments() -> None:
    msg = EmailMessage(attachments=[("a.bin", b"\x00\x01", "application/x-thing")])
    att = msg.attachments[0]
    assert isinstance(att, EmailAttachment)
    assert att == EmailAttachment("a.bin", b"\x00\x01", "application/x-thing")


def test_email_attachment_instances_are_accepted_in_constructor() -> None:
    att = EmailAttachment("a.txt", "hi", "text/plain")
    msg = EmailMessage(attachments=[att])
    assert msg.attachments == [att]


def test_mimepart_in_constructor_attachments_is_kept_as_is() -> None:
    part = email.message.MIMEPart()
    part.set_content(b"\x89PNG", maintype="image", subtype="png", filename="p.png")
    msg = EmailMessage(attachments=[part])
    assert msg.attachments == [part]


def test_attach_appends_email_attachment() -> None:
    msg = EmailMessage()
    msg.attach("design.png", b"\x89PNG\r\n", "image/png")
    assert msg.attachments == [EmailAttachment("design.png", b"\x89PNG\r\n", "image/png")]


def test_attach_guesses_mimetype_from_filename() -> None:
    msg = EmailMessage()
    msg.attach("report.pdf", b"%PDF-1.4")
    assert msg.attachments[0].mimetype == "application/pdf"


def test_attach_unknown_extension_uses_default_mimetype() -> None:
    msg = EmailMessage()
    msg.attach("data.unknownext", b"\x00")
    assert msg.attachments[0].mimetype == DEFAULT_ATTACHMENT_MIME_TYPE


def test_attach_text_bytes_are_decoded_as_utf8() -> None:
    msg = EmailMessage()
    msg.attach("notes.txt", "café".encode())
    assert msg.attachments[0] == EmailAttachment("notes.txt", "café", "text/plain")


def test_attach_text_bytes_that_are_not_utf8_become_octet_stream_unchanged() -> None:
    msg = EmailMessage()
    msg.attach("notes.txt", b"\xff\xfe\x00bad", "text/plain")
    assert msg.attachments[0] == EmailAttachment(
        "notes.txt", b"\xff\xfe\x00bad", DEFAULT_ATTACHMENT_MIME_TYPE
    )


def test_attach_mimepart_appends_the_part_itself() -> None:
    part = email.message.MIMEPart()
    part.set_content("inline", disposition="inline")
    msg = EmailMessage()
    msg.attach(part)
    assert msg.attachments[-1] is part


def test_attach_mimepart_with_content_is_a_value_error() -> None:
    part = email.message.MIMEPart()
    part.set_content("x")
    with pytest.raises(ValueError):
        EmailMessage().attach(part, "content")  # type: ignore[arg-type]


def test_attach_filename_without_content_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        EmailMessage().attach("a.txt")


def test_attach_legacy_mimebase_is_deprecated_but_attached() -> None:
    msg = EmailMessage("s", "body", "f@example.com", ["t@example.com"])
    with pytest.warns(MailpostDeprecationWarning):
        msg.attach(MIMEText("legacy text"))
    parts = [p for p in parse(msg).walk() if not p.is_multipart()]
    assert any("legacy text" in p.get_content() for p in parts)


def test_attach_file_reads_content_and_uses_basename(tmp_path: Path) -> None:
    path = tmp_path / "weather_map.png"
    path.write_bytes(b"\x89PNG\x00\xff")
    msg = EmailMessage()
    msg.attach_file(path)
    assert msg.attachments == [EmailAttachment("weather_map.png", b"\x89PNG\x00\xff", "image/png")]


def test_attach_file_accepts_str_path_and_explicit_mimetype(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    msg = EmailMessage()
    msg.attach_file(str(path), mimetype="application/x-custom")
    assert msg.attachments == [EmailAttachment("data.bin", b"abc", "application/x-custom")]


def test_attach_file_text_is_decoded_like_attach(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_bytes("naïve\n".encode())
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe")
    msg = EmailMessage()
    msg.attach_file(good)
    msg.attach_file(bad)
    assert msg.attachments[0] == EmailAttachment("good.txt", "naïve\n", "text/plain")
    assert msg.attachments[1] == EmailAttachment(
        "bad.txt", b"\xff\xfe", DEFAULT_ATTACHMENT_MIME_TYPE
    )


def test_attach_file_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        EmailMessage().attach_file(tmp_path / "nope.txt")


# ---------------------------------------------------------------- alternatives


def test_alternatives_from_constructor_become_email_alternatives() -> None:
    msg = EmailMultiAlternatives(alternatives=[("<p>hi</p>", "text/html")])
    assert msg.alternatives == [EmailAlternative("<p>hi</p>", "text/html")]
    assert isinstance(msg.alternatives[0], EmailAlternative)


def test_attach_alternative_appends_email_alternative() -> None:
    msg = EmailMultiAlternatives("s", "text", "f@example.com", ["t@example.com"])
    msg.attach_alternative("<p>html</p>", "text/html")
    assert len(msg.alternatives) == 1
    assert msg.alternatives[0].content == "<p>html</p>"
    assert msg.alternatives[0].mimetype == "text/html"


@pytest.mark.parametrize(("content", "mimetype"), [(None, "text/html"), ("<p>x</p>", None)])
def test_attach_alternative_requires_content_and_mimetype(
    content: str | None, mimetype: str | None
) -> None:
    with pytest.raises(ValueError):
        EmailMultiAlternatives().attach_alternative(content, mimetype)  # type: ignore[arg-type]


# ---------------------------------------------------------------- body_contains


def test_body_contains_text_in_body_and_all_text_alternatives() -> None:
    msg = EmailMultiAlternatives("Hello", "I am content.", "f@example.com", ["t@example.com"])
    msg.attach_alternative("<p>I am content.</p>", "text/html")
    assert msg.body_contains("I am content") is True
    assert msg.body_contains("<p>I am content.</p>") is False


def test_body_contains_is_false_when_only_an_alternative_has_it() -> None:
    msg = EmailMultiAlternatives(body="plain")
    msg.attach_alternative("<b>bold</b>", "text/html")
    assert msg.body_contains("bold") is False


def test_body_contains_ignores_non_text_alternatives() -> None:
    msg = EmailMultiAlternatives(body="hello world")
    msg.attach_alternative(b"%PDF binary", "application/pdf")
    assert msg.body_contains("hello") is True


def test_body_contains_without_alternatives_checks_body() -> None:
    msg = EmailMultiAlternatives(body="only the body")
    assert msg.body_contains("the body") is True
    assert msg.body_contains("missing") is False


# ---------------------------------------------------------------- message()


def test_message_returns_stdlib_email_message() -> None:
    msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"])
    assert isinstance(msg.message(), email.message.EmailMessage)


def test_message_policy_is_keyword_only() -> None:
    msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"])
    with pytest.raises(TypeError):
        msg.message(email.policy.SMTP)  # type: ignore[misc]


def test_message_uses_given_policy() -> None:
    msg = EmailMessage("s", "line1\nline2", "f@example.com", ["t@example.com"])
    data = msg.message(policy=email.policy.SMTP).as_bytes()
    assert b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_message_default_policy_gives_lf_line_endings() -> None:
    msg = EmailMessage("s", "line1\nline2", "f@example.com", ["t@example.com"])
    m = msg.message()
    assert m.policy.linesep == "\n"
    assert b"\r" not in m.as_bytes()


def test_message_matches_serialized_bytes() -> None:
    from mailpost.message import serialize

    msg = EmailMessage("Héllo", "Bödy", "f@example.com", ["t@example.com"])
    m = msg.message(policy=email.policy.SMTP)
    stdlib = email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
    # The view is the form sent to a server offering 8BITMIME: text 8bit, as Django's.
    assert m["Content-Transfer-Encoding"] == "8bit"
    ours = email.message_from_bytes(serialize(msg, eight_bit=True), policy=email.policy.default)
    assert stdlib["Subject"] == ours["Subject"] == "Héllo"
    assert stdlib.get_content() == ours.get_content()
    assert stdlib.get_content_type() == ours.get_content_type()


def test_subclass_overriding_message_is_respected_by_serialize() -> None:
    from mailpost.message import serialize

    class Tagged(EmailMessage):
        def message(
            self, *, policy: email.policy.Policy = email.policy.default
        ) -> email.message.EmailMessage:
            m = super().message(policy=policy)
            m["X-Tagged"] = "yes"
            return m

    data = serialize(Tagged("s", "b", "f@example.com", ["t@example.com"]))
    assert b"X-Tagged: yes\r\n" in data


def test_subclass_overriding_message_stays_7bit_unless_8bitmime() -> None:
    from mailpost.message import serialize

    class Tagged(EmailMessage):
        def message(
            self, *, policy: email.policy.Policy = email.policy.default
        ) -> email.message.EmailMessage:
            m = super().message(policy=policy)
            m["X-Tagged"] = "yes"
            return m

    msg = Tagged("s", "Grüße", "f@example.com", ["t@example.com"])
    seven = email.message_from_bytes(serialize(msg), policy=email.policy.default)
    eight = email.message_from_bytes(serialize(msg, eight_bit=True), policy=email.policy.default)
    assert serialize(msg).isascii()
    assert seven.get_content() == "Grüße\n"
    assert eight.get_content() == "Grüße\r\n"  # the stdlib keeps an 8bit body's CRLF
    assert eight["Content-Transfer-Encoding"] == "8bit"


def test_legacy_mimebase_in_constructor_attachments_is_deprecated() -> None:
    with pytest.warns(MailpostDeprecationWarning):
        msg = EmailMessage(
            "s",
            "b",
            "f@example.com",
            ["t@example.com"],
            attachments=[MIMEText("legacy in constructor")],
        )
    parts = [p for p in parse(msg).walk() if not p.is_multipart()]
    assert any("legacy in constructor" in p.get_content() for p in parts)
