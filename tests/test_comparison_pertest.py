"""Per-test figures in the comparison: each test's metrics judged with the suite's thresholds, new and
gone tests, sites that name their test, and baselines that keep per-test figures (issue 13)."""

from __future__ import annotations

import json

from recordkit import leak, suite

from memgate.baselines.model import Baseline
from memgate.comparison import MetricRow, SuiteComparison, compare
from memgate.config import Config
from memgate.metrics import MetricName
from memgate.records import MetricSpread, TestFigures
from memgate.thresholds import Verdict

BEFORE: TestFigures = {
    "BenchmarkParse": {"allocs_per_op": 12, "bytes_per_op": 4_096},
    "BenchmarkEncode": {"allocs_per_op": 3, "bytes_per_op": 512},
    "BenchmarkOld": {"allocs_per_op": 1, "bytes_per_op": 64},
}


def compared(after: TestFigures, before: TestFigures = BEFORE, config: Config | None = None,
             **kwargs: object) -> SuiteComparison:
    baseline = Baseline.from_suite(suite(tests=before))
    return compare([suite(tests=after, **kwargs)], {"unit": baseline}, config).suites[0]  # type: ignore[arg-type]


def rows_by_test(result: SuiteComparison) -> dict[tuple[str, MetricName], MetricRow]:
    return {(row.test or "", row.metric): row for row in result.test_rows}


def test_each_test_is_judged_with_the_suites_thresholds_and_new_and_gone_tests_do_not_fail() -> None:
    after: TestFigures = {
        "BenchmarkParse": {"allocs_per_op": 13, "bytes_per_op": 4_100},  # +1 alloc/op: fails (+0)
        "BenchmarkEncode": {"allocs_per_op": 3, "bytes_per_op": 512},
        "BenchmarkNew": {"allocs_per_op": 0, "bytes_per_op": 9_000},
    }
    result = compared(after)

    rows = rows_by_test(result)
    parse = rows["BenchmarkParse", "allocs_per_op"]
    assert (parse.suite, parse.baseline, parse.current, parse.delta, parse.verdict, parse.crossed) == (
        "unit", 12, 13, 1, Verdict.FAIL, "fail 0%")
    assert rows["BenchmarkParse", "bytes_per_op"].verdict is Verdict.PASS  # +0.1%, under warn 5%
    assert {rows["BenchmarkEncode", metric].verdict for metric in ("allocs_per_op", "bytes_per_op")} == {
        Verdict.PASS}
    new = rows["BenchmarkNew", "bytes_per_op"]  # warn 5% / fail 10%: relative, so it cannot fail
    assert (new.baseline, new.current, new.delta, new.verdict) == (None, 9_000, None, Verdict.NEW)
    assert result.new_tests == ("BenchmarkNew",)
    assert result.gone_tests == ("BenchmarkOld",)
    assert not any(row.test == "BenchmarkOld" for row in result.test_rows)
    assert [row.test for row in result.rows] == [None] * len(result.rows)  # the suite's totals, as ever
    assert result.verdict is Verdict.FAIL

    by_test = {test.test: test for test in result.per_test()}
    assert list(by_test) == ["BenchmarkEncode", "BenchmarkNew", "BenchmarkParse"]
    assert (by_test["BenchmarkParse"].verdict, by_test["BenchmarkParse"].changed) == (Verdict.FAIL, True)
    assert (by_test["BenchmarkEncode"].verdict, by_test["BenchmarkEncode"].changed) == (Verdict.PASS, False)
    assert by_test["BenchmarkNew"].new and by_test["BenchmarkNew"].changed


def test_unchanged_tests_pass_and_a_gone_test_alone_does_not_fail() -> None:
    result = compared({name: figures for name, figures in BEFORE.items() if name != "BenchmarkOld"})
    assert result.verdict is Verdict.PASS
    assert result.gone_tests == ("BenchmarkOld",) and result.new_tests == ()
    assert {row.verdict for row in result.test_rows} == {Verdict.PASS}


def test_per_suite_thresholds_apply_to_its_tests() -> None:
    config = Config.model_validate({"suite": [{"name": "unit", "command": ["true"], "tool": "valgrind",
                                               "thresholds": {"allocs_per_op": {"fail": "+5"}}}]})
    after = {**BEFORE, "BenchmarkParse": {"allocs_per_op": 14, "bytes_per_op": 4_096}}
    result = compared(after, config=config)
    assert rows_by_test(result)["BenchmarkParse", "allocs_per_op"].verdict is Verdict.PASS
    assert result.verdict is Verdict.PASS


def test_a_new_test_that_leaks_fails_by_the_absolute_limit_and_the_site_names_it() -> None:
    known = leak("definite", 16, 1, "known_leak", "main", test="Pool.Old")
    baseline = Baseline.from_suite(suite(leaks=[known]))
    after = suite(leaks=[known,
                         leak("definite", 32, 2, "leak_new", "TestBody", test="Pool.Grow")])
    result = compare([after], {"unit": baseline}).suites[0]

    rows = rows_by_test(result)
    grow = rows["Pool.Grow", "leak_definite_bytes"]
    assert (grow.baseline, grow.current, grow.verdict) == (None, 32, Verdict.FAIL)
    assert grow.causes == ("new definite leak at leak_new < TestBody in test Pool.Grow: 32 B in 2 blocks",)
    assert rows["Pool.Old", "leak_definite_bytes"].verdict is Verdict.PASS
    new_site = next(site for site in result.sites if site.status == "new")
    assert new_site.test == "Pool.Grow"
    assert result.new_tests == ("Pool.Grow",)


def test_a_known_test_that_starts_leaking_fails_against_zero_and_one_that_stops_improves() -> None:
    shared = leak("definite", 48, 3, "cache_fill", "main", test="Cache.Fill")
    baseline = Baseline.from_suite(suite(leaks=[shared], tests={"Cache.Fill": {"alloc_calls": 9},
                                                                "Cache.Evict": {"alloc_calls": 4}}))
    moved = leak("definite", 48, 3, "cache_fill", "main", test="Cache.Evict")
    result = compare([suite(leaks=[moved], tests={"Cache.Fill": {"alloc_calls": 9},
                                                  "Cache.Evict": {"alloc_calls": 4}})],
                     {"unit": baseline}).suites[0]

    rows = rows_by_test(result)
    evict = rows["Cache.Evict", "leak_definite_bytes"]
    assert (evict.baseline, evict.current, evict.verdict) == (0, 48, Verdict.FAIL)
    assert evict.causes == ()  # the site is known (same fingerprint): no new or grown site to name
    fill = rows["Cache.Fill", "leak_definite_bytes"]
    assert (fill.baseline, fill.current, fill.verdict) == (48, 0, Verdict.IMPROVED)
    assert [(site.status, site.test) for site in result.sites] == [("known", "Cache.Evict")]
    assert row_verdicts(result.rows) == {Verdict.PASS}  # the suite's totals did not move
    assert result.verdict is Verdict.FAIL


def row_verdicts(rows: tuple[MetricRow, ...]) -> set[Verdict]:
    return {row.verdict for row in rows}


def test_a_grown_site_names_its_test_and_takes_the_verdict_of_the_tests_row() -> None:
    before = leak("possible", 100, 1, "maybe", "main", test="Net.Retry")
    after = leak("possible", 150, 1, "maybe", "main", test="Net.Retry")
    config = Config.model_validate({"thresholds": {"leak_possible_bytes": {"fail": "10%"}}})
    baseline = Baseline.from_suite(suite(leaks=[before]))
    result = compare([suite(leaks=[after])], {"unit": baseline}, config).suites[0]

    assert [(site.status, site.test, site.verdict) for site in result.sites] == [
        ("grown", "Net.Retry", Verdict.FAIL)]
    assert rows_by_test(result)["Net.Retry", "leak_possible_bytes"].causes == (
        "grown possible leak at maybe < main in test Net.Retry: +50 B, +0 blocks",)


def test_a_baseline_without_per_test_figures_compares_only_the_totals_and_says_so() -> None:
    baseline = Baseline.from_suite(suite(leaks=[leak("definite", 16, 1, "known_leak", "main")]))
    after = suite(leaks=[leak("definite", 16, 1, "known_leak", "main", test="Pool.Old")])
    result = compare([after], {"unit": baseline}).suites[0]

    assert result.test_rows == () and result.new_tests == () and result.verdict is Verdict.PASS
    assert any("the baseline has no per-test figures: the 1 tests" in note for note in result.notes)


def test_a_new_suite_has_test_rows_without_baselines_and_no_new_tests_listed() -> None:
    result = compare([suite(tests=BEFORE)], {}).suites[0]
    verdicts = {(row.test, row.metric): row.verdict for row in result.test_rows}
    # Absolute limits apply against 0, as to a new suite's totals; allocs_per_op's default is relative
    # ("0%": any increase of a known benchmark), so a new benchmark passes.
    assert verdicts["BenchmarkParse", "allocs_per_op"] is Verdict.NEW
    assert verdicts["BenchmarkParse", "bytes_per_op"] is Verdict.NEW
    assert len(result.test_rows) == 6 and result.new_tests == () and result.gone_tests == ()


def test_baselines_keep_per_test_figures_and_no_test_per_site() -> None:
    record = suite(leaks=[leak("definite", 16, 1, "known_leak", "main", test="Pool.Old")], tests=BEFORE)
    baseline = Baseline.from_suite(record)
    data = json.loads(baseline.to_json())

    assert data["tests"]["BenchmarkParse"] == {"allocs_per_op": 12, "bytes_per_op": 4_096}
    assert data["tests"]["Pool.Old"] == {"leak_definite_blocks": 1, "leak_definite_bytes": 16}
    assert "test" not in data["leaks"][0]
    assert data["leaks"][0]["fingerprint"] == Baseline.from_suite(
        suite(leaks=[leak("definite", 16, 1, "known_leak", "main")])).leaks[0].fingerprint
    assert Baseline.model_validate_json(baseline.to_json()).tests == baseline.tests
    assert "tests" not in json.loads(Baseline.from_suite(suite()).to_json())


def test_a_figure_a_known_test_no_longer_measures_warns_and_the_note_names_at_most_ten() -> None:
    before: TestFigures = {f"T{index:02}": {"alloc_calls": 5, "heap_peak_bytes": 64} for index in range(12)}
    after: TestFigures = {name: {"alloc_calls": 5} for name in before}
    result = compared(after, before)

    assert rows_by_test(result)["T00", "heap_peak_bytes"].verdict is Verdict.WARN
    assert ("in the baseline but not measured in this run: heap_peak_bytes of T00, heap_peak_bytes of T01, "
            "heap_peak_bytes of T02") in result.notes[-1]
    assert result.notes[-1].endswith("heap_peak_bytes of T09 and 2 more")
    assert result.verdict is Verdict.WARN


def test_a_site_memcheck_classified_the_other_way_moves_no_bytes_in_its_test() -> None:
    before = leak("possible", 64, 1, "make_table", "main", test="Table.Make")
    after = leak("definite", 64, 1, "make_table", "main", test="Table.Make")
    baseline = Baseline.from_suite(suite(leaks=[before]))
    result = compare([suite(leaks=[after])], {"unit": baseline}).suites[0]

    moved = rows_by_test(result)["Table.Make", "leak_definite_bytes"]
    assert (moved.baseline, moved.current, moved.reclassified, moved.verdict) == (0, 64, 64, Verdict.PASS)
    assert result.verdict is Verdict.PASS


def _unstable(test: str, low: int, high: int, value: int) -> MetricSpread:
    return MetricSpread(metric="allocs_per_op", min=low, max=high, value=value, test=test)


def test_a_nondeterministic_test_passes_within_the_range_seen_and_never_fails() -> None:
    """google/btree's benchmarks seed their input from the clock: allocs/op of one sub-benchmark read
    1,042 to 1,065 over reruns of unchanged code. Such a test cannot be gated exactly."""
    before = {"BenchmarkRestore/Clear": {"allocs_per_op": 1_043}, "BenchmarkParse": {"allocs_per_op": 12}}
    baseline = Baseline.from_suite(suite(tests=before).model_copy(
        update={"nondeterministic_tests": (_unstable("BenchmarkRestore/Clear", 1_040, 1_052, 1_043),)}))
    assert json.loads(baseline.to_json())["nondeterministic_tests"][0]["test"] == "BenchmarkRestore/Clear"

    def verdicts(clear: int, spread: tuple[int, int] | None) -> dict[str, Verdict]:
        record = suite(tests={"BenchmarkRestore/Clear": {"allocs_per_op": clear},
                              "BenchmarkParse": {"allocs_per_op": 13}})
        if spread is not None:
            record = record.model_copy(update={"nondeterministic_tests": (
                _unstable("BenchmarkRestore/Clear", *spread, clear),)})
        result = compare([record], {"unit": baseline}).suites[0]
        assert any(note.startswith("nondeterministic tests (their repeats in one run disagreed): "
                                   "allocs_per_op of BenchmarkRestore/Clear 1,") for note in result.notes)
        return {row.test or "": row.verdict for row in result.test_rows}

    # Within what this run's repeats and the baseline's saw: noise.
    assert verdicts(1_060, (1_049, 1_065)) == {"BenchmarkRestore/Clear": Verdict.PASS,
                                               "BenchmarkParse": Verdict.FAIL}
    # This run's repeats agreed, but the baseline's did not: still not exact.
    assert verdicts(1_050, None)["BenchmarkRestore/Clear"] is Verdict.PASS
    # Beyond every figure seen: a warning, never a failure; a deterministic test still fails on +1.
    assert verdicts(1_200, (1_190, 1_210)) == {"BenchmarkRestore/Clear": Verdict.WARN,
                                               "BenchmarkParse": Verdict.FAIL}
