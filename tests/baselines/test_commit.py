"""memgate.baselines.commit against real repositories: the baseline commit, the default-branch rule
and pushes that race other pipelines."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from memgate.baselines.commit import (
    SOURCE_TRAILER,
    CommitResult,
    NotDefaultBranchError,
    PushError,
    check_can_commit,
    commit_baselines,
)
from memgate.baselines.repository import (
    DEFAULT_AUTHOR_EMAIL,
    DEFAULT_AUTHOR_NAME,
    GitIdentity,
    VcsError,
    current_branch,
    remote_default_branch,
    resolve_identity,
)
from memgate.errors import MemgateError

from .conftest import (
    NO_WAIT,
    Remote,
    assert_history_only_fast_forwards,
    baseline,
    commit_all,
    git,
    write,
)

pytestmark = pytest.mark.usefixtures("isolated_git")  # no user or system git config

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


def test_the_check_before_the_suites_run_is_the_same_rule(remote: Remote) -> None:
    """``baseline update --commit`` refuses before running anything, with the message the commit gives,
    and now for everything the commit needs: a detached HEAD without a branch and an unknown default
    branch were found only after the suites had run."""
    clone = remote.clone("c")
    check_can_commit(clone, push=True)  # on main: nothing to refuse
    git(clone, "checkout", "--quiet", "-b", "feature")
    with pytest.raises(NotDefaultBranchError) as error:
        check_can_commit(clone, push=False)
    assert error.value.message == (
        "refusing to commit baselines on branch 'feature': the default branch is 'main'")
    assert "--force" in error.value.hint
    check_can_commit(clone, push=False, branch="refs/heads/main")  # the CI's word beats the clone's
    check_can_commit(clone, push=False, allow_non_default=True)
    with pytest.raises(NotDefaultBranchError):
        check_can_commit(clone, push=False, branch="main", default_branch="trunk")

    git(clone, "symbolic-ref", "--delete", "refs/remotes/origin/HEAD")
    with pytest.raises(NotDefaultBranchError, match="cannot tell the default branch of 'origin'"):
        check_can_commit(clone, push=False)
    git(clone, "checkout", "--quiet", "--detach", "HEAD")
    with pytest.raises(VcsError, match="HEAD is detached and no branch to update was given") as detached:
        check_can_commit(clone, push=False, default_branch="main")
    assert "--branch" in detached.value.hint
    check_can_commit(clone, push=True, branch="main", default_branch="main")

    git(clone, "remote", "remove", "origin")
    with pytest.raises(VcsError, match="no git remote named 'origin'"):
        check_can_commit(clone, push=True, branch="main", default_branch="main")
    assert git(clone, "status", "--porcelain") == ""  # the checks changed nothing


def test_a_push_that_cannot_happen_is_found_before_the_run(remote: Remote) -> None:
    clone = remote.clone("c")
    write(clone, "src.c", "int main(void) { return 9; }\n")
    commit_all(clone, "unpushed work")
    with pytest.raises(PushError, match="memgate pushes only baseline commits"):
        check_can_commit(clone, push=True)
    check_can_commit(clone, push=False)  # committing alone needs no fetch
    git(clone, "remote", "set-url", "origin", str(remote.root / "nowhere.git"))
    with pytest.raises(PushError, match="could not fetch origin/main"):
        check_can_commit(clone, push=True)


@pytest.mark.parametrize(("name", "email", "words"), [
    ("<>", "dev@example.test", "name consists only of disallowed characters"),
    ("...", "dev@example.test", "name consists only of disallowed characters"),
    ("Dev\nEloper", "dev@example.test", "'Dev\\nEloper'"),
    ("Dev", "dev@example.test>", "git refuses the identity"),
])
def test_an_identity_git_refuses_is_found_before_the_run(
    name: str, email: str, words: str, remote: Remote
) -> None:
    clone = remote.clone("c")
    env = {"MEMGATE_GIT_AUTHOR_NAME": name, "MEMGATE_GIT_AUTHOR_EMAIL": email}
    with pytest.raises(VcsError) as error:
        check_can_commit(clone, push=False, env=env)
    assert words in error.value.message and "MEMGATE_GIT_AUTHOR_NAME" in error.value.hint
    write(clone, "baselines/unit.json", baseline("unit", 1))
    with pytest.raises(VcsError):
        commit_baselines(clone, ["baselines/unit.json"], "Update", "HEAD", push=False, env=env)
    assert git(clone, "rev-parse", "HEAD") == remote.seed_sha


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
    assert current_branch(clone) == "main", "the commit went onto the branch, not a detached HEAD"
    assert git(clone, "rev-parse", "main") == result.commit


def test_a_detached_head_is_moved_onto_the_branch_only_when_nothing_is_lost(remote: Remote) -> None:
    clone = remote.clone("c")
    git(clone, "checkout", "--quiet", "--detach", "HEAD")
    git(clone, "branch", "--quiet", "-D", "main")  # a GitLab checkout has no local branch
    write(clone, "baselines/unit.json", baseline("unit", 1100))
    result = commit_baselines(clone, ["baselines/unit.json"], "Update", "HEAD", push=False,
                              branch="main", default_branch="main")
    assert current_branch(clone) == "main" and git(clone, "rev-parse", "main") == result.commit
    assert git(clone, "rev-parse", "main~1") == remote.seed_sha

    other = remote.clone("o")
    git(other, "checkout", "--quiet", "--detach", "HEAD")
    git(other, "checkout", "--quiet", "main")
    write(other, "src.c", "int main(void) { return 5; }\n")
    local_work = commit_all(other, "local work on main")
    git(other, "checkout", "--quiet", "--detach", remote.seed_sha)
    with pytest.raises(VcsError, match="the local branch 'main' has commits that HEAD does not"):
        check_can_commit(other, push=False, branch="main", default_branch="main")
    write(other, "baselines/unit.json", baseline("unit", 1200))
    with pytest.raises(VcsError, match="has commits that HEAD does not"):
        commit_baselines(other, ["baselines/unit.json"], "Update", "HEAD", push=False,
                         branch="main", default_branch="main")
    assert git(other, "rev-parse", "main") == local_work




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
