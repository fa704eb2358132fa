"""Differential scenarios: composing messages, the ``message()`` view, addresses, headers."""

from __future__ import annotations

import email
import email.policy
from typing import Any

from diff_harness import Side, normalize, scenario

LOCMEM = {"EMAIL_BACKEND": "{backends}.locmem.EmailBackend"}
TO = ["to@example.com"]


def _view(side: Side, msg: Any) -> Any:
    """What a test inspecting ``message()`` sees: the tree, and the generated text."""
    m = msg.message()
    return {"tree": normalize(m), "lines": _lines(m.as_bytes())}


def _structure(msg: Any) -> Any:
    """``message()``'s tree without the top MIME-Version, which Django leaves out when the
    body is empty (see ``empty_body_multipart_has_mime_version``)."""
    tree = normalize(msg.message())
    tree["headers"] = [h for h in tree["headers"] if h[0] != "MIME-Version"]
    return tree


def _parts(msg: Any) -> list[Any]:
    """Each leaf of ``message()`` as a program reads it: type, name, charset, content.
    (How a text attachment is transferred is a deliberate difference, see
    ``text_attachment_is_kept_byte_for_byte``; what it decodes to is not.)"""
    out = []
    for part in msg.message().walk():
        if part.is_multipart():
            out.append(part.get_content_type())
            continue
        content = part.get_content() if part.get_content_maintype() == "text" else None
        out.append([part.get_content_type(), part.get_filename(), part.get_content_charset(),
                    content if content is not None else part.get_payload(decode=True)])  # fmt: skip
    return out


def _lines(data: bytes) -> list[str]:
    """The generated text's line endings and body lines; boundaries vary by run, and
    inner MIME-Version lines are Django's quirk (the harness ignores them too)."""
    head, _, body = data.partition(b"\n\n")
    skip = (b"--", b"MIME-Version:")
    return [repr(b"\r" in head)] + [repr(ln) for ln in body.split(b"\n") if not ln.startswith(skip)]


@scenario(LOCMEM)
def text_body_ends_with_newline(side: Side) -> Any:
    return _view(side, side.mail.EmailMessage("Subject", "Body", "from@example.com", TO))


@scenario(LOCMEM)
def text_body_newlines_normalized(side: Side) -> Any:
    body = "one\r\ntwo\rthree\n\nfour\n"
    return _view(side, side.mail.EmailMessage("Subject", body, "from@example.com", TO))


@scenario(LOCMEM)
def html_alternative_ends_with_newline(side: Side) -> Any:
    msg = side.mail.EmailMultiAlternatives("Subject", "Body", "from@example.com", TO)
    msg.attach_alternative("<p>Body</p>", "text/html")
    return _view(side, msg)


@scenario(LOCMEM)
def sent_text_body_ends_with_newline(side: Side) -> Any:
    return side.mail.send_mail("Subject", "Line one\nLine two", "from@example.com", TO)


@scenario()
def wire_text_body_ends_with_crlf(side: Side) -> Any:
    settings = {
        "EMAIL_BACKEND": side.backend("smtp"),
        "EMAIL_HOST": side.smtp.host,
        "EMAIL_PORT": side.smtp.port,
    }
    from django.test import override_settings

    with override_settings(**settings):
        side.mail.send_mail("Subject", "Body", "from@example.com", TO)
    raw = side.smtp.messages[0].data
    body = raw.split(b"\r\n\r\n", 1)[1]
    return {"body": repr(body), "parsed": side.received()}


@scenario(LOCMEM)
def message_view_as_bytes_has_lf(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "a\nb", "from@example.com", TO).message()
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    return {"crlf": b"\r\n" in msg.as_bytes(), "payload": parsed.get_payload()}


# -- the message() view ------------------------------------------------------------------


@scenario(LOCMEM)
def empty_body_is_one_newline(side: Side) -> Any:
    return _view(side, side.mail.EmailMessage("Subject", "", "from@example.com", TO))


@scenario(LOCMEM)
def empty_body_with_only_an_alternative_keeps_the_wrapper(side: Side) -> Any:
    msg = side.mail.EmailMultiAlternatives("Subject", "", "from@example.com", TO)
    msg.attach_alternative("<p>Hi</p>", "text/html")
    return {"tree": _structure(msg), "lines": _lines(msg.message().as_bytes())}


@scenario(
    LOCMEM,
    deliberate="Django's message() lacks MIME-Version at the top when the body is empty and "
    "alternatives or attachments carry the message; RFC 2045 requires it, mailpost keeps it",
)
def empty_body_multipart_has_mime_version(side: Side) -> Any:
    msg = side.mail.EmailMultiAlternatives("Subject", "", "from@example.com", TO)
    msg.attach_alternative("<p>Hi</p>", "text/html")
    return msg.message()["MIME-Version"]


@scenario(LOCMEM)
def empty_body_with_alternative_and_attachment(side: Side) -> Any:
    msg = side.mail.EmailMultiAlternatives("Subject", "", "from@example.com", TO)
    msg.attach_alternative("<p>Hi</p>", "text/html")
    msg.attach("data.bin", b"\x00\x01\x02", "application/octet-stream")
    return _structure(msg)


@scenario(LOCMEM)
def empty_body_with_only_attachments_has_no_text_part(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "", "from@example.com", TO)
    msg.attach("data.bin", b"\x00\x01\x02", "application/octet-stream")
    msg.attach("report.pdf", b"%PDF-1.4 ...", "application/pdf")
    return _structure(msg)


@scenario(LOCMEM)
def non_ascii_text_is_8bit_in_the_view(side: Side) -> Any:
    msg = side.mail.EmailMultiAlternatives("Sübject", "Grüße,\nthe team", "from@example.com", TO)
    msg.attach_alternative("<p>Grüße</p>", "text/html")
    return _view(side, msg)


@scenario(LOCMEM)
def latin1_text_is_8bit_in_the_view(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "grüß", "from@example.com", TO)
    msg.encoding = "iso-8859-1"
    return _view(side, msg)


@scenario(LOCMEM)
def smtp_policy_view(side: Side) -> Any:
    msg = side.mail.EmailMessage("Sübject", "héllo", "Jö <from@example.com>", TO)
    m = msg.message(policy=email.policy.SMTP)
    return {"tree": normalize(m), "crlf": b"\r\n" in m.as_bytes()}


@scenario(LOCMEM)
def smtputf8_policy_writes_utf8_headers(side: Side) -> Any:
    msg = side.mail.EmailMessage(
        "Sübject", "héllo", "Jö <from@example.com>", ["Zoë <to@example.com>"],
        headers={"X-Note": "Ça va"},
    )  # fmt: skip
    data = msg.message(policy=email.policy.SMTPUTF8).as_bytes()
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    keep = (b"Subject:", b"From:", b"To:", b"X-Note:", b"Content-Transfer-Encoding:")
    return sorted(repr(line) for line in head if line.startswith(keep))


@scenario(LOCMEM)
def seven_bit_policy_view(side: Side) -> Any:
    policy = email.policy.default.clone(cte_type="7bit")
    msg = side.mail.EmailMessage("Subject", "Grüße", "from@example.com", TO)
    m = msg.message(policy=policy)
    return {"cte": m["Content-Transfer-Encoding"], "content": m.get_content()}


@scenario(
    LOCMEM,
    deliberate="message(policy=compat32) (and HTTP) works in mailpost; Django 6.1 raises "
    "AttributeError/TypeError from the stdlib's content manager",
)
def compat32_policy_view(side: Side) -> Any:
    m = side.mail.EmailMessage("Sübject", "héllo", "from@example.com", TO).message(
        policy=email.policy.compat32
    )
    return {"subject": m["Subject"], "payload": m.get_payload(decode=True)}


@scenario(
    LOCMEM,
    deliberate="text attachments arrive byte for byte; Django rewrites their line endings "
    "and adds a final newline",
)
def text_attachment_is_kept_byte_for_byte(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO)
    msg.attach("data.csv", "a,b\r\n1,2", "text/csv")
    return [p.get_payload(decode=True) for p in msg.message().walk() if p.get_filename()]


@scenario(
    LOCMEM,
    deliberate="text with lines of 79 to 998 octets stays 7bit/8bit (RFC 5322's limit); "
    "Django's view switches to quoted-printable or base64 above 78",
)
def long_lines_stay_7bit(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "x" * 200, "from@example.com", TO)
    return msg.message()["Content-Transfer-Encoding"]


# -- addresses and headers ---------------------------------------------------------------


@scenario(LOCMEM)
def local_part_only_addresses(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", "django", ["root", "Root <root>"])
    return {"recipients": msg.recipients(), "sent": msg.send()}


@scenario()
def local_part_only_addresses_over_smtp(side: Side) -> Any:
    from django.test import override_settings

    settings = {
        "EMAIL_BACKEND": side.backend("smtp"),
        "EMAIL_HOST": side.smtp.host,
        "EMAIL_PORT": side.smtp.port,
    }
    with override_settings(**settings):
        sent = side.mail.send_mail("Subject", "Body", "django", ["root"])
    return {"sent": sent, "received": side.received()}


@scenario(LOCMEM)
def aware_datetime_date_header(side: Side) -> Any:
    import datetime

    when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO, headers={"Date": when})
    return msg.message()["Date"]


@scenario(LOCMEM)
def naive_datetime_date_header(side: Side) -> Any:
    import datetime

    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO, headers={"Date": when})
    return msg.message()["Date"]


@scenario({**LOCMEM, "EMAIL_USE_LOCALTIME": False})
def generated_utc_date_is_plus_0000(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO)
    return msg.message()["Date"][-5:]


@scenario(LOCMEM)
def crlf_in_headers_is_accepted_by_the_constructor(side: Side) -> Any:
    msg = side.mail.EmailMessage(
        "Subject", "Body", "from@example.com", TO, headers={"X-Note": "a\r\nBcc: x@example.com"}
    )
    return msg.extra_headers


@scenario(LOCMEM)
def crlf_in_headers_raises_at_message(side: Side) -> Any:
    msg = side.mail.EmailMessage(
        "Subject", "Body", "from@example.com", TO, headers={"X-Note": "a\r\nBcc: x@example.com"}
    )
    return msg.message()


@scenario(LOCMEM)
def crlf_in_headers_raises_at_send(side: Side) -> Any:
    msg = side.mail.EmailMessage(
        "Subject", "Body", "from@example.com", TO, headers={"X-Note": "a\nBcc: x@example.com"}
    )
    return msg.send()


@scenario(LOCMEM)
def newline_in_subject_raises_at_message(side: Side) -> Any:
    return side.mail.EmailMessage("Sub\nject", "Body", "from@example.com", TO).message()


def _attachments_seen(msg: Any) -> list[Any]:
    out = []
    for part in msg.message().walk():
        if part.get_filename():
            data = part.get_payload(decode=True)
            # Django adds a final newline to text attachments (text_attachment_is_kept_...)
            out.append([part.get_content_type(), part.get_content_charset(), data.rstrip(b"\n")])
    return out


@scenario(LOCMEM)
def attachments_set_directly_are_normalised(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO)
    msg.attachments = [
        side.mail.EmailAttachment("notes.txt", "héllo wörld".encode(), "text/plain"),
        side.mail.EmailAttachment("raw.txt", b"\xff\xfe\x00", "text/plain"),
        ("data.bin", b"\x00\x01", "application/octet-stream"),
    ]
    return _attachments_seen(msg)


@scenario(LOCMEM)
def positional_arguments_warn(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO, ["bcc@example.com"])
    return msg.bcc


@scenario(LOCMEM)
def positional_arguments_of_multi_alternatives_warn(side: Side) -> Any:
    alternatives = [("<p>Hi</p>", "text/html")]
    msg = side.mail.EmailMultiAlternatives(
        "Subject", "Body", "from@example.com", TO, None, None, None, None, alternatives
    )
    return msg.alternatives


@scenario(LOCMEM)
def legacy_mime_attachment_warns(side: Side) -> Any:
    from email.mime.text import MIMEText

    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO)
    msg.attach(MIMEText("legacy"))
    return len(msg.attachments)


@scenario(LOCMEM)
def legacy_mime_attachment_in_constructor_warns(side: Side) -> Any:
    from email.mime.text import MIMEText

    msg = side.mail.EmailMessage(
        "Subject", "Body", "from@example.com", TO, attachments=[MIMEText("legacy")]
    )
    return len(msg.attachments)


@scenario()
def long_mixed_display_name_over_smtp(side: Side) -> Any:
    from django.test import override_settings

    name = "Dr. Jörg Müller-Lüdenscheidt von und zu Hohenzollern-Sigmaringen the Third of Many"
    settings = {
        "EMAIL_BACKEND": side.backend("smtp"),
        "EMAIL_HOST": side.smtp.host,
        "EMAIL_PORT": side.smtp.port,
    }
    with override_settings(**settings):
        side.mail.send_mail("Subject", "Body", "from@example.com", [f'"{name}" <to@example.com>'])
    parsed = email.message_from_bytes(side.smtp.messages[0].data, policy=email.policy.default)
    return [a.display_name for a in parsed["To"].addresses]


# -- the rest of the message API ---------------------------------------------------------


@scenario(LOCMEM)
def full_message_attributes(side: Side) -> Any:
    msg = side.mail.EmailMessage(
        "Subject", "Body", "From <from@example.com>", ["a@example.com", "B <b@example.com>"],
        bcc=["hidden@example.com"], cc=["c@example.com"], reply_to=["r@example.com"],
        headers={"X-Tag": "1", "Message-ID": "<fixed@example.com>"},
    )  # fmt: skip
    return {"recipients": msg.recipients(), "msg": normalize(msg), "sent": msg.send()}


@scenario(LOCMEM)
def headers_override_to_and_from(side: Side) -> Any:
    msg = side.mail.EmailMessage(
        "Subject", "Body", "from@example.com", TO,
        headers={"To": "Shown <shown@example.com>", "From": "Other <other@example.com>",
                 "Reply-To": "rr@example.com", "Cc": "cc@example.com"},
    )  # fmt: skip
    return {"recipients": msg.recipients(), "view": normalize(msg.message())}


@scenario(LOCMEM)
def html_content_subtype(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "<p>Hi</p>", "from@example.com", TO)
    msg.content_subtype = "html"
    return _view(side, msg)


@scenario(
    LOCMEM,
    deliberate="mixed_subtype / alternative_subtype still work (Django <= 5.2 projects set "
    "them); Django 6.1 raises AttributeError",
)
def mixed_subtype(side: Side) -> Any:
    msg = side.mail.EmailMultiAlternatives("Subject", "Body", "from@example.com", TO)
    msg.mixed_subtype = "related"
    msg.attach_alternative("<p>Hi</p>", "text/html")
    msg.attach("a.bin", b"\x00", "application/octet-stream")
    return _structure(msg)


@scenario(LOCMEM)
def attach_text_and_binary(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO)
    msg.attach("notes.txt", "plain text\n", "text/plain")
    msg.attach("report.csv", "a,b\n1,2\n")
    msg.attach("image.png", b"\x89PNG\r\n\x1a\n", "image/png")
    msg.attach("raw.txt", b"\xff\xfe not utf-8", "text/plain")
    msg.attach("utf8.txt", "héllo\n".encode(), "text/plain")
    return {"attachments": normalize(msg.attachments), "view": _parts(msg)}


@scenario(LOCMEM)
def attach_file(side: Side) -> Any:
    path = side.tmp / "hello.txt"
    path.write_text("hello file\n")
    binary = side.tmp / "data.bin"
    binary.write_bytes(b"\x00\x01\x02")
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO)
    msg.attach_file(path)
    msg.attach_file(str(binary), "application/x-thing")
    return {"attachments": normalize(msg.attachments), "view": _parts(msg)}


@scenario(LOCMEM)
def attach_mimepart(side: Side) -> Any:
    from email.message import MIMEPart

    part = MIMEPart()
    part.set_content(b"GIF89a", maintype="image", subtype="gif", disposition="inline")
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO)
    msg.attach(part)
    return _structure(msg)


@scenario(LOCMEM)
def attach_rfc822_message(side: Side) -> Any:
    inner = side.mail.EmailMessage("Inner", "Inner body", "i@example.com", ["j@example.com"])
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO)
    msg.attach("fwd.eml", inner.message(), "message/rfc822")
    view = msg.message()
    (att,) = [p for p in view.walk() if p.get_content_type() == "message/rfc822"]
    fwd = att.get_payload()[0]
    return {"inner_subject": fwd["Subject"], "inner_body": fwd.get_content()}


@scenario(LOCMEM)
def attach_errors(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", TO)
    out = []
    for args in [("a.txt", None, "text/plain"), (None, None, None)]:
        try:
            msg.attach(*args)
            out.append("ok")
        except Exception as exc:
            out.append(type(exc).__name__)
    return out


@scenario(LOCMEM)
def body_contains(side: Side) -> Any:
    msg = side.mail.EmailMultiAlternatives("Subject", "I am content", "from@example.com", TO)
    before = msg.body_contains("content")
    msg.attach_alternative("<p>I am content</p>", "text/html")
    msg.attach_alternative(b"\x00binary", "application/octet-stream")
    return [before, msg.body_contains("content"), msg.body_contains("<p>")]


@scenario(LOCMEM)
def make_msgid_shapes(side: Side) -> Any:
    make = side.module("message").make_msgid if side.django else side.mail.make_msgid
    return [
        make(domain="example.com").endswith("@example.com>"),
        "tag" in make("tag", domain="example.com"),
        make().startswith("<"),
    ]


@scenario(LOCMEM)
def named_tuples(side: Side) -> Any:
    msg = side.mail.EmailMultiAlternatives("Subject", "Body", "from@example.com", TO)
    msg.attach("a.txt", "x", "text/plain")
    msg.attach_alternative("<p>x</p>", "text/html")
    att, alt = msg.attachments[0], msg.alternatives[0]
    return [att.filename, att.content, att.mimetype, alt.content, alt.mimetype,
            side.mail.DEFAULT_ATTACHMENT_MIME_TYPE]  # fmt: skip


@scenario(LOCMEM)
def encoding_attribute(side: Side) -> Any:
    msg = side.mail.EmailMessage("Sübject", "Grüße", "from@example.com", TO)
    msg.encoding = "iso-8859-1"
    return _view(side, msg)


@scenario({**LOCMEM, "DEFAULT_CHARSET": "iso-8859-1"})
def default_charset_setting(side: Side) -> Any:
    return _view(side, side.mail.EmailMessage("Subject", "Grüße", "from@example.com", TO))


@scenario({**LOCMEM, "DEFAULT_FROM_EMAIL": "Site <site@example.com>"})
def default_from_email(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", to=TO)
    return [msg.from_email, msg.message()["From"]]


@scenario(LOCMEM)
def to_must_be_a_list(side: Side) -> Any:
    return side.mail.EmailMessage("Subject", "Body", "from@example.com", "to@example.com")


@scenario(LOCMEM)
def lazy_strings(side: Side) -> Any:
    from django.utils.translation import gettext_lazy

    msg = side.mail.EmailMessage(
        gettext_lazy("Subject"), gettext_lazy("Body"), "from@example.com", TO
    )
    return _view(side, msg)


@scenario(LOCMEM)
def non_ascii_headers(side: Side) -> Any:
    msg = side.mail.EmailMessage(
        "Grüße aus Köln", "Body", "Jörg <from@example.com>", ["Zoë <to@bücher.example>"],
        headers={"X-Note": "Ça va"},
    )  # fmt: skip
    return {"view": normalize(msg.message()), "sent": msg.send()}


@scenario(LOCMEM)
def empty_recipients_are_dropped(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", "from@example.com", ["", "to@example.com"])
    return msg.recipients()


@scenario(LOCMEM)
def no_recipients_sends_nothing(side: Side) -> Any:
    return side.mail.EmailMessage("Subject", "Body", "from@example.com").send()


# -- non-ASCII local parts (RFC 6531/6532) --------------------------------------------------

NON_ASCII = {
    "from_email": "jörg@exämple.com",
    "to": ["Zoë <zoë@example.com>", "用户@例子.广告"],
    "cc": ["ça@example.com"],
    "reply_to": ["ответ@example.com"],
}


@scenario(LOCMEM)
def non_ascii_local_parts_in_the_view(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", **NON_ASCII)
    m = msg.message()
    addresses = {
        name: [(a.display_name, a.username, a.domain) for a in m[name].addresses]
        for name in ("From", "To", "Cc", "Reply-To")
    }
    return {"tree": normalize(m), "addresses": addresses, "recipients": msg.recipients()}


@scenario(LOCMEM)
def non_ascii_local_parts_in_the_smtp_policy_view(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", **NON_ASCII)
    head = msg.message(policy=email.policy.SMTP).as_bytes().split(b"\r\n\r\n", 1)[0]
    keep = (b"From:", b"To:", b"Cc:", b"Reply-To:", b" ")
    return [repr(line) for line in head.split(b"\r\n") if line.startswith(keep)]


@scenario(
    LOCMEM,
    deliberate="the SMTPUTF8 view keeps domains IDNA-encoded; Django writes them as Unicode",
)
def non_ascii_domain_in_the_smtputf8_view(side: Side) -> Any:
    msg = side.mail.EmailMessage("Subject", "Body", "jörg@exämple.com", ["a@bücher.example"])
    m = msg.message(policy=email.policy.SMTPUTF8)
    return [str(m["From"]), str(m["To"])]
