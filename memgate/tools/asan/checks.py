"""From one log's ``Findings`` to a ``ProcessRecord``: whether it is complete (the log is whole,
the records add up to the SUMMARY, the leak check ran) and the metrics it measured."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memgate.metrics import MetricName, leak_metrics
from memgate.proc import Outcome
from memgate.records import ProcessRecord
from memgate.tools.asan.log import Findings


@dataclass(frozen=True)
class Context:
    """What memgate knows about the run beyond the log."""

    tool_label: str
    leak_detection: bool = True
    outcome: Outcome | None = None


def _incomplete_reason(findings: Findings, context: Context) -> str | None:
    """Why the record is incomplete: the log ends inside a report, the runtime failed, the leak
    records do not add up to the SUMMARY (``max_leaks``), or nothing shows that the leak check ran
    after the last error or signal; None when it is complete."""
    if findings.truncated:
        return findings.truncated
    if findings.runtime_failure:
        return findings.runtime_failure
    if not findings.sanitizer_output:
        return f"no {context.tool_label} output in this file"
    if findings.omitted_leaks or (findings.summary_total is not None
                                  and findings.summary_total != findings.listed_total()):
        return _totals_problem(findings)
    if context.leak_detection and not findings.leak_check_done:
        return _no_leak_check(findings, context)
    return None


def _totals_problem(findings: Findings) -> str:
    listed, total = findings.listed_total(), findings.summary_total
    counted = (f"its SUMMARY counts {total[0]} bytes in {total[1]} blocks" if total is not None
               else "it says it leaves some out, and has no SUMMARY to count them")
    return (f"the leak report lists {listed[0]} bytes in {listed[1]} blocks but {counted} "
            "(some records were left out, e.g. by max_leaks)")


def _no_leak_check(findings: Findings, context: Context) -> str:
    if findings.fatal_signal:
        return f"no leak check after {findings.fatal_signal}"
    if findings.halted_by:
        return f"the sanitizer stopped the process at the first error ({findings.halted_by}): no leak check"
    outcome = context.outcome
    if outcome is not None and outcome.timed_out:
        return "no leak check: the run timed out and was killed"
    if outcome is not None and outcome.signal is not None:
        return f"no leak check: the run was killed by signal {outcome.signal}"
    return ("no sign that the leak check ran (no leak report, no exit statistics): the process was "
            "killed, or left through _exit() or exec()")


def _metrics(findings: Findings, measured_leaks: bool) -> dict[MetricName, int]:
    metrics: dict[MetricName, int] = {}
    if measured_leaks:
        totals = {"definite": [0, 0], "indirect": [0, 0]}  # bytes and blocks; one pass over the records
        for leak in findings.leaks:
            if (total := totals.get(leak.kind)) is not None:
                total[0] += leak.bytes
                total[1] += leak.blocks
        for kind in ("definite", "indirect"):
            bytes_name, blocks_name = leak_metrics(kind)
            metrics[bytes_name], metrics[blocks_name] = totals[kind]
    if findings.sanitizer_output:
        metrics["errors"] = sum(error.count for error in findings.errors)
    if findings.alloc_calls is not None:
        metrics["alloc_calls"] = findings.alloc_calls
    return metrics


def to_record(findings: Findings, context: Context) -> ProcessRecord:
    reason = _incomplete_reason(findings, context)
    # A leak report, even a cut one, was a leak check; without one, only a sign that the check ran.
    leak_check = findings.leak_report_seen or (context.leak_detection and findings.leak_check_done)
    return ProcessRecord(
        pid=findings.pid,
        log_files=(str(findings.path),),
        metrics=_metrics(findings, leak_check),
        leaks=tuple(findings.leaks),
        errors=tuple(findings.errors),
        leak_check=leak_check,
        complete=reason is None,
        incomplete_reason=reason,
        fatal_signal=findings.fatal_signal,
    )


def missing_output(logdir: Path, outcome: Outcome, context: Context, prefix: str) -> ProcessRecord:
    if outcome.timed_out:
        reason = f"no {context.tool_label} log: the run timed out before any process wrote one"
    elif outcome.signal is not None:
        reason = f"no {context.tool_label} log: the run was killed by signal {outcome.signal} first"
    else:
        reason = (f"no {context.tool_label} log ({prefix}.<program>.<pid>) in {logdir}: is the program built "
                  f"with {'-fsanitize=address' if prefix == 'asan' else '-fsanitize=leak'}, and run directly "
                  "rather than through a tool that clears the environment?")
    return ProcessRecord(leak_check=False, complete=False, incomplete_reason=reason)
