"""The email backend contract every mailpost backend, and any custom one, follows.

A backend moves composed messages somewhere. ``send_messages(messages)`` returns how many
were sent; ``open()`` / ``close()`` keep the backend open across calls (the spec's
"long-lived connection": an SMTP pool, a file, an HTTP client); ``with backend:`` opens
and closes around a block (closing on error too). Async twins (``aopen``, ``aclose``,
``asend_messages``, ``async with``) default to running the blocking method in a worker
thread, so the event loop never blocks; network backends override them natively.

Built-in backends record a :class:`~mailpost.DeliveryResult` on every message
(``message.delivery``) and the mailer alias (``message.sent_using``), keep going past a
failed message, and at the end raise one :class:`~mailpost.DeliveryError` carrying every
result, unless ``fail_silently`` (then the failures are logged and kept on the results).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, cast

from mailpost import _django
from mailpost._delivery import DeliveryResult, RecipientStatus
from mailpost.exceptions import DeliveryError, InvalidMailer

if TYPE_CHECKING:
    from typing_extensions import Self

    from mailpost.message import EmailMessage

__all__ = ["BaseEmailBackend", "Writer"]

#: ``write(message, data, sender, recipients)`` moves one composed message somewhere.
Writer = Callable[["EmailMessage", bytes, str, "list[str]"], None]

logger = logging.getLogger("mailpost")

_HANDLER = "mailpost.handler"

#: Set while mailpost's sending functions pass a caller's deprecated ``fail_silently`` on to
#: the backend they build (compat), so backends that take no such option accept it.
_passing_fail_silently: ContextVar[bool] = ContextVar("_passing_fail_silently", default=False)


@contextlib.contextmanager
def passing_fail_silently() -> Iterator[None]:
    """compat: build backends inside this block with a caller's ``fail_silently``."""
    token = _passing_fail_silently.set(True)
    try:
        yield
    finally:
        _passing_fail_silently.reset(token)


def _called_from_mailpost(frame: FrameType) -> bool:
    return str(frame.f_globals.get("__name__", "")).startswith("mailpost.")


class BaseEmailBackend:
    """Base class for email backends; subclass it and implement :meth:`send_messages`.

    ``alias`` is the ``MAILERS`` key the backend was built for (``None`` when constructed
    directly). Unknown keyword arguments are handled as in Django: for a mailer (``alias``
    given) they are a configuration error naming them, so a typo in ``OPTIONS`` fails at
    configuration time; for a directly constructed backend they are ignored with a
    deprecation warning. A class that sets ``takes_fail_silently = False`` (locmem,
    dummy) counts ``fail_silently`` among those unknown options (Django 6.1: they take no
    OPTIONS), except where mailpost itself passes it (``send_mail(fail_silently=...)``,
    ``get_connection(fail_silently=...)``, the names in Django's
    ``_ignore_unknown_kwargs``); reading its ``fail_silently`` attribute from outside
    mailpost is deprecated unless the instance was given one by assignment.
    """

    alias: str | None
    #: Whether ``fail_silently`` is one of this backend's options (as Django 6.1 has it).
    takes_fail_silently: ClassVar[bool] = True
    _fail_silently: bool
    _own_fail_silently: bool

    def __init__(
        self,
        fail_silently: bool | None = None,
        *,
        alias: str | None = None,
        _ignore_unknown_kwargs: Collection[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.alias = alias
        self._fail_silently = bool(fail_silently)
        self._own_fail_silently = self.takes_fail_silently
        ignored = set(_ignore_unknown_kwargs or ())  # compat: Django's mailers handler
        unknown = [k for k in kwargs if k not in ignored]
        if (
            fail_silently is not None
            and not self.takes_fail_silently
            and "fail_silently" not in ignored
            and not _passing_fail_silently.get()
            and not self._built_by_mailpost()
        ):
            unknown.append("fail_silently")  # a mailer's error; built directly, warned and kept
        if unknown:
            self._unknown_options(unknown)

    @property
    def fail_silently(self) -> bool:
        """Whether failures are only logged instead of raised (see :meth:`finish`).

        compat: on a backend that does not take ``fail_silently`` (locmem, dummy), reading
        it from outside mailpost is deprecated, as in Django 6.1, until it is assigned.
        """
        if not self._own_fail_silently and not _called_from_mailpost(sys._getframe(1)):
            _django.deprecated(
                f"{type(self).__qualname__}.fail_silently is deprecated: this backend takes no "
                "fail_silently option. Assign the attribute first if a subclass needs one.",
                "BaseEmailBackend.fail_silently is deprecated. A subclass that supports "
                "fail_silently must set its own attribute.",
                stacklevel=2,
                since=_django.DJANGO_6_1,
            )
        return self._fail_silently

    @fail_silently.setter
    def fail_silently(self, value: bool) -> None:
        self._fail_silently = value
        self._own_fail_silently = True

    def _built_by_mailpost(self) -> bool:
        """Whether mailpost's own code (the in-memory stand-in of ``mailpost.testing``;
        not a mailer's OPTIONS, which ``build_backend`` passes on, nor a user's call) is
        constructing this backend."""
        frame = self._construction_site()[1]
        if frame is None or not _called_from_mailpost(frame):
            return False
        code = frame.f_code
        return not (code.co_name == "build_backend" and frame.f_globals["__name__"] == _HANDLER)

    @classmethod
    def routes_through(cls, options: Mapping[str, Any]) -> list[str]:
        """The mailer aliases a mailer of this class with ``options`` sends through.

        Empty for a backend that delivers itself; composites and the spool override it, so
        ``MAILERS`` cycles are found without this layer knowing those classes.
        """
        return []

    def _unknown_options(self, names: list[str]) -> None:
        listed = ", ".join(repr(k) for k in names)
        path = self._dotted_path()
        if self.alias is not None:
            accepted = ", ".join(self._accepted_options()) or "none"
            raise self.invalid(f"Unknown options {listed}. ({path} accepts OPTIONS: {accepted})")
        _django.deprecated(
            f"{path}.__init__() does not support {listed}; unknown keyword arguments are "
            "ignored now and will raise TypeError in a future mailpost release.",
            f"{path}.__init__() does not support {listed}. In Django 2028, "
            "BaseEmailBackend will raise a TypeError for unknown keyword arguments.",
            stacklevel=self._construction_site()[0],
            since=_django.DJANGO_6_1,
        )

    def _construction_site(self) -> tuple[int, FrameType | None]:
        """Where this backend is being constructed: the stack level (1 is the caller of
        this method) and frame of the code that called its class, past every ``__init__``
        of its class hierarchy. For warnings raised while constructing it."""
        level, frame = 1, cast("FrameType | None", sys._getframe(1))
        inside = False
        while frame is not None:
            is_init = frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is self
            if inside and not is_init:
                return level, frame
            inside = inside or is_init
            level, frame = level + 1, frame.f_back
        return level, None  # pragma: no cover - always constructed from somewhere

    @classmethod
    def _dotted_path(cls) -> str:
        """The dotted path a ``BACKEND`` setting uses for this class (the module's
        ``EmailBackend`` name when that is this class)."""
        module = sys.modules.get(cls.__module__)
        name = "EmailBackend" if getattr(module, "EmailBackend", None) is cls else cls.__qualname__
        return f"{cls.__module__}.{name}"

    @classmethod
    def _accepted_options(cls) -> list[str]:
        """The keyword options this class's constructor takes (for error hints)."""
        try:
            parameters = inspect.signature(cls).parameters.values()
        except (TypeError, ValueError):  # pragma: no cover - no introspectable signature
            return []
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        hidden = {"alias"} if cls.takes_fail_silently else {"alias", "fail_silently"}
        return sorted(
            p.name
            for p in parameters
            if p.kind in kinds and p.name not in hidden and not p.name.startswith("_")
        )

    # -- configuration errors -------------------------------------------------------

    @property
    def label(self) -> str:
        """How errors name this backend: ``MAILERS['alias']`` or the class name."""
        if self.alias is not None:
            return f"MAILERS[{self.alias!r}]"
        return type(self).__qualname__

    def invalid(self, problem: str) -> InvalidMailer:
        """An :class:`InvalidMailer` whose message names this mailer."""
        return InvalidMailer(f"{self.label}: {problem}", alias=self.alias)

    # -- the contract ---------------------------------------------------------------

    def open(self) -> bool | None:
        """Open a long-lived connection. Returns True if it opened one, None if not needed."""
        return None

    def close(self) -> None:
        """Close the connection opened by :meth:`open`, if any."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send the messages and return how many were sent."""
        raise NotImplementedError("subclasses of BaseEmailBackend must override send_messages()")

    def __enter__(self) -> Self:
        try:
            self.open()
        except Exception:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- async twins ----------------------------------------------------------------

    async def aopen(self) -> bool | None:
        """Async :meth:`open`; runs the blocking one in a worker thread by default."""
        return await asyncio.to_thread(self.open)

    async def aclose(self) -> None:
        """Async :meth:`close`; runs the blocking one in a worker thread by default."""
        await asyncio.to_thread(self.close)

    async def asend_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Async :meth:`send_messages`; same results, records and errors as the sync one."""
        return await asyncio.to_thread(self.send_messages, email_messages)

    async def __aenter__(self) -> Self:
        try:
            await self.aopen()
        except Exception:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- helpers for built-in backends ----------------------------------------------

    def record(self, message: EmailMessage, result: DeliveryResult) -> DeliveryResult:
        """Attach ``result`` and this mailer's alias to ``message``."""
        result.mailer = self.alias
        message.delivery = result
        message.sent_using = self.alias
        return result

    def finish(
        self, results: Iterable[DeliveryResult], compose_error: Exception | None = None
    ) -> int:
        """Count what was sent; report anything that was not, all at once.

        Every failure is logged. Unless ``fail_silently``: ``compose_error`` (the first
        message that could not be composed) is raised if given, else one
        :class:`DeliveryError` carrying every result when any message was not fully
        delivered.
        """
        results = list(results)
        failed = [r for r in results if not r.ok]
        sent = sum(1 for r in results if r.sent)
        if not failed:
            return sent
        for r in failed:
            logger.log(
                logging.INFO if self._fail_silently else logging.WARNING,
                "%s: message %s not fully delivered: %s",
                self.label,
                r.message_id or "(no Message-ID)",
                r.error or f"refused {sorted(r.refused)}",
            )
        if self._fail_silently:
            return sent
        if compose_error is not None:
            raise compose_error
        first = next((r.exception for r in failed if r.exception is not None), None)
        summary = (
            f"{self.label}: {len(failed)} of {len(results)} message(s) not fully delivered"
            f" ({sent} sent); first problem: {failed[0].error or failed[0].refused}"
        )
        raise DeliveryError(summary, results) from first

    def write_each(
        self,
        messages: Sequence[EmailMessage],
        write: Writer,
        *,
        linesep: str = "\n",
        eight_bit: bool = False,
    ) -> int:
        """Compose and ``write`` each message, record a result on each, and report.

        ``eight_bit`` lets non-ASCII body text be written as 8bit (readable, as Django's
        console and file backends write it) instead of quoted-printable/base64.

        A message that cannot be composed (bad header, bad address) is not written and does
        not stop the batch: it is recorded as failed, and once the batch is done its
        ``ValueError`` is raised (with ``fail_silently`` it is only recorded and logged),
        as on SMTP. A message that cannot be written is recorded as failed and reported by
        :meth:`BaseEmailBackend.finish` (a :class:`~mailpost.DeliveryError`).
        """
        from mailpost.message import envelope, message_id_of, serialize

        results: list[DeliveryResult] = []
        compose_error: Exception | None = None
        for message in messages:
            try:
                data = serialize(message, linesep=linesep, eight_bit=eight_bit)
                sender, recipients = envelope(message)
            except Exception as exc:
                failed = DeliveryResult(
                    error=f"message could not be composed: {exc}", exception=exc
                )
                results.append(self.record(message, failed))
                compose_error = compose_error or exc
                continue
            message_id = message_id_of(data)
            try:
                write(message, data, sender, recipients)
            except Exception as exc:
                result = DeliveryResult(
                    message_id=message_id,
                    recipients=[RecipientStatus(r, "unattempted") for r in recipients],
                    error=f"{type(exc).__name__}: {exc}",
                    exception=exc,
                )
                results.append(self.record(message, result))
                continue
            accepted = DeliveryResult.all_accepted(
                recipients, mailer=self.alias, message_id=message_id
            )
            results.append(self.record(message, accepted))
        return self.finish(results, compose_error)
