"""What every ``mailpost`` subcommand shares: exit codes, error type, output streams, and
how a mailer is named and described on a report line."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = [
    "EXIT_DELIVERY",
    "EXIT_OK",
    "EXIT_USAGE",
    "HOW_TO_CONFIGURE",
    "CliError",
    "HelpFormatter",
    "Streams",
    "backend_for",
    "configured_aliases",
    "describe_backend",
    "positive_seconds",
    "quiet_library_log",
    "required_aliases",
    "unknown_alias",
]

EXIT_OK = 0
EXIT_DELIVERY = 1
EXIT_USAGE = 2

HOW_TO_CONFIGURE = """\
Configure a mailer first, for example for this shell:
  export MAILPOST_MAILERS='{"default": "smtp://USER:PASSWORD@smtp.example.com:587?use_tls=true&timeout=10"}'
(JSON; each value is a mailer URL or a {"BACKEND": ..., "OPTIONS": {...}} dict), or call
mailpost.configure(MAILERS={...}) in your program, or set MAILERS in Django's settings."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps examples as written and leaves room for long command names in listings."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 32,
                 width: int | None = None) -> None:  # fmt: skip
        super().__init__(prog, indent_increment, max_help_position, width)


class CliError(Exception):
    """A problem to report on stderr, with the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Streams:
    """Where a command writes: results to ``stdout``, notes and errors to ``stderr``."""

    stdout: TextIO
    stderr: TextIO

    def note(self, line: str) -> None:
        self.stderr.write(line + "\n")
        self.stderr.flush()

    error = note

    def out(self, line: str) -> None:
        self.stdout.write(line + "\n")
        self.stdout.flush()


@contextmanager
def quiet_library_log() -> Iterator[None]:
    """Keep mailpost's log records off stderr while a command reports every outcome itself.

    Without a handler of its own, a record would reach logging's last-resort handler and be
    printed a second time; handlers the program configured still receive it.
    """
    logger = logging.getLogger("mailpost")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def configured_aliases() -> list[str]:
    """The ``MAILERS`` aliases defined right now; a configuration error exits 2."""
    from mailpost.exceptions import ImproperlyConfigured
    from mailpost.handler import mailers

    try:
        return [str(alias) for alias in mailers]
    except ImproperlyConfigured as exc:
        raise CliError(str(exc)) from None


def unknown_alias(alias: str, defined: list[str]) -> CliError:
    """The error for ``--using`` naming an alias that is not in ``MAILERS``."""
    names = ", ".join(repr(a) for a in sorted(defined)) or "none"
    return CliError(f"MAILERS[{alias!r}]: no such mailer (defined aliases: {names})")


def required_aliases(using: str | None, *, otherwise: str) -> list[str]:
    """The defined ``MAILERS`` aliases, for a command that needs at least one, and ``using``
    among them when given. ``otherwise`` says what cannot happen without a mailer."""
    defined = configured_aliases()
    if not defined:
        raise CliError(f"no mailers are configured, so {otherwise}.\n{HOW_TO_CONFIGURE}")
    if using is not None and using not in defined:
        raise unknown_alias(using, defined)
    return defined


def backend_for(alias: str) -> Any:
    """``mailers[alias]``; an invalid entry or a missing extra is a configuration error."""
    from mailpost.exceptions import MailpostError
    from mailpost.handler import mailers

    try:
        return mailers[alias]
    except (MailpostError, ImportError) as exc:  # MissingDependency says what to pip install
        raise CliError(str(exc)) from None


def positive_seconds(text: str) -> float:
    """argparse ``type=`` for a timeout: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_backend(backend: Any) -> str:
    """A short, secret-free description: ``smtp mail.example.com:587 STARTTLS``, ``file /dir``."""
    from mailpost.backends.console import ConsoleBackend
    from mailpost.backends.dummy import DummyBackend
    from mailpost.backends.filebased import FileBackend
    from mailpost.backends.locmem import LocmemBackend
    from mailpost.backends.smtp import SMTPBackend

    if isinstance(backend, SMTPBackend):
        where = f"smtp {_host_port(backend.host, backend.port)}"
        if backend.use_ssl:
            return f"{where} implicit TLS"
        return f"{where} STARTTLS" if backend.use_tls else where
    if isinstance(backend, FileBackend):
        return f"file {os.fspath(backend.file_path)}"
    if isinstance(backend, ConsoleBackend):
        return "console (messages are printed, not sent)"
    if isinstance(backend, LocmemBackend):
        return "locmem (messages are kept in memory, not sent)"
    if isinstance(backend, DummyBackend):
        return "dummy (messages are discarded)"
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"
