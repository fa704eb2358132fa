"""The MIME structure and wire form of composed messages, as a receiving MUA parses them."""

from __future__ import annotations

import email.message
import email.policy
import email.utils
import os
import re
import socket
import time
from datetime import datetime, timedelta, timezone
from email.message import MIMEPart
from pathlib import Path

import pytest

import mailpost
import mailpost.utils
from mailpost import BadHeaderError, EmailMessage, EmailMultiAlternatives
from mailpost.message import envelope, serialize
from strategies import (
    FQDN,
    attachments_of,
    long_lines,
    parse,
    parse_bytes,
    same_body,
    top_header_names,
    walk_leaves,
)


@pytest.fixture(autouse=True)
def _fixed_fqdn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda name="": FQDN)
    monkeypatch.setattr(mailpost.utils.DNS_NAME, "_fqdn", None)


def simple(**kwargs: object) -> EmailMessage:
    defaults: dict[str, object] = {
        "subject": "Subject",
        "body": "Body text.\n",
        "from_email": "from@example.com",
        "to": ["to@example.com"],
    }
    defaults.update(kwargs)
    return EmailMessage(**defaults)  # type: ignore[arg-type]


def multi(**kwargs: object) -> EmailMultiAlternatives:
    defaults: dict[str, object] = {
        "subject": "Subject",
        "body": "Plain text.\n",
        "from_email": "from@example.com",
        "to": ["to@example.com"],
    }
    defaults.update(kwargs)
    return EmailMultiAlternatives(**defaults)  # type: ignore[arg-type]


def png_part(cid: str = "<logo@example.com>") -> MIMEPart:
    part = MIMEPart()
    part.set_content(
        b"\x89PNG\r\n\x1a\n\x00\x00binary",
        maintype="image",
        subtype="png",
        disposition="inline",
        cid=cid,
    )
    return part


def find(msg: email.message.Message, content_type: str) -> list[email.message.Message]:
    return [p for p in msg.walk() if p.get_content_type() == content_type]


def parent_of(root: email.message.Message, child: email.message.Message) -> email.message.Message:
    for part in root.walk():
        if part.is_multipart() and any(sub is child for sub in part.get_payload()):
            return part
    raise AssertionError("part not found in tree")


# ---------------------------------------------------------------- basic headers


def test_plain_message_is_a_single_text_plain_part() -> None:
    parsed = parse(simple())
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content_charset() == "utf-8"
    assert not parsed.is_multipart()
    assert same_body(parsed.get_content(), "Body text.\n")


def test_standard_headers_are_present() -> None:
    parsed = parse(simple())
    assert parsed["Subject"] == "Subject"
    assert parsed["From"] == "from@example.com"
    assert parsed["To"] == "to@example.com"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Date"] is not None
    assert parsed["Message-ID"] is not None


def test_each_top_level_header_appears_once() -> None:
    names = top_header_names(serialize(simple(cc=["c@example.com"], reply_to=["r@x.com"])))
    assert len(names) == len(set(names))


def test_serialize_uses_crlf_by_default_and_given_linesep() -> None:
    msg = simple(body="a\nb\r\nc\rd")
    crlf = serialize(msg)
    assert b"\n" not in crlf.replace(b"\r\n", b"")
    assert b"\r" not in crlf.replace(b"\r\n", b"")
    lf = serialize(msg, linesep="\n")
    assert b"\r" not in lf
    assert b"\n\n" in lf


@pytest.mark.parametrize(
    "build",
    [
        lambda: simple(),
        lambda: simple(body=""),
        lambda: simple(attachments=[("a.bin", b"\x00", "application/octet-stream")]),
    ],
)
def test_mime_version_on_every_message(build: object) -> None:
    assert parse(build())["MIME-Version"] == "1.0"  # type: ignore[operator]


def test_mime_version_on_multipart_alternative_message() -> None:
    msg = multi()
    msg.attach_alternative("<p>x</p>", "text/html")
    assert parse(msg)["MIME-Version"] == "1.0"


def test_cc_and_reply_to_headers_come_from_attributes() -> None:
    parsed = parse(simple(cc=["c@example.com"], reply_to=["r@example.com"]))
    assert parsed["Cc"] == "c@example.com"
    assert parsed["Reply-To"] == "r@example.com"


def test_no_cc_or_reply_to_header_when_empty() -> None:
    parsed = parse(simple())
    assert parsed["Cc"] is None
    assert parsed["Reply-To"] is None


def test_no_to_header_when_only_bcc() -> None:
    parsed = parse(simple(to=[], bcc=["hidden@example.com"]))
    assert parsed["To"] is None
    assert parsed["Bcc"] is None


def test_multiple_recipients_in_one_to_header() -> None:
    parsed = parse(simple(to=["a@example.com", "B <b@example.com>"]))
    specs = [a.addr_spec for a in parsed["To"].addresses]
    assert specs == ["a@example.com", "b@example.com"]


def test_extra_headers_are_added() -> None:
    parsed = parse(
        simple(headers={"X-Campaign": "spring", "List-Unsubscribe": "<mailto:u@example.com>"})
    )
    assert parsed["X-Campaign"] == "spring"
    assert parsed["List-Unsubscribe"] == "<mailto:u@example.com>"


def test_extra_headers_attribute_changes_after_construction_are_used() -> None:
    msg = simple()
    msg.extra_headers["X-Late"] = "yes"
    assert parse(msg)["X-Late"] == "yes"


def test_attributes_changed_after_construction_are_rendered() -> None:
    msg = simple()
    msg.subject = "Changed"
    msg.body = "New body"
    msg.to = ["other@example.com"]
    parsed = parse(msg)
    assert parsed["Subject"] == "Changed"
    assert parsed["To"] == "other@example.com"
    assert same_body(parsed.get_content(), "New body")


# ---------------------------------------------------------------- Bcc


def test_bcc_never_appears_in_the_output() -> None:
    data = serialize(simple(bcc=["secret.person@hidden.example"]))
    assert b"secret.person" not in data
    assert b"hidden.example" not in data
    assert "bcc" not in top_header_names(data)


def test_bcc_is_in_the_envelope() -> None:
    msg = simple(cc=["c@example.com"], bcc=["hidden@example.com"])
    sender, rcpts = envelope(msg)
    assert sender == "from@example.com"
    assert rcpts == ["to@example.com", "c@example.com", "hidden@example.com"]


@pytest.mark.parametrize("name", ["Bcc", "bcc", "BCC"])
def test_bcc_in_headers_is_rejected(name: str) -> None:
    with pytest.raises(BadHeaderError) as info:
        serialize(simple(headers={name: "x@example.com"}))
    assert (info.value.field or "").lower() == "bcc"


# ---------------------------------------------------------------- header overrides


def test_to_header_override_changes_display_not_envelope() -> None:
    msg = simple(to=["real@example.com"], headers={"To": "Everyone <list@example.com>"})
    parsed = parse(msg)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["list@example.com"]
    assert envelope(msg)[1] == ["real@example.com"]
    assert msg.recipients() == ["real@example.com"]


def test_from_header_override_changes_display_not_envelope_sender() -> None:
    msg = simple(from_email="bounce@example.com", headers={"From": "Team <team@example.com>"})
    parsed = parse(msg)
    assert parsed["From"].addresses[0].addr_spec == "team@example.com"
    assert envelope(msg)[0] == "bounce@example.com"


def test_cc_header_override_changes_display_not_envelope() -> None:
    msg = simple(cc=["real.cc@example.com"], headers={"Cc": "shown@example.com"})
    assert parse(msg)["Cc"] == "shown@example.com"
    assert "real.cc@example.com" in envelope(msg)[1]
    assert "shown@example.com" not in envelope(msg)[1]


def test_reply_to_header_override_wins_over_attribute() -> None:
    msg = simple(reply_to=["attr@example.com"], headers={"Reply-To": "hdr@example.com"})
    data = serialize(msg)
    assert parse_bytes(data)["Reply-To"] == "hdr@example.com"
    assert b"attr@example.com" not in data


def test_header_override_is_case_insensitive_and_not_duplicated() -> None:
    data = serialize(simple(headers={"to": "shown@example.com"}))
    assert top_header_names(data).count("to") == 1
    assert parse_bytes(data)["To"] == "shown@example.com"


def test_subject_in_headers_replaces_subject_instead_of_duplicating_it() -> None:
    data = serialize(simple(subject="Original", headers={"subject": "Overridden"}))
    assert top_header_names(data).count("subject") == 1
    assert parse_bytes(data)["Subject"] == "Overridden"


def test_to_header_override_without_to_attribute() -> None:
    msg = simple(to=[], bcc=["real@example.com"], headers={"To": "undisclosed@example.com"})
    assert parse(msg)["To"] == "undisclosed@example.com"
    assert envelope(msg)[1] == ["real@example.com"]


# ---------------------------------------------------------------- Date / Message-ID


def test_date_is_added_and_is_now_in_utc_by_default() -> None:
    before = datetime.now(timezone.utc)
    parsed = parse(simple())
    when = email.utils.parsedate_to_datetime(str(parsed["Date"]))
    assert when.utcoffset() in (None, timedelta(0))
    assert abs(when.replace(tzinfo=timezone.utc) - before) < timedelta(seconds=5)


def test_date_uses_local_time_when_email_use_localtime() -> None:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "XYZ-05:30"
    time.tzset()
    try:
        mailpost.configure(EMAIL_USE_LOCALTIME=True)
        parsed = parse(simple())
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
    assert str(parsed["Date"]).endswith("+0530")


def test_given_date_header_is_kept() -> None:
    parsed = parse(simple(headers={"Date": "Tue, 01 Jan 2030 10:00:00 +0100"}))
    assert parsed["Date"] == "Tue, 01 Jan 2030 10:00:00 +0100"


def test_message_id_is_added_with_cached_fqdn_domain() -> None:
    mid = str(parse(simple())["Message-ID"])
    assert re.fullmatch(r"<[^<>@\s]+@mailhost\.example\.org>", mid), mid


def test_message_ids_differ_between_messages() -> None:
    ids = {str(parse(simple())["Message-ID"]) for _ in range(20)}
    assert len(ids) == 20


def test_given_message_id_header_is_kept() -> None:
    parsed = parse(simple(headers={"Message-ID": "<fixed.1@example.com>"}))
    assert parsed["Message-ID"] == "<fixed.1@example.com>"
    assert len(parsed.get_all("Message-ID")) == 1


def test_given_message_id_in_any_case_is_not_duplicated() -> None:
    data = serialize(simple(headers={"message-id": "<fixed.2@example.com>"}))
    assert top_header_names(data).count("message-id") == 1
    assert parse_bytes(data)["Message-ID"] == "<fixed.2@example.com>"


# ---------------------------------------------------------------- body encodings


def test_ascii_body_with_short_lines_is_7bit() -> None:
    parsed = parse(simple(body="Hello\nworld\n"))
    assert parsed["Content-Transfer-Encoding"] == "7bit"


def test_non_ascii_body_is_not_8bit_and_wire_is_ascii() -> None:
    body = "Grüße aus Köln — 你好\n"
    data = serialize(simple(body=body))
    assert data.isascii()
    parsed = parse_bytes(data)
    assert parsed["Content-Transfer-Encoding"].lower() in ("quoted-printable", "base64")
    assert same_body(parsed.get_content(), body)


def test_ascii_body_with_line_over_998_is_encoded_and_round_trips() -> None:
    body = "x" * 2500 + "\nshort\n"
    data = serialize(simple(body=body))
    assert long_lines(data) == []
    parsed = parse_bytes(data)
    assert parsed["Content-Transfer-Encoding"].lower() != "7bit"
    assert same_body(parsed.get_content(), body)


def test_body_line_endings_are_canonicalized_to_crlf() -> None:
    data = serialize(simple(body="one\ntwo\r\nthree\rfour"))
    body = data.partition(b"\r\n\r\n")[2]
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert b"\r" not in body.replace(b"\r\n", b"")
    assert same_body(parse_bytes(data).get_content(), "one\ntwo\nthree\nfour")


def test_body_with_nul_and_controls_never_puts_nul_on_the_wire() -> None:
    body = "a\x00b\x01c\x7fd"
    data = serialize(simple(body=body))
    assert b"\x00" not in data
    assert same_body(parse_bytes(data).get_content(), body)


def test_body_starting_with_header_like_text_stays_in_the_body() -> None:
    body = "Bcc: victim@example.com\n\nhello"
    data = serialize(simple(body=body))
    parsed = parse_bytes(data)
    assert parsed["Bcc"] is None
    assert same_body(parsed.get_content(), body)


def test_empty_body_without_alternatives_is_empty_text_plain() -> None:
    parsed = parse(simple(body=""))
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().strip("\r\n") == ""


def test_encoding_attribute_sets_text_charset() -> None:
    msg = simple(body="café\n")
    msg.encoding = "iso-8859-1"
    parsed = parse(msg)
    assert parsed.get_content_charset() == "iso-8859-1"
    assert same_body(parsed.get_content(), "café\n")
    assert parsed.get_payload(decode=True).replace(b"\r\n", b"\n") == "café\n".encode("latin-1")


def test_default_charset_setting_is_used_when_encoding_is_none() -> None:
    mailpost.configure(DEFAULT_CHARSET="iso-8859-1")
    parsed = parse(simple(body="café\n"))
    assert parsed.get_content_charset() == "iso-8859-1"
    assert same_body(parsed.get_content(), "café\n")


def test_encoding_applies_to_alternatives_too() -> None:
    msg = multi(body="café\n")
    msg.encoding = "iso-8859-1"
    msg.attach_alternative("<p>café</p>", "text/html")
    parsed = parse(msg)
    html = find(parsed, "text/html")[0]
    assert html.get_content_charset() == "iso-8859-1"
    assert same_body(html.get_content(), "<p>café</p>")


def test_non_ascii_subject_with_latin1_encoding_round_trips() -> None:
    msg = simple(subject="Résumé reçu")
    msg.encoding = "iso-8859-1"
    assert parse(msg)["Subject"] == "Résumé reçu"


# ---------------------------------------------------------------- content_subtype


def test_content_subtype_html_makes_body_text_html() -> None:
    msg = simple(body="<p>hello</p>")
    msg.content_subtype = "html"
    parsed = parse(msg)
    assert parsed.get_content_type() == "text/html"
    assert same_body(parsed.get_content(), "<p>hello</p>")


# ---------------------------------------------------------------- alternatives


def test_body_and_html_alternative_make_multipart_alternative() -> None:
    msg = multi()
    msg.attach_alternative("<p>HTML</p>", "text/html")
    parsed = parse(msg)
    assert parsed.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in parsed.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    assert same_body(find(parsed, "text/plain")[0].get_content(), "Plain text.\n")
    assert same_body(find(parsed, "text/html")[0].get_content(), "<p>HTML</p>")


def test_alternative_subtype_attribute_is_used() -> None:
    msg = multi()
    msg.alternative_subtype = "related"
    msg.attach_alternative("<p>x</p>", "text/html")
    assert parse(msg).get_content_type() == "multipart/related"


def test_alternatives_from_constructor_are_rendered() -> None:
    msg = multi(alternatives=[("<p>ctor</p>", "text/html")])
    assert same_body(find(parse(msg), "text/html")[0].get_content(), "<p>ctor</p>")


def test_empty_body_is_omitted_when_alternatives_exist() -> None:
    msg = multi(body="")
    msg.attach_alternative("<p>Only HTML</p>", "text/html")
    parsed = parse(msg)
    assert find(parsed, "text/plain") == []
    html = find(parsed, "text/html")
    assert len(html) == 1
    assert same_body(html[0].get_content(), "<p>Only HTML</p>")


def test_non_ascii_alternative_round_trips_7bit_clean() -> None:
    msg = multi(body="plain é")
    msg.attach_alternative("<p>ünïcødé ✓</p>", "text/html")
    data = serialize(msg)
    assert data.isascii()
    assert same_body(find(parse_bytes(data), "text/html")[0].get_content(), "<p>ünïcødé ✓</p>")


def test_several_alternatives_keep_their_order() -> None:
    msg = multi()
    msg.attach_alternative("<p>h</p>", "text/html")
    msg.attach_alternative("# md", "text/markdown")
    kinds = [p.get_content_type() for p in parse(msg).iter_parts()]
    assert kinds == ["text/plain", "text/html", "text/markdown"]


# ---------------------------------------------------------------- attachments


def test_attachment_makes_multipart_mixed_with_body_first() -> None:
    msg = simple(attachments=[("data.bin", b"\x00\x01\x02", "application/octet-stream")])
    parsed = parse(msg)
    assert parsed.get_content_type() == "multipart/mixed"
    parts = list(parsed.iter_parts())
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_disposition() == "attachment"
    assert parts[1].get_filename() == "data.bin"
    assert parts[1].get_payload(decode=True) == b"\x00\x01\x02"


def test_mixed_subtype_attribute_is_used() -> None:
    msg = simple(attachments=[("a.bin", b"x", "application/octet-stream")])
    msg.mixed_subtype = "related"
    assert parse(msg).get_content_type() == "multipart/related"


def test_alternatives_and_attachments_nest_alternative_in_mixed() -> None:
    msg = multi()
    msg.attach_alternative("<p>x</p>", "text/html")
    msg.attach("a.pdf", b"%PDF-1.4 \x00\xff", "application/pdf")
    parsed = parse(msg)
    assert parsed.get_content_type() == "multipart/mixed"
    kinds = [p.get_content_type() for p in parsed.iter_parts()]
    assert kinds == ["multipart/alternative", "application/pdf"]


def test_binary_attachment_bytes_arrive_exactly() -> None:
    content = bytes(range(256)) * 20
    msg = simple()
    msg.attach("blob.dat", content, "application/x-blob")
    (att,) = attachments_of(parse(msg))
    assert att.get_content_type() == "application/x-blob"
    assert att.get_payload(decode=True) == content


def test_attach_guessed_mimetype_is_used_on_the_wire() -> None:
    msg = simple()
    msg.attach("photo.jpg", b"\xff\xd8\xff\xe0")
    msg.attach("weird.unknownext", b"\x00")
    kinds = [a.get_content_type() for a in attachments_of(parse(msg))]
    assert kinds == ["image/jpeg", "application/octet-stream"]


def test_text_attachment_str_arrives_exactly() -> None:
    msg = simple()
    msg.attach("notes.txt", "line one\r\nline two\r\n", "text/plain")
    (att,) = attachments_of(parse(msg))
    assert att.get_content_type() == "text/plain"
    assert att.get_payload(decode=True) == b"line one\r\nline two\r\n"


def test_text_attachment_without_final_newline_arrives_exactly() -> None:
    msg = simple()
    msg.attach("partial.txt", "no newline at the end", "text/plain")
    (att,) = attachments_of(parse(msg))
    assert att.get_payload(decode=True) == b"no newline at the end"


def test_text_attachment_with_bare_lf_arrives_byte_exact() -> None:
    msg = simple()
    msg.attach("unix.txt", "a\nb\nc\n", "text/plain")
    (att,) = attachments_of(parse(msg))
    assert att.get_payload(decode=True) == b"a\nb\nc\n"


def test_non_ascii_text_attachment_is_not_8bit() -> None:
    msg = simple()
    msg.attach("greek.txt", "αβγ δ\r\n", "text/plain")
    data = serialize(msg)
    assert data.isascii()
    (att,) = attachments_of(parse_bytes(data))
    assert att.get_payload(decode=True) == "αβγ δ\r\n".encode()


def test_text_attachment_bytes_decoded_as_utf8_stay_text() -> None:
    msg = simple()
    msg.attach("utf8.txt", "żółw\n".encode(), "text/plain")
    (att,) = attachments_of(parse(msg))
    assert att.get_content_type() == "text/plain"
    assert att.get_payload(decode=True) == "żółw\n".encode()


def test_text_attachment_bytes_not_utf8_become_octet_stream_unchanged() -> None:
    msg = simple()
    msg.attach("latin.txt", b"caf\xe9\x00\xff", "text/plain")
    (att,) = attachments_of(parse(msg))
    assert att.get_content_type() == "application/octet-stream"
    assert att.get_payload(decode=True) == b"caf\xe9\x00\xff"


def test_attach_file_arrives_with_basename_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "map.png"
    path.write_bytes(b"\x89PNG\x00data")
    msg = simple()
    msg.attach_file(path)
    (att,) = attachments_of(parse(msg))
    assert att.get_filename() == "map.png"
    assert att.get_content_type() == "image/png"
    assert att.get_payload(decode=True) == b"\x89PNG\x00data"


def test_mimepart_attachment_is_attached_directly_with_its_headers() -> None:
    part = MIMEPart()
    part.set_content(b"%PDF", maintype="application", subtype="pdf", filename="x.pdf")
    part["X-Part-Tag"] = "kept"
    msg = simple()
    msg.attach(part)
    (att,) = attachments_of(parse(msg))
    assert att["X-Part-Tag"] == "kept"
    assert att.get_filename() == "x.pdf"
    assert att.get_payload(decode=True) == b"%PDF"


def test_non_ascii_attachment_filename_uses_rfc2231() -> None:
    msg = simple()
    msg.attach("résumé 履歴書.pdf", b"%PDF", "application/pdf")
    data = serialize(msg)
    assert data.isascii()
    assert b"filename*" in data
    (att,) = attachments_of(parse_bytes(data))
    assert att.get_filename() == "résumé 履歴書.pdf"


def test_long_attachment_filename_round_trips_within_line_limit() -> None:
    name = "a" * 400 + "-" + "ü" * 300 + ".txt"
    msg = simple()
    msg.attach(name, b"x", "application/octet-stream")
    data = serialize(msg)
    assert long_lines(data) == []
    (att,) = attachments_of(parse_bytes(data))
    assert att.get_filename() == name


def test_attachment_filename_with_quotes_and_semicolons_round_trips() -> None:
    name = 'weird "name"; x=1 \\ end.bin'
    msg = simple()
    msg.attach(name, b"x", "application/octet-stream")
    (att,) = attachments_of(parse(msg))
    assert att.get_filename() == name


# ---------------------------------------------------------------- message/rfc822


def test_attach_mailpost_message_as_rfc822() -> None:
    inner = simple(subject="Inner subject", body="inner body")
    msg = simple()
    msg.attach("forwarded.eml", inner, "message/rfc822")
    parsed = parse(msg)
    (rfc,) = find(parsed, "message/rfc822")
    (attached,) = rfc.get_payload()
    assert attached["Subject"] == "Inner subject"
    assert same_body(attached.get_content(), "inner body")


def test_attach_stdlib_email_message_as_rfc822() -> None:
    inner = email.message.EmailMessage()
    inner["Subject"] = "stdlib inner"
    inner.set_content("stdlib body\n")
    msg = simple()
    msg.attach(None, inner, "message/rfc822")
    (rfc,) = find(parse(msg), "message/rfc822")
    assert rfc.get_payload()[0]["Subject"] == "stdlib inner"


def test_attach_compat32_message_as_rfc822() -> None:
    inner = email.message_from_string("Subject: old style\n\nold body\n")
    msg = simple()
    msg.attach("old.eml", inner, "message/rfc822")
    (rfc,) = find(parse(msg), "message/rfc822")
    (attached,) = rfc.get_payload()
    assert attached["Subject"] == "old style"
    assert same_body(attached.get_content(), "old body\n")


# ---------------------------------------------------------------- inline / related


def test_inline_image_with_content_id_is_related_to_html_alternative() -> None:
    msg = multi()
    msg.attach(png_part("<logo@example.com>"))
    msg.attach_alternative('<img src="cid:logo@example.com">', "text/html")
    parsed = parse(msg)
    (related,) = find(parsed, "multipart/related")
    kinds = [p.get_content_type() for p in related.iter_parts()]
    assert kinds == ["text/html", "image/png"]
    image = find(parsed, "image/png")[0]
    assert image["Content-ID"] == "<logo@example.com>"
    assert image.get_payload(decode=True) == b"\x89PNG\r\n\x1a\n\x00\x00binary"
    assert find(parsed, "text/plain")
    plain = find(parsed, "text/plain")[0]
    assert parent_of(parsed, plain).get_content_type() == "multipart/alternative"


def test_inline_image_is_related_to_html_body_when_content_subtype_is_html() -> None:
    msg = simple(body='<img src="cid:logo@example.com">')
    msg.content_subtype = "html"
    msg.attach(png_part())
    parsed = parse(msg)
    (related,) = find(parsed, "multipart/related")
    kinds = [p.get_content_type() for p in related.iter_parts()]
    assert kinds == ["text/html", "image/png"]


def test_regular_attachments_stay_in_mixed_next_to_related() -> None:
    msg = multi()
    msg.attach(png_part())
    msg.attach("report.pdf", b"%PDF", "application/pdf")
    msg.attach_alternative('<img src="cid:logo@example.com">', "text/html")
    parsed = parse(msg)
    assert parsed.get_content_type() == "multipart/mixed"
    pdf = find(parsed, "application/pdf")[0]
    assert parent_of(parsed, pdf) is parsed
    image = find(parsed, "image/png")[0]
    assert parent_of(parsed, image).get_content_type() == "multipart/related"


# ---------------------------------------------------------------- wire sanity


def test_wire_is_7bit_and_lines_within_998_for_a_rich_message() -> None:
    msg = multi(subject="Ünïcødé " * 40, body="Ä" * 3000)
    msg.attach_alternative("<p>" + "€" * 3000 + "</p>", "text/html")
    msg.attach("ñ" * 200 + ".txt", "ö" * 2000, "text/plain")
    data = serialize(msg)
    assert data.isascii()
    assert long_lines(data) == []
    assert b"\x00" not in data


def test_every_leaf_part_declares_transfer_encoding_or_is_7bit() -> None:
    msg = multi(body="é")
    msg.attach_alternative("<p>ü</p>", "text/html")
    msg.attach("a.bin", b"\xff" * 10, "application/octet-stream")
    for leaf in walk_leaves(parse(msg)):
        cte = (leaf["Content-Transfer-Encoding"] or "7bit").lower()
        assert cte in ("7bit", "quoted-printable", "base64")


def test_rendering_does_not_change_the_message_attributes() -> None:
    headers = {"X-Tag": "1", "To": "shown@example.com"}
    msg = multi(cc=["c@example.com"], bcc=["b@example.com"], headers=dict(headers))
    msg.attach_alternative("<p>x</p>", "text/html")
    msg.attach("a.txt", "text", "text/plain")
    before = (msg.to[:], msg.cc[:], msg.bcc[:], list(msg.attachments), list(msg.alternatives))
    first = serialize(msg)
    msg.message()
    envelope(msg)
    second = serialize(msg)
    after = (msg.to, msg.cc, msg.bcc, msg.attachments, msg.alternatives)
    assert before == after
    assert msg.extra_headers == headers
    assert parse_bytes(first)["Subject"] == parse_bytes(second)["Subject"]
    assert len(list(parse_bytes(first).walk())) == len(list(parse_bytes(second).walk()))


def test_default_from_email_renders_and_is_the_envelope_sender() -> None:
    msg = EmailMessage("s", "b", to=["to@example.com"])
    assert envelope(msg)[0] == "webmaster@localhost"
    assert parse(msg)["From"] == "webmaster@localhost"


# ----------------------------------------------- Django's structure and message() view


def _shape(part: email.message.Message) -> object:
    if part.is_multipart():
        return (part.get_content_type(), [_shape(p) for p in part.get_payload()])  # type: ignore[union-attr]
    return part.get_content_type()


def test_every_text_part_ends_with_a_newline_and_an_empty_body_is_one() -> None:
    assert EmailMessage("s", "", "f@example.com", ["t@example.com"]).message().get_payload() == "\n"
    msg = EmailMultiAlternatives("s", "Body", "f@example.com", ["t@example.com"])
    msg.attach_alternative("<p>Body</p>", "text/html")
    assert [p.get_payload() for p in msg.message().iter_parts()] == ["Body\n", "<p>Body</p>\n"]
    assert serialize(msg).count(b"Body\r\n") == 1


def test_empty_body_with_one_alternative_keeps_multipart_alternative() -> None:
    msg = EmailMultiAlternatives("s", "", "f@example.com", ["t@example.com"])
    msg.attach_alternative("<p>Hi</p>", "text/html")
    assert _shape(msg.message()) == ("multipart/alternative", ["text/html"])


def test_empty_body_with_only_attachments_gains_no_text_part() -> None:
    msg = EmailMessage("s", "", "f@example.com", ["t@example.com"])
    msg.attach("a.pdf", b"%PDF", "application/pdf")
    assert _shape(msg.message()) == ("multipart/mixed", ["application/pdf"])
    assert msg.message()["MIME-Version"] == "1.0"


def test_message_view_is_8bit_and_lf_the_wire_stays_7bit() -> None:
    msg = EmailMessage("s", "Grüße\nteam", "f@example.com", ["t@example.com"])
    view = msg.message()
    assert view["Content-Transfer-Encoding"] == "8bit"
    assert b"\r" not in view.as_bytes()
    assert view.get_content() == "Grüße\nteam\n"
    assert serialize(msg).isascii()
    seven = msg.message(policy=email.policy.default.clone(cte_type="7bit"))
    assert seven["Content-Transfer-Encoding"] in {"quoted-printable", "base64"}
    assert seven.get_content() == "Grüße\nteam\n"


def test_smtputf8_policy_view_writes_utf8_headers() -> None:
    msg = EmailMessage("Sübject", "b", "Jö <f@example.com>", ["t@example.com"])
    data = msg.message(policy=email.policy.SMTPUTF8).as_bytes()
    assert "Subject: Sübject\r\n".encode() in data
    assert "From: Jö <f@example.com>\r\n".encode() in data
    assert b"=?utf-8?" not in msg.message(policy=email.policy.SMTPUTF8).as_bytes()


def test_base64_bodies_end_with_a_line_break() -> None:
    msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"])
    msg.attach("a.bin", b"\x00\x01", "application/octet-stream")
    (part,) = [p for p in msg.message().walk() if p.get_filename()]
    assert part.get_payload() == "AAE=\n"


def test_datetime_header_is_written_as_an_rfc5322_date() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"], headers={"Date": when})
    assert msg.message()["Date"] == "Mon, 06 May 2024 07:08:09 +0000"
    assert msg.message()["Date"].datetime == when


def test_generated_utc_date_ends_plus_0000() -> None:
    """UTC is a known zone: "+0000" (RFC 5322 3.3), not "-0000" (zone unknown)."""
    mailpost.configure(EMAIL_USE_LOCALTIME=False)
    date = EmailMessage("s", "b", "f@example.com", ["t@example.com"]).message()["Date"]
    assert date.endswith(" +0000")


def test_crlf_in_headers_raises_when_the_message_is_built_not_before() -> None:
    msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"], headers={"X-A": "a\r\nB: c"})
    assert msg.extra_headers == {"X-A": "a\r\nB: c"}
    with pytest.raises(BadHeaderError, match=r"^Header values may not contain linefeed") as info:
        msg.message()
    assert isinstance(info.value, ValueError)
    assert "X-A" in str(info.value)


def test_attachments_set_directly_get_the_normalisation_of_attach() -> None:
    msg = EmailMessage("s", "b", "f@example.com", ["t@example.com"])
    msg.attachments = [
        ("notes.txt", "héllo".encode(), "text/plain"),
        ("raw.txt", b"\xff\xfe", "text/plain"),
        ("guess.pdf", b"%PDF", None),
    ]
    parts = [p for p in msg.message().walk() if p.get_filename()]
    seen = [(p.get_content_type(), p.get_content_charset()) for p in parts]
    assert seen == [("text/plain", "utf-8"), ("application/octet-stream", None),
                    ("application/pdf", None)]  # fmt: skip
    assert parts[0].get_content() == "héllo"
    assert parts[1].get_payload(decode=True) == b"\xff\xfe"
    msg.attachments = ["not a triple"]
    with pytest.raises(TypeError, match="attachments: each entry must be"):
        msg.message()
