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
