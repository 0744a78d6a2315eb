from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recordkit import error, leak, suite

from memgate.baselines.model import Baseline
from memgate.comparison import Comparison, MetricRow, SuiteComparison, compare, compare_report
from memgate.config import Config
from memgate.errors import BaselineError, ExitCode, UsageError
from memgate.metrics import LEAK_KINDS, LeakKind, MetricName
from memgate.records import Leak, MemError, Report, SuiteRecord, SuiteStatus
from memgate.thresholds import Verdict

KNOWN_LEAKS = [leak("definite", 16, 1, "leak_small", "main"), leak("definite", 300, 3, "leak_many", "main")]
HEAP: dict[MetricName, int] = {"heap_peak_bytes": 1_000_000, "alloc_calls": 200}


def baseline_of(record: SuiteRecord) -> Baseline:
    return Baseline.from_suite(record)


def run(current: SuiteRecord, baseline: Baseline | None, **config: Any) -> SuiteComparison:
    comparison = compare([current], {current.name: baseline}, Config.model_validate(config))
    assert len(comparison.suites) == 1
    return comparison.suites[0]


def row(result: SuiteComparison, metric: str) -> MetricRow:
    (found,) = [r for r in result.rows if r.metric == metric]
    return found


def verdicts(result: SuiteComparison) -> dict[str, Verdict]:
    return {r.metric: r.verdict for r in result.rows}


def sites(result: SuiteComparison) -> list[tuple[str, str, str, Verdict]]:
    return [(s.status, s.kind, s.site, s.verdict) for s in result.sites]


def test_unchanged_passes() -> None:
    record = suite(leaks=KNOWN_LEAKS, metrics=HEAP)
    comparison = compare([record], {"unit": baseline_of(record)})

    result = comparison.suites[0]
    assert set(verdicts(result).values()) == {Verdict.PASS}
    assert all(r.delta == 0 and r.delta_pct == 0.0 for r in result.rows)
    assert sites(result) == [
        ("known", "definite", "leak_many < main", Verdict.PASS),
        ("known", "definite", "leak_small < main", Verdict.PASS),
    ]
    assert result.verdict is Verdict.PASS and result.has_baseline and result.notes == ()
    assert comparison.verdict is Verdict.PASS and not comparison.incomplete
    assert comparison.outcome == "pass" and comparison.exit_code() is ExitCode.PASS


def test_new_16_byte_leak_site_fails_even_with_equal_totals() -> None:
    before = suite(leaks=[leak("definite", 16, 1, "old_site", "main")])
    after = suite(leaks=[leak("definite", 16, 1, "new_site", "main")])
    result = run(after, baseline_of(before))

    assert verdicts(result)["leak_definite_bytes"] is Verdict.PASS
    assert verdicts(result)["leak_definite_blocks"] is Verdict.PASS
    assert sites(result) == [
        ("new", "definite", "new_site < main", Verdict.FAIL),
        ("fixed", "definite", "old_site < main", Verdict.IMPROVED),
    ]
    new = result.sites[0]
    assert (new.bytes, new.blocks, new.baseline_bytes) == (16, 1, None)
    assert [f.function for f in new.frames] == ["new_site", "main"]
    assert result.verdict is Verdict.FAIL


def test_known_site_unchanged_passes_and_fixed_site_is_improved() -> None:
    before = suite(leaks=KNOWN_LEAKS)
    after = suite(leaks=KNOWN_LEAKS[1:])
    result = run(after, baseline_of(before))

    assert sites(result) == [
        ("known", "definite", "leak_many < main", Verdict.PASS),
        ("fixed", "definite", "leak_small < main", Verdict.IMPROVED),
    ]
    fixed = result.sites[1]
    assert (fixed.bytes, fixed.blocks, fixed.baseline_bytes) == (16, 1, 16)
    bytes_row = row(result, "leak_definite_bytes")
    assert (bytes_row.baseline, bytes_row.current, bytes_row.delta, bytes_row.verdict) == (
        316, 300, -16, Verdict.IMPROVED)
    assert bytes_row.delta_pct == pytest.approx(-16 / 316 * 100)
    assert result.verdict is Verdict.PASS


def test_known_site_that_grew_is_grown_and_named_as_the_cause() -> None:
    before = suite(leaks=KNOWN_LEAKS)
    after = suite(leaks=[KNOWN_LEAKS[0], leak("definite", 400, 4, "leak_many", "main")])
    result = run(after, baseline_of(before))

    grown = [s for s in result.sites if s.site == "leak_many < main"][0]
    assert (grown.status, grown.verdict) == ("grown", Verdict.FAIL)
    assert (grown.bytes, grown.baseline_bytes, grown.delta_bytes, grown.delta_blocks) == (400, 300, 100, 1)
    bytes_row = row(result, "leak_definite_bytes")
    assert bytes_row.verdict is Verdict.FAIL and bytes_row.limit == "fail +0"
    assert bytes_row.crossed == "fail +0"
    assert bytes_row.causes == ("grown definite leak at leak_many < main: +100 B, +1 block",)
    assert row(result, "leak_definite_blocks").causes == bytes_row.causes
    assert result.verdict is Verdict.FAIL


def test_a_grown_site_within_its_limits_is_grown_but_passes() -> None:
    before = suite(leaks=[leak("possible", 100, 1, "maybe", "main")])
    after = suite(leaks=[leak("possible", 150, 1, "maybe", "main")])
    result = run(after, baseline_of(before))  # possible leaks have no limit by default

    assert sites(result) == [("grown", "possible", "maybe < main", Verdict.PASS)]
    assert row(result, "leak_possible_bytes").causes == () and result.verdict is Verdict.PASS


def test_an_error_site_that_occurs_more_often_is_grown_and_fails() -> None:
    before = suite(errors=[error("InvalidRead", "reader", "main", count=2)])
    after = suite(errors=[error("InvalidRead", "reader", "main", count=5)])
    result = run(after, baseline_of(before))

    assert sites(result) == [("grown", "InvalidRead", "reader < main", Verdict.FAIL)]
    assert result.sites[0].delta_count == 3
    assert row(result, "errors").causes == ("grown InvalidRead error at reader < main: +3 occurrences",)


# --- memcheck's definite/possible flip --------------------------------------------------------------

def test_a_site_flipped_from_possible_to_definite_is_known_and_its_bytes_moved() -> None:
    before = suite(leaks=[leak("possible", 64, 1, "make_table", "main"), KNOWN_LEAKS[0]])
    after = suite(leaks=[leak("definite", 64, 1, "make_table", "main"), KNOWN_LEAKS[0]])
    result = run(after, baseline_of(before))

    assert sites(result) == [("known", "definite", "make_table < main", Verdict.PASS),
                             ("known", "definite", "leak_small < main", Verdict.PASS)]
    assert result.sites[0].moved_from == "possible"
    definite = row(result, "leak_definite_bytes")
    assert (definite.baseline, definite.current, definite.delta, definite.reclassified) == (16, 80, 64, 64)
    assert definite.verdict is Verdict.PASS and row(result, "leak_definite_blocks").verdict is Verdict.PASS
    assert row(result, "leak_possible_bytes").reclassified == -64
    assert ("64 bytes moved from possible to definite at make_table < main: memcheck's classification, "
            "not a new leak") in result.notes
    assert result.verdict is Verdict.PASS


def table_leak(kind: LeakKind, size: int, blocks: int = 1) -> Leak:
    return leak(kind, size, blocks, "make_table", "main")


def test_a_site_flipped_from_definite_to_possible_is_no_improvement_and_no_new_site() -> None:
    before = baseline_of(suite(leaks=[table_leak("definite", 64)]))
    result = run(suite(leaks=[table_leak("possible", 64)]), before)

    assert sites(result) == [("known", "possible", "make_table < main", Verdict.PASS)]
    assert row(result, "leak_definite_bytes").verdict is Verdict.PASS  # not "improved": it moved
    assert result.verdict is Verdict.PASS


def test_a_flipped_site_that_also_grew_fails_by_its_growth_only() -> None:
    before = baseline_of(suite(leaks=[table_leak("possible", 64)]))
    result = run(suite(leaks=[table_leak("definite", 96, 2)]), before)

    assert sites(result) == [("grown", "definite", "make_table < main", Verdict.FAIL)]
    definite = row(result, "leak_definite_bytes")
    assert (definite.delta, definite.reclassified, definite.verdict) == (96, 64, Verdict.FAIL)
    assert definite.causes == ("grown definite leak at make_table < main: +32 B, +1 block",)


def test_a_real_new_leak_next_to_a_flip_still_fails() -> None:
    before = suite(leaks=[leak("possible", 64, 1, "make_table", "main")])
    after = suite(leaks=[leak("definite", 64, 1, "make_table", "main"),
                         leak("definite", 8, 1, "oops", "main")])
    result = run(after, baseline_of(before))

    assert sites(result) == [("new", "definite", "oops < main", Verdict.FAIL),
                             ("known", "definite", "make_table < main", Verdict.PASS)]
    definite = row(result, "leak_definite_bytes")
    assert (definite.delta, definite.reclassified, definite.verdict) == (72, 64, Verdict.FAIL)
    assert definite.causes == ("new definite leak at oops < main: 8 B in 1 block",)
    assert result.verdict is Verdict.FAIL


def test_a_site_with_both_kinds_in_the_baseline_is_matched_kind_by_kind() -> None:
    both = [leak("possible", 64, 1, "make_table", "main"), leak("definite", 32, 1, "make_table", "main")]
    result = run(suite(leaks=both[1:]), baseline_of(suite(leaks=both)))

    assert sites(result) == [("known", "definite", "make_table < main", Verdict.PASS),
                             ("fixed", "possible", "make_table < main", Verdict.IMPROVED)]


def test_zero_to_one_leak_with_a_relative_rule_fails() -> None:
    before = suite(leaks=[])
    after = suite(leaks=[leak("possible", 48, 1, "leak_possible", "main")])
    result = run(after, baseline_of(before), thresholds={"leak_possible_blocks": {"fail": "10%"}})

    blocks = row(result, "leak_possible_blocks")
    assert (blocks.baseline, blocks.current, blocks.delta, blocks.delta_pct) == (0, 1, 1, None)
    assert blocks.verdict is Verdict.FAIL
    assert blocks.limit == "fail 10%"
    assert row(result, "leak_possible_bytes").verdict is Verdict.PASS  # no rule on it
    # "possible" is not a gated kind by default: the site alone does not fail.
    assert sites(result) == [("new", "possible", "leak_possible < main", Verdict.NEW)]
    assert result.verdict is Verdict.FAIL


@pytest.mark.parametrize(
    ("peak", "expected", "overall"),
    [
        (1_030_000, Verdict.PASS, Verdict.PASS),
        (1_049_999, Verdict.PASS, Verdict.PASS),
        (1_050_000, Verdict.WARN, Verdict.WARN),  # exactly +5%: a relative limit is reached at it
        (1_070_000, Verdict.WARN, Verdict.WARN),
        (1_099_999, Verdict.WARN, Verdict.WARN),
        (1_100_000, Verdict.FAIL, Verdict.FAIL),  # exactly +10% fails (issue 3's acceptance)
        (1_120_000, Verdict.FAIL, Verdict.FAIL),
        (900_000, Verdict.IMPROVED, Verdict.PASS),
    ],
)
def test_heap_peak_thresholds(peak: int, expected: Verdict, overall: Verdict) -> None:
    before = suite(metrics=HEAP)
    after = suite(metrics={**HEAP, "heap_peak_bytes": peak})
    result = run(after, baseline_of(before))

    heap = row(result, "heap_peak_bytes")
    assert heap.verdict is expected
    assert heap.delta == peak - 1_000_000
    assert heap.delta_pct == pytest.approx((peak - 1_000_000) / 10_000)
    assert heap.limit == "warn 5% / fail 10%"
    assert result.verdict is overall


def test_warn_is_a_pass_unless_asked() -> None:
    before = suite(metrics=HEAP)
    after = suite(metrics={**HEAP, "alloc_calls": 220})
    comparison = compare([after], {"unit": baseline_of(before)})
    assert comparison.verdict is Verdict.WARN and comparison.outcome == "warn"
    assert comparison.exit_code() is ExitCode.PASS
    assert comparison.exit_code(fail_on_warn=True) is ExitCode.GATE_FAILED


def test_no_baseline_is_new_and_relative_rules_cannot_fail_it() -> None:
    record = suite(leaks=[leak("reachable", 128, 1, "leak_reachable", "main")], metrics=HEAP)
    result = run(record, None)

    assert result.is_new and not result.has_baseline
    assert verdicts(result)["heap_peak_bytes"] is Verdict.NEW
    assert verdicts(result)["alloc_calls"] is Verdict.NEW
    assert verdicts(result)["leak_definite_bytes"] is Verdict.NEW  # 0 against "+0"
    assert verdicts(result)["leak_reachable_bytes"] is Verdict.NEW
    assert row(result, "heap_peak_bytes").baseline is None and row(result, "heap_peak_bytes").delta is None
    assert sites(result) == [("new", "reachable", "leak_reachable < main", Verdict.NEW)]
    assert result.verdict is Verdict.PASS
    assert any("no baseline" in note for note in result.notes)


def test_no_baseline_an_error_still_fails() -> None:
    invalid_read = error("InvalidRead", "invalid_read", "main", description="Invalid read of size 4")
    record = suite(errors=[invalid_read])
    result = run(record, None)

    assert verdicts(result)["errors"] is Verdict.FAIL
    assert sites(result) == [("new", "InvalidRead", "invalid_read < main", Verdict.FAIL)]
    assert result.sites[0].count == 1
    assert result.sites[0].description == "Invalid read of size 4"
    assert result.verdict is Verdict.FAIL


def test_no_baseline_a_definite_leak_still_fails() -> None:
    result = run(suite(leaks=KNOWN_LEAKS[:1]), None)
    assert verdicts(result)["leak_definite_bytes"] is Verdict.FAIL
    assert verdicts(result)["leak_definite_blocks"] is Verdict.FAIL
    assert result.verdict is Verdict.FAIL


def test_new_error_against_a_clean_baseline_fails_and_the_setting_is_honoured() -> None:
    before = suite()
    after = suite(errors=[error("InvalidWrite", "invalid_write", "main", count=3)])

    result = run(after, baseline_of(before))
    assert sites(result) == [("new", "InvalidWrite", "invalid_write < main", Verdict.FAIL)]
    assert row(result, "errors").verdict is Verdict.FAIL

    relaxed = run(after, baseline_of(before), fail_on_new_errors=False, thresholds={"errors": {"warn": "+0"}})
    assert sites(relaxed) == [("new", "InvalidWrite", "invalid_write < main", Verdict.NEW)]
    assert row(relaxed, "errors").verdict is Verdict.WARN
    assert relaxed.verdict is Verdict.WARN


def test_a_known_error_site_is_a_ratchet() -> None:
    record = suite(errors=[error("InvalidRead", "invalid_read", "main", count=2)])
    result = run(record, baseline_of(record))
    assert sites(result) == [("known", "InvalidRead", "invalid_read < main", Verdict.PASS)]
    assert (result.sites[0].count, result.sites[0].baseline_count) == (2, 2)
    assert result.verdict is Verdict.PASS


def test_gated_leak_kinds_come_from_the_config() -> None:
    before = suite()
    after = suite(leaks=[leak("reachable", 128, 1, "leak_reachable", "main")])
    assert run(after, baseline_of(before)).verdict is Verdict.PASS
    strict = run(after, baseline_of(before), fail_on_new_leak_kinds=["definite", "reachable"])
    assert sites(strict) == [("new", "reachable", "leak_reachable < main", Verdict.FAIL)]
    assert strict.verdict is Verdict.FAIL


def test_sites_of_several_processes_are_summed_by_fingerprint() -> None:
    one = suite(leaks=[leak("definite", 16, 1, "leak_small", "main")])
    two = suite(leaks=[leak("definite", 16, 1, "leak_small", "main")] * 2)
    record = one.model_copy(update={"processes": one.processes + two.processes})
    result = run(record, None)
    assert [(s.site, s.bytes, s.blocks) for s in result.sites] == [("leak_small < main", 48, 3)]


def test_process_order_does_not_change_the_comparison() -> None:
    first = suite(leaks=[leak("definite", 16, 1, "a", "main")], errors=[error("InvalidRead", "r", "main")])
    second = suite(leaks=[leak("definite", 8, 1, "b", "main"), leak("definite", 16, 1, "a", "main")])
    forward = first.model_copy(update={"processes": first.processes + second.processes})
    backward = first.model_copy(update={"processes": second.processes + first.processes})
    baseline = baseline_of(suite(leaks=[leak("definite", 4, 1, "c", "main")]))
    assert compare([forward], {"unit": baseline}) == compare([backward], {"unit": baseline})


@pytest.mark.parametrize("status", [SuiteStatus.CRASHED, SuiteStatus.TIMEOUT, SuiteStatus.FAILED])
def test_a_suite_that_did_not_end_well_fails(status: SuiteStatus) -> None:
    record = suite(metrics=HEAP, status=status, status_detail="killed by SIGSEGV")
    comparison = compare([record], {"unit": baseline_of(suite(metrics=HEAP))})
    result = comparison.suites[0]
    assert result.verdict is Verdict.FAIL
    assert result.notes[0] == f"the suite {status.value}: killed by SIGSEGV"
    assert comparison.exit_code() is ExitCode.GATE_FAILED


def test_an_incomplete_suite_makes_the_comparison_incomplete() -> None:
    before = suite(leaks=KNOWN_LEAKS, metrics=HEAP)
    after = suite(leaks=[], metrics=HEAP, status=SuiteStatus.INCOMPLETE, complete=False)
    comparison = compare([after], {"unit": baseline_of(before)})
    result = comparison.suites[0]

    assert result.incomplete and comparison.incomplete
    assert result.notes[0] == "incomplete figures: log truncated"
    assert result.sites_with("fixed") == ()  # missing leaks of a truncated run are not "fixed"
    assert comparison.verdict is Verdict.PASS
    assert comparison.outcome == "incomplete" and comparison.exit_code() is ExitCode.TOOL

    failing = suite("other", errors=[error("InvalidRead", "r", "main")])
    both = compare([after, failing], {"unit": baseline_of(before)})
    assert both.incomplete and both.verdict is Verdict.FAIL
    assert both.outcome == "fail" and both.exit_code() is ExitCode.GATE_FAILED


def test_a_suite_that_could_not_start_is_incomplete() -> None:
    record = SuiteRecord(name="unit", tool="valgrind", status=SuiteStatus.INCOMPLETE,
                         status_detail="valgrind is not installed")
    result = run(record, baseline_of(suite(metrics=HEAP)))
    assert result.incomplete
    assert result.notes[0] == "incomplete figures: valgrind is not installed"
    assert len(result.rows) == 11 and set(verdicts(result).values()) == {Verdict.WARN}
    assert all(r.current is None for r in result.rows)
    assert result.notes[-1].startswith("in the baseline but not measured in this run: leak_definite_bytes, ")


def test_leak_checking_off_reports_no_fixed_leak_sites() -> None:
    before = suite(leaks=KNOWN_LEAKS)
    after = suite(leak_check=False)
    result = run(after, baseline_of(before))
    assert result.sites_with("fixed") == ()
    assert any("leak checking was off" in note for note in result.notes)


def test_a_heap_tool_that_never_checks_leaks_adds_no_note() -> None:
    record = suite(metrics=HEAP, leak_check=False, tool="dhat")
    result = run(record, baseline_of(record))
    assert result.notes == () and result.verdict is Verdict.PASS


def test_metric_in_baseline_but_absent_now_is_a_warning_with_a_note() -> None:
    before = suite(metrics=HEAP)
    after = suite(metrics={"heap_peak_bytes": 1_000_000})
    result = run(after, baseline_of(before))
    calls = row(result, "alloc_calls")
    assert (calls.baseline, calls.current, calls.delta, calls.verdict) == (200, None, None, Verdict.WARN)
    assert "in the baseline but not measured in this run: alloc_calls" in result.notes
    assert result.verdict is Verdict.WARN


def test_baseline_from_another_tool_is_refused() -> None:
    baseline = baseline_of(suite(tool="asan"))
    with pytest.raises(BaselineError, match="made with asan, this run used memcheck") as caught:
        run(suite(tool="valgrind"), baseline)
    assert "memgate baseline update --suite unit" in caught.value.hint


def test_another_tool_version_is_a_note() -> None:
    baseline = baseline_of(suite(metrics=HEAP, tool_version="3.18.1"))
    result = run(suite(metrics=HEAP, tool_version="3.19.0"), baseline)
    assert result.verdict is Verdict.PASS
    assert result.notes == ("the baseline was made with memcheck 3.18.1, this run used 3.19.0: figures may "
                            "differ for that reason alone",)


def test_suites_are_compared_each_with_its_own_baseline_and_thresholds() -> None:
    unit = suite("unit", metrics={**HEAP, "heap_peak_bytes": 1_070_000})
    perf = suite("perf", metrics={**HEAP, "heap_peak_bytes": 1_070_000})
    config = Config.model_validate({"suite": [
        {"name": "unit", "command": ["true"], "tool": "valgrind"},
        {"name": "perf", "command": ["true"], "tool": "valgrind",
         "thresholds": {"heap_peak_bytes": {"fail": "6%"}}},
    ]})
    baselines = {name: baseline_of(suite(name, metrics=HEAP)) for name in ("unit", "perf", "gone")}
    report = Report(memgate_version="0", created_at="now", suites=(unit, perf))
    comparison = compare_report(report, baselines, config)
    assert [(s.suite, s.verdict) for s in comparison.suites] == [
        ("unit", Verdict.WARN), ("perf", Verdict.FAIL)]
    assert comparison.verdict is Verdict.FAIL
    assert comparison.unmatched_baselines == ("gone",)


def test_repeated_suite_names_are_refused() -> None:
    with pytest.raises(UsageError, match="'unit' appears more than once"):
        compare([suite(), suite()], {})


def test_no_suites_passes_nothing_but_says_so() -> None:
    assert compare([], {}) == Comparison(verdict=Verdict.PASS)


site_names = st.sampled_from(["alpha", "beta", "gamma", "delta", "epsilon"])
leak_records = st.builds(lambda kind, size, blocks, name: leak(kind, size, blocks, name, "main"),
                         st.sampled_from(LEAK_KINDS), st.integers(1, 10_000), st.integers(1, 50), site_names)
error_records = st.builds(lambda kind, name, count: error(kind, name, "main", count=count),
                          st.sampled_from(["InvalidRead", "InvalidWrite"]), site_names, st.integers(1, 9))


@settings(max_examples=100, deadline=None)
@given(leaks=st.lists(leak_records, max_size=12), errors=st.lists(error_records, max_size=6))
def test_a_run_against_its_own_baseline_always_passes(leaks: list[Leak], errors: list[MemError]) -> None:
    record = suite(leaks=leaks, errors=errors, metrics=HEAP)
    result = run(record, baseline_of(record))
    assert result.verdict is Verdict.PASS
    assert {site.status for site in result.sites} <= {"known"}
    assert len(result.sites) == len({(x.kind, x.fingerprint) for x in [*leaks, *errors]})
    assert sum(site.bytes or 0 for site in result.sites) == sum(x.bytes for x in leaks)


@settings(max_examples=100, deadline=None)
@given(before=st.lists(leak_records, max_size=10), after=st.lists(leak_records, max_size=10))
def test_sites_are_new_known_or_fixed_by_fingerprint(before: list[Leak], after: list[Leak]) -> None:
    result = run(suite(leaks=after), baseline_of(suite(leaks=before)))
    keys_before = {(x.kind, x.fingerprint) for x in before}
    keys_after = {(x.kind, x.fingerprint) for x in after}
    # A site memcheck classified definite in one run and possible in the other is the same site.
    # Only its definite and possible records: an indirect leak at the same frames is a site of its own.
    flipped = {x.site for x in result.sites if x.moved_from}

    def moved(kind: str, site: str) -> bool:
        return site in flipped and kind in ("definite", "possible")

    keys_before -= {(x.kind, x.fingerprint) for x in before if moved(x.kind, x.site)}
    keys_after -= {(x.kind, x.fingerprint) for x in after if moved(x.kind, x.site)}
    by_status = {status: {(s.kind, s.fingerprint) for s in result.sites_with(status)
                          if not moved(s.kind, s.site)}
                 for status in ("new", "known", "grown", "fixed")}
    assert by_status["known"] | by_status["grown"] == keys_after & keys_before
    assert {key: by_status[key] for key in ("new", "fixed")} == {
        "new": keys_after - keys_before, "fixed": keys_before - keys_after}
    gated_new = any(kind in ("definite", "indirect") for kind, _ in by_status["new"])
    metric_failed = any(r.verdict is Verdict.FAIL for r in result.rows)
    assert (result.verdict is Verdict.FAIL) == (gated_new or metric_failed)


def test_the_garbage_collector_is_left_as_it_was() -> None:
    record = suite(leaks=KNOWN_LEAKS)
    assert gc.isenabled()
    compare([record], {})
    assert gc.isenabled()
    gc.disable()
    try:
        compare([record], {})
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- noise floors (Threshold.noise) through the comparison; real reruns: tests/cli/test_repeat_noise.py

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


def test_a_floor_alone_never_warns() -> None:
    """Without warn or fail limits (the default for rss_peak_bytes) nothing warns; the limit column
    stays empty rather than showing a floor that guards nothing."""
    row = compared("rss_peak_bytes", 10 * MiB, 20 * MiB)
    assert (row.verdict, row.limit) == (Verdict.PASS, "")
