"""`memgate baseline update --from-report` and `memgate compare` on reports with per-test figures
(issue 13): the baseline keeps them, and the gate judges each test: a grown test fails, a new one is
listed, a gone one is listed and does not fail, the unchanged ones are one line in the comment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memgate.cli import main
from memgate.metrics import MetricName
from memgate.records import ProcessRecord, Report, SuiteRecord, TestFigures
from tests.cli.test_check import write_config

UNCHANGED: TestFigures = {f"BenchmarkKeep/case={index}": {"allocs_per_op": 2, "bytes_per_op": 128}
                          for index in range(300)}
TOTALS: dict[MetricName, int] = {"heap_peak_bytes": 65_536, "alloc_calls": 900}


def write_report(path: Path, tests: TestFigures) -> Path:
    """A report as `memgate run --json` writes it, of one suite whose process measured ``tests``."""
    process = ProcessRecord(pid=4242, command="bench", metrics=TOTALS, tests=tests)
    suite = SuiteRecord.from_processes("bench", "memusage", [process], tool_version="glibc 2.36")
    report = Report(memgate_version="0.1.0", created_at="2026-01-01T00:00:00+00:00", suites=(suite,))
    path.write_text(report.model_dump_json(indent=2))
    return path


def test_compare_judges_each_test_against_a_baseline_with_per_test_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, Path("/bin/true"), "memusage", name="bench")
    before = write_report(tmp_path / "before.json", {
        **UNCHANGED, "BenchmarkParse": {"allocs_per_op": 12, "bytes_per_op": 4_096},
        "BenchmarkOld": {"allocs_per_op": 1, "bytes_per_op": 64}})
    assert main(["baseline", "update", "--config", str(config), "--from-report", str(before)]) == 0
    baseline_file = tmp_path / "baselines" / "bench.json"
    kept = json.loads(baseline_file.read_text())["tests"]
    assert len(kept) == 302 and kept["BenchmarkParse"] == {"allocs_per_op": 12, "bytes_per_op": 4_096}

    after = write_report(tmp_path / "after.json", {
        **UNCHANGED, "BenchmarkParse": {"allocs_per_op": 13, "bytes_per_op": 4_096},
        "BenchmarkNew": {"allocs_per_op": 0, "bytes_per_op": 512}})
    capsys.readouterr()
    code = main(["compare", str(tmp_path / "baselines"), str(after), "--config", str(config),
                 "--markdown", str(tmp_path / "comment.md"), "--json", str(tmp_path / "compared.json")])
    out = capsys.readouterr().out

    assert code == 1  # BenchmarkParse: +1 allocation per op, and the suite's totals did not move
    parse = next(line for line in out.splitlines() if "BenchmarkParse" in line)
    assert parse.split()[-3:] == ["+1", "(+8.3%)", "FAIL"]
    assert "test BenchmarkNew (new)" in out and "300 unchanged tests" in out
    assert "1 gone test (in the baseline, not in this run; not a failure): BenchmarkOld" in out
    assert "memgate: FAIL: 1 of 1 suite failed: bench" in out

    comment = (tmp_path / "comment.md").read_text()
    assert "| BenchmarkParse | `allocs_per_op` | 12 | 13 | +1 (+8.3%) | ❌ fail |" in comment
    assert "| BenchmarkNew (new) | `allocs_per_op` | - | 0 | - | 🆕 new |" in comment
    assert "✅ 300 unchanged tests." in comment and "BenchmarkKeep" not in comment
    assert "not a failure): BenchmarkOld" in comment

    (suite,) = json.loads((tmp_path / "compared.json").read_text())["comparison"]["suites"]
    assert (suite["new_tests"], suite["gone_tests"]) == (["BenchmarkNew"], ["BenchmarkOld"])
    failing = [(row["test"], row["metric"]) for row in suite["test_rows"] if row["verdict"] == "fail"]
    assert failing == [("BenchmarkParse", "allocs_per_op")]
    assert {row["verdict"] for row in suite["rows"]} == {"pass"}


def test_a_gone_test_alone_passes_and_a_baseline_without_tests_stays_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, Path("/bin/true"), "memusage", name="bench")
    before = write_report(tmp_path / "before.json", {**UNCHANGED, "BenchmarkOld": {"allocs_per_op": 1}})
    assert main(["baseline", "update", "--config", str(config), "--from-report", str(before)]) == 0
    after = write_report(tmp_path / "after.json", UNCHANGED)
    assert main(["compare", str(tmp_path / "baselines"), str(after), "--config", str(config)]) == 0
    assert "BenchmarkOld" in capsys.readouterr().out

    plain = write_report(tmp_path / "plain.json", {})
    assert main(["baseline", "update", "--config", str(config), "--from-report", str(plain)]) == 0
    assert "tests" not in json.loads((tmp_path / "baselines" / "bench.json").read_text())
