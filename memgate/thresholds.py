"""Thresholds: a limit parsed from its text, the rule in force for a suite and metric (defaults, then
the global [thresholds], then the suite's own), and the verdict of one metric's change."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from memgate.metrics import METRIC_NAMES, MetricName
from memgate.units import UnknownUnit, percent_fraction, size_in_bytes

_LIMIT = re.compile(
    r"^\s*(?:(?P<pct>\+?\d+(?:\.\d+)?)\s*%|\+?(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*))\s*$"
)
_MAX_LIMIT_NUMBER = 40  # characters of a limit's number: any count has 20 digits at most


class Verdict(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    IMPROVED = "improved"  # a metric went down, a site was fixed
    NEW = "new"  # nothing to compare with

    @property
    def severity(self) -> int:
        return _SEVERITY.get(self, 0)


_SEVERITY = {Verdict.FAIL: 3, Verdict.WARN: 2}


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    """The overall verdict of several: fail, else warn, else pass (improved and new are passes)."""
    severity = max((verdict.severity for verdict in verdicts), default=0)
    return {3: Verdict.FAIL, 2: Verdict.WARN}.get(severity, Verdict.PASS)


class Limit(BaseModel):
    """A threshold limit: a relative increase ("10%") or an absolute one ("+64KiB", "+0", "+3")."""

    model_config = ConfigDict(frozen=True)

    relative: float | None = None  # fraction: 0.1 for "10%"
    absolute: int | None = None
    text: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a limit is a string such as \"10%\", \"+64KiB\" or \"+0\", not true/false")
        if isinstance(value, int):
            if value < 0:
                raise ValueError("a limit cannot be negative")
            return {"absolute": value, "text": f"+{value}"}
        if isinstance(value, float):  # TOML's nan, inf and 1e999 among them
            raise ValueError(f"{value!r} is not a limit: write a string such as \"10%\" or \"+64KiB\", "
                             "or a whole number of units")
        if not isinstance(value, str):
            return value
        return _limit_fields(value)

    def exceeded(self, baseline: int, current: int) -> bool:
        """True when ``current`` grew by this limit or more. An absolute limit is the growth allowed
        ("+0": any growth crosses it, "+3": 4 more does); a relative one is reached at exactly its
        percentage ("10%": +10% crosses it; computed exactly, not in floating point). A relative limit
        on a zero baseline counts any growth: 0 -> 1 leak is not an "infinite percentage" to ignore."""
        increase = current - baseline
        if increase <= 0:
            return False
        if self.absolute is not None:
            return increase > self.absolute
        if baseline == 0:
            return True
        return increase >= baseline * self.fraction()

    def fraction(self) -> Fraction:
        """The relative limit as an exact fraction, from its text ("33.3%" -> 333/1000)."""
        assert self.relative is not None
        match = _LIMIT.match(self.text)
        if match and match["pct"] is not None:
            return percent_fraction(match["pct"])
        return Fraction(repr(self.relative))

    def amount(self, baseline: int) -> int:
        """This limit in the metric's own units for ``baseline`` (a relative one rounded down)."""
        if self.absolute is not None:
            return self.absolute
        return int(abs(baseline) * self.fraction())


def _limit_fields(value: str) -> dict[str, Any]:
    """The fields of a limit written as text; ValueError (shown with the key path) when it is none."""
    match = _LIMIT.match(value)
    if not match:
        raise ValueError(
            f"{value!r} is not a limit: write a relative one such as \"10%\" or an absolute one "
            "such as \"+64KiB\", \"+0\" or \"+3\""
        )
    number = match["pct"] or match["num"]
    if len(number) > _MAX_LIMIT_NUMBER:  # float() would make it infinite, Fraction() may fail on it
        raise ValueError(f"{value[:_MAX_LIMIT_NUMBER]!r}... is not a limit: its number has "
                         f"{len(number):,} characters")
    if match["pct"] is not None:
        return {"relative": float(match["pct"]) / 100, "text": value.strip()}
    try:
        absolute = size_in_bytes(match["num"], match["unit"])
    except UnknownUnit as error:
        raise ValueError(f"unknown unit {error.unit!r} in {value!r}: use B, KiB, MiB or GiB") from None
    return {"absolute": absolute, "text": value.strip()}


def _limits(value: Any) -> Any:
    """A noise floor is one limit or a list of them: "1MiB", ["1%", "1MiB"] (the larger one applies)."""
    return value if value is None or isinstance(value, (list, tuple)) else [value]


class Threshold(BaseModel):
    """The limits of one metric. ``noise`` is the noise floor: a change (up or down) no larger than it
    is a pass, whatever ``warn`` and ``fail`` say; None means "inherited" (from the defaults, then the
    global [thresholds]), an empty floor is 0."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warn: Limit | None = None
    fail: Limit | None = None
    noise: tuple[Limit, ...] | None = None

    @field_validator("noise", mode="before")
    @classmethod
    def _noise(cls, value: Any) -> Any:
        return _limits(value)

    def noise_floor(self, baseline: int) -> int:
        """The largest change that counts as noise against ``baseline`` (0 without a floor)."""
        return max((limit.amount(baseline) for limit in self.noise or ()), default=0)

    def noise_text(self) -> str:
        """"1MiB", or "max(1%, 1MiB)" for several limits; "" without a floor."""
        texts = [limit.text for limit in self.noise or ()]
        return texts[0] if len(texts) == 1 else f"max({', '.join(texts)})" if texts else ""

    def verdict(self, baseline: int | None, current: int) -> Verdict:
        """The verdict of a metric that went from ``baseline`` (None: there is none) to ``current``.
        A change no larger than the noise floor is a pass, up or down; fail is checked before warn."""
        if baseline is None:
            return self._verdict_without_baseline(current)
        if abs(current - baseline) <= self.noise_floor(baseline):
            return Verdict.PASS
        if self.fail is not None and self.fail.exceeded(baseline, current):
            return Verdict.FAIL
        if self.warn is not None and self.warn.exceeded(baseline, current):
            return Verdict.WARN
        return Verdict.IMPROVED if current < baseline else Verdict.PASS

    def _verdict_without_baseline(self, current: int) -> Verdict:
        """Only absolute limits apply, against 0: "+0" leaks and errors still fail a new suite."""
        if _absolute_exceeded(self.fail, current):
            return Verdict.FAIL
        if _absolute_exceeded(self.warn, current):
            return Verdict.WARN
        return Verdict.NEW

    def limit_text(self) -> str:
        """"warn 5% / fail 10%", with "/ noise max(1%, 1MiB)" when a noise floor applies to them."""
        parts = [f"{name} {limit.text}" for name, limit in (("warn", self.warn), ("fail", self.fail))
                 if limit is not None]
        if parts and any(limit.absolute or limit.relative for limit in self.noise or ()):
            parts.append(f"noise {self.noise_text()}")
        return " / ".join(parts)


def _absolute_exceeded(limit: Limit | None, current: int) -> bool:
    return limit is not None and limit.absolute is not None and limit.exceeded(0, current)


Thresholds = dict[MetricName, Threshold]

DEFAULT_THRESHOLDS: Thresholds = {
    "leak_definite_bytes": Threshold(fail=Limit.model_validate("+0")),
    "leak_definite_blocks": Threshold(fail=Limit.model_validate("+0")),
    "leak_indirect_bytes": Threshold(fail=Limit.model_validate("+0")),
    "leak_indirect_blocks": Threshold(fail=Limit.model_validate("+0")),
    "errors": Threshold(fail=Limit.model_validate("+0")),
    "heap_peak_bytes": Threshold(warn=Limit.model_validate("5%"), fail=Limit.model_validate("10%")),
    "alloc_calls": Threshold(warn=Limit.model_validate("5%")),
    # Resident memory and page faults vary between runs of the same program (allocator caching, page
    # granularity); the exact heap counts of a single-threaded program do not: their floor is 0.
    "rss_peak_bytes": Threshold.model_validate({"noise": ["1%", "1MiB"]}),
    "page_faults_minor": Threshold.model_validate({"noise": ["2%", "100"]}),
    "page_faults_major": Threshold.model_validate({"noise": ["2%", "100"]}),
    # Go benchmarks: an allocation per op is exact (memgate fixes the iteration count): any increase
    # fails, and "0%" (not "+0") so that a new benchmark, which has no baseline, passes. Bytes per op
    # include amortised growth (append, maps). GC figures depend on timing: noise, ungated.
    "allocs_per_op": Threshold(fail=Limit.model_validate("0%")),
    "bytes_per_op": Threshold(warn=Limit.model_validate("5%"), fail=Limit.model_validate("10%")),
    "gc_cycles": Threshold.model_validate({"noise": ["20%", "2"]}),
    "gc_pause_total_ns": Threshold.model_validate({"noise": ["50%", "1000000"]}),
}


def in_force(*levels: Thresholds) -> Thresholds:
    """The thresholds in force: the defaults, then each level given (least specific first: the
    global [thresholds], then a suite's own), metric by metric. A metric's entry replaces the warn
    and fail limits below it, unless it sets only ``noise``; the noise floor is inherited on its own
    (the most specific one set applies)."""
    stacked = (DEFAULT_THRESHOLDS, *levels)
    merged: Thresholds = {}
    for name in METRIC_NAMES:
        entries = [level[name] for level in stacked if name in level]
        if entries:
            merged[name] = _merge_levels(entries)
    return merged


def _merge_levels(entries: list[Threshold]) -> Threshold:
    """One metric's entries, least specific first, as the one rule that applies."""
    limits = [entry for entry in entries if entry.model_fields_set != {"noise"}]
    noises = [entry.noise for entry in entries if entry.noise is not None]
    rule = limits[-1] if limits else Threshold()
    return Threshold(warn=rule.warn, fail=rule.fail, noise=noises[-1] if noises else None)
