"""Repeat runs combined into one record (``runner.suite.combine_runs``, ``records.combine_run_metrics``)
and how the comparison and the reports show a nondeterministic suite. Real repeated runs are in
tests/cli/test_repeat_noise.py."""

from __future__ import annotations

import pytest
from recordkit import leak, suite

from memgate.baselines.model import Baseline
from memgate.comparison import compare
from memgate.metrics import MetricName
from memgate.records import MetricSpread, ProcessRecord, SuiteRecord, SuiteStatus, combine_run_metrics
from memgate.report.markdown import render_markdown
from memgate.report.table import render_suites, render_table
from memgate.runner.suite import combine_runs
from memgate.runner.suites import make_report
from memgate.thresholds import Verdict

HEAP: dict[MetricName, int] = {"heap_peak_bytes": 5_243_880, "heap_total_bytes": 8_389_608, "alloc_calls": 3}


def runs_of(*metrics: dict[MetricName, int]) -> list[SuiteRecord]:
    return [suite(metrics=figures, tool="memusage", tool_version="glibc 2.36") for figures in metrics]


def test_identical_runs_combine_to_the_same_figures_and_keep_every_run() -> None:
    runs = runs_of(HEAP, HEAP, HEAP)
    combined = combine_runs(runs, repeat=3, artifacts_dir="/a/unit")

    assert combined.metrics == {**runs[0].metrics}
    assert combined.nondeterministic == ()
    assert combined.status is SuiteStatus.OK and combined.status_detail is None
    assert [run.index for run in combined.runs] == [1, 2, 3]
    assert all(run.metrics == runs[0].metrics for run in combined.runs)
    assert [process.run for process in combined.processes] == [1, 2, 3]
    assert combined.artifacts_dir == "/a/unit"


def test_exact_metrics_that_differ_make_the_suite_nondeterministic_and_the_median_is_kept() -> None:
    peaks = [5_000_000, 8_750_000, 5_000_000, 5_100_000, 5_000_000]
    combined = combine_runs(runs_of(*({**HEAP, "heap_peak_bytes": peak} for peak in peaks)), repeat=5)

    assert combined.metrics["heap_peak_bytes"] == 5_000_000  # the +75% outlier does not count
    assert combined.metrics["alloc_calls"] == 3
    assert combined.nondeterministic == (
        MetricSpread(metric="heap_peak_bytes", min=5_000_000, max=8_750_000, value=5_000_000),)
    assert [run.metrics["heap_peak_bytes"] for run in combined.runs] == peaks


def test_the_median_of_an_even_count_is_the_lower_middle_value_a_measured_one() -> None:
    metrics, spreads = combine_run_metrics([{"heap_peak_bytes": v} for v in (40, 10, 30, 20)])
    assert metrics == {"heap_peak_bytes": 20}
    assert spreads == (MetricSpread(metric="heap_peak_bytes", min=10, max=40, value=20),)


def test_rss_and_page_faults_vary_by_nature_and_do_not_make_a_suite_nondeterministic() -> None:
    per_run: list[dict[MetricName, int]] = [
        {"rss_peak_bytes": 11_489_280, "page_faults_minor": 2_633, "page_faults_major": 0},
        {"rss_peak_bytes": 11_718_656, "page_faults_minor": 2_637, "page_faults_major": 0},
        {"rss_peak_bytes": 11_542_528, "page_faults_minor": 2_630, "page_faults_major": 1},
    ]
    metrics, spreads = combine_run_metrics(per_run)
    assert metrics == {"rss_peak_bytes": 11_542_528, "page_faults_minor": 2_633, "page_faults_major": 0}
    assert spreads == ()


def test_a_leak_of_one_run_in_five_is_kept_with_its_site() -> None:
    flaky = leak("definite", 64, 1, "leak_once", "main")
    runs = [suite(), suite(), suite(leaks=[flaky]), suite(), suite()]
    combined = combine_runs(runs, repeat=5)

    assert combined.metrics["leak_definite_bytes"] == 64  # the largest of any run, not the median 0
    assert combined.leaks == (flaky,)
    assert MetricSpread(metric="leak_definite_bytes", min=0, max=64, value=64) in combined.nondeterministic

    result = compare([combined], {"unit": Baseline.from_suite(suite())}).suites[0]
    assert [(site.status, site.site, site.verdict) for site in result.sites] == [
        ("new", "leak_once < main", Verdict.FAIL)]
    assert result.verdict is Verdict.FAIL


def test_a_site_seen_in_every_run_counts_once_with_one_runs_figures() -> None:
    known = leak("definite", 300, 3, "leak_many", "main")
    combined = combine_runs([suite(leaks=[known]) for _ in range(4)], repeat=4)
    assert combined.leaks == (known,)
    baseline = Baseline.from_suite(combined)
    assert [(site.bytes, site.blocks) for site in baseline.leaks] == [(300, 3)]
    assert baseline.metrics["leak_definite_bytes"] == 300


def test_a_known_site_missing_from_the_first_run_is_not_reported_fixed() -> None:
    known = leak("definite", 64, 1, "leak_once", "main")
    baseline = Baseline.from_suite(suite(leaks=[known]))
    combined = combine_runs([suite(), suite(leaks=[known])], repeat=2)
    result = compare([combined], {"unit": baseline}).suites[0]
    assert [(site.status, site.verdict) for site in result.sites] == [("known", Verdict.PASS)]


@pytest.mark.parametrize(
    ("statuses", "repeat", "status", "detail"),
    [
        ([SuiteStatus.OK, SuiteStatus.CRASHED], 5, SuiteStatus.CRASHED,
         "run 2 of 5: killed by signal 11; 3 more runs skipped"),
        ([SuiteStatus.OK, SuiteStatus.OK, SuiteStatus.TIMEOUT], 4, SuiteStatus.TIMEOUT,
         "run 3 of 4: killed by signal 11; 1 more run skipped"),
        ([SuiteStatus.INCOMPLETE, SuiteStatus.CRASHED], 2, SuiteStatus.CRASHED,
         "run 2 of 2: killed by signal 11"),
        ([SuiteStatus.OK, SuiteStatus.INCOMPLETE], 2, SuiteStatus.INCOMPLETE,
         "run 2 of 2: killed by signal 11"),
        ([SuiteStatus.FAILED, SuiteStatus.FAILED], 2, SuiteStatus.FAILED,
         "run 1 of 2: killed by signal 11"),
    ],
)
def test_the_worst_run_gives_the_status(statuses: list[SuiteStatus], repeat: int, status: SuiteStatus,
                                        detail: str) -> None:
    runs = [suite(status=s, status_detail=None if s is SuiteStatus.OK else "killed by signal 11")
            for s in statuses]
    combined = combine_runs(runs, repeat=repeat)
    assert (combined.status, combined.status_detail) == (status, detail)
    assert [run.status for run in combined.runs] == statuses


def test_durations_add_up_and_the_worst_runs_exit_code_is_kept() -> None:
    runs = [suite().model_copy(update={"duration_seconds": 1.25, "exit_code": 0}),
            suite(status=SuiteStatus.FAILED, status_detail="exited with status 3").model_copy(
                update={"duration_seconds": 0.5, "exit_code": 3})]
    combined = combine_runs(runs, repeat=2)
    assert combined.duration_seconds == 1.75
    assert combined.exit_code == 3
    assert combined.status_detail == "run 2 of 2: exited with status 3"


def test_per_test_figures_combine_over_runs_like_the_suites() -> None:
    """Per test: the largest finding of any run, the lower median of every other figure, over the
    runs that measured the test."""
    flaky = leak("definite", 64, 1, "leak_once", "main", test="Pool.Grow")
    runs = [
        suite(tests={"BenchmarkA": {"allocs_per_op": 3, "bytes_per_op": 240},
                     "BenchmarkB": {"allocs_per_op": 1}}),
        suite(leaks=[flaky], tests={"BenchmarkA": {"allocs_per_op": 3, "bytes_per_op": 280}}),
        suite(tests={"BenchmarkA": {"allocs_per_op": 4, "bytes_per_op": 230},
                     "BenchmarkB": {"allocs_per_op": 2}}),
    ]
    combined = combine_runs(runs, repeat=3)
    assert combined.tests == {
        "BenchmarkA": {"allocs_per_op": 3, "bytes_per_op": 240},
        "BenchmarkB": {"allocs_per_op": 1},  # measured by two runs: the lower of the two
        "Pool.Grow": {"leak_definite_bytes": 64, "leak_definite_blocks": 1},
    }
    # Figures of a test that differ between the runs make that test nondeterministic (a benchmark whose
    # input is seeded once per process); a leak found in one run of three is a finding, not noise.
    spreads = [(spread.test, spread.metric, spread.min, spread.max)
               for spread in combined.nondeterministic_tests]
    assert spreads == [("BenchmarkA", "allocs_per_op", 3, 4), ("BenchmarkA", "bytes_per_op", 230, 280),
                       ("BenchmarkB", "allocs_per_op", 1, 2)]


def test_combine_runs_needs_a_run() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        combine_runs([], repeat=1)


def test_reports_say_which_metrics_varied() -> None:
    baseline = Baseline.from_suite(suite(metrics=HEAP, tool="memusage", tool_version="glibc 2.36"))
    peaks = [5_243_880, 9_176_790, 5_243_880]
    combined = combine_runs(runs_of(*({**HEAP, "heap_peak_bytes": peak} for peak in peaks)), repeat=3)
    comparison = compare([combined], {"unit": baseline})
    result = comparison.suites[0]

    note = ("nondeterministic over 3 runs: heap_peak_bytes from 5.00 MiB to 8.75 MiB (the median, 5.00 MiB, "
            "is compared)")
    assert result.notes == (note,)
    assert (result.runs, result.nondeterministic, result.verdict) == (3, ("heap_peak_bytes",), Verdict.PASS)

    table = render_table(comparison)
    assert "unit (nondeterministic)" in table
    assert f"  unit: {note}" in table
    markdown = render_markdown(comparison)
    assert "### ✅ unit (🎲 nondeterministic)" in markdown
    assert "| ok, 🎲 nondeterministic over 3 runs |" in markdown
    escaped = "- nondeterministic over 3 runs: heap\\_peak\\_bytes from 5.00 MiB to 8.75 MiB \\(the median"
    assert escaped in markdown

    printed = render_suites(make_report([combined]))
    assert "ok, 3 runs, nondeterministic: heap_peak_bytes" in printed


def test_figures_per_test_of_repeated_runs_combine_like_the_suites() -> None:
    flaky = leak("definite", 64, 1, "leak_once", "Parser_Leaks_Test::TestBody").model_copy(
        update={"test": "Parser.Leaks"})
    runs = [SuiteRecord.from_processes("unit", "asan", [ProcessRecord(test=test, metrics=figures, leaks=found)
                                                        for test, figures, found in processes])
            for processes in (
                [("a", {"alloc_calls": 10}, ()), ("b", {"alloc_calls": 5}, ())],
                [("a", {"alloc_calls": 12}, (flaky,)), ("b", {"alloc_calls": 5}, ())],
                [("a", {"alloc_calls": 11}, ()), ("b", {"alloc_calls": 5}, ())],
            )]
    combined = combine_runs(runs, repeat=3)
    # A leak of one run is kept (the largest); the other figures are the median of the runs.
    assert combined.tests == {"Parser.Leaks": {"leak_definite_bytes": 64, "leak_definite_blocks": 1},
                              "a": {"alloc_calls": 11}, "b": {"alloc_calls": 5}}
