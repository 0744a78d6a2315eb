"""``memgate compare``: compare a JSON report with a baseline, with no run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memgate.app.common import load_config

if TYPE_CHECKING:
    from memgate.comparison import Comparison


@dataclass(frozen=True)
class CompareOptions:
    baseline: Path  # a JSON report, a baselines folder, or one baseline file
    current: Path  # the current JSON report
    config: Path | None = None  # thresholds from this config; None: the built-in defaults
    markdown: Path | None = None  # the Markdown summary, when asked for
    json: Path | None = None  # the current report with the comparison (ComparedReport), when asked for


@dataclass(frozen=True)
class CompareResult:
    exit_code: int
    comparison: Comparison


def compare(options: CompareOptions) -> CompareResult:
    from memgate.app.history import comment_history
    from memgate.baselines.files import load_baseline_side, read_report
    from memgate.comparison import ComparedReport, compare_report
    from memgate.config import Config
    from memgate.files import write_requested_file
    from memgate.forges import ci
    from memgate.report.json import write_report
    from memgate.report.markdown import render_markdown
    from memgate.report.table import render_table

    config = load_config(options.config) if options.config else Config()
    current = read_report(options.current)
    comparison = compare_report(current, load_baseline_side(options.baseline), config)
    print(render_table(comparison))
    code = int(comparison.exit_code())
    if options.markdown:
        # The trend needs the project's repository: known only from its config.
        history = comment_history(config, comparison, ci.detect().base_ref) if options.config else None
        write_requested_file(options.markdown, render_markdown(comparison, history=history),
                             what=str(options.markdown))
    if options.json:
        write_report(options.json, ComparedReport.of(current, comparison, code))
    return CompareResult(code, comparison)
