"""A suite record built from its processes (``SuiteRecord.from_processes``, ``output_status``): the
one way both the runner and ``memgate parse`` make it."""

from __future__ import annotations

from memgate.records import Leak, MemError, ProcessRecord, SuiteRecord, SuiteStatus, output_status

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


def test_figures_per_test_come_from_the_tool_the_process_and_the_findings() -> None:
    benchmarks = ProcessRecord(tests={"BenchmarkParse": {"allocs_per_op": 3, "bytes_per_op": 96}})
    ctest_process = ProcessRecord(test="unit", metrics={"heap_peak_bytes": 400, "leak_definite_bytes": 16},
                                  leaks=(Leak(kind="definite", bytes=16, blocks=1, fingerprint="f",
                                              site="s", test="Parser.Empty"),))
    errors = ProcessRecord(test="unit", metrics={"heap_peak_bytes": 500},
                           errors=(MemError(kind="InvalidRead", count=2, fingerprint="e", site="s",
                                            test="Parser.Empty"),))
    record = SuiteRecord.from_processes("s", "memcheck", [benchmarks, ctest_process, errors])
    assert record.tests == {
        "BenchmarkParse": {"allocs_per_op": 3, "bytes_per_op": 96},
        # Findings go to the test their stack names; the rest of a process's figures to its test.
        "Parser.Empty": {"leak_definite_bytes": 16, "leak_definite_blocks": 1, "errors": 2},
        "unit": {"heap_peak_bytes": 500},
    }
