"""The output files tools write per process (``memgate.tools._outputs``): found by process id, read in
lines of bounded length, and the incomplete record of a process whose output is missing."""

from __future__ import annotations

from pathlib import Path

from memgate.proc import Outcome
from memgate.tools._outputs import (
    MAX_LINE,
    capped_lines,
    files_by_pid,
    incomplete,
    no_output_reason,
    pid_in_name,
)


def test_files_are_found_by_process_id(tmp_path: Path) -> None:
    for name in ("dhat.101.json", "dhat.202.json", "dhat.303.log", "other.404.json", "dhat.x.json"):
        (tmp_path / name).touch()
    assert files_by_pid(tmp_path, "dhat", "json") == {101: tmp_path / "dhat.101.json",
                                                       202: tmp_path / "dhat.202.json"}
    assert files_by_pid(tmp_path / "absent", "dhat", "json") == {}
    assert pid_in_name(Path("massif.out.4242")) == 4242
    assert pid_in_name(Path("memusage.77.stderr")) == 77
    assert pid_in_name(Path("report.txt")) is None


def test_a_line_longer_than_the_cap_is_cut_and_the_next_line_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_text("first\n" + "n" * (3 * MAX_LINE + 5) + "\nlast\n" + "y" * MAX_LINE, encoding="utf-8")
    lines = list(capped_lines(path))
    assert lines[0] == "first"
    assert lines[1] == "n" * MAX_LINE  # only its start, not the rest as further lines
    assert lines[2:] == ["last", "y" * MAX_LINE]


def test_a_missing_output_is_an_incomplete_record_that_says_why() -> None:
    record = incomplete("no profile", pid=7, log_files=[Path("/logs/dhat.7.log")])
    assert (record.complete, record.leak_check, record.incomplete_reason) == (False, False, "no profile")
    assert record.log_files == ("/logs/dhat.7.log",)
    timed_out = Outcome(exit_code=None, signal=9, timed_out=True, duration_seconds=1.0)
    assert no_output_reason("dhat", Path("/logs"), timed_out) == (
        "dhat wrote nothing in /logs: the run timed out before any process wrote one")
