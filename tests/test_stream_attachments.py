"""Streamed attachments: ``attach_file(path, stream=True)`` reads and encodes the file in
chunks while the message is written to the SMTP server, so a 100 MB file is sent with a
small, bounded amount of extra memory; the message on the wire is the same MIME either way."""

from __future__ import annotations

import email.parser
import email.policy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mailpost import EmailMessage
from mailpost.message import FileContent, serialize, serialize_stream
from smtp_fixtures import mailer_entry
from smtpd_harness import SinkServer, SMTPServer


def parse(data: bytes) -> email.message.EmailMessage:
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def message_with(path: Path) -> EmailMessage:
    msg = EmailMessage(
        "Report", ".starts with a dot\nend\n", "from@example.com", ["to@example.com"]
    )
    msg.attach_file(path, stream=True)
    return msg


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 57 * 1024 * 16, 57 * 1024 * 16 + 5, 300_001])
def test_streamed_size_is_known_before_reading_and_matches_the_bytes(
    tmp_path: Path, size: int
) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(size))
    stream = serialize_stream(message_with(path))
    assert stream is not None
    wire = b"".join(stream.chunks())
    assert stream.size == len(wire)
    [attachment] = list(parse(wire).iter_attachments())
    assert attachment.get_content() == path.read_bytes()
    assert all(len(line) <= 76 for line in wire.split(b"\r\n"))


def test_serialize_reads_a_streamed_file_whole_for_other_backends(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_bytes(b"%PDF-1.4 " + os.urandom(5000))
    msg = message_with(path)
    [attachment] = list(parse(serialize(msg)).iter_attachments())
    assert attachment.get_filename() == "notes.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == path.read_bytes()
    assert isinstance(msg.attachments[0].content, FileContent)


def test_a_message_without_streamed_files_is_not_streamed() -> None:
    msg = EmailMessage("Hi", "Body", "from@example.com", ["to@example.com"])
    msg.attach("a.txt", "text", "text/plain")
    assert serialize_stream(msg) is None


def test_streamed_attachment_arrives_intact_over_smtp(
    smtp_server: SMTPServer, smtp_mailer: object, tmp_path: Path
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(2_000_000))
    msg = message_with(path)
    assert smtp_mailer(smtp_server).send_messages([msg]) == 1  # type: ignore[operator]
    [got] = smtp_server.messages
    parsed = parse(got.data)
    body = parsed.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == ".starts with a dot\nend\n"
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_content() == path.read_bytes()
    assert f"SIZE={len(got.data)}" in got.mail_options
    assert msg.delivery is not None
    assert msg.delivery.message_id == parsed["Message-ID"]


_CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    import mailpost

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    mailpost.configure(MAILERS={"default": {
        "BACKEND": "mailpost.backends.smtp.EmailBackend",
        "OPTIONS": {"host": host, "port": port, "timeout": 60}}})
    warm = mailpost.EmailMessage("warm", "x", "a@example.com", ["b@example.com"])
    assert warm.send() == 1  # imports, threads and the event loop are in the baseline
    msg = mailpost.EmailMessage("big", "see attached", "a@example.com", ["b@example.com"])
    msg.attach_file(path, stream=True)
    before = hwm()
    assert msg.send() == 1
    print(hwm() - before)
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_100_mb_attachment_is_sent_with_under_20_mb_of_extra_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    block = os.urandom(1024 * 1024)
    with path.open("wb") as f:
        for _ in range(100):
            f.write(block)
    server = SinkServer().start()
    try:
        entry = mailer_entry(server)["OPTIONS"]
        done = subprocess.run(
            [sys.executable, "-c", _CLIENT, entry["host"], str(entry["port"]), str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    extra = int(done.stdout.strip())
    print(f"extra resident memory: {extra / 2**20:.1f} MiB")
    assert extra < 20 * 1024 * 1024, f"{extra / 2**20:.1f} MiB extra resident memory"
    assert server.sizes[-1] > 100 * 1024 * 1024 * 4 // 3  # the whole file went, base64
