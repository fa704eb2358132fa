"""Capture store, capture:// mailer, preview sources, the preview web app over real HTTP, the
SMTP capture server over real SMTP, and the ``mailpost preview`` / ``mailpost lint`` CLI."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import mailpost
from mailpost._cli import main
from mailpost._urls import parse_mailer_url
from mailpost.backends.capture import CaptureBackend
from mailpost.backends.filebased import FileBackend
from mailpost.exceptions import InvalidMailer
from mailpost.message import serialize
from mailpost.preview import (
    CaptureSource,
    CaptureStore,
    DirectorySource,
    PreviewApp,
    PreviewServer,
    PreviewsSource,
    SMTPCaptureServer,
    SpoolSource,
)
from mailpost.preview.app import FRAME_CSP, UI_CSP
from mailpost.preview.parse import frame_html, parse, split_log
from preview_helpers import ATTACHMENT, hostile, newsletter, note
from smtpd_harness import unused_port

pytestmark = pytest.mark.timeout(60)


def get(url: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def get_json(url: str) -> Any:
    status, _, body = get(url)
    assert status == 200, body
    return json.loads(body)


# -- capture store and mailer -----------------------------------------------------------------


def test_capture_mailer_keeps_exact_bytes_and_envelope_durably(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "mail.sqlite3"
    message = newsletter()
    message.bcc = ["hidden@example.com"]
    assert CaptureBackend(path=path, alias="dev").send_messages([message]) == 1
    stored = CaptureStore(path).list()  # a new store object: read back from the file
    assert len(stored) == 1
    data = stored[0].data
    assert data.count(b"\r\n") == data.count(b"\n")  # the wire form, CRLF line endings
    assert message.delivery is not None
    assert parse(data).message["Message-ID"] == message.delivery.message_id
    assert parse(data).attachments[1].size == len(ATTACHMENT)
    assert stored[0].sender == "reports@example.com"
    assert stored[0].recipients == ["ann@example.com", "hidden@example.com"]
    assert stored[0].origin == "mailer:dev"
    assert message.delivery is not None
    assert message.delivery.ok


def test_capture_store_lists_newest_first_and_version_changes(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path / "c.sqlite3")
    before = store.version()
    first = store.add(b"Subject: one\n\nbody\n")
    second = store.add(b"Subject: two\n\nbody\n")
    assert [m.id for m in store.list()] == [second, first]
    assert store.version() != before
    assert store.delete(first)
    assert not store.delete(first)
    assert store.count() == 1
    assert store.clear() == 1


def test_capture_mailer_max_messages_keeps_the_newest(tmp_path: Path) -> None:
    backend = CaptureBackend(path=tmp_path / "c.sqlite3", max_messages=2)
    for n in range(4):
        backend.send_messages([note(f"n{n}")])
    subjects = [parse(m.data).message["Subject"] for m in backend.store.list()]
    assert subjects == ["n3", "n2"]


def test_capture_mailer_rejects_bad_options_by_name() -> None:
    with pytest.raises(InvalidMailer, match="'max_messages'"):
        CaptureBackend(alias="dev", max_messages=0)
    with pytest.raises(InvalidMailer, match="'path'"):
        CaptureBackend(alias="dev", path=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidMailer, match="'colour'"):
        CaptureBackend(alias="dev", colour="red")


def test_capture_url_scheme_forms() -> None:
    backend = "mailpost.backends.capture.EmailBackend"
    assert parse_mailer_url("capture://", alias="d") == {"BACKEND": backend, "OPTIONS": {}}
    assert parse_mailer_url("capture:///var/mail/c.sqlite3", alias="d")["OPTIONS"] == {
        "path": "/var/mail/c.sqlite3"
    }
    assert parse_mailer_url("capture://tmp/c.sqlite3", alias="d")["OPTIONS"] == {
        "path": "tmp/c.sqlite3"
    }


def test_capture_url_builds_a_working_mailer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    entry = parse_mailer_url("capture://mail.sqlite3", alias="default")
    CaptureBackend(alias="default", **entry["OPTIONS"]).send_messages([note()])
    assert CaptureStore(tmp_path / "mail.sqlite3").count() == 1


# -- sources ------------------------------------------------------------------------------


def test_directory_source_reads_file_backend_output(tmp_path: Path) -> None:
    backend = FileBackend(file_path=tmp_path)
    with backend:
        backend.send_messages([note("one"), note("two")])
    (tmp_path / "single.eml").write_bytes(serialize(note("three")))
    (tmp_path / "bad name.eml").write_bytes(serialize(note("skipped")))
    source = DirectorySource(tmp_path)
    subjects = sorted(e.summary.subject for e in source.entries())
    assert subjects == ["one", "three", "two"]
    entry = next(e for e in source.entries() if e.summary.subject == "two")
    data = source.load(entry.key)
    assert data is not None
    assert parse(data).text == "Just text.\n"
    assert source.load("../etc/passwd.0") is None


def test_split_log_separates_messages_on_the_dash_line() -> None:
    sep = b"-" * 79
    data = b"Subject: a\n\nx\n" + sep + b"\nSubject: b\n\ny\n" + sep + b"\n"
    assert [parse(m).message["Subject"] for m in split_log(data)] == ["a", "b"]


def test_spool_source_lists_spooled_messages_read_only(tmp_path: Path) -> None:
    from mailpost.spool.api import Spool

    path = tmp_path / "spool.sqlite3"
    spool = Spool.open(path, mailer="smtp")
    spool.enqueue([note("queued one"), newsletter()])
    source = SpoolSource(path)
    entries = source.entries()
    assert [e.summary.subject for e in entries] == ["Your December report", "queued one"]
    assert entries[0].origin == "spool:queued"
    data = source.load(entries[1].key)
    assert data is not None
    assert b"queued one" in data
    assert SpoolSource(tmp_path / "missing.sqlite3").entries() == []
    assert not (tmp_path / "missing.sqlite3").exists()


def test_previews_source_renders_registered_functions_afresh() -> None:
    calls: list[int] = []

    def welcome() -> mailpost.EmailMessage:
        calls.append(1)
        return note(f"Welcome #{len(calls)}")

    source = PreviewsSource({"welcome": welcome})
    assert [e.summary.subject for e in source.entries()] == ["Welcome #1"]
    data = source.load("welcome")
    assert data is not None
    assert b"Welcome #2" in data


def test_frame_html_turns_cid_into_data_urls() -> None:
    parsed = parse(serialize(newsletter()))
    html = frame_html(parsed)
    assert "cid:logo@example.com" not in html
    assert 'src="data:image/png;base64,' in html
    assert html.startswith('<base target="_blank">')


# -- the web app over HTTP ----------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Any:
    store = CaptureStore(tmp_path / "c.sqlite3")
    store.add(serialize(newsletter()), origin="mailer:default")
    store.add(serialize(hostile()), origin="mailer:default")
    with PreviewServer(PreviewApp([CaptureSource(store)]), port=0) as running:
        yield running


def test_ui_page_sets_a_strict_csp_and_contains_no_message_content(server: PreviewServer) -> None:
    status, headers, body = get(server.url)
    assert status == 200
    assert headers["Content-Security-Policy"] == UI_CSP
    assert "script-src 'self'" in UI_CSP
    assert "unsafe-inline" not in UI_CSP
    assert b"December" not in body
    assert b"<script>" not in body.replace(b"<script src", b"")


def test_api_lists_newest_first_and_searches(server: PreviewServer) -> None:
    listing = get_json(server.url + "api/messages")
    assert [m["id"] for m in listing["messages"]] == ["capture-2", "capture-1"]
    found = get_json(server.url + "api/messages?q=december%20ANN")
    assert [m["subject"] for m in found["messages"]] == ["Your December report"]
    assert get_json(server.url + "api/messages?q=nothing-like-this")["messages"] == []


def test_message_html_is_served_alone_with_the_frame_csp(server: PreviewServer) -> None:
    status, headers, body = get(server.url + "m/capture-2/html")
    assert status == 200
    assert headers["Content-Security-Policy"] == FRAME_CSP
    assert FRAME_CSP.startswith("default-src 'none'; img-src cid: data:; style-src 'unsafe-inline'")
    assert "sandbox" in FRAME_CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert b"payload-heading" in body


def test_detail_has_headers_text_attachments_and_lint(server: PreviewServer) -> None:
    detail = get_json(server.url + "api/messages/capture-1")
    assert ["Subject", "Your December report"] in detail["headers"]
    assert detail["text"].startswith("Hello Ann,")
    names = {a["filename"]: a for a in detail["attachments"]}
    assert set(names) == {"logo.png", "report.bin"}
    status, headers, body = get(server.url + names["report.bin"]["url"].lstrip("/"))
    assert status == 200
    assert body == ATTACHMENT
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == "attachment; filename*=UTF-8''report.bin"
    assert isinstance(detail["lint"], list)
    _status, headers, raw = get(server.url + "m/capture-1/raw")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert b"Content-ID:" in raw


def test_unknown_messages_and_parts_are_404(server: PreviewServer) -> None:
    assert get(server.url + "api/messages/capture-99")[0] == 404
    assert get(server.url + "api/messages/nosuch-1")[0] == 404
    assert get(server.url + "m/capture-1/part/0")[0] == 404  # the multipart root is no file
    assert get(server.url + "m/capture-1/part/999")[0] == 404


def test_foreign_host_header_is_refused(server: PreviewServer) -> None:
    status, _, _ = get(server.url + "api/messages", host="attacker.example:8025")
    assert status == 400
    assert get(server.url + "api/messages", host=f"localhost:{server.port}")[0] == 200


def test_writes_are_refused(server: PreviewServer) -> None:
    request = urllib.request.Request(server.url + "api/messages", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    with caught.value:
        assert caught.value.code == 405


# -- SMTP capture ---------------------------------------------------------------------------


def test_smtp_capture_server_stores_what_any_client_sends(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path / "c.sqlite3")
    port = unused_port()
    data = serialize(newsletter())
    recipients = ["ann@example.com", "x@example.org"]
    with (
        SMTPCaptureServer(store, "127.0.0.1", port),
        smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
    ):
        refused = client.sendmail("app@example.com", recipients, data)
    assert refused == {}
    [captured] = store.list()
    assert captured.origin == "smtp"
    assert captured.sender == "app@example.com"
    assert captured.recipients == ["ann@example.com", "x@example.org"]
    assert parse(captured.data).message["Subject"] == "Your December report"
    assert parse(captured.data).attachments[1].size == len(ATTACHMENT)


def test_mailpost_smtp_mailer_delivers_into_the_capture_server(tmp_path: Path) -> None:
    from mailpost.backends.smtp import EmailBackend as SMTPBackend

    store = CaptureStore(tmp_path / "c.sqlite3")
    port = unused_port()
    with SMTPCaptureServer(store, "127.0.0.1", port):
        backend = SMTPBackend(alias="capture", host="127.0.0.1", port=port, timeout=10)
        assert backend.send_messages([note()]) == 1
    assert store.count() == 1


def test_the_capture_server_takes_mail_to_non_ascii_addresses(tmp_path: Path) -> None:
    """It offers SMTPUTF8, so mail that needs it is captured, not refused."""
    from mailpost.backends.smtp import EmailBackend as SMTPBackend

    store = CaptureStore(tmp_path / "c.sqlite3")
    port = unused_port()
    msg = mailpost.EmailMessage("Grüße", "Hallo", "jörg@example.com", ["zoë@example.com"])
    with SMTPCaptureServer(store, "127.0.0.1", port):
        backend = SMTPBackend(alias="capture", host="127.0.0.1", port=port, timeout=10)
        assert backend.send_messages([msg]) == 1
    [captured] = store.list()
    assert captured.sender == "jörg@example.com"
    assert captured.recipients == ["zoë@example.com"]
    assert "To: zoë@example.com".encode() in captured.data


# -- CLI ------------------------------------------------------------------------------------


def test_cli_preview_serves_ui_and_smtp_capture(tmp_path: Path) -> None:
    web, smtp = unused_port(), unused_port()
    capture = tmp_path / "c.sqlite3"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailpost",
            "preview",
            "--port",
            str(web),
            "--smtp",
            f"127.0.0.1:{smtp}",
            "--capture",
            str(capture),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                _status, _, _ = get(f"http://127.0.0.1:{web}/api/version")
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("mailpost preview did not start")
        with smtplib.SMTP("127.0.0.1", smtp, timeout=10) as client:
            client.sendmail("a@example.com", ["b@example.com"], serialize(note("via SMTP")))
        listing = get_json(f"http://127.0.0.1:{web}/api/messages")
        assert [m["subject"] for m in listing["messages"]] == ["via SMTP"]
    finally:
        process.terminate()
        out, err = process.communicate(timeout=15)
    assert f"on http://127.0.0.1:{web}/" in out.decode(), err


def test_cli_lint_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(serialize(newsletter()))
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"From: a@example.com\nTo: b@example.com\nSubject: x\n\nbody\n")
    assert main(["lint", str(good)]) == 0
    assert main(["lint", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "missing-message-id" in out
    assert "missing-date" in out
    assert main(["lint", str(tmp_path / "missing.eml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_lint_reads_every_message_of_a_file_backend_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = FileBackend(file_path=tmp_path)
    with backend:
        backend.send_messages([note("a"), note("b")])
    [log] = tmp_path.glob("*.log")
    assert main(["lint", str(log)]) == 0
    out = capsys.readouterr().out
    assert f"{log}#0: ok" in out
    assert f"{log}#1: ok" in out


def test_summary_decodes_encoded_headers_and_counts_files() -> None:
    from mailpost.preview.parse import summarize

    message = mailpost.EmailMessage(
        "Grüße · ünïcode", "körper", "Jörg <j@example.com>", ["b@example.com"]
    )
    message.attach("a.txt", "x", "text/plain")
    summary = summarize(serialize(message))
    assert summary.subject == "Grüße · ünïcode"
    assert summary.sender == "Jörg <j@example.com>"
    assert summary.snippet == "körper"
    assert summary.attachments == 1
    assert "grüße" in summary.search_text


def test_cli_lint_strict_fails_on_warnings(tmp_path: Path) -> None:
    message = mailpost.EmailMessage("S", "<p>only html</p>", "a@example.com", ["b@example.com"])
    message.content_subtype = "html"
    path = tmp_path / "html.eml"
    path.write_bytes(serialize(message))
    assert main(["lint", str(path)]) == 0
    assert main(["lint", "--strict", str(path)]) == 1


def test_cli_preview_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--smtp", "--capture", "--dir", "--spool", "--previews"):
        assert option in out
