"""``memgate baseline update``: write the baselines from a run or a JSON report, and commit and push
them when asked."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memgate.app.common import interrupted, load_config, run_with_stop_signals
from memgate.errors import ExitCode, UsageError, printable

if TYPE_CHECKING:
    from memgate.forges import ci
    from memgate.records import SuiteRecord


@dataclass(frozen=True)
class BaselineUpdateOptions:
    config: Path | None = None  # None: found from the current folder upwards
    suites: tuple[str, ...] = ()  # () updates them all
    from_report: Path | None = None  # take the figures from this JSON report instead of running
    jobs: int = 1
    commit: bool = False  # commit the changed baseline files (only those)
    push: bool = False  # push that commit (needs commit)
    force: bool = False  # allow commit on a branch other than the default branch
    branch: str | None = None  # with commit: the branch to commit onto (default: checked out, or the CI's)


@dataclass(frozen=True)
class BaselineUpdateResult:
    exit_code: int
    written: tuple[Path, ...] = ()


def update_baselines(options: BaselineUpdateOptions) -> BaselineUpdateResult:
    from memgate.baselines.commit import check_can_commit
    from memgate.baselines.files import read_report, write_baseline
    from memgate.baselines.model import Baseline
    from memgate.forges import ci

    if options.push and not options.commit:
        raise UsageError("--push needs --commit", hint="add --commit, or leave out --push")
    config = load_config(options.config)
    facts = ci.detect()
    if options.commit:
        # Before the suites run (minutes), not after: all that committing and pushing need.
        check_can_commit(config.root, push=options.push, branch=options.branch or facts.branch,
                         default_branch=facts.default_branch, allow_non_default=options.force)
    if options.from_report:
        report = read_report(options.from_report)
    else:
        report, stop = run_with_stop_signals(config, options.suites, options.jobs)
        if stop.requested:
            print("memgate: no baseline written", file=sys.stderr)
            return BaselineUpdateResult(interrupted(stop, None))
    suites = [suite for suite in report.suites if not options.suites or suite.name in options.suites]
    refused = refuse_unusable_suites(suites)
    if refused is not None:
        return BaselineUpdateResult(refused)
    commit = report.environment.git_commit
    written = [write_baseline(config.baseline_path, Baseline.from_suite(suite, commit)) for suite in suites]
    for path in written:
        print(f"memgate: wrote {path}")
    if options.commit:
        _commit_baselines(options, config.root, written, commit, facts)
    return BaselineUpdateResult(int(ExitCode.PASS), tuple(written))


def refuse_unusable_suites(suites: Sequence[SuiteRecord]) -> int | None:
    """The exit code when a suite cannot become a baseline (each such suite said on stderr), else None."""
    from memgate.baselines.model import unusable_for_baseline

    unusable = unusable_for_baseline(suites)
    for suite in unusable:
        detail = f": {suite.status_detail}" if suite.status_detail else ""
        print(printable(f"memgate: error: suite {suite.name!r} {suite.status.value}{detail} "
                        f"({suite.artifacts_dir}): a baseline must come from a complete, passing run; "
                        "fix the suite and run again"), file=sys.stderr)
    if unusable:
        print("memgate: no baseline written", file=sys.stderr)
        return int(ExitCode.GATE_FAILED if any(s.status.fails_gate for s in unusable) else ExitCode.TOOL)
    return None


def _commit_baselines(options: BaselineUpdateOptions, root: Path, written: list[Path], commit: str | None,
                      facts: ci.CiFacts) -> None:
    from memgate.baselines.commit import commit_baselines
    from memgate.baselines.repository import resolve_commit

    result = commit_baselines(
        root, written, "memgate: update baselines", commit or resolve_commit(root, "HEAD"),
        push=options.push, branch=options.branch or facts.branch, allow_non_default=options.force,
        default_branch=facts.default_branch,
    )
    print(f"memgate: {result.detail}")
