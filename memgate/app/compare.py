"""``memgate compare``: judge a JSON report (one run's, or shards' merged by ``memgate merge``) with no
run: against the gate's own baselines and thresholds, as ``check`` does, or against a BASELINE given."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from memgate.app.check import GateOutputs, gate_target, judge
from memgate.app.common import load_config
from memgate.errors import UsageError

if TYPE_CHECKING:
    from memgate.baselines.target import Target
    from memgate.comparison import Comparison
    from memgate.config import Config
    from memgate.records import Report


@dataclass(frozen=True)
class CompareOptions:
    current: Path  # the current JSON report
    # A JSON report, a baselines folder, or one baseline file; None: the gate's baselines and thresholds
    # (those of --base-ref or the CI's target branch, else this checkout's), as `check` reads them.
    baseline: Path | None = None
    config: Path | None = None  # None: found from the current folder (with a BASELINE: the defaults)
    outputs: GateOutputs = field(default_factory=GateOutputs)
    json: Path | None = None  # the current report with the comparison (ComparedReport), when asked for
    base_ref: str | None = None  # read the gate at this commit (not with a BASELINE)


@dataclass(frozen=True)
class CompareResult:
    exit_code: int
    comparison: Comparison


def compare(options: CompareOptions) -> CompareResult:
    from memgate.baselines.files import read_report
    from memgate.comparison import ComparedReport
    from memgate.report.json import write_report

    current = read_report(options.current)
    if options.baseline is None:
        config = load_config(options.config)
        target = gate_target(config, options.base_ref)
        current = as_check_runs_it(current, config, options.current)
    else:
        config, target = _given_baseline(options)
    comparison, code = judge(current, target.baselines, target, config, options.outputs,
                             report_json=options.json or options.current)
    if options.json:
        write_report(options.json, ComparedReport.of(current, comparison, code))
    return CompareResult(code, comparison)


def _given_baseline(options: CompareOptions) -> tuple[Config, Target]:
    from memgate.baselines.files import load_baseline_side
    from memgate.baselines.target import Target
    from memgate.config import Config

    if options.base_ref is not None:
        raise UsageError("--base-ref reads the baselines from the target branch, and a BASELINE was given "
                         "too", hint="leave out the BASELINE argument, or --base-ref (and MEMGATE_BASE_REF)")
    assert options.baseline is not None
    config = load_config(options.config) if options.config else Config()
    return config, Target(config=config, baselines=load_baseline_side(options.baseline))


def as_check_runs_it(report: Report, config: Config, path: Path) -> Report:
    """The report's suites in the config's order, as one ``check`` of all the suites lists them (the
    shards' reports merged list them shard by shard); a suite of the config that the report lacks
    is there as incomplete, so that a shard that gave no report makes no suite pass unseen."""
    from memgate.records import SuiteRecord, SuiteStatus

    present = {suite.name for suite in report.suites}
    missing = [SuiteRecord(name=suite.name, tool=suite.tool, status=SuiteStatus.INCOMPLETE,
                           status_detail=f"not in the report {path}: the job that runs it gave no report; "
                                         "merge its report too, or run it")
               for suite in config.suites if suite.name not in present]
    order = {suite.name: index for index, suite in enumerate(config.suites)}
    suites = sorted([*report.suites, *missing], key=lambda suite: order.get(suite.name, len(order)))
    return report.model_copy(update={"suites": tuple(suites)})
