"""What every ``mailpost`` subcommand shares: exit codes, error type, output streams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

__all__ = ["EXIT_DELIVERY", "EXIT_OK", "EXIT_USAGE", "CliError", "Streams"]

EXIT_OK = 0
EXIT_DELIVERY = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A problem to report in one line, with the exit code that goes with it."""

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
