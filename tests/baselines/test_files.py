"""memgate.baselines.files: paths, writing, reading and loading baselines; a report as the baseline side."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from recordkit import leak, suite

from memgate.baselines.files import (
    baseline_path,
    holds_same_figures,
    load_baseline,
    load_baseline_side,
    load_baselines,
    read_report,
    write_baseline,
)
from memgate.baselines.model import BASELINE_SCHEMA_VERSION, Baseline, baselines_from_report
from memgate.errors import BaselineError, ExitCode
from memgate.records import Environment, HeapSite, Report, SuiteStatus
from memgate.thresholds import in_force

from .conftest import sample_record


def test_write_is_stable_sorted_and_atomic(tmp_path: Path) -> None:
    baseline = Baseline.from_suite(sample_record())
    path = write_baseline(tmp_path, baseline)
    first = path.read_bytes()
    write_baseline(tmp_path, Baseline.from_suite(sample_record()))
    assert path.read_bytes() == first
    assert path == tmp_path / "unit.json"

    text = first.decode()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2) + "\n"
    assert list(data) == sorted(data)
    assert list(data["metrics"]) == sorted(data["metrics"])
    # One item per line: every site starts its own line.
    assert '\n      "fingerprint": ' in text
    assert "address" not in text and "origin" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unit.json"]  # no temporary file left


def test_round_trip(tmp_path: Path) -> None:
    baseline = Baseline.from_suite(sample_record(), commit="abc")
    write_baseline(tmp_path, baseline)
    loaded = load_baseline(tmp_path, "unit")
    assert loaded is not None
    assert loaded.to_json() == baseline.to_json()
    assert loaded.origin == str(tmp_path / "unit.json")
    assert load_baselines(tmp_path) == {"unit": loaded}


def test_non_ascii_and_odd_symbols_round_trip(tmp_path: Path) -> None:
    record = suite("unit", leaks=[leak("definite", 8, 1, "décode_\ufffd", 'operator<<"\\')])
    baseline = Baseline.from_suite(record)
    write_baseline(tmp_path, baseline)
    assert (tmp_path / "unit.json").read_bytes().isascii()
    loaded = load_baseline(tmp_path, "unit")
    assert loaded is not None
    assert [f.function for f in loaded.leaks[0].frames] == ["décode_\ufffd", 'operator<<"\\']


def test_missing_baseline_is_none_and_missing_folder_is_empty(tmp_path: Path) -> None:
    assert load_baseline(tmp_path, "unit") is None
    assert load_baselines(tmp_path / "absent") == {}


@pytest.mark.parametrize("suite_name", ["../escape", "a/b", ".hidden", "", "x" * 101, "/etc/passwd"])
def test_suite_name_cannot_leave_the_folder(tmp_path: Path, suite_name: str) -> None:
    with pytest.raises(BaselineError, match="not a usable suite name"):
        baseline_path(tmp_path / "baselines", suite_name)
    record = suite("unit").model_copy(update={"name": suite_name})
    with pytest.raises(BaselineError):
        write_baseline(tmp_path / "baselines", Baseline.from_suite(record))
    assert not (tmp_path / "baselines").exists() or list((tmp_path / "baselines").iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message", "hint"),
    [
        ("{not json", "not valid JSON (line 1, column 2", "memgate baseline update"),
        ("<<<<<<< HEAD\n{}", "not valid JSON", "merge conflict"),
        ("[]", "not a JSON object", "memgate baseline update"),
        ('{"suite": "unit"}', "tool: Field required", "memgate baseline update"),
        ('{"suite": "unit", "tool": "valgrind", "metrics": {"bogus": 1}}', "metrics.bogus",
         "baseline update"),
        ('{"suite": "unit", "tool": "valgrind", "surprise": 1}', "surprise: unknown key", "baseline update"),
        ('{"suite": "unit", "tool": "valgrind", "schema_version": 99}', "schema version 99, newer than this "
         f"memgate reads ({BASELINE_SCHEMA_VERSION})", "upgrade memgate"),
        ('{"suite": "other", "tool": "valgrind"}', "baseline of suite 'other', not 'unit'", "rename it"),
    ],
)
def test_bad_baseline_files(tmp_path: Path, content: str, message: str, hint: str) -> None:
    (tmp_path / "unit.json").write_text(content)
    with pytest.raises(BaselineError) as caught:
        load_baseline(tmp_path, "unit")
    assert message in caught.value.message
    assert hint in caught.value.hint
    assert caught.value.path == str(tmp_path / "unit.json")
    assert caught.value.exit_code is ExitCode.USAGE
    assert "\n" not in caught.value.one_line()
    with pytest.raises(BaselineError):
        load_baselines(tmp_path)


def test_non_utf8_baseline(tmp_path: Path) -> None:
    (tmp_path / "unit.json").write_bytes(b'{"suite": "\xff"}')
    with pytest.raises(BaselineError, match="not UTF-8"):
        load_baseline(tmp_path, "unit")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / "unit.json").write_text("old\n")
    folder.chmod(0o555)
    try:
        with pytest.raises(BaselineError, match="cannot write the baseline") as caught:
            write_baseline(folder, Baseline.from_suite(sample_record()))
        assert "writable" in caught.value.hint
        assert (folder / "unit.json").read_text() == "old\n"  # nothing overwritten
    finally:
        folder.chmod(0o755)


def test_baseline_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "baselines").write_text("")
    with pytest.raises(BaselineError, match="cannot write the baseline") as caught:
        write_baseline(tmp_path / "baselines", Baseline.from_suite(sample_record()))
    assert caught.value.path == str(tmp_path / "baselines" / "unit.json")
    with pytest.raises(BaselineError, match="not a folder") as caught:
        load_baselines(tmp_path / "baselines")
    assert caught.value.path == str(tmp_path / "baselines")
    assert "baseline_dir" in caught.value.hint


@pytest.mark.parametrize("below", ["x", "x/y"])
def test_baseline_folder_under_a_file_is_an_error_not_an_empty_folder(tmp_path: Path, below: str) -> None:
    """``exists()`` is False for a path through a file: taken as a missing folder, every suite was new."""
    file = tmp_path / "notes.txt"
    file.write_text("")
    with pytest.raises(BaselineError) as caught:
        load_baselines(file / below)
    assert caught.value.message == f"the baseline folder cannot exist: {file} is a file, not a folder"
    assert caught.value.path == str(file / below)
    assert caught.value.exit_code is ExitCode.USAGE
    assert "baseline_dir" in caught.value.hint
    with pytest.raises(BaselineError, match=re.escape(f"no such baseline file or folder: {file} is a file")):
        load_baseline_side(file / below)
    assert load_baselines(tmp_path / "absent" / "deeper") == {}, "a folder that can be made is just empty"


def make_report() -> Report:
    return Report(memgate_version="0.1.0", created_at="2024-01-01T00:00:00Z",
                  environment=Environment(git_commit="feedbeef"),
                  suites=(sample_record(), suite("other", tool="asan", tool_version=None)))


def test_report_as_baseline_side(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(make_report().model_dump_json(indent=2))

    assert read_report(path) == make_report()
    side = load_baseline_side(path)
    assert sorted(side) == ["other", "unit"]
    assert side["unit"].source_commit == "feedbeef"
    assert side["unit"].to_json() == baselines_from_report(make_report())["unit"].to_json()
    assert side["other"].tool == "asan"


def test_baseline_side_folder_and_single_file(tmp_path: Path) -> None:
    write_baseline(tmp_path, Baseline.from_suite(sample_record()))
    assert list(load_baseline_side(tmp_path)) == ["unit"]
    assert list(load_baseline_side(tmp_path / "unit.json")) == ["unit"]
    with pytest.raises(BaselineError, match="no such baseline file or folder"):
        load_baseline_side(tmp_path / "nope.json")


def test_bad_report_as_baseline_side(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text('{"suites": [], "schema_version": 7, "memgate_version": "9", "created_at": "x"}')
    with pytest.raises(BaselineError, match="schema version 7") as caught:
        load_baseline_side(path)
    assert caught.value.hint.startswith("upgrade memgate")

    crashed = make_report().model_copy(update={"suites": (suite("unit", status=SuiteStatus.CRASHED),)})
    path.write_text(crashed.model_dump_json())
    with pytest.raises(BaselineError, match="cannot be a baseline") as caught:
        load_baseline_side(path)
    assert caught.value.path == str(path)

    path.write_text('{"suites": "nope"}')
    with pytest.raises(BaselineError, match="not a memgate JSON report"):
        load_baseline_side(path)


def test_figures_within_their_noise_floor_and_other_heap_sites_leave_the_file_alone(tmp_path: Path) -> None:
    site = HeapSite(fingerprint="f", site="example.com/m.Parse", bytes=1024, blocks=8)
    written = Baseline(suite="bench", tool="go", metrics={"gc_cycles": 28, "gc_pause_total_ns": 2_000_000},
                       tests={"BenchmarkParse": {"allocs_per_op": 3, "bytes_per_op": 96}}, heap_sites=(site,))
    write_baseline(tmp_path, written)
    thresholds = in_force()

    def again(**changes: object) -> bool:
        return holds_same_figures(tmp_path, written.model_copy(update=changes), thresholds)

    # GC figures move on every run of unchanged code (their default floors: 20% or 2, 50% or 1 ms), the
    # profile's stacks too: a baseline update on every merge must not commit them each time.
    assert again(metrics={"gc_cycles": 30, "gc_pause_total_ns": 2_900_000}, source_commit="abc")
    assert again(heap_sites=(site.model_copy(update={"blocks": 9, "bytes": 1040}),))
    assert not again(metrics={"gc_cycles": 40, "gc_pause_total_ns": 2_000_000})
    # Exact figures have no floor: one allocation per op more is a new baseline.
    assert not again(tests={"BenchmarkParse": {"allocs_per_op": 4, "bytes_per_op": 96}})
    assert not again(tests={"BenchmarkParse": {"allocs_per_op": 3, "bytes_per_op": 96}, "BenchmarkNew": {}})
    assert not holds_same_figures(tmp_path, written.model_copy(update={"metrics": {"gc_cycles": 30}}))
