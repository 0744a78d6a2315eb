"""``memgate check``: run the suites, compare them with the baselines, write the reports asked for,
comment, and give the verdict."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from memgate.app.common import interrupted, load_config, print_problems
from memgate.app.run import RunOptions, run_and_write

if TYPE_CHECKING:
    from memgate.baselines.model import Baseline
    from memgate.baselines.target import Target
    from memgate.comparison import Comparison
    from memgate.config import Config
    from memgate.interrupt import StopRequest
    from memgate.records import Report


@dataclass(frozen=True)
class ReportPaths:
    """Where each report goes; None: not written."""

    markdown: Path | None = None
    junit: Path | None = None
    codequality: Path | None = None
    sarif: Path | None = None
    openmetrics: Path | None = None


@dataclass(frozen=True)
class CheckOptions:
    run: RunOptions = field(default_factory=RunOptions)
    reports: ReportPaths = field(default_factory=ReportPaths)
    fail_on: Literal["fail", "warn"] = "fail"
    comment: bool = False  # post or update the PR/MR comment
    base_ref: str | None = None  # None: the pull/merge request's base commit in CI, else the work tree


@dataclass(frozen=True)
class CheckResult:
    exit_code: int
    report: Report
    comparison: Comparison
    report_json: Path


def check(options: CheckOptions) -> CheckResult:
    from memgate.comparison import ComparedReport
    from memgate.report.json import write_report

    config = load_config(options.run.config)
    # The target is read before the long run: a broken baseline fails fast.
    target = gate_target(config, options.base_ref)
    # The suppressions the tools get are the target's: a request cannot hide its own leak with one.
    report, report_json, stop = run_and_write(options.run, target.run_config(config))
    ran = {suite.name for suite in report.suites}
    selected = bool(options.run.suites) or options.run.shard is not None
    baselines = {name: b for name, b in target.baselines.items() if name in ran or not selected}
    outputs = GateOutputs(options.reports, options.fail_on, options.comment)
    comparison, code = judge(report, baselines, target, config, outputs, report_json=report_json, stop=stop)
    # The run's report was written before the comparison (a baseline error loses no figures); now it
    # gets its verdict.
    write_report(report_json, ComparedReport.of(report, comparison, code))
    return CheckResult(code, report, comparison, report_json)


def gate_target(config: Config, base_ref: str | None) -> Target:
    """What a run is judged against: the gate at ``base_ref`` (default in CI: the pull/merge request's
    base commit), else this checkout's config and baselines."""
    from memgate.baselines.target import local_target, target_at
    from memgate.forges import ci

    base_ref = base_ref or ci.detect().base_ref
    return target_at(config, base_ref) if base_ref else local_target(config)


@dataclass(frozen=True)
class GateOutputs:
    """What ``check`` and ``compare`` do with a comparison besides printing it."""

    reports: ReportPaths = field(default_factory=ReportPaths)
    fail_on: Literal["fail", "warn"] = "fail"
    comment: bool = False  # post or update the PR/MR comment


def judge(report: Report, baselines: Mapping[str, Baseline], target: Target, config: Config,
          outputs: GateOutputs, *, report_json: Path,
          stop: StopRequest | None = None) -> tuple[Comparison, int]:
    """The one way a report is judged, by ``check`` after its run and by ``compare`` of a report read
    back: compared with ``baselines`` under the target's thresholds, the table printed, the reports
    asked for written, the comment posted, GitHub's outputs set (``report_json`` is the one named
    there); the comparison and the exit code."""
    from memgate import publish
    from memgate.app.history import comment_history
    from memgate.comparison import compare_report
    from memgate.forges import ci
    from memgate.report.markdown import render_markdown
    from memgate.report.table import render_table
    from memgate.suppressions import own_suppression_notes

    comparison = compare_report(report, baselines, target.config)
    print(render_table(comparison))
    notes = (*target.notes, *own_suppression_notes(report, target.own_suppressions))
    for note in notes:
        print(f"note: {note}")
    # The trend needs the project's repository: known only from a config file.
    history = comment_history(target.config, comparison, target.ref) if config.source else None
    markdown = render_markdown(comparison, notes=notes, full_report=ci.run_url(), history=history)
    # The work tree's root needs git (GitPython takes ~50 ms to import): only for the reports that
    # show source paths and GitHub's annotations.
    repo_root = functools.cache(lambda: publish.repository_root(config.root))
    _write_reports(outputs, comparison, markdown, repo_root, config)
    if stop is not None and stop.requested:  # the partial reports are written; no comment or outputs
        print_problems(report)
        return comparison, interrupted(stop, report_json)
    comment_url = publish.post_comment(markdown) if outputs.comment else None
    if ci.on_github_actions():  # outside GitHub, spare the import of requests
        publish.github_job_outputs(comparison, markdown, repo_root=repo_root(), report_json=report_json,
                                   markdown_path=outputs.reports.markdown, comment_url=comment_url)
    print_problems(report)
    return comparison, int(comparison.exit_code(fail_on_warn=outputs.fail_on == "warn"))


def _write_reports(outputs: GateOutputs, comparison: Comparison, markdown: str,
                   repo_root: Callable[[], Path], config: Config) -> None:
    """Each report asked for, rendered (and its module imported) only when asked for."""
    from memgate.files import write_requested_file

    def junit() -> str:
        from memgate.report.junit import render_junit

        return render_junit(comparison, repo_root(), fail_on_warn=outputs.fail_on == "warn")

    def codequality() -> str:
        from memgate.report.codequality import render_codequality

        return render_codequality(comparison, repo_root(), fallback_path=config.source)

    def sarif() -> str:
        from memgate.report.sarif import render_sarif

        return render_sarif(comparison, repo_root(), fallback_path=config.source)

    def openmetrics() -> str:
        from memgate.report.openmetrics import render_openmetrics

        return render_openmetrics(comparison)

    renderers: dict[str, Callable[[], str]] = {"markdown": lambda: markdown, "junit": junit,
                                               "codequality": codequality, "sarif": sarif,
                                               "openmetrics": openmetrics}
    assert renderers.keys() == {report.name for report in fields(ReportPaths)}
    for name, render in renderers.items():
        path: Path | None = getattr(outputs.reports, name)
        if path is not None:
            write_requested_file(path, render(), what=str(path))
