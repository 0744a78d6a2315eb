"""A suite record built from its processes (``SuiteRecord.from_processes``, ``output_status``): the
one way both the runner and ``memgate parse`` make it; and tool text, always valid Unicode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from memgate.records import Frame, Leak, MemError, ProcessRecord, SuiteRecord, SuiteStatus, output_status

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


def test_tool_text_is_valid_unicode_whatever_a_parser_or_a_file_gives() -> None:
    """A byte that is not UTF-8, kept by ``surrogateescape``, becomes U+FFFD; another lone surrogate
    cannot be encoded at all and becomes "?"; text that is valid Unicode, ASCII or not, is kept.
    The same for a record built by a parser and one read back from a dict (json.loads)."""
    frame = Frame(function="caf\udce9", file="a\ud800b.c", object="lib\u00e9.so", address="0x1")
    assert (frame.function, frame.file) == ("caf\ufffd", "a?b.c")
    assert (frame.object, frame.address) == ("lib\u00e9.so", "0x1")
    read = Leak.model_validate({"kind": "definite", "bytes": 8, "blocks": 1, "fingerprint": "0123",
                                "site": "f\udcff < main", "test": "T.\udcff",
                                "stack": [{"function": "f\udcff"}]})
    assert (read.site, read.test, read.stack[0].function) == ("f\ufffd < main", "T.\ufffd", "f\ufffd")
    read.model_dump_json().encode("utf-8")
    not_text = r"function\n  Input should be a valid string \[type=string_type"
    with pytest.raises(ValidationError, match=not_text):
        Frame(function=5)  # type: ignore[arg-type]  # a string's own error, whatever checks it
