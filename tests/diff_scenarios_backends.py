"""Differential scenarios: the backends' edges (file, console, locmem, dummy, SMTP).

Each backend is built the ways a Django project builds it: from ``MAILERS``, from the legacy
``EMAIL_*`` settings, and directly. What is compared is what a program sees: attributes,
return values of ``open()`` / ``close()`` / ``send_messages()``, the bytes written to a
stream or a file (Date and Message-ID masked), what an SMTP server receives, errors and
warnings.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diff_harness import Side, scenario

_SEPARATOR = "-" * 79 + "\n"
_DATE = re.compile(r"^Date: .*?(?P<zone>[+-]\d{4})?$")
_MSGID = re.compile(r"^Message-ID: <[^@<>]+@(?P<domain>[^<>]+)>$")


def _header_line(line: str) -> str:
    line = _DATE.sub(lambda m: f"Date: <date {m.group('zone')}>", line)
    return _MSGID.sub(lambda m: f"Message-ID: <id @{m.group('domain')}>", line)


def masked(text: str) -> str:
    """Console or file output with Date and Message-ID masked (they vary per run) and each
    message's header lines sorted (header order is not compared anywhere in the harness;
    see ``diff_harness._mime``). Everything else, blank lines and separators included,
    is kept byte for byte."""
    out = []
    for chunk in text.split(_SEPARATOR):
        head, blank, body = chunk.partition("\n\n")
        lines: list[str] = []
        for line in head.split("\n"):
            if lines and line[:1] in (" ", "\t"):
                lines[-1] += "\n" + line
            else:
                lines.append(line)
        out.append("\n".join(sorted(_header_line(line) for line in lines)) + blank + body)
    return _SEPARATOR.join(out)


def message(side: Side, n: int = 1) -> Any:
    return side.mail.EmailMessage(
        f"Subject {n}", f"Body {n}", "from@example.com", ["to@example.com"]
    )


def files(directory: Path) -> list[str]:
    """The masked contents of every file in ``directory`` (names are random: sorted by
    contents)."""
    return sorted(masked(p.read_text(encoding="utf-8")) for p in directory.iterdir())


def relative(side: Side, path: Any) -> Any:
    """``path`` relative to the side's tmp (which differs per side), and its type."""
    return [type(path).__name__, os.path.relpath(path, side.tmp)]


def mailer(side: Side, short: str, **options: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": side.backend(short), "OPTIONS": options}}


# -- file backend ----------------------------------------------------------------------


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.filebased.EmailBackend",
                                   "OPTIONS": {"file_path": "{tmp}/mail"}}}})  # fmt: skip
def file_path_is_a_str(side: Side) -> Any:
    return relative(side, side.mail.mailers["default"].file_path)


@scenario()
def file_path_given_as_pathlib_path_is_a_str(side: Side) -> Any:
    backend = side.module("backends.filebased").EmailBackend(file_path=side.tmp / "a" / ".." / "b")
    return relative(side, backend.file_path)


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.filebased.EmailBackend",
                                   "OPTIONS": {"file_path": "{tmp}/mail"}}}})  # fmt: skip
def file_close_then_open_appends_to_the_same_file(side: Side) -> Any:
    backend = side.mail.mailers["default"]
    steps = [backend.open(), backend.open()]
    steps.append(backend.send_messages([message(side, 1)]))
    steps.append(backend.close())
    steps.append(backend.open())
    steps.append(backend.send_messages([message(side, 2), message(side, 3)]))
    steps.append(backend.close())
    steps.append(backend.close())
    steps.append(backend.send_messages([message(side, 4)]))
    return {"steps": steps, "files": files(side.tmp / "mail")}


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.filebased.EmailBackend",
                                   "OPTIONS": {"file_path": "{tmp}/mail"}}}})  # fmt: skip
def file_each_backend_instance_writes_its_own_file(side: Side) -> Any:
    # Both kept alive: Django names a file after id(backend), which a new instance may reuse.
    backends = [side.mail.mailers["default"], side.mail.mailers["default"]]
    sent = [b.send_messages([message(side, n)]) for n, b in enumerate(backends, 1)]
    return {"sent": sent, "files": files(side.tmp / "mail")}


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.filebased.EmailBackend",
                                   "OPTIONS": {"file_path": "{tmp}/mail"}}}})  # fmt: skip
def file_context_manager(side: Side) -> Any:
    backend = side.mail.mailers["default"]
    with backend as entered:
        same = entered is backend
        sent = entered.send_messages([message(side, 1)])
    return {"same": same, "sent": sent, "files": files(side.tmp / "mail")}


@scenario(
    {
        "EMAIL_BACKEND": "{backends}.filebased.EmailBackend",
        "EMAIL_FILE_PATH": "{tmp}/legacy",
    }
)
def file_legacy_email_file_path(side: Side) -> Any:
    direct = side.module("backends.filebased").EmailBackend()
    sent = side.mail.mailers["default"].send_messages([message(side)])
    return {
        "direct": relative(side, direct.file_path),
        "sent": sent,
        "files": files(side.tmp / "legacy"),
    }


# -- console backend -------------------------------------------------------------------


@scenario()
def console_output_byte_for_byte(side: Side) -> Any:
    stream = io.StringIO()
    backend = side.module("backends.console").EmailBackend(stream=stream)
    sent = backend.send_messages([message(side, 1), message(side, 2)])
    return {"sent": sent, "output": masked(stream.getvalue())}


@scenario()
def console_body_ending_in_newline(side: Side) -> Any:
    stream = io.StringIO()
    backend = side.module("backends.console").EmailBackend(stream=stream)
    msg = side.mail.EmailMessage("Subject", "Line\n", "from@example.com", ["to@example.com"])
    return {"sent": backend.send_messages([msg]), "output": masked(stream.getvalue())}


@scenario()
def console_open_close_context_manager(side: Side) -> Any:
    stream = io.StringIO()
    backend = side.module("backends.console").EmailBackend(stream=stream)
    steps = [backend.open(), backend.open(), backend.close(), backend.close()]
    with backend as entered:
        steps.append(entered is backend)
        steps.append(entered.send_messages([message(side)]))
    return {"steps": steps, "output": masked(stream.getvalue())}


#: The console backend checks ``stream`` when it is built (docs/compatibility.md, "Backends").
CONSOLE_STREAM_CHECKED = (
    "a console stream without a write method is refused when the backend is built "
    "(InvalidMailer); Django takes it and fails at the first send, or with fail_silently "
    "drops every message without a word"
)


def _console_steps(side: Side, build: Callable[[], Any]) -> list[Any]:
    """What happens: built, then the count sent, or the class of what was raised."""
    steps: list[Any] = []
    try:
        backend = build()
        steps.append("built")
        steps.append(backend.send_messages([message(side)]))
    except Exception as exc:
        steps.append(type(exc).__name__)
    return steps


@scenario(deliberate=CONSOLE_STREAM_CHECKED)
def console_stream_without_write(side: Side) -> Any:
    console = side.module("backends.console").EmailBackend

    def under_mailers() -> Any:
        return side.mail.mailers["default"]

    entry = {"BACKEND": side.backend("console"), "OPTIONS": {"stream": "sys.stdout"}}
    from_settings = under(
        side, {"MAILERS": {"default": entry}}, lambda: _console_steps(side, under_mailers)
    )
    return {
        "direct": _console_steps(side, lambda: console(stream=42)),
        "fail_silently": _console_steps(side, lambda: console(stream=42, fail_silently=True)),
        "mailers": from_settings,
    }


# -- locmem and dummy ------------------------------------------------------------------


@scenario()
def locmem_and_dummy_return_values(side: Side) -> Any:
    out = {}
    for short in ("locmem", "dummy"):
        backend = side.module(f"backends.{short}").EmailBackend()
        steps = [backend.send_messages([]), backend.open(), backend.open()]
        steps += [backend.send_messages([message(side, 1), message(side, 2)])]
        steps += [backend.close(), backend.close()]
        with backend as entered:
            steps += [entered is backend, entered.send_messages([message(side, 3)])]
        out[short] = steps
    return out


# -- SMTP backend: options -------------------------------------------------------------

SMTP_ATTRS = (
    "host",
    "port",
    "username",
    "password",
    "use_tls",
    "use_ssl",
    "timeout",
    "ssl_certfile",
    "ssl_keyfile",
    "fail_silently",
)


def smtp_attrs(backend: Any) -> dict[str, Any]:
    return {name: getattr(backend, name) for name in SMTP_ATTRS}


def under(side: Side, settings: dict[str, Any], build: Any) -> Any:
    """``build()`` under extra settings (applied with Django's override_settings), or the
    exception it raised, described."""
    from django.test import override_settings

    with override_settings(**settings):
        try:
            return build()
        except Exception as exc:
            return {"raises": type(exc).__name__, "message": str(exc)}


SMTP_OPTIONS = [
    {"host": "smtp.example.com"},
    {"host": "smtp.example.com", "use_tls": True},
    {"host": "smtp.example.com", "use_ssl": True},
    {"host": "smtp.example.com", "port": 2525, "use_ssl": True},
    {"host": "smtp.example.com", "ssl_certfile": "/etc/client.pem"},
    {"host": "smtp.example.com", "ssl_certfile": "/etc/c.pem", "ssl_keyfile": "/etc/k.pem"},
    {"host": "smtp.example.com", "use_tls": True, "ssl_certfile": "/etc/client.pem"},
    {"host": "smtp.example.com", "username": "user", "password": "secret", "timeout": 5},
    {"host": "smtp.example.com", "fail_silently": True},
]


@scenario()
def smtp_options_under_mailers(side: Side) -> Any:
    return [
        under(
            side,
            {"MAILERS": mailer(side, "smtp", **options)},
            lambda: smtp_attrs(side.mail.mailers["default"]),
        )
        for options in SMTP_OPTIONS
    ]


LEGACY_SMTP = [
    {},
    {"EMAIL_USE_TLS": True},
    {"EMAIL_USE_SSL": True},
    {"EMAIL_USE_SSL": True, "EMAIL_PORT": 2525},
    {"EMAIL_HOST": "smtp.example.com", "EMAIL_HOST_USER": "user", "EMAIL_HOST_PASSWORD": "pw"},
    {"EMAIL_SSL_CERTFILE": "/etc/client.pem"},
    {"EMAIL_SSL_CERTFILE": "/etc/c.pem", "EMAIL_SSL_KEYFILE": "/etc/k.pem", "EMAIL_TIMEOUT": 3},
]


@scenario()
def smtp_options_from_legacy_settings(side: Side) -> Any:
    return [
        under(
            side,
            {"EMAIL_BACKEND": side.backend("smtp"), **settings},
            lambda: smtp_attrs(side.mail.mailers["default"]),
        )
        for settings in LEGACY_SMTP
    ]


# -- SMTP backend: sessions and return values (a real server on loopback) --------------


def smtp_mailer(side: Side, **options: Any) -> dict[str, Any]:
    return mailer(side, "smtp", host=side.smtp.host, port=side.smtp.port, **options)


def sessions(side: Side) -> list[int]:
    """How many messages each SMTP session carried, in order (the server's session numbers
    run across the whole harness run)."""
    counts: dict[int, int] = {}
    for received in side.smtp.messages:
        counts[received.session] = counts.get(received.session, 0) + 1
    return list(counts.values())


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@scenario()
def smtp_return_values_and_connection_reuse(side: Side) -> Any:
    def run() -> Any:
        backend = side.mail.mailers["default"]
        steps = [backend.send_messages([]), backend.open(), backend.open()]
        steps.append(backend.send_messages([message(side, 1), message(side, 2)]))
        steps += [backend.close(), backend.close()]
        steps.append(backend.send_messages([message(side, 3)]))
        with backend as entered:
            steps += [entered is backend, entered.send_messages([message(side, 4)])]
        steps.append(backend.connection is None)
        return {"steps": steps, "received": side.received(), "sessions": sessions(side)}

    return under(side, {"MAILERS": smtp_mailer(side)}, run)


@scenario()
def smtp_message_without_recipients(side: Side) -> Any:
    def run() -> Any:
        nobody = side.mail.EmailMessage("Subject", "Body", "from@example.com", [])
        sent = side.mail.mailers["default"].send_messages([nobody, message(side)])
        return {"sent": sent, "received": side.received()}

    return under(side, {"MAILERS": smtp_mailer(side)}, run)


@scenario()
def smtp_fail_silently_when_the_server_is_down(side: Side) -> Any:
    def run() -> Any:
        backend = side.mail.mailers["default"]
        return [backend.open(), backend.send_messages([message(side)]), backend.close()]

    options = {"host": "127.0.0.1", "port": closed_port(), "fail_silently": True}
    return under(side, {"MAILERS": mailer(side, "smtp", **options)}, run)


@scenario()
def smtp_server_down_raises(side: Side) -> Any:
    def run() -> Any:
        backend = side.mail.mailers["default"]
        try:
            backend.open()
        except OSError as exc:
            return {"open raises": type(exc).__name__}
        return "opened"

    options = {"host": "127.0.0.1", "port": closed_port()}
    return under(side, {"MAILERS": mailer(side, "smtp", **options)}, run)


# -- unknown keyword arguments ---------------------------------------------------------


def _built(side: Side, short: str, **kwargs: Any) -> Any:
    backend = side.module(f"backends.{short}").EmailBackend(**kwargs)
    return {"foo": hasattr(backend, "foo"), "bar": hasattr(backend, "bar")}


@scenario()
def unknown_keyword_arguments_locmem(side: Side) -> Any:
    return _built(side, "locmem", foo=1, bar=2)


@scenario()
def unknown_keyword_arguments_dummy(side: Side) -> Any:
    return _built(side, "dummy", foo=1)


@scenario()
def unknown_keyword_arguments_console(side: Side) -> Any:
    return _built(side, "console", stream=io.StringIO(), foo=1)


@scenario()
def unknown_keyword_arguments_file(side: Side) -> Any:
    return _built(side, "filebased", file_path=side.tmp, foo=1)


def _unknown_options_scenario(short: str, options: dict[str, Any]) -> None:
    entry = {"BACKEND": f"{{backends}}.{short}.EmailBackend", "OPTIONS": {**options, "foo": 1}}
    entry["OPTIONS"]["bar"] = 2

    @scenario({"MAILERS": {"default": entry}}, name=f"unknown_options_under_mailers_{short}")
    def run(side: Side) -> Any:
        return side.mail.mailers["default"]


for _short, _options in {
    "locmem": {},
    "dummy": {},
    "console": {},
    "filebased": {"file_path": "{tmp}"},
    "smtp": {"host": "smtp.example.com"},
}.items():
    _unknown_options_scenario(_short, _options)


# -- SMTP backend: constructed directly (deprecated) -----------------------------------


def smtp_class(side: Side) -> Any:
    return side.module("backends.smtp").EmailBackend


@scenario()
def smtp_direct_construction_legacy(side: Side) -> Any:
    return smtp_attrs(smtp_class(side)())


@scenario({"EMAIL_USE_SSL": True, "EMAIL_HOST": "smtp.example.com"})
def smtp_direct_construction_keeps_port_25_with_ssl(side: Side) -> Any:
    return smtp_attrs(smtp_class(side)())


@scenario({"EMAIL_HOST": "smtp.example.com", "EMAIL_PORT": 2525})
def smtp_direct_construction_positional_arguments(side: Side) -> Any:
    return smtp_attrs(smtp_class(side)("h", 26, "user", "pw", True, True))


@scenario()
def smtp_direct_construction_tls_and_ssl(side: Side) -> Any:
    return smtp_class(side)(use_tls=True, use_ssl=True)


@scenario({"EMAIL_USE_TLS": True, "EMAIL_USE_SSL": True})
def smtp_direct_construction_tls_and_ssl_settings(side: Side) -> Any:
    return smtp_class(side)()


@scenario()
def smtp_direct_construction_unknown_keyword(side: Side) -> Any:
    backend = smtp_class(side)(host="h", foo=1)
    return [backend.host, hasattr(backend, "foo")]


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.locmem.EmailBackend"}}})
def smtp_direct_construction_under_mailers(side: Side) -> Any:
    return smtp_class(side)(host="smtp.example.com")


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.locmem.EmailBackend"}}})
def smtp_direct_construction_under_mailers_every_option(side: Side) -> Any:
    everything = {
        "host": "h",
        "port": 2525,
        "username": "u",
        "password": "p",
        "use_tls": True,
        "use_ssl": False,
        "timeout": 3,
        "ssl_keyfile": "/k.pem",
        "ssl_certfile": "/c.pem",
    }
    return smtp_attrs(smtp_class(side)(**everything))


@scenario({"EMAIL_HOST": "legacy.example.com", "EMAIL_PORT": 2525, "EMAIL_USE_SSL": True})
def smtp_explicit_alias_ignores_legacy_settings(side: Side) -> Any:
    return smtp_attrs(smtp_class(side)(alias="relay", host="h", use_tls=True))


@scenario({"EMAIL_HOST": "legacy.example.com"})
def smtp_explicit_alias_needs_host(side: Side) -> Any:
    return smtp_class(side)(alias="relay")


@scenario(
    {
        "MAILERS": {
            "default": {
                "BACKEND": "{backends}.smtp.EmailBackend",
                "OPTIONS": {"host": "h", "use_tls": True, "use_ssl": True},
            }
        }
    }
)
def smtp_tls_and_ssl_under_mailers(side: Side) -> Any:
    return side.mail.mailers["default"]


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.smtp.EmailBackend"}}})
def smtp_host_required_under_mailers(side: Side) -> Any:
    return side.mail.mailers["default"]


# -- file backend: configuration errors ------------------------------------------------


def file_class(side: Side) -> Any:
    return side.module("backends.filebased").EmailBackend


@scenario({"EMAIL_BACKEND": "{backends}.filebased.EmailBackend"})
def file_legacy_without_email_file_path(side: Side) -> Any:
    return side.mail.mailers["default"]


@scenario()
def file_direct_without_file_path(side: Side) -> Any:
    return file_class(side)()


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.filebased.EmailBackend"}}})
def file_mailer_without_file_path(side: Side) -> Any:
    return side.mail.mailers["default"]


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.filebased.EmailBackend"}}})
def file_direct_under_mailers_without_file_path(side: Side) -> Any:
    return file_class(side)()


@scenario()
def file_direct_path_is_a_regular_file(side: Side) -> Any:
    (side.tmp / "regular").write_text("x")
    return file_class(side)(file_path=side.tmp / "regular")


def file_mailer(path: str) -> dict[str, Any]:
    entry = {"BACKEND": "{backends}.filebased.EmailBackend", "OPTIONS": {"file_path": path}}
    return {"MAILERS": {"default": entry}}


@scenario(file_mailer("{tmp}/regular"))
def file_mailer_path_is_a_regular_file(side: Side) -> Any:
    (side.tmp / "regular").write_text("x")
    return side.mail.mailers["default"]


@scenario()
def file_path_cannot_be_created(side: Side) -> Any:
    (side.tmp / "regular").write_text("x")
    return file_class(side)(file_path=side.tmp / "regular" / "sub")


@scenario(file_mailer("{tmp}/regular/sub"))
def file_mailer_path_cannot_be_created(side: Side) -> Any:
    (side.tmp / "regular").write_text("x")
    return side.mail.mailers["default"]


# -- errors while sending --------------------------------------------------------------


class BrokenStream(io.StringIO):
    """A stream that cannot be written to."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


#: Django stops a batch at the first message that fails and raises that message's error;
#: mailpost sends the rest and then raises (docs/compatibility.md, "Backends").
BATCH_GOES_ON = (
    "a failed message does not stop the batch: the others are still sent, then the first "
    "composing error, or one DeliveryError carrying every result, is raised"
)


def bad_header_message(side: Side) -> Any:
    return side.mail.EmailMessage("Bad\nSubject", "Body", "from@example.com", ["to@example.com"])


@scenario(deliberate=BATCH_GOES_ON)
def console_write_error(side: Side) -> Any:
    backend = side.module("backends.console").EmailBackend(stream=BrokenStream())
    return backend.send_messages([message(side)])


@scenario()
def console_write_error_fail_silently(side: Side) -> Any:
    backend = side.module("backends.console").EmailBackend(
        stream=BrokenStream(), fail_silently=True
    )
    return backend.send_messages([message(side, 1), message(side, 2)])


@scenario(deliberate=BATCH_GOES_ON)
def console_bad_message_fail_silently(side: Side) -> Any:
    stream = io.StringIO()
    backend = side.module("backends.console").EmailBackend(stream=stream, fail_silently=True)
    sent = backend.send_messages([message(side, 1), bad_header_message(side), message(side, 3)])
    return {"sent": sent, "output": masked(stream.getvalue())}


@scenario(deliberate=BATCH_GOES_ON)
def console_bad_message(side: Side) -> Any:
    stream = io.StringIO()
    backend = side.module("backends.console").EmailBackend(stream=stream)
    try:
        backend.send_messages([message(side, 1), bad_header_message(side), message(side, 3)])
    except Exception as exc:
        return {"raises": type(exc).__name__, "output": masked(stream.getvalue())}
    return "sent"


@scenario(
    {"MAILERS": {"default": {"BACKEND": "{backends}.locmem.EmailBackend"}}},
    deliberate=BATCH_GOES_ON,
)
def locmem_bad_message(side: Side) -> Any:
    batch = [message(side, 1), bad_header_message(side), message(side, 3)]
    return side.mail.mailers["default"].send_messages(batch)


@scenario(file_mailer("{tmp}/mail"), deliberate=BATCH_GOES_ON)
def file_bad_message(side: Side) -> Any:
    batch = [message(side, 1), bad_header_message(side), message(side, 3)]
    try:
        side.mail.mailers["default"].send_messages(batch)
    except Exception as exc:
        return {"raises": type(exc).__name__, "files": files(side.tmp / "mail")}
    return "sent"


@scenario(file_mailer("{tmp}/mail"), deliberate=BATCH_GOES_ON)
def file_bad_message_fail_silently(side: Side) -> Any:
    backend = side.module("backends.filebased").EmailBackend(
        file_path=side.tmp / "mail", fail_silently=True
    )
    sent = backend.send_messages([message(side, 1), bad_header_message(side), message(side, 3)])
    return {"sent": sent, "files": files(side.tmp / "mail")}


def refusing(side: Side, run: Any) -> Any:
    """``run()`` while the SMTP server refuses ``bad@example.com`` (550)."""
    side.smtp.faults.refuse["bad@example.com"] = "550 5.1.1 no such user"
    try:
        return under(side, {"MAILERS": smtp_mailer(side)}, run)
    finally:
        side.smtp.faults.refuse.clear()


def to(side: Side, n: int, *recipients: str) -> Any:
    return side.mail.EmailMessage(f"Subject {n}", "Body", "from@example.com", list(recipients))


@scenario(deliberate="a message some of whose recipients were refused raises DeliveryError")
def smtp_some_recipients_refused(side: Side) -> Any:
    def run() -> Any:
        msg = to(side, 1, "good@example.com", "bad@example.com")
        sent = side.mail.mailers["default"].send_messages([msg])
        return {"sent": sent, "received": side.received()}

    return refusing(side, run)


@scenario(deliberate=BATCH_GOES_ON)
def smtp_every_recipient_refused(side: Side) -> Any:
    def run() -> Any:
        batch = [to(side, 1, "good@example.com"), to(side, 2, "bad@example.com")]
        batch.append(to(side, 3, "good@example.com"))
        try:
            side.mail.mailers["default"].send_messages(batch)
        except Exception as exc:
            return {"raises": [c.__name__ for c in type(exc).__mro__], "received": side.received()}
        return "sent"

    return refusing(side, run)


@scenario()
def smtp_every_recipient_refused_fail_silently(side: Side) -> Any:
    def run() -> Any:
        batch = [to(side, 1, "good@example.com"), to(side, 2, "bad@example.com")]
        batch.append(to(side, 3, "good@example.com"))
        backend = side.mail.mailers["default"]
        backend.fail_silently = True
        return {"sent": backend.send_messages(batch), "received": side.received()}

    return refusing(side, run)


# -- what the console shows for non-ASCII text -----------------------------------------


@scenario()
def console_non_ascii_text(side: Side) -> Any:
    stream = io.StringIO()
    backend = side.module("backends.console").EmailBackend(stream=stream)
    # ASCII headers: encoded-words differ in form (Django picks Q, mailpost B), not in text.
    msg = side.mail.EmailMessage(
        "Greetings", "Héllo wörld, ça va?\n", "from@example.com", ["to@example.com"]
    )
    return {"sent": backend.send_messages([msg]), "output": masked(stream.getvalue())}


@scenario(deliberate="send_messages([]) returns 0 on every backend, never None")
def console_and_file_send_messages_of_nothing(side: Side) -> Any:
    console = side.module("backends.console").EmailBackend(stream=io.StringIO())
    file = side.module("backends.filebased").EmailBackend(file_path=side.tmp)
    return [console.send_messages([]), file.send_messages([])]


# -- what reaches the SMTP server and the outbox ---------------------------------------


@scenario()
def smtp_wire_rich_message(side: Side) -> Any:
    def run() -> Any:
        msg = side.mail.EmailMultiAlternatives(
            "Grüße aus Köln",
            "Plain text, ça va?\n",
            "Zoë Sender <from@example.com>",
            ["to@example.com"],
            cc=["cc@example.com"],
            bcc=["hidden@example.com"],
            reply_to=["reply@example.com"],
            headers={"X-Campaign": "spring"},
        )
        msg.attach_alternative("<p>HTML, ça va?</p>", "text/html")
        # (A text attachment differs on purpose: see text_attachment_is_kept_byte_for_byte.)
        msg.attach("data.bin", b"\x00\x01\x02binary", "application/octet-stream")
        sent = side.mail.mailers["default"].send_messages([msg])
        return {"sent": sent, "received": side.received()}

    return under(side, {"MAILERS": smtp_mailer(side)}, run)


@scenario(
    {
        "MAILERS": {
            "default": {"BACKEND": "{backends}.locmem.EmailBackend"},
            "alerts": {"BACKEND": "{backends}.locmem.EmailBackend"},
        }
    }
)
def locmem_outbox_marks_the_mailer(side: Side) -> Any:
    side.mail.mailers["alerts"].send_messages([message(side, 1)])
    side.mail.mailers["default"].send_messages([message(side, 2)])
    return [m.sent_using for m in side.outbox()]


@scenario({"EMAIL_BACKEND": "{backends}.locmem.EmailBackend"})
def locmem_outbox_legacy_has_no_mailer(side: Side) -> Any:
    side.mail.mailers["default"].send_messages([message(side, 1)])
    side.module("backends.locmem").EmailBackend().send_messages([message(side, 2)])
    return [m.sent_using for m in side.outbox()]


# -- fail_silently on the backends that do not take it (Django 6.1) --------------------


@scenario()
def locmem_direct_fail_silently(side: Side) -> Any:
    backend = side.module("backends.locmem").EmailBackend(fail_silently=True, foo=1)
    return backend.send_messages([message(side)])


@scenario()
def dummy_direct_fail_silently_positionally(side: Side) -> Any:
    return side.module("backends.dummy").EmailBackend(True).send_messages([message(side)])


@scenario({"EMAIL_BACKEND": "{backends}.locmem.EmailBackend"})
def locmem_send_mail_fail_silently_legacy(side: Side) -> Any:
    return side.mail.send_mail("S", "B", "from@example.com", ["to@example.com"], fail_silently=True)


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.locmem.EmailBackend"}}})
def locmem_send_mail_fail_silently(side: Side) -> Any:
    return side.mail.send_mail("S", "B", "from@example.com", ["to@example.com"], fail_silently=True)


@scenario(deliberate=BATCH_GOES_ON)
def smtp_server_down_send_messages(side: Side) -> Any:
    def run() -> Any:
        try:
            side.mail.mailers["default"].send_messages([message(side, 1), message(side, 2)])
        except OSError as exc:
            return {"raises": type(exc).__name__}
        return "sent"

    options = {"host": "127.0.0.1", "port": closed_port()}
    return under(side, {"MAILERS": mailer(side, "smtp", **options)}, run)


# -- fail_silently as a MAILERS option (Django 6.1: locmem and dummy take no OPTIONS) --------

_REQUIRED_OPTIONS: dict[str, dict[str, Any]] = {
    "locmem": {},
    "dummy": {},
    "console": {},
    "filebased": {"file_path": "{tmp}"},
    "smtp": {"host": "smtp.example.com"},
}


def _fail_silently_option_scenario(short: str, value: bool) -> None:
    options = {**_REQUIRED_OPTIONS[short], "fail_silently": value}
    entry = {"BACKEND": f"{{backends}}.{short}.EmailBackend", "OPTIONS": options}
    name = f"fail_silently_{str(value).lower()}_option_under_mailers_{short}"

    @scenario({"MAILERS": {"default": entry}}, name=name)
    def run(side: Side) -> Any:
        return side.mail.mailers["default"].fail_silently

    @scenario({"MAILERS": {"default": entry}}, name=f"{name}_send_mail_using")
    def run_send(side: Side) -> Any:
        if short == "smtp":
            return None  # sending needs a server; building the mailer is what is compared
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            sent = side.mail.send_mail(
                "S", "B", "from@example.com", ["to@example.com"], using="default"
            )
        return {"sent": sent, "stdout": masked(out.getvalue())}


for _short in _REQUIRED_OPTIONS:
    for _value in (True, False):
        _fail_silently_option_scenario(_short, _value)


# -- reading and setting backend.fail_silently (Django 6.1 deprecates the inherited one) ----


@scenario()
def fail_silently_attribute_of_direct_backends(side: Side) -> Any:
    out = {}
    for short, options in _REQUIRED_OPTIONS.items():
        if short == "smtp":
            continue  # constructing it directly warns on its own; see smtp_* scenarios
        backend = side.module(f"backends.{short}").EmailBackend(
            **{k: v.replace("{tmp}", str(side.tmp)) for k, v in options.items()}
        )
        out[short] = backend.fail_silently
    return out


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.locmem.EmailBackend"},
                       "dummy": {"BACKEND": "{backends}.dummy.EmailBackend"}}})  # fmt: skip
def fail_silently_attribute_of_mailers_locmem_and_dummy(side: Side) -> Any:
    return [side.mail.mailers["default"].fail_silently, side.mail.mailers["dummy"].fail_silently]


_TAKING_FAIL_SILENTLY = {
    "default": {"BACKEND": "{backends}.smtp.EmailBackend", "OPTIONS": {"host": "h"}},
    "console": {"BACKEND": "{backends}.console.EmailBackend"},
    "file": {"BACKEND": "{backends}.filebased.EmailBackend", "OPTIONS": {"file_path": "{tmp}"}},
}


@scenario({"MAILERS": _TAKING_FAIL_SILENTLY})
def fail_silently_attribute_of_mailers_that_take_it(side: Side) -> Any:
    return {alias: side.mail.mailers[alias].fail_silently for alias in _TAKING_FAIL_SILENTLY}


@scenario()
def fail_silently_attribute_set_then_read_locmem(side: Side) -> Any:
    backend = side.module("backends.locmem").EmailBackend()
    backend.fail_silently = True
    return [backend.fail_silently, backend.send_messages([message(side)])]


@scenario()
def fail_silently_attribute_locmem_given_directly(side: Side) -> Any:
    backend = side.module("backends.locmem").EmailBackend(fail_silently=True)
    return backend.fail_silently


@scenario({"MAILERS": {"default": {"BACKEND": "{backends}.locmem.EmailBackend"}}})
def fail_silently_attribute_after_get_connection_under_mailers(side: Side) -> Any:
    return side.mail.get_connection(fail_silently=True).fail_silently


@scenario({"EMAIL_BACKEND": "{backends}.dummy.EmailBackend"})
def fail_silently_attribute_after_get_connection_legacy(side: Side) -> Any:
    return side.mail.get_connection(fail_silently=True).fail_silently


# -- file backend: file_path of a wrong type --------------------------------------------------


def _file_path_of_a_wrong_type_scenario(kind: str, value: Any) -> None:
    @scenario(name=f"file_path_{kind}_direct")
    def run(side: Side) -> Any:
        return file_class(side)(file_path=value)


for _kind, _value in {
    "an_int": 5,
    "a_list": ["/tmp/mail"],
    "a_float": 1.5,
    "a_bool": True,
    "a_dict": {"path": "x"},
}.items():
    _file_path_of_a_wrong_type_scenario(_kind, _value)


#: A bytes path works on mailpost (docs/compatibility.md, "Backends").
BYTES_FILE_PATH = (
    "a bytes file_path is decoded to str (os.fsdecode) and works; Django keeps bytes and "
    "fails on the first send"
)


@scenario(deliberate=BYTES_FILE_PATH)
def file_path_given_as_bytes(side: Side) -> Any:
    backend = file_class(side)(file_path=os.fsencode(side.tmp / "mail"))
    kept = relative(side, os.fsdecode(backend.file_path))
    try:
        sent = backend.send_messages([message(side)])
    except TypeError as exc:
        return {"file_path": kept, "type": type(backend.file_path).__name__, "raises": str(exc)}
    return {"file_path": kept, "type": type(backend.file_path).__name__, "sent": sent}


@scenario(file_mailer(5))  # type: ignore[arg-type]
def file_path_an_int_under_mailers(side: Side) -> Any:
    return side.mail.mailers["default"]


@scenario(file_mailer(["{tmp}"]))  # type: ignore[arg-type]
def file_path_a_list_under_mailers(side: Side) -> Any:
    return side.mail.mailers["default"]


@scenario({"EMAIL_BACKEND": "{backends}.filebased.EmailBackend", "EMAIL_FILE_PATH": 5})
def file_path_an_int_in_email_file_path(side: Side) -> Any:
    return side.mail.mailers["default"]


#: docs/compatibility.md, "Backends".
LOCMEM_FAIL_SILENTLY = (
    "a fail_silently passed on by get_connection()/send_mail() silences composing errors on "
    "locmem and dummy as on every mailpost backend (recorded and logged); Django's ignore it"
)
DUMMY_COMPOSES = (
    "the dummy backend composes and checks each message, so a bad header fails as it would "
    "on a real backend; Django's counts the messages without composing them"
)


@scenario(
    {"MAILERS": {"default": {"BACKEND": "{backends}.locmem.EmailBackend"}}},
    deliberate=LOCMEM_FAIL_SILENTLY,
)
def locmem_bad_message_get_connection_fail_silently(side: Side) -> Any:
    return side.mail.get_connection(fail_silently=True).send_messages([bad_header_message(side)])


@scenario({"EMAIL_BACKEND": "{backends}.dummy.EmailBackend"}, deliberate=LOCMEM_FAIL_SILENTLY)
def dummy_bad_message_get_connection_fail_silently(side: Side) -> Any:
    return side.mail.get_connection(fail_silently=True).send_messages([bad_header_message(side)])


@scenario(
    {"MAILERS": {"default": {"BACKEND": "{backends}.dummy.EmailBackend"}}},
    deliberate=DUMMY_COMPOSES,
)
def dummy_bad_message(side: Side) -> Any:
    return side.mail.mailers["default"].send_messages([bad_header_message(side)])


# -- non-ASCII local parts (SMTPUTF8) -----------------------------------------------------


@scenario(
    deliberate="a non-ASCII local part is sent with SMTPUTF8; Django's SMTP backend refuses it"
)
def smtp_non_ascii_local_part(side: Side) -> Any:
    def run() -> Any:
        msg = side.mail.EmailMessage("Subject", "Body", "jörg@example.com", ["zoë@example.com"])
        sent = side.mail.mailers["default"].send_messages([msg])
        return {
            "sent": sent,
            "envelope": [[m.mail_from, m.rcpt_tos, m.mail_options] for m in side.smtp.messages],
        }

    return under(side, {"MAILERS": smtp_mailer(side)}, run)
