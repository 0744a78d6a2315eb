"""The history of the baselines, read from real repositories whose baseline commits memgate's own
writer made: first parent only, bounded, broken files skipped, shallow clones degraded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recordkit import suite

from memgate.baselines.files import write_baseline
from memgate.baselines.history import BaselineHistory, read_history
from memgate.baselines.model import Baseline
from memgate.baselines.repository import UnknownRefError
from memgate.metrics import METRIC_NAMES

from .conftest import Remote, commit_all, git, write

pytestmark = pytest.mark.usefixtures("isolated_git")


def commit_baselines(repo: Path, message: str, **peaks: int) -> str:
    """One commit of the baselines memgate writes for suites with these heap peaks."""
    for name, peak in peaks.items():
        record = suite(name, metrics={"heap_peak_bytes": peak, "alloc_calls": peak // 100})
        write_baseline(repo / "baselines", Baseline.from_suite(record, commit="0" * 40))
    return commit_all(repo, message)


def new_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "-b", "main")
    write(repo, "src.c", "int main(void) { return 0; }\n")
    commit_all(repo, "source")
    return repo


def values(history: BaselineHistory, suite_name: str = "unit") -> list[int]:
    return [point.value for point in history.series(suite_name, "heap_peak_bytes")]


def test_the_commits_that_changed_the_baselines_oldest_first_with_date_and_figures(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    first = commit_baselines(repo, "baselines 1", unit=1000, integration=5000)
    write(repo, "src.c", "int main(void) { return 1; }\n")
    commit_all(repo, "code only: not a baseline commit")
    second = commit_baselines(repo, "baselines 2", unit=1100)
    third = commit_baselines(repo, "baselines 3", unit=1200, integration=5100)

    history = read_history(repo, "main", "baselines")

    assert [c.commit for c in history.commits] == [first, second, third]
    assert [c.subject for c in history.commits] == ["baselines 1", "baselines 2", "baselines 3"]
    assert history.commits[0].date == git(repo, "log", "-1", "--format=%cI", first)
    assert values(history) == [1000, 1100, 1200]
    assert values(history, "integration") == [5000, 5000, 5100]  # unchanged files still count
    assert history.suites() == ["integration", "unit"]
    written = json.loads((repo / "baselines" / "unit.json").read_text())["metrics"]
    assert history.metrics_of("unit") == [m for m in METRIC_NAMES if m in written]  # the usual order
    assert {"heap_peak_bytes", "alloc_calls", "leak_definite_bytes"} <= set(written)
    assert history.tip == third and history.complete and history.notes == ()


def test_the_limit_keeps_the_last_baseline_commits(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    for peak in range(1000, 1600, 100):
        commit_baselines(repo, f"peak {peak}", unit=peak)
    history = read_history(repo, "main", "baselines", limit=3)
    assert values(history) == [1300, 1400, 1500]
    assert history.complete  # a full clone: the limit, not the clone, ended it


def test_a_merged_branch_counts_as_its_merge_commit_only(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit_baselines(repo, "main's first", unit=1000)
    git(repo, "checkout", "--quiet", "-b", "feature")
    commit_baselines(repo, "feature step 1", unit=1500)
    commit_baselines(repo, "feature step 2", unit=1700)
    git(repo, "checkout", "--quiet", "main")
    write(repo, "src.c", "int main(void) { return 2; }\n")
    commit_all(repo, "main moves on")
    git(repo, "merge", "--quiet", "--no-ff", "-m", "merge feature", "feature")
    merge = git(repo, "rev-parse", "HEAD")

    history = read_history(repo, "main", "baselines")

    assert [c.subject for c in history.commits] == ["main's first", "merge feature"]
    assert history.commits[-1].commit == merge
    assert values(history) == [1000, 1700]
    # The feature branch itself has all three of its own commits.
    assert values(read_history(repo, "feature", "baselines")) == [1000, 1500, 1700]


def test_broken_and_newer_baselines_in_the_history_are_skipped_with_a_note(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit_baselines(repo, "good", unit=1000, integration=5000)
    write(repo, "baselines/unit.json", '{"suite": "unit", <<<<<<< HEAD\n')
    broken = commit_all(repo, "a merge conflict committed by mistake")
    newer = json.loads((repo / "baselines" / "integration.json").read_text()) | {"schema_version": 99}
    write(repo, "baselines/integration.json", json.dumps(newer))
    commit_all(repo, "a baseline of a newer memgate")
    commit_baselines(repo, "fixed", unit=1200, integration=5200)

    history = read_history(repo, "main", "baselines")

    assert len(history.commits) == 4
    assert values(history) == [1000, 1200]  # the broken commits hold no figures of unit
    assert values(history, "integration") == [5000, 5000, 5200]
    [note] = history.notes
    assert note.startswith("skipped 2 unreadable baseline files in the history: ")
    assert f"baselines/unit.json at {broken[:12]} (the file is not valid JSON" in note
    assert "baselines/integration.json at " in note and "schema version 99" in note


def test_a_shallow_clone_gives_what_it_has_and_says_how_deep_to_fetch(tmp_path: Path, remote: Remote) -> None:
    work = remote.clone("work")
    for peak in (1100, 1200, 1300):
        write(work, "src.c", f"int main(void) {{ return {peak}; }}\n")
        commit_all(work, "code")
        commit_baselines(work, f"peak {peak}", unit=peak)
    git(work, "push", "--quiet", "origin", "main")
    shallow = remote.clone("shallow", "--depth", "2")

    history = read_history(shallow, "origin/main", "baselines", limit=20)

    # Two commits: the last baseline commit and its parent, the boundary, whose "added every file"
    # is no change.
    assert [c.subject for c in history.commits] == ["peak 1300"]
    assert not history.complete
    [note] = history.notes
    # 2 commits held 1 baseline commit: 20 of them take about 40.
    assert note.startswith("this clone is shallow: its 2 commits of origin/main hold 1 of the last 20 "
                           "baseline commits; fetch about 40 commits of history "
                           "(git fetch --no-tags --depth=40 origin main), or check out the full history")

    git(shallow, "fetch", "--quiet", "--no-tags", "--depth=40", "origin", "main")
    deeper = read_history(shallow, "origin/main", "baselines", limit=20)
    assert values(deeper) == [1000, 1100, 1200, 1300] and deeper.notes == ()


def test_a_ref_the_clone_lacks_is_an_error_naming_the_fetch(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    with pytest.raises(UnknownRefError) as raised:
        read_history(repo, "origin/main", "baselines")
    assert "git fetch" in raised.value.one_line()


def test_a_baseline_folder_below_the_top_of_the_repository(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    project = repo / "project"
    for peak in (1000, 1100):
        record = suite("unit", metrics={"heap_peak_bytes": peak})
        write_baseline(project / "memory", Baseline.from_suite(record))
        commit_all(repo, f"peak {peak}")
    history = read_history(project, "HEAD", "memory")
    assert values(history) == [1000, 1100]
