"""``mailpost check``: prove each configured mailer can send, without sending anything.

Every mailer is built (which validates its OPTIONS). An SMTP mailer then connects, says
EHLO, upgrades to TLS and authenticates exactly as a real send would, and says QUIT. A file
mailer writes and removes a probe file; any other backend is opened and closed. Each alias
gets one line (``ok``, ``warn`` or ``FAIL``, with the reason and a hint), then a summary.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import smtplib
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailpost._cli._common import (
    EXIT_DELIVERY,
    EXIT_OK,
    HelpFormatter,
    Streams,
    describe_backend,
    positive_seconds,
    required_aliases,
)

__all__ = ["DEFAULT_TIMEOUT", "Finding", "check_alias", "register"]

#: Seconds each network step may take when neither the mailer nor --timeout sets a limit.
DEFAULT_TIMEOUT = 10.0

# OpenSSL verify codes (X509_V_ERR_*) that call for different advice.
_CERT_EXPIRED = 10
_NAME_MISMATCH = frozenset({62, 64})  # host name, IP address

_EPILOG = f"""\
examples:
  mailpost check                      # every mailer in MAILERS
  mailpost check --using bulk         # only MAILERS["bulk"]
  mailpost check --timeout 3          # give up on each network step after 3 s
  SSL_CERT_FILE=ca.pem mailpost check # trust a private CA's certificate (PEM bundle)

output (one line per mailer, then a summary):
  ok     default   smtp 127.0.0.1:2525 STARTTLS (TLSv1.3), AUTH as app (0.12 s)
  FAIL   bulk      smtp smtp.example.net:465: connection refused (hint: ...)

For SMTP the check connects, upgrades to TLS and logs in as a real send would, then
says QUIT: no message is sent. Passwords are never printed. Each network step waits at
most the mailer's 'timeout' (or --timeout; {DEFAULT_TIMEOUT:g} s when neither is set).
exit status: 0 every mailer ok (warnings allowed), 1 a mailer failed,
             2 usage or configuration error (e.g. no mailers configured)."""


@dataclass
class Finding:
    """The verdict on one mailer: ``status`` is ``"ok"``, ``"warn"`` or ``"FAIL"``."""

    alias: str
    what: str
    status: str = "ok"
    details: str = ""
    problem: str | None = None
    hint: str | None = None
    seconds: float | None = None
    warnings: list[str] = field(default_factory=list)

    def line(self, width: int) -> str:
        """The report line, the alias padded to ``width``."""
        head = f"{self.status:<7}{self.alias:<{width}}   {self.what}"
        if self.problem is not None:
            hint = f" (hint: {self.hint})" if self.hint else ""
            return f"{head}: {self.problem}{hint}"
        text = f"{head} {self.details}".rstrip()
        if self.seconds is not None:
            text += f" ({self.seconds:.2f} s)"
        return "; ".join([text, *self.warnings])


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand."""
    parser = subparsers.add_parser(
        "check",
        help="check mailers: connect, TLS, login (sends nothing)",
        description="Check that each configured mailer can send, without sending anything:\n"
        "build it (validating its OPTIONS), then for SMTP connect, upgrade to TLS and log in.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--using", metavar="ALIAS", help="check only this MAILERS alias")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help="seconds each network step may take (default: the mailer's own 'timeout')",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Check the chosen mailers, print one line each and a summary."""
    defined = required_aliases(args.using, otherwise="there is nothing to check")
    aliases = [args.using] if args.using is not None else defined
    width = max(len(a) for a in aliases)
    findings = []
    for alias in aliases:
        finding = check_alias(alias, timeout=args.timeout)
        streams.out(finding.line(width))
        findings.append(finding)
    failed = sum(f.status == "FAIL" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    ok = len(findings) - failed - warned
    streams.out(
        f"{len(findings)} mailer(s) checked: {ok} ok, {warned} with warnings, {failed} failed"
    )
    return EXIT_DELIVERY if failed else EXIT_OK


def check_alias(alias: str, *, timeout: float | None = None) -> Finding:
    """Build ``MAILERS[alias]`` and prove it can send; never raises for the mailer's faults."""
    from mailpost.backends.filebased import FileBackend
    from mailpost.backends.smtp import SMTPBackend
    from mailpost.exceptions import MailpostError
    from mailpost.handler import mailers

    try:
        backend = mailers[alias]
    except (MailpostError, ImportError) as exc:
        problem = _without_label(str(exc), alias)
        return Finding(alias, "configuration", "FAIL", problem=problem, hint=_config_hint(exc))
    finding = Finding(alias, describe_backend(backend))
    start = time.monotonic()
    try:
        if isinstance(backend, SMTPBackend):
            _check_smtp(backend, finding, timeout)
        elif isinstance(backend, FileBackend):
            _check_directory(backend.file_path)
            finding.details = "(directory writable)"
        else:
            _open_and_close(backend, finding)
    except Exception as exc:  # a mailer's failure is a finding, never a crash
        finding.status = "FAIL"
        finding.problem, finding.hint = diagnose(backend, exc, timeout)
        return finding
    finding.seconds = time.monotonic() - start
    if finding.warnings:
        finding.status = "warn"
    return finding


def _without_label(text: str, alias: str) -> str:
    prefix = f"MAILERS[{alias!r}]: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _config_hint(exc: BaseException) -> str | None:
    if isinstance(exc, ImportError):
        return None  # MissingDependency already says what to pip install
    return "fix this mailer's entry in MAILERS (a mailer URL, or BACKEND and OPTIONS)"


_STEP_TIMEOUTS = ("connect_timeout", "greeting_timeout", "command_timeout")


def _no_timeout_warning() -> str:
    """What an SMTP mailer without any timeout risks, with the installed engine."""
    try:
        engine = importlib.import_module("mailpost._smtp.engine")
        default = float(engine.DEFAULT_COMMAND_TIMEOUT)
    except (ImportError, AttributeError):
        risk = "would block sends forever"
    else:
        risk = f"could hold a send for {default:g} s at each step"
    return (
        f"no timeout set: a stalled server {risk} "
        "(hint: add timeout=10 to OPTIONS, or ?timeout=10 to the mailer URL)"
    )


def _bound_timeouts(backend: Any, timeout: float | None) -> None:
    """Make every network step of the check wait at most ``timeout`` (from --timeout), else
    the mailer's own timeouts, else :data:`DEFAULT_TIMEOUT`."""
    steps = [name for name in _STEP_TIMEOUTS if hasattr(backend, name)]
    if timeout is not None:
        backend.timeout = timeout
        for name in steps:
            setattr(backend, name, timeout)
    elif backend.timeout is None:
        backend.timeout = DEFAULT_TIMEOUT  # per-step timeouts the mailer sets still win


def _tls_version(pool: Any) -> str | None:
    """The negotiated TLS version of the backend's open pool (its ``connection``), if any."""
    version = getattr(pool, "tls_version", None)
    return version if isinstance(version, str) else None


def _check_smtp(backend: Any, finding: Finding, timeout: float | None) -> None:
    """Connect, TLS, AUTH and QUIT through the backend's own session code."""
    if backend.timeout is None and not any(getattr(backend, n, None) for n in _STEP_TIMEOUTS):
        finding.warnings.append(_no_timeout_warning())
    _bound_timeouts(backend, timeout)
    backend.fail_silently = False  # a check must see the failure, not a logged None
    backend.open()
    try:
        version = _tls_version(backend.connection)
    finally:
        backend.close()
    suffix = f" ({version})" if version else ""
    if backend.use_ssl:
        tls = f"implicit TLS{suffix}"
    elif backend.use_tls:
        tls = f"STARTTLS{suffix}"
    else:
        tls = "no TLS"
    auth = f"AUTH as {backend.username}" if backend.username else "no AUTH"
    finding.what = finding.what.removesuffix(" STARTTLS").removesuffix(" implicit TLS")
    finding.details = f"{tls}, {auth}"
    if backend.username and not (backend.use_tls or backend.use_ssl):
        finding.warnings.append(
            "the password is sent unencrypted (hint: set use_tls=True, or use_ssl=True for "
            "port 465)"
        )


def _check_directory(path: os.PathLike[str] | str) -> None:
    """Write and remove a probe file: permissions, read-only mounts and full disks show."""
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".mailpost-check-") as probe:
            probe.write(b"mailpost check\n")
            probe.flush()
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), os.fspath(path)) from exc


def _open_and_close(backend: Any, finding: Finding) -> None:
    """A generic backend: open() then close(), when it has them (close even if open fails)."""
    open_, close = getattr(backend, "open", None), getattr(backend, "close", None)
    try:
        if callable(open_):
            open_()
    finally:
        if callable(close):
            close()
    cls = type(backend)
    if callable(open_) and finding.what == f"{cls.__module__}.{cls.__qualname__}":
        finding.details = "(opened and closed)"


def _timed_out(exc: BaseException) -> bool:
    current: BaseException | None = exc
    for _ in range(10):  # the exception chain is short; stop on a cycle
        if current is None:
            return False
        if isinstance(current, TimeoutError):
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass(frozen=True)
class _Target:
    """The SMTP mailer a failed check was talking to, and the --timeout it was given."""

    backend: Any
    timeout: float | None

    @property
    def host(self) -> str:
        return str(self.backend.host)

    @property
    def port(self) -> int:
        return int(self.backend.port)

    @property
    def tls(self) -> bool:
        return bool(self.backend.use_tls or self.backend.use_ssl)

    def waited(self, step: str) -> str:
        """How long the check waited at ``step``, as the report says it."""
        backend = self.backend
        limit = self.timeout or getattr(backend, step, None) or backend.timeout or DEFAULT_TIMEOUT
        return f"{limit:g} s"


Diagnosis = tuple[str, str | None]

_IMPLICIT_PORT = "port 465 expects TLS from the first byte: set use_ssl=True (smtps://)"


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    from mailpost._smtp.replies import decode_reply, describe_reply

    return describe_reply(exc.smtp_code, decode_reply(exc.smtp_error))


def _auth_refused(exc: smtplib.SMTPAuthenticationError, target: _Target) -> Diagnosis:
    return f"authentication failed: {_smtp_reply(exc)}", (
        f"the server refused user {target.backend.username!r} with the configured password: "
        "check 'username' and 'password' (providers such as Gmail or Microsoft 365 "
        "want an app password, or SMTP AUTH enabled for the account)"
    )


def _not_offered(exc: smtplib.SMTPNotSupportedError, target: _Target) -> Diagnosis:
    text = str(exc).lower()
    if "starttls" in text:
        hint = (
            _IMPLICIT_PORT + " instead of use_tls"
            if target.port == 465
            else "connect to the server's submission port (587 with use_tls=True, or 465 "
            "with use_ssl=True); mailpost never falls back to sending in clear text"
        )
        return "the server does not offer STARTTLS", hint
    if "auth" in text:
        hint = (
            "check the port: AUTH is usually offered on 587 or 465; or remove "
            "'username' and 'password' if this server needs no login"
            if target.tls
            else "many servers offer AUTH only after STARTTLS: set use_tls=True"
        )
        return "the server does not offer AUTH", hint
    return str(exc), None


def _disconnected(exc: smtplib.SMTPServerDisconnected, target: _Target) -> Diagnosis:
    implicit = target.port == 465
    if _timed_out(exc):
        hint = (
            _IMPLICIT_PORT
            if implicit and not target.backend.use_ssl
            else "is this an SMTP port? A server expecting TLS from the first byte "
            "(usually port 465) needs use_ssl=True; a slow server needs a larger "
            "--timeout"
        )
        waited = target.waited("greeting_timeout")
        return f"connected, but the server did not answer within {waited}", hint
    return f"the server closed the connection ({exc or 'no reason given'})", (
        "it may refuse this client (IP block list, connection limit)"
        + (", or expect TLS from the first byte: " + _IMPLICIT_PORT if implicit else "")
    )


def _session_refused(exc: smtplib.SMTPConnectError, target: _Target) -> Diagnosis:
    return f"the server refused the session: {_smtp_reply(exc)}", (
        "the server answered the connection with an error: it may be overloaded or "
        "refuse this client's address"
    )


def _error_reply(exc: smtplib.SMTPResponseException, target: _Target) -> Diagnosis:
    return _smtp_reply(exc), None


def _certificate(exc: ssl.SSLCertVerificationError, target: _Target) -> Diagnosis:
    problem = f"certificate verify failed: {exc.verify_message or exc.reason}"
    if exc.verify_code in _NAME_MISMATCH:
        return problem, (
            f"the certificate is not issued for {target.host!r}: set 'host' to a name the "
            "certificate lists"
        )
    if exc.verify_code == _CERT_EXPIRED:
        return problem, "the server's certificate has expired: its administrator must renew it"
    return problem, (
        "the certificate is not signed by a CA this machine trusts: for a private CA set "
        "SSL_CERT_FILE=/path/to/ca-bundle.pem (it replaces the system CA bundle), or "
        "subclass the SMTP backend and extend ssl_context"
    )


def _tls_failed(exc: ssl.SSLError, target: _Target) -> Diagnosis:
    if exc.reason == "WRONG_VERSION_NUMBER" and target.backend.use_ssl:
        return "TLS handshake failed: the server does not speak TLS on connect", (
            f"port {target.port} seems to speak plain SMTP first: use use_tls=True (STARTTLS, "
            "usually port 587) instead of use_ssl"
        )
    return f"TLS error: {exc.reason or exc}", None


def _connection_refused(exc: ConnectionRefusedError, target: _Target) -> Diagnosis:
    return "connection refused", (
        f"nothing accepts connections on {target.host}:{target.port}: check 'host' and "
        "'port' (587 with use_tls, 465 with use_ssl, 25 plain) and that the server is running"
    )


def _unresolved(exc: socket.gaierror, target: _Target) -> Diagnosis:
    return f"cannot resolve host {target.host!r} ({exc.strerror})", (
        "check the spelling of 'host' and this machine's DNS"
    )


def _network(exc: BaseException, target: _Target) -> Diagnosis:
    """Timeouts, unreachable networks, missing certificate files, and the rest."""
    from mailpost._smtp.replies import classify_exception

    if _timed_out(exc):
        return f"no answer within {target.waited('connect_timeout')}", (
            "a firewall may drop the connection (many networks and cloud providers block "
            "port 25); check 'host' and 'port', or allow more time with --timeout"
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return exc.strerror or str(exc), f"this machine has no network route to {target.host}"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"file not found: {exc.filename}", "check 'ssl_certfile' and 'ssl_keyfile'"
    return classify_exception(exc).text, None


# Most specific family first: the first entry the exception is an instance of explains it.
_SMTP_DIAGNOSES: tuple[tuple[type[BaseException], Callable[[Any, _Target], Diagnosis]], ...] = (
    (smtplib.SMTPAuthenticationError, _auth_refused),
    (smtplib.SMTPNotSupportedError, _not_offered),
    (smtplib.SMTPServerDisconnected, _disconnected),
    (smtplib.SMTPConnectError, _session_refused),
    (smtplib.SMTPResponseException, _error_reply),
    (ssl.SSLCertVerificationError, _certificate),
    (ssl.SSLError, _tls_failed),
    (ConnectionRefusedError, _connection_refused),
    (socket.gaierror, _unresolved),
    (BaseException, _network),
)


def _not_smtp(exc: BaseException) -> Diagnosis:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write{where}: {exc.strerror}", "check the directory's permissions"
    return f"{type(exc).__name__}: {exc}", None


def diagnose(backend: Any, exc: BaseException, timeout: float | None) -> Diagnosis:
    """What went wrong, in words, and a hint that points at the fix. Never a password."""
    from mailpost.backends.smtp import SMTPBackend

    if not isinstance(backend, SMTPBackend):
        return _not_smtp(exc)
    target = _Target(backend, timeout)
    handler = next(h for family, h in _SMTP_DIAGNOSES if isinstance(exc, family))
    return handler(exc, target)
