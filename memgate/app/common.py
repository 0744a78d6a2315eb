"""What several use cases share: the config they load, the suites run under stop signals, and how an
interrupted or unusable run is said on stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from memgate.config import Config
    from memgate.interrupt import StopRequest
    from memgate.records import Report

T = TypeVar("T")


def load_config(path: Path | None) -> Config:
    """The config at ``path``, or the one found from the current folder upwards."""
    from memgate.config import find_config, load_config

    return load_config(path if path is not None else find_config(Path.cwd()))


def run_with_stop_signals(config: Config, names: Sequence[str], jobs: int,
                          shard: Shard | None = None) -> tuple[Report, StopRequest]:
    """The suites (of ``names``, else all; of those, the ``shard``'s), with SIGINT and SIGTERM stopping
    them (and only them) while they run."""
    from memgate.interrupt import stop_signals
    from memgate.runner.suites import run_suites, select_suites

    suites = select_suites(config, names)
    if shard is not None:
        suites = shard.of(suites)
    with stop_signals() as stop:
        report = run_suites(config, suites, jobs, stop=stop)
    return report, stop


@dataclass(frozen=True)
class Shard:
    """``--shard INDEX/TOTAL``: this job runs every TOTAL-th suite, from the INDEX-th (1-based), so that
    TOTAL jobs given 1/TOTAL to TOTAL/TOTAL run each suite once (GitLab's ``parallel:`` gives
    ``$CI_NODE_INDEX/$CI_NODE_TOTAL``)."""

    index: int
    total: int

    def of(self, suites: Sequence[T]) -> list[T]:
        return list(suites[self.index - 1::self.total])


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
