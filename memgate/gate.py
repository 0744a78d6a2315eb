"""The run flow shared by ``check``, ``run`` and ``baseline update``: run the chosen suites (in
parallel), keep every suite's outcome, and put them in one ``Report``."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from memgate import __version__
from memgate.config import Config, SuiteConfig
from memgate.errors import MemgateError, ToolError
from memgate.records import Environment, Report, SuiteRecord, SuiteStatus
from memgate.runner import run_suite


def select_suites(config: Config, names: Sequence[str]) -> list[SuiteConfig]:
    return [config.suite(name) for name in names] if names else list(config.suites)


def run_suites(config: Config, suites: Sequence[SuiteConfig], jobs: int) -> Report:
    """Run ``suites``, ``jobs`` at a time. A suite that cannot run (tool missing, command not found)
    is kept in the report as incomplete with the reason, so the other suites' results still count.
    The report lists suites in configuration order whatever order they finish in."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        records = list(pool.map(lambda suite: _run_one(suite, config), suites))
    return make_report(records, config.root)


def _run_one(suite: SuiteConfig, config: Config) -> SuiteRecord:
    try:
        return run_suite(suite, config)
    except ToolError as error:
        return SuiteRecord(name=suite.name, tool=suite.tool, command=tuple(suite.argv()),
                           status=SuiteStatus.INCOMPLETE, status_detail=error.one_line())


def make_report(suites: Sequence[SuiteRecord], root: Path | None = None) -> Report:
    return Report(
        memgate_version=__version__,
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        environment=describe_environment(root),
        suites=tuple(suites),
    )


def describe_environment(root: Path | None) -> Environment:
    libc_name, libc_version = platform.libc_ver()
    return Environment(
        git_commit=_git_commit(root),
        compiler=_first_line([os.environ.get("CC", "cc"), "--version"]),
        libc=f"{libc_name} {libc_version}".strip() or None,
        platform=f"{platform.system()} {platform.machine()}, Python {sys.version.split()[0]}",
    )


def _git_commit(root: Path | None) -> str | None:
    for variable in ("GITHUB_SHA", "CI_COMMIT_SHA"):
        if os.environ.get(variable):
            return os.environ[variable]
    if root is None:
        return None
    return _first_line(["git", "-C", str(root), "rev-parse", "HEAD"])


def _first_line(command: list[str]) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.strip().splitlines()
    return lines[0] if result.returncode == 0 and lines else None


def suite_problems(report: Report) -> list[MemgateError]:
    """One error per suite that did not give usable figures, for the one-line messages on stderr."""
    problems: list[MemgateError] = []
    for suite in report.suites:
        if suite.status is SuiteStatus.INCOMPLETE:
            problems.append(ToolError(
                f"suite {suite.name!r}: {suite.status_detail or 'the tool output is incomplete'}",
                path=suite.artifacts_dir, hint="the raw logs are kept there; see what the tool printed",
            ))
    return problems
