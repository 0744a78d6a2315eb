"""The metric names and leak kinds (``memgate.metrics``): which leak kinds are lost memory, and which
metrics count each kind."""

from __future__ import annotations

from memgate.metrics import (
    LEAK_KINDS,
    LOST_LEAK_KINDS,
    METRIC_NAMES,
    Aggregate,
    aggregate_of,
    combine,
    leak_metrics,
)


def test_the_lost_kinds_are_definite_and_indirect_leaks() -> None:
    assert LOST_LEAK_KINDS == ("definite", "indirect")
    assert set(LOST_LEAK_KINDS) < set(LEAK_KINDS)


def test_every_leak_kind_has_a_bytes_and_a_blocks_metric() -> None:
    pairs = [leak_metrics(kind) for kind in LEAK_KINDS]
    assert len({metric for pair in pairs for metric in pair}) == 2 * len(LEAK_KINDS)
    assert all(metric in METRIC_NAMES for pair in pairs for metric in pair)


def test_processes_add_counts_and_keep_the_highest_peak() -> None:
    combined = combine([{"heap_peak_bytes": 100, "alloc_calls": 3}, {"heap_peak_bytes": 40, "alloc_calls": 2},
                        {"leak_definite_bytes": 16}])
    assert combined == {"heap_peak_bytes": 100, "alloc_calls": 5, "leak_definite_bytes": 16}
    assert aggregate_of("rss_peak_bytes") is Aggregate.MAX and aggregate_of("alloc_calls") is Aggregate.SUM
    assert combine([]) == {}  # nothing measured stays absent, never 0
