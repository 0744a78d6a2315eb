"""OpenMetrics text for GitLab's ``artifacts:reports:metrics`` (the MR widget compares each sample
with the target branch's)."""

from __future__ import annotations

from collections.abc import Iterable

from memgate.comparison import Comparison
from memgate.metrics import METRIC_NAMES, MetricName, is_bytes
from memgate.report.common import clean

PREFIX = "memgate_"

HELP: dict[MetricName, str] = {
    "leak_definite_bytes": "Bytes definitely lost at exit (no pointer to the block is left).",
    "leak_definite_blocks": "Blocks definitely lost at exit.",
    "leak_indirect_bytes": "Bytes lost only through definitely lost blocks.",
    "leak_indirect_blocks": "Blocks lost only through definitely lost blocks.",
    "leak_possible_bytes": "Bytes possibly lost at exit (only interior pointers are left).",
    "leak_possible_blocks": "Blocks possibly lost at exit.",
    "leak_reachable_bytes": "Bytes still reachable at exit.",
    "leak_reachable_blocks": "Blocks still reachable at exit.",
    "errors": "Memory errors the tool reported (invalid reads and writes, bad frees, ...).",
    "heap_peak_bytes": "Peak heap in use (largest of the suite's processes).",
    "heap_total_bytes": "Bytes allocated over the run (all processes).",
    "heap_end_bytes": "Heap still in use at exit.",
    "alloc_calls": "Allocation calls (malloc, calloc, realloc, new, ...).",
    "rss_peak_bytes": "Peak resident set size (largest of the suite's processes).",
    "page_faults_minor": "Minor page faults.",
    "page_faults_major": "Major page faults.",
    "allocs_per_op": "Heap allocations per operation of a Go benchmark.",
    "bytes_per_op": "Heap bytes allocated per operation of a Go benchmark.",
    "gc_cycles": "Garbage collection cycles (Go runtime).",
    "gc_pause_total_ns": "Stop-the-world garbage collection pauses, in nanoseconds (Go runtime).",
}


# One gauge family per memgate metric, ``memgate_<metric>{suite="..."} <current value>``, with its ``TYPE``,
# ``UNIT`` (``bytes`` families) and ``HELP``; then ``memgate_new_sites{suite, category}``, the number of new
# leak and error sites. A metric a suite did not measure has no sample (never a 0 it did not see). Families
# are never interleaved, and the text ends with ``# EOF``.
def render_openmetrics(comparison: Comparison) -> str:
    lines: list[str] = []
    for metric in METRIC_NAMES:
        samples = [(row.suite, row.current) for suite in comparison.suites for row in suite.rows
                   if row.metric == metric and row.current is not None]
        if samples:
            unit = "bytes" if is_bytes(metric) else None
            lines += _family(PREFIX + metric, HELP[metric], unit,
                             ((f'suite="{label_value(suite)}"', value) for suite, value in samples))
    if comparison.suites:
        lines += _family(f"{PREFIX}new_sites", "New leak and error sites (not in the baseline).", None, (
            (f'suite="{label_value(suite.suite)}",category="{category}"',
             sum(1 for site in suite.sites_with("new") if site.category == category))
            for suite in comparison.suites for category in ("leak", "error")
        ))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _family(name: str, help_text: str, unit: str | None, samples: Iterable[tuple[str, int]]) -> list[str]:
    lines = [f"# TYPE {name} gauge"]
    if unit:
        lines.append(f"# UNIT {name} {unit}")
    lines.append(f"# HELP {name} {_escape(help_text)}")
    lines += [f"{name}{{{labels}}} {value}" for labels, value in samples]
    return lines


# Label values are cleaned (control characters become U+FFFD, so no newline is left) and escaped (``\`` and
# ``"``), as the OpenMetrics ABNF requires.
def label_value(text: str) -> str:
    """A label value as OpenMetrics writes it: one line, backslashes and double quotes escaped."""
    return _escape(clean(text, limit=1000))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
