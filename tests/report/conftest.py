"""Real runs for the CI report tests: tests/programs/memprog.c built with ASan, run by
``memgate.runner.suite.run_suite`` and compared with a baseline made by an earlier real run.

The comparison holds every case the reports must render:

- ``unit`` (baseline: leak_small leak_many; now: leak_small leak_tree churn=2): a known leak
  (leak_small), two new ones (leak_tree: 32 B definite, 64 B indirect), a fixed one (leak_many),
  improved, failing and warning metrics;
- ``errs`` (new, invalid_read): a new heap-buffer-overflow, incomplete figures (ASan stops there);
- ``crashy`` (new, crash): a SEGV, a crashed suite.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BuildProgram

from memgate.baselines.model import Baseline
from memgate.comparison import Comparison, compare
from memgate.config import Config, SuiteConfig
from memgate.records import SuiteRecord
from memgate.runner.suite import run_suite

REPO_ROOT = Path(__file__).resolve().parents[2]
MEMPROG = REPO_ROOT / "tests" / "programs" / "memprog.c"
MEMPROG_PATH = "tests/programs/memprog.c"  # repo-relative, as every report must show it


def source_line(snippet: str, source: Path = MEMPROG) -> int:
    """The line of ``source`` that holds ``snippet`` (tests name lines by their code, not a number)."""
    for number, line in enumerate(source.read_text().splitlines(), start=1):
        if snippet in line:
            return number
    raise AssertionError(f"{snippet!r} is not in {source}")


def line_in(function: str, snippet: str) -> int:
    """The first line holding ``snippet`` in memprog.c's ``function``."""
    lines = MEMPROG.read_text().splitlines()
    start = source_line(f" {function}(void)")
    return next(number for number in range(start, len(lines) + 1) if snippet in lines[number - 1])


@dataclass(frozen=True)
class RealRun:
    comparison: Comparison
    records: dict[str, SuiteRecord]
    config: Config


BASELINE_ARGS = ("leak_small", "leak_many")
CURRENT = {
    "unit": ("leak_small", "leak_tree", "churn=2"),
    "errs": ("invalid_read",),
    "crashy": ("crash",),
}


@pytest.fixture(scope="session")
def _no_sanitizer_options() -> Iterator[None]:
    """A developer's own ASAN_OPTIONS would change what the program prints."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("ASAN_OPTIONS", raising=False)
        patch.delenv("LSAN_OPTIONS", raising=False)
        yield


def run_memprog(binary: Path, workdir: Path) -> RealRun:
    """The baseline run, then the current suites, then the comparison (memgate's default config)."""
    workdir.mkdir(parents=True, exist_ok=True)
    base = Config(root=workdir, artifacts_dir="base-artifacts",
                  suite=[SuiteConfig(name="unit", tool="asan", command=[str(binary), *BASELINE_ARGS])])
    baseline = Baseline.from_suite(run_suite(base.suites[0], base))
    config = Config(root=workdir, suite=[SuiteConfig(name=name, tool="asan", command=[str(binary), *args])
                                          for name, args in CURRENT.items()])
    records = {suite.name: run_suite(suite, config) for suite in config.suites}
    return RealRun(compare(list(records.values()), {"unit": baseline}, config), records, config)


@pytest.fixture(scope="session")
def real_run(build_program: BuildProgram, tmp_path_factory: pytest.TempPathFactory,
             _no_sanitizer_options: None) -> RealRun:
    binary = build_program("memprog.c", flags=("-fsanitize=address",))
    return run_memprog(binary, tmp_path_factory.mktemp("report-runs"))


@pytest.fixture(scope="session")
def real_run_clang(build_program: BuildProgram, tmp_path_factory: pytest.TempPathFactory,
                   _no_sanitizer_options: None) -> RealRun:
    """The same runs from a clang build: other addresses and code, the same sites."""
    binary = build_program("memprog.c", compiler="clang", flags=("-fsanitize=address",))
    return run_memprog(binary, tmp_path_factory.mktemp("report-runs-clang"))


def assert_no_absolute_paths(text: str) -> None:
    """No report may leak the machine's checkout path (reports are uploaded)."""
    assert os.fspath(REPO_ROOT) not in text


@pytest.fixture(scope="session")
def real_free_errors(build_program: BuildProgram, tmp_path_factory: pytest.TempPathFactory,
                     _no_sanitizer_options: None) -> RealRun:
    """A use after free under memcheck and under ASan, and a heap overflow under ASan, all new: each
    error comes with the stacks where its block was freed and allocated."""
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (.ci/run installs it)")
    plain = build_program("memprog.c")
    asan = build_program("memprog.c", flags=("-fsanitize=address",))
    workdir = tmp_path_factory.mktemp("report-free-errors")
    config = Config(root=workdir, suite=[
        SuiteConfig(name="uaf-memcheck", tool="memcheck", command=[str(plain), "use_after_free"]),
        SuiteConfig(name="uaf-asan", tool="asan", command=[str(asan), "use_after_free"]),
        SuiteConfig(name="overflow-asan", tool="asan", command=[str(asan), "invalid_write"]),
    ])
    records = {suite.name: run_suite(suite, config) for suite in config.suites}
    return RealRun(compare(list(records.values()), {}, config), records, config)
