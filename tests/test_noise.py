"""Noise floors (``Threshold.noise``) in the config and the comparison, the ``repeat`` key, and where a
relative limit is reached. Real reruns are in tests/cli/test_repeat_noise.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from recordkit import suite

from memgate.baselines.model import Baseline
from memgate.compare import MetricRow, Verdict, compare
from memgate.config import Config, Limit, Threshold, parse_config
from memgate.errors import ConfigError
from memgate.metrics import MetricName

MiB = 1024 * 1024


def compared(metric: MetricName, before: int, after: int, **config: Any) -> MetricRow:
    old = suite(metrics={metric: before}, tool="rusage", tool_version="GNU Time 1.9")
    new = suite(metrics={metric: after}, tool="rusage", tool_version="GNU Time 1.9")
    result = compare([new], {"unit": Baseline.from_suite(old)}, Config.model_validate(config))
    (row,) = [r for r in result.suites[0].rows if r.metric == metric]
    return row


RSS_LIMITS = {"thresholds": {"rss_peak_bytes": {"warn": "0.5%", "fail": "10%"}}}


@pytest.mark.parametrize(
    ("before", "after", "verdict", "within_noise"),
    [
        # 200 MiB: 1% (2 MiB) is the larger floor
        (200 * MiB, 202 * MiB, Verdict.PASS, True),
        (200 * MiB, 202 * MiB + 1, Verdict.WARN, False),
        (200 * MiB, 198 * MiB, Verdict.PASS, True),  # down, inside the noise: not "improved"
        (200 * MiB, 198 * MiB - 1, Verdict.IMPROVED, False),
        (200 * MiB, 220 * MiB, Verdict.FAIL, False),
        # 11 MiB: 1 MiB is the larger floor (1% would be 112 KiB)
        (11 * MiB, 12 * MiB, Verdict.PASS, True),
        (11 * MiB, 12 * MiB + 4096, Verdict.WARN, False),
    ],
)
def test_rss_peak_default_floor_is_the_larger_of_1_percent_and_1_mib(
        before: int, after: int, verdict: Verdict, within_noise: bool) -> None:
    row = compared("rss_peak_bytes", before, after, **RSS_LIMITS)
    assert (row.verdict, row.within_noise) == (verdict, within_noise)
    assert row.noise_floor == max(before // 100, MiB)
    assert row.limit == "warn 0.5% / fail 10% / noise max(1%, 1MiB)"


def test_page_faults_default_floor() -> None:
    limits = {"thresholds": {"page_faults_minor": {"warn": "1%"}}}
    assert compared("page_faults_minor", 2_633, 2_733, **limits).verdict is Verdict.PASS  # +100
    assert compared("page_faults_minor", 2_633, 2_734, **limits).verdict is Verdict.WARN
    assert compared("page_faults_minor", 100_000, 102_000, **limits).verdict is Verdict.PASS  # 2%
    assert compared("page_faults_minor", 100_000, 102_001, **limits).verdict is Verdict.WARN


@pytest.mark.parametrize("metric", ["heap_peak_bytes", "alloc_calls", "heap_total_bytes", "errors",
                                    "leak_definite_bytes"])
def test_exact_counts_have_no_floor(metric: MetricName) -> None:
    row = compared(metric, 1_000_000, 1_100_000,
                   thresholds={metric: {"fail": "10%"}})
    assert (row.verdict, row.noise_floor, row.within_noise) == (Verdict.FAIL, 0, False)
    assert row.limit == "fail 10%"


def test_a_floor_set_for_a_metric_keeps_its_default_limits() -> None:
    """heap_peak_bytes = { noise = "2%" } widens the floor; the default warn 5% / fail 10% stay."""
    config = {"thresholds": {"heap_peak_bytes": {"noise": "2%"}}}
    assert compared("heap_peak_bytes", 1_000_000, 1_020_000, **config).verdict is Verdict.PASS
    row = compared("heap_peak_bytes", 1_000_000, 1_100_000, **config)
    assert (row.verdict, row.limit) == (Verdict.FAIL, "warn 5% / fail 10% / noise 2%")


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


def test_a_floor_alone_never_warns() -> None:
    """Without warn or fail limits (the default for rss_peak_bytes) nothing warns; the limit column
    stays empty rather than showing a floor that guards nothing."""
    row = compared("rss_peak_bytes", 10 * MiB, 20 * MiB)
    assert (row.verdict, row.limit) == (Verdict.PASS, "")


@pytest.mark.parametrize(
    ("text", "floor"),
    [("1MiB", MiB), ("+64KiB", 65536), ("0", 0), (0, 0), (3, 3), ("2.5%", 2_500), (["1%", "100"], 1_000),
     (["1%", "5000"], 5_000)],
)
def test_noise_values(text: Any, floor: int) -> None:
    assert Threshold.model_validate({"noise": text}).noise_floor(100_000) == floor
    assert Threshold.model_validate({"noise": []}).noise_floor(100_000) == 0


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('noise = "lots"', "thresholds.heap_peak_bytes.noise[0]: 'lots' is not a limit"),
        ('noise = ["1%", "x"]', "thresholds.heap_peak_bytes.noise[1]: 'x' is not a limit"),
        ("noise = true", "thresholds.heap_peak_bytes.noise[0]: a limit is a string"),
        ('noise = "-1MiB"', "thresholds.heap_peak_bytes.noise[0]: '-1MiB' is not a limit"),
    ],
)
def test_bad_noise_is_a_config_error_with_the_key(tmp_path: Path, toml: str, message: str) -> None:
    text = (f'[[suite]]\nname = "u"\ncommand = ["t"]\ntool = "dhat"\n'
            f'[thresholds]\nheap_peak_bytes = {{ {toml} }}\n')
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.").replace("[", r"\[")):
        parse_config(text, tmp_path / "memgate.toml")


@pytest.mark.parametrize("value", ["0", "51", '"3"', "true", "2.5", "-1"])
def test_repeat_outside_1_to_50_is_a_config_error(tmp_path: Path, value: str) -> None:
    text = f'[[suite]]\nname = "u"\ncommand = ["t"]\ntool = "dhat"\nrepeat = {value}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "memgate.toml")
    assert caught.value.message.startswith("suite[0].repeat: repeat is the number of runs, a whole number "
                                           "from 1 to 50; got ")
    assert caught.value.path == str(tmp_path / "memgate.toml")


def test_repeat_defaults_to_1(tmp_path: Path) -> None:
    text = '[[suite]]\nname = "u"\ncommand = ["t"]\ntool = "dhat"\n[[suite]]\nname = "v"\ncommand = ["t"]\n' \
           'tool = "dhat"\nrepeat = 50\n'
    assert [s.repeat for s in parse_config(text, tmp_path / "memgate.toml").suites] == [1, 50]


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
