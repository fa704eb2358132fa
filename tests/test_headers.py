"""Header safety: injection, address grammar and limits, IDNA, RFC 2047, folding, line limits."""

from __future__ import annotations

import base64
import binascii
import email.message
import itertools
import quopri
import re
import socket
import time
from collections.abc import Callable
from email.message import MIMEPart
from typing import Any

import pytest

import mailpost
import mailpost.utils
from mailpost import BadHeaderError, EmailMessage, EmailMultiAlternatives, InvalidAddress
from mailpost.message import envelope, serialize
from strategies import (
    ENCODED_WORD,
    FQDN,
    attachments_of,
    display_name_arrived,
    long_lines,
    parse,
    parse_bytes,
    raw_header,
    top_header_names,
)


@pytest.fixture(autouse=True)
def _fixed_fqdn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda name="": FQDN)
    monkeypatch.setattr(mailpost.utils.DNS_NAME, "_fqdn", None)


def simple(**kwargs: object) -> EmailMessage:
    defaults: dict[str, object] = {
        "subject": "Subject",
        "body": "Body.\n",
        "from_email": "from@example.com",
        "to": ["to@example.com"],
    }
    defaults.update(kwargs)
    return EmailMessage(**defaults)  # type: ignore[arg-type]


def render(build: Callable[[], EmailMessage]) -> tuple[bytes, tuple[str, list[str]]]:
    """Build and fully render a message: wire bytes and envelope (validation may happen
    at any of these steps)."""
    msg = build()
    return serialize(msg), envelope(msg)


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def assert_names_field(exc: BadHeaderError, field: str) -> None:
    assert exc.field is not None
    assert _norm(exc.field) == _norm(field), exc.field
    assert _norm(field) in _norm(str(exc)), str(exc)


BREAKS = ["\n", "\r", "\r\n", "\x00", "\u2028", "\u2029", "\x85"]
BREAK_IDS = ["LF", "CR", "CRLF", "NUL", "LSEP", "PSEP", "NEL"]


# ---------------------------------------------------------------- injection


@pytest.mark.parametrize("brk", BREAKS, ids=BREAK_IDS)
def test_line_break_in_subject_is_rejected_naming_subject(brk: str) -> None:
    with pytest.raises(BadHeaderError) as info:
        render(lambda: simple(subject=f"Hello{brk}Bcc: victim@example.com"))
    assert isinstance(info.value, ValueError)
    assert_names_field(info.value, "Subject")


@pytest.mark.parametrize("brk", BREAKS, ids=BREAK_IDS)
@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to"])
def test_line_break_in_recipient_address_is_rejected_naming_field(field: str, brk: str) -> None:
    bad = f"victim@example.com{brk}Bcc: other@example.com"
    with pytest.raises(BadHeaderError) as info:
        render(lambda: simple(**{field: [bad]}))
    assert_names_field(info.value, field)


@pytest.mark.parametrize("brk", BREAKS, ids=BREAK_IDS)
def test_line_break_in_from_email_is_rejected_naming_from(brk: str) -> None:
    with pytest.raises(BadHeaderError) as info:
        render(lambda: simple(from_email=f"from@example.com{brk}To: x@example.com"))
    assert_names_field(info.value, "from")


@pytest.mark.parametrize("brk", BREAKS, ids=BREAK_IDS)
def test_line_break_in_display_name_tuple_is_rejected(brk: str) -> None:
    with pytest.raises(BadHeaderError) as info:
        render(lambda: simple(to=[(f"Evil{brk}Bcc: x@example.com", "to@example.com")]))
    assert_names_field(info.value, "to")


@pytest.mark.parametrize("brk", BREAKS, ids=BREAK_IDS)
def test_line_break_in_extra_header_value_is_rejected_naming_header(brk: str) -> None:
    with pytest.raises(BadHeaderError) as info:
        render(lambda: simple(headers={"X-Custom": f"value{brk}Bcc: x@example.com"}))
    assert_names_field(info.value, "X-Custom")


@pytest.mark.parametrize("brk", BREAKS, ids=BREAK_IDS)
def test_line_break_in_extra_header_name_is_rejected(brk: str) -> None:
    with pytest.raises(BadHeaderError) as info:
        render(lambda: simple(headers={f"X-Evil{brk}Bcc": "x@example.com"}))
    assert info.value.field is not None


@pytest.mark.parametrize("brk", BREAKS, ids=BREAK_IDS)
def test_line_break_in_attachment_filename_is_rejected(brk: str) -> None:
    def build() -> EmailMessage:
        msg = simple()
        msg.attach(f"a{brk}Content-Type: text/html.txt", b"x", "application/octet-stream")
        return msg

    with pytest.raises(BadHeaderError) as info:
        render(build)
    assert "filename" in (info.value.field or "").lower()
    assert "filename" in str(info.value).lower()


@pytest.mark.parametrize("brk", BREAKS, ids=BREAK_IDS)
def test_line_break_in_header_override_of_to_is_rejected(brk: str) -> None:
    with pytest.raises(BadHeaderError) as info:
        render(lambda: simple(headers={"To": f"a@example.com{brk}Bcc: b@example.com"}))
    assert_names_field(info.value, "To")


def test_rejection_is_a_value_error_as_the_spec_promises() -> None:
    with pytest.raises(ValueError):
        render(lambda: simple(subject="a\nb"))


@pytest.mark.parametrize(
    "name",
    ["X Bad", "X:Bad", "X-Ünï", "", "X-\x7f", "X-\x01", "X-Tab\there", " X-Lead"],
    ids=["space", "colon", "non-ascii", "empty", "del", "ctrl", "tab", "leading-space"],
)
def test_header_name_outside_ftext_is_rejected(name: str) -> None:
    with pytest.raises(BadHeaderError):
        render(lambda: simple(headers={name: "value"}))


def test_header_name_with_every_ftext_special_is_accepted() -> None:
    name = "X-Weird!#$%&'*+-.^_`{|}~"
    parsed = parse(simple(headers={name: "ok"}))
    assert parsed[name] == "ok"


# ---------------------------------------------------------------- address grammar


ACCEPTED = [
    ("local@example.com", "", "local@example.com"),
    ("Display Name <dn@example.com>", "Display Name", "dn@example.com"),
    ('"Quoted, Name" <qn@example.com>', "Quoted, Name", "qn@example.com"),
    ("first.last+tag@sub.example.org", "", "first.last+tag@sub.example.org"),
]


@pytest.mark.parametrize(("given", "display", "spec"), ACCEPTED)
def test_accepted_address_forms_render_and_reach_envelope(
    given: str, display: str, spec: str
) -> None:
    msg = simple(to=[given])
    (addr,) = parse(msg)["To"].addresses
    assert (addr.display_name, addr.addr_spec) == (display, spec)
    assert envelope(msg)[1] == [spec]


def test_tuple_address_form_renders_display_name_and_address() -> None:
    msg = simple(to=[("Doe, John (Jr.)", "john@example.com")])
    (addr,) = parse(msg)["To"].addresses
    assert (addr.display_name, addr.addr_spec) == ("Doe, John (Jr.)", "john@example.com")
    assert envelope(msg)[1] == ["john@example.com"]


def test_tuple_from_email_is_accepted() -> None:
    msg = simple(from_email=("Sender Team", "team@example.com"))
    assert parse(msg)["From"].addresses[0].display_name == "Sender Team"
    assert envelope(msg)[0] == "team@example.com"


def test_display_name_with_quotes_and_backslashes_in_tuple_round_trips() -> None:
    name = 'He said "hi" \\ bye'
    (addr,) = parse(simple(to=[(name, "x@example.com")]))["To"].addresses
    assert addr.display_name == name


REJECTED = [
    "no at sign",
    "a@x.com, b@y.com",
    "a@x.com b@y.com",
    "Doe, John <john@example.com>",
    "Name (comment) <n@example.com>",
    "Na<me <n@example.com>",
    "Na>me <n@example.com>",
    "Name [x] <n@example.com>",
    "Name: x <n@example.com>",
    "Name; x <n@example.com>",
    "Na\\me <n@example.com>",
    '"Unbalanced <n@example.com>',
    "Name <n@example.com",
    "Name n@example.com>",
    "Name <n@example.com> trailing",
    "Name <n@example.com>, other@example.com",
    "alice@example.org)<bob@example.org>",
    '"alice@example.org" bob@example.org',
    "alice@example.org <bob@example.org>",
    "alice@example.org <bob@example.org",
    "@example.com",
    "local@",
    ".dot@example.com",
    "dot.@example.com",
    "do..t@example.com",
    "jür gen@example.com",
    "jü\u202egen@example.com",
    "jü\u200bgen@example.com",
    ".jürgen@example.com",
    "jür..gen@example.com",
    "user@@example.com",
    "user@exa mple.com",
]


@pytest.mark.parametrize("given", REJECTED)
def test_rejected_address_shapes_raise_invalid_address_naming_to(given: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        render(lambda: simple(to=[given]))
    assert isinstance(info.value, BadHeaderError)
    assert_names_field(info.value, "to")


@pytest.mark.parametrize("given", ["root", "Root <root>", ("Root", "root"), "no-at.sign"])
def test_local_part_only_address_is_sent_as_given(given: Any) -> None:
    """As Django: "root" is a valid address for a local MTA, in the header and envelope."""
    msg = simple(from_email="django", to=[given])
    sender, rcpts = envelope(msg)
    local = given[1] if isinstance(given, tuple) else given.split("<")[-1].rstrip(">")
    assert (sender, rcpts) == ("django", [local])
    parsed = parse(msg)
    assert parsed["From"] == "django"
    assert parsed["To"].addresses[0].username == local


@pytest.mark.parametrize("given", ["rö", "a b", "root@", "@root"])
def test_local_part_only_must_still_be_a_valid_ascii_local_part(given: str) -> None:
    with pytest.raises(InvalidAddress):
        render(lambda: simple(to=[given]))


def test_empty_to_entry_is_dropped() -> None:
    msg = simple(to=["", "to@example.com"])
    assert envelope(msg)[1] == ["to@example.com"]
    assert parse(msg)["To"] == "to@example.com"


@pytest.mark.parametrize("field", ["cc", "bcc", "reply_to"])
@pytest.mark.parametrize(
    "given", ["alice@example.org)<bob@example.org>", "a@x.com, b@y.com", "no body"]
)
def test_rejected_address_in_other_fields_names_the_field(field: str, given: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        render(lambda: simple(**{field: [given]}))
    assert_names_field(info.value, field)


@pytest.mark.parametrize(
    "given", ["alice@example.org)<bob@example.org>", "no at sign", "a@x.com, b@y.com"]
)
def test_rejected_from_email_names_from(given: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        render(lambda: simple(from_email=given))
    assert_names_field(info.value, "from")


@pytest.mark.parametrize(
    "pair", [("Name", "a@x.com, b@y.com"), ("Name", "not an address"), ("Name", "a@")]
)
def test_tuple_with_bad_address_is_rejected(pair: tuple[str, str]) -> None:
    with pytest.raises(InvalidAddress):
        render(lambda: simple(to=[pair]))


# ---------------------------------------------------------------- address length limits


def _domain_of_length(n: int) -> str:
    labels = []
    while n > 64:
        labels.append("d" * 63)
        n -= 64
    labels.append("e" * n)
    return ".".join(labels)


def test_local_part_of_64_octets_is_accepted() -> None:
    addr = "l" * 64 + "@example.com"
    assert envelope(simple(to=[addr]))[1] == [addr]


def test_local_part_of_65_octets_is_rejected() -> None:
    with pytest.raises(InvalidAddress) as info:
        render(lambda: simple(to=["l" * 65 + "@example.com"]))
    assert_names_field(info.value, "to")


def test_domain_label_of_63_octets_is_accepted() -> None:
    addr = "u@" + "a" * 63 + ".example.com"
    assert envelope(simple(to=[addr]))[1] == [addr]


def test_domain_label_of_64_octets_is_rejected() -> None:
    with pytest.raises(InvalidAddress):
        render(lambda: simple(to=["u@" + "a" * 64 + ".example.com"]))


def test_address_of_254_octets_is_accepted() -> None:
    addr = "l" * 64 + "@" + _domain_of_length(189)
    assert len(addr) == 254
    msg = simple(to=[addr])
    assert envelope(msg)[1] == [addr]
    assert parse(msg)["To"].addresses[0].addr_spec == addr


def test_address_of_255_octets_is_rejected() -> None:
    addr = "l" * 64 + "@" + _domain_of_length(190)
    assert len(addr) == 255
    with pytest.raises(InvalidAddress):
        render(lambda: simple(to=[addr]))


def test_length_limit_applies_to_from_email() -> None:
    with pytest.raises(InvalidAddress) as info:
        render(lambda: simple(from_email="l" * 65 + "@example.com"))
    assert_names_field(info.value, "from")


def test_idna_encoded_length_counts_for_limits() -> None:
    label = "ü" * 60
    with pytest.raises(InvalidAddress):
        render(lambda: simple(to=[f"u@{label}.example"]))


# ---------------------------------------------------------------- IDNA


def test_idn_domain_is_idna_encoded_in_header_and_envelope() -> None:
    msg = simple(to=["user@bücher.example"])
    data = serialize(msg)
    assert b"user@xn--bcher-kva.example" in data
    assert envelope(msg)[1] == ["user@xn--bcher-kva.example"]
    assert parse_bytes(data)["To"].addresses[0].addr_spec == "user@xn--bcher-kva.example"


def test_idn_domain_in_from_is_idna_encoded_in_envelope_sender() -> None:
    msg = simple(from_email="Bücher <shop@bücher.example>")
    assert envelope(msg)[0] == "shop@xn--bcher-kva.example"
    (addr,) = parse(msg)["From"].addresses
    assert addr.addr_spec == "shop@xn--bcher-kva.example"
    assert addr.display_name == "Bücher"


def test_idn_domain_in_tuple_form() -> None:
    msg = simple(cc=[("Ünïcode", "x@münchen.example")])
    assert envelope(msg)[1][-1] == "x@xn--mnchen-3ya.example"


def test_invalid_idn_domain_is_rejected() -> None:
    with pytest.raises(InvalidAddress):
        render(lambda: simple(to=["user@exa\u200bmple..com"]))


# ---------------------------------------------------------------- RFC 2047


def test_non_ascii_display_name_is_rfc2047_encoded_and_round_trips() -> None:
    data = serialize(simple(to=["Jörg Müller <jm@example.com>"]))
    (to,) = raw_header(data, "To")
    assert to.isascii()
    assert ENCODED_WORD.search(to)
    assert b"jm@example.com" in to
    (addr,) = parse_bytes(data)["To"].addresses
    assert addr.display_name == "Jörg Müller"


def test_non_ascii_subject_is_rfc2047_utf8_and_round_trips() -> None:
    subject = "Grüße — 你好 — 🎉"
    data = serialize(simple(subject=subject))
    (raw,) = raw_header(data, "Subject")
    assert raw.isascii()
    assert all(m.group(1).lower() == b"utf-8" for m in ENCODED_WORD.finditer(raw))
    assert parse_bytes(data)["Subject"] == subject


def test_non_ascii_unstructured_extra_header_is_encoded_and_round_trips() -> None:
    parsed = parse(simple(headers={"X-Note": "naïve café"}))
    assert parsed["X-Note"] == "naïve café"


@pytest.mark.parametrize(
    "subject",
    ["=?utf-8?q?hello?=", "Re: =?iso-8859-1?b?SGk=?= there", "=?utf-8?b?w6k=?= é", "=?x?="],
)
def test_literal_encoded_word_text_in_subject_arrives_as_written(subject: str) -> None:
    assert parse(simple(subject=subject))["Subject"] == subject


def test_literal_encoded_word_in_display_name_arrives_as_written() -> None:
    (addr,) = parse(simple(to=[("=?utf-8?q?Boss?=", "x@example.com")]))["To"].addresses
    assert addr.display_name == "=?utf-8?q?Boss?="


def test_literal_encoded_word_in_extra_header_arrives_as_written() -> None:
    assert parse(simple(headers={"X-Note": "=?utf-8?q?raw?="}))["X-Note"] == "=?utf-8?q?raw?="


@pytest.mark.parametrize(
    "subject",
    ["  leading", "trailing  ", "in  the   middle", "tab\there", " \t mixed \t "],
)
def test_subject_whitespace_round_trips_exactly(subject: str) -> None:
    assert parse(simple(subject=subject))["Subject"] == subject


def _decode_word(match: re.Match[bytes]) -> bytes:
    enc, text = match.group(2).lower(), match.group(3)
    if enc == b"b":
        return base64.b64decode(text)
    return quopri.decodestring(text.replace(b"_", b" "), header=True)


def test_encoded_words_are_split_only_between_words() -> None:
    subject = " ".join(["ünïcödé", "日本語", "ελληνικά", "кириллица"] * 15)
    data = serialize(simple(subject=subject))
    (raw,) = raw_header(data, "Subject")
    words = list(ENCODED_WORD.finditer(raw))
    assert len(words) > 1
    decoded = []
    for word in words:
        assert len(word.group(0)) <= 75
        chunk = _decode_word(word)
        decoded.append(chunk.decode("utf-8"))
    for left, right in itertools.pairwise(decoded):
        assert left.endswith((" ", "\t")) or right.startswith((" ", "\t")), (left, right)
    assert parse_bytes(data)["Subject"] == subject


def test_each_encoded_word_is_valid_utf8_on_its_own() -> None:
    subject = "🎉" * 200
    data = serialize(simple(subject=subject))
    (raw,) = raw_header(data, "Subject")
    for word in ENCODED_WORD.finditer(raw):
        try:
            _decode_word(word).decode("utf-8")
        except (UnicodeDecodeError, binascii.Error) as exc:
            pytest.fail(f"encoded word {word.group(0)!r} splits a character: {exc}")
    assert long_lines(data) == []
    assert parse_bytes(data)["Subject"] == subject


# ---------------------------------------------------------------- structured ASCII headers


@pytest.mark.parametrize("name", ["References", "In-Reply-To"])
def test_long_msgid_list_is_folded_not_encoded(name: str) -> None:
    ids = [f"<message.{i}.{'x' * 30}@mail.example.com>" for i in range(60)]
    value = " ".join(ids)
    data = serialize(simple(headers={name: value}))
    (raw,) = raw_header(data, name)
    assert b"=?" not in raw
    assert raw.count(b"\r\n") >= 1
    assert long_lines(data) == []
    assert " ".join(str(parse_bytes(data)[name]).split()) == value


def test_long_list_unsubscribe_is_folded_not_encoded() -> None:
    value = "<https://example.com/unsubscribe/" + "a" * 300 + ">, <mailto:u@example.com?subject=x>"
    data = serialize(simple(headers={"List-Unsubscribe": value}))
    (raw,) = raw_header(data, "List-Unsubscribe")
    assert b"=?" not in raw
    assert long_lines(data, 998) == []
    assert "".join(str(parse_bytes(data)["List-Unsubscribe"]).split()) == "".join(value.split())


def test_long_message_id_is_not_encoded() -> None:
    mid = "<" + "m" * 300 + "@example.com>"
    data = serialize(simple(headers={"Message-ID": mid}))
    (raw,) = raw_header(data, "Message-ID")
    assert b"=?" not in raw
    assert str(parse_bytes(data)["Message-ID"]).strip() == mid


def test_long_ascii_address_list_is_folded_not_encoded() -> None:
    to = [f"Person Number {i} <person.{i}@example.com>" for i in range(200)]
    data = serialize(simple(to=to))
    (raw,) = raw_header(data, "To")
    assert b"=?" not in raw
    assert long_lines(data) == []
    specs = [a.addr_spec for a in parse_bytes(data)["To"].addresses]
    assert specs == [f"person.{i}@example.com" for i in range(200)]


@pytest.mark.parametrize(
    "name", ["Message-ID", "In-Reply-To", "References", "List-Unsubscribe", "List-Id"]
)
def test_non_ascii_in_structured_header_is_rejected(name: str) -> None:
    with pytest.raises(BadHeaderError) as info:
        render(lambda: simple(headers={name: "<caf\u00e9@example.com>"}))
    assert_names_field(info.value, name)


def test_non_ascii_content_id_is_rejected() -> None:
    def build() -> EmailMessage:
        msg = EmailMultiAlternatives("s", "b", "f@example.com", ["t@example.com"])
        part = MIMEPart()
        part.set_content(b"img", maintype="image", subtype="png", disposition="inline")
        part["Content-ID"] = "<caf\u00e9@example.com>"
        msg.attach(part)
        msg.attach_alternative("<p>x</p>", "text/html")
        return msg

    with pytest.raises(BadHeaderError) as info:
        render(build)
    assert_names_field(info.value, "Content-ID")


@pytest.mark.parametrize("name", ["Message-ID", "References", "In-Reply-To"])
def test_unfoldable_token_over_998_octets_in_structured_header_is_rejected(name: str) -> None:
    token = "<" + "a" * 1200 + "@example.com>"
    with pytest.raises(BadHeaderError) as info:
        render(lambda: simple(headers={name: token}))
    assert_names_field(info.value, name)


# ---------------------------------------------------------------- 998-octet limit


def test_2000_char_display_name_without_spaces_stays_within_998() -> None:
    name = "N" * 2000
    msg = simple(to=[(name, "long@example.com")])
    data = serialize(msg)
    assert long_lines(data) == []
    (addr,) = parse_bytes(data)["To"].addresses
    (raw,) = raw_header(data, "To")
    assert display_name_arrived(addr.display_name, raw, name)
    assert addr.addr_spec == "long@example.com"


def test_2000_char_non_ascii_display_name_stays_within_998() -> None:
    name = "é" * 2000
    data = serialize(simple(from_email=(name, "f@example.com")))
    assert long_lines(data) == []
    (raw,) = raw_header(data, "From")
    assert display_name_arrived(parse_bytes(data)["From"].addresses[0].display_name, raw, name)


def test_2000_char_subject_without_spaces_stays_within_998_and_round_trips() -> None:
    subject = "S" * 2000
    data = serialize(simple(subject=subject))
    assert long_lines(data) == []
    assert parse_bytes(data)["Subject"] == subject


def test_long_unstructured_header_without_spaces_stays_within_998() -> None:
    value = "v" * 3000
    data = serialize(simple(headers={"X-Long": value}))
    assert long_lines(data) == []
    assert parse_bytes(data)["X-Long"] == value


def test_long_header_name_and_value_stay_within_998() -> None:
    name = "X-" + "n" * 900
    data = serialize(simple(headers={name: "w" * 500}))
    assert long_lines(data) == []
    assert parse_bytes(data)[name] == "w" * 500


# ---------------------------------------------------------------- scale


def _time_serialize(msg: EmailMessage) -> tuple[float, bytes]:
    start = time.perf_counter()
    data = serialize(msg)
    return time.perf_counter() - start, data


def test_to_header_with_10000_addresses_renders_in_well_under_a_second() -> None:
    serialize(simple())
    to = [f"user{i}@example.com" for i in range(10_000)]
    elapsed, data = _time_serialize(simple(to=to))
    assert elapsed < 1.0, f"took {elapsed:.2f}s"
    (raw,) = raw_header(data, "To")
    assert raw.count(b"@example.com") == 10_000
    assert long_lines(data) == []


def test_to_header_with_10000_display_name_addresses_renders_fast() -> None:
    serialize(simple())
    to = [f"User Number {i} <user{i}@example.com>" for i in range(10_000)]
    elapsed, data = _time_serialize(simple(to=to))
    assert elapsed < 1.0, f"took {elapsed:.2f}s"
    (raw,) = raw_header(data, "To")
    assert raw.count(b"@example.com>") == 10_000


def test_envelope_of_10000_recipients_is_fast() -> None:
    msg = simple(to=[f"user{i}@example.com" for i in range(10_000)])
    start = time.perf_counter()
    _, rcpts = envelope(msg)
    assert time.perf_counter() - start < 1.0
    assert len(rcpts) == 10_000


# ---------------------------------------------------------------- headers of parts


def test_attachment_part_headers_cannot_be_injected_by_filename() -> None:
    msg = simple()
    msg.attach('x"; name="evil.exe', b"x", "application/octet-stream")
    data = serialize(msg)
    (att,) = attachments_of(parse_bytes(data))
    assert att.get_filename() == 'x"; name="evil.exe'
    assert att.get_param("name") in (None, 'x"; name="evil.exe')


def test_message_header_set_is_only_the_expected_one() -> None:
    data = serialize(simple(cc=["c@example.com"], headers={"X-A": "1"}))
    assert set(top_header_names(data)) == {
        "subject",
        "from",
        "to",
        "cc",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "x-a",
    }


def test_stdlib_message_returned_has_no_bcc() -> None:
    m = simple(bcc=["hidden@example.com"]).message()
    assert isinstance(m, email.message.EmailMessage)
    assert m["Bcc"] is None


def test_message_method_itself_rejects_injection() -> None:
    with pytest.raises(BadHeaderError) as info:
        simple(subject="Hi\nBcc: x@example.com").message()
    assert_names_field(info.value, "Subject")


def test_non_ascii_local_part_in_tuple_is_written_as_utf8() -> None:
    msg = simple(to=[("Jürgen", "jürgen@bücher.example")])
    (raw,) = raw_header(serialize(msg), "To")
    assert raw == "To: =?utf-8?q?J=C3=BCrgen?= <jürgen@xn--bcher-kva.example>".encode()
    (addr,) = msg.message()["To"].addresses
    assert (addr.display_name, addr.addr_spec) == ("Jürgen", "jürgen@xn--bcher-kva.example")


@pytest.mark.parametrize("field", ["from_email", "to", "cc", "bcc", "reply_to"])
def test_non_ascii_local_part_is_accepted_in_every_address_field(field: str) -> None:
    given = "用户@example.com" if field == "from_email" else ["用户@example.com"]
    msg = simple(**{field: given})
    sender, recipients = envelope(msg)
    assert ("用户@example.com" in [sender, *recipients]) is (field != "reply_to")
    header = {"from_email": "From", "reply_to": "Reply-To"}.get(field, field.capitalize())
    data = serialize(msg)
    if field == "bcc":
        assert "用户".encode() not in data
    else:
        assert raw_header(data, header) == [f"{header}: 用户@example.com".encode()]


def test_quoted_non_ascii_local_part_keeps_its_quotes_only_when_needed() -> None:
    msg = simple(to=['"jürgen"@example.com', '"jür gen"@example.com'])
    assert envelope(msg)[1] == ["jürgen@example.com", '"jür gen"@example.com']


def test_non_ascii_local_part_counts_octets_for_the_64_limit() -> None:
    simple(to=["ü" * 32 + "@example.com"]).message()
    with pytest.raises(InvalidAddress, match="longer than 64 octets"):
        simple(to=["ü" * 33 + "@example.com"]).message()


def test_given_date_in_lower_case_is_not_duplicated() -> None:
    data = serialize(simple(headers={"date": "Tue, 01 Jan 2030 10:00:00 +0100"}))
    assert top_header_names(data).count("date") == 1


# ------------------------------------------- mixed ASCII / non-ASCII display names


MIXED_NAMES = [
    "Dr. Jörg Müller-Lüdenscheidt von und zu Hohenzollern-Sigmaringen the Third of Many",
    "Zoë Anne Marie-Louise Christine Wilhelmina Augusta Beatrice Smithson-Jones the Younger",
    "The Accounts Receivable Department of Société Générale de Banque et de Crédit",
    "Ann =?x?= Lee Ünï",
]


@pytest.mark.parametrize("name", MIXED_NAMES)
def test_long_mixed_display_name_parses_back_exactly(name: str) -> None:
    """Only the words that need it are encoded, so Python's parser, which keeps the space
    between adjacent encoded-words (CPython issue 128110), still reads the exact name."""
    msg = simple(to=[(name, "t@example.com")])
    data = serialize(msg)
    (addr,) = parse(msg)["To"].addresses
    assert addr.display_name == name
    head = data.split(b"\r\n\r\n", 1)[0]
    plain = [w for w in name.split(" ") if w.isascii() and w.isalpha()]
    assert plain
    assert all(f" {w}".encode() in head for w in plain[1:])  # written as they are
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
