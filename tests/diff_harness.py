"""The differential harness: one scenario, run through Django's ``django.core.mail`` and
through mailpost, observed the same way, compared.

A scenario is a function ``fn(side) -> value``. ``side.mail`` is ``django.core.mail`` on one
run and ``mailpost`` on the other; ``side.backend("locmem")`` is the dotted path of that
side's backend; ``side.outbox()`` is the side's outbox; ``side.tmp`` a fresh directory;
``side.smtp`` a real SMTP server (aiosmtpd, loopback) shared by the run, reset before each
scenario. Settings given to :func:`scenario` are applied on both sides with Django's
``override_settings``; strings in them may name ``{backends}`` (``django.core.mail.backends``
or ``mailpost.backends``) and ``{tmp}``.

What is compared, after :func:`normalize`: the return value, the exception (mailpost's must
be an instance of Django's class and its message must start with Django's), the warnings
(each Django warning needs a mailpost warning of Django's category whose message starts with
Django's; mailpost may not add warnings), and the outbox.

Both runs happen in one subprocess (``python tests/diff_harness.py``) with Django 6.1
configured, so that configuring Django never leaks into the rest of the suite; the test module
``test_django_differential.py`` reads its JSON report, one test per scenario.

A scenario marked ``deliberate="reason"`` is a difference mailpost keeps on purpose: the test
then asserts that the difference really exists and that docs/compatibility.md lists it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email
import email.message
import email.policy
import importlib
import json
import re
import shutil
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import Any

SCENARIO_MODULES = ("diff_scenarios_config", "diff_scenarios_message", "diff_scenarios_backends")


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    fn: Callable[[Side], Any]
    settings: dict[str, Any]
    deliberate: str | None
    module: str


REGISTRY: dict[str, Scenario] = {}


def scenario(
    settings: dict[str, Any] | None = None, *, deliberate: str | None = None, name: str = ""
) -> Callable[[Callable[[Side], Any]], Callable[[Side], Any]]:
    """Register ``fn`` as a scenario run under ``settings`` on both sides."""

    def register(fn: Callable[[Side], Any]) -> Callable[[Side], Any]:
        key = name or fn.__name__
        if key in REGISTRY:
            raise ValueError(f"scenario {key!r} is defined twice")
        REGISTRY[key] = Scenario(key, fn, dict(settings or {}), deliberate, fn.__module__)
        return fn

    return register


def load_scenarios() -> dict[str, Scenario]:
    for module in SCENARIO_MODULES:
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(module)
    return REGISTRY


#: Settings of the minimal Django project both sides run in (a MAILERS scenario sets MAILERS).
BASE_SETTINGS: dict[str, Any] = {
    "INSTALLED_APPS": [],
    "DEFAULT_FROM_EMAIL": "webmaster@localhost",
    "SERVER_EMAIL": "root@localhost",
    "ADMINS": [],
    "MANAGERS": [],
    "USE_TZ": True,
    "TIME_ZONE": "UTC",
}


class Side:
    """What a scenario sees of one implementation."""

    def __init__(self, name: str, tmp: Path, smtp: Any) -> None:
        self.name = name
        self.tmp = tmp
        self.smtp = smtp
        self.django = name == "django"
        if self.django:
            import django.core.mail as mail

            self.mail: Any = mail
            self.backends = "django.core.mail.backends"
        else:
            import mailpost

            self.mail = mailpost
            self.backends = "mailpost.backends"

    def backend(self, short: str) -> str:
        """``"locmem"`` -> this side's ``...backends.locmem.EmailBackend``."""
        return f"{self.backends}.{short}.EmailBackend"

    def module(self, sub: str) -> Any:
        """This side's ``sub`` module: django.core.mail.<sub> or mailpost.<sub>."""
        base = "django.core.mail" if self.django else "mailpost"
        return importlib.import_module(f"{base}.{sub}" if sub else base)

    def outbox(self) -> list[Any]:
        return list(getattr(self.mail, "outbox", []))

    def reset(self) -> None:
        import django.core.mail

        import mailpost

        for module in (django.core.mail, mailpost):
            with contextlib.suppress(AttributeError):
                del module.outbox
        if self.smtp is not None:
            self.smtp.recorder.messages.clear()
            self.smtp.recorder.commands.clear()

    def received(self) -> list[dict[str, Any]]:
        """What the SMTP server got, each message parsed (envelope + MIME tree)."""
        return [
            {
                "mail_from": m.mail_from,
                "rcpt_tos": list(m.rcpt_tos),
                "message": normalize(email.message_from_bytes(m.data, policy=email.policy.default)),
            }
            for m in self.smtp.messages
        ]


# -- normalisation ---------------------------------------------------------------------

_DATE = re.compile(
    r"^(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} (?P<zone>[+-]\d{4}|\w+)$"
)
_MSGID = re.compile(r"^<[^@<>]+@(?P<domain>[^<>]+)>$")


def mask_header(name: str, value: str) -> str:
    """Message-ID and Date vary per run; keep their shape (domain, time zone), mask the rest."""
    lower = name.lower()
    if lower == "date":
        m = _DATE.match(value.strip())
        return f"<date {m.group('zone')}>" if m else f"<bad date {value!r}>"
    if lower in {"message-id", "content-id"}:
        m = _MSGID.match(value.strip())
        return f"<id @{m.group('domain')}>" if m else value
    if lower == "content-type":
        # Boundaries are random, and Django's exists only once the message is generated.
        return _BOUNDARY.sub("", value)
    return value


_BOUNDARY = re.compile(r';\s*boundary=(?:"[^"]*"|[^;\s]*)', re.IGNORECASE)


def _mime(msg: email.message.Message, root: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": msg.get_content_type(),
        # Sorted: header order is not something a program relies on; names, values and
        # repetitions are. MIME-Version means something only at the top (RFC 2045 4);
        # Django repeats it in some inner parts.
        "headers": sorted(
            [k, mask_header(k, str(v))]
            for k, v in msg.items()
            if root or k.lower() != "mime-version"
        ),
    }
    if msg.is_multipart():
        out["parts"] = [_mime(p, False) for p in msg.get_payload()]  # type: ignore[union-attr]
    else:
        payload = msg.get_payload()
        out["payload"] = payload if isinstance(payload, str) else repr(payload)
        try:
            out["decoded"] = repr(msg.get_payload(decode=True))
        except Exception as exc:
            out["decoded"] = f"<error {type(exc).__name__}>"
    return out


def _is_email_message(value: Any) -> bool:
    return hasattr(value, "to") and hasattr(value, "message") and hasattr(value, "subject")


def _email(value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"class": type(value).__name__}
    for attr in (
        "subject",
        "body",
        "from_email",
        "to",
        "cc",
        "bcc",
        "reply_to",
        "extra_headers",
        "attachments",
        "alternatives",
        "content_subtype",
        "mixed_subtype",
        "alternative_subtype",
        "encoding",
    ):
        if hasattr(value, attr):
            out[attr] = normalize(getattr(value, attr))
    try:
        out["message()"] = normalize(value.message())
    except Exception as exc:
        out["message()"] = {"raises": describe_exception(exc)}
    return out


def normalize(value: Any) -> Any:
    """A JSON-able picture of ``value`` that keeps what a user's program can notice."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, PurePath):
        return {"path": str(value)}
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        kind = type(value).__name__
        items = [normalize(v) for v in value]
        if kind in {"list", "tuple"}:
            return items if kind == "list" else {"tuple": items}
        fields = getattr(value, "_fields", None)
        return {"namedtuple": list(fields) if fields else kind, "items": items}
    if isinstance(value, email.message.Message):
        return _mime(value)
    if _is_email_message(value):
        return _email(value)
    if isinstance(value, BaseException):
        return describe_exception(value)
    if type(value).__name__ in {"EmailBackend"} or type(value).__module__.split(".")[-2:-1] == [
        "backends"
    ]:
        return {"backend": type(value).__module__.rsplit(".", 1)[-1]}
    return {"object": type(value).__name__, "repr": None}


def _qualnames(cls: type) -> list[str]:
    return [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__]


def describe_exception(exc: BaseException) -> dict[str, Any]:
    return {"class": _qualnames(type(exc))[0], "mro": _qualnames(type(exc)), "message": str(exc)}


@dataclasses.dataclass
class Observation:
    value: Any = None
    exception: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    outbox: list[Any] = dataclasses.field(default_factory=list)
    error: str | None = None  # the harness itself failed (normalising, settings)


def _resolve(value: Any, side: Side) -> Any:
    if isinstance(value, str):
        return value.replace("{backends}", side.backends).replace("{tmp}", str(side.tmp))
    if isinstance(value, dict):
        return {k: _resolve(v, side) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, side) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, side) for v in value)
    return value


def _generic(text: str, side: Side) -> str:
    """A message with the side's own names put back as the scenario wrote them: each side
    names its own backend classes (``django.core.mail.backends...`` / ``mailpost.backends...``)
    and its own tmp directory."""
    return text.replace(side.backends + ".", "{backends}.").replace(str(side.tmp), "{tmp}")


def observe(sc: Scenario, side: Side) -> Observation:
    from django.test import override_settings

    obs = Observation()
    side.reset()
    try:
        with override_settings(**_resolve(sc.settings, side)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    obs.value = normalize(sc.fn(side))
                except Exception as exc:
                    obs.exception = describe_exception(exc)
                    obs.exception["message"] = _generic(obs.exception["message"], side)
            # ResourceWarning is the garbage collector reporting a leak (Django's file
            # backend leaves its file open after an error), whenever collection happens: not
            # a warning a program acts on.
            obs.warnings = [
                {"category": _qualnames(w.category), "message": _generic(str(w.message), side)}
                for w in caught
                if not issubclass(w.category, ResourceWarning)
            ]
            obs.outbox = [normalize(m) for m in side.outbox()]
    except Exception:
        obs.error = traceback.format_exc()
    return obs


# -- comparison ------------------------------------------------------------------------


def differences(dj: Observation, mp: Observation) -> list[str]:
    """What a user's program would notice switching from Django to mailpost; [] if nothing."""
    out: list[str] = []
    for side, obs in (("django", dj), ("mailpost", mp)):
        if obs.error:
            out.append(f"harness error on the {side} side:\n{obs.error}")
    if out:
        return out
    if (dj.exception is None) != (mp.exception is None):
        out.append(f"exception: django {dj.exception}, mailpost {mp.exception}")
    elif dj.exception and mp.exception:
        if not _same_exception_class(dj.exception, mp.exception):
            out.append(
                f"exception class: django raises {dj.exception['class']}, mailpost raises "
                f"{mp.exception['class']} (not a subclass)"
            )
        if not mp.exception["message"].startswith(dj.exception["message"]):
            out.append(
                f"exception message: django {dj.exception['message']!r}, "
                f"mailpost {mp.exception['message']!r}"
            )
    pending = list(mp.warnings)
    for w in dj.warnings:
        match = next(
            (
                m
                for m in pending
                if w["category"][0] in m["category"] and m["message"].startswith(w["message"])
            ),
            None,
        )
        if match is None:
            out.append(f"warning missing or different: django {w}, mailpost {mp.warnings}")
        else:
            pending.remove(match)
    if pending:
        out.append(f"mailpost warns where django does not: {pending}")
    mp_value, mp_outbox = _prune(dj.value, mp.value), _prune(dj.outbox, mp.outbox)
    if dj.value != mp_value:
        out.append("return value:\n" + _diff(dj.value, mp_value))
    if dj.outbox != mp_outbox:
        out.append("outbox:\n" + _diff(dj.outbox, mp_outbox))
    return out


def _prune(dj: Any, mp: Any) -> Any:
    """mailpost's messages may carry attributes Django's lack (additions, not differences)."""
    if isinstance(dj, dict) and isinstance(mp, dict):
        keep = mp
        if "class" in dj and "message()" in dj:
            keep = {k: v for k, v in mp.items() if k in dj}
        return {k: _prune(dj.get(k), v) for k, v in keep.items()}
    if isinstance(dj, list) and isinstance(mp, list) and len(dj) == len(mp):
        return [_prune(a, b) for a, b in zip(dj, mp, strict=True)]
    return mp


def _same_exception_class(dj: dict[str, Any], mp: dict[str, Any]) -> bool:
    """mailpost's class is Django's, a subclass, or a twin: the same name, and every base
    outside ``django.core.mail`` (ImproperlyConfigured, KeyError, ...) among its bases."""
    if dj["class"] in mp["mro"]:
        return True
    same_name = dj["class"].rsplit(".", 1)[-1] == mp["class"].rsplit(".", 1)[-1]
    outside = [c for c in dj["mro"] if not c.startswith("django.core.mail.")]
    return same_name and all(c in mp["mro"] for c in outside)


def _diff(a: Any, b: Any) -> str:
    import difflib

    left = json.dumps(a, indent=1, sort_keys=True, default=str).splitlines()
    right = json.dumps(b, indent=1, sort_keys=True, default=str).splitlines()
    return "\n".join(difflib.unified_diff(left, right, "django", "mailpost", lineterm="", n=2))


# -- the subprocess --------------------------------------------------------------------


@contextlib.contextmanager
def _smtp_server() -> Iterator[Any]:
    try:
        from smtpd_harness import SMTPServer
    except ImportError:
        yield None
        return
    with SMTPServer() as server:
        yield server


def run_all(names: list[str] | None = None) -> dict[str, Any]:
    import django
    from django.conf import settings

    settings.configure(**BASE_SETTINGS)
    django.setup()
    scenarios = load_scenarios()
    report: dict[str, Any] = {}
    with _smtp_server() as smtp:
        for name, sc in scenarios.items():
            if names and name not in names:
                continue
            result = {}
            for side_name in ("django", "mailpost"):
                tmp = Path(tempfile.mkdtemp(prefix=f"diff-{side_name}-"))
                try:
                    side = Side(side_name, tmp, smtp)
                    result[side_name] = dataclasses.asdict(observe(sc, side))
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            report[name] = result
    return report


def main() -> None:
    names = sys.argv[1:] or None
    json.dump(run_all(names), sys.stdout, default=str)


if __name__ == "__main__":
    # Run through the importable module, so the scenario modules fill the same REGISTRY.
    sys.path.insert(0, str(Path(__file__).parent))
    importlib.import_module("diff_harness").main()
