"""What several use cases share: the config they load, the suites run under stop signals, and how an
interrupted or unusable run is said on stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memgate.config import Config
    from memgate.interrupt import StopRequest
    from memgate.records import Report


def load_config(path: Path | None) -> Config:
    """The config at ``path``, or the one found from the current folder upwards."""
    from memgate.config import find_config, load_config

    return load_config(path if path is not None else find_config(Path.cwd()))


def run_with_stop_signals(config: Config, names: Sequence[str], jobs: int) -> tuple[Report, StopRequest]:
    """The suites, with SIGINT and SIGTERM stopping them (and only them) while they run."""
    from memgate.interrupt import stop_signals
    from memgate.runner.suites import run_suites, select_suites

    with stop_signals() as stop:
        report = run_suites(config, select_suites(config, names), jobs, stop=stop)
    return report, stop


def interrupted(stop: StopRequest, report_json: Path | None) -> int:
    partial = f"; the partial report is in {report_json}" if report_json else ""
    print(f"memgate: {stop.reason()}: the running suites were stopped{partial}", file=sys.stderr)
    return stop.exit_code()


def print_problems(report: Report) -> bool:
    """Print one line per suite without usable figures; True when there was any."""
    from memgate.runner.suites import suite_problems

    problems = suite_problems(report)
    for problem in problems:
        print(f"memgate: error: {problem.one_line()}", file=sys.stderr)
    return bool(problems)
