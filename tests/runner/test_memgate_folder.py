"""memgate writes ``.memgate/`` into the project: made with a ``.gitignore`` of ``*`` so that git never
sees its logs and reports (as pytest does with its cache). A real git repository, a real ASan run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import BuildProgram
from tests.robustness.clikit import memgate, suite_config


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout


def test_a_run_leaves_nothing_for_git_to_see(build_program: BuildProgram, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    program = build_program("memprog.c", flags=("-fsanitize=address",))
    git(tmp_path, "init", "-q")
    config = suite_config(tmp_path, [str(program), "leak_small"], "asan")
    git(tmp_path, "add", "memgate.toml")
    git(tmp_path, "commit", "-q", "-m", "config")
    run = memgate(capsys, "check", "--config", config, "--jobs", "1", "--markdown",
                  tmp_path / ".memgate" / "report.md")
    assert run.code == 1, run.err  # a new leak: what matters here is what the run left behind
    assert (tmp_path / ".memgate" / "artifacts" / "unit" / "stderr.log").is_file()
    assert (tmp_path / ".memgate" / "artifacts" / "report.json").is_file()
    assert (tmp_path / ".memgate" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert git(tmp_path, "status", "--porcelain", "--untracked-files=all") == ""
    # Run again: the folder is there, kept as it is.
    assert memgate(capsys, "run", "--config", config, "--jobs", "1").code == 0
    assert git(tmp_path, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_folder_of_the_users_own_is_left_alone(build_program: BuildProgram, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    program = build_program("memprog.c", flags=("-fsanitize=address",))
    config = suite_config(tmp_path, [str(program), "clean"], "asan", top='artifacts_dir = "logs"')
    assert memgate(capsys, "run", "--config", config, "--jobs", "1").code == 0
    assert (tmp_path / "logs" / "unit" / "stdout.log").is_file()
    assert not (tmp_path / "logs" / ".gitignore").exists() and not (tmp_path / ".memgate").exists()
    (tmp_path / ".memgate").mkdir()
    default = suite_config(tmp_path, [str(program), "clean"], "asan")
    assert memgate(capsys, "run", "--config", default, "--jobs", "1").code == 0
    assert not (tmp_path / ".memgate" / ".gitignore").exists()  # it was there before: not memgate's to make
