"""The use cases (``memgate.app``) called directly, as the CLI and the action call them: a real
program under ASan, real baselines, and the results they return. The CLI end to end is in tests/cli/."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from memgate.app.check import CheckOptions, ReportPaths, check
from memgate.app.comment import CommentOptions, comment
from memgate.app.compare import CompareOptions, compare
from memgate.app.parse import ParseOptions, parse
from memgate.app.run import RunOptions, run
from memgate.app.update_baselines import BaselineUpdateOptions, update_baselines
from memgate.errors import ExitCode, UsageError
from memgate.records import SuiteStatus
from tests.conftest import BuildProgram

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _local_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside CI whatever runs these tests: no base commit, no forge, no job outputs."""
    for variable in ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_SHA", "CI_COMMIT_SHA"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def project(tmp_path: Path, build_program: BuildProgram) -> Path:
    """A folder with memgate.toml: one suite, memprog under ASan leaking 300 bytes in three blocks."""
    return write_suite(tmp_path, build_program("memprog.c", flags=("-fsanitize=address",)), "leak_many")


def write_suite(folder: Path, binary: Path, *scenarios: str) -> Path:
    command = json.dumps([str(binary), *scenarios])
    (folder / "memgate.toml").write_text(f'[[suite]]\nname = "unit"\ncommand = {command}\ntool = "asan"\n')
    return folder / "memgate.toml"


def test_run_returns_the_report_it_wrote(project: Path, tmp_path: Path) -> None:
    result = run(RunOptions(config=project, json=tmp_path / "report.json"))
    assert result.exit_code == ExitCode.PASS
    assert result.report_json == tmp_path / "report.json"
    (unit,) = result.report.suites
    assert unit.status is SuiteStatus.OK and unit.metrics["leak_definite_bytes"] == 300
    assert json.loads(result.report_json.read_text())["suites"][0]["name"] == "unit"


def test_baselines_then_check_passes_and_a_new_leak_fails(project: Path, tmp_path: Path,
                                                          build_program: BuildProgram) -> None:
    updated = update_baselines(BaselineUpdateOptions(config=project))
    assert updated.exit_code == ExitCode.PASS
    assert updated.written == (tmp_path / "baselines" / "unit.json",)

    passed = check(CheckOptions(run=RunOptions(config=project)))
    assert passed.exit_code == ExitCode.PASS and passed.comparison.outcome == "pass"
    assert passed.report_json == tmp_path / ".memgate" / "artifacts" / "report.json"

    binary = build_program("memprog.c", flags=("-fsanitize=address",))
    write_suite(tmp_path, binary, "leak_many", "leak_small")
    markdown = tmp_path / "out" / "report.md"
    failed = check(CheckOptions(run=RunOptions(config=project), reports=ReportPaths(markdown=markdown)))
    assert failed.exit_code == ExitCode.GATE_FAILED and failed.comparison.outcome == "fail"
    assert "leak_small" in markdown.read_text()

    compared = compare(CompareOptions(baseline=tmp_path / "baselines", current=failed.report_json))
    assert compared.exit_code == ExitCode.GATE_FAILED
    assert compared.comparison.outcome == "fail"


def test_a_crashed_run_becomes_no_baseline(tmp_path: Path, build_program: BuildProgram) -> None:
    config = write_suite(tmp_path, build_program("memprog.c", flags=("-fsanitize=address",)), "crash")
    result = update_baselines(BaselineUpdateOptions(config=config))
    assert result.exit_code == ExitCode.GATE_FAILED and result.written == ()
    assert not (tmp_path / "baselines").exists()


def test_push_without_commit_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--push needs --commit"):
        update_baselines(BaselineUpdateOptions(config=tmp_path / "missing.toml", push=True))


def test_parse_returns_the_record_it_printed(capsys: pytest.CaptureFixture[str]) -> None:
    result = parse(ParseOptions(tool="asan", files=(DATA / "asan" / "gcc-asan-leaks.log",), name="given"))
    assert result.exit_code == ExitCode.PASS
    assert result.record.name == "given" and result.record.status is SuiteStatus.OK
    assert json.loads(capsys.readouterr().out) == json.loads(result.record.model_dump_json())


def test_a_comment_outside_ci_is_not_posted_and_says_so(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    markdown = tmp_path / "report.md"
    markdown.write_text("## memgate\n")
    result = comment(CommentOptions(markdown=markdown))
    assert (result.exit_code, result.url) == (ExitCode.TOOL, None)
    assert "no comment posted" in capsys.readouterr().err


_REAL_OUTPUTS = [("asan", [path]) for path in sorted((DATA / "asan").glob("*.log"))] + [
    ("asan", sorted((DATA / "asan").glob("clang-asan-*.log"))[:3]),  # several processes
    *(("memcheck", [path]) for path in sorted((DATA / "memcheck").glob("*/memcheck.*.xml"))
      if path.parent.name != "user-fork-log-bug"),  # refused: two processes' XML in one file
    ("massif", [DATA / "massif" / "massif.out.4242"]),
]


@pytest.mark.parametrize(("tool", "files"), _REAL_OUTPUTS, ids=lambda value: str(value)[-40:])
def test_parse_prints_the_records_json_byte_for_byte(tool: str, files: list[Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON is written piece by piece (write_record_json), and is still exactly the record's
    ``model_dump_json(indent=2)``: leaks, errors, several processes, empty lists."""
    result = parse(ParseOptions(tool=tool, files=tuple(files)))
    assert capsys.readouterr().out == result.record.model_dump_json(indent=2) + "\n"


class _LargestWrite(io.StringIO):
    largest = 0

    def write(self, text: str) -> int:
        self.largest = max(self.largest, len(text))
        return super().write(text)


def test_parse_streams_its_json_never_holding_the_whole_text(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A report of 12,000 leak records (3,000 distinct sites) prints about 10 MB of JSON: no single
    write holds more than one record's text, so the whole text is never built in memory."""
    text = (DATA / "asan" / "clang-asan-leaks.log").read_text()
    start, end = text.index("Direct leak of"), text.index("SUMMARY:")
    records = "".join(re.sub(r" in (leak_\w+|main) ", rf" in \1_{copy} ", text[start:end])
                      for copy in range(3000))
    log = tmp_path / "asan.1234"
    log.write_text(f"{text[:start]}{records}SUMMARY: AddressSanitizer: {412 * 3000} byte(s) leaked in "
                   f"{6 * 3000} allocation(s).\n")
    out = _LargestWrite()
    monkeypatch.setattr("sys.stdout", out)
    result = parse(ParseOptions(tool="asan", files=(log,)))
    assert result.exit_code == ExitCode.PASS and len(result.record.leaks) == 12_000
    assert out.getvalue() == result.record.model_dump_json(indent=2) + "\n"
    assert len(out.getvalue()) > 8_000_000 and out.largest < 4_000
