"""``memgate history`` and the trend in ``memgate check``'s comment, end to end: a repository whose
baseline commits ``memgate baseline update`` made from real valgrind runs of tests/programs/memprog.c
(its ``churn=N`` makes N more allocations: alloc_calls and heap_total_bytes move)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from memgate.app.history import comment_history
from memgate.baselines.model import Baseline
from memgate.cli import main
from memgate.comparison import compare
from memgate.config import load_config
from memgate.records import SuiteRecord
from tests.cli.test_check import git_in, write_config
from tests.conftest import BuildProgram

pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")


class Project:
    """A git repository on main whose baselines are updated by real runs, one commit per update."""

    def __init__(self, folder: Path, binary: Path) -> None:
        self.folder, self.binary = folder, binary
        folder.mkdir()
        self.git = git_in(folder)
        self.git("init", "-q", "-b", "main")
        self.config = write_config(folder, binary, "valgrind", "churn=0")

    def update_baselines(self, churn: int) -> str:
        write_config(self.folder, self.binary, "valgrind", f"churn={churn}")
        assert main(["baseline", "update", "--config", str(self.config), "--jobs", "1"]) == 0
        self.git("add", "memgate.toml", "baselines")
        self.git("commit", "-q", "-m", f"baselines at churn={churn}")
        return self.git("rev-parse", "HEAD")

    def baseline_at(self, commit: str) -> dict[str, int]:
        metrics: dict[str, int] = json.loads(self.git("show", f"{commit}:baselines/unit.json"))["metrics"]
        return metrics


@pytest.fixture
def no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("GITHUB_ACTIONS", "GITLAB_CI", "MEMGATE_BASE_REF", "MEMGATE_CONFIG", "MEMGATE_JSON"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def project(tmp_path: Path, build_program: BuildProgram, no_ci: None) -> tuple[Project, list[str]]:
    """Three baseline commits (churn 10, 20, 30) and a commit in between that changes no baseline."""
    project = Project(tmp_path / "repo", build_program("memprog.c"))
    commits = [project.update_baselines(10), project.update_baselines(20)]
    (project.folder / "README").write_text("code, not baselines\n")
    project.git("add", "README")
    project.git("commit", "-q", "-m", "docs")
    commits.append(project.update_baselines(30))
    return project, commits


def test_history_prints_each_suite_and_metric_with_commit_and_date(
    project: tuple[Project, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, commits = project
    assert main(["history", "--config", str(repo.config)]) == 0
    out = capsys.readouterr().out

    assert out.startswith(f"baselines of HEAD ({commits[-1][:12]}): 3 baseline commits (at most 20), "
                          "oldest first\n\nsuite unit\n")
    calls = [repo.baseline_at(commit)["alloc_calls"] for commit in commits]
    assert calls[0] < calls[1] < calls[2]  # each churn step is 10 more allocations
    for commit, value in zip(commits, calls, strict=True):
        date = repo.git("log", "-1", "--format=%cI", commit)
        row = rf"^(alloc_calls)?\s+{commit[:12]}\s+{re.escape(date)}\s+{value}$"
        assert re.search(row, out, re.MULTILINE)
    assert "docs" not in out

    assert main(["history", "--config", str(repo.config), "--metric", "alloc_calls", "--suite", "unit"]) == 0
    only = capsys.readouterr().out
    assert "alloc_calls" in only and "heap_total_bytes" not in only and "leak_definite_bytes" not in only
    with pytest.raises(SystemExit) as usage:
        main(["history", "--config", str(repo.config), "--metric", "heap_peak"])
    assert usage.value.code == 2 and "invalid choice: 'heap_peak'" in capsys.readouterr().err


def test_history_json_gives_the_same_as_data(project: tuple[Project, list[str]],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    repo, commits = project
    assert main(["history", "--config", str(repo.config), "--json", "--limit", "2"]) == 0
    data = json.loads(capsys.readouterr().out)

    assert [commit["commit"] for commit in data["commits"]] == commits[1:]  # the last 2
    assert data["commits"][0]["subject"] == "baselines at churn=20"
    assert data["ref"] == "HEAD" and data["tip"] == commits[-1] and data["complete"] is True
    assert data["suites"]["unit"]["heap_total_bytes"] == [
        {"commit": commit, "date": repo.git("log", "-1", "--format=%cI", commit),
         "value": repo.baseline_at(commit)["heap_total_bytes"]} for commit in commits[1:]]


def test_check_charts_the_changed_metric_with_this_change_last(
    project: tuple[Project, list[str]], tmp_path: Path
) -> None:
    repo, commits = project
    write_config(repo.folder, repo.binary, "valgrind", "churn=40")  # the change: 10 more allocations
    markdown = tmp_path / "comment.md"
    report = tmp_path / "report.json"
    main(["check", "--config", str(repo.config), "--jobs", "1", "--markdown", str(markdown),
          "--json", str(report)])

    text = markdown.read_text()
    current = json.loads(report.read_text())["suites"][0]["metrics"]["alloc_calls"]
    calls = [repo.baseline_at(commit)["alloc_calls"] for commit in commits]
    shas = ", ".join(f'"{commit[:7]}"' for commit in commits)
    chart = ("```mermaid\nxychart-beta\n  title \"unit: alloc_calls\"\n"
             f'  x-axis [{shas}, "this change"]\n  y-axis "count"\n'
             f"  line [{', '.join(map(str, calls))}, {current}]\n```")
    assert chart in text
    assert current == calls[-1] + 10
    assert "### 📈 Trend on HEAD" in text

    # compare, given the project's config, charts the same from the same report.
    compared = tmp_path / "compare.md"
    main(["compare", str(repo.folder / "baselines"), str(report), "--config", str(repo.config),
          "--markdown", str(compared)])
    assert chart in compared.read_text()


def test_check_without_a_change_has_no_trend(project: tuple[Project, list[str]], tmp_path: Path) -> None:
    repo, _ = project
    markdown = tmp_path / "comment.md"
    assert main(["check", "--config", str(repo.config), "--jobs", "1", "--markdown", str(markdown)]) == 0
    assert "Trend" not in markdown.read_text() and "mermaid" not in markdown.read_text()


def test_a_shallow_clone_degrades_to_a_note(project: tuple[Project, list[str]], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    repo, commits = project
    shallow = tmp_path / "shallow"
    git_in(tmp_path)("clone", "-q", "--depth", "2", repo.folder.as_uri(), str(shallow))
    assert main(["history", "--config", str(shallow / "memgate.toml")]) == 0
    captured = capsys.readouterr()
    assert f"{commits[-1][:12]}" in captured.out and commits[1][:12] not in captured.out
    # The default branch is origin's, as the clone recorded it. Its 2 commits hold 1 baseline commit
    # (the other is the clone's boundary): 20 of them take about 40.
    assert captured.out.startswith("baselines of origin/main ")
    assert ("memgate: note: this clone is shallow: its 2 commits of origin/main hold 1 of the last 20 "
            "baseline commits; fetch about 40 commits of history (git fetch --no-tags --depth=40 origin "
            "main), or check out the full history") in captured.err


def test_a_history_git_cannot_give_is_a_note_for_the_comment_never_an_error(
    project: tuple[Project, list[str]]
) -> None:
    repo, _ = project
    config = load_config(repo.config)
    record = SuiteRecord.model_validate_json(json.dumps({
        "name": "unit", "tool": "valgrind", "status": "ok", "metrics": {"alloc_calls": 1}}))
    comparison = compare([record], {})
    history = comment_history(config, comparison, "origin/main")  # this clone has no origin
    assert history is not None and history.commits == ()
    assert history.notes[0].startswith("no trend chart: this clone does not have 'origin/main'")
    # Nothing changed, or charts are off: no history, and git is not even asked for the missing ref.
    unchanged = compare([record], {"unit": Baseline.from_suite(record)})
    assert comment_history(config, unchanged, "origin/main") is None
    assert comment_history(config.model_copy(update={"history_limit": 0}), comparison, "HEAD") is None


def test_a_damaged_object_store_is_a_note_for_the_comment_never_an_internal_error(
    project: tuple[Project, list[str]], tmp_path: Path
) -> None:
    repo, _ = project
    damaged = tmp_path / "damaged"
    shutil.copytree(repo.folder, damaged)
    for loose in (damaged / ".git" / "objects").glob("??/*"):
        loose.write_bytes(b"not a git object")  # every blob, tree and commit unreadable
    config = load_config(damaged / "memgate.toml")
    record = SuiteRecord.model_validate_json(json.dumps({
        "name": "unit", "tool": "valgrind", "status": "ok", "metrics": {"alloc_calls": 1}}))
    history = comment_history(config, compare([record], {}), "HEAD")
    assert history is not None and history.commits == ()
    assert history.notes[0].startswith("no trend chart:")
