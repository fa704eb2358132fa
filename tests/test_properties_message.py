"""Property tests: whatever callers put in any field, the wire message is safe and faithful.

(a) no input adds a header line or changes the recipients (it is rejected, or rendered inert);
(b) every valid message parses back (stdlib parser) into the same subject, addresses, bodies,
    alternatives, attachment names and attachment bytes;
(c) no wire line exceeds 998 octets, no NUL, only CRLF line ends, 7-bit clean.
"""

from __future__ import annotations

import email.message
import socket
import tempfile
from dataclasses import dataclass, field
from email.message import MIMEPart
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import mailpost.utils
from mailpost import BadHeaderError, EmailMessage, EmailMultiAlternatives
from mailpost.message import envelope, serialize
from strategies import (
    FQDN,
    FTEXT,
    MIME_PART_HEADERS,
    addresses,
    any_text,
    body_text,
    display_name_arrived,
    display_names,
    filenames,
    header_text,
    long_lines,
    parse_bytes,
    raw_header,
    same_body,
    top_header_names,
    walk_leaves,
)

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture(autouse=True)
def _fixed_fqdn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda name="": FQDN)
    monkeypatch.setattr(mailpost.utils.DNS_NAME, "_fqdn", None)


def idna_spec(spec: str) -> str:
    local, _, domain = spec.rpartition("@")
    labels = [
        lab if lab.isascii() else lab.encode("idna").decode("ascii") for lab in domain.split(".")
    ]
    return f"{local}@{'.'.join(labels)}"


def assert_wire_ok(data: bytes) -> None:
    """Property (c)."""
    assert long_lines(data) == [], "a wire line exceeds 998 octets"
    assert b"\x00" not in data, "NUL on the wire"
    assert data.isascii(), "8-bit data on the wire"
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF on the wire"
    assert b"\r" not in data.replace(b"\r\n", b""), "bare CR on the wire"


# ---------------------------------------------------------------- attachments


@dataclass
class Expected:
    """What one attachment must look like after the round trip."""

    filename: str | None
    content_type: str
    data: bytes | None = None
    inner_subject: str | None = None


@dataclass
class Plan:
    subject: str
    body: str
    from_: tuple[Any, str, str]
    to: list[tuple[Any, str, str]]
    cc: list[tuple[Any, str, str]]
    bcc: list[tuple[Any, str, str]]
    reply_to: list[tuple[Any, str, str]]
    headers: dict[str, str]
    alternatives: list[str]
    attachments: list[tuple[str, tuple[Any, ...], Expected]] = field(default_factory=list)
    inline_image: bytes | None = None


_binary_types = st.sampled_from(
    ["application/pdf", "image/png", "application/octet-stream", "application/zip", "audio/ogg"]
)
_text_types = st.sampled_from(["text/plain", "text/csv", "text/x-log"])
_bytes = st.binary(max_size=400)
_any_content_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=300),
    st.builds(lambda n, tail: "y" * n + tail, st.integers(990, 1500), st.sampled_from(["", "\n"])),
)
_not_utf8 = st.builds(lambda a, b: a + b"\xff\xfe" + b, _bytes, _bytes)
_safe_fs_name = st.text(
    st.characters(categories=("Lu", "Ll", "Lo", "Nd"), exclude_characters="/\\\x00"),
    min_size=1,
    max_size=40,
).map(lambda s: s + ".dat")


@st.composite
def attachment_specs(draw: st.DrawFn) -> tuple[str, tuple[Any, ...], Expected]:
    kind = draw(
        st.sampled_from(
            [
                "binary",
                "text",
                "text-bytes",
                "not-utf8",
                "mimepart",
                "rfc822",
                "stdlib-rfc822",
                "file",
            ]
        )
    )
    if kind == "binary":
        name, data, ctype = draw(filenames), draw(_bytes), draw(_binary_types)
        return kind, (name, data, ctype), Expected(name, ctype, data)
    if kind == "text":
        name, text, ctype = draw(filenames), draw(_any_content_text), draw(_text_types)
        return kind, (name, text, ctype), Expected(name, ctype, text.encode("utf-8"))
    if kind == "text-bytes":
        name, text, ctype = draw(filenames), draw(_any_content_text), draw(_text_types)
        data = text.encode("utf-8")
        return kind, (name, data, ctype), Expected(name, ctype, data)
    if kind == "not-utf8":
        name, data = draw(filenames), draw(_not_utf8)
        return kind, (name, data, "text/plain"), Expected(name, "application/octet-stream", data)
    if kind == "mimepart":
        name, data = draw(filenames), draw(_bytes)
        return kind, (name, data), Expected(name, "application/x-part", data)
    if kind == "rfc822":
        subject = draw(header_text)
        return kind, (subject, draw(body_text)), Expected(None, "message/rfc822", None, subject)
    if kind == "stdlib-rfc822":
        subject = draw(st.from_regex(r"\A[A-Za-z0-9](?:[A-Za-z0-9 ]{0,38}[A-Za-z0-9])?\Z"))
        return kind, (subject,), Expected(None, "message/rfc822", None, subject)
    name, data = draw(_safe_fs_name), draw(_bytes)
    return kind, (name, data), Expected(name, "application/octet-stream", data)


def add_attachment(msg: EmailMessage, kind: str, args: tuple[Any, ...], tmp: Path) -> None:
    if kind in ("binary", "text", "text-bytes", "not-utf8"):
        msg.attach(*args)
    elif kind == "mimepart":
        part = MIMEPart()
        part.set_content(args[1], maintype="application", subtype="x-part", filename=args[0])
        msg.attach(part)
    elif kind == "rfc822":
        inner = EmailMessage(args[0], args[1], "inner@example.com", ["x@example.com"])
        msg.attach("forwarded.eml", inner, "message/rfc822")
    elif kind == "stdlib-rfc822":
        inner = email.message.EmailMessage()
        inner["Subject"] = args[0]
        inner.set_content("inner body\n")
        msg.attach(None, inner, "message/rfc822")
    else:
        path = tmp / args[0]
        path.write_bytes(args[1])
        msg.attach_file(path, "application/octet-stream")


_extra_name = st.text(st.sampled_from(FTEXT), min_size=1, max_size=20).map(lambda s: "X-" + s)
_extra_value = header_text.filter(lambda v: v == v.strip())


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    headers: dict[str, str] = {}
    for name, value in draw(st.lists(st.tuples(_extra_name, _extra_value), max_size=3)):
        if name.lower() not in {k.lower() for k in headers}:
            headers[name] = value
    return Plan(
        subject=draw(header_text),
        body=draw(body_text),
        from_=draw(addresses),
        to=draw(st.lists(addresses, min_size=1, max_size=4)),
        cc=draw(st.lists(addresses, max_size=3)),
        bcc=draw(st.lists(addresses, max_size=3)),
        reply_to=draw(st.lists(addresses, max_size=2)),
        headers=headers,
        alternatives=draw(st.lists(body_text, max_size=2)),
        attachments=draw(st.lists(attachment_specs(), max_size=4)),
        inline_image=draw(st.none() | _bytes),
    )


def build(plan: Plan, tmp: Path) -> EmailMultiAlternatives:
    msg = EmailMultiAlternatives(
        plan.subject,
        plan.body,
        plan.from_[0],
        [a[0] for a in plan.to],
        cc=[a[0] for a in plan.cc],
        bcc=[a[0] for a in plan.bcc],
        reply_to=[a[0] for a in plan.reply_to],
        headers=dict(plan.headers),
    )
    for content in plan.alternatives:
        msg.attach_alternative(content, "text/html")
    for kind, args, _ in plan.attachments:
        add_attachment(msg, kind, args, tmp)
    if plan.inline_image is not None:
        image = MIMEPart()
        image.set_content(
            plan.inline_image,
            maintype="image",
            subtype="gif",
            disposition="inline",
            cid="<inline.image@example.com>",
        )
        msg.attach(image)
    return msg


def check_addresses(
    parsed: email.message.EmailMessage, data: bytes, name: str, given: list[tuple[Any, str, str]]
) -> None:
    if not given:
        assert parsed[name] is None
        return
    got = parsed[name].addresses
    assert [a.addr_spec for a in got] == [idna_spec(g[2]) for g in given], name
    (raw,) = raw_header(data, name)
    for addr, (_, display, _) in zip(got, given, strict=True):
        if display:
            assert display_name_arrived(addr.display_name, raw, display), (name, display)
        else:
            assert addr.display_name == ""


def text_leaves(parsed: email.message.EmailMessage, ctype: str) -> list[email.message.Message]:
    return [
        p
        for p in walk_leaves(parsed)
        if p.get_content_type() == ctype and p.get_content_disposition() != "attachment"
    ]


# ---------------------------------------------------------------- (b) + (c)


@SETTINGS
@given(plan=plans())
@example(
    plan=Plan(
        subject=" =?utf-8?q?x?=  tab\tend ",
        body="a\rb\nc\r\nd\x0ce\u2028f\x00",
        from_=(('Ünï, "q"', "f@bücher.example"), 'Ünï, "q"', "f@bücher.example"),
        to=[("to@example.com", "", "to@example.com")],
        cc=[],
        bcc=[],
        reply_to=[],
        headers={"X-Note": "=?utf-8?b?w6k=?="},
        alternatives=["<p>é</p>"],
        attachments=[
            (
                "text",
                ("no-newline.txt", "x\ny", "text/plain"),
                Expected("no-newline.txt", "text/plain", b"x\ny"),
            )
        ],
        inline_image=b"GIF89a",
    )
)
def test_every_message_round_trips_through_the_stdlib_parser(plan: Plan) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        msg = build(plan, Path(tmp))
        data = serialize(msg)
    assert_wire_ok(data)
    parsed = parse_bytes(data)

    assert parsed["Subject"] == plan.subject
    assert parsed["MIME-Version"] == "1.0"
    check_addresses(parsed, data, "From", [plan.from_])
    check_addresses(parsed, data, "To", plan.to)
    check_addresses(parsed, data, "Cc", plan.cc)
    check_addresses(parsed, data, "Reply-To", plan.reply_to)
    assert parsed["Bcc"] is None
    for name, value in plan.headers.items():
        assert parsed[name] == value, name

    sender, rcpts = envelope(msg)
    assert sender == idna_spec(plan.from_[2])
    assert rcpts == [idna_spec(a[2]) for a in plan.to + plan.cc + plan.bcc]

    plains = text_leaves(parsed, "text/plain")
    # As Django's: an empty body is left out when alternatives or attachments carry it.
    if plan.body or not (plan.alternatives or plan.attachments or plan.inline_image is not None):
        assert len(plains) == 1
        assert same_body(plains[0].get_content(), plan.body)
    else:
        assert plains == []
    htmls = text_leaves(parsed, "text/html")
    assert len(htmls) == len(plan.alternatives)
    for part, content in zip(htmls, plan.alternatives, strict=True):
        assert same_body(part.get_content(), content)

    attached = [p for p in walk_leaves(parsed) if p.get_content_disposition() == "attachment"]
    rfc822 = [p for p in walk_leaves(parsed) if p.get_content_type() == "message/rfc822"]
    regular = [p for p in attached if p.get_content_type() != "message/rfc822"]
    want_regular = [e for _, _, e in plan.attachments if e.content_type != "message/rfc822"]
    want_rfc822 = [e for _, _, e in plan.attachments if e.content_type == "message/rfc822"]
    assert len(regular) == len(want_regular)
    for part, want in zip(regular, want_regular, strict=True):
        assert part.get_filename() == want.filename
        assert part.get_content_type() == want.content_type
        assert part.get_payload(decode=True) == want.data
    assert len(rfc822) == len(want_rfc822)
    for part, want in zip(rfc822, want_rfc822, strict=True):
        assert part.get_payload()[0]["Subject"] == want.inner_subject

    if plan.inline_image is not None:
        (image,) = [p for p in walk_leaves(parsed) if p.get_content_type() == "image/gif"]
        assert image["Content-ID"] == "<inline.image@example.com>"
        assert image.get_payload(decode=True) == plan.inline_image


# ---------------------------------------------------------------- (a) + (c)


BASE_HEADERS = {
    "subject",
    "from",
    "to",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}

_hostile = st.one_of(
    any_text,
    st.builds(
        lambda a, brk, b: a + brk + b,
        any_text,
        st.sampled_from(["\n", "\r", "\r\n", "\x00", "\u2028", "\u2029", "\x85", "\x0b", "\x0c"]),
        st.sampled_from(
            ["Bcc: evil@attacker.example", "To: evil@attacker.example", "", " folded", "\r\n"]
        ),
    ),
)


_BENIGN = {
    "subject": "Hello",
    "body": "Body",
    "from_name": "Sender",
    "to_name": "Receiver",
    "to_addr": "to@example.com",
    "cc_addr": "cc@example.com",
    "header_name": "X-Extra",
    "header_value": "value",
    "filename": "file.bin",
    "alternative": "<p>hi</p>",
}


@st.composite
def hostile_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """One to three hostile fields, the rest benign, so both rejection and rendering run."""
    keys = draw(st.lists(st.sampled_from(sorted(_BENIGN)), min_size=1, max_size=3, unique=True))
    chosen = dict(_BENIGN)
    for key in keys:
        hostile = st.one_of(_hostile, _extra_name) if key == "header_name" else _hostile
        chosen[key] = draw(hostile)
    return chosen


def _rendered(inp: dict[str, Any]) -> tuple[EmailMessage, bytes, tuple[str, list[str]]] | None:
    try:
        msg = EmailMultiAlternatives(
            inp["subject"],
            inp["body"],
            (inp["from_name"], "from@example.com"),
            [(inp["to_name"], "to@example.com"), inp["to_addr"]],
            cc=[inp["cc_addr"]],
            bcc=["hidden@example.com"],
            headers={inp["header_name"]: inp["header_value"]},
        )
        msg.attach_alternative(inp["alternative"], "text/html")
        msg.attach(inp["filename"], b"attachment bytes", "application/octet-stream")
        data = serialize(msg)
        env = envelope(msg)
    except BadHeaderError:
        return None
    return msg, data, env


@SETTINGS
@given(inp=hostile_inputs())
@example(
    inp={
        "subject": "hi\r\nBcc: evil@attacker.example",
        "body": "x",
        "from_name": "a",
        "to_name": "b",
        "to_addr": "to@example.com",
        "cc_addr": "cc@example.com",
        "header_name": "X-A",
        "header_value": "v",
        "filename": "f",
        "alternative": "h",
    }
)
def test_no_input_adds_a_header_or_changes_recipients(inp: dict[str, Any]) -> None:
    result = _rendered(inp)
    event("rejected" if result is None else "rendered")
    if result is None:
        return
    _, data, (sender, rcpts) = result
    assert_wire_ok(data)
    parsed = parse_bytes(data)

    names = top_header_names(data)
    assert len(names) == len(set(names)), names
    cc_specs = [a for a in [inp["cc_addr"]] if a]
    expected = BASE_HEADERS | {inp["header_name"].lower()} | ({"cc"} if cc_specs else set())
    assert set(names) <= expected
    assert expected - {"content-transfer-encoding"} <= set(names)

    assert sender == "from@example.com"
    to_specs = ["to@example.com", *[a for a in [inp["to_addr"]] if a]]
    assert [a.addr_spec for a in parsed["To"].addresses] == to_specs
    if cc_specs:
        assert [a.addr_spec for a in parsed["Cc"].addresses] == cc_specs
    assert rcpts == [*to_specs, *cc_specs, "hidden@example.com"]
    assert b"hidden@example.com" not in data

    for part in parsed.walk():
        if part is parsed:
            continue
        part_names = {k.lower() for k in part}
        assert part_names <= MIME_PART_HEADERS, part_names
    leaves = list(walk_leaves(parsed))
    assert len([p for p in leaves if p.get_content_disposition() == "attachment"]) == 1


@settings(SETTINGS, max_examples=300)
@given(subject=header_text)
def test_subject_round_trips_exactly(subject: str) -> None:
    data = serialize(EmailMessage(subject, "b", "f@example.com", ["t@example.com"]))
    assert_wire_ok(data)
    assert parse_bytes(data)["Subject"] == subject


@settings(SETTINGS, max_examples=300)
@given(name=display_names, spec=st.sampled_from(["a@example.com", "b@bücher.example"]))
def test_display_name_round_trips(name: str, spec: str) -> None:
    data = serialize(EmailMessage("s", "b", (name, "f@example.com"), [(name, spec)]))
    assert_wire_ok(data)
    parsed = parse_bytes(data)
    for header in ("From", "To"):
        (addr,) = parsed[header].addresses
        (raw,) = raw_header(data, header)
        assert display_name_arrived(addr.display_name, raw, name), header


@settings(SETTINGS, max_examples=300)
@given(name=filenames, data=st.binary(max_size=50))
def test_attachment_filename_and_bytes_round_trip(name: str, data: bytes) -> None:
    msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"])
    msg.attach(name, data, "application/octet-stream")
    wire = serialize(msg)
    assert_wire_ok(wire)
    (part,) = [p for p in walk_leaves(parse_bytes(wire)) if p.get_content_disposition()]
    assert part.get_filename() == name
    assert part.get_payload(decode=True) == data
