"""memgate/units.py: counts, sizes, durations and percentages, parsed and formatted."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from memgate.units import (
    MAX_COUNT_DIGITS,
    NumberTooLong,
    UnknownUnit,
    count_of,
    format_bytes,
    format_count,
    format_percent_change,
    parse_duration,
    percent_fraction,
    size_in_bytes,
)


def test_a_count_of_20_digits_is_read_and_one_of_21_is_refused() -> None:
    assert count_of("0") == 0
    assert count_of("9" * MAX_COUNT_DIGITS) == 10**MAX_COUNT_DIGITS - 1
    with pytest.raises(NumberTooLong, match="a number of 21 digits"):
        count_of("9" * (MAX_COUNT_DIGITS + 1))


@pytest.mark.parametrize(
    ("number", "unit", "size"),
    [("0", "", 0), ("7", "B", 7), ("64", "KiB", 65_536), ("64", "k", 65_536), ("64", "kB", 64_000),
     ("1.5", "MiB", 1_572_864), ("1", "MB", 1_000_000), ("2", "GiB", 2 * 1024**3), ("1", "GB", 10**9),
     ("1", "mib", 1024**2), ("0.5", "B", 0), ("1.9999", "KiB", 2047)],  # rounded down
)
def test_size_in_bytes(number: str, unit: str, size: int) -> None:
    assert size_in_bytes(number, unit) == size


def test_an_unknown_unit_is_named_as_written() -> None:
    with pytest.raises(UnknownUnit, match="unknown unit 'Parsec'") as raised:
        size_in_bytes("1", "Parsec")
    assert raised.value.unit == "Parsec"
    with pytest.raises(UnknownUnit):
        size_in_bytes("1", "TiB")  # not a unit of the config (no limit is that large)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.00 KiB"), (1536, "1.50 KiB"), (-2048, "-2.00 KiB"),
     (-1, "-1 B"), (1024**2 - 1, "1024.00 KiB"), (1024**2, "1.00 MiB"), (5 * 1024**3, "5.00 GiB"),
     (1024**4, "1.00 TiB"), (1024**5, "1024.00 TiB")],  # TiB is the largest unit
)
def test_format_bytes(value: int, shown: str) -> None:
    assert format_bytes(value) == shown


def test_format_count() -> None:
    assert [format_count(n) for n in (0, 999, 1_000, -1_234_567)] == ["0", "999", "1,000", "-1,234,567"]


@pytest.mark.parametrize(
    ("number", "fraction"),
    [("10", Fraction(1, 10)), ("+10", Fraction(1, 10)), ("33.3", Fraction(333, 1000)), ("0", Fraction(0)),
     ("0.1", Fraction(1, 1000)), ("250", Fraction(5, 2))],
)
def test_percent_fraction_is_exact(number: str, fraction: Fraction) -> None:
    assert percent_fraction(number) == fraction


@pytest.mark.parametrize(
    ("percent", "shown"),
    [(7.0, "+7.0%"), (-12.5, "-12.5%"), (0.0, "+0.0%"), (0.04, "+0.0%"), (6.836, "+6.8%"),
     (250.0, "+250.0%")],
)
def test_format_percent_change(percent: float, shown: str) -> None:
    assert format_percent_change(percent) == shown


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(600, 600.0), (0.5, 0.5), ("90", 90.0), ("2.5", 2.5), ("90s", 90.0), ("10m", 600.0), ("1h", 3600.0),
     ("1h30m", 5400.0), ("1h 30m 15s", 5415.0), ("500ms", 0.5), (" 2M ", 120.0), ("1.5m", 90.0),
     ("168h", 604800.0)],
)
def test_parse_duration(value: Any, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "a duration is a number of seconds or a string such as \"10m\""),
        ([10], "a duration is a number of seconds or a string such as \"10m\""),
        ("soon", "'soon' is not a duration: write \"90s\", \"10m\" or \"1h\""),
        ("10 minutes", "'10 minutes' is not a duration"),
        ("-5s", "'-5s' is not a duration"),
        (0, "a duration must be greater than zero"),
        ("0s", "a duration must be greater than zero"),
        (-5, "a duration must be greater than zero"),
        (int("9" * 400), "a duration of 400 digits is no timeout"),
        (float("nan"), "nan is no duration"),
        (float("inf"), "inf is no duration"),
        (1e300, "a duration of 1e+300 s is longer than any job runs: give at most 7 days (604800 s)"),
        ("169h", "a duration of 6.084e+05 s is longer than any job runs"),
    ],
)
def test_what_is_not_a_duration(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_duration(value)
    assert str(raised.value).startswith(message)
