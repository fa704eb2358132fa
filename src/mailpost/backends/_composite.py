"""What the composite mailers (failover, round robin) share: inner mailers, routes, merging.

A composite backend sends each message through a *route*: a list of other ``MAILERS``
aliases tried in order. The first mailer gets the whole batch in one call; messages it did
not take (it could not be reached, or it refused retryably) go, as one batch, to the next
mailer on their route, and so on. Per recipient:

- accepted by a mailer: done, never sent again;
- refused permanently (a 5xx reply, or the message itself could not be composed): done,
  never tried elsewhere;
- refused retryably (4xx), or never attempted (connection refused, TLS or AUTH failure,
  session lost): tried on the next mailer of the route, alone with the other such
  recipients (the accepted ones are not sent to again), with the same Message-ID.

The message's ``delivery`` merges what every mailer said: ``delivery.mailer`` is the
inner alias that took the message (the first one that accepted any recipient; the last one
tried when none did) and ``message.sent_using`` the composite's own alias.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailpost._delivery import DeliveryResult, RecipientStatus, is_retryable_code
from mailpost.backends.base import BaseEmailBackend
from mailpost.exceptions import InvalidMailer, MailerDoesNotExist

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = ["CompositeBackend", "parse_mailers"]

logger = logging.getLogger("mailpost")

_COMPOSED = "message could not be composed"


def parse_mailers(backend: BaseEmailBackend, mailers: Any, *, option: str = "mailers") -> list[str]:
    """Check ``OPTIONS['mailers']``: a non-empty list of distinct alias strings."""
    if mailers is None:
        raise backend.invalid(
            f"OPTIONS {option!r} is required: the aliases of the mailers to send through, "
            "e.g. ['primary', 'backup']"
        )
    if isinstance(mailers, str) or not isinstance(mailers, Sequence):
        raise backend.invalid(
            f"OPTIONS {option!r} must be a list of mailer aliases, not {type(mailers).__name__}"
        )
    aliases = list(mailers)
    if not aliases:
        raise backend.invalid(f"OPTIONS {option!r} is empty: name at least one mailer alias")
    for alias in aliases:
        if not isinstance(alias, str) or not alias:
            raise backend.invalid(f"OPTIONS {option!r}: {alias!r} is not a mailer alias")
    duplicates = sorted({a for a in aliases if aliases.count(a) > 1})
    if duplicates:
        raise backend.invalid(
            f"OPTIONS {option!r} names {', '.join(map(repr, duplicates))} more than once"
        )
    if backend.alias is not None and backend.alias in aliases:
        raise backend.invalid(
            f"OPTIONS {option!r} names {backend.alias!r}, this mailer itself; it must name "
            "other mailers (sending through itself would loop forever)"
        )
    return aliases


def _children(alias: str) -> list[str]:
    """The aliases the mailer ``alias`` sends through (composites and spools), for cycles."""
    from mailpost.handler import _import_backend, mailers, resolve_backend_path

    path, options = mailers._entry(alias)
    try:
        cls = _import_backend(resolve_backend_path(path), alias, f"MAILERS[{alias!r}]")
    except Exception:
        return []  # reported when the mailer itself is built
    if not (isinstance(cls, type) and issubclass(cls, BaseEmailBackend)):
        return []
    return cls.routes_through(options) if isinstance(options, Mapping) else []


@dataclass(slots=True)
class _Track:
    """One message on its way along its route."""

    message: EmailMessage
    route: list[str]
    recipients: list[str]  # the envelope, in order
    step: int = 0
    pending: list[str] = field(default_factory=list)
    final: dict[str, RecipientStatus] = field(default_factory=dict)  # lower address ->
    last: dict[str, RecipientStatus] = field(default_factory=dict)  # latest, still pending
    taken_by: str | None = None
    taken: DeliveryResult | None = None
    results: list[tuple[str, DeliveryResult]] = field(default_factory=list)
    message_id: str | None = None
    done: bool = False
    result: DeliveryResult | None = None  # set when done by a composing failure

    @property
    def mailer(self) -> str:
        return self.route[self.step]


class CompositeBackend(BaseEmailBackend):
    """Base of the failover and round-robin mailers: inner mailers, routes, merging.

    Subclasses set :attr:`aliases` (the inner mailers, in configured order) and implement
    :meth:`routes`. Inner mailers are built through ``mailpost.mailers`` when this mailer
    is built, so their own ``MAILERS`` entries apply; they are opened lazily, while this
    mailer is open (``open()`` / ``with``), the first time a message goes through them.
    """

    aliases: list[str]

    @classmethod
    def routes_through(cls, options: Mapping[str, Any]) -> list[str]:
        inner = options.get("mailers")
        if isinstance(inner, Mapping) or (
            isinstance(inner, Sequence) and not isinstance(inner, str)
        ):
            return [str(a) for a in inner]
        return []

    def __init__(
        self, fail_silently: bool = False, *, alias: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(fail_silently, alias=alias, **kwargs)
        #: alias -> backend; a foreign (Django-style) backend need not subclass the base.
        self.inner: dict[str, Any] = {}
        self._is_open = False
        self._opened: list[str] = []
        self._lock = threading.Lock()

    def _build_inner(self, aliases: list[str], option: str = "mailers") -> None:
        """Check the aliases exist and make no cycle, then build one backend for each."""
        from mailpost.handler import mailers

        self.aliases = aliases
        for name in aliases:
            self._check_cycles(name, option)
        for name in aliases:
            try:
                self.inner[name] = mailers[name]
            except MailerDoesNotExist:
                raise self._unknown(name, option) from None
            except InvalidMailer as exc:
                raise self.invalid(
                    f"OPTIONS {option!r}: mailer {name!r} cannot be built: {exc}"
                ) from exc

    def _unknown(self, name: str, option: str) -> InvalidMailer:
        from mailpost.handler import mailers

        defined = ", ".join(repr(a) for a in sorted(mailers.keys(), key=str)) or "none"
        return self.invalid(
            f"OPTIONS {option!r} names {name!r}, which is not a defined mailer "
            f"(defined aliases: {defined})"
        )

    def _check_cycles(self, start: str, option: str) -> None:
        """Follow composite ``mailers`` and spool ``mailer`` options from ``start``."""
        own = self.alias
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            name, path = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            try:
                children = _children(name)
            except MailerDoesNotExist:
                if name == start:
                    raise self._unknown(name, option) from None
                continue  # reported when that mailer is built
            except InvalidMailer:
                continue  # reported when that mailer is built
            for child in children:
                if child == own or child in path:
                    loop = " -> ".join(repr(a) for a in ([own] if own else []) + [*path, child])
                    raise self.invalid(
                        f"OPTIONS {option!r}: mailer {start!r} leads back in a cycle ({loop})"
                    )
                stack.append((child, [*path, child]))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label} mailers={self.aliases!r}>"

    # -- routes ---------------------------------------------------------------------------

    def routes(self, count: int) -> list[list[str]]:
        """The route (aliases to try, in order) for each of ``count`` messages."""
        raise NotImplementedError

    # -- open / close ---------------------------------------------------------------------

    def open(self) -> bool | None:
        """Open this mailer; inner mailers are opened when first used while it is open."""
        with self._lock:
            if self._is_open:
                return False
            self._is_open = True
            return True

    def close(self) -> None:
        """Close this mailer and every inner mailer opened since :meth:`open`. Never raises."""
        with self._lock:
            opened, self._opened, self._is_open = self._opened, [], False
        for name in opened:
            try:
                self.inner[name].close()
            except Exception:
                logger.warning("%s: closing mailer %r failed", self.label, name, exc_info=True)

    async def aopen(self) -> bool | None:
        """Async :meth:`open`."""
        return self.open()

    async def aclose(self) -> None:
        """Async :meth:`close`: inner mailers are closed with their ``aclose()``."""
        with self._lock:
            opened, self._opened, self._is_open = self._opened, [], False
        for name in opened:
            try:
                await self.inner[name].aclose()
            except Exception:
                logger.warning("%s: closing mailer %r failed", self.label, name, exc_info=True)

    def _needs_open(self, name: str) -> bool:
        with self._lock:
            if not self._is_open or name in self._opened:
                return False
            self._opened.append(name)
            return True

    # -- sending --------------------------------------------------------------------------

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send each message along its route; returns how many were sent."""
        if not email_messages:
            return 0
        run = _Run(self, email_messages)
        for _ in range(len(self.aliases)):
            groups = run.groups()
            if not groups:
                break
            for name, tracks in groups.items():
                run.absorb(name, tracks, self._send_group(name, tracks))
        return run.finish()

    async def asend_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Async :meth:`send_messages`, native: inner ``asend_messages``, mailers of one
        round in parallel."""
        if not email_messages:
            return 0
        run = _Run(self, email_messages)
        for _ in range(len(self.aliases)):
            groups = run.groups()
            if not groups:
                break
            names = list(groups)
            results = await asyncio.gather(*(self._asend_group(n, groups[n]) for n in names))
            for name, group_results in zip(names, results, strict=True):
                run.absorb(name, groups[name], group_results)
        return run.finish()

    def _send_group(self, name: str, tracks: list[_Track]) -> list[DeliveryResult]:
        backend = self.inner[name]
        batch = [_attempt_message(t) for t in tracks]
        if self._needs_open(name):
            try:
                backend.open()
            except Exception as exc:
                return [_unreachable(name, t, exc) for t in tracks]
        if isinstance(backend, BaseEmailBackend):
            error: Exception | None = None
            try:
                backend.send_messages(batch)
            except Exception as exc:
                error = exc
            return [_result_of(m, error) for m in batch]
        results = []  # a foreign backend: one call per message, judged by what it returns
        for message in batch:
            try:
                results.append(_result_of(message, None, backend.send_messages([message])))
            except Exception as exc:
                results.append(_result_of(message, exc))
        return results

    async def _asend_group(self, name: str, tracks: list[_Track]) -> list[DeliveryResult]:
        backend = self.inner[name]
        batch = [_attempt_message(t) for t in tracks]
        if self._needs_open(name):
            try:
                await backend.aopen()
            except Exception as exc:
                return [_unreachable(name, t, exc) for t in tracks]
        if isinstance(backend, BaseEmailBackend):
            error: Exception | None = None
            try:
                await backend.asend_messages(batch)
            except Exception as exc:
                error = exc
            return [_result_of(m, error) for m in batch]
        results = []
        for message in batch:
            try:
                count = await asyncio.to_thread(backend.send_messages, [message])
                results.append(_result_of(message, None, count))
            except Exception as exc:
                results.append(_result_of(message, exc))
        return results


# -- one send_messages call ---------------------------------------------------------------


class _Run:
    """The messages of one ``send_messages`` call, their routes and what happened."""

    def __init__(self, backend: CompositeBackend, messages: Sequence[EmailMessage]) -> None:
        from mailpost.message import envelope

        self.backend = backend
        self.tracks: list[_Track] = []
        self.compose_error: Exception | None = None
        for message, route in zip(messages, backend.routes(len(messages)), strict=True):
            try:
                _, recipients = envelope(message)
            except Exception as exc:
                track = _Track(message, route, [], done=True)
                track.result = DeliveryResult(error=f"{_COMPOSED}: {exc}", exception=exc)
                self.compose_error = self.compose_error or exc
            else:
                track = _Track(message, route, recipients, pending=list(recipients))
            self.tracks.append(track)

    def groups(self) -> dict[str, list[_Track]]:
        """Messages still to send, by the mailer each goes to next."""
        groups: dict[str, list[_Track]] = {}
        for track in self.tracks:
            if not track.done:
                groups.setdefault(track.mailer, []).append(track)
        return groups

    def absorb(self, name: str, tracks: list[_Track], results: list[DeliveryResult]) -> None:
        """Take what mailer ``name`` said about each message; move the rest along."""
        for track, result in zip(tracks, results, strict=True):
            track.results.append((name, result))
            track.message_id = track.message_id or result.message_id
            if _composition_failed(result):
                track.done, track.result = True, result
                self.compose_error = self.compose_error or _as_exception(result)
                continue
            if not track.recipients:  # nothing to deliver: what the mailer said is final
                track.done, track.taken_by, track.taken = True, name, result
                continue
            statuses = {s.address.lower(): s for s in result.recipients}
            still: list[str] = []
            for address in track.pending:
                status = statuses.get(address.lower())
                verdict = _verdict(result, status)
                if verdict == "accepted":
                    track.final[address.lower()] = status or RecipientStatus(address, "accepted")
                    if track.taken is None:
                        track.taken_by, track.taken = name, result
                elif verdict == "permanent":
                    track.final[address.lower()] = _refusal(address, result, status)
                else:
                    track.last[address.lower()] = _pending_status(address, result, status)
                    still.append(address)
            track.pending = still
            if not still:
                track.done = True
            elif track.step + 1 < len(track.route):
                nxt = track.route[track.step + 1]
                logger.info(
                    "%s: %s: %d recipient(s) not taken by %r (%s); trying %r",
                    self.backend.label,
                    track.message_id or "(no Message-ID)",
                    len(still),
                    name,
                    result.error or "refused",
                    nxt,
                )
                track.step += 1
            else:
                track.done = True

    def finish(self) -> int:
        """Record the merged result on every message; count and report as every backend."""
        results = []
        for track in self.tracks:
            result = track.result or _merged(track)
            if track.results:  # the innermost mailer, when an inner one is a composite too
                name, said = (
                    (track.taken_by, track.taken)
                    if track.taken_by is not None and track.taken is not None
                    else track.results[-1]
                )
                result.mailer = said.mailer or name
            else:  # could not be composed: no inner mailer saw it
                result.mailer = self.backend.alias
            track.message.delivery = result
            track.message.sent_using = self.backend.alias
            results.append(result)
        return self.backend.finish(results, self.compose_error)


def _composition_failed(result: DeliveryResult) -> bool:
    """The message itself is broken (bad header, bad address, unreadable file): no mailer
    can send it, so it is never tried on another."""
    return not result.sent and (result.error or "").startswith(_COMPOSED)


def _as_exception(result: DeliveryResult) -> Exception:
    exc = result.exception
    if isinstance(exc, Exception):
        return exc
    return ValueError(result.error or _COMPOSED)


def _verdict(result: DeliveryResult, status: RecipientStatus | None) -> str:
    """``accepted``, ``permanent`` (never retried elsewhere) or ``retry`` (next mailer)."""
    if status is None:
        if result.sent and not result.recipients:
            return "accepted"  # a backend that reports the message, not its recipients
        code = result.error_code
    else:
        if result.sent and status.accepted:
            return "accepted"
        code = status.code if status.code is not None else result.error_code
    if not result.attempted:  # the mailer never saw the message: connection, TLS, AUTH
        return "retry"
    if code is not None and not is_retryable_code(code):
        return "permanent"
    return "retry"


def _refusal(
    address: str, result: DeliveryResult, status: RecipientStatus | None
) -> RecipientStatus:
    """A permanent failure, as a refusal carrying its 5xx code (what the spool reads)."""
    code = status.code if status is not None and status.code is not None else result.error_code
    reply = status.reply if status is not None and status.reply else (result.error or "")
    return RecipientStatus(address, "refused", code, reply)


def _pending_status(
    address: str, result: DeliveryResult, status: RecipientStatus | None
) -> RecipientStatus:
    """A recipient still to deliver to, as the last mailer left it.

    When that mailer was never reached, its reply (even a 5xx such as AUTH's 535) is about
    the mailer, not the message: the code is dropped, so nobody reads it as permanent.
    """
    if not result.attempted:
        reply = status.reply if status is not None and status.reply else (result.error or "")
        return RecipientStatus(address, "unattempted", None, reply)
    if status is not None and status.status != "accepted":
        return RecipientStatus(address, status.status, status.code, status.reply)
    code = status.code if status is not None else result.error_code
    return RecipientStatus(address, "unattempted", code, result.error or "")


def _merged(track: _Track) -> DeliveryResult:
    """One result for the message out of what each mailer on its route said."""
    statuses = []
    for address in track.recipients:
        key = address.lower()
        status = track.final.get(key) or track.last.get(key)
        statuses.append(status or RecipientStatus(address, "unattempted"))
    taken = track.taken
    sent = any(s.accepted for s in statuses)
    attempted = any(r.attempted for _, r in track.results)
    merged = DeliveryResult(
        message_id=track.message_id,
        sent=sent,
        recipients=statuses,
        response=taken.response if taken is not None else None,
        attempted=attempted or sent,
    )
    if all(s.accepted for s in statuses):
        return merged
    failures = [(n, r) for n, r in track.results if not r.ok]
    if len(failures) == 1:
        merged.error = failures[0][1].error
    else:
        merged.error = "; ".join(f"{n!r}: {r.error or 'refused'}" for n, r in failures) or None
    pending = [track.last[a.lower()] for a in track.pending if a.lower() in track.last]
    if pending:
        merged.retryable = True
        merged.error_code = pending[-1].code  # 4xx, or None: never a permanent code
        last = track.results[-1][1] if track.results else None
        merged.exception = last.exception if last is not None else None
    else:
        worst = next((r for _, r in reversed(failures) if r.error_code is not None), None)
        merged.error_code = worst.error_code if worst is not None else None
        merged.exception = failures[-1][1].exception if failures else None
    return merged


# -- messages as handed to inner mailers --------------------------------------------------

_RESTRICTED: dict[type[Any], type[Any]] = {}
_RESTRICTED_LOCK = threading.Lock()


def _only_recipients(self: Any) -> list[str]:
    return list(self._mailpost_only_recipients)


def _restricted_class(cls: type[EmailMessage]) -> type[EmailMessage]:
    """``cls`` with ``recipients()`` answering only the recipients still to deliver to."""
    with _RESTRICTED_LOCK:
        sub = _RESTRICTED.get(cls)
        if sub is None:
            sub = type(
                cls.__name__,
                (cls,),
                {"recipients": _only_recipients, "__module__": cls.__module__},
            )
            _RESTRICTED[cls] = sub
        return sub


def _attempt_message(track: _Track) -> EmailMessage:
    """The message for the next mailer: the original on the first try; else a copy for the
    pending recipients only, keeping the Message-ID the message already went out with."""
    message = track.message
    if track.step == 0 or (track.message_id is None and track.pending == track.recipients):
        message.delivery = None
        return message
    retry = copy.copy(message)
    retry.delivery = None
    if track.message_id is not None and not any(
        str(k).lower() == "message-id" for k in message.extra_headers
    ):
        retry.extra_headers = {**message.extra_headers, "Message-ID": track.message_id}
    if track.pending != track.recipients:
        retry.__class__ = _restricted_class(type(message))
        retry._mailpost_only_recipients = list(track.pending)  # type: ignore[attr-defined]
    return retry


def _unreachable(name: str, track: _Track, exc: Exception) -> DeliveryResult:
    text = f"not attempted: could not connect: {type(exc).__name__}: {exc}"
    return DeliveryResult(
        mailer=name,
        message_id=track.message_id,
        recipients=[RecipientStatus(a, "unattempted") for a in track.pending],
        error=text,
        retryable=True,
        attempted=False,
        exception=exc,
    )


def _result_of(
    message: EmailMessage, error: Exception | None, returned: int | None = None
) -> DeliveryResult:
    """What the inner mailer recorded on ``message``, or a verdict from its return value
    or exception when it records nothing (a foreign backend)."""
    recorded = message.delivery
    if isinstance(recorded, DeliveryResult):
        return recorded
    if error is None and returned == 1:
        return DeliveryResult(sent=True)
    if isinstance(error, ValueError):
        return DeliveryResult(error=f"{_COMPOSED}: {error}", exception=error)
    text = f"{type(error).__name__}: {error}" if error is not None else "0 messages sent"
    return DeliveryResult(error=text, retryable=True, attempted=False, exception=error)
