"""memgate.baselines.model: a baseline made from a suite's run, and which runs may become one."""

from __future__ import annotations

import pytest
from recordkit import suite

from memgate.baselines.model import Baseline, can_be_baseline, unusable_for_baseline
from memgate.errors import BaselineError
from memgate.records import Frame, SuiteStatus

from .conftest import sample_record


def test_from_suite_groups_sites_by_fingerprint() -> None:
    baseline = Baseline.from_suite(sample_record(), commit="abc123")

    assert baseline.suite == "unit"
    assert baseline.tool == "memcheck"  # recordkit's "valgrind", by its name
    assert baseline.tool_version == "3.19.0"
    assert baseline.source_commit == "abc123"
    assert baseline.metrics["leak_definite_bytes"] == 316
    assert baseline.metrics["heap_peak_bytes"] == 4096
    assert [(s.kind, s.site, s.bytes, s.blocks) for s in baseline.leaks] == [
        ("definite", "leak_many < main", 300, 3),
        ("definite", "leak_small < main", 16, 1),
        ("reachable", "leak_reachable < main", 128, 1),
    ]
    assert [(s.kind, s.site, s.count, s.description) for s in baseline.errors] == [
        ("InvalidRead", "invalid_read < main", 3, None),
    ]
    # Top frames: the project's own, without addresses (they change with every build).
    assert baseline.leaks[1].frames == (
        Frame(function="leak_small", file="prog.c", line=10),
        Frame(function="main", file="prog.c", line=11),
    )


@pytest.mark.parametrize(
    ("status", "complete", "message"),
    [
        (SuiteStatus.CRASHED, True, "status crashed"),
        (SuiteStatus.TIMEOUT, True, "status timeout"),
        (SuiteStatus.INCOMPLETE, False, "status incomplete"),
        (SuiteStatus.OK, False, "incomplete output: log truncated"),
    ],
)
def test_a_broken_run_cannot_become_a_baseline(status: SuiteStatus, complete: bool, message: str) -> None:
    with pytest.raises(BaselineError, match=message):
        Baseline.from_suite(suite("unit", status=status, complete=complete))



def test_the_runs_that_cannot_become_a_baseline_are_those_from_suite_refuses() -> None:
    runs = [suite("ok"), suite("crashed", status=SuiteStatus.CRASHED), suite("cut", complete=False),
            suite("partial", status=SuiteStatus.INCOMPLETE, complete=False)]
    assert [run.name for run in unusable_for_baseline(runs)] == ["crashed", "cut", "partial"]
    for run in runs:
        assert can_be_baseline(run) is (run.name == "ok")
        if not can_be_baseline(run):
            with pytest.raises(BaselineError, match="cannot be a baseline"):
                Baseline.from_suite(run)
