"""Exit codes and the errors users see: each one a sentence that names the file and the fix."""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

#: What must not reach a terminal raw: control characters (C0, DEL, C1: ESC starts a sequence that
#: recolours or clears the screen, CR overwrites the line) and the Unicode line separators.
_CONTROL = re.compile(r"\r\n|[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class ExitCode(IntEnum):
    """memgate's documented exit codes (README and ``--help``)."""

    PASS = 0  # the gate passed (warnings allowed)
    GATE_FAILED = 1  # a fail threshold crossed, a new leak site or error, a crashed or timed-out suite
    USAGE = 2  # bad command line, configuration or baseline
    TOOL = 3  # memory tool missing, its output unparseable or incomplete, a run that could not start
    INTERNAL = 4  # a bug in memgate


class MemgateError(Exception):
    """An error with a one-line explanation, the file concerned and what to do about it."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str = "", path: Path | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = str(path) if path is not None else None

    def one_line(self) -> str:
        """The message, file and fix on one printable line: tool text and file names can hold any
        character, so line breaks and tabs become spaces and other control characters a visible
        escape (``\\x1b``)."""
        where = f" ({self.path})" if self.path else ""
        fix = f": {self.hint}" if self.hint else ""
        return printable(f"{self.message}{where}{fix}")


def printable(text: str) -> str:
    """``text`` without control characters: a line break or tab is a space, any other one its
    escape (``"\\x1b[31m"`` for ESC [31m), so it cannot span lines or drive the terminal."""
    return _CONTROL.sub(_visible, text)


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in ("\n", "\t", "\r\n"):
        return " "
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


class UsageError(MemgateError):
    exit_code = ExitCode.USAGE


class ConfigError(MemgateError):
    exit_code = ExitCode.USAGE


class BaselineError(MemgateError):
    exit_code = ExitCode.USAGE


class ToolError(MemgateError):
    """The memory tool is missing, could not start, or its output cannot be used."""

    exit_code = ExitCode.TOOL


class ParseError(ToolError):
    """Tool output that is not what the tool writes: garbage, unknown format, unreadable."""
