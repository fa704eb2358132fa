"""The SMTP backend: hands messages to an SMTP server, one transaction per message.

Configure it in ``MAILERS`` with ``"BACKEND": "mailpost.backends.smtp.EmailBackend"``.
Every message gets a :class:`~mailpost.DeliveryResult` with the server's reply to each
RCPT TO and to DATA. A batch keeps going past a failed message; a lost connection (or a
421 reply) gets one reconnect and the interrupted message is retried once if the server
had not taken it. STARTTLS and implicit TLS verify the server's certificate and host
name; a failed STARTTLS never falls back to cleartext.
"""

from __future__ import annotations

import errno
import logging
import os
import smtplib
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mailpost import _config
from mailpost._config import settings
from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost._smtp.envelope import data_payload, plan_mail
from mailpost._smtp.policy import ReconnectPolicy
from mailpost._smtp.replies import (
    Failure,
    classify_exception,
    closes_connection,
    decode_reply,
    describe_reply,
    is_success,
)
from mailpost.backends.base import BaseEmailBackend
from mailpost.message import envelope, message_id_of, serialize
from mailpost.utils import DNS_NAME

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["EmailBackend", "SMTPBackend"]

logger = logging.getLogger("mailpost.smtp")

PathArg = str | os.PathLike[str]

#: compat: the legacy setting each option falls back to when MAILERS is not defined.
_LEGACY_SETTINGS = {
    "host": "EMAIL_HOST",
    "port": "EMAIL_PORT",
    "username": "EMAIL_HOST_USER",
    "password": "EMAIL_HOST_PASSWORD",
    "use_tls": "EMAIL_USE_TLS",
    "use_ssl": "EMAIL_USE_SSL",
    "timeout": "EMAIL_TIMEOUT",
    "ssl_keyfile": "EMAIL_SSL_KEYFILE",
    "ssl_certfile": "EMAIL_SSL_CERTFILE",
}


def _mailers_defined() -> bool:
    value, defined = _config.lookup("MAILERS")
    return defined and value is not None


@dataclass
class _Outgoing:
    """A message made ready for the wire: envelope and bytes computed once."""

    message: EmailMessage
    sender: str
    recipients: list[str]
    data: bytes
    message_id: str | None


@dataclass
class _Attempt:
    """One transaction's outcome. ``lost``: the connection died before the server took
    the message. ``usable``: the connection can carry the next message."""

    result: DeliveryResult
    lost: bool = False
    usable: bool = True


class SMTPBackend(BaseEmailBackend):
    """Send messages through an SMTP server (RFC 5321), with STARTTLS or implicit TLS.

    Built by ``mailers[alias]`` from ``MAILERS`` OPTIONS: ``host`` (required), ``port``
    (587 with ``use_tls``, 465 with ``use_ssl``, else 25), ``username`` / ``password``,
    ``use_tls`` / ``use_ssl``, ``ssl_certfile`` / ``ssl_keyfile`` (client certificate),
    ``timeout`` (seconds; default ``socket.getdefaulttimeout()``) and ``fail_silently``.
    Constructed directly (deprecated, only while ``MAILERS`` is not defined), unset
    options come from the legacy ``EMAIL_*`` settings.
    """

    connection: smtplib.SMTP | None

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        fail_silently: bool = False,
        use_ssl: bool | None = None,
        timeout: float | None = None,
        ssl_keyfile: PathArg | None = None,
        ssl_certfile: PathArg | None = None,
        *,
        alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        mailers_defined = _mailers_defined()
        if alias is None and mailers_defined:
            raise AttributeError(
                f"{type(self).__name__} cannot be constructed directly when MAILERS is "
                "defined; use mailpost.mailers[alias] (e.g. mailers['default']) to get a "
                "configured SMTP backend"
            )
        super().__init__(fail_silently=fail_silently, alias=alias, **kwargs)
        given: dict[str, Any] = {
            "host": host,
            "port": port,
            "username": username,
            "password": password,
            "use_tls": use_tls,
            "use_ssl": use_ssl,
            "timeout": timeout,
            "ssl_keyfile": ssl_keyfile,
            "ssl_certfile": ssl_certfile,
        }
        self._legacy = alias is None or not mailers_defined  # compat:
        self._from_settings: set[str] = set()
        if self._legacy:  # compat: unset options fall back to the EMAIL_* settings
            for option, setting in _LEGACY_SETTINGS.items():
                if given[option] is None:
                    given[option] = getattr(settings, setting)
                    self._from_settings.add(option)
        self.use_tls = self._check_flag("use_tls", given["use_tls"])
        self.use_ssl = self._check_flag("use_ssl", given["use_ssl"])
        if self.use_tls and self.use_ssl:
            raise self.invalid(
                "options 'use_tls' (STARTTLS) and 'use_ssl' (implicit TLS) are mutually "
                "exclusive; set only one of them"
            )
        self.host = self._check_host(given["host"])
        self.port = self._check_port(given["port"])
        self.username, self.password = self._check_credentials(given["username"], given["password"])
        self.timeout = self._check_timeout(given["timeout"])
        self.ssl_certfile, self.ssl_keyfile = self._check_certs(
            given["ssl_certfile"], given["ssl_keyfile"]
        )
        self.connection = None
        self._lock = threading.RLock()

    # -- configuration ---------------------------------------------------------------

    def _option(self, name: str) -> str:
        """How an error names option ``name`` (and the setting it came from, if any)."""
        if name in self._from_settings:  # compat:
            return f"option {name!r} (from settings.{_LEGACY_SETTINGS[name]})"
        return f"option {name!r}"

    def _check_flag(self, name: str, value: Any) -> bool:
        if value is None:
            return False
        if self._legacy and name in self._from_settings:  # compat: settings may hold 0/1
            return bool(value)
        if not isinstance(value, bool):
            raise self.invalid(f"{self._option(name)} must be True or False, not {value!r}")
        return value

    def _check_host(self, value: Any) -> str:
        if value is None or value == "":
            if self._legacy:  # compat: direct construction defaults to localhost
                return "localhost"
            raise self.invalid(
                "option 'host' is required: the SMTP server's host name or IP address"
            )
        if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
            raise self.invalid(f"{self._option('host')} must be a host name or IP address")
        return value

    def _check_port(self, value: Any) -> int:
        if value is None:
            if self._legacy:  # compat: port 25 even with use_tls / use_ssl
                return 25
            return 465 if self.use_ssl else 587 if self.use_tls else 25
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise self.invalid(
                f"{self._option('port')} must be an integer from 1 to 65535, not {value!r}"
            )
        return value

    def _check_credentials(self, username: Any, password: Any) -> tuple[str, str]:
        if username is not None and not isinstance(username, str):
            raise self.invalid(
                f"{self._option('username')} must be a string, not {type(username).__name__}"
            )
        if password is not None and not isinstance(password, str):
            raise self.invalid(  # the value is a secret: name its type only
                f"{self._option('password')} must be a string, not {type(password).__name__}"
            )
        username, password = username or "", password or ""
        if not self._legacy and bool(username) != bool(password):
            missing = "password" if username else "username"
            raise self.invalid(
                f"option {missing!r} is missing: 'username' and 'password' go together"
            )
        return username, password

    def _check_timeout(self, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self.invalid(
                f"{self._option('timeout')} must be a positive number of seconds or None, "
                f"not {value!r}"
            )
        return float(value)

    def _check_certs(self, certfile: Any, keyfile: Any) -> tuple[PathArg | None, PathArg | None]:
        for name, value in (("ssl_certfile", certfile), ("ssl_keyfile", keyfile)):
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise self.invalid(
                    f"{self._option(name)} must be a file path, not {type(value).__name__}"
                )
        if self._legacy:  # compat: legacy settings were never cross-checked
            return certfile or None, keyfile or None
        if keyfile is not None and certfile is None:
            raise self.invalid("option 'ssl_keyfile' needs 'ssl_certfile' (the client cert)")
        if certfile is not None and not (self.use_tls or self.use_ssl):
            raise self.invalid("option 'ssl_certfile' has no effect without 'use_tls' or 'use_ssl'")
        return certfile, keyfile

    def __repr__(self) -> str:
        tls = "ssl" if self.use_ssl else "starttls" if self.use_tls else "none"
        return (
            f"<{type(self).__name__} alias={self.alias!r} host={self.host!r} "
            f"port={self.port} tls={tls}>"
        )

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings for STARTTLS and implicit TLS.

        System CA roots, certificate and host name checked. Extend it in a subclass to
        trust a private CA (``context.load_verify_locations(...)``); the client
        certificate options are loaded here.
        """
        context = ssl.create_default_context()
        if self.ssl_certfile is not None:
            try:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
            except FileNotFoundError as exc:  # ssl does not say which file
                files = (self.ssl_certfile, self.ssl_keyfile)
                missing = next((f for f in files if f and not os.path.exists(f)), None)
                if missing is None:
                    raise
                raise FileNotFoundError(
                    errno.ENOENT, "client certificate file not found", os.fspath(missing)
                ) from exc
        return context

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        """``smtplib.SMTP_SSL`` for implicit TLS, else ``smtplib.SMTP``."""
        return smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP

    # -- connection ------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        """A new session: connected, greeted, TLS on if configured, logged in.

        Raises the underlying error (always an ``OSError``: smtplib and ssl errors are).
        STARTTLS that is not offered or fails raises; the session is never used in clear.
        """
        options: dict[str, Any] = {"local_hostname": DNS_NAME.get_fqdn()}
        if self.timeout is not None:  # else smtplib uses socket.getdefaulttimeout()
            options["timeout"] = self.timeout
        context = self.ssl_context if self.use_tls or self.use_ssl else None
        if self.use_ssl:
            options["context"] = context
        conn = self.connection_class(self.host, self.port, **options)  # connects, greets
        try:
            conn.ehlo_or_helo_if_needed()
            if self.use_tls:
                conn.starttls(context=context)
                conn.ehlo_or_helo_if_needed()
            if self.username and self.password:
                conn.login(self.username, self.password)
        except BaseException:
            conn.close()
            raise
        return conn

    def open(self) -> bool | None:
        """Open a session. True if a new one was opened, False if one is already open.

        With ``fail_silently`` a failure to connect is logged and None is returned.
        """
        with self._lock:
            if self.connection is not None:
                return False
            try:
                self.connection = self._connect()
            except OSError as exc:
                if not self.fail_silently:
                    raise
                logger.info(
                    "%s: could not connect to %s:%s: %s",
                    self.label,
                    self.host,
                    self.port,
                    classify_exception(exc).text,
                )
                return None
            return True

    def close(self) -> None:
        """Say QUIT and close the session, if one is open. Never raises for the network:
        by now every message has been handed over or reported."""
        with self._lock:
            conn, self.connection = self.connection, None
            if conn is None:
                return
            try:
                conn.quit()
            except OSError as exc:
                logger.debug("%s: QUIT failed: %s", self.label, classify_exception(exc).text)
            finally:
                conn.close()

    def _discard_connection(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None:
            conn.close()

    # -- sending ---------------------------------------------------------------------

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send each message in its own transaction; return how many the server took.

        Every message is serialized before anything is sent, so a bad header raises
        (never silenced) with nothing delivered. Opens a session if none is open and then
        closes it; a session opened with :meth:`open` is left open.
        """
        if not email_messages:
            return 0
        with self._lock:
            prepared = [self._prepare(message) for message in email_messages]
            batch = [item for item in prepared if item.recipients]
            if not batch:
                return self.finish(self._in_order(prepared, []))
            opened_here = self.connection is None
            if opened_here:
                try:
                    self.connection = self._connect()
                except OSError as exc:
                    failure = classify_exception(exc)
                    text = f"could not connect to {self.host}:{self.port}: {failure.text}"
                    unattempted = self._unattempted(batch, text, failure, exc)
                    return self.finish(self._in_order(prepared, unattempted))
            try:
                results = self._send_batch(batch)
            finally:
                if opened_here:
                    self.close()
            return self.finish(self._in_order(prepared, results))

    def _in_order(
        self, prepared: Sequence[_Outgoing], results: Sequence[DeliveryResult]
    ) -> list[DeliveryResult]:
        """Every message's result in batch order; one with no recipients is recorded as
        having nothing to deliver (counted as 0, as in Django, and not a failure)."""
        sent = iter(results)
        ordered = []
        for item in prepared:
            if item.recipients:
                ordered.append(next(sent))
            else:
                ordered.append(
                    self.record(item.message, DeliveryResult(message_id=item.message_id))
                )
        return ordered

    def _prepare(self, message: EmailMessage) -> _Outgoing:
        data = serialize(message)
        sender, recipients = envelope(message)
        return _Outgoing(message, sender, recipients, data, message_id_of(data))

    def _unattempted(
        self,
        items: Sequence[_Outgoing],
        text: str,
        failure: Failure,
        exc: BaseException | None,
    ) -> list[DeliveryResult]:
        results = []
        for item in items:
            result = DeliveryResult(
                message_id=item.message_id,
                recipients=[
                    RecipientStatus(a, "unattempted", failure.code, failure.text)
                    for a in item.recipients
                ],
                error=f"not attempted: {text}",
                error_code=failure.code,
                retryable=failure.retryable,
                exception=exc,
            )
            results.append(self.record(item.message, result))
        return results

    def _send_batch(self, batch: list[_Outgoing]) -> list[DeliveryResult]:
        results: list[DeliveryResult] = []
        policy = ReconnectPolicy()
        interrupted: _Attempt | None = None  # the current message's first, lost attempt
        index = 0
        while index < len(batch):
            item = batch[index]
            if self.connection is None:
                problem = self._reconnect(policy)
                if problem is not None:
                    if interrupted is not None:
                        results.append(self.record(item.message, interrupted.result))
                        index += 1
                    results += self._unattempted(batch[index:], *problem)
                    break
            assert self.connection is not None
            attempt = self._transact(self.connection, item)
            if attempt.lost and interrupted is None:
                self._discard_connection()
                interrupted = attempt  # retried once, on a new connection
                continue
            interrupted = None
            results.append(self.record(item.message, attempt.result))
            index += 1
            if attempt.result.sent:
                policy.delivered()
            if not attempt.usable:
                self._discard_connection()
        return results

    def _reconnect(
        self, policy: ReconnectPolicy
    ) -> tuple[str, Failure, BaseException | None] | None:
        """Replace a lost connection; None on success, else why the rest cannot go."""
        if not policy.may_reconnect():
            text = "the connection was lost again before any message was delivered on it"
            return text, Failure(text, None, True), None
        logger.info("%s: connection lost; reconnecting to %s:%s", self.label, self.host, self.port)
        try:
            self.connection = self._connect()
        except OSError as exc:
            failure = classify_exception(exc)
            text = f"could not reconnect to {self.host}:{self.port}: {failure.text}"
            logger.warning("%s: %s", self.label, text)
            return text, failure, exc
        policy.reconnected()
        return None

    def _transact(self, conn: smtplib.SMTP, item: _Outgoing) -> _Attempt:
        """MAIL, RCPT for each recipient, DATA: one message, every reply recorded."""
        statuses = [RecipientStatus(a, "unattempted") for a in item.recipients]
        result = DeliveryResult(message_id=item.message_id, recipients=statuses)
        stage = "MAIL FROM"
        try:
            extensions = conn.esmtp_features if conn.does_esmtp else {}
            plan = plan_mail(item.data, extensions)
            if plan.problem is not None:
                _fail(
                    result, Failure(plan.problem), plan.problem, smtplib.SMTPException(plan.problem)
                )
                return _Attempt(result)
            code, raw = conn.mail(item.sender, list(plan.options))
            if closes_connection(code):
                return _closed(result, stage, code, raw)
            if not is_success(code):
                failure = Failure.from_reply(code, decode_reply(raw))
                for status in statuses:
                    status.code, status.reply = code, decode_reply(raw)
                exc = smtplib.SMTPSenderRefused(code, raw, item.sender)
                _fail(result, failure, f"MAIL FROM <{item.sender}> refused: {failure.text}", exc)
                return _Attempt(result, usable=_reset(conn))
            stage = "RCPT TO"
            for status in statuses:
                code, raw = conn.rcpt(status.address)
                if closes_connection(code):
                    return _closed(result, stage, code, raw)
                status.code, status.reply = code, decode_reply(raw)
                status.status = "accepted" if is_success(code) else "refused"
            if not any(s.accepted for s in statuses):
                _fail_recipients(result, statuses)
                return _Attempt(result, usable=_reset(conn))
            stage = "DATA"
            code, raw = conn.docmd("DATA")
            if closes_connection(code):
                return _closed(result, stage, code, raw)
            if code != 354:
                _fail_data(result, code, raw, "DATA command refused")
                return _Attempt(result, usable=_reset(conn))
            conn.send(data_payload(item.data))
            stage = "the end of DATA"
            code, raw = conn.getreply()
            result.response = (code, decode_reply(raw))
            if closes_connection(code):
                return _closed(result, stage, code, raw)
            if not is_success(code):
                _fail_data(result, code, raw, "message refused")
                return _Attempt(result)
        except OSError as exc:  # socket, TLS and smtplib errors: the session is unusable
            conn.close()
            return _lost(result, stage, classify_exception(exc), exc)
        result.sent = True
        refused = [s for s in statuses if not s.accepted]
        if refused:
            _fail_recipients(result, statuses)
        return _Attempt(result)


def _reset(conn: smtplib.SMTP) -> bool:
    """RSET after a failed transaction; whether the session is still usable."""
    try:
        code, _ = conn.rset()
    except OSError:
        conn.close()
        return False
    return is_success(code)


def _fail(result: DeliveryResult, failure: Failure, text: str, exc: BaseException | None) -> None:
    result.error = text
    result.error_code = failure.code
    result.retryable = failure.retryable
    result.exception = exc


def _fail_recipients(result: DeliveryResult, statuses: list[RecipientStatus]) -> None:
    """Some (sent) or all (not sent) recipients were refused at RCPT TO."""
    refused = [s for s in statuses if not s.accepted]
    details = "; ".join(f"<{s.address}>: {describe_reply(s.code, s.reply)}" for s in refused)
    if result.sent:
        text = f"{len(refused)} of {len(statuses)} recipient(s) refused: {details}"
    else:
        text = f"all {len(statuses)} recipient(s) refused: {details}"
    exc = smtplib.SMTPRecipientsRefused(
        {s.address: (s.code or 0, s.reply.encode()) for s in refused}
    )
    first = refused[0]
    retryable = all(s.retryable for s in refused)
    _fail(result, Failure(text, first.code, retryable), text, exc)


def _fail_data(result: DeliveryResult, code: int, raw: bytes, what: str) -> None:
    """The server refused the message at DATA: nobody got it."""
    failure = Failure.from_reply(code, decode_reply(raw))
    result.response = (code, decode_reply(raw))
    for status in result.recipients:
        if status.accepted:
            status.status, status.code, status.reply = "refused", code, decode_reply(raw)
    _fail(result, failure, f"{what}: {failure.text}", smtplib.SMTPDataError(code, raw))


def _closed(result: DeliveryResult, stage: str, code: int, raw: bytes) -> _Attempt:
    """The server answered 421 at ``stage``: it is closing the session."""
    failure = Failure.from_reply(code, decode_reply(raw))
    return _lost(result, stage, failure, smtplib.SMTPResponseException(code, raw))


def _lost(
    result: DeliveryResult, stage: str, failure: Failure, exc: BaseException | None
) -> _Attempt:
    """The session ended (dropped, timed out, 421) before the server took the message."""
    if failure.code is not None:
        text = f"the server closed the connection at {stage}: {failure.text}"
    else:
        text = f"connection lost at {stage}: {failure.text}"
    for status in result.recipients:
        if status.accepted or status.status == "unattempted":
            status.status, status.code, status.reply = "unattempted", failure.code, failure.text
    result.sent = False
    _fail(result, Failure(text, failure.code, True), text, exc)
    return _Attempt(result, lost=True, usable=False)


EmailBackend = SMTPBackend
