"""Running the chosen suites into one report (``memgate.runner.suites``): which suites, the report's
environment, and the one-line problems said for suites without usable figures. Parallel runs are in
test_schedule.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from recordkit import suite

from memgate.config import Config
from memgate.errors import ConfigError
from memgate.records import SuiteStatus
from memgate.runner.suite import LOGDIR_MARK
from memgate.runner.suites import describe_environment, make_report, select_suites, suite_problems

TWO = Config.model_validate({"suite": [{"name": "a", "command": ["true"], "tool": "rusage"},
                                       {"name": "b", "command": ["true"], "tool": "rusage"}]})


def test_all_suites_in_config_order_unless_some_are_named() -> None:
    assert [s.name for s in select_suites(TWO, [])] == ["a", "b"]
    assert [s.name for s in select_suites(TWO, ["b"])] == ["b"]
    with pytest.raises(ConfigError):
        select_suites(TWO, ["c"])


def test_the_commit_is_the_one_ci_builds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.setenv("CI_COMMIT_SHA", "c" * 40)
    assert describe_environment(tmp_path).git_commit == "c" * 40
    monkeypatch.delenv("CI_COMMIT_SHA")
    assert describe_environment(tmp_path).git_commit is None  # not a git work tree
    assert describe_environment(None).git_commit is None


def test_an_incomplete_suite_is_a_problem_whose_hint_says_what_its_logs_hold(tmp_path: Path) -> None:
    empty, printed = tmp_path / "empty", tmp_path / "printed"
    for folder in (empty, printed):
        folder.mkdir()
        (folder / LOGDIR_MARK).touch()
        (folder / "stderr.log").touch()
    (printed / "stderr.log").write_text("==1== ERROR\n")
    suites = [suite("ok"), suite("empty", status=SuiteStatus.INCOMPLETE, status_detail="no output"),
              suite("printed", status=SuiteStatus.INCOMPLETE)]
    suites = [s.model_copy(update={"artifacts_dir": str(tmp_path / s.name)}) for s in suites]
    problems = suite_problems(make_report(suites))
    assert [problem.message for problem in problems] == [
        "suite 'empty': no output", "suite 'printed': the tool output is incomplete"]
    assert problems[0].hint == "the logs there are empty: neither the tool nor the program printed anything"
    assert problems[1].hint == "the raw logs are kept there; see what the tool printed"


def test_files_a_tool_writes_for_memgate_are_not_what_it_printed(tmp_path: Path) -> None:
    """The runner knows no tool by name: the sanitizer options ASan's launch keeps in the log folder
    (non-empty) are skipped by their prefix, so the folder still counts as empty."""
    from memgate.tools import get_tool
    from memgate.tools.base import OWN_FILE_PREFIX, ToolOptions

    folder = tmp_path / "asan"
    folder.mkdir()
    (folder / LOGDIR_MARK).touch()
    get_tool("asan").launch(["true"], folder, ToolOptions())
    written = [path for path in folder.iterdir() if path.name != LOGDIR_MARK]
    assert [path.name.startswith(OWN_FILE_PREFIX) for path in written] == [True]
    assert written[0].stat().st_size > 0
    record = suite("asan", status=SuiteStatus.INCOMPLETE).model_copy(update={"artifacts_dir": str(folder)})
    (problem,) = suite_problems(make_report([record]))
    assert problem.hint == "the logs there are empty: neither the tool nor the program printed anything"
