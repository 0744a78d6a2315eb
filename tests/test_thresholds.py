"""memgate/thresholds.py: parsing a limit, where it is crossed, noise floors, the levels in force and the
verdict of one metric's change."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from memgate.config import Config
from memgate.thresholds import DEFAULT_THRESHOLDS, Limit, Threshold, Verdict, in_force, worst

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("limit", "baseline", "current", "crossed"),
    [
        ("10%", 1_000_000, 1_100_000, True),  # reached exactly: the "fails at +10%"
        ("10%", 1_000_000, 1_099_999, False),
        ("10%", 10 * MiB, 11 * MiB, True),  # exact arithmetic, no floating-point rounding either way
        ("3%", 1_000_000, 1_030_000, True),
        ("0.1%", 1_000, 1_001, True),
        ("33.3%", 1_000, 1_333, True),  # 33.3 / 100 is not exact in binary floating point
        ("33.3%", 1_000, 1_332, False),
        ("10%", 0, 1, True),  # any growth from 0
        ("10%", 5, 5, False),
        ("+0", 10, 11, True),  # absolute: the growth allowed
        ("+0", 10, 10, False),
        ("+3", 10, 13, False),
        ("+3", 10, 14, True),
    ],
)
def test_where_a_limit_is_crossed(limit: str, baseline: int, current: int, crossed: bool) -> None:
    assert Limit.model_validate(limit).exceeded(baseline, current) is crossed


@pytest.mark.parametrize(
    ("text", "floor"),
    [("1MiB", MiB), ("+64KiB", 65536), ("0", 0), (0, 0), (3, 3), ("2.5%", 2_500), (["1%", "100"], 1_000),
     (["1%", "5000"], 5_000)],
)
def test_noise_values(text: Any, floor: int) -> None:
    assert Threshold.model_validate({"noise": text}).noise_floor(100_000) == floor
    assert Threshold.model_validate({"noise": []}).noise_floor(100_000) == 0


def test_the_floor_is_inherited_apart_from_the_limits() -> None:
    config = Config.model_validate({
        "thresholds": {"rss_peak_bytes": {"warn": "5%", "noise": "4MiB"}},
        "suite": [
            {"name": "keeps", "command": ["t"], "tool": "rusage",
             "thresholds": {"rss_peak_bytes": {"fail": "9%"}}},
            {"name": "own", "command": ["t"], "tool": "rusage",
             "thresholds": {"rss_peak_bytes": {"noise": ["3%", "2MiB"]}}},
            {"name": "none", "command": ["t"], "tool": "rusage",
             "thresholds": {"rss_peak_bytes": {"noise": 0}}},
        ],
    })
    keeps = config.thresholds_for("keeps")["rss_peak_bytes"]
    assert (keeps.warn, keeps.fail and keeps.fail.text, keeps.noise_text()) == (None, "9%", "4MiB")
    own = config.thresholds_for("own")["rss_peak_bytes"]
    assert own.warn is not None and own.warn.text == "5%"
    assert (own.noise_text(), own.noise_floor(100 * MiB)) == ("max(3%, 2MiB)", 3 * MiB)
    none = config.thresholds_for("none")["rss_peak_bytes"]
    assert none.noise_floor(100 * MiB) == 0
    assert config.thresholds_for(None)["rss_peak_bytes"].noise_floor(MiB) == 4 * MiB


# --- parsing a limit -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "relative", "absolute", "text"),
    [
        ("10%", 0.1, None, "10%"),
        (" +2.5 % ", 0.025, None, "+2.5 %"),
        ("+0", None, 0, "+0"),
        ("+64KiB", None, 65_536, "+64KiB"),
        ("1.5MiB", None, 1_572_864, "1.5MiB"),
        ("2kB", None, 2_000, "2kB"),  # kB, MB and GB are decimal
        ("1 gib", None, 1024**3, "1 gib"),  # units of any case
        ("100", None, 100, "100"),
        (3, None, 3, "+3"),  # a TOML integer is an absolute limit
    ],
)
def test_a_limit_is_read_from_its_text(written: Any, relative: float | None, absolute: int | None,
                                       text: str) -> None:
    limit = Limit.model_validate(written)
    assert (limit.relative, limit.absolute, limit.text) == (relative, absolute, text)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (True, "a limit is a string such as \"10%\", \"+64KiB\" or \"+0\", not true/false"),
        (-1, "a limit cannot be negative"),
        ("-1MiB", "'-1MiB' is not a limit"),
        ("ten", "'ten' is not a limit"),
        ("5 apples", "unknown unit 'apples' in '5 apples': use B, KiB, MiB or GiB"),
        ("9" * 41 + "%", "its number has 41 characters"),
    ],
)
def test_what_is_not_a_limit(written: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        Limit.model_validate(written)


def test_a_limit_of_40_digits_is_still_read() -> None:
    assert Limit.model_validate("9" * 40).absolute == int(float("9" * 40))


@pytest.mark.parametrize(
    ("limit", "baseline", "amount"),
    [("10%", 1_000, 100), ("10%", 1_009, 100), ("33.3%", 1_000, 333), ("10%", -1_000, 100), ("10%", 0, 0),
     ("+64KiB", 5, 65_536), ("+0", 1_000, 0)],
)
def test_a_limit_in_the_metrics_own_units(limit: str, baseline: int, amount: int) -> None:
    """A relative amount is rounded down, and taken of the baseline's size whatever its sign."""
    assert Limit.model_validate(limit).amount(baseline) == amount


def test_a_relative_limit_is_an_exact_fraction() -> None:
    assert Limit.model_validate("33.3%").fraction() == Fraction(333, 1000)
    assert Limit.model_validate("+10%").fraction() == Fraction(1, 10)


def test_a_floor_below_the_largest_of_its_limits_is_that_largest() -> None:
    floor = Threshold.model_validate({"noise": ["1%", "1MiB"]})
    assert floor.noise_floor(200 * MiB) == 2 * MiB
    assert floor.noise_floor(11 * MiB) == MiB
    assert floor.noise_text() == "max(1%, 1MiB)"
    assert Threshold().noise_text() == ""


# --- the verdict of one metric's change ------------------------------------------------------------

HEAP_RULE = Threshold.model_validate({"warn": "5%", "fail": "10%", "noise": "+100"})


@pytest.mark.parametrize(
    ("baseline", "current", "verdict"),
    [
        (10_000, 10_000, Verdict.PASS),
        (10_000, 10_100, Verdict.PASS),  # exactly the noise floor: noise
        (10_000, 9_900, Verdict.PASS),  # down by the floor: noise, not "improved"
        (10_000, 9_899, Verdict.IMPROVED),
        (10_000, 10_101, Verdict.PASS),  # above the floor, below warn
        (10_000, 10_499, Verdict.PASS),
        (10_000, 10_500, Verdict.WARN),  # exactly +5%
        (10_000, 10_999, Verdict.WARN),
        (10_000, 11_000, Verdict.FAIL),  # exactly +10%: fail wins over warn
        (0, 101, Verdict.FAIL),  # a relative limit on a zero baseline: any growth past the floor
        (0, 100, Verdict.PASS),
        (None, 1_000_000, Verdict.NEW),  # no baseline: relative limits do not apply
    ],
)
def test_the_verdict_of_a_change(baseline: int | None, current: int, verdict: Verdict) -> None:
    assert HEAP_RULE.verdict(baseline, current) is verdict


@pytest.mark.parametrize(
    ("rule", "current", "verdict"),
    [
        ({"fail": "+0"}, 1, Verdict.FAIL),  # "+0" leaks and errors still fail a new suite
        ({"fail": "+0"}, 0, Verdict.NEW),
        ({"warn": "+10", "fail": "+20"}, 10, Verdict.NEW),
        ({"warn": "+10", "fail": "+20"}, 11, Verdict.WARN),
        ({"warn": "+10", "fail": "+20"}, 21, Verdict.FAIL),
        ({"warn": "1%", "fail": "+20"}, 15, Verdict.NEW),  # the relative warn is skipped
        ({}, 5, Verdict.NEW),
    ],
)
def test_without_a_baseline_only_absolute_limits_apply_against_zero(rule: dict[str, str], current: int,
                                                                    verdict: Verdict) -> None:
    assert Threshold.model_validate(rule).verdict(None, current) is verdict


def test_no_limit_no_warning() -> None:
    assert Threshold().verdict(1, 1_000_000) is Verdict.PASS
    assert Threshold().verdict(1_000_000, 1) is Verdict.IMPROVED


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        ({"warn": "5%", "fail": "10%"}, "warn 5% / fail 10%"),
        ({"fail": "+0"}, "fail +0"),
        ({"warn": "0.5%", "fail": "10%", "noise": ["1%", "1MiB"]},
         "warn 0.5% / fail 10% / noise max(1%, 1MiB)"),
        ({"fail": "+0", "noise": "0"}, "fail +0"),  # a floor of 0 guards nothing: not shown
        ({"noise": "1MiB"}, ""),  # a floor without limits is not shown either
        ({}, ""),
    ],
)
def test_the_limit_text(rule: dict[str, Any], text: str) -> None:
    assert Threshold.model_validate(rule).limit_text() == text


@pytest.mark.parametrize(
    ("verdicts", "overall"),
    [
        ([], Verdict.PASS),
        ([Verdict.IMPROVED, Verdict.NEW], Verdict.PASS),
        ([Verdict.PASS, Verdict.WARN, Verdict.IMPROVED], Verdict.WARN),
        ([Verdict.WARN, Verdict.FAIL, Verdict.NEW], Verdict.FAIL),
    ],
)
def test_worst(verdicts: list[Verdict], overall: Verdict) -> None:
    assert worst(verdicts) is overall


# --- the thresholds in force -----------------------------------------------------------------------


def test_without_levels_the_defaults_are_in_force() -> None:
    assert in_force() == DEFAULT_THRESHOLDS
    assert in_force({}, {}) == DEFAULT_THRESHOLDS
    assert "heap_total_bytes" not in in_force()  # a metric without rule has no entry


def test_each_level_replaces_the_limits_below_it() -> None:
    global_level = {"heap_peak_bytes": Threshold.model_validate({"fail": "20%"}),
                    "heap_total_bytes": Threshold.model_validate({"warn": "1%"})}
    suite_level = {"heap_peak_bytes": Threshold.model_validate({"warn": "1%"})}
    merged = in_force(global_level, suite_level)
    peak = merged["heap_peak_bytes"]
    assert (peak.warn and peak.warn.text, peak.fail) == ("1%", None)  # the suite's entry replaces both
    total = merged["heap_total_bytes"]
    assert (total.warn and total.warn.text, total.fail) == ("1%", None)
    assert merged["errors"] == DEFAULT_THRESHOLDS["errors"]


def test_a_noise_only_entry_keeps_the_limits_below_it() -> None:
    merged = in_force({"heap_peak_bytes": Threshold.model_validate({"noise": "2%"})})["heap_peak_bytes"]
    assert merged.limit_text() == "warn 5% / fail 10% / noise 2%"


def test_a_suite_not_configured_gets_the_global_level() -> None:
    config = Config.model_validate({"thresholds": {"alloc_calls": {"fail": "1%"}}})
    assert config.thresholds_for("elsewhere") == config.thresholds_for(None) == in_force(config.thresholds)
    assert config.thresholds_for(None)["alloc_calls"].limit_text() == "fail 1%"
