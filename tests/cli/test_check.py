"""``memgate check`` end to end: real programs, real tools, real baselines, real exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from memgate.cli import main
from tests.conftest import BuildProgram

CONFIG = """\
[[suite]]
name = "{name}"
command = ["{binary}"{args}]
tool = "{tool}"
timeout = "{timeout}"
"""


def git_in(repo: Path) -> Callable[..., str]:
    """``git(*args)`` in ``repo`` with a known identity; what it printed."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    return git


def write_config(folder: Path, binary: Path, tool: str, *args: str, name: str = "unit",
                 timeout: str = "60s") -> Path:
    quoted = "".join(f', "{arg}"' for arg in args)
    path = folder / "memgate.toml"
    path.write_text(CONFIG.format(name=name, binary=binary, args=quoted, tool=tool, timeout=timeout))
    return path


def repo_with_baselines(tmp_path: Path, binary: Path, tool: str) -> tuple[Path, Callable[..., str], Path]:
    """A git repository on main whose one commit holds the config (``binary leak_many`` under ``tool``)
    and the baselines memgate wrote for it: the repository, its ``git`` and the config's path."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = git_in(repo)
    git("init", "-q", "-b", "main")
    config = write_config(repo, binary, tool, "leak_many")
    assert main(["baseline", "update", "--config", str(config)]) == 0
    git("add", "memgate.toml", "baselines")
    git("commit", "-q", "-m", "baselines")
    return repo, git, config


def check(config: Path, *extra: str) -> int:
    return main(["check", "--config", str(config), "--jobs", "1", *extra])


@pytest.fixture
def plain(build_program: BuildProgram) -> Path:
    return build_program("memprog.c")


@pytest.fixture
def asan(build_program: BuildProgram) -> Path:
    return build_program("memprog.c", flags=("-fsanitize=address",))


@pytest.mark.parametrize("tool", ["valgrind", "asan"])
def test_unchanged_code_passes_and_a_new_leak_site_fails(
    tmp_path: Path, plain: Path, asan: Path, tool: str, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = plain if tool == "valgrind" else asan
    config = write_config(tmp_path, binary, tool, "leak_many")
    assert main(["baseline", "update", "--config", str(config), "--jobs", "1"]) == 0
    baseline = json.loads((tmp_path / "baselines" / "unit.json").read_text())
    assert baseline["metrics"]["leak_definite_bytes"] == 300  # the known leak is the ratchet's start

    assert check(config) == 0, "the same program against its own baseline must pass"

    # One more call site that leaks 16 bytes: a new site fails, and the Markdown names it.
    write_config(tmp_path, binary, tool, "leak_many", "leak_small")
    capsys.readouterr()
    assert check(config, "--markdown", str(tmp_path / "report.md")) == 1
    markdown = (tmp_path / "report.md").read_text()
    assert "leak_small" in markdown and "16 B" in markdown
    assert "leak_small" in capsys.readouterr().out


@pytest.mark.parametrize("tool", ["valgrind", "asan"])
def test_a_new_invalid_read_fails(tmp_path: Path, plain: Path, asan: Path, tool: str) -> None:
    binary = plain if tool == "valgrind" else asan
    config = write_config(tmp_path, binary, tool, "clean")
    assert main(["baseline", "update", "--config", str(config)]) == 0
    write_config(tmp_path, binary, tool, "invalid_read")
    assert check(config, "--markdown", str(tmp_path / "report.md")) == 1
    assert "invalid_read" in (tmp_path / "report.md").read_text()


def test_a_suite_without_baseline_is_new_and_passes(tmp_path: Path, plain: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, plain, "valgrind", "leak_reachable")
    assert check(config, "--json", str(tmp_path / "r.json")) == 0
    out = capsys.readouterr().out
    assert "unit (new)" in out and "no baseline yet" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["suites"][0]["metrics"]["leak_reachable_bytes"] == 128


def test_a_new_suite_with_a_memory_error_still_fails(tmp_path: Path, plain: Path) -> None:
    config = write_config(tmp_path, plain, "valgrind", "use_after_free")
    assert check(config) == 1


def test_a_hanging_suite_is_killed_and_fails(tmp_path: Path, plain: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, plain, "valgrind", "hang", timeout="3s")
    assert check(config) == 1
    assert "timeout" in capsys.readouterr().out
    leftover = subprocess.run(["pgrep", "-f", f"{plain} hang"], capture_output=True, text=True)
    assert leftover.stdout == "", "the timeout must kill the whole process group"


def test_a_crash_after_leaking_fails_and_is_not_read_as_no_leaks(tmp_path: Path, asan: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, asan, "asan", "crash")
    assert check(config) == 1
    out = capsys.readouterr().out
    assert "crashed" in out


def test_missing_tool_is_exit_3_with_a_hint(tmp_path: Path, plain: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    config = write_config(tmp_path, plain, "valgrind", "clean")
    assert check(config) == 3
    err = capsys.readouterr().err
    assert "valgrind" in err and "install" in err


def test_a_test_program_that_cannot_start_is_exit_3(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, tmp_path / "not-built-yet", "asan")
    assert check(config) == 3
    assert "not-built-yet" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[suite]]\nname='a'\ncommand=['x']\ntool='valgrind'\ntimeout='soon'\n", "suite[0].timeout"),
        ("[[suite]]\nname='a'\ncommand=['x']\ntool='vlagrind'\n", "suite[0].tool"),
        ("[thresholds]\nheap_peak_bytes={fail='ten'}\n[[suite]]\nname='a'\ncommand=['x']\ntool='asan'\n",
         "thresholds.heap_peak_bytes.fail"),
        ("[[suite]\n", "invalid TOML"),
    ],
)
def test_config_errors_are_exit_2_naming_file_and_key(tmp_path: Path, text: str, expected: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "memgate.toml"
    config.write_text(text)
    assert check(config) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, "one line"
    assert expected in err and str(config) in err


def test_pull_request_cannot_loosen_its_own_gate(tmp_path: Path, plain: Path) -> None:
    """The PR raises the leak baseline in its own tree; the gate still reads the target's."""
    repo, git, config = repo_with_baselines(tmp_path, plain, "valgrind")
    target = git("rev-parse", "HEAD")

    # The PR adds a leak and "accepts" it by editing the baseline and loosening the threshold.
    git("checkout", "-q", "-b", "pr")
    write_config(repo, plain, "valgrind", "leak_many", "leak_small")
    (repo / "memgate.toml").write_text((repo / "memgate.toml").read_text()
                                       + "[thresholds]\nleak_definite_bytes = { fail = \"+1MiB\" }\n")
    assert main(["baseline", "update", "--config", str(config)]) == 0
    git("commit", "-qam", "accept my leak")

    assert check(config) == 0, "against its own tree the PR would pass"
    assert check(config, "--base-ref", target, "--markdown", str(tmp_path / "pr.md")) == 1
    markdown = (tmp_path / "pr.md").read_text()
    assert "leak_small" in markdown
    assert "baselines/unit.json" in markdown and "memgate.toml" in markdown, "the comment says it was edited"


def test_version_and_module_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "memgate", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("memgate ")
    script = shutil.which("memgate")
    if script:
        result = subprocess.run([script, "--help"], capture_output=True, text=True)
        assert result.stdout.count("exit codes") == 1


def test_version_answers_without_loading_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    """The console script's fast answer is the one argparse gives, and loads nothing else."""
    from memgate.cli import main

    with pytest.raises(SystemExit):
        main(["--version"])
    from_argparse = capsys.readouterr().out
    code = ("import sys; sys.argv = ['memgate', '--version']; from memgate.entry import main; "
            "code = main(); print(sorted(m for m in sys.modules if m.startswith('memgate'))); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0
    version, loaded = result.stdout.splitlines()
    assert version + "\n" == from_argparse
    assert loaded == "['memgate', 'memgate.entry']"


def test_a_baseline_update_that_changes_no_figure_leaves_the_files_alone(
    tmp_path: Path, asan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the default branch `baseline update --commit` runs after every merge: a merge that changed
    no figure must not rewrite every baseline for its new commit id (a commit of nothing but ids)."""
    repo, git, config = repo_with_baselines(tmp_path, asan, "asan")
    written = (repo / "baselines" / "unit.json").read_bytes()
    (repo / "README").write_text("an edit that changes no figure\n")
    git("add", "README")
    git("commit", "-q", "-m", "docs")
    capsys.readouterr()

    assert main(["baseline", "update", "--config", str(config)]) == 0
    assert "unit.json unchanged (the same figures and sites)" in capsys.readouterr().out
    assert (repo / "baselines" / "unit.json").read_bytes() == written
    assert git("status", "--porcelain", "--", "baselines") == ""

    write_config(repo, asan, "asan", "leak_many", "leak_small")  # a real change is written
    assert main(["baseline", "update", "--config", str(config)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert json.loads((repo / "baselines" / "unit.json").read_text())["metrics"]["leak_definite_bytes"] == 316
