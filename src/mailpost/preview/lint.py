"""Deliverability lint: pure checks on a composed message, for the preview and ``mailpost lint``.

Each rule is a function ``(LintInput) -> list[Finding]``. Severity ``error`` is what big
mailbox providers reject or penalise (no Message-ID or Date, bulk mail without
List-Unsubscribe, header lines over RFC 5322's 998-octet limit); ``warning`` is what
degrades the reader's experience (no text part, images without alt, Gmail clipping, plain
``http:`` links, header lines over the recommended 78 octets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Literal

from mailpost.preview.parse import ParsedMessage, parse

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = [
    "GMAIL_CLIP_BYTES",
    "MANY_RECIPIENTS",
    "RULES",
    "Finding",
    "LintInput",
    "lint",
    "lint_message",
    "lint_parsed",
]

Severity = Literal["error", "warning"]

#: Gmail shows "[Message clipped]" past about 102 KB of HTML.
GMAIL_CLIP_BYTES = 102 * 1024
#: From this many To/Cc (or envelope) recipients on, a message counts as bulk mail.
MANY_RECIPIENTS = 10
_BULK_PRECEDENCE = {"bulk", "list", "junk"}


@dataclass(frozen=True)
class Finding:
    """One problem: which rule, how bad, and what to do about it."""

    rule: str
    severity: Severity
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "message": self.message}

    def __str__(self) -> str:
        return f"{self.severity}: {self.rule}: {self.message}"


@dataclass(frozen=True)
class LintInput:
    """What the rules look at: the wire bytes, the parsed message, envelope recipients."""

    data: bytes
    parsed: ParsedMessage
    recipients: Sequence[str] = ()


class _HTMLScan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images_without_alt: list[str] = []
        self.http_links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and "alt" not in values:
            self.images_without_alt.append(values.get("src") or "(no src)")
        for name in ("href", "src"):
            value = (values.get(name) or "").strip()
            if value.lower().startswith("http:"):
                self.http_links.append(value)


def _scan(parsed: ParsedMessage) -> _HTMLScan:
    scan = _HTMLScan()
    if parsed.html:
        scan.feed(parsed.html)
        scan.close()
    return scan


def _header(item: LintInput, name: str) -> str | None:
    value = item.parsed.message.get(name)
    return None if value is None else str(value)


def missing_text_part(item: LintInput) -> list[Finding]:
    """HTML mail should carry a text/plain alternative (text-only clients, spam filters)."""
    if item.parsed.html is not None and item.parsed.text is None:
        return [
            Finding(
                "missing-text-part",
                "warning",
                "HTML message without a text/plain part; add one (spam filters "
                "score HTML-only mail, text-only clients show nothing)",
            )
        ]
    return []


def _recipient_count(item: LintInput) -> int:
    from email.utils import getaddresses

    headers = [str(v) for n in ("To", "Cc") for v in item.parsed.message.get_all(n) or []]
    listed = {a.lower() for _, a in getaddresses(headers) if a}
    return max(len(listed), len(set(item.recipients)))


def bulk_without_unsubscribe(item: LintInput) -> list[Finding]:
    """Bulk mail (Precedence: bulk/list/junk, a List-Id, or many recipients) needs
    List-Unsubscribe (and List-Unsubscribe-Post for one-click, RFC 8058)."""
    precedence = (_header(item, "Precedence") or "").strip().lower()
    reasons = []
    if precedence in _BULK_PRECEDENCE:
        reasons.append(f"Precedence: {precedence}")
    if _header(item, "List-Id") is not None:
        reasons.append("a List-Id header")
    count = _recipient_count(item)
    if count >= MANY_RECIPIENTS:
        reasons.append(f"{count} recipients")
    if not reasons:
        return []
    why = ", ".join(reasons)
    if _header(item, "List-Unsubscribe") is None:
        return [
            Finding(
                "bulk-without-unsubscribe",
                "error",
                f"bulk mail ({why}) without a List-Unsubscribe header; Gmail and Yahoo "
                "require one (with List-Unsubscribe-Post: List-Unsubscribe=One-Click)",
            )
        ]
    if _header(item, "List-Unsubscribe-Post") is None:
        return [
            Finding(
                "bulk-without-one-click",
                "warning",
                f"bulk mail ({why}) has List-Unsubscribe but no List-Unsubscribe-Post: "
                "List-Unsubscribe=One-Click (RFC 8058)",
            )
        ]
    return []


def images_without_alt(item: LintInput) -> list[Finding]:
    """Every ``<img>`` needs an ``alt`` (``alt=""`` for decoration): images are often off."""
    missing = _scan(item.parsed).images_without_alt
    if not missing:
        return []
    shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
    return [
        Finding(
            "image-without-alt",
            "warning",
            f"{len(missing)} image(s) without an alt attribute: {shown}",
        )
    ]


def html_too_large(item: LintInput) -> list[Finding]:
    """Gmail clips HTML over about 102 KB (and hides what follows, unsubscribe links too)."""
    size = len((item.parsed.html or "").encode("utf-8"))
    if size <= GMAIL_CLIP_BYTES:
        return []
    return [
        Finding(
            "html-too-large",
            "warning",
            f"HTML part is {size / 1024:.1f} KB; Gmail clips messages over "
            f"{GMAIL_CLIP_BYTES // 1024} KB",
        )
    ]


def insecure_links(item: LintInput) -> list[Finding]:
    """``http:`` links and images: flagged by filters, and mixed content for webmail."""
    links = _scan(item.parsed).http_links
    if not links:
        return []
    shown = ", ".join(links[:3]) + (" ..." if len(links) > 3 else "")
    return [Finding("http-link", "warning", f"{len(links)} http: URL(s); use https: {shown}")]


def missing_message_id(item: LintInput) -> list[Finding]:
    """A Message-ID is expected by every receiver (Gmail may reject mail without one)."""
    if _header(item, "Message-ID"):
        return []
    return [Finding("missing-message-id", "error", "no Message-ID header")]


def missing_date(item: LintInput) -> list[Finding]:
    """RFC 5322 requires a Date header."""
    if _header(item, "Date"):
        return []
    return [Finding("missing-date", "error", "no Date header (required by RFC 5322)")]


def long_header_lines(item: LintInput) -> list[Finding]:
    """Header lines SHOULD stay within 78 octets and MUST within 998 (RFC 5322 2.1.1)."""
    head = item.data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    findings = []
    for line in head.split(b"\n"):
        if len(line) <= 78:
            continue
        name = (
            line.split(b":", 1)[0].decode("ascii", "replace")
            if line[:1] not in b" \t"
            else "(continuation)"
        )
        if len(line) > 998:
            findings.append(
                Finding(
                    "header-line-too-long",
                    "error",
                    f"{name}: a header line of {len(line)} octets (the limit is 998)",
                )
            )
        else:
            findings.append(
                Finding(
                    "header-line-long",
                    "warning",
                    f"{name}: a header line of {len(line)} octets (fold at 78)",
                )
            )
    return findings


#: Every rule, in the order findings are reported.
RULES: tuple[Callable[[LintInput], list[Finding]], ...] = (
    missing_message_id,
    missing_date,
    bulk_without_unsubscribe,
    missing_text_part,
    images_without_alt,
    html_too_large,
    insecure_links,
    long_header_lines,
)


def lint_parsed(
    parsed: ParsedMessage, data: bytes, *, recipients: Sequence[str] = ()
) -> list[Finding]:
    """Run every rule on an already parsed message."""
    item = LintInput(data, parsed, recipients)
    return [finding for rule in RULES for finding in rule(item)]


def lint(data: bytes, *, recipients: Sequence[str] = ()) -> list[Finding]:
    """Run every rule on a message's wire bytes (``recipients``: the envelope, if known)."""
    return lint_parsed(parse(data), data, recipients=recipients)


def lint_message(message: EmailMessage) -> list[Finding]:
    """Run every rule on a mailpost :class:`~mailpost.EmailMessage` as it would be sent."""
    from mailpost.message import envelope, serialize

    return lint(serialize(message), recipients=envelope(message)[1])
