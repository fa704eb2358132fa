"""Messages the preview tests capture: a newsletter with a cid image and a file, a hostile
message full of script payloads, and a plain-text note."""

from __future__ import annotations

import struct
import zlib
from email.message import MIMEPart

import mailpost

ATTACHMENT = bytes(range(256)) * 4 + b"end of report\n"

HOSTILE_HTML = """\
<html><head><title>hostile</title></head><body>
<h1 id="payload-heading">Payload message</h1>
<script>
  document.body.setAttribute("data-ran", "script");
  try { window.top.pwned = 1; } catch (e) {}
  try { window.top.document.title = "pwned"; } catch (e) {}
  try { localStorage.setItem("pwned", "1"); } catch (e) {}
  try { window.parent.localStorage.setItem("pwned", "1"); } catch (e) {}
</script>
<img src="does-not-exist.png" alt="x"
     onerror="document.body.setAttribute('data-ran','onerror');window.top.pwned=2;top.document.title='pwned';localStorage.setItem('pwned','2')">
<svg onload="window.top.pwned=3"><rect width="1" height="1"/></svg>
<iframe srcdoc="<script>window.top.pwned=4</script>"></iframe>
<a id="js-link" href="javascript:window.top.pwned=5">a javascript: link</a>
</body></html>
"""


def png(width: int = 60, height: int = 30, rgb: tuple[int, int, int] = (58, 102, 214)) -> bytes:
    """A valid solid-colour PNG, built by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return (
            struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def newsletter() -> mailpost.EmailMultiAlternatives:
    message = mailpost.EmailMultiAlternatives(
        subject="Your December report",
        body="Hello Ann,\n\nYour report is attached.\n\n-- The Example team",
        from_email="Example Reports <reports@example.com>",
        to=["Ann <ann@example.com>"],
        headers={"List-Unsubscribe": "<https://example.com/unsubscribe/ann>"},
    )
    message.attach_alternative(
        '<html><body style="font-family:sans-serif">'
        '<h1 id="greeting" style="color:#3a66d6">Hello Ann</h1>'
        '<p id="intro">Your <b>December report</b> is attached.</p>'
        '<p><img id="logo" src="cid:logo@example.com" alt="Example logo" width="60" height="30">'
        "</p>"
        '<p><img id="tracker" src="https://tracker.example.com/open.gif" alt=""></p>'
        '<p><a href="https://example.com/account">Your account</a></p>'
        "</body></html>",
        "text/html",
    )

    image = MIMEPart()
    image.set_content(
        png(), "image", "png", disposition="inline", filename="logo.png", cid="<logo@example.com>"
    )
    message.attach(image)
    message.attach("report.bin", ATTACHMENT, "application/octet-stream")
    return message


def hostile() -> mailpost.EmailMultiAlternatives:
    message = mailpost.EmailMultiAlternatives(
        subject="<img src=x onerror=window.top.pwned=6> hostile subject",
        body="<script>window.top.pwned=7</script> text part",
        from_email='"<script>window.top.pwned=8</script>" <evil@example.com>',
        to=["victim@example.com"],
    )
    message.attach_alternative(HOSTILE_HTML, "text/html")
    return message


def note(subject: str = "A plain note") -> mailpost.EmailMessage:
    return mailpost.EmailMessage(
        subject=subject, body="Just text.", from_email="bob@example.com", to=["carol@example.com"]
    )
