"""Run one suite under its tool and turn what the tool wrote into a ``SuiteRecord``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from memgate.config import Config, SuiteConfig
from memgate.errors import ConfigError, ToolError
from memgate.proc import run_command
from memgate.records import ProcessRecord, SuiteRecord, SuiteStatus, combine_processes
from memgate.tools import get_tool
from memgate.tools.base import Outcome, ToolOptions


def run_suite(suite: SuiteConfig, config: Config) -> SuiteRecord:
    """Run ``suite``; its logs stay under ``<artifacts>/<suite>/`` whatever happens."""
    tool = get_tool(suite.tool)
    version = tool.version()
    logdir = _fresh_logdir(config.artifacts_path / suite.name)
    cwd = (config.root / suite.cwd) if suite.cwd else config.root
    if not cwd.is_dir():
        raise ConfigError(f"suite {suite.name!r}: cwd {suite.cwd!r} is not a folder", path=config.source,
                          hint="fix the suite's cwd (relative to the config file)")
    launch = tool.launch(suite.argv(), logdir, ToolOptions(extra_args=tuple(suite.tool_args), env=suite.env))
    env = {**os.environ, **suite.env, **launch.env}
    outcome = run_command(launch.argv, env=env, cwd=cwd, timeout=suite.timeout,
                          stdout_path=logdir / "stdout.log", stderr_path=logdir / "stderr.log")
    processes = tool.collect(logdir, outcome)
    status, detail = suite_status(outcome, processes, suite.accept_exit_codes, suite.timeout)
    return SuiteRecord(
        name=suite.name,
        tool=suite.tool,
        tool_version=version,
        command=tuple(suite.argv()),
        status=status,
        status_detail=detail,
        exit_code=outcome.exit_code,
        duration_seconds=outcome.duration_seconds,
        artifacts_dir=str(logdir),
        processes=tuple(processes),
        metrics=combine_processes(processes),
    )


def _fresh_logdir(path: Path) -> Path:
    """The suite's log folder, emptied of an earlier run's logs (which would be parsed again)."""
    try:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    except OSError as error:
        raise ToolError(f"cannot prepare the artifacts folder: {error.strerror}", path=path,
                        hint="make it writable, or set artifacts_dir in the config") from None
    return path


def suite_status(
    outcome: Outcome, processes: Sequence[ProcessRecord], accepted: Sequence[int], timeout: float
) -> tuple[SuiteStatus, str | None]:
    """How the suite ended. A failing exit status is forgiven only when the tool found something
    (sanitizers exit non-zero on a finding), because then the comparison judges the findings."""
    if outcome.timed_out:
        return SuiteStatus.TIMEOUT, f"killed after the {timeout:g} s timeout"
    crashed = [p for p in processes if p.fatal_signal]
    if outcome.signal is not None:
        return SuiteStatus.CRASHED, f"killed by signal {outcome.signal}"
    if crashed:
        return SuiteStatus.CRASHED, f"process {crashed[0].pid} died: {crashed[0].fatal_signal}"
    if outcome.exit_code not in accepted and not _found_something(processes):
        return SuiteStatus.FAILED, f"exited with status {outcome.exit_code}"
    incomplete = [p for p in processes if not p.complete]
    if not processes:
        return SuiteStatus.INCOMPLETE, "the tool wrote no output"
    if incomplete:
        return SuiteStatus.INCOMPLETE, incomplete[0].incomplete_reason or "tool output incomplete"
    return SuiteStatus.OK, None


def _found_something(processes: Sequence[ProcessRecord]) -> bool:
    return any(p.errors or any(leak.kind in ("definite", "indirect") for leak in p.leaks) for p in processes)
