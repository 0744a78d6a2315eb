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
    from memgate.records import Frame, SuiteRecord


@dataclass(frozen=True)
class BaselineUpdateOptions:
    config: Path | None = None  # None: found from the current folder upwards
    suites: tuple[str, ...] = ()  # () updates them all
    from_report: Path | None = None  # take the figures from this JSON report instead of running
    jobs: int = 1
    commit: bool = False  # commit the changed baseline files (only those)
    push: bool = False  # push that commit (needs commit)
    force: bool = False  # allow commit on a branch other than the default branch
    allow_errors: bool = False  # write baselines from runs with memory errors (they become known)
    branch: str | None = None  # with commit: the branch to commit onto (default: checked out, or the CI's)


@dataclass(frozen=True)
class BaselineUpdateResult:
    exit_code: int
    written: tuple[Path, ...] = ()


def update_baselines(options: BaselineUpdateOptions) -> BaselineUpdateResult:
    from memgate.baselines.commit import check_can_commit
    from memgate.baselines.files import baseline_path, holds_same_figures, read_report, write_baseline
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
    if refused is None and not options.allow_errors:
        refused = refuse_memory_errors(suites, config.root)
    if refused is not None:
        return BaselineUpdateResult(refused)
    commit = report.environment.git_commit
    written: list[Path] = []
    for suite in suites:
        baseline = Baseline.from_suite(suite, commit)
        if holds_same_figures(config.baseline_path, baseline, config.thresholds_for(suite.name)):
            print(f"memgate: {baseline_path(config.baseline_path, suite.name)} unchanged (the same figures "
                  "and sites)")
            continue
        written.append(write_baseline(config.baseline_path, baseline))
        print(f"memgate: wrote {written[-1]}")
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


def refuse_memory_errors(suites: Sequence[SuiteRecord], root: Path) -> int | None:
    """Exit 1 when a suite's run has memory errors (each such suite said on stderr, with its first error
    site), else None: a baseline would make them known, and they would pass from then on."""
    from memgate.baselines.model import first_error_site, with_memory_errors

    refused = with_memory_errors(suites)
    for suite in refused:
        site = first_error_site(suite)
        where = _where(site.frames, root)
        sites = len({error.fingerprint for error in suite.errors})
        print(printable(f"memgate: error: suite {suite.name!r} has memory errors ({sites} site"
                        f"{'s' if sites != 1 else ''}; the first: {site.kind} at {site.site}{where}): a "
                        "baseline would make them known and let them pass; fix them and run again, or "
                        "pass --allow-errors (env MEMGATE_ALLOW_ERRORS=1) to write it anyway"),
              file=sys.stderr)
    if refused:
        print("memgate: no baseline written", file=sys.stderr)
        return int(ExitCode.GATE_FAILED)
    return None


def _where(frames: Sequence[Frame], root: Path) -> str:
    """" (src/a.c:12)": the first frame in the repository, else the first with a file, as recorded."""
    from memgate.report.common import source_location

    place = source_location(frames, root)
    if place is None:
        with_file = next((frame for frame in frames if frame.file), None)
        if with_file is None:
            return ""
        return f" ({with_file.file}:{with_file.line})" if with_file.line else f" ({with_file.file})"
    return f" ({place.path}:{place.line})" if place.line else f" ({place.path})"


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
