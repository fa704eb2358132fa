"""``mailpost check`` against a real SMTP server (aiosmtpd, trustme TLS) and local backends."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mailpost
from mailpost._cli import main
from mailpost.backends.base import BaseEmailBackend
from smtp_fixtures import TRUSTING_BACKEND, USERS
from smtpd_harness import Faults, SilentServer, SMTPServer, TLSMaterial

PASSWORD = USERS["alice"]


def use_env(monkeypatch: pytest.MonkeyPatch, **mailers: Any) -> None:
    """Configure MAILERS the way a shell user does: the MAILPOST_MAILERS variable."""
    monkeypatch.setenv("MAILPOST_MAILERS", json.dumps(mailers))


def url(server: Any, scheme: str = "smtp", query: str = "timeout=5", auth: str = "") -> str:
    return f"{scheme}://{auth}{server.host}:{server.port}?{query}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


FailedCheck = Callable[[Any], str]


@pytest.fixture
def failed_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> FailedCheck:
    """Check a lone ``default`` mailer that must fail: exit status 1, a summary that counts
    one failure; returns the FAIL line."""

    def check(mailer: Any) -> str:
        use_env(monkeypatch, default=mailer)
        code, lines, _ = run(capsys)
        assert code == 1, lines
        assert lines[1:] == ["1 mailer(s) checked: 0 ok, 0 with warnings, 1 failed"]
        assert lines[0].startswith("FAIL   default   ")
        return lines[0]

    return check


# -- SMTP ----------------------------------------------------------------------------------


def test_plain_smtp_server_is_ok_and_nothing_is_sent(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default=url(smtp_server))
    code, lines, err = run(capsys)
    assert code == 0, lines
    assert re.fullmatch(
        rf"ok {{5}}default   smtp 127\.0\.0\.1:{smtp_server.port} no TLS, no AUTH \(\d+\.\d\d s\)",
        lines[0],
    )
    assert lines[1] == "1 mailer(s) checked: 1 ok, 0 with warnings, 0 failed"
    assert err == ""
    assert smtp_server.verbs() == ["EHLO", "QUIT"]
    assert smtp_server.messages == []


def test_starttls_with_a_private_ca_trusted_through_ssl_cert_file(
    make_smtp_server: Any,
    tls_material: TLSMaterial,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = make_smtp_server(starttls=tls_material.server_context())
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_material.ca_file))
    use_env(monkeypatch, default=url(server, query="use_tls=true&timeout=5"))
    code, lines, _ = run(capsys)
    assert code == 0, lines
    assert re.match(
        r"ok {5}default   smtp 127\.0\.0\.1:\d+ STARTTLS \(TLSv1\.[23]\), no AUTH", lines[0]
    )
    assert server.verbs() == ["EHLO", "STARTTLS", "EHLO", "QUIT"]
    assert server.commands[-1].tls


def test_implicit_tls_is_ok(
    make_smtp_server: Any,
    tls_material: TLSMaterial,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = make_smtp_server(implicit_tls=tls_material.server_context())
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_material.ca_file))
    use_env(monkeypatch, default=url(server, scheme="smtps"))
    code, lines, _ = run(capsys)
    assert code == 0, lines
    assert "implicit TLS (TLSv1." in lines[0]


def test_untrusted_certificate_fails_with_a_hint_about_ssl_cert_file(
    make_smtp_server: Any,
    tls_material: TLSMaterial,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = make_smtp_server(starttls=tls_material.server_context())
    use_env(monkeypatch, bulk=url(server, query="use_tls=true&timeout=5"))
    code, lines, _ = run(capsys)
    assert code == 1
    assert lines[0].startswith(f"FAIL   bulk   smtp 127.0.0.1:{server.port} STARTTLS: ")
    assert "certificate verify failed: " in lines[0]
    assert "(hint: " in lines[0]
    assert "SSL_CERT_FILE=" in lines[0]
    assert lines[1] == "1 mailer(s) checked: 0 ok, 0 with warnings, 1 failed"


def test_certificate_for_another_host_names_the_host_in_the_hint(
    make_smtp_server: Any,
    tls_material: TLSMaterial,
    monkeypatch: pytest.MonkeyPatch,
    failed_check: FailedCheck,
) -> None:
    server = make_smtp_server(starttls=tls_material.wrong_host_context())
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_material.ca_file))
    line = failed_check(url(server, query="use_tls=true&timeout=5"))
    assert "certificate verify failed" in line
    assert "not issued for '127.0.0.1'" in line


def test_auth_success_through_a_backend_subclass_that_trusts_the_ca(
    auth_smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    options = {"host": auth_smtp_server.host, "port": auth_smtp_server.port, "use_tls": True,
               "username": "alice", "password": PASSWORD, "timeout": 5}  # fmt: skip
    mailpost.configure(MAILERS={"default": {"BACKEND": TRUSTING_BACKEND, "OPTIONS": options}})
    code, lines, _ = run(capsys)
    assert code == 0, lines
    assert "STARTTLS (TLSv1." in lines[0]
    assert lines[0].split(" (")[-2].endswith("AUTH as alice")
    assert auth_smtp_server.recorder.auth_tries == [("alice", True)]
    assert PASSWORD not in "\n".join(lines)


def test_wrong_password_fails_with_535_and_a_hint_without_the_password(
    auth_smtp_server: SMTPServer,
    tls_material: TLSMaterial,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_material.ca_file))
    secret = "not-the-right-one-s3cret"
    use_env(monkeypatch, default=url(auth_smtp_server, query="use_tls=true&timeout=5",
                                     auth=f"alice:{secret}@"))  # fmt: skip
    code, lines, err = run(capsys)
    assert code == 1
    assert ": authentication failed: 535 " in lines[0]
    assert "(hint: the server refused user 'alice'" in lines[0]
    assert secret not in "\n".join(lines) + err
    tries = auth_smtp_server.recorder.auth_tries  # smtplib tries each mechanism
    assert tries
    assert set(tries) == {("alice", False)}


def test_connection_refused_fails_with_a_hint(
    closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default=f"smtp://user:pw-s3cret@127.0.0.1:{closed_port}?timeout=5")
    code, lines, err = run(capsys)
    assert code == 1
    assert lines[0].startswith(f"FAIL   default   smtp 127.0.0.1:{closed_port}: connection refused")
    assert "check 'host' and 'port'" in lines[0]
    assert "pw-s3cret" not in "\n".join(lines) + err


def test_server_refusing_the_session_at_the_greeting_fails_with_its_reply(
    make_smtp_server: Any, failed_check: FailedCheck
) -> None:
    server = make_smtp_server(faults=Faults(greeting="554 5.7.1 No SMTP service here"))
    line = failed_check(url(server))
    assert line.startswith(
        f"FAIL   default   smtp 127.0.0.1:{server.port}: the server refused the session: 554"
    )
    assert "No SMTP service here" in line
    assert "refuse this client's address" in line


def test_missing_client_certificate_file_is_named(
    smtp_server: SMTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "missing-cert.pem"
    mailpost.configure(MAILERS={"default": {
        "BACKEND": "mailpost.backends.smtp.EmailBackend",
        "OPTIONS": {"host": smtp_server.host, "port": smtp_server.port, "timeout": 5,
                    "use_tls": True, "ssl_certfile": str(missing)},
    }})  # fmt: skip
    code, lines, _ = run(capsys)
    assert code == 1
    assert str(missing) in lines[0]
    assert "ssl_certfile" in lines[0]


def test_silent_server_fails_within_the_timeout_given_on_the_command_line(
    silent_server: SilentServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default=url(silent_server, query="timeout=30"))
    start = time.monotonic()
    code, lines, _ = run(capsys, "--timeout", "0.5")
    elapsed = time.monotonic() - start
    assert code == 1
    assert elapsed < 5
    assert "connected, but the server did not answer within 0.5 s" in lines[0]
    assert "use_ssl=True" in lines[0]


def test_silent_server_fails_within_the_mailers_own_timeout(
    silent_server: SilentServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default=url(silent_server, query="timeout=0.5"))
    start = time.monotonic()
    code, lines, _ = run(capsys)
    assert code == 1
    assert time.monotonic() - start < 5
    assert "did not answer within 0.5 s" in lines[0]


def test_plain_smtp_to_an_implicit_tls_port_times_out_and_suggests_use_ssl(
    make_smtp_server: Any, tls_material: TLSMaterial, failed_check: FailedCheck
) -> None:
    server = make_smtp_server(implicit_tls=tls_material.server_context())
    line = failed_check(url(server, query="use_tls=true&timeout=0.5"))
    assert "did not answer" in line
    assert "needs use_ssl=True" in line


def test_implicit_tls_to_a_plain_port_suggests_starttls(
    smtp_server: SMTPServer, failed_check: FailedCheck
) -> None:
    line = failed_check(url(smtp_server, scheme="smtps"))
    assert "the server does not speak TLS on connect" in line
    assert "use use_tls=True" in line


def test_starttls_not_offered_fails_and_never_falls_back(
    smtp_server: SMTPServer, failed_check: FailedCheck
) -> None:
    line = failed_check(url(smtp_server, query="use_tls=true&timeout=5"))
    assert ": the server does not offer STARTTLS (hint: " in line
    assert "never falls back" in line
    assert "AUTH" not in smtp_server.verbs()


def test_missing_timeout_is_a_warning_not_a_failure(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default=f"smtp://{smtp_server.host}:{smtp_server.port}")
    code, lines, _ = run(capsys)
    assert code == 0
    assert lines[0].startswith("warn   default   smtp 127.0.0.1:")
    assert "; no timeout set: a stalled server " in lines[0]
    assert "(hint: add timeout=10 to OPTIONS, or ?timeout=10 to the mailer URL)" in lines[0]
    assert lines[1] == "1 mailer(s) checked: 0 ok, 1 with warnings, 0 failed"


def test_login_without_tls_warns_that_the_password_travels_in_clear(
    make_smtp_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_smtp_server()
    use_env(monkeypatch, default=url(server, auth="alice:pw-s3cret@"))
    code, lines, err = run(capsys)
    # aiosmtpd offers no AUTH without TLS: the check says so and suggests STARTTLS
    assert code == 1
    assert (
        "the server does not offer AUTH (hint: many servers offer AUTH only after STARTTLS"
        in (lines[0])
    )
    assert "pw-s3cret" not in "\n".join(lines) + err


def test_a_fail_silently_mailer_still_reports_its_failure(
    closed_port: int, failed_check: FailedCheck
) -> None:
    line = failed_check(f"smtp://127.0.0.1:{closed_port}?timeout=5&fail_silently=true")
    assert "connection refused" in line


# -- other backends and configuration ---------------------------------------------------------


class RecordingBackend(BaseEmailBackend):
    """A third-party-style backend: the check must open and close it."""

    events: list[str] = []

    def open(self) -> bool:
        RecordingBackend.events.append("open")
        return True

    def close(self) -> None:
        RecordingBackend.events.append("close")


class BrokenBackend(BaseEmailBackend):
    closed = 0

    def open(self) -> bool:
        raise ConnectionError("API endpoint unreachable")

    def close(self) -> None:
        BrokenBackend.closed += 1


def test_local_backends_are_built_and_the_file_directory_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    RecordingBackend.events = []
    outdir = tmp_path / "mail"
    use_env(monkeypatch, console="console://", files=f"file://{outdir}", memory="locmem://",
            null="dummy://", custom={"BACKEND": f"{__name__}.RecordingBackend"})  # fmt: skip
    code, lines, _ = run(capsys)
    assert code == 0, lines
    by_alias = {line.split()[1]: line for line in lines[:-1]}
    assert by_alias["console"].startswith("ok     console   console (messages are printed")
    assert f"file {outdir} (directory writable)" in by_alias["files"]
    assert "locmem (messages are kept in memory, not sent)" in by_alias["memory"]
    assert "dummy (messages are discarded)" in by_alias["null"]
    assert f"{__name__}.RecordingBackend (opened and closed)" in by_alias["custom"]
    assert RecordingBackend.events == ["open", "close"]
    assert outdir.is_dir()
    assert list(outdir.iterdir()) == []
    assert lines[-1] == "5 mailer(s) checked: 5 ok, 0 with warnings, 0 failed"


def test_a_backend_whose_open_fails_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    BrokenBackend.closed = 0
    use_env(monkeypatch, api={"BACKEND": f"{__name__}.BrokenBackend"})
    code, lines, _ = run(capsys)
    assert code == 1
    assert BrokenBackend.closed == 1
    assert lines[0] == (
        f"FAIL   api   {__name__}.BrokenBackend: ConnectionError: API endpoint unreachable"
    )


def test_invalid_mailers_fail_and_the_others_are_still_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    use_env(monkeypatch, default="locmem://", files=f"file://{not_a_dir}",
            typo={"BACKEND": "mailpost.backends.smtp.EmailBackend",
                  "OPTIONS": {"host": "localhost", "prot": 25}})  # fmt: skip
    code, lines, _ = run(capsys)
    assert code == 1
    assert lines[0].startswith("ok     default")
    assert lines[1].startswith(
        f"FAIL   files     configuration: 'file_path' is not a directory: {not_a_dir}"
    )
    assert lines[2].startswith("FAIL   typo      configuration: Unknown options 'prot'.")
    assert "(hint: fix this mailer's entry in MAILERS" in lines[2]
    assert lines[3] == "3 mailer(s) checked: 1 ok, 0 with warnings, 2 failed"


def test_using_checks_only_that_mailer(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default="smtp://127.0.0.1:1?timeout=5", bulk=url(smtp_server))
    code, lines, _ = run(capsys, "--using", "bulk")
    assert code == 0
    assert len(lines) == 2
    assert lines[0].startswith("ok     bulk   smtp")


def test_unknown_alias_exits_2_listing_the_defined_ones(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, default="locmem://", bulk="dummy://")
    code, lines, err = run(capsys, "--using", "nope")
    assert code == 2
    assert lines == []
    assert err == (
        "mailpost check: MAILERS['nope']: no such mailer (defined aliases: 'bulk', 'default')\n"
    )


@pytest.mark.parametrize("mailers", [None, {}])
def test_no_mailers_exits_2_and_explains_how_to_configure(
    mailers: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if mailers is not None:
        use_env(monkeypatch, **mailers)
    code, lines, err = run(capsys)
    assert code == 2
    assert lines == []
    assert err.startswith("mailpost check: no mailers are configured, so there is nothing to check")
    assert 'export MAILPOST_MAILERS=\'{"default": "smtp://' in err
    assert "mailpost.configure(MAILERS=" in err


def test_malformed_environment_configuration_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAILPOST_MAILERS", "{not json")
    code, _, err = run(capsys)
    assert code == 2
    assert "MAILPOST_MAILERS: not valid JSON" in err


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_timeout_must_be_a_positive_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--timeout", value)
    assert code == 2
    assert "--timeout: expected a" in err
