"""memgate.vcs against real repositories: a bare repository in a temp folder is the remote, clones of
it are the CI checkouts. Setup and checks use the git command line, independently of GitPython."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from memgate.errors import BaselineError, ExitCode, MemgateError
from memgate.vcs import (
    DEFAULT_AUTHOR_EMAIL,
    DEFAULT_AUTHOR_NAME,
    SOURCE_TRAILER,
    CommitResult,
    GitIdentity,
    NotARepositoryError,
    NotDefaultBranchError,
    PushError,
    UnknownRefError,
    VcsError,
    changed_paths,
    commit_baselines,
    current_branch,
    is_shallow,
    materialise_at,
    merge_base,
    read_file_at,
    read_tree_at,
    remote_default_branch,
    resolve_commit,
    resolve_identity,
)

DEV = GitIdentity("Dev Eloper", "dev@example.test")
NO_WAIT: Callable[[float], None] = lambda seconds: None  # noqa: E731


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout.strip()


def baseline(suite: str, peak: int, calls: int = 100, source: str = "0" * 40) -> str:
    """A baseline file shaped like memgate.baseline writes them: sorted keys, one item per line."""
    data = {"schema_version": 1, "suite": suite, "tool": "valgrind", "source_commit": source,
            "metrics": {"alloc_calls": calls, "heap_peak_bytes": peak, "leak_definite_bytes": 0}}
    return json.dumps(data, sort_keys=True, indent=2) + "\n"


CONFIG = '[[suite]]\nname = "unit"\ncommand = ["./unit"]\ntool = "valgrind"\n\n[thresholds]\n' \
         'heap_peak_bytes = { fail = "10%" }\n'


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git config; a known identity for the setup commits."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    for variable, value in DEV.env().items():
        monkeypatch.setenv(variable, value)
    for variable in ("MEMGATE_GIT_AUTHOR_NAME", "MEMGATE_GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(variable, raising=False)


@dataclass
class Remote:
    bare: Path
    root: Path
    seed_sha: str

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def clone(self, name: str, *args: str) -> Path:
        git(self.root, "clone", "--quiet", *args, self.url, name)
        return self.root / name

    def file(self, path: str, ref: str = "main") -> str:
        return git(self.bare, "show", f"{ref}:{path}") + "\n"

    def main_sha(self) -> str:
        return git(self.bare, "rev-parse", "main")


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A bare repository that refuses non-fast-forward pushes and logs every update of main."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    git(bare, "config", "receive.denyNonFastForwards", "true")
    git(bare, "config", "core.logAllRefUpdates", "always")
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "--quiet", bare.as_uri(), "seed")
    (seed / "baselines").mkdir()
    (seed / "baselines" / "unit.json").write_text(baseline("unit", 1000))
    (seed / "baselines" / "integration.json").write_text(baseline("integration", 5000))
    (seed / "memgate.toml").write_text(CONFIG)
    (seed / "src.c").write_text("int main(void) { return 0; }\n")
    git(seed, "add", ".")
    git(seed, "commit", "--quiet", "-m", "seed")
    git(seed, "push", "--quiet", "origin", "main")
    return Remote(bare=bare, root=tmp_path, seed_sha=git(seed, "rev-parse", "HEAD"))


def write(clone: Path, path: str, text: str) -> None:
    (clone / path).parent.mkdir(parents=True, exist_ok=True)
    (clone / path).write_text(text)


def commit_all(clone: Path, message: str) -> str:
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", message)
    return git(clone, "rev-parse", "HEAD")


def assert_history_only_fast_forwards(bare: Path) -> None:
    """Every update of main in the bare repository's reflog kept the previous tip: no force push."""
    entries = git(bare, "reflog", "show", "--format=%H", "refs/heads/main").splitlines()
    assert len(entries) >= 2
    for newer, older in zip(entries, entries[1:], strict=False):
        subprocess.run(["git", "merge-base", "--is-ancestor", older, newer], cwd=bare, check=True)


# ------------------------------------------------------------------------------- reading the gate


def test_target_baseline_is_read_even_when_the_pull_request_raised_it(remote: Remote) -> None:
    clone = remote.clone("pr")
    git(clone, "checkout", "--quiet", "-b", "feature")
    write(clone, "baselines/unit.json", baseline("unit", 999_999))
    write(clone, "memgate.toml", CONFIG.replace("10%", "900%"))
    write(clone, "src.c", "int main(void) { return 1; }\n")
    head = commit_all(clone, "raise my own gate")
    write(clone, "baselines/unit.json", baseline("unit", 5_000_000))  # and more, uncommitted

    assert read_file_at(clone, "origin/main", "baselines/unit.json") == baseline("unit", 1000).encode()
    assert read_file_at(clone, "origin/main", "memgate.toml") == CONFIG.encode()
    assert read_file_at(clone, head, "baselines/unit.json") == baseline("unit", 999_999).encode()
    base = merge_base(clone, "HEAD", "origin/main")
    assert base == remote.seed_sha
    assert changed_paths(clone, base, "HEAD", under=["baselines", "memgate.toml"]) == (
        "baselines/unit.json", "memgate.toml")
    assert changed_paths(clone, base, "HEAD") == ("baselines/unit.json", "memgate.toml", "src.c")
    assert changed_paths(clone, base, "HEAD", under=["baselines/integration.json"]) == ()


def test_missing_file_and_folder_at_the_target(remote: Remote) -> None:
    clone = remote.clone("c")
    assert read_file_at(clone, "origin/main", "baselines/nightly.json") is None
    assert read_tree_at(clone, "origin/main", "no-such-folder") == {}
    assert read_tree_at(clone, "origin/main", "baselines") == {
        "integration.json": baseline("integration", 5000).encode(),
        "unit.json": baseline("unit", 1000).encode(),
    }
    with pytest.raises(VcsError, match="is a folder"):
        read_file_at(clone, "origin/main", "baselines")
    with pytest.raises(VcsError, match="outside the repository"):
        read_file_at(clone, "origin/main", "../secrets")


def test_a_baseline_dir_that_is_a_file_at_the_target_is_an_error(remote: Remote) -> None:
    """Not "no baselines at the target", which would read every suite as new."""
    from memgate.config import load_config
    from memgate.target import gate_at

    clone = remote.clone("c")
    git(clone, "rm", "--quiet", "-r", "baselines")
    write(clone, "baselines", "not a folder\n")
    target = commit_all(clone, "baselines is a file now")
    git(clone, "checkout", "--quiet", "-b", "feature", remote.seed_sha)
    config = load_config(clone / "memgate.toml")
    assert gate_at(config, remote.seed_sha).baselines.keys() == {"unit", "integration"}
    with pytest.raises(BaselineError) as raised:
        gate_at(config, target)
    assert raised.value.exit_code == 2
    assert f"is a file at the target ({target[:12]})" in raised.value.one_line()


def test_a_corrupt_baseline_at_the_target_is_named_as_it_is_there(remote: Remote) -> None:
    """Not by the temporary copy it was read from, which is gone when the error is printed."""
    from memgate.config import load_config
    from memgate.target import gate_at

    clone = remote.clone("c")
    write(clone, "baselines/unit.json", "<<<<<<< HEAD\n{}\n")
    target = commit_all(clone, "a conflict committed")
    git(clone, "checkout", "--quiet", "-b", "feature", remote.seed_sha)
    with pytest.raises(BaselineError) as raised:
        gate_at(load_config(clone / "memgate.toml"), target)
    line = raised.value.one_line()
    assert raised.value.path == os.path.join("baselines", "unit.json")
    assert f"at the target ({target[:12]})" in line and "on the target branch" in line
    assert "memgate-target-" not in line


def test_paths_are_relative_to_a_config_folder_inside_the_checkout(remote: Remote) -> None:
    clone = remote.clone("c")
    write(clone, "proj/memgate.toml", CONFIG)
    write(clone, "proj/baselines/unit.json", baseline("unit", 42))
    sha = commit_all(clone, "a project in a subfolder")
    proj = clone / "proj"
    assert read_file_at(proj, sha, "baselines/unit.json") == baseline("unit", 42).encode()
    assert read_file_at(proj, sha, clone / "proj" / "memgate.toml") == CONFIG.encode()
    assert read_tree_at(proj, sha, "baselines") == {"unit.json": baseline("unit", 42).encode()}
    assert changed_paths(proj, remote.seed_sha, sha, under=["baselines", "memgate.toml"]) == (
        "baselines/unit.json", "memgate.toml")
    assert changed_paths(proj, remote.seed_sha, sha) == (
        "baselines/unit.json", "memgate.toml")
    assert changed_paths(proj, remote.seed_sha, sha, under=[".."]) == (
        "baselines/unit.json", "memgate.toml")


def test_materialise_writes_the_targets_config_and_baselines(remote: Remote, tmp_path: Path) -> None:
    clone = remote.clone("pr")
    write(clone, "baselines/unit.json", baseline("unit", 999_999))
    write(clone, "baselines/extra.json", baseline("extra", 1))
    write(clone, "memgate.toml", CONFIG.replace("10%", "900%"))
    dest = tmp_path / "target"
    result = materialise_at(clone, "origin/main", ["memgate.toml", "baselines", "missing.toml"], dest)

    assert result.commit == remote.seed_sha
    assert result.written == ("baselines/integration.json", "baselines/unit.json", "memgate.toml")
    assert result.missing == ("missing.toml",)
    assert (dest / "memgate.toml").read_text() == CONFIG
    assert (dest / "baselines" / "unit.json").read_text() == baseline("unit", 1000)
    assert sorted(p.name for p in (dest / "baselines").iterdir()) == ["integration.json", "unit.json"]
    with pytest.raises(VcsError, match="not empty") as error:
        materialise_at(clone, "origin/main", ["memgate.toml"], dest)
    assert error.value.hint == "give a new, empty temporary folder"


def test_not_a_repository_and_unknown_ref(tmp_path: Path, remote: Remote) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotARepositoryError) as error:
        read_file_at(plain, "main", "memgate.toml")
    assert error.value.exit_code is ExitCode.USAGE
    assert error.value.one_line() == (
        f"not inside a git repository ({plain}): run memgate in the checkout of your project "
        "(actions/checkout, git clone)")

    clone = remote.clone("c")
    with pytest.raises(UnknownRefError) as unknown:
        read_file_at(clone, "origin/release", "memgate.toml")
    assert unknown.value.message == "this clone does not have 'origin/release'"
    assert unknown.value.hint.startswith(
        "fetch the target branch: git fetch --no-tags --depth=50 origin release:refs/remotes/origin/release")
    with pytest.raises(UnknownRefError, match="not a git ref"):
        resolve_commit(clone, "--output=/tmp/x")


def test_shallow_clone_without_the_base_commit_gives_a_fetch_hint(remote: Remote) -> None:
    work = remote.clone("work")
    write(work, "src.c", "int main(void) { return 2; }\n")
    commit_all(work, "second")
    git(work, "push", "--quiet", "origin", "main")

    shallow = remote.clone("shallow", "--depth=1")
    assert is_shallow(shallow)
    with pytest.raises(UnknownRefError) as error:
        read_file_at(shallow, remote.seed_sha, "baselines/unit.json")
    assert error.value.message == f"this clone does not have {remote.seed_sha!r} (this clone is shallow)"
    assert error.value.hint == (
        f"fetch that commit: git fetch --no-tags --depth=50 origin {remote.seed_sha}, or check out the "
        "full history (actions/checkout fetch-depth: 0; GitLab GIT_DEPTH: 0)")

    # Following the hint works.
    git(shallow, "fetch", "--quiet", "--no-tags", "--depth=50", "origin", remote.seed_sha)
    assert read_file_at(shallow, remote.seed_sha, "baselines/unit.json") == baseline("unit", 1000).encode()


def test_shallow_clone_that_does_not_reach_the_merge_base(remote: Remote) -> None:
    work = remote.clone("work")
    git(work, "checkout", "--quiet", "-b", "feature")
    for n in range(1, 4):
        write(work, "src.c", f"int main(void) {{ return {n}; }}\n")
        commit_all(work, f"feature {n}")
    git(work, "push", "--quiet", "origin", "feature")
    git(work, "checkout", "--quiet", "main")
    write(work, "other.c", "int x;\n")
    commit_all(work, "main moves on")
    git(work, "push", "--quiet", "origin", "main")

    pr = remote.clone("pr", "--depth=1", "--branch=feature")
    git(pr, "fetch", "--quiet", "--depth=1", "origin", "main:refs/remotes/origin/main")
    with pytest.raises(UnknownRefError) as error:
        merge_base(pr, "HEAD", "origin/main")
    assert "does not reach the merge-base" in error.value.message
    assert error.value.hint.startswith("deepen the history: git fetch --no-tags --deepen=200 origin")
    git(pr, "fetch", "--quiet", "--no-tags", "--deepen=200", "origin")
    assert merge_base(pr, "HEAD", "origin/main") == remote.seed_sha


# ---------------------------------------------------------------------------- committing baselines


def test_no_change_commits_nothing(remote: Remote) -> None:
    clone = remote.clone("c")
    write(clone, "baselines/unit.json", baseline("unit", 1000))  # the same figures again
    result = commit_baselines(clone, ["baselines/unit.json"], "Update baselines", remote.seed_sha,
                              push=True)
    assert result == CommitResult(None, False, 0, ("baselines/unit.json",),
                                  "baselines unchanged: nothing to commit")
    assert git(clone, "rev-parse", "HEAD") == remote.seed_sha
    assert remote.main_sha() == remote.seed_sha


def test_commit_holds_only_the_baselines_with_skip_ci_and_the_source(remote: Remote) -> None:
    clone = remote.clone("c")
    write(clone, "baselines/unit.json", baseline("unit", 1200))
    write(clone, "baselines/new-suite.json", baseline("new-suite", 7))
    write(clone, "src.c", "int main(void) { return 3; }\n")
    git(clone, "add", "src.c")  # staged by someone else: must stay out of the baseline commit
    result = commit_baselines(clone, ["baselines/unit.json", "baselines/new-suite.json"],
                              "Update memgate baselines", remote.seed_sha, push=False, env={})

    assert result.pushed is False and result.attempts == 0
    assert result.commit == git(clone, "rev-parse", "HEAD")
    assert result.paths == ("baselines/new-suite.json", "baselines/unit.json")
    assert git(clone, "show", "--name-only", "--format=", "HEAD").splitlines() == [
        "baselines/new-suite.json", "baselines/unit.json"]
    assert git(clone, "log", "-1", "--format=%B") == (
        f"Update memgate baselines [skip ci]\n\n{SOURCE_TRAILER}: {remote.seed_sha}")
    assert git(clone, "log", "-1", f"--format=%(trailers:key={SOURCE_TRAILER},valueonly)") == remote.seed_sha
    assert git(clone, "log", "-1", "--format=%an|%ae|%cn|%ce") == (
        f"{DEFAULT_AUTHOR_NAME}|{DEFAULT_AUTHOR_EMAIL}|{DEFAULT_AUTHOR_NAME}|{DEFAULT_AUTHOR_EMAIL}")
    assert git(clone, "diff", "--cached", "--name-only") == "src.c"  # still staged, not committed
    assert remote.main_sha() == remote.seed_sha


def test_identity_from_memgate_env_then_git_config(remote: Remote) -> None:
    clone = remote.clone("c")
    env = {"MEMGATE_GIT_AUTHOR_NAME": "Baseline Bot", "MEMGATE_GIT_AUTHOR_EMAIL": "bot@example.test",
           "GIT_AUTHOR_NAME": "Ignored"}
    assert resolve_identity(clone, env) == GitIdentity("Baseline Bot", "bot@example.test")
    assert resolve_identity(clone, {}) == GitIdentity(DEFAULT_AUTHOR_NAME, DEFAULT_AUTHOR_EMAIL)
    git(clone, "config", "user.name", "Configured")
    git(clone, "config", "user.email", "configured@example.test")
    assert resolve_identity(clone, {}) == GitIdentity("Configured", "configured@example.test")

    write(clone, "baselines/unit.json", baseline("unit", 1300))
    commit_baselines(clone, ["baselines/unit.json"], "Update", remote.seed_sha, push=False, env=env)
    assert git(clone, "log", "-1", "--format=%an|%ae") == "Baseline Bot|bot@example.test"


def test_a_removed_suites_baseline_is_committed_as_a_deletion(remote: Remote) -> None:
    clone = remote.clone("c")
    (clone / "baselines" / "integration.json").unlink()
    result = commit_baselines(clone, ["baselines/integration.json", "baselines/never-existed.json"],
                              "Drop the integration suite", remote.seed_sha, push=True)
    assert result.pushed and result.attempts == 1
    assert git(remote.bare, "ls-tree", "--name-only", "main", "baselines/") == "baselines/unit.json"


def test_refuses_to_run_off_the_default_branch(remote: Remote) -> None:
    clone = remote.clone("c")
    assert remote_default_branch(clone) == "main"
    git(clone, "checkout", "--quiet", "-b", "feature")
    write(clone, "baselines/unit.json", baseline("unit", 1))
    with pytest.raises(NotDefaultBranchError) as error:
        commit_baselines(clone, ["baselines/unit.json"], "Update", "HEAD", push=True)
    assert error.value.message == (
        "refusing to commit baselines on branch 'feature': the default branch is 'main'")
    with pytest.raises(NotDefaultBranchError):  # the CI's word beats the clone's
        commit_baselines(clone, ["baselines/unit.json"], "Update", "HEAD", push=False,
                         default_branch="trunk")
    assert git(clone, "rev-parse", "HEAD") == remote.seed_sha

    git(clone, "symbolic-ref", "--delete", "refs/remotes/origin/HEAD")
    assert remote_default_branch(clone) is None
    with pytest.raises(NotDefaultBranchError) as unknown:
        commit_baselines(clone, ["baselines/unit.json"], "Update", "HEAD", push=False)
    assert "$CI_DEFAULT_BRANCH" in unknown.value.hint

    forced = commit_baselines(clone, ["baselines/unit.json"], "Update", "HEAD", push=False,
                              allow_non_default=True)
    assert forced.commit == git(clone, "rev-parse", "feature")
    assert remote.main_sha() == remote.seed_sha


def test_detached_head_needs_the_branch_name(remote: Remote) -> None:
    clone = remote.clone("c")
    git(clone, "checkout", "--quiet", "--detach", "HEAD")  # how GitLab CI checks out
    assert current_branch(clone) is None
    write(clone, "baselines/unit.json", baseline("unit", 1100))
    with pytest.raises(VcsError, match="HEAD is detached") as error:
        commit_baselines(clone, ["baselines/unit.json"], "Update", "HEAD", push=True)
    assert "$CI_COMMIT_BRANCH" in error.value.hint
    result = commit_baselines(clone, ["baselines/unit.json"], "Update", "HEAD", push=True,
                              branch="main", default_branch="main")
    assert result.pushed and remote.main_sha() == result.commit


def test_refuses_to_push_commits_that_are_not_baselines(remote: Remote) -> None:
    clone = remote.clone("c")
    write(clone, "src.c", "int main(void) { return 9; }\n")
    commit_all(clone, "unpushed work")
    write(clone, "baselines/unit.json", baseline("unit", 1100))
    with pytest.raises(PushError, match="memgate pushes only baseline commits"):
        commit_baselines(clone, ["baselines/unit.json"], "Update", "HEAD", push=True)
    assert remote.main_sha() == remote.seed_sha
    assert git(clone, "log", "-1", "--format=%s") == "unpushed work"  # nothing committed either


def test_ignored_baselines_are_a_clear_error(remote: Remote) -> None:
    clone = remote.clone("c")
    write(clone, ".gitignore", "*.json\n")
    write(clone, "baselines/new-suite.json", baseline("new-suite", 1))
    with pytest.raises(VcsError) as error:
        commit_baselines(clone, ["baselines/new-suite.json"], "Update", "HEAD", push=False)
    assert error.value.message == ("git add failed: The following paths are ignored by one of your "
                                   ".gitignore files: baselines/new-suite.json")
    assert error.value.hint.startswith("remove the .gitignore pattern")
    assert git(clone, "rev-parse", "HEAD") == remote.seed_sha


def test_refuses_to_run_in_the_middle_of_a_merge(remote: Remote) -> None:
    clone = remote.clone("c")
    git(clone, "checkout", "--quiet", "-b", "other")
    write(clone, "src.c", "int other;\n")
    commit_all(clone, "other")
    git(clone, "checkout", "--quiet", "main")
    write(clone, "src.c", "int mine;\n")
    commit_all(clone, "mine")
    subprocess.run(["git", "merge", "--quiet", "other"], cwd=clone, capture_output=True)  # conflicts
    with pytest.raises(VcsError, match="in progress") as error:
        commit_baselines(clone, ["baselines/unit.json"], "Update", "HEAD", push=False)
    assert error.value.hint == "finish or abort it first"


def test_config_in_a_subfolder_and_absolute_baseline_paths(remote: Remote) -> None:
    clone = remote.clone("c")
    write(clone, "proj/baselines/unit.json", baseline("unit", 1))
    commit_all(clone, "project in a subfolder")
    git(clone, "push", "--quiet", "origin", "main")
    proj = clone / "proj"
    write(clone, "proj/baselines/unit.json", baseline("unit", 2))
    result = commit_baselines(proj, [proj / "baselines" / "unit.json"], "Update", "HEAD", push=True)
    assert result.paths == ("baselines/unit.json",)
    assert result.pushed
    assert remote.file("proj/baselines/unit.json") == baseline("unit", 2)
    assert remote.file("baselines/unit.json") == baseline("unit", 1000)


# ------------------------------------------------------------------------------------ racing pushes


def test_a_stale_clone_rebases_and_both_suites_land(remote: Remote) -> None:
    first, second = remote.clone("first"), remote.clone("second")
    write(first, "baselines/unit.json", baseline("unit", 1100, source="a" * 40))
    landed = commit_baselines(first, ["baselines/unit.json"], "Update unit", remote.seed_sha, push=True)
    assert (landed.pushed, landed.attempts) == (True, 1)

    write(second, "baselines/integration.json", baseline("integration", 5500, source="b" * 40))
    write(second, "src.c", "/* a build step touched me */\n")
    result = commit_baselines(second, ["baselines/integration.json"], "Update integration",
                              remote.seed_sha, push=True, sleep=NO_WAIT)
    assert git(second, "diff", "--name-only") == "src.c"  # kept, and not pushed
    assert git(second, "diff", "--cached", "--name-only") == ""
    assert remote.file("src.c") == "int main(void) { return 0; }\n"
    assert (result.pushed, result.attempts) == (True, 2)
    assert result.detail == f"pushed {result.commit[:12] if result.commit else ''} to origin/main (attempt 2)"
    assert remote.main_sha() == result.commit
    assert git(remote.bare, "rev-parse", "main~1") == landed.commit
    assert remote.file("baselines/unit.json") == baseline("unit", 1100, source="a" * 40)
    assert remote.file("baselines/integration.json") == baseline("integration", 5500, source="b" * 40)
    assert_history_only_fast_forwards(remote.bare)


def test_shallow_ci_checkouts_push_and_rebase(remote: Remote) -> None:
    """actions/checkout fetches one commit by default; GitLab twenty."""
    first, second = remote.clone("first", "--depth=1"), remote.clone("second", "--depth=1")
    write(first, "baselines/unit.json", baseline("unit", 1100, source="a" * 40))
    assert commit_baselines(first, ["baselines/unit.json"], "Update A", "HEAD", push=True).pushed
    write(second, "baselines/unit.json", baseline("unit", 1200, source="b" * 40))
    write(second, "baselines/integration.json", baseline("integration", 5100, source="b" * 40))
    result = commit_baselines(second, ["baselines/unit.json", "baselines/integration.json"], "Update B",
                              "HEAD", push=True, sleep=NO_WAIT)
    assert (result.pushed, result.attempts) == (True, 2)
    assert git(remote.bare, "log", "--format=%s", "main").splitlines() == [
        "Update B [skip ci]", "Update A [skip ci]", "seed"]
    assert remote.file("baselines/unit.json") == baseline("unit", 1200, source="b" * 40)
    assert_history_only_fast_forwards(remote.bare)


def test_same_suite_conflict_keeps_our_file_and_the_remotes_other_files(remote: Remote) -> None:
    first, second = remote.clone("first"), remote.clone("second")
    write(first, "baselines/unit.json", baseline("unit", 1100, source="a" * 40))
    write(first, "baselines/integration.json", baseline("integration", 6000, source="a" * 40))
    landed = commit_baselines(first, ["baselines/unit.json", "baselines/integration.json"], "Update A",
                              remote.seed_sha, push=True)

    write(second, "baselines/unit.json", baseline("unit", 1234, source="b" * 40))  # same lines: conflict
    write(second, "src.c", "/* a build step touched me */\n")
    result = commit_baselines(second, ["baselines/unit.json"], "Update B", remote.seed_sha, push=True,
                              sleep=NO_WAIT)
    assert (result.pushed, result.attempts) == (True, 2)
    assert remote.file("baselines/unit.json") == baseline("unit", 1234, source="b" * 40)
    assert remote.file("baselines/integration.json") == baseline("integration", 6000, source="a" * 40)
    assert git(remote.bare, "log", "--format=%s", "main").splitlines() == [
        "Update B [skip ci]", "Update A [skip ci]", "seed"]
    assert git(remote.bare, "rev-parse", "main~1") == landed.commit
    assert not (second / ".git" / "rebase-merge").exists()
    assert git(second, "diff", "--name-only") == "src.c"  # kept, and not pushed
    assert git(second, "diff", "--cached", "--name-only") == ""
    assert git(second, "stash", "list") == ""
    assert_history_only_fast_forwards(remote.bare)


def test_a_clean_textual_merge_of_one_baseline_is_not_accepted(remote: Remote) -> None:
    """Two measurements merged line by line are neither: our whole file must win."""
    lines = [f'  "metric_{n:02}": {n},' for n in range(30)]
    write(remote.root / "seed", "baselines/long.json", "{\n" + "\n".join(lines) + "\n}\n")
    commit_all(remote.root / "seed", "long baseline")
    git(remote.root / "seed", "push", "--quiet", "origin", "main")
    first, second = remote.clone("first"), remote.clone("second")
    ours_lines = list(lines)
    ours_lines[25] = '  "metric_25": 2500,'
    theirs = list(lines)
    theirs[2] = '  "metric_02": 200,'
    write(first, "baselines/long.json", "{\n" + "\n".join(theirs) + "\n}\n")
    commit_baselines(first, ["baselines/long.json"], "Update A", "HEAD", push=True)

    ours = "{\n" + "\n".join(ours_lines) + "\n}\n"
    write(second, "baselines/long.json", ours)
    result = commit_baselines(second, ["baselines/long.json"], "Update B", "HEAD", push=True, sleep=NO_WAIT)
    assert (result.pushed, result.attempts) == (True, 2)
    assert remote.file("baselines/long.json") == ours
    assert_history_only_fast_forwards(remote.bare)


def test_the_remote_already_has_our_baselines(remote: Remote) -> None:
    first, second = remote.clone("first"), remote.clone("second")
    for clone in (first, second):
        write(clone, "baselines/unit.json", baseline("unit", 1100))
    commit_baselines(first, ["baselines/unit.json"], "Update A", remote.seed_sha, push=True)
    tip = remote.main_sha()
    result = commit_baselines(second, ["baselines/unit.json"], "Update B", remote.seed_sha, push=True,
                              sleep=NO_WAIT)
    assert result == CommitResult(None, False, 1, ("baselines/unit.json",),
                                  "origin/main already has these baselines: nothing to push")
    assert remote.main_sha() == tip
    assert git(second, "rev-parse", "HEAD") == tip


@pytest.mark.parametrize("pipelines", [2, 3])
def test_concurrent_updates_all_land(remote: Remote, pipelines: int) -> None:
    """Pipelines finishing together, each with its own suite's file and all with the shared ``unit``
    suite's file: every commit lands, every own file survives, the last pusher's ``unit`` wins."""
    names = [f"suite-{chr(ord('a') + n)}" for n in range(pipelines)]
    sources = [chr(ord("a") + n) * 40 for n in range(pipelines)]
    clones = [remote.clone(name) for name in names]
    for clone, name, source in zip(clones, names, sources, strict=True):
        write(clone, f"baselines/{name}.json", baseline(name, 10, source=source))
        write(clone, "baselines/unit.json", baseline("unit", 2000 + ord(source[0]), source=source))
    start = threading.Barrier(pipelines)
    results: dict[int, CommitResult] = {}
    failures: list[BaseException] = []

    def update(index: int) -> None:
        try:
            start.wait()
            results[index] = commit_baselines(
                clones[index], [f"baselines/{names[index]}.json", "baselines/unit.json"],
                f"Update from {names[index]}", sources[index], push=True, backoff_seconds=0.05)
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=update, args=(i,)) for i in range(pipelines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert all(result.pushed for result in results.values())
    # One push from the common start wins at once; each later one lost a race at least once.
    assert sorted(result.attempts for result in results.values())[:2] in ([1, 2], [1, 3])

    log = git(remote.bare, "log", "--format=%s|%(trailers:key=Memgate-Source-Commit,valueonly,separator=)",
              "main").splitlines()
    assert sorted(log[:pipelines]) == [f"Update from {name} [skip ci]|{source}"
                                       for name, source in zip(names, sources, strict=True)]
    assert log[pipelines:] == ["seed|"]
    for name, source in zip(names, sources, strict=True):
        assert remote.file(f"baselines/{name}.json") == baseline(name, 10, source=source)
    last = next(i for i, result in results.items() if result.commit == remote.main_sha())
    assert remote.file("baselines/unit.json") == baseline("unit", 2000 + ord(sources[last][0]),
                                                          source=sources[last])
    assert remote.file("baselines/integration.json") == baseline("integration", 5000)
    assert_history_only_fast_forwards(remote.bare)


def test_gives_up_after_max_attempts_with_bounded_backoff(remote: Remote) -> None:
    """Every push loses a real race: our pre-push hook lets another clone land first, so the
    server's ref update fails after the advertisement (``[remote rejected] (failed to update ref)``)."""
    racer = remote.clone("racer")
    ours = remote.clone("ours")
    hook = ours / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        "cat >/dev/null\n"
        "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX\n"
        f"cd '{racer}' || exit 1\n"
        "echo racing >> baselines/integration.json\n"
        "git commit --quiet -am 'another pipeline' && git push --quiet origin main\n"
    )
    hook.chmod(0o755)
    delays: list[float] = []
    write(ours, "baselines/unit.json", baseline("unit", 1500))
    with pytest.raises(PushError) as error:
        commit_baselines(ours, ["baselines/unit.json"], "Update", remote.seed_sha, push=True,
                         max_attempts=3, backoff_seconds=1.0, sleep=delays.append)
    assert error.value.message == (
        "gave up pushing baselines to origin/main: rejected 3 times because other pushes landed first")
    assert "resource_group" in error.value.hint
    assert len(delays) == 2  # one wait before each retry, doubling, with jitter
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0
    assert git(remote.bare, "log", "--format=%s", "main").splitlines() == ["another pipeline"] * 3 + ["seed"]
    assert remote.file("baselines/unit.json") == baseline("unit", 1000)
    assert_history_only_fast_forwards(remote.bare)


def test_a_protected_branch_is_a_clear_error_not_a_retry(remote: Remote) -> None:
    hook = remote.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    clone = remote.clone("c")
    write(clone, "baselines/unit.json", baseline("unit", 1500))
    with pytest.raises(PushError) as error:
        commit_baselines(clone, ["baselines/unit.json"], "Update", remote.seed_sha, push=True)
    assert error.value.message == (
        "origin refused the baseline commit: [remote rejected] (pre-receive hook declined)")
    assert remote.main_sha() == remote.seed_sha


def test_credentials_in_the_remote_url_never_reach_the_error(remote: Remote,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:http")  # nothing listens on 127.0.0.1:9
    clone = remote.clone("c")
    git(clone, "remote", "set-url", "origin", "http://x-access-token:s3cr3t-T0KEN@127.0.0.1:9/repo.git")
    write(clone, "baselines/unit.json", baseline("unit", 1500))
    with pytest.raises(PushError) as error:
        commit_baselines(clone, ["baselines/unit.json"], "Update", remote.seed_sha, push=True)
    text = f"{error.value.one_line()} {error.value!r}"
    assert "s3cr3t-T0KEN" not in text
    assert error.value.message.startswith("could not fetch origin/main: fatal: unable to access")
    assert git(clone, "rev-parse", "HEAD") == remote.seed_sha  # nothing committed before the fetch failed


def test_errors_are_memgate_errors(tmp_path: Path) -> None:
    assert issubclass(VcsError, MemgateError)
    with pytest.raises(VcsError, match="max_attempts"):
        commit_baselines(tmp_path, [], "m", "HEAD", push=False, max_attempts=0)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_a_checkout_owned_by_someone_else_names_safe_directory(remote: Remote) -> None:
    clone = remote.clone("c")
    os.chown(clone, 65534, 65534)  # as in a CI container whose checkout belongs to the runner user
    try:
        with pytest.raises(NotARepositoryError) as error:
            read_file_at(clone, "HEAD", "memgate.toml")
    finally:
        os.chown(clone, 0, 0)
    assert error.value.message.startswith("git refuses this repository: ")
    assert error.value.hint == f"mark the checkout as safe: git config --global --add safe.directory {clone}"
