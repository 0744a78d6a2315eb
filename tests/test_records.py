"""A suite record built from its processes (``SuiteRecord.from_processes``, ``output_status``): the
one way both the runner and ``memgate parse`` make it."""

from __future__ import annotations

from memgate.records import ProcessRecord, SuiteRecord, SuiteStatus, output_status

WHOLE = ProcessRecord(pid=1, metrics={"heap_peak_bytes": 100, "alloc_calls": 2})
CUT = ProcessRecord(pid=2, metrics={"heap_peak_bytes": 300, "alloc_calls": 1}, complete=False,
                    incomplete_reason="log truncated")


def test_the_metrics_are_the_processes_combined() -> None:
    record = SuiteRecord.from_processes("unit", "massif", [WHOLE, CUT])
    assert record.processes == (WHOLE, CUT)
    assert record.metrics == {"heap_peak_bytes": 300, "alloc_calls": 3}


def test_an_incomplete_process_makes_the_suite_incomplete_with_its_reason() -> None:
    assert output_status([WHOLE]) == (SuiteStatus.OK, None)
    assert output_status([WHOLE, CUT]) == (SuiteStatus.INCOMPLETE, "log truncated")
    unexplained = ProcessRecord(complete=False)
    assert output_status([unexplained]) == (SuiteStatus.INCOMPLETE, "tool output incomplete")
    record = SuiteRecord.from_processes("unit", "massif", [WHOLE, CUT])
    assert (record.status, record.status_detail) == (SuiteStatus.INCOMPLETE, "log truncated")


def test_a_status_given_wins_over_the_outputs() -> None:
    record = SuiteRecord.from_processes("unit", "massif", [CUT], status=SuiteStatus.CRASHED,
                                        status_detail="killed by signal 9", exit_code=-9, artifacts_dir="/a")
    assert (record.status, record.status_detail) == (SuiteStatus.CRASHED, "killed by signal 9")
    assert (record.exit_code, record.artifacts_dir) == (-9, "/a")
