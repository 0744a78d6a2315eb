"""The canonical metric names (a public contract), how several processes combine into one figure, and
how a metric's figure is shown (in the units of ``units.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Literal, get_args

from memgate.units import format_bytes, format_count

MetricName = Literal[
    "leak_definite_bytes",
    "leak_definite_blocks",
    "leak_indirect_bytes",
    "leak_indirect_blocks",
    "leak_possible_bytes",
    "leak_possible_blocks",
    "leak_reachable_bytes",
    "leak_reachable_blocks",
    "errors",
    "heap_peak_bytes",
    "heap_total_bytes",
    "heap_end_bytes",
    "alloc_calls",
    "rss_peak_bytes",
    "page_faults_minor",
    "page_faults_major",
    "allocs_per_op",
    "bytes_per_op",
    "gc_cycles",
    "gc_pause_total_ns",
]
METRIC_NAMES: tuple[MetricName, ...] = get_args(MetricName)

LeakKind = Literal["definite", "indirect", "possible", "reachable"]
LEAK_KINDS: tuple[LeakKind, ...] = get_args(LeakKind)
#: The leak kinds that are findings, as memory errors are: memory no pointer reaches any more (gone
#: for good). They fail a run and gate by default, and SARIF reports them as errors, the others as
#: warnings.
LOST_LEAK_KINDS: tuple[LeakKind, ...] = ("definite", "indirect")


class Aggregate(str, Enum):
    SUM = "sum"  # leaks, errors, calls, totals: every process adds its own
    MAX = "max"  # peaks: processes of one suite are not assumed to overlap in time


def aggregate_of(metric: MetricName) -> Aggregate:
    return Aggregate.MAX if metric in ("heap_peak_bytes", "rss_peak_bytes") else Aggregate.SUM


def is_bytes(metric: MetricName) -> bool:
    return metric.endswith("_bytes") or metric == "bytes_per_op"


def leak_metrics(kind: LeakKind) -> tuple[MetricName, MetricName]:
    """The (bytes, blocks) metric names of a leak kind."""
    by_kind: dict[LeakKind, tuple[MetricName, MetricName]] = {
        "definite": ("leak_definite_bytes", "leak_definite_blocks"),
        "indirect": ("leak_indirect_bytes", "leak_indirect_blocks"),
        "possible": ("leak_possible_bytes", "leak_possible_blocks"),
        "reachable": ("leak_reachable_bytes", "leak_reachable_blocks"),
    }
    return by_kind[kind]


def combine(per_process: Iterable[Mapping[MetricName, int]]) -> dict[MetricName, int]:
    """Combine per-process metrics: sums for leaks, errors and calls, max for peaks.

    A metric absent from every process stays absent (a tool reports only what it measures).
    """
    combined: dict[MetricName, int] = {}
    for metrics in per_process:
        for name, value in metrics.items():
            if name not in combined:
                combined[name] = value
            elif aggregate_of(name) is Aggregate.MAX:
                combined[name] = max(combined[name], value)
            else:
                combined[name] += value
    return {name: combined[name] for name in METRIC_NAMES if name in combined}


def format_value(metric: MetricName, value: int | None) -> str:
    """Human figures for tables: bytes in binary units with the exact count kept for small values."""
    if value is None:
        return "-"
    return format_bytes(value) if is_bytes(metric) else format_count(value)
