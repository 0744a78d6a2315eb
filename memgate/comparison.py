"""The gate's decision, pure (no I/O): current suite records x baselines x thresholds -> a
``Comparison``, and the result types (``MetricRow``, ``SiteRow``, ``SuiteComparison``) it is made of."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import Field, computed_field

from memgate.baselines.model import Baseline, alloc_wrappers_note
from memgate.config import Config
from memgate.errors import BaselineError, ExitCode, UsageError
from memgate.fingerprint import AllocWrappers, fingerprint
from memgate.gcpause import collector_paused
from memgate.metrics import LEAK_KINDS, METRIC_NAMES, LeakKind, MetricName, format_value, leak_metrics
from memgate.records import (
    FINDING_METRICS,
    Frame,
    MetricSpread,
    Record,
    RelatedStack,
    Report,
    SuiteRecord,
    SuiteStatus,
    SuppressionUse,
)
from memgate.sites import ErrorSite, LeakSite, SiteKey, group_errors, group_leaks
from memgate.thresholds import Threshold, Thresholds, Verdict, worst
from memgate.units import format_bytes, signed_bytes

_DEFAULT_CONFIG = Config()
_Site = TypeVar("_Site", LeakSite, ErrorSite)


class MetricRow(Record):
    suite: str
    #: The test whose figure this is; None for the suite's total.
    test: str | None = None
    metric: MetricName
    baseline: int | None
    current: int | None
    delta: int | None
    delta_pct: float | None = None  # None when the baseline is 0 or absent
    verdict: Verdict
    limit: str = ""  # the thresholds that applied, e.g. "warn 5% / fail 10% / noise 1MiB"
    noise_floor: int = 0  # the largest change that counts as noise, in the metric's units
    #: The limit this change crossed ("fail +0", "warn 5%"); None when it crossed none.
    crossed: str | None = None
    #: The part of the change that only moved between the definite and possible leak kinds (memcheck's
    #: classification of one site flipped): left out of the verdict, which judges current - reclassified.
    reclassified: int = 0
    #: The new and grown sites that made a failing or warning metric grow, one line each.
    causes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.verdict is not Verdict.PASS or self.delta != 0

    @property
    def within_noise(self) -> bool:
        """A change that the noise floor turned into a pass."""
        return self.delta is not None and self.delta != 0 and abs(self.delta) <= self.noise_floor


SiteStatusName = Literal["new", "grown", "known", "fixed"]


class SiteRow(Record):
    """A leak or error site: ``bytes``/``blocks`` (leaks) or ``count`` (errors) are the current figures,
    or the baseline's for a fixed site. A "grown" site is a known one with more bytes, blocks or
    occurrences than its baseline: its verdict is that of the metric its growth made fail or warn."""

    suite: str
    category: Literal["leak", "error"]
    status: SiteStatusName
    #: The test of the finding that represents the site, when known (none for a fixed site: baselines
    #: keep no test per site).
    test: str | None = None
    kind: str
    fingerprint: str
    site: str
    frames: tuple[Frame, ...] = ()
    bytes: int | None = None
    blocks: int | None = None
    count: int | None = None
    baseline_bytes: int | None = None
    baseline_blocks: int | None = None
    baseline_count: int | None = None
    description: str | None = None
    #: An error's other stacks (where its block was freed, allocated), a few frames each.
    related: tuple[RelatedStack, ...] = ()
    verdict: Verdict
    #: The leak kind the baseline has this site under when memcheck's classification flipped between
    #: definite and possible (same stack): the site is known, not new.
    moved_from: LeakKind | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta_bytes(self) -> int | None:
        return _difference(self.bytes, self.baseline_bytes) if self.status != "fixed" else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta_blocks(self) -> int | None:
        return _difference(self.blocks, self.baseline_blocks) if self.status != "fixed" else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta_count(self) -> int | None:
        return _difference(self.count, self.baseline_count) if self.status != "fixed" else None


def _difference(current: int | None, baseline: int | None) -> int | None:
    return current - baseline if current is not None and baseline is not None else None


class HeapGrowth(Record):
    """An allocation stack whose bytes grew, named when a heap figure warned or failed (heap profilers
    that record stacks: DHAT). ``baseline_*`` are None when the stack is not among the ones the
    baseline kept (the 100 that allocated most): then all its figures are growth as far as is known."""

    fingerprint: str
    site: str
    frames: tuple[Frame, ...] = ()
    bytes: int
    blocks: int | None = None
    peak_bytes: int | None = None
    baseline_bytes: int | None = None
    baseline_blocks: int | None = None
    baseline_peak_bytes: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta_bytes(self) -> int:
        return self.bytes - (self.baseline_bytes or 0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta_blocks(self) -> int | None:
        return None if self.blocks is None else self.blocks - (self.baseline_blocks or 0)


class SuiteComparison(Record):
    suite: str
    tool: str
    status: SuiteStatus
    status_detail: str | None = None
    has_baseline: bool
    rows: tuple[MetricRow, ...] = ()
    sites: tuple[SiteRow, ...] = ()
    verdict: Verdict
    incomplete: bool = False
    notes: tuple[str, ...] = ()
    #: When heap_peak_bytes, heap_total_bytes or alloc_calls warned or failed: the allocation stacks
    #: whose bytes grew most (at most 5), of a tool that records them.
    heap_growth: tuple[HeapGrowth, ...] = ()
    runs: int = 1  # how many runs the figures combine (repeat)
    #: Exact metrics that differed between the runs: the suite is nondeterministic.
    nondeterministic: tuple[MetricName, ...] = ()
    #: The figures of each test (``MetricRow.test``), by test name, then metric: judged like ``rows``.
    test_rows: tuple[MetricRow, ...] = ()
    #: Tests of the run that the baseline does not have: only absolute limits apply to them.
    new_tests: tuple[str, ...] = ()
    #: Tests of the baseline that this run does not have: listed, never failing.
    gone_tests: tuple[str, ...] = ()

    @property
    def is_new(self) -> bool:
        return not self.has_baseline

    def per_test(self) -> tuple[TestResult, ...]:
        """``test_rows`` grouped by test, in test name order."""
        grouped: dict[str, list[MetricRow]] = {}
        for row in self.test_rows:
            grouped.setdefault(row.test or "", []).append(row)
        new = set(self.new_tests)
        return tuple(TestResult(test=name, rows=tuple(rows), new=name in new)
                     for name, rows in grouped.items())

    def sites_with(self, status: SiteStatusName) -> tuple[SiteRow, ...]:
        return tuple(site for site in self.sites if site.status == status)


@dataclass(frozen=True)
class TestResult:
    """One test's rows of a suite's comparison."""

    test: str
    rows: tuple[MetricRow, ...]
    new: bool = False

    @property
    def verdict(self) -> Verdict:
        return worst([row.verdict for row in self.rows])

    @property
    def changed(self) -> bool:
        """New, or a figure that changed: what the comment shows."""
        return self.new or any(row.changed for row in self.rows)


class Comparison(Record):
    suites: tuple[SuiteComparison, ...] = ()
    verdict: Verdict
    #: Some suite's figures are missing or truncated: exit 3 unless the verdict already fails.
    incomplete: bool = False
    #: Baselines given for suites that were not run (informational; they do not change the verdict).
    unmatched_baselines: tuple[str, ...] = ()

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented way; in the JSON too
    @property
    def outcome(self) -> Literal["pass", "warn", "fail", "incomplete"]:
        """pass, warn, fail, or incomplete (figures missing and nothing failed: exit 3)."""
        if self.verdict is Verdict.FAIL:
            return "fail"
        if self.incomplete:
            return "incomplete"
        return "warn" if self.verdict is Verdict.WARN else "pass"

    def exit_code(self, *, fail_on_warn: bool = False) -> ExitCode:
        outcome = self.outcome
        if outcome == "fail" or (outcome == "warn" and fail_on_warn):
            return ExitCode.GATE_FAILED
        return ExitCode.TOOL if outcome == "incomplete" else ExitCode.PASS


class ComparedReport(Report):
    """A run's report with its comparison: what ``check --json`` and ``compare --json`` write. The
    comparison holds the overall verdict and, per suite and metric, baseline, current, delta, the
    limit crossed and the verdict, and the new, grown, known and fixed sites."""

    comparison: Comparison | None = None
    exit_code: int | None = Field(default=None, description="The exit code memgate gave this verdict.")

    @classmethod
    def of(cls, report: Report, comparison: Comparison, exit_code: int) -> ComparedReport:
        return cls(**dict(report), comparison=comparison, exit_code=exit_code)


def compare(
    current: Sequence[SuiteRecord],
    baselines: Mapping[str, Baseline | None],
    config: Config | None = None,
) -> Comparison:
    """Compare every current suite with its baseline (missing or None: the suite is new), using the
    config's thresholds and new-site rules (memgate's defaults when ``config`` is None)."""
    config = config or _DEFAULT_CONFIG
    names = Counter(record.name for record in current)
    repeated = sorted(name for name, times in names.items() if times > 1)
    if repeated:
        raise UsageError(f"suite {repeated[0]!r} appears more than once in the current run",
                         hint="give every suite a unique name")
    with collector_paused():
        suites = tuple(
            compare_suite(
                record,
                baselines.get(record.name),
                thresholds=config.thresholds_for(record.name),
                fail_on_new_leak_kinds=frozenset(config.fail_on_new_leak_kinds),
                fail_on_new_errors=config.fail_on_new_errors,
            )
            for record in current
        )
    return Comparison(
        suites=suites,
        verdict=worst([suite.verdict for suite in suites]),
        incomplete=any(suite.incomplete for suite in suites),
        unmatched_baselines=tuple(sorted(name for name, b in baselines.items() if b and name not in names)),
    )


def compare_report(
    report: Report, baselines: Mapping[str, Baseline | None], config: Config | None = None
) -> Comparison:
    """``compare`` over a report's suites."""
    return compare(report.suites, baselines, config)


def compare_suite(
    record: SuiteRecord,
    baseline: Baseline | None,
    *,
    thresholds: Thresholds,
    fail_on_new_leak_kinds: Collection[LeakKind],
    fail_on_new_errors: bool,
) -> SuiteComparison:
    """One suite against its baseline (None: the suite is new, so only absolute limits apply, against
    0). Each metric's verdict is its threshold's (``Threshold.verdict``), each site's its status's. A
    crashed, timed-out or failed suite fails; an incomplete one makes the comparison incomplete. Runs
    that disagreed on an exact metric add a note with each metric's range; that alone does not change
    the verdict. A leak site memcheck classified definite in one and possible in the other is known,
    and the bytes that only moved between the two kinds are left out of their metrics' verdicts; a
    grown site takes the verdict of the metric it made fail or warn, which names it as the cause."""
    notes: list[str] = []
    if baseline is not None:
        _check_same_tool(record, baseline, notes)
        # Sites are compared by the run's alloc_wrappers, whatever list the baseline was made with.
        wrappers_note = alloc_wrappers_note(baseline, record.alloc_wrappers)
        if wrappers_note is not None:
            notes.append(wrappers_note)
            baseline = baseline.with_alloc_wrappers(record.alloc_wrappers)
    else:
        notes.append("no baseline yet: this suite is new (relative thresholds do not apply)")
    incomplete = record.status is SuiteStatus.INCOMPLETE or bool(record.incomplete_reasons)
    sites = _site_rows(record, baseline, fail_on_new_leak_kinds, fail_on_new_errors, incomplete, notes)
    notes.extend(_move_note(site) for site in sites if site.moved_from is not None)
    rows = _metric_rows(record, baseline, thresholds, notes, _reclassified(sites))
    tests = _compare_tests(record, baseline, thresholds, notes, sites)
    if record.nondeterministic:
        notes.append(nondeterminism_note(record.nondeterministic, len(record.runs)))
    notes.extend(suppression_notes(record.suppressions))
    rows, test_rows, sites = _with_causes(rows, tests.rows, sites)
    verdicts = [row.verdict for row in (*rows, *test_rows)] + [site.verdict for site in sites]
    if record.status.fails_gate:
        detail = f": {record.status_detail}" if record.status_detail else ""
        notes.insert(0, f"the suite {record.status.value}{detail}")
        verdicts.append(Verdict.FAIL)
    if incomplete:
        reasons = record.incomplete_reasons or (record.status_detail or "the tool's output is incomplete",)
        notes.insert(0, f"incomplete figures: {'; '.join(dict.fromkeys(reasons))}")
    return SuiteComparison(
        suite=record.name,
        tool=record.tool,
        status=record.status,
        status_detail=record.status_detail,
        has_baseline=baseline is not None,
        rows=rows,
        sites=sites,
        verdict=worst(verdicts),
        incomplete=incomplete,
        notes=tuple(notes),
        heap_growth=_heap_growth(record, baseline, (*rows, *test_rows)),
        runs=max(1, len(record.runs)),
        nondeterministic=tuple(spread.metric for spread in record.nondeterministic),
        test_rows=test_rows,
        new_tests=tests.new,
        gone_tests=tests.gone,
    )


def nondeterminism_note(spreads: Sequence[MetricSpread], runs: int) -> str:
    """"nondeterministic over 5 runs: heap_peak_bytes from 5.00 MiB to 8.75 MiB (the median, 5.00 MiB,
    is compared)"."""
    parts = []
    for spread in spreads:
        used = "the largest" if spread.metric in FINDING_METRICS else "the median"
        parts.append(f"{spread.metric} from {format_value(spread.metric, spread.min)} to "
                     f"{format_value(spread.metric, spread.max)} ({used}, "
                     f"{format_value(spread.metric, spread.value)}, is compared)")
    return f"nondeterministic over {runs} runs: {'; '.join(parts)}"


#: How many suppressions a note names one by one.
_SUPPRESSIONS_NAMED = 10


def suppression_notes(uses: Sequence[SuppressionUse]) -> list[str]:
    """"suppressions hid: `small-leak` (valgrind.supp) 1" and "stale suppressions (hid nothing ...)": of
    the suite's own files only (the tool's default suppressions are not the project's)."""
    used = [use for use in uses if use.count and use.file is not None]
    stale = [use for use in uses if use.stale]
    notes = []
    if used:
        notes.append(f"suppressions hid: {_named_suppressions(used, counts=True)}")
    if stale:
        stale_named = _named_suppressions(stale, counts=False)
        notes.append(f"stale suppressions (hid nothing in this run): {stale_named}")
    return notes


def _named_suppressions(uses: Sequence[SuppressionUse], *, counts: bool) -> str:
    """"`name` (file) 3 (48 B), ..." (with ``counts``), at most ``_SUPPRESSIONS_NAMED`` of them."""
    shown = []
    for use in uses[:_SUPPRESSIONS_NAMED]:
        hid = f" {use.count:,}" + (f" ({format_bytes(use.bytes)})" if use.bytes else "") if counts else ""
        shown.append(f"`{use.name}` ({use.file}){hid}")
    more = len(uses) - _SUPPRESSIONS_NAMED
    return ", ".join(shown) + (f" and {more:,} more" if more > 0 else "")


def _check_same_tool(record: SuiteRecord, baseline: Baseline, notes: list[str]) -> None:
    if baseline.tool != record.tool:
        raise BaselineError(
            f"the baseline of suite {record.name!r} was made with {baseline.tool}, this run used "
            f"{record.tool}: their figures cannot be compared",
            path=baseline.origin,
            hint=f"regenerate it with `memgate baseline update --suite {record.name}`",
        )
    if baseline.tool_version and record.tool_version and baseline.tool_version != record.tool_version:
        notes.append(
            f"the baseline was made with {baseline.tool} {baseline.tool_version}, this run used "
            f"{record.tool_version}: figures may differ for that reason alone"
        )


# --- metrics ---------------------------------------------------------------------------------------


def _metric_rows(
    record: SuiteRecord, baseline: Baseline | None, thresholds: Thresholds, notes: list[str],
    reclassified: Mapping[MetricName, int],
) -> tuple[MetricRow, ...]:
    before = baseline.metrics if baseline is not None else {}
    rows, missing = _judged_rows(record.name, None, before, record.metrics, thresholds, reclassified)
    if missing:
        notes.append(f"in the baseline but not measured in this run: {', '.join(missing)}")
    return rows


def _judged_rows(
    suite: str, test: str | None, before: Mapping[MetricName, int], after: Mapping[MetricName, int],
    thresholds: Thresholds, reclassified: Mapping[MetricName, int],
) -> tuple[tuple[MetricRow, ...], list[MetricName]]:
    """One row per metric of ``before`` or ``after`` (the suite's total, or one test's figures), each
    judged by its threshold; and the metrics of ``before`` that ``after`` lacks (they warn)."""
    rows: list[MetricRow] = []
    missing: list[MetricName] = []
    for metric in METRIC_NAMES:
        if metric not in before and metric not in after:
            continue
        threshold = thresholds.get(metric, Threshold())
        previous, current = before.get(metric), after.get(metric)
        if current is None:
            missing.append(metric)
            rows.append(_row(suite, test, metric, previous, None, Verdict.WARN, threshold))
        else:
            moved = reclassified.get(metric, 0) if previous is not None else 0
            row = _row(suite, test, metric, previous, current, threshold.verdict(previous, current - moved),
                       threshold)
            rows.append(row.model_copy(update={"reclassified": moved}) if moved else row)
    return tuple(rows), missing


def _row(suite: str, test: str | None, metric: MetricName, baseline: int | None, current: int | None,
         verdict: Verdict, threshold: Threshold) -> MetricRow:
    delta = current - baseline if current is not None and baseline is not None else None
    delta_pct = None
    if delta is not None and baseline:
        delta_pct = delta / baseline * 100
    elif delta == 0:
        delta_pct = 0.0
    noise = threshold.noise_floor(baseline) if baseline is not None else 0
    return MetricRow(suite=suite, test=test, metric=metric, baseline=baseline, current=current, delta=delta,
                     delta_pct=delta_pct, verdict=verdict, limit=threshold.limit_text(), noise_floor=noise,
                     crossed=_crossed(threshold, verdict) if current is not None else None)


def _crossed(threshold: Threshold, verdict: Verdict) -> str | None:
    limit = {Verdict.FAIL: threshold.fail, Verdict.WARN: threshold.warn}.get(verdict)
    return f"{verdict.value} {limit.text}" if limit is not None else None


# --- per test ---------------------------------------------------------------------------------------


#: Tests named in one note at most (a suite can have thousands).
_TESTS_NAMED = 10


@dataclass(frozen=True)
class _TestsCompared:
    rows: tuple[MetricRow, ...] = ()
    new: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()


def _compare_tests(record: SuiteRecord, baseline: Baseline | None, thresholds: Thresholds,
                   notes: list[str], sites: Sequence[SiteRow]) -> _TestsCompared:
    """Each test's figures against the baseline's figures of that test, judged like the suite's. A test
    the baseline lacks is new (absolute limits only, against 0); a test the run lacks is gone, which
    never fails. A baseline with no per-test figures at all (made before they existed) gives nothing
    to compare test by test: the suite's totals are still gated."""
    if not record.tests:
        return _TestsCompared(gone=tuple(sorted(baseline.tests)) if baseline is not None else ())
    if baseline is not None and not baseline.tests:
        notes.append(f"the baseline has no per-test figures: the {len(record.tests):,} tests of this run are "
                     f"not compared one by one until it is updated (`memgate baseline update --suite "
                     f"{record.name}`)")
        return _TestsCompared()
    known = baseline.tests if baseline is not None else {}
    rows: list[MetricRow] = []
    missing: list[str] = []
    for name, figures in record.tests.items():
        before = known.get(name)
        if before is not None:
            figures, before = _zero_findings_filled(figures, before), _zero_findings_filled(before, figures)
        moved = _reclassified([site for site in sites if site.test == name]) if before is not None else {}
        test_rows, lacking = _judged_rows(record.name, name, before or {}, figures, thresholds, moved)
        rows += test_rows
        missing += [f"{metric} of {name}" for metric in lacking]
    if missing:
        more = f" and {len(missing) - _TESTS_NAMED:,} more" if len(missing) > _TESTS_NAMED else ""
        named = ", ".join(missing[:_TESTS_NAMED])
        notes.append(f"in the baseline but not measured in this run: {named}{more}")
    rows = _nondeterministic_judged(rows, record, baseline, notes)
    new = tuple(name for name in record.tests if baseline is not None and name not in known)
    return _TestsCompared(rows=tuple(rows), new=new, gone=tuple(sorted(set(known) - set(record.tests))))


def _nondeterministic_judged(rows: list[MetricRow], record: SuiteRecord, baseline: Baseline | None,
                             notes: list[str]) -> list[MetricRow]:
    """A test whose figure differed between the tool's own repeats of it (in this run or when the
    baseline was made: a benchmark with random input, work that depends on timing) cannot be gated
    exactly: when the range this run's repeats saw overlaps the baseline's, the change is noise (a
    pass); beyond it, a warning at most, never a failure. A note names these tests and what makes
    them exact again."""
    spreads = {(spread.test, spread.metric): spread for spread in record.nondeterministic_tests}
    before = {(spread.test, spread.metric): spread
              for spread in (baseline.nondeterministic_tests if baseline is not None else ())}
    unstable = set(spreads) | set(before)
    if not unstable:
        return rows
    judged: list[MetricRow] = []
    for row in rows:
        key = (row.test, row.metric)
        if key in unstable and row.verdict.severity and row.current is not None and row.baseline is not None:
            now, then = spreads.get(key), before.get(key)
            overlap = ((now.min if now else row.current) <= (then.max if then else row.baseline)
                       and (then.min if then else row.baseline) <= (now.max if now else row.current))
            verdict = Verdict.PASS if overlap else Verdict.WARN
            row = row.model_copy(update={"verdict": verdict, "crossed": None if verdict is Verdict.PASS
                                         else row.crossed})
        judged.append(row)
    named = sorted(unstable, key=lambda key: (key[0] or "", key[1]))
    shown = ", ".join(_spread_text(spreads.get(key) or before[key]) for key in named[:_TESTS_NAMED])
    more = f" and {len(named) - _TESTS_NAMED:,} more" if len(named) > _TESTS_NAMED else ""
    notes.append(f"nondeterministic tests (their repeats in one run disagreed): {shown}{more}; a change "
                 "within the range seen passes, beyond it warns, never fails: give them a fixed input "
                 "(a constant random seed) to gate them exactly")
    return judged


def _spread_text(spread: MetricSpread) -> str:
    return (f"{spread.metric} of {spread.test} {format_value(spread.metric, spread.min)} to "
            f"{format_value(spread.metric, spread.max)}")


def _zero_findings_filled(figures: Mapping[MetricName, int], other: Mapping[MetricName, int] | None = None
                          ) -> dict[MetricName, int]:
    """A known test's figures with 0 for each leak or error figure that only ``other`` has: a test
    holds such figures only when one of its findings names it, so their absence means none."""
    filled = dict(figures)
    for metric in (other or {}):
        if metric in FINDING_METRICS:
            filled.setdefault(metric, 0)
    return filled


# --- heap growth: the allocation stacks behind it ---------------------------------------------------

HEAP_GROWTH_SHOWN = 5
_HEAP_METRICS: frozenset[MetricName] = frozenset(
    {"heap_peak_bytes", "heap_total_bytes", "alloc_calls", "allocs_per_op", "bytes_per_op"})


def _heap_growth(record: SuiteRecord, baseline: Baseline | None, rows: Sequence[MetricRow]
                 ) -> tuple[HeapGrowth, ...]:
    """The stacks whose bytes grew most, when a heap figure grew enough to warn or fail."""
    grew = any(row.metric in _HEAP_METRICS and row.verdict.severity and (row.delta or 0) > 0 for row in rows)
    if baseline is None or not grew:
        return ()
    before = {site.fingerprint: site for site in baseline.heap_sites}
    growth = []
    for site in record.heap_sites:
        known = before.get(site.fingerprint)
        item = HeapGrowth(fingerprint=site.fingerprint, site=site.site, frames=site.frames, bytes=site.bytes,
                          blocks=site.blocks, peak_bytes=site.peak_bytes,
                          baseline_bytes=known.bytes if known else None,
                          baseline_blocks=known.blocks if known else None,
                          baseline_peak_bytes=known.peak_bytes if known else None)
        if item.delta_bytes > 0:
            growth.append(item)
    growth.sort(key=lambda item: (-item.delta_bytes, item.site, item.fingerprint))
    return tuple(growth[:HEAP_GROWTH_SHOWN])


# --- memcheck's definite/possible flip --------------------------------------------------------------

#: memcheck calls a lost block "possibly lost" when some register or stack slot still held a pointer
#: into its middle at exit, "definitely lost" when none did: the same leak flips between runs and
#: builds of unchanged code. A site found under the other of the two kinds is the same known site.
_FLIPS: dict[str, LeakKind] = {"definite": "possible", "possible": "definite"}


def _flipped_key(site: LeakSite) -> SiteKey | None:
    """The key the same site has under the other of definite and possible (its fingerprint hashes
    the kind with the site's frames, so it is made again from the site)."""
    other = _FLIPS.get(site.kind)
    if other is None:
        return None
    return other, fingerprint(f"leak:{other}", (), site=site.site)


def _flip_aliases(current: Mapping[SiteKey, LeakSite], known: Mapping[SiteKey, LeakSite]
                  ) -> dict[SiteKey, SiteKey]:
    """Current leak sites the baseline has only under the other kind -> the baseline's key."""
    aliases: dict[SiteKey, SiteKey] = {}
    for key, site in current.items():
        other = _flipped_key(site) if key not in known else None
        if other is not None and other in known and other not in current:
            aliases[key] = other
    return aliases


def _moved(site: SiteRow) -> tuple[int, int]:
    """Bytes and blocks of a flipped site that were already in the baseline under the other kind."""
    return min(site.bytes or 0, site.baseline_bytes or 0), min(site.blocks or 0, site.baseline_blocks or 0)


def _reclassified(sites: Sequence[SiteRow]) -> dict[MetricName, int]:
    """Per leak metric, how much of its change only moved from or to the other kind."""
    moved: Counter[MetricName] = Counter()
    for site in sites:
        if site.moved_from is None:
            continue
        into, out_of = leak_metrics(_leak_kind(site.kind)), leak_metrics(site.moved_from)
        for index, amount in enumerate(_moved(site)):
            moved[into[index]] += amount
            moved[out_of[index]] -= amount
    return dict(moved)


def _leak_kind(kind: str) -> LeakKind:
    return next(known for known in LEAK_KINDS if known == kind)


def _move_note(site: SiteRow) -> str:
    moved_bytes, _ = _moved(site)
    return (f"{moved_bytes:,} bytes moved from {site.moved_from} to {site.kind} at {site.site}: "
            "memcheck's classification, not a new leak")


# --- causes: which sites made a metric fail or warn -------------------------------------------------

MAX_CAUSES = 5


def _with_causes(rows: tuple[MetricRow, ...], test_rows: tuple[MetricRow, ...], sites: tuple[SiteRow, ...]
                 ) -> tuple[tuple[MetricRow, ...], tuple[MetricRow, ...], tuple[SiteRow, ...]]:
    """Each failing or warning metric that grew names the new and grown sites of its kind (a test's
    metric, those of its findings); a grown site takes the worst verdict of the metrics its growth is
    part of."""
    verdict_of: dict[str, list[Verdict]] = {}
    named = [_named_causes(row, sites, verdict_of) for row in rows]
    named_tests = [_named_causes(row, sites, verdict_of) for row in test_rows]
    judged = tuple(
        site.model_copy(update={"verdict": worst(verdict_of.get(site.fingerprint, []))})
        if site.status == "grown" else site
        for site in sites
    )
    return tuple(named), tuple(named_tests), judged


def _named_causes(row: MetricRow, sites: Sequence[SiteRow], verdict_of: dict[str, list[Verdict]]
                  ) -> MetricRow:
    """``row`` with its causes, when it failed or warned by growing; ``verdict_of`` collects the
    verdict for each site named."""
    growing = [site for site in sites
               if site.status in ("new", "grown") and row.metric in _metrics_of(site)
               and (row.test is None or site.test == row.test)]
    if not (row.verdict.severity and _growth(row) - row.reclassified > 0 and growing):
        return row
    causes = [_cause(site) for site in growing[:MAX_CAUSES]]
    if len(growing) > MAX_CAUSES:
        causes.append(f"and {len(growing) - MAX_CAUSES:,} more sites")
    for site in growing:
        verdict_of.setdefault(site.fingerprint, []).append(row.verdict)
    return row.model_copy(update={"causes": tuple(causes)})


def _growth(row: MetricRow) -> int:
    """How much a metric grew; a new test's figure is all growth (its findings are what it added to a
    known suite). A new suite's rows name no causes: every site of it is new."""
    if row.delta is None and row.test is not None:
        return row.current or 0
    return row.delta or 0


def _metrics_of(site: SiteRow) -> tuple[MetricName, ...]:
    if site.category == "error":
        return ("errors",)
    return leak_metrics(_leak_kind(site.kind))


def _cause(site: SiteRow) -> str:
    """"grown definite leak at leak_more < main: +32 B, +1 block"; "new ...: 16 B in 2 blocks"; with
    " in test Pool.Grow" after the site when its test is known."""
    in_test = f" in test {site.test}" if site.test else ""
    what = f"{site.status} {site.kind} {site.category} at {site.site}{in_test}"
    if site.status == "new":
        if site.category == "leak":
            return f"{what}: {format_bytes(site.bytes or 0)} in {_counted(site.blocks or 0, 'block')}"
        return f"{what}: {_counted(site.count or 0, 'occurrence')}"
    if site.category == "leak":
        blocks = _counted(site.delta_blocks or 0, "block", "+")
        return f"{what}: {signed_bytes(site.delta_bytes or 0)}, {blocks}"
    return f"{what}: {_counted(site.delta_count or 0, 'occurrence', '+')}"


def _counted(count: int, noun: str, sign: str = "") -> str:
    """"1 block", "+3 blocks" (``sign="+"`` shows the sign of a change)."""
    return f"{count:{sign},} {noun}{'' if abs(count) == 1 else 's'}"


# --- sites -----------------------------------------------------------------------------------------


def _site_rows(
    record: SuiteRecord,
    baseline: Baseline | None,
    fail_on_new_leak_kinds: Collection[LeakKind],
    fail_on_new_errors: bool,
    incomplete: bool,
    notes: list[str],
) -> tuple[SiteRow, ...]:
    """Leak and error sites matched by fingerprint: a new site of a gated kind fails even when the
    totals do not grow, a known one passes (a ratchet), a fixed one shows as improved."""
    leaks_checked = all(process.leak_check for process in record.processes)
    # A site missing from a partial or crashed run, or from a run that did not look for leaks, is not
    # known to be fixed: claiming so would let the next baseline update drop it.
    reliable = not incomplete and record.status in (SuiteStatus.OK, SuiteStatus.FAILED)
    known_leaks = _by_key(baseline.leaks) if baseline is not None else {}
    if not leaks_checked and known_leaks:  # heap tools never check leaks: only a known site makes it news
        notes.append("leak checking was off in some processes: fixed leak sites are not reported")
    known_errors = _by_key(baseline.errors) if baseline is not None else {}
    new_error = Verdict.FAIL if fail_on_new_errors else Verdict.NEW
    wrappers = AllocWrappers(record.alloc_wrappers)
    current_leaks = group_leaks(record.leaks, wrappers)
    rows = _rows_of_sites(current_leaks, known_leaks, functools.partial(_leak_row, record.name),
                          lambda site: Verdict.FAIL if site.kind in fail_on_new_leak_kinds else Verdict.NEW,
                          report_fixed=reliable and leaks_checked,
                          aliases=_flip_aliases(current_leaks, known_leaks))
    rows += _rows_of_sites(group_errors(record.errors, wrappers=wrappers), known_errors,
                           functools.partial(_error_row, record.name), lambda _site: new_error,
                           report_fixed=reliable)
    return tuple(sorted(rows, key=_site_order))


def _by_key(sites: Sequence[_Site]) -> dict[SiteKey, _Site]:
    return {(site.kind, site.fingerprint): site for site in sites}


def _rows_of_sites(
    current: Mapping[SiteKey, _Site],
    known: Mapping[SiteKey, _Site],
    row: Callable[[_Site, SiteStatusName, Verdict, _Site | None], SiteRow],
    new_verdict: Callable[[_Site], Verdict],
    *,
    report_fixed: bool,
    aliases: Mapping[SiteKey, SiteKey] | None = None,
) -> list[SiteRow]:
    """Known sites pass (grown ones are judged with their metric later), new ones get
    ``new_verdict``, fixed ones (when they can be told) improve. ``aliases`` maps a current key to
    the baseline key the same site has there (memcheck's definite/possible flip)."""
    aliases = aliases or {}
    rows: list[SiteRow] = []
    for key, site in current.items():
        before = known.get(key) or known.get(aliases.get(key, key))
        if before is not None:
            rows.append(row(site, "grown" if _grew(site, before) else "known", Verdict.PASS, before))
        else:
            rows.append(row(site, "new", new_verdict(site), None))
    if report_fixed:
        matched = set(aliases.values())
        rows += [row(site, "fixed", Verdict.IMPROVED, site)
                 for key, site in known.items() if key not in current and key not in matched]
    return rows


def _grew(site: LeakSite | ErrorSite, before: LeakSite | ErrorSite) -> bool:
    if isinstance(site, LeakSite) and isinstance(before, LeakSite):
        return site.bytes > before.bytes or site.blocks > before.blocks
    return isinstance(site, ErrorSite) and isinstance(before, ErrorSite) and site.count > before.count


def _leak_row(suite: str, site: LeakSite, status: SiteStatusName, verdict: Verdict,
              before: LeakSite | None = None) -> SiteRow:
    return SiteRow(
        suite=suite, category="leak", status=status, kind=site.kind, fingerprint=site.fingerprint,
        site=site.site, test=site.test, frames=site.frames, bytes=site.bytes, blocks=site.blocks,
        baseline_bytes=before.bytes if before else None, baseline_blocks=before.blocks if before else None,
        verdict=verdict, moved_from=before.kind if before is not None and before.kind != site.kind else None,
    )


def _error_row(suite: str, site: ErrorSite, status: SiteStatusName, verdict: Verdict,
               before: ErrorSite | None = None) -> SiteRow:
    return SiteRow(
        suite=suite, category="error", status=status, kind=site.kind, fingerprint=site.fingerprint,
        site=site.site, test=site.test, frames=site.frames, count=site.count,
        baseline_count=before.count if before else None,
        description=site.description, related=site.related or (), verdict=verdict,
    )


_STATUS_ORDER = {"new": 0, "grown": 1, "known": 2, "fixed": 3}


def _site_order(row: SiteRow) -> tuple[int, int, int, str, str, str]:
    size = row.bytes if row.category == "leak" else row.count
    return (_STATUS_ORDER[row.status], -row.verdict.severity, -(size or 0), row.category, row.site,
            row.fingerprint)
