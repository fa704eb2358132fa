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
