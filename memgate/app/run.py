"""``memgate run``: run the suites and write the JSON report, with no comparison."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memgate.app.common import Shard, interrupted, load_config, print_problems, run_with_stop_signals
from memgate.errors import ExitCode

if TYPE_CHECKING:
    from memgate.config import Config
    from memgate.interrupt import StopRequest
    from memgate.records import Report


@dataclass(frozen=True)
class RunOptions:
    config: Path | None = None  # None: found from the current folder upwards
    suites: tuple[str, ...] = ()  # () runs them all
    json: Path | None = None  # None: <artifacts_dir>/report.json
    jobs: int = 1
    shard: Shard | None = None  # None: all the suites chosen


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    report: Report
    report_json: Path


def run(options: RunOptions) -> RunResult:
    from memgate.report.table import render_suites

    report, report_json, stop = run_and_write(options, load_config(options.config))
    print(render_suites(report))
    problems = print_problems(report)
    if stop.requested:
        code = interrupted(stop, report_json)
    elif any(suite.status.fails_gate for suite in report.suites):
        code = int(ExitCode.GATE_FAILED)  # a crashed, failed or timed-out suite, as for check
    else:
        code = int(ExitCode.TOOL if problems else ExitCode.PASS)
    return RunResult(code, report, report_json)


def run_and_write(options: RunOptions, config: Config) -> tuple[Report, Path, StopRequest]:
    """The suites run, and their JSON report written (partial, when a stop cut the run short)."""
    from memgate.report.json import write_report

    report, stop = run_with_stop_signals(config, options.suites, options.jobs, options.shard)
    return report, write_report(options.json or config.artifacts_path / "report.json", report), stop

