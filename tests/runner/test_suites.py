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
