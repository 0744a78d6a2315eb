"""A reader that leaves (``memgate ... | head``) changes nothing but what is printed: the reports
are written and the exit code is the command's own, through a real pipe closed by its reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from memgate.records import SuiteRecord, combine_processes
from memgate.tools import get_tool

DATA = Path(__file__).parent.parent / "data"


def run_with_reader_gone(*argv: str | Path, stderr_too: bool = False) -> tuple[int, str]:
    """``memgate ARGV`` whose stdout (and stderr) is a pipe closed before memgate writes to it; its
    exit code and, when stderr is not that pipe, what it wrote there."""
    process = subprocess.Popen(
        [sys.executable, "-m", "memgate", *map(str, argv)], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if stderr_too else subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    process.stdout.close()  # the reader leaves at once
    with process:
        err = process.stderr.read().decode() if process.stderr else ""
        return process.wait(timeout=120), err


def failing_report(tmp_path: Path) -> Path:
    """A report with new memory errors: `memgate compare` against no baseline fails (exit 1)."""
    processes = get_tool("valgrind").parse(list((DATA / "memcheck" / "errors").glob("*.xml")))
    suite = SuiteRecord(name="unit", tool="valgrind", processes=tuple(processes),
                        metrics=combine_processes(processes))
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"schema_version": 1, "memgate_version": "0.1.0",
                                  "created_at": "2024-01-01T00:00:00+00:00",
                                  "suites": [suite.model_dump(mode="json")]}))
    (tmp_path / "baselines").mkdir()
    return report


@pytest.mark.parametrize("stderr_too", [False, True], ids=["stdout", "stdout and stderr"])
def test_a_failing_gate_still_fails_and_writes_its_report(tmp_path: Path, stderr_too: bool) -> None:
    report = failing_report(tmp_path)
    markdown = tmp_path / "comment.md"
    code, err = run_with_reader_gone("compare", tmp_path / "baselines", report, "--markdown", markdown,
                                     stderr_too=stderr_too)
    assert code == 1, err
    assert "new" in markdown.read_text()
    assert "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize(("log", "expected"), [("clang-asan-leaks.log", 0), ("clang-lsan-crash.log", 3)])
def test_parse_keeps_its_exit_code(log: str, expected: int) -> None:
    code, err = run_with_reader_gone("parse", "--tool", "asan", DATA / "asan" / log)
    assert code == expected, err
    assert "Traceback" not in err and "internal error" not in err
