"""The one model every HTTP email-API backend follows.

A provider subclass supplies three pure pieces: :meth:`HTTPBackend.build` (message parts ->
one :class:`Request`), :meth:`HTTPBackend.message_id_from` (a 2xx reply -> the provider's
message id) and :meth:`HTTPBackend.error_text` (an error reply -> the provider's words).
This base does the rest: composes each message once, sends with httpx (a pooled sync
``Client`` and a native ``AsyncClient``, split timeouts, up to ``max_connections``
requests at once), classifies the reply (:func:`~mailpost.backends.http._parts.classify`)
and records a :class:`~mailpost.DeliveryResult` on every message, then reports failures
all at once like every built-in backend.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost._smtp.ratelimit import RateLimit, shared_limit
from mailpost.backends.base import BaseEmailBackend
from mailpost.backends.http._parts import (
    Parts,
    Verdict,
    classify,
    message_parts,
)
from mailpost.exceptions import MissingDependency

if TYPE_CHECKING:
    import httpx

    from mailpost.message import EmailMessage

__all__ = ["HTTPBackend", "Request", "json_body", "shared_ssl_context"]


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:  # pragma: no cover - the test extra installs it
        raise MissingDependency(
            'HTTP email backends need httpx: pip install "mailpost[http]"'
        ) from None
    return httpx


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context every HTTP backend's client uses, made once per process.

    httpx otherwise builds one (loading the whole CA bundle) for every ``Client``: tens of
    milliseconds, paid by each ``send_mail`` that opens its own client. The context is
    httpx's default (certifi's CAs, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set, read
    when it is first made); one context may serve many connections and threads.
    """
    httpx = _httpx()
    make = getattr(httpx, "create_ssl_context", None)
    if make is not None:  # httpx >= 0.28
        context: ssl.SSLContext = make()
        return context
    import certifi  # pragma: no cover - httpx 0.27 depends on it

    return ssl.create_default_context(cafile=certifi.where())  # pragma: no cover


@dataclass(slots=True)
class Request:
    """One HTTP request to a provider, built without I/O (so it is testable alone)."""

    method: str
    path: str  # joined to base_url
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""


#: One composed message: the message, its parts, and its single-message request.
_Item = tuple["EmailMessage", Parts, Request]


def json_body(payload: Any) -> bytes:
    """Compact UTF-8 JSON, as every provider accepts."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _read(response: httpx.Response, parse: bool) -> tuple[Any, str]:
    """(parsed JSON or None, text) of a reply; JSON is parsed only when ``parse``.

    Decodes UTF-8 directly unless the Content-Type names another charset (httpx's
    ``.text`` works that out with an email-header parser on every reply; JSON is UTF-8
    by RFC 8259, and ``.text`` without a charset decodes UTF-8 the same way).
    """
    content = response.content
    if not content:
        return None, ""
    content_type = response.headers.get("content-type", "")
    if "charset" not in content_type.lower() or _UTF8_CHARSET.search(content_type):
        text = content.decode("utf-8", "replace")
    else:
        text = response.text
    body: Any = None
    if parse:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
    return body, text


_UTF8_CHARSET = re.compile(r"charset\s*=\s*\"?utf-?8\"?\s*(;|$)", re.IGNORECASE)


class HTTPBackend(BaseEmailBackend):
    """Base for HTTP email-API backends; subclasses set ``provider`` and ``default_base_url``
    and implement :meth:`build`, :meth:`message_id_from` and :meth:`error_text`.

    OPTIONS: ``api_key`` (required), ``base_url`` (region or test server), ``timeout``
    (seconds for connect, read, write and pool; default 10), ``connect_timeout``
    (default ``min(timeout, 5)``), ``max_connections`` (concurrent requests per batch and
    pool size; default 1, as for SMTP, which keeps the batch in order), ``rate_limit``
    (requests per second across every instance of this mailer; default None), ``batch``
    (True: use the provider's batch endpoint, where it has one, for ``send_messages`` of
    several messages) and ``fail_silently``.
    """

    provider: ClassVar[str] = "HTTP"
    #: How errors name the credential option (SES calls it ``access_key_id``).
    key_option: ClassVar[str] = "api_key"
    default_base_url: ClassVar[str] = ""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        max_connections: int = 1,
        rate_limit: float | None = None,
        batch: bool = True,
        fail_silently: bool = False,
        alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, alias=alias, **kwargs)
        if not isinstance(api_key, str) or not api_key:
            raise self.invalid(f"option {self.key_option!r} is required for {self.provider}")
        self.api_key = api_key
        url = base_url if base_url is not None else self.default_base_url
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise self.invalid("option 'base_url' must be an http:// or https:// URL")
        self.base_url = url.rstrip("/")
        self.timeout = self._seconds("timeout", timeout)
        self.connect_timeout = self._seconds(
            "connect_timeout",
            min(self.timeout, 5.0) if connect_timeout is None else connect_timeout,
        )
        if type(max_connections) is not int or max_connections < 1:
            raise self.invalid(
                f"option 'max_connections' must be a positive integer, not {max_connections!r}"
            )
        self.max_connections = max_connections
        self.rate_limit = None if rate_limit is None else self._seconds("rate_limit", rate_limit)
        self._limit: RateLimit | None = None
        if self.rate_limit is not None:
            self._limit = (
                shared_limit(alias, self.rate_limit) if alias else RateLimit(self.rate_limit)
            )
        if not isinstance(batch, bool):
            raise self.invalid(f"option 'batch' must be True or False, not {batch!r}")
        self.batch = batch
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._lock = threading.Lock()
        self._urls: dict[str, httpx.URL] = {}

    def __repr__(self) -> str:  # never shows the key
        return f"<{type(self).__name__} alias={self.alias!r} base_url={self.base_url!r}>"

    def _seconds(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self.invalid(f"option {name!r} must be a positive number, not {value!r}")
        return float(value)

    # -- provider hooks (pure) ------------------------------------------------------

    def build(self, parts: Parts) -> Request:
        """The request that sends ``parts``; raise UnsupportedFeature for what cannot go."""
        raise NotImplementedError

    def message_id_from(self, status: int, headers: httpx.Headers, body: Any) -> str | None:
        """The provider's id for an accepted message (``body`` is parsed JSON or None)."""
        return None

    def error_text(self, status: int, body: Any, text: str) -> str:
        """The provider's own words for an error reply."""
        if isinstance(body, dict):
            for key in ("message", "Message", "error", "detail"):
                if isinstance(body.get(key), str):
                    return str(body[key])
        return text.strip()[:500] or f"HTTP {status}"

    def judge(self, status: int, headers: httpx.Headers, body: Any, text: str) -> Verdict:
        """Classify a reply; providers override for bodies that say more than the status."""
        verdict = classify(status, headers, text)
        if verdict.kind == "accepted":
            return verdict
        return Verdict(
            verdict.kind, status, self.error_text(status, body, text), verdict.retry_after
        )

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    # -- clients ----------------------------------------------------------------------

    def _timeouts(self) -> Any:
        return _httpx().Timeout(self.timeout, connect=self.connect_timeout)

    def _limits(self) -> Any:
        n = self.max_connections
        return _httpx().Limits(max_connections=n, max_keepalive_connections=n)

    def open(self) -> bool | None:
        with self._lock:
            if self._client is not None:
                return False
            self._client = _httpx().Client(
                base_url=self.base_url,
                timeout=self._timeouts(),
                limits=self._limits(),
                verify=shared_ssl_context(),
            )
            return True

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aopen(self) -> bool | None:
        if self._aclient is not None:
            return False
        self._aclient = _httpx().AsyncClient(
            base_url=self.base_url,
            timeout=self._timeouts(),
            limits=self._limits(),
            verify=shared_ssl_context(),
        )
        return True

    async def aclose(self) -> None:
        client, self._aclient = self._aclient, None
        if client is not None:
            await client.aclose()
        self.close()

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of ``path``, parsed once per path (not on every request)."""
        url = self._urls.get(path)
        if url is None:
            url = _httpx().URL(self.base_url + path)
            if len(self._urls) < 64:
                self._urls[path] = url
        return url

    # -- composing --------------------------------------------------------------------

    def _prepare(
        self, messages: Sequence[EmailMessage]
    ) -> tuple[list[tuple[EmailMessage, Parts, Request]], list[DeliveryResult], Exception | None]:
        """Compose every message before any request: bad ones are recorded, never sent."""
        ready: list[tuple[EmailMessage, Parts, Request]] = []
        failed: list[DeliveryResult] = []
        first: Exception | None = None
        for message in messages:
            try:
                parts = message_parts(message, self.provider)
                request = self.build(parts)
            except Exception as exc:
                result = DeliveryResult(
                    error=f"message could not be composed: {exc}", exception=exc
                )
                failed.append(self.record(message, result))
                first = first or exc
                continue
            request.headers.update(self.auth_headers())
            ready.append((message, parts, request))
        return ready, failed, first

    # -- results ------------------------------------------------------------------------

    def _result(self, message: EmailMessage, parts: Parts, response: httpx.Response) -> None:
        is_json = "json" in response.headers.get("content-type", "")
        body, text = _read(response, is_json)
        verdict = self.judge(response.status_code, response.headers, body, text)
        if verdict.kind == "accepted":
            provider_id = self.message_id_from(response.status_code, response.headers, body)
            if body is None and text and is_json:
                provider_id = None  # malformed JSON on a 2xx: sent, id unknown
            result = DeliveryResult(
                message_id=parts.message_id,
                sent=True,
                recipients=[
                    RecipientStatus(a, "accepted", verdict.status) for a in parts.recipients
                ],
                response=(response.status_code, text[:500]),
                provider_message_id=provider_id,
            )
        else:
            result = self._failure(parts, verdict)
        self.record(message, result)

    def _failure(
        self, parts: Parts, verdict: Verdict, exc: BaseException | None = None
    ) -> DeliveryResult:
        code = verdict.smtp_code
        where = f"HTTP {verdict.status}" if verdict.status else "no reply"
        error = f"{self.provider} {where}: {verdict.text}"
        if verdict.retry_after is not None:
            error += f" (retry after {verdict.retry_after:g} s)"
        unauthorized = verdict.kind == "unauthorized"
        return DeliveryResult(
            message_id=parts.message_id,
            recipients=[
                RecipientStatus(a, "unattempted" if unauthorized else "refused", code, verdict.text)
                for a in parts.recipients
            ],
            response=(verdict.status, verdict.text) if verdict.status else None,
            error=error,
            error_code=code,
            retryable=verdict.kind in ("retryable", "unauthorized"),
            attempted=not unauthorized,
            exception=exc,
            retry_after=verdict.retry_after,
        )

    def _request_failure(self, message: EmailMessage, parts: Parts, exc: BaseException) -> None:
        httpx = _httpx()
        if isinstance(exc, httpx.TimeoutException):
            text = f"timed out ({type(exc).__name__})"
        else:
            text = f"{type(exc).__name__}: {exc}"
        attempted = not isinstance(
            exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
        )
        result = self._failure(parts, Verdict("retryable", None, text), exc)
        result.attempted = attempted
        self.record(message, result)

    # -- batches (providers with a batch endpoint override these) -----------------------

    #: Most messages one batch request may carry; 1 means the provider has no batch endpoint.
    batch_limit: ClassVar[int] = 1

    def batchable(self, parts: Parts) -> bool:
        """Whether this message may go in a batch request (some fields are single-only)."""
        return False

    def build_batch(self, items: list[Parts]) -> Request:
        """One request carrying every message of ``items`` (pure)."""
        raise NotImplementedError

    def batch_results(self, body: Any, count: int) -> list[tuple[Verdict, str | None]] | None:
        """Per-message (verdict, provider id) from a 2xx batch reply, None if unreadable."""
        return None

    def _units(self, ready: list[_Item]) -> list[list[_Item]]:
        """Group messages into requests: batches where the provider has them, else one each."""
        if not self.batch or self.batch_limit <= 1 or len(ready) < 2:
            return [[item] for item in ready]
        units: list[list[_Item]] = []
        batch: list[_Item] = []
        for item in ready:
            if self.batchable(item[1]):
                batch.append(item)
                if len(batch) == self.batch_limit:
                    units.append(batch)
                    batch = []
            else:
                units.append([item])
        if batch:
            units.append(batch)
        return units

    def _unit_request(self, unit: list[_Item]) -> Request:
        if len(unit) == 1:
            return unit[0][2]
        request = self.build_batch([parts for _, parts, _ in unit])
        request.headers.update(self.auth_headers())
        return request

    def _unit_result(self, unit: list[_Item], response: httpx.Response) -> None:
        if len(unit) == 1:
            message, parts, _ = unit[0]
            self._result(message, parts, response)
            return
        body, text = _read(response, True)
        verdict = self.judge(response.status_code, response.headers, body, text)
        per_message = self.batch_results(body, len(unit)) if verdict.kind == "accepted" else None
        for n, (message, parts, _) in enumerate(unit):
            if per_message is None:
                # The whole batch's verdict; on a 2xx the reply did not say per message
                # (e.g. malformed JSON): sent, id unknown.
                one, provider_id = verdict, None
            else:
                one, provider_id = per_message[n]
            if one.kind == "accepted":
                result = DeliveryResult(
                    message_id=parts.message_id,
                    sent=True,
                    recipients=[
                        RecipientStatus(a, "accepted", one.status) for a in parts.recipients
                    ],
                    response=(response.status_code, one.text[:500]),
                    provider_message_id=provider_id,
                )
            else:
                result = self._failure(parts, one)
            self.record(message, result)

    def _unit_failure(self, unit: list[_Item], exc: BaseException) -> None:
        for message, parts, _ in unit:
            self._request_failure(message, parts, exc)

    # -- sending: sync ------------------------------------------------------------------

    def _wait_slot(self) -> float:
        return self._limit.reserve() if self._limit is not None else 0.0

    def _send_unit(self, client: httpx.Client, unit: list[_Item]) -> None:
        request = self._unit_request(unit)
        delay = self._wait_slot()
        if delay:
            time.sleep(delay)
        try:
            response = client.request(
                request.method,
                self._url(request.path),
                headers=request.headers,
                content=request.content,
            )
        except _httpx().HTTPError as exc:
            self._unit_failure(unit, exc)
            return
        self._unit_result(unit, response)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        ready, _failed, compose_error = self._prepare(email_messages)
        if ready:
            opened = self.open()
            try:
                assert self._client is not None
                client = self._client
                units = self._units(ready)
                workers = min(self.max_connections, len(units))
                if workers == 1:
                    for unit in units:
                        self._send_unit(client, unit)
                else:
                    with ThreadPoolExecutor(workers, thread_name_prefix="mailpost-http") as threads:
                        list(threads.map(lambda unit: self._send_unit(client, unit), units))
            finally:
                if opened:
                    self.close()
        return self.finish(
            [m.delivery for m in email_messages if m.delivery is not None], compose_error
        )

    # -- sending: async -----------------------------------------------------------------

    async def _asend_unit(self, client: httpx.AsyncClient, unit: list[_Item]) -> None:
        request = self._unit_request(unit)
        delay = self._wait_slot()
        if delay:
            await asyncio.sleep(delay)
        try:
            response = await client.request(
                request.method,
                self._url(request.path),
                headers=request.headers,
                content=request.content,
            )
        except _httpx().HTTPError as exc:
            self._unit_failure(unit, exc)
            return
        self._unit_result(unit, response)

    async def _asend_units(self, client: httpx.AsyncClient, units: list[list[_Item]]) -> None:
        """Send ``units`` over at most ``max_connections`` requests at once: that many
        workers take the next unit as each finishes (no task per message)."""
        queue = iter(units)

        async def worker() -> None:
            for unit in queue:
                await self._asend_unit(client, unit)

        workers = min(self.max_connections, len(units))
        if workers == 1:
            await worker()
        else:
            await asyncio.gather(*(worker() for _ in range(workers)))

    async def asend_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        ready, _failed, compose_error = self._prepare(email_messages)
        if ready:
            opened = await self.aopen()
            assert self._aclient is not None
            client = self._aclient
            try:
                await self._asend_units(client, self._units(ready))
            finally:
                if opened:
                    self._aclient = None
                    await client.aclose()
        return self.finish(
            [m.delivery for m in email_messages if m.delivery is not None], compose_error
        )
