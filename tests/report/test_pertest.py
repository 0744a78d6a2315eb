"""Reports of a suite with per-test figures (issue 13): every format names the test; the table and the
comment list only the tests that changed and collapse the rest into one line."""

from __future__ import annotations

import json

from recordkit import leak, suite

from memgate.baselines.model import Baseline
from memgate.comparison import ComparedReport, Comparison, compare
from memgate.records import Report, SuiteRecord, TestFigures
from memgate.report.codequality import render_codequality
from memgate.report.junit import render_junit
from memgate.report.markdown import render_markdown
from memgate.report.sarif import render_sarif
from memgate.report.table import render_table

from .conftest import REPO_ROOT
from .test_junit import validate
from .test_sarif import sarif

UNCHANGED: TestFigures = {f"BenchmarkKeep{index:03}": {"allocs_per_op": 2, "bytes_per_op": 128}
                          for index in range(297)}
BEFORE: TestFigures = {**UNCHANGED, "BenchmarkParse": {"allocs_per_op": 12, "bytes_per_op": 4_096},
                       "BenchmarkOld": {"allocs_per_op": 1, "bytes_per_op": 64}}
AFTER: TestFigures = {**UNCHANGED, "BenchmarkParse": {"allocs_per_op": 13, "bytes_per_op": 4_096},
                      "BenchmarkNew": {"allocs_per_op": 0, "bytes_per_op": 256}}
LEAK_IN_TEST = leak("definite", 24, 1, "grow_pool", "Pool_Grow_Test::TestBody", test="Pool.Grow")


def current() -> SuiteRecord:
    return suite(leaks=[LEAK_IN_TEST], tests=AFTER)


def comparison() -> Comparison:
    baseline = Baseline.from_suite(suite(tests={**BEFORE, "Pool.Grow": {}}))
    return compare([current()], {"unit": baseline})


def test_the_comment_shows_the_changed_tests_and_collapses_297_unchanged_ones_into_one_line() -> None:
    body = render_markdown(comparison())

    assert "| BenchmarkParse | `allocs_per_op` | 12 | 13 | +1 (+8.3%) | ❌ fail | fail 0% |" in body
    assert "| BenchmarkNew (new) | `allocs_per_op` |" in body
    assert "| Pool.Grow | `leak_definite_bytes` | 0 B | 24 B | +24 B | ❌ fail | fail \\+0 |" in body
    assert "✅ 297 unchanged tests." in body
    assert "BenchmarkKeep" not in body
    assert ("1 gone test (in the baseline, not in this run; not a failure): BenchmarkOld" in body)
    # The suite's causes name the test already: the test's rows do not repeat them.
    assert "- `leak_definite_bytes` ❌ fail: new definite leak at grow\\_pool" in body
    assert "of Pool.Grow ❌" not in body
    assert body.index("unchanged metrics</summary>") < body.index("| test | metric |")
    assert "test <code>Pool.Grow</code>" in body  # the new site's summary
    assert "2 tests changed, 1 new test, 1 gone test" in body  # the overview's changes column
    assert len(body.splitlines()) < 60


def test_the_table_lists_changed_tests_under_their_suite_and_counts_the_rest() -> None:
    text = render_table(comparison())

    lines = text.splitlines()
    parse = next(line for line in lines if "BenchmarkParse" in line)
    assert parse.split() == ["test", "BenchmarkParse", "allocs_per_op", "12", "13", "+1", "(+8.3%)", "FAIL"]
    assert any(line.split()[:4] == ["297", "unchanged", "tests", "pass"] for line in lines)
    assert "BenchmarkKeep" not in text
    assert "unit in test Pool.Grow: leak_definite_bytes, leak_definite_blocks FAIL: new definite leak" in text
    assert "at grow_pool < Pool_Grow_Test::TestBody in test Pool.Grow" in text  # the new site's line
    assert "unit: 1 gone test (in the baseline, not in this run; not a failure): BenchmarkOld" in text
    assert len(lines) < 60


def test_the_json_report_carries_the_tests_rows_and_the_gone_tests() -> None:
    record = current()
    result = comparison()
    report = ComparedReport.of(Report(memgate_version="test", created_at="2026-01-01T00:00:00Z",
                                      suites=(record,)), result, 1)
    data = json.loads(report.model_dump_json())

    suite_data = data["comparison"]["suites"][0]
    assert suite_data["gone_tests"] == ["BenchmarkOld"]
    assert suite_data["new_tests"] == ["BenchmarkNew"]
    parse = [row for row in suite_data["test_rows"] if row["test"] == "BenchmarkParse"]
    assert [(row["metric"], row["verdict"]) for row in parse] == [("allocs_per_op", "fail"),
                                                                  ("bytes_per_op", "pass")]
    assert {row["test"] for row in suite_data["rows"]} == {None}
    assert data["suites"][0]["tests"]["BenchmarkParse"] == {"allocs_per_op": 13, "bytes_per_op": 4_096}
    assert [site["test"] for site in suite_data["sites"]] == ["Pool.Grow"]


def test_junit_has_one_testcase_per_test_failing_ones_with_their_failing_rows() -> None:
    root = validate(render_junit(comparison(), REPO_ROOT))

    (testsuite,) = root.iter("testsuite")
    cases = {case.get("name"): case for case in testsuite.iter("testcase")}
    assert len([name for name in cases if name and name.startswith("BenchmarkKeep")]) == 297
    failure = cases["BenchmarkParse"].find("failure")
    assert failure is not None and failure.get("type") == "MemoryRegression"
    assert failure.get("message") == ("allocs_per_op of test BenchmarkParse: 13, +1 (+8.3%) from 12 "
                                      "(limit fail 0%)")
    assert cases["BenchmarkKeep000"].find("failure") is None
    new_output = cases["BenchmarkNew"].findtext("system-out") or ""
    assert new_output.startswith("new test: no baseline for it")
    assert "BenchmarkOld" not in cases and "BenchmarkOld" in (cases["run"].findtext("system-out") or "")
    assert cases["Pool.Grow"].find("failure") is not None
    assert "leak_definite_bytes" in cases  # the suite's totals keep their testcases
    assert testsuite.get("tests") == str(len(cases))


def test_sarif_and_code_quality_name_the_test() -> None:
    log = sarif(render_sarif(comparison(), REPO_ROOT))
    (result,) = log["runs"][0]["results"]
    assert "at grow_pool < Pool_Grow_Test::TestBody in test Pool.Grow" in result["message"]["text"]
    assert result["properties"]["test"] == "Pool.Grow"

    issues = json.loads(render_codequality(comparison(), REPO_ROOT))
    by_description = {issue["description"]: issue for issue in issues}
    parse = next(text for text in by_description if "of test BenchmarkParse" in text)
    assert parse.startswith("[unit] over its fail threshold: allocs_per_op of test BenchmarkParse: 13")
    fingerprints = [issue["fingerprint"] for issue in issues]
    assert len(fingerprints) == len(set(fingerprints))


def test_changed_tests_are_capped_and_a_test_named_like_a_metric_keeps_its_own_testcase() -> None:
    before: TestFigures = {f"T{index:02}": {"errors": 0} for index in range(40)}
    after: TestFigures = {name: {"errors": 1} for name in before}
    result = compare([suite(tests={**after, "errors": {"errors": 0}})],
                     {"unit": Baseline.from_suite(suite(tests={**before, "errors": {"errors": 0}}))})

    body = render_markdown(result)
    assert "| T29 |" in body and "| T30 |" not in body
    assert "… and 10 more changed tests (see the full report)." in body
    table = render_table(result)
    assert "test T19" in table and "test T20" not in table and "20 more changed tests" in table
    cases = [case.get("name") for case in validate(render_junit(result, REPO_ROOT)).iter("testcase")]
    assert cases.count("errors") == 1 and "errors (test)" in cases
