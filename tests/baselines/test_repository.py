"""memgate.baselines.repository against real repositories: reading files, folders and changes at a commit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memgate.baselines.repository import (
    NotARepositoryError,
    UnknownRefError,
    VcsError,
    changed_paths,
    is_shallow,
    materialise_at,
    merge_base,
    read_file_at,
    read_tree_at,
    resolve_commit,
)
from memgate.errors import ExitCode

from .conftest import (
    CONFIG,
    Remote,
    baseline,
    commit_all,
    git,
    write,
)

pytestmark = pytest.mark.usefixtures("isolated_git")  # no user or system git config


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
