"""``memgate history``: the baselines of the default branch over its last baseline commits, per suite
and metric with commit and date (text, or JSON data); and the history the comment charts."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memgate.app.common import load_config
from memgate.errors import ExitCode

if TYPE_CHECKING:
    from memgate.baselines.history import BaselineHistory
    from memgate.comparison import Comparison
    from memgate.config import Config


@dataclass(frozen=True)
class HistoryOptions:
    config: Path | None = None
    ref: str | None = None  # None: the default branch (origin's, else the local one), else HEAD
    limit: int | None = None  # None: history_limit of the config
    suites: tuple[str, ...] = ()  # only these; empty: all
    metrics: tuple[str, ...] = ()  # only these; empty: all
    as_json: bool = False


@dataclass(frozen=True)
class HistoryResult:
    exit_code: int
    history: BaselineHistory


def history(options: HistoryOptions) -> HistoryResult:
    from memgate.baselines.history import DEFAULT_LIMIT, read_history

    config = load_config(options.config)
    limit = options.limit if options.limit is not None else config.history_limit or DEFAULT_LIMIT
    found = read_history(config.root, options.ref or default_branch_ref(config.root), config.baseline_dir,
                         limit)
    found = found.only(options.suites, options.metrics)
    print(json.dumps(found.to_data(), indent=2) if options.as_json else render_history(found))
    for note in found.notes:
        print(f"memgate: note: {note}", file=sys.stderr)
    return HistoryResult(int(ExitCode.PASS), found)


def default_branch_ref(repo_dir: Path) -> str:
    """The default branch as this clone knows it: the CI's default branch or the remote's recorded
    one, as ``origin/<branch>`` (current in CI) or a local branch; HEAD when none of them exists."""
    from memgate.baselines import repository
    from memgate.forges import ci

    known = (ci.detect().default_branch, repository.remote_default_branch(repo_dir))
    names = [name for name in known if name]
    for candidate in [*(f"origin/{name}" for name in names), *names]:
        try:
            repository.resolve_commit(repo_dir, candidate)
        except repository.VcsError:
            continue
        return candidate
    return "HEAD"


def render_history(found: BaselineHistory) -> str:
    """Per suite, per metric: each baseline commit's value, with its commit and date (oldest first)."""
    from tabulate import tabulate

    from memgate.metrics import format_value

    count = len(found.commits)
    lines = [f"baselines of {found.ref} ({found.tip[:12]}): {count} baseline "
             f"commit{'s' if count != 1 else ''} (at most {found.limit}), oldest first"]
    for suite in found.suites():
        rows = [(metric if index == 0 else "", point.commit[:12], point.date,
                 format_value(metric, point.value))
                for metric in found.metrics_of(suite)
                for index, point in enumerate(found.series(suite, metric))]
        table = tabulate(rows, headers=("metric", "commit", "date", "value"),
                         colalign=("left", "left", "left", "right"))
        lines += ["", f"suite {suite}", table]
    return "\n".join(lines)


def comment_history(config: Config, comparison: Comparison, base_ref: str | None) -> BaselineHistory | None:
    """The history the comment charts: of ``base_ref`` (the target of a pull/merge request), else of
    the default branch. None when no metric changed (nothing to chart), charts are off, or the project
    is not in git; a history git cannot give (a shallow clone, a missing ref) is an empty one whose
    note says why, never an error: the trend is never worth a failed check."""
    from memgate.baselines.history import BaselineHistory, read_history
    from memgate.errors import MemgateError
    from memgate.report.trend import changed_rows

    if config.history_limit == 0 or not changed_rows(comparison) or not _may_be_in_git(config.root):
        return None
    from memgate.baselines import repository

    if repository.top_level(config.root) is None:
        return None
    ref = base_ref or default_branch_ref(config.root)
    try:
        return read_history(config.root, ref, config.baseline_dir, config.history_limit)
    except MemgateError as error:
        return BaselineHistory.unavailable(ref, config.history_limit, f"no trend chart: {error.one_line()}")


def _may_be_in_git(folder: Path) -> bool:
    """False when no folder from ``folder`` up has a ``.git`` entry or is a git folder itself (holds
    HEAD or gitdir): there GitPython's search (``repository.top_level``) finds nothing, and a check
    outside git learns it without importing GitPython (~50 ms)."""
    return any(os.path.lexists(candidate / name) for candidate in (folder, *folder.parents)
               for name in (".git", "HEAD", "gitdir"))
