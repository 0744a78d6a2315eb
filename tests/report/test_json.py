from __future__ import annotations

import json
from pathlib import Path

import pytest
from recordkit import error, leak, suite

from memgate.baselines.files import read_report
from memgate.comparison import compare
from memgate.errors import ExitCode, UsageError
from memgate.records import Environment, Report
from memgate.report.json import render_comparison, write_comparison, write_json, write_report


def make_report() -> Report:
    record = suite(leaks=[leak("definite", 16, 1, "leak_small", "main")],
                   errors=[error("InvalidRead", "invalid_read", "main", count=2)])
    return Report(memgate_version="0.1.0", created_at="2024-05-01T10:00:00+00:00",
                  environment=Environment(git_commit="0123abc"), suites=(record,))


def test_report_round_trips(tmp_path: Path) -> None:
    path = write_report(tmp_path / "out" / "report.json", make_report())
    assert path == tmp_path / "out" / "report.json"
    text = path.read_text()
    assert text.endswith("}\n")
    assert json.loads(text)["suites"][0]["metrics"]["leak_definite_bytes"] == 16
    assert read_report(path) == make_report()
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


def test_comparison_json_has_the_outcome_and_every_row() -> None:
    comparison = compare(make_report().suites, {})
    data = json.loads(render_comparison(comparison))
    assert data["outcome"] == "fail" and data["verdict"] == "fail" and data["incomplete"] is False
    (unit,) = data["suites"]
    assert unit["has_baseline"] is False
    assert [(s["status"], s["kind"], s["verdict"]) for s in unit["sites"]] == [
        ("new", "definite", "fail"), ("new", "InvalidRead", "fail")]
    assert {r["metric"]: r["verdict"] for r in unit["rows"]}["errors"] == "fail"


def test_write_comparison_and_text(tmp_path: Path) -> None:
    comparison = compare(make_report().suites, {})
    write_comparison(tmp_path / "comparison.json", comparison)
    assert (tmp_path / "comparison.json").read_text() == render_comparison(comparison)
    write_json(tmp_path / "x.json", '{"a": 1}\n')
    assert (tmp_path / "x.json").read_text() == '{"a": 1}\n'


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot write the JSON file") as caught:
        write_report(tmp_path / "file" / "report.json", make_report())
    assert caught.value.path == str(tmp_path / "file" / "report.json")
    assert caught.value.exit_code is ExitCode.USAGE
