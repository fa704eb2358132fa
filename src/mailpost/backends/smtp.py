"""The SMTP backend: hands messages to an SMTP server, one transaction per message.

Configure it in ``MAILERS`` with ``"BACKEND": "mailpost.backends.smtp.EmailBackend"``.
Every message gets a :class:`~mailpost.DeliveryResult` with the server's reply to each
RCPT TO and to DATA. A batch keeps going past a failed message; a lost session (or a
421 reply) gets one reconnect and the interrupted message is retried once, unless the
server had already replied to it. If the session drops after the message was sent but
before the server's reply arrived, the retry may deliver it twice (with the same
Message-ID): the one duplicate window SMTP leaves open. STARTTLS and implicit TLS verify
the server's certificate and host name; a failed STARTTLS never falls back to cleartext.

The protocol runs on mailpost's asyncio engine (:mod:`mailpost._smtp.engine`): natively
on the caller's loop for ``asend_messages`` / ``aopen``, and on one private background
loop for the blocking API. A batch uses ESMTP PIPELINING when offered and up to
``max_connections`` pooled sessions.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine, Sequence
from functools import cached_property
from typing import Any, TypeVar

from mailpost import _config, _django
from mailpost._config import settings
from mailpost._delivery import DeliveryResult
from mailpost._smtp.engine import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DATA_TIMEOUT,
    DEFAULT_GREETING_TIMEOUT,
    ClientConfig,
    Item,
    Pool,
    background_loop,
    composition_failed,
    run_sync,
    send_batch,
    unattempted,
)
from mailpost._smtp.ratelimit import RateLimit, shared_limit
from mailpost._smtp.replies import classify_exception
from mailpost.backends.base import BaseEmailBackend
from mailpost.message import (
    EmailAttachment,
    EmailMessage,
    FileContent,
    envelope,
    message_id_of,
    serialize,
    serialize_stream,
)
from mailpost.utils import DNS_NAME

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


T = TypeVar("T")


class SMTPBackend(BaseEmailBackend):
    """Send messages through an SMTP server (RFC 5321), with STARTTLS or implicit TLS.

    Built by ``mailers[alias]`` from ``MAILERS`` OPTIONS: ``host`` (required), ``port``
    (587 with ``use_tls``, 465 with ``use_ssl``, else 25), ``username`` / ``password``,
    ``use_tls`` / ``use_ssl``, ``ssl_certfile`` / ``ssl_keyfile`` (client certificate),
    ``timeout`` (seconds; default ``socket.getdefaulttimeout()``) and ``fail_silently``.
    Engine options (keyword-only): ``max_connections`` (1), ``messages_per_connection``
    (None: unlimited), ``health_check_after`` (30 s idle before a NOOP check),
    ``rate_limit`` (messages per second, None), ``pipelining`` (True: when offered),
    ``connect_timeout`` / ``greeting_timeout`` / ``command_timeout`` (default ``timeout``).
    Constructed directly (deprecated, only while ``MAILERS`` is not defined), unset
    options come from the legacy ``EMAIL_*`` settings.
    """

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
        max_connections: int = 1,
        messages_per_connection: int | None = None,
        health_check_after: float | None = 30.0,
        rate_limit: float | None = None,
        pipelining: bool = True,
        connect_timeout: float | None = None,
        greeting_timeout: float | None = None,
        command_timeout: float | None = None,
        alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        if alias is None:  # compat: constructed directly, not built for a MAILERS alias
            self._warn_direct()
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
        self._legacy = alias is None  # compat:
        self._from_settings: set[str] = set()
        if self._legacy:  # compat: unset options fall back to the EMAIL_* settings
            mailers_defined = _mailers_defined()
            for option, setting in _LEGACY_SETTINGS.items():
                if given[option] is not None:
                    continue
                if mailers_defined:
                    raise AttributeError(
                        f"The {setting} setting is not available when MAILERS is defined. "
                        f"(Use mailpost.mailers[alias] to get a configured SMTP backend "
                        f"instead of constructing {type(self).__name__} directly.)"
                    )
                given[option] = getattr(settings, setting)
                self._from_settings.add(option)
        self.use_tls = self._check_flag("use_tls", given["use_tls"])
        self.use_ssl = self._check_flag("use_ssl", given["use_ssl"])
        if self.use_tls and self.use_ssl:
            if self._legacy:
                raise ValueError(
                    "EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive, so only set one of "
                    "those settings to True. (use_tls is STARTTLS, use_ssl implicit TLS.)"
                )
            raise self.invalid(
                "The 'use_ssl' and 'use_tls' OPTIONS are incompatible. Set at most one of "
                "them to True. ('use_tls' is STARTTLS, 'use_ssl' implicit TLS.)"
            )
        self.host = self._check_host(given["host"])
        self.port = self._check_port(given["port"])
        self.username, self.password = self._check_credentials(given["username"], given["password"])
        self.timeout = self._check_timeout(given["timeout"])
        self.ssl_certfile, self.ssl_keyfile = self._check_certs(
            given["ssl_certfile"], given["ssl_keyfile"]
        )
        self.max_connections = self._check_count("max_connections", max_connections)
        self.messages_per_connection = (
            None
            if messages_per_connection is None
            else self._check_count("messages_per_connection", messages_per_connection)
        )
        self.health_check_after = self._check_seconds(
            "health_check_after", health_check_after, zero=True
        )
        self.rate_limit = self._check_seconds("rate_limit", rate_limit, unit="messages per second")
        if not isinstance(pipelining, bool):
            raise self.invalid(f"option 'pipelining' must be True or False, not {pipelining!r}")
        self.pipelining = pipelining
        self.connect_timeout = self._check_seconds("connect_timeout", connect_timeout)
        self.greeting_timeout = self._check_seconds("greeting_timeout", greeting_timeout)
        self.command_timeout = self._check_seconds("command_timeout", command_timeout)
        self._pool: Pool | None = None
        self._lock = threading.RLock()

    # -- configuration ---------------------------------------------------------------

    def _warn_direct(self) -> None:
        """compat: Django 6.1 deprecates constructing the SMTP backend directly. Not warned
        when mailpost itself builds it (the legacy ``EMAIL_BACKEND`` mailer,
        ``get_connection()``), as Django does not."""
        level, frame = self._construction_site()
        if frame is not None and frame.f_globals.get("__name__", "").startswith("mailpost."):
            return
        _django.deprecated(
            f"Directly creating {type(self).__name__} instances is deprecated; use "
            "mailpost.mailers[alias] instead.",
            "Directly creating EmailBackend instances is deprecated. Use mail.mailers instead.",
            stacklevel=level,
            since=_django.DJANGO_6_1,
        )

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
                "OPTIONS must define 'host'. (The SMTP server's host name or IP address.)"
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

    def _check_credentials(self, username: Any, password: Any) -> tuple[str | None, str | None]:
        """As given (None when not set, as in Django); both or neither under MAILERS."""
        if username is not None and not isinstance(username, str):
            raise self.invalid(
                f"{self._option('username')} must be a string, not {type(username).__name__}"
            )
        if password is not None and not isinstance(password, str):
            raise self.invalid(  # the value is a secret: name its type only
                f"{self._option('password')} must be a string, not {type(password).__name__}"
            )
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
        return value  # as given: an int stays an int

    def _check_count(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.invalid(f"option {name!r} must be a positive integer, not {value!r}")
        return value

    def _check_seconds(
        self, name: str, value: Any, *, zero: bool = False, unit: str = "seconds"
    ) -> float | None:
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (value >= 0 if zero else value > 0)
        ):
            kind = "a non-negative" if zero else "a positive"
            raise self.invalid(f"option {name!r} must be {kind} number of {unit} or None, "
                               f"not {value!r}")  # fmt: skip
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

    # -- the engine ----------------------------------------------------------------------

    @property
    def connection(self) -> Pool | None:
        """The open pool of sessions (after :meth:`open` / :meth:`aopen`), else None;
        Django's name for it."""
        pool = self._pool
        return pool if pool is not None and pool.usable else None

    def _timeouts(self) -> dict[str, float | None]:
        base = self.timeout if self.timeout is not None else socket.getdefaulttimeout()

        def pick(option: float | None, default: float) -> float:
            if option is not None:
                return option
            return base if base is not None else default

        command = pick(self.command_timeout, DEFAULT_COMMAND_TIMEOUT)
        return {
            "connect_timeout": pick(self.connect_timeout, DEFAULT_CONNECT_TIMEOUT),
            "greeting_timeout": pick(self.greeting_timeout, DEFAULT_GREETING_TIMEOUT),
            "command_timeout": command,
            "data_timeout": pick(self.command_timeout, DEFAULT_DATA_TIMEOUT),
        }

    def _client_config(self) -> ClientConfig:
        """What the engine needs, read now (timeouts follow the socket default of the day)."""
        limit = None
        if self.rate_limit is not None:
            limit = (
                shared_limit(self.alias, self.rate_limit)
                if self.alias is not None
                else self._own_limit
            )
        return ClientConfig(
            host=self.host,
            port=self.port,
            label=self.label,
            use_tls=self.use_tls,
            use_ssl=self.use_ssl,
            ssl_context=self.ssl_context if self.use_tls or self.use_ssl else None,
            username=self.username or "",
            password=self.password or "",
            local_hostname=DNS_NAME.get_fqdn(),
            pipelining=self.pipelining,
            max_connections=self.max_connections,
            messages_per_connection=self.messages_per_connection,
            health_check_after=self.health_check_after,
            rate_limit=limit,
            **self._timeouts(),
        )

    @cached_property
    def _own_limit(self) -> RateLimit:
        assert self.rate_limit is not None
        return RateLimit(self.rate_limit)

    async def _warm(self, pool: Pool) -> None:
        """Open the pool's first session now, so :meth:`open` reports a failure."""
        pool.release(await pool.acquire())

    def _log_open_failure(self, exc: OSError) -> None:
        logger.info(
            "%s: could not connect to %s:%s: %s",
            self.label,
            self.host,
            self.port,
            classify_exception(exc).text,
        )

    # -- open / close ----------------------------------------------------------------

    def open(self) -> bool | None:
        """Open the pool (its first session now). True if newly opened, False if already open.

        With ``fail_silently`` a failure to connect is logged and None is returned.
        """
        with self._lock:
            if self.connection is not None:
                return False
            loop = background_loop()
            pool: Pool | None = None
            try:
                pool = Pool(self._client_config(), loop)
                run_sync(self._warm(pool), loop)
            except OSError as exc:
                if pool is not None:
                    run_sync(pool.close(), loop)
                if not self.fail_silently:
                    raise
                self._log_open_failure(exc)
                return None
            self._pool = pool
            return True

    def close(self) -> None:
        """Say QUIT and close the sessions, if open. Never raises for the network:
        by now every message has been handed over or reported."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None or not pool.usable:
            return
        if _running_loop() is pool.loop:  # opened by aopen(); closed from its own loop
            task = pool.loop.create_task(pool.close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
            return
        run_sync(pool.close(), pool.loop)

    async def aopen(self) -> bool | None:
        """Async :meth:`open`: the sessions live on the running event loop."""
        if self.connection is not None:
            return False
        pool: Pool | None = None
        try:
            pool = Pool(self._client_config(), asyncio.get_running_loop())
            await self._warm(pool)
        except OSError as exc:
            if pool is not None:
                await pool.close()
            if not self.fail_silently:
                raise
            self._log_open_failure(exc)
            return None
        self._pool = pool
        return True

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        pool, self._pool = self._pool, None
        if pool is not None and pool.usable:
            await _on_loop(pool.close(), pool.loop)

    # -- sending ---------------------------------------------------------------------

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send each message in its own transaction; return how many the server took.

        Messages are composed as they are sent (while the server works on the previous
        one), so a large batch never holds all its wire bytes at once. A message that
        cannot be composed (an invalid address, a header with a line break, an unreadable
        file) is not sent and the rest of the batch is; its error is then raised (unless
        ``fail_silently``), every message's ``delivery`` recorded. Opens the backend if it is
        not open and then closes it; a backend opened with :meth:`open` is left open. A large batch
        is spread over up to ``max_connections`` sessions, with pipelining when offered.
        """
        if not email_messages:
            return 0
        prepared = self._prepare_all(email_messages, same_thread=False)
        batch = [item for item in prepared if item.recipients]
        results: list[DeliveryResult] = []
        if batch:
            pool = self.connection
            if pool is not None:
                results = run_sync(send_batch(pool, batch), pool.loop)
            else:
                results = run_sync(self._send_once(batch))
        return self._report(prepared, results)

    def send_each(
        self,
        email_messages: Sequence[EmailMessage],
        on_result: Callable[[int, EmailMessage], None],
    ) -> None:
        """Send a batch on the open session(s), reporting each message as it settles.

        For the spool worker: ``on_result(index, message)`` is called (on the engine's
        thread, so it must be quick) as soon as ``message.delivery`` holds its final
        result, while the rest of the batch is still on the wire; the worker commits
        outcomes meanwhile. Nothing is raised or logged for failed messages: every
        outcome is in ``delivery``. Needs :meth:`open` first.
        """
        pool = self.connection
        if pool is None:
            raise RuntimeError(
                f"{self.label}: send_each() needs the backend open (call open() first)"
            )
        prepared = self._prepare_all(email_messages, same_thread=False)
        positions: list[int] = []
        batch: list[Item] = []
        for index, item in enumerate(prepared):
            if item.recipients:
                positions.append(index)
                batch.append(item)
                continue
            result = (
                composition_failed(item)
                if item.error is not None
                else DeliveryResult(message_id=item.message_id)
            )
            self.record(item.message, result)
            on_result(index, item.message)
        if not batch:
            return

        def settled(position: int, result: DeliveryResult) -> None:
            message = batch[position].message
            self.record(message, result)
            on_result(positions[position], message)

        run_sync(send_batch(pool, batch, settled), pool.loop)

    async def asend_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Async :meth:`send_messages`, native: same results, records and errors. Messages
        are composed on the event loop one at a time, as they are sent."""
        if not email_messages:
            return 0
        pool = self.connection
        same_thread = pool is None or pool.loop is asyncio.get_running_loop()
        prepared = self._prepare_all(email_messages, same_thread=same_thread)
        batch = [item for item in prepared if item.recipients]
        results: list[DeliveryResult] = []
        if batch:
            if pool is not None:
                results = await _on_loop(send_batch(pool, batch), pool.loop)
            else:
                results = await self._send_once(batch)
        return self._report(prepared, results)

    async def _send_once(self, batch: list[Item]) -> list[DeliveryResult]:
        """A batch on sessions opened for it and closed (QUIT) after it."""
        try:
            config = self._client_config()
        except OSError as exc:  # e.g. the client certificate file cannot be read
            failure = classify_exception(exc)
            text = f"could not connect to {self.host}:{self.port}: {failure.text}"
            return [unattempted(item, text, failure, exc) for item in batch]
        pool = Pool(config, asyncio.get_running_loop())
        try:
            return await send_batch(pool, batch)
        finally:
            await pool.close()

    def _prepare_all(self, messages: Sequence[EmailMessage], *, same_thread: bool) -> list[Item]:
        """An :class:`Item` per message: its envelope now, its bytes when it is sent.

        mailpost's own writer runs when the message is about to go out, in a copy of the
        caller's context (Flask's app context, Django's active language), on the thread
        that runs the sessions. When that is not the caller's thread (``same_thread``
        false: the sync API), only messages made of plain ``str``/``bytes`` are composed
        there; one with lazy values (``gettext_lazy``), whose text may depend on the
        caller's thread, and one whose class has its own ``message()`` or ``_render()``
        (caller code) are composed here and now. A message whose envelope is invalid gets
        an item with no recipients and its ``error`` set: it is not sent, and the error is
        raised after the batch.
        """
        context = contextvars.copy_context()

        def compose_in_context(item: Item, eight_bit: bool) -> None:
            context.run(_compose, item, eight_bit)

        items = []
        for message in messages:
            prerendered = getattr(message, "prerendered", None)
            if (
                prerendered is not None
            ):  # a spooled message: envelope and bytes as the spool took them
                sender, recipients, data, message_id = prerendered()
                item = Item(message, sender, recipients, data, message_id)
                items.append(item)
                continue
            try:
                sender, recipients = envelope(message)
            except Exception as exc:
                item = Item(message, "", [], b"", None)
                item.error = exc
                items.append(item)
                continue
            cls = type(message)
            if (
                cls.message is EmailMessage.message
                and cls._render is EmailMessage._render
                and (same_thread or _plain(message))
            ):
                item = Item(message, sender, recipients, b"", None, prepare=compose_in_context)
            else:
                item = Item(message, sender, recipients, b"", None, prepare=_compose)
                item.ready(False)
            items.append(item)
        return items

    def _report(self, prepared: Sequence[Item], results: Sequence[DeliveryResult]) -> int:
        """Record every message's result in batch order; count what was sent.

        A message with no recipients is recorded as having nothing to deliver (counted as
        0, as in Django, and not a failure). If a message could not be composed, its error
        is raised (unless ``fail_silently``) once every result is recorded and logged.
        """
        sent = iter(results)
        ordered = []
        for item in prepared:
            if item.recipients:
                result = next(sent)
            elif item.error is not None:
                result = composition_failed(item)
            else:
                result = DeliveryResult(message_id=item.message_id)
            ordered.append(self.record(item.message, result))
        error = next((item.error for item in prepared if item.error is not None), None)
        return self.finish(ordered, error)


_PLAIN = (str, bytes)


def _plain(message: EmailMessage) -> bool:
    """Whether every value the writer reads from ``message`` is a plain str or bytes, so
    composing it on another thread gives the same bytes."""
    if type(message.subject) is not str or type(message.body) is not str:
        return False
    if message.encoding is not None and type(message.encoding) is not str:
        return False
    for value in message.extra_headers.values():
        if type(value) is not str:
            return False
    for group in ((message.from_email,), message.to, message.cc, message.reply_to):
        for address in group:
            if type(address) is not str and not (
                type(address) is tuple and all(type(part) is str for part in address)
            ):
                return False
    for alternative in getattr(message, "alternatives", ()):
        if type(alternative[0]) not in _PLAIN:
            return False
    for attachment in message.attachments:
        if not isinstance(attachment, EmailAttachment):
            return False
        if type(attachment.content) not in _PLAIN and not isinstance(
            attachment.content, FileContent
        ):
            return False
        if attachment.filename is not None and type(attachment.filename) is not str:
            return False
    return True


def _compose(item: Item, eight_bit: bool) -> None:
    """Make ``item``'s wire bytes (8-bit text when the session offers 8BITMIME)."""
    message = item.message
    stream = serialize_stream(message)
    if stream is not None:  # files are read while the message is written
        item.stream = stream
        item.data = stream.head
        item.message_id = message_id_of(stream.head)
        return
    data = serialize(message, eight_bit=eight_bit)
    item.data = data
    item.message_id = message_id_of(data)
    if eight_bit and not data.isascii():

        def render() -> tuple[bytes, str | None]:
            seven = serialize(message)
            return seven, message_id_of(seven)

        item.eight_bit = True
        item.render = render


_closing: set[asyncio.Task[None]] = set()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _on_loop(coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop) -> T:
    """Await ``coro`` on ``loop``: directly if it is the running loop, else across threads."""
    if loop is asyncio.get_running_loop():
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


EmailBackend = SMTPBackend
