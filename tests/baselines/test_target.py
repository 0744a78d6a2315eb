"""memgate.baselines.target: the gate read at a pull request's target commit, in real repositories."""

from __future__ import annotations

import os

import pytest

from memgate.baselines.target import target_at
from memgate.config import load_config
from memgate.errors import BaselineError

from .conftest import (
    Remote,
    commit_all,
    git,
    write,
)

pytestmark = pytest.mark.usefixtures("isolated_git")  # no user or system git config


def test_a_baseline_dir_that_is_a_file_at_the_target_is_an_error(remote: Remote) -> None:
    """Not "no baselines at the target", which would read every suite as new."""
    clone = remote.clone("c")
    git(clone, "rm", "--quiet", "-r", "baselines")
    write(clone, "baselines", "not a folder\n")
    target = commit_all(clone, "baselines is a file now")
    git(clone, "checkout", "--quiet", "-b", "feature", remote.seed_sha)
    config = load_config(clone / "memgate.toml")
    assert target_at(config, remote.seed_sha).baselines.keys() == {"unit", "integration"}
    with pytest.raises(BaselineError) as raised:
        target_at(config, target)
    assert raised.value.exit_code == 2
    assert f"is a file at the target ({target[:12]})" in raised.value.one_line()


def test_a_corrupt_baseline_at_the_target_is_named_as_it_is_there(remote: Remote) -> None:
    """Not by the temporary copy it was read from, which is gone when the error is printed."""
    clone = remote.clone("c")
    write(clone, "baselines/unit.json", "<<<<<<< HEAD\n{}\n")
    target = commit_all(clone, "a conflict committed")
    git(clone, "checkout", "--quiet", "-b", "feature", remote.seed_sha)
    with pytest.raises(BaselineError) as raised:
        target_at(load_config(clone / "memgate.toml"), target)
    line = raised.value.one_line()
    assert raised.value.path == os.path.join("baselines", "unit.json")
    assert f"at the target ({target[:12]})" in line and "on the target branch" in line
    assert "memgate-target-" not in line
