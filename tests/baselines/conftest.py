"""Shared by the baselines' tests: a suite's run, and real repositories (a bare repository in a temp
folder is the remote, clones of it are the CI checkouts; set up and checked with the git command line,
independently of GitPython)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from recordkit import error, leak, suite

from memgate.baselines.repository import GitIdentity
from memgate.records import SuiteRecord


def sample_record() -> SuiteRecord:
    return suite(
        "unit",
        leaks=[leak("definite", 16, 1, "leak_small", "main"),
               leak("definite", 100, 1, "leak_many", "main"),
               leak("definite", 200, 2, "leak_many", "main"),
               leak("reachable", 128, 1, "leak_reachable", "main")],
        errors=[error("InvalidRead", "invalid_read", "main", count=2, description="Invalid read of size 4"),
                error("InvalidRead", "invalid_read", "main", count=1)],
        metrics={"heap_peak_bytes": 4096, "alloc_calls": 12},
    )


DEV = GitIdentity("Dev Eloper", "dev@example.test")
NO_WAIT: Callable[[float], None] = lambda seconds: None  # noqa: E731


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout.strip()


def baseline(suite: str, peak: int, calls: int = 100, source: str = "0" * 40) -> str:
    """A baseline file shaped like memgate.baselines.files writes them: sorted keys, one item per line."""
    data = {"schema_version": 1, "suite": suite, "tool": "valgrind", "source_commit": source,
            "metrics": {"alloc_calls": calls, "heap_peak_bytes": peak, "leak_definite_bytes": 0}}
    return json.dumps(data, sort_keys=True, indent=2) + "\n"


CONFIG = '[[suite]]\nname = "unit"\ncommand = ["./unit"]\ntool = "valgrind"\n\n[thresholds]\n' \
         'heap_peak_bytes = { fail = "10%" }\n'


@pytest.fixture
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
