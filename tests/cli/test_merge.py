"""Sharded runs (issue 14, part 1): ``memgate run --shard`` jobs, their reports joined by ``memgate
merge`` and judged by ``memgate compare`` as one ``memgate check`` of all the suites would be; real
programs under real ASan and Valgrind, real git repositories, the comment over real HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakeforge import FakeForge

from memgate.cli import main
from memgate.records import REPORT_SCHEMA_VERSION
from tests.baselines.conftest import Remote, git, isolated_git, remote
from tests.cli.test_check import git_in
from tests.cli.test_comment import pull_request, server
from tests.conftest import BuildProgram


@pytest.fixture(autouse=True)
def _local_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside CI whatever runs these tests: no base commit, no forge, no job outputs."""
    for variable in ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_SHA", "CI_COMMIT_SHA", "MEMGATE_JSON",
                     "MEMGATE_CONFIG", "MEMGATE_BASE_REF"):
        monkeypatch.delenv(variable, raising=False)


@dataclass(frozen=True)
class Programs:
    plain: Path
    asan: Path


@pytest.fixture
def programs(build_program: BuildProgram) -> Programs:
    return Programs(plain=build_program("memprog.c"),
                    asan=build_program("memprog.c", flags=("-fsanitize=address",)))


def write_suites(folder: Path, programs: Programs, *alpha: str, thresholds: str = "") -> Path:
    """Three suites: alpha (ASan, running ``alpha``'s scenarios), beta and gamma (memcheck)."""
    alpha = alpha or ("leak_many",)
    suites = [("alpha", programs.asan, "asan", alpha), ("beta", programs.plain, "memcheck", ("leak_small",)),
              ("gamma", programs.plain, "memcheck", ("clean",))]
    text = "".join(f'[[suite]]\nname = "{name}"\ncommand = {json.dumps([str(binary), *args])}\n'
                   f'tool = "{tool}"\n\n' for name, binary, tool, args in suites)
    path = folder / "memgate.toml"
    path.write_text(text + thresholds)
    return path


def repository_of_suites(tmp_path: Path, programs: Programs) -> tuple[Path, Callable[..., str], Path]:
    """A new git repository on main holding the three suites' config (not committed yet), the reports
    ignored: the repository, its ``git`` and the config."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git_ = git_in(repo)
    git_("init", "-q", "-b", "main")
    (repo / ".gitignore").write_text(".memgate/\n*.json\n!baselines/*.json\n")
    return repo, git_, write_suites(repo, programs)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def memgate(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Result:
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def run_shards(capsys: pytest.CaptureFixture[str], config: Path, folder: Path, total: int = 2) -> list[Path]:
    """``memgate run --shard I/total`` for each I, as the jobs of a matrix would: their reports."""
    reports = []
    for index in range(1, total + 1):
        report = folder / f"shard-{index}.json"
        ran = memgate(capsys, "run", "--config", config, "--jobs", "1", "--shard", f"{index}/{total}",
                      "--json", report)
        assert ran.code == 0, ran.err
        reports.append(report)
    return reports


def suite_names(report: Path) -> list[str]:
    return [suite["name"] for suite in json.loads(report.read_text())["suites"]]


REPORTS = ("markdown", "junit", "codequality", "sarif", "openmetrics")


def report_flags(folder: Path) -> list[str]:
    return [argument for name in REPORTS for argument in (f"--{name}", str(folder / name))]


def test_shards_merged_then_compared_give_what_one_check_of_all_the_suites_gives(
    tmp_path: Path, programs: Programs, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_suites(tmp_path, programs)
    assert memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1").code == 0
    write_suites(tmp_path, programs, "leak_many", "leak_small")  # alpha gains a leak site: the gate fails

    (tmp_path / "check").mkdir()
    checked = memgate(capsys, "check", "--config", config, "--jobs", "1", "--json", tmp_path / "check.json",
                      *report_flags(tmp_path / "check"))
    shards = run_shards(capsys, config, tmp_path)
    assert [suite_names(shard) for shard in shards] == [["alpha", "gamma"], ["beta"]]
    # The second shard's report first: the merged report lists beta first, compare in the config's order.
    merged = memgate(capsys, "merge", shards[1], shards[0], "--json", tmp_path / "merged.json")
    assert merged.code == 0 and "merged 3 suites of 2 reports" in merged.err
    assert suite_names(tmp_path / "merged.json") == ["beta", "alpha", "gamma"]
    (tmp_path / "compare").mkdir()
    compared = memgate(capsys, "compare", "--config", config, tmp_path / "merged.json",
                       "--json", tmp_path / "compared.json", *report_flags(tmp_path / "compare"))

    assert checked.code == compared.code == 1
    assert "new definite leak at leak_small" in compared.out
    assert compared.out == checked.out, "the same table, notes and verdict line"
    for name in REPORTS:
        assert (tmp_path / "compare" / name).read_text() == (tmp_path / "check" / name).read_text(), name
    from_check, from_compare = (json.loads((tmp_path / name).read_text())
                                for name in ("check.json", "compared.json"))
    assert from_compare["comparison"] == from_check["comparison"]
    assert from_compare["exit_code"] == from_check["exit_code"] == 1


def test_a_suite_in_two_reports_with_different_figures_is_exit_2_naming_both_files(
    tmp_path: Path, programs: Programs, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_suites(tmp_path, programs)
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    for report in (first, second):  # two runs of one suite: their durations differ, if nothing else
        assert memgate(capsys, "run", "--config", config, "--suite", "beta", "--json", report).code == 0
    refused = memgate(capsys, "merge", first, second, "--json", tmp_path / "merged.json")
    assert refused.code == 2
    assert refused.err.count("\n") == 1, "one line"
    assert f"suite 'beta' is in both {first} and {second}, with different figures" in refused.err
    assert "give each suite to one shard only" in refused.err
    assert not (tmp_path / "merged.json").exists()

    # The same report twice (an artifact downloaded twice, or merged before) is the same suite: kept once.
    again = memgate(capsys, "merge", first, first, "--json", tmp_path / "merged.json")
    assert again.code == 0
    assert suite_names(tmp_path / "merged.json") == ["beta"]


def test_reports_of_different_commits_are_refused(
    tmp_path: Path, programs: Programs, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, git_, config = repository_of_suites(tmp_path, programs)
    git_("add", "-A")
    git_("commit", "-qm", "suites")
    assert memgate(capsys, "run", "--config", config, "--shard", "1/2", "--json", repo / "s1.json").code == 0
    git_("commit", "-q", "--allow-empty", "-m", "one more commit")
    assert memgate(capsys, "run", "--config", config, "--shard", "2/2", "--json", repo / "s2.json").code == 0

    refused = memgate(capsys, "merge", repo / "s1.json", repo / "s2.json", "--json", repo / "merged.json")
    assert refused.code == 2
    first, second = git_("rev-parse", "HEAD~1"), git_("rev-parse", "HEAD")
    assert (f"the reports are of different commits: {repo / 's1.json'} of {first}, {repo / 's2.json'} "
            f"of {second}") in refused.err
    assert "merge the reports of one pipeline's shards" in refused.err
    assert not (repo / "merged.json").exists()


@pytest.fixture
def two_shards(tmp_path: Path, programs: Programs, capsys: pytest.CaptureFixture[str]) -> list[Path]:
    """The two shards' reports of the three suites (alpha and gamma; beta), no baselines."""
    return run_shards(capsys, write_suites(tmp_path, programs), tmp_path)


def edit(path: Path, change: dict[str, object], suite: int | None = None) -> None:
    """A hand edit of a report: keys of the report, or of its ``suite``-th suite."""
    data = json.loads(path.read_text())
    (data if suite is None else data["suites"][suite]).update(change)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("version", "expected"), [
    (1, f"the report has schema version 1 (memgate 0.0.9), and this memgate merges version "
        f"{REPORT_SCHEMA_VERSION} only"),
    (REPORT_SCHEMA_VERSION + 1, f"the file has schema version {REPORT_SCHEMA_VERSION + 1}, newer than this "
                                "memgate reads"),
])
def test_a_report_of_another_schema_is_refused(
    two_shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int, expected: str
) -> None:
    edit(two_shards[1], {"schema_version": version, "memgate_version": "0.0.9"})
    refused = memgate(capsys, "merge", *two_shards, "--json", tmp_path / "merged.json")
    assert refused.code == 2
    assert expected in refused.err and str(two_shards[1]) in refused.err
    assert not (tmp_path / "merged.json").exists()


def test_differing_tool_versions_are_kept_and_noted(
    two_shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A matrix whose runners have two valgrind versions: each suite keeps its own, and it is said."""
    real = json.loads(two_shards[0].read_text())["suites"][1]["tool_version"]  # gamma, memcheck
    assert real and real.startswith("valgrind-")
    edit(two_shards[1], {"tool_version": "valgrind-3.99.0"}, suite=0)  # beta, memcheck
    merged = memgate(capsys, "merge", *two_shards, "--json", tmp_path / "merged.json")
    assert merged.code == 0
    note = (f"the shards ran memcheck in 2 versions ({real}: gamma ({two_shards[0]}); valgrind-3.99.0: "
            f"beta ({two_shards[1]}))")
    assert f"memgate: note: {note}" in merged.err
    suites = {suite["name"]: suite for suite in json.loads((tmp_path / "merged.json").read_text())["suites"]}
    assert (suites["gamma"]["tool_version"], suites["beta"]["tool_version"]) == (real, "valgrind-3.99.0")
    assert note in suites["gamma"]["notes"] and note in suites["beta"]["notes"]
    assert suites["alpha"]["notes"] == [], "ASan's version did not differ"


def test_a_shard_without_a_report_leaves_its_suites_incomplete_never_passing(
    two_shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "memgate.toml"
    assert memgate(capsys, "merge", *two_shards, "--json", tmp_path / "all.json").code == 0
    merged = tmp_path / "all.json"
    updated = memgate(capsys, "baseline", "update", "--config", config, "--from-report", merged)
    assert updated.code == 0
    assert memgate(capsys, "compare", "--config", config, tmp_path / "all.json").code == 0

    assert memgate(capsys, "merge", two_shards[0], "--json", tmp_path / "merged.json").code == 0
    compared = memgate(capsys, "compare", "--config", config, tmp_path / "merged.json")
    assert compared.code == 3, "incomplete figures: neither a pass nor a fail"
    assert re.search(r"^beta +status +ok +incomplete", compared.out, re.MULTILINE)
    missing = f"not in the report {tmp_path / 'merged.json'}: the job that runs it gave no report"
    assert missing in compared.out


def test_a_shard_beyond_the_suites_runs_none_and_merges_to_nothing_more(
    two_shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "shard-4.json"
    ran = memgate(capsys, "run", "--config", tmp_path / "memgate.toml", "--shard", "4/4", "--json", empty)
    assert ran.code == 0 and suite_names(empty) == []
    assert memgate(capsys, "merge", *two_shards, empty, "--json", tmp_path / "merged.json").code == 0
    assert suite_names(tmp_path / "merged.json") == ["alpha", "gamma", "beta"]


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1", "a/b"])
def test_a_shard_that_is_not_index_of_total_is_a_usage_error(
    shard: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--shard", shard])
    assert exit_.value.code == 2
    assert f"'{shard}' is not INDEX/TOTAL with 1 <= INDEX <= TOTAL" in capsys.readouterr().err


def test_compare_refuses_a_baseline_and_base_ref_together(
    two_shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = memgate(capsys, "compare", "--base-ref", "main", tmp_path, two_shards[0])
    assert refused.code == 2
    assert "--base-ref reads the baselines from the target branch, and a BASELINE was given" in refused.err


def test_compare_base_ref_reads_baselines_and_thresholds_from_the_target_branch(
    tmp_path: Path, programs: Programs, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pull request adds a leak and accepts it in its own tree (its baselines and a loose
    threshold); its merged shards still fail against the target branch's gate."""
    repo, git_, config = repository_of_suites(tmp_path, programs)
    assert memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1").code == 0
    git_("add", "-A")
    git_("commit", "-qm", "baselines")
    target = git_("rev-parse", "HEAD")
    git_("checkout", "-qb", "pr")
    write_suites(repo, programs, "leak_many", "leak_small",
                 thresholds='[thresholds]\nleak_definite_bytes = { fail = "+1MiB" }\n')
    assert memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1").code == 0
    git_("commit", "-qam", "accept my leak")

    shards = run_shards(capsys, config, repo)
    assert memgate(capsys, "merge", *shards, "--json", repo / "merged.json").code == 0
    own_tree = memgate(capsys, "compare", "--config", config, repo / "merged.json")
    assert own_tree.code == 0, "against its own tree the request would pass"
    gated = memgate(capsys, "compare", "--config", config, repo / "merged.json", "--base-ref", target,
                    "--markdown", tmp_path / "pr.md")
    assert gated.code == 1
    markdown = (tmp_path / "pr.md").read_text()
    assert "leak_small" in markdown
    assert "baselines/alpha.json" in markdown and "memgate.toml" in markdown, "the comment says it was edited"


def test_compare_comment_posts_the_one_comment_check_would_post(
    pull_request: Path, server: FakeForge, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A GitHub pull request that adds a leak site, against the local fake GitHub: the merged report's
    comparison posts the one comment, and a check of all the suites updates it with the same body."""
    shard = tmp_path / "shard-1.json"
    assert memgate(capsys, "run", "--config", pull_request, "--shard", "1/1", "--json", shard).code == 0
    assert memgate(capsys, "merge", shard, "--json", tmp_path / "merged.json").code == 0

    compared = memgate(capsys, "compare", "--config", pull_request, tmp_path / "merged.json", "--comment")
    assert compared.code == 1
    (posted,) = server.comments_on(7)
    assert posted.body.startswith("<!-- memgate:report -->") and "leak_small" in posted.body
    assert "posted the comment" in compared.err
    outputs = (tmp_path / "output.txt").read_text()
    assert "verdict=fail" in outputs and f"issuecomment-{posted.id}" in outputs
    assert f"report-json={(tmp_path / 'merged.json').resolve()}" in outputs

    checked = memgate(capsys, "check", "--config", pull_request, "--jobs", "1", "--comment")
    assert checked.code == 1
    (updated,) = server.comments_on(7)
    assert updated.id == posted.id and "updated the comment" in checked.err
    assert updated.body == posted.body, "one check of all the suites says the same"
    assert server.github_token not in compared.out + compared.err + outputs


@pytest.mark.usefixtures("isolated_git")
def test_baseline_update_from_a_merged_report_commits_and_pushes_on_the_default_branch(
    remote: Remote, programs: Programs, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = remote.clone("ci")
    git(clone, "rm", "-q", "-r", "baselines")
    config = write_suites(clone, programs)
    (clone / ".gitignore").write_text(".memgate/\nshard-*.json\nmerged.json\n")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "three suites")
    git(clone, "push", "-q", "origin", "main")
    tip = remote.main_sha()

    shards = run_shards(capsys, config, clone)
    assert memgate(capsys, "merge", *shards, "--json", clone / "merged.json").code == 0
    updated = memgate(capsys, "baseline", "update", "--config", config,
                      "--from-report", clone / "merged.json", "--commit", "--push")
    assert updated.code == 0, updated.err
    assert f"pushed {remote.main_sha()[:12]} to origin/main" in updated.out
    assert git(remote.bare, "rev-parse", "main~1") == tip
    assert "[skip ci]" in git(remote.bare, "log", "-1", "--format=%s", "main")
    assert git(remote.bare, "diff", "--name-only", "main~1", "main").split() == [
        "baselines/alpha.json", "baselines/beta.json", "baselines/gamma.json"]
    beta = json.loads(remote.file("baselines/beta.json"))
    assert beta["tool"] == "memcheck" and beta["metrics"]["leak_definite_bytes"] == 16
    assert beta["source_commit"] == tip, "the commit the shards ran on"
    assert json.loads(remote.file("baselines/alpha.json"))["metrics"]["leak_definite_bytes"] == 300


__all__ = ["isolated_git", "pull_request", "remote", "server"]  # fixtures shared with other test modules
