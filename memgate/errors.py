"""Exit codes and the errors users see: each one a sentence that names the file and the fix."""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable
from enum import IntEnum
from pathlib import Path

#: What must not reach a terminal raw: control characters (C0, DEL, C1: ESC starts a sequence that
#: recolours or clears the screen, CR overwrites the line) and the Unicode line separators.
_CONTROL = re.compile(r"\r\n|[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: The password of a URL's user info (``https://oauth2:TOKEN@host``, ``user:TOKEN@``).
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/?#@\s:]*:)[^/?#@\s]+@")
#: A token's base64 form is left alone when shorter than this: it would match ordinary text.
_MIN_ENCODED_SECRET = 8


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


def redacted(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret replaced by ``***``: as it is, in base64 (a Basic auth header, a
    header a forge echoes back) and as the password of any URL. Redact before cutting a text short:
    a cut through a token leaves a prefix that no longer matches it."""
    pattern = _secrets_pattern(frozenset(secret for secret in secrets if secret))
    if pattern is not None:
        text = pattern.sub("***", text)
    return _URL_PASSWORD.sub(r"\1***@", text)


@functools.lru_cache(maxsize=8)
def _secrets_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    """Each secret as it is, or base64-encoded at any of the three offsets it may start at in the
    encoded bytes (``user:TOKEN`` puts it anywhere). The encoded groups at either end mix the
    secret's first or last bytes with their neighbours: up to four base64 characters on each side
    go too, so not one byte of it can be decoded back."""
    if not secrets:
        return None
    forms = set(map(re.escape, secrets))
    for secret in secrets:
        data = secret.encode()
        for offset in range(3):
            padded = b"\0" * offset + data
            first = 4 if offset else 0
            last = (len(padded) // 3) * 4
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                core = encode(padded).decode("ascii")[first:last]
                if len(core) >= _MIN_ENCODED_SECRET:
                    forms.add(f"{_BASE64_CHAR}{{0,4}}{re.escape(core)}{_BASE64_CHAR}{{0,4}}={{0,2}}")
    return re.compile("|".join(sorted(forms, key=len, reverse=True)))


_BASE64_CHAR = "[A-Za-z0-9+/_-]"


def escaped(text: str) -> str:
    """Outside text quoted in a message or a log line (a forge's answer, a URL it names): every
    control character as its escape, line breaks included (``\\n``, ``\\r``, ``\\t``), so what a
    forge sends can neither start a line of its own (a forged ``memgate: PASS``) nor drive the
    terminal, and the reader still sees where its lines broke."""
    return _CONTROL.sub(_escape, text)


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in ("\n", "\t", "\r\n"):
        return " "
    return _code(char)


def _escape(match: re.Match[str]) -> str:
    return "".join(_BREAKS.get(char) or _code(char) for char in match.group())


_BREAKS = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _code(char: str) -> str:
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
