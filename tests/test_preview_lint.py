"""The deliverability lint: one test (or two) per rule, on real composed messages."""

from __future__ import annotations

import pytest

import mailpost
from mailpost.message import serialize
from mailpost.preview.lint import GMAIL_CLIP_BYTES, Finding, lint, lint_message


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def html_message(html: str, **kwargs: object) -> mailpost.EmailMultiAlternatives:
    message = mailpost.EmailMultiAlternatives(
        "Subject",
        "Text version.",
        "a@example.com",
        ["b@example.com"],
        **kwargs,  # type: ignore[arg-type]
    )
    message.attach_alternative(html, "text/html")
    return message


def test_a_well_formed_message_has_no_findings() -> None:
    assert lint_message(html_message('<p>Hi <img src="cid:x" alt="Logo"></p>')) == []


def test_html_without_text_part_is_a_warning() -> None:
    message = mailpost.EmailMessage("S", "<p>only html</p>", "a@example.com", ["b@example.com"])
    message.content_subtype = "html"
    [finding] = lint_message(message)
    assert finding.rule == "missing-text-part"
    assert finding.severity == "warning"


def test_plain_text_only_message_needs_no_html() -> None:
    assert (
        lint_message(mailpost.EmailMessage("S", "text", "a@example.com", ["b@example.com"])) == []
    )


@pytest.mark.parametrize(
    "headers",
    [{"Precedence": "bulk"}, {"List-Id": "<news.example.com>"}],
)
def test_bulk_mail_without_list_unsubscribe_is_an_error(headers: dict[str, str]) -> None:
    [finding] = lint_message(html_message("<p>news</p>", headers=headers))
    assert finding.rule == "bulk-without-unsubscribe"
    assert finding.severity == "error"


def test_many_recipients_count_as_bulk() -> None:
    message = html_message("<p>news</p>", bcc=[f"r{n}@example.com" for n in range(12)])
    assert "bulk-without-unsubscribe" in rules(lint_message(message))
    few = html_message("<p>news</p>", bcc=["r1@example.com"])
    assert lint_message(few) == []


def test_bulk_mail_with_unsubscribe_but_no_one_click_is_a_warning() -> None:
    headers = {"List-Id": "<news.example.com>", "List-Unsubscribe": "<https://example.com/u>"}
    [finding] = lint_message(html_message("<p>news</p>", headers=headers))
    assert finding.rule == "bulk-without-one-click"
    assert finding.severity == "warning"
    headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    assert lint_message(html_message("<p>news</p>", headers=headers)) == []


def test_images_without_alt_are_reported_but_empty_alt_is_fine() -> None:
    [finding] = lint_message(
        html_message('<img src="https://x.example/a.png"><img src="cid:b" alt="">')
    )
    assert finding.rule == "image-without-alt"
    assert "https://x.example/a.png" in finding.message
    assert "cid:b" not in finding.message


def test_html_over_gmail_clipping_size_is_reported() -> None:
    small = html_message("<p>" + "x" * (GMAIL_CLIP_BYTES - 100) + "</p>")
    assert lint_message(small) == []
    big = html_message("<p>" + "x" * (GMAIL_CLIP_BYTES + 10) + "</p>")
    [finding] = lint_message(big)
    assert finding.rule == "html-too-large"
    assert "102 KB" in finding.message


def test_http_links_and_images_are_reported() -> None:
    html = '<a href="http://example.com/a">a</a><a href="https://example.com/b">b</a>'
    [finding] = lint_message(html_message(html))
    assert finding.rule == "http-link"
    assert "http://example.com/a" in finding.message
    assert "https://example.com/b" not in finding.message


def test_missing_message_id_and_date_are_errors() -> None:
    findings = lint(b"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\nbody\r\n")
    assert rules(findings) == {"missing-message-id", "missing-date"}
    assert all(f.severity == "error" for f in findings)


def test_header_lines_over_78_octets_warn_and_over_998_fail() -> None:
    head = b"Message-ID: <a@b>\r\nDate: Sun, 06 Dec 2026 12:00:00 +0000\r\nFrom: a@example.com\r\n"
    long = head + b"X-Long: " + b"y" * 90 + b"\r\n\r\nbody\r\n"
    [finding] = lint(long)
    assert finding.rule == "header-line-long"
    assert "X-Long" in finding.message
    huge = head + b"X-Huge: " + b"y" * 1000 + b"\r\n\r\nbody\r\n"
    [finding] = lint(huge)
    assert finding.rule == "header-line-too-long"
    assert finding.severity == "error"


def test_mailpost_folds_long_subjects_so_they_pass() -> None:
    message = mailpost.EmailMessage("word " * 40, "text", "a@example.com", ["b@example.com"])
    assert lint(serialize(message)) == []


def test_findings_print_readably() -> None:
    finding = Finding("missing-date", "error", "no Date header")
    assert str(finding) == "error: missing-date: no Date header"
    assert finding.as_dict() == {
        "rule": "missing-date",
        "severity": "error",
        "message": "no Date header",
    }
