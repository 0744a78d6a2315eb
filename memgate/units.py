"""Units, parsed and formatted once: counts that tools print (``count_of``, ``counts_read``), sizes,
durations and percentages."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

from memgate.errors import ParseError

#: The most digits a count in a tool's output has: 2**64 has 20. ``int()`` refuses more than 4,300
#: with a bare ValueError, and no tool wrote such a number: it is a broken or crafted file.
MAX_COUNT_DIGITS = 20


class NumberTooLong(ParseError):
    """A number longer than any count a tool writes. The parser that meets it knows the file: it
    catches this and raises its own ``ParseError`` with the path and its hint (uncaught, it is still
    a clean error, without the file)."""

    def __init__(self, digits: str) -> None:
        super().__init__(f"a number of {len(digits):,} digits (a count has at most {MAX_COUNT_DIGITS})")


def count_of(digits: str) -> int:
    """A count (bytes, blocks, calls, a pid, a line number) that a tool printed in decimal, as
    ``int``; ``NumberTooLong`` when it is longer than any count, which ``int()`` may fail on."""
    if len(digits) > MAX_COUNT_DIGITS:
        raise NumberTooLong(digits)
    return int(digits)


@contextmanager
def counts_read(path: Path, *, not_a: str, hint: str) -> Iterator[None]:
    """Around a reader of ``path``: a ``NumberTooLong`` it raises becomes the reader's own
    ``ParseError``, "<not_a>: it holds a number of N digits ...", with the file and ``hint``."""
    try:
        yield
    except NumberTooLong as error:
        raise ParseError(f"{not_a}: it holds {error.message}", path=path, hint=hint) from None


# --- sizes -----------------------------------------------------------------------------------------

#: Bytes in a unit of a size written in the config, lower case: "k", "KiB" and "MiB" are binary,
#: "kB", "MB" and "GB" decimal; no unit is bytes.
SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2,
              "mib": 1024**2, "g": 1024**3, "gb": 1000**3, "gib": 1024**3}


class UnknownUnit(ValueError):
    """A size written with a unit that is not in ``SIZE_UNITS``."""

    def __init__(self, unit: str) -> None:
        super().__init__(f"unknown unit {unit!r}")
        self.unit = unit


def size_in_bytes(number: str, unit: str) -> int:
    """Bytes of a size written as a decimal number and a unit ("1.5", "MiB"), rounded down;
    ``UnknownUnit`` for a unit not in ``SIZE_UNITS`` (of any case)."""
    factor = SIZE_UNITS.get(unit.lower())
    if factor is None:
        raise UnknownUnit(unit)
    return int(float(number) * factor)


def format_bytes(value: int) -> str:
    """"512 B" below 1 KiB (the exact count), else two decimals of the largest binary unit that keeps
    the figure under 1024 (TiB at most): "1.50 MiB", "-64.00 KiB"."""
    sign = "-" if value < 0 else ""
    size = float(abs(value))
    if size < 1024:
        return f"{sign}{int(size)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            return f"{sign}{size:.2f} {unit}"
    raise AssertionError("unreachable")


def signed_bytes(value: int) -> str:
    """"+32 B", "-1.50 KiB", "0 B"."""
    return ("+" if value > 0 else "") + format_bytes(value)


def format_count(value: int) -> str:
    """A count with thousands separators: "1,234,567"."""
    return f"{value:,}"


# --- percentages -----------------------------------------------------------------------------------


def percent_fraction(number: str) -> Fraction:
    """A percentage written in decimal ("33.3", "+10") as an exact fraction (333/1000, 1/10): a
    relative limit is reached at exactly its percentage, which binary floating point cannot hold."""
    return Fraction(number.lstrip("+")) / 100


def format_percent_change(percent: float) -> str:
    """A signed change in percent with one decimal: "+7.0%", "-12.5%", "+0.0%"."""
    return f"{percent:+.1f}%"


# --- durations -------------------------------------------------------------------------------------

#: The longest duration memgate takes: no CI job runs a week, and waiting on a larger one (infinity
#: among them) overflows the clocks of ``threading`` and ``select`` or never ends.
MAX_DURATION = 7 * 86400.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)")
_SECONDS_IN = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def parse_duration(value: Any) -> float:
    """Seconds from 600, "90s", "10m", "1h30m" or "500ms"."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as \"10m\"")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an integer of more than 308 digits
            raise ValueError(f"a duration of {len(str(value)):,} digits is no timeout") from None
    elif isinstance(value, str):
        seconds = _seconds_of_text(value)
    else:
        raise ValueError("a duration is a number of seconds or a string such as \"10m\"")
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{value!r} is no duration: give a number of seconds such as 600, or \"10m\"")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    if seconds > MAX_DURATION:
        raise ValueError(f"a duration of {seconds:.4g} s is longer than any job runs: give at most "
                         f"7 days ({MAX_DURATION:.0f} s)")
    return seconds


def _seconds_of_text(value: str) -> float:
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if re.fullmatch(rf"(?:{_DURATION.pattern}\s*)+", text):
        return sum(float(n) * _SECONDS_IN[unit] for n, unit in _DURATION.findall(text))
    raise ValueError(f"{value!r} is not a duration: write \"90s\", \"10m\" or \"1h\"")
