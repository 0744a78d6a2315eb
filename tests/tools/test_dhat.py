"""DHAT end to end: heapprog.c's scenarios run under ``valgrind --tool=dhat`` as ``launch`` says, read
back by ``collect``; then the saved real profiles of tests/data/dhat through ``parse``, and the
parser's edges (cut files, foreign files, reads that split values)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import BuildProgram
from heaprun import (
    CALLS_CALLS,
    CALLS_PEAK,
    CALLS_TOTAL_WHOLE_REALLOCS,
    DATA,
    PEAK,
    THREAD_CALLS,
    by_pid,
    needs,
    only,
    run,
    without_path,
)

from memgate.errors import ConfigError, ParseError, ToolError
from memgate.proc import Outcome
from memgate.tools import dhat, get_tool
from memgate.tools.base import ToolOptions
from memgate.tools.dhat import DHAT, read_profile

SAVED = DATA / "dhat"
valgrind = needs("valgrind")


@pytest.fixture(scope="module")
def heapprog(build_program: BuildProgram) -> Path:
    return build_program("heapprog.c", flags=("-pthread",))


def test_registry_serves_dhat() -> None:
    assert get_tool("dhat") is DHAT
    assert DHAT.metrics == {"heap_peak_bytes", "heap_total_bytes", "heap_end_bytes", "alloc_calls"}


def test_launch_writes_a_profile_and_a_log_per_process(tmp_path: Path) -> None:
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind not installed")
    launch = DHAT.launch(["./tests", "-v"], tmp_path, ToolOptions(extra_args=("--num-callers=30",)))
    assert launch.argv == [
        "valgrind", "--tool=dhat", f"--dhat-out-file={tmp_path}/dhat.%p.json",
        f"--log-file={tmp_path}/dhat.%p.log", "--trace-children=yes", "--fullpath-after=", "--num-callers=30",
        "./tests", "-v",
    ]
    own = DHAT.launch(["./tests"], tmp_path, ToolOptions(extra_args=("--fullpath-after=src/",))).argv
    assert "--fullpath-after=src/" in own and "--fullpath-after=" not in own


def test_missing_valgrind_is_a_tool_error_with_the_install_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_path(monkeypatch, tmp_path)
    with pytest.raises(ToolError, match="valgrind is not installed") as raised:
        DHAT.version()
    assert "apt-get install valgrind" in raised.value.hint
    with pytest.raises(ToolError, match="valgrind is not installed"):
        DHAT.launch(["prog"], tmp_path, ToolOptions())


@valgrind
def test_version_is_valgrinds() -> None:
    assert DHAT.version().startswith("valgrind-3.")


# --------------------------------------------------------------------------------------------------
# Real runs


@valgrind
def test_peak_is_exact(heapprog: Path, tmp_path: Path) -> None:
    result = run(DHAT, [str(heapprog), "peak"], tmp_path / "logs")
    record = only(result.records)
    assert record.metrics == PEAK
    assert record.pid == result.pid and record.complete and record.fatal_signal is None
    assert record.command == f"{heapprog} peak"
    assert record.log_files == (str(tmp_path / "logs" / f"dhat.{result.pid}.json"),
                                str(tmp_path / "logs" / f"dhat.{result.pid}.log"))


@valgrind
def test_malloc_calloc_realloc_calls_are_counted_exactly(heapprog: Path, tmp_path: Path) -> None:
    record = only(run(DHAT, [str(heapprog), "calls"], tmp_path / "logs").records)
    assert record.metrics == {"heap_peak_bytes": CALLS_PEAK, "heap_total_bytes": CALLS_TOTAL_WHOLE_REALLOCS,
                              "alloc_calls": CALLS_CALLS, "heap_end_bytes": 0}


@valgrind
def test_a_failed_malloc_allocates_nothing(heapprog: Path, tmp_path: Path) -> None:
    record = only(run(DHAT, [str(heapprog), "failed_malloc"], tmp_path / "logs").records)
    assert record.metrics == {"heap_peak_bytes": 0, "heap_total_bytes": 0, "alloc_calls": 0,
                              "heap_end_bytes": 0}


@valgrind
def test_bytes_live_at_exit(heapprog: Path, tmp_path: Path) -> None:
    record = only(run(DHAT, [str(heapprog), "leak"], tmp_path / "logs").records)
    assert record.metrics == {"heap_peak_bytes": 4096, "heap_total_bytes": 4096, "alloc_calls": 1,
                              "heap_end_bytes": 4096}


@valgrind
def test_a_forked_child_has_its_own_profile_with_its_parents_heap(heapprog: Path, tmp_path: Path) -> None:
    result = run(DHAT, [str(heapprog), "fork"], tmp_path / "logs")
    parent, child = by_pid(result.records)
    assert parent.pid == result.pid and child.pid != result.pid
    assert parent.metrics == {"heap_peak_bytes": 1000, "heap_total_bytes": 1000, "alloc_calls": 1,
                              "heap_end_bytes": 0}
    assert child.metrics == {"heap_peak_bytes": 3000, "heap_total_bytes": 3000, "alloc_calls": 2,
                             "heap_end_bytes": 1000}


@valgrind
def test_an_execd_child_starts_from_zero(heapprog: Path, tmp_path: Path) -> None:
    result = run(DHAT, [str(heapprog), "spawn=peak"], tmp_path / "logs")
    parent, child = by_pid(result.records)
    assert parent.pid == result.pid
    assert parent.metrics == {"heap_peak_bytes": 0, "heap_total_bytes": 0, "alloc_calls": 0,
                              "heap_end_bytes": 0}
    assert child.metrics == PEAK
    assert child.command == f"{heapprog} peak"


@valgrind
def test_threads_calls_are_exact(heapprog: Path, tmp_path: Path) -> None:
    record = only(run(DHAT, [str(heapprog), "threads"], tmp_path / "logs").records)
    assert record.metrics["alloc_calls"] == THREAD_CALLS


@valgrind
def test_a_crash_keeps_the_profile_and_names_the_signal(heapprog: Path, tmp_path: Path) -> None:
    result = run(DHAT, [str(heapprog), "crash"], tmp_path / "logs")
    record = only(result.records)
    assert result.outcome.signal == 11
    assert record.complete and record.fatal_signal == "SIGSEGV"
    assert record.metrics == {"heap_peak_bytes": 1000, "heap_total_bytes": 1000, "alloc_calls": 1,
                              "heap_end_bytes": 1000}


@valgrind
def test_a_killed_process_is_incomplete(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep
    result = run(DHAT, [sleep, "60"], tmp_path / "logs", kill_after=3.0)
    record = only(result.records)
    assert result.outcome.timed_out
    assert not record.complete and record.pid == result.pid and record.metrics == {}
    assert record.incomplete_reason and "wrote no profile for process" in record.incomplete_reason
    assert record.command == f"{sleep} 60"


@valgrind
def test_a_command_that_cannot_start_is_incomplete(tmp_path: Path) -> None:
    result = run(DHAT, [str(tmp_path / "no-such-program")], tmp_path / "logs")
    record = only(result.records)
    assert result.outcome.exit_code == 127
    assert not record.complete and record.incomplete_reason
    assert "DHAT wrote nothing" in record.incomplete_reason


@valgrind
def test_copy_mode_is_refused(heapprog: Path, tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="DHAT ran in copy mode") as raised:
        run(DHAT, [str(heapprog), "calls"], tmp_path / "logs", extra_args=("--mode=copy",))
    assert "remove --mode" in raised.value.hint


# --------------------------------------------------------------------------------------------------
# Saved real profiles


def test_saved_run_of_a_parent_and_its_forked_child(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    shutil.copytree(SAVED / "run-peak-calls-fork", logdir)
    parent, child = DHAT.collect(logdir, outcome=_ok())
    assert (parent.pid, child.pid) == (14237, 14246)
    # peak + calls + fork: the figures of the three scenarios added up
    total = PEAK["heap_total_bytes"] + CALLS_TOTAL_WHOLE_REALLOCS + 1000
    assert parent.metrics == {"heap_peak_bytes": PEAK["heap_peak_bytes"], "heap_total_bytes": total,
                              "alloc_calls": 3 + CALLS_CALLS + 1, "heap_end_bytes": 0}
    # as DHAT's own log says: "Total: 8,396,508 bytes in 25 blocks", "At t-end: 1,000 bytes"
    assert child.metrics == {"heap_peak_bytes": 5243880, "heap_total_bytes": 8396508, "alloc_calls": 25,
                             "heap_end_bytes": 1000}
    assert child.command == "./heapprog peak calls fork"


def test_parse_takes_the_pid_from_the_profile() -> None:
    record = only(DHAT.parse([SAVED / "threads.json"]))
    assert record.pid == 14247 and record.metrics["alloc_calls"] == THREAD_CALLS
    assert record.log_files == (str(SAVED / "threads.json"),)


@pytest.mark.parametrize("read_chars", [1, 2, 7, 64, 1 << 16])
def test_reads_that_split_numbers_and_strings_give_the_same_figures(
        read_chars: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dhat, "_READ_CHARS", read_chars)
    profile = read_profile(SAVED / "run-peak-calls-fork" / "dhat.14246.json")
    assert profile.totals == {"heap_total_bytes": 8396508, "alloc_calls": 25, "heap_peak_bytes": 5243880,
                              "heap_end_bytes": 1000}
    assert profile.program_points == 8


def test_saved_copy_mode_profile_is_refused() -> None:
    with pytest.raises(ParseError, match="copy mode"):
        DHAT.parse([SAVED / "copy-mode.json"])


@pytest.mark.parametrize("dropped", [1260, 664, 70, 2])  # 2: all but the closing bracket
def test_a_cut_profile_is_incomplete(dropped: int, tmp_path: Path) -> None:
    text = (SAVED / "threads.json").read_text()
    cut = tmp_path / "dhat.77.json"
    cut.write_text(text[:-dropped])
    record = only(DHAT.parse([cut]))
    assert not record.complete and record.metrics == {}
    assert record.incomplete_reason and record.incomplete_reason.startswith("the DHAT profile is truncated")


def test_an_empty_profile_is_incomplete(tmp_path: Path) -> None:
    empty = tmp_path / "dhat.5.json"
    empty.write_text("")
    record = only(DHAT.collect(tmp_path, outcome=_ok()))
    assert record.pid == 5 and not record.complete


@pytest.mark.parametrize(("text", "message"), [
    ("Memory usage summary: heap total: 1", "not a JSON object"),
    ('{"dhatFileVersion":2,"mode":"heap","pps":[{"tb":1}]}', "without the integers"),
    ('{"dhatFileVersion":2,"mode":"heap","pps":[{"tb":1.5,"tbk":1,"gb":0,"eb":0}]}', "not integers"),
    ('{"dhatFileVersion":2,"mode":"heap"}', "no program points"),
    ('{"mode":"heap","pps":[]}', "no dhatFileVersion"),
    ('{"dhatFileVersion":9,"pps":[]}', "version 9 is not supported"),
    ('{"dhatFileVersion":2 "pps":[]}', "where"),
    ("[1, 2]", "not a JSON object"),
    ("\xff\xfe{", "not UTF-8"),
])
def test_foreign_files_are_parse_errors(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "foreign.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ParseError, match=message) as raised:
        DHAT.parse([path])
    assert raised.value.path == str(path) and raised.value.hint


def test_a_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot read the DHAT profile"):
        DHAT.parse([tmp_path / "nothing.json"])


def _ok() -> Outcome:
    return Outcome(exit_code=0)


@valgrind
@pytest.mark.parametrize("argument", ["--dhat-out-file=x.json", "--log-file=x", "--log-fd=9", "--tool=drd"])
def test_options_memgate_owns_are_refused(argument: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tool_args for dhat cannot contain"):
        DHAT.launch(["./tests"], tmp_path, ToolOptions(extra_args=(argument,)))


@valgrind
def test_a_log_folder_with_a_percent_sign(heapprog: Path, tmp_path: Path) -> None:
    """Valgrind expands %p and %q in file names: memgate's folder is passed as %%."""
    logdir = tmp_path / "100%p done"
    record = only(run(DHAT, [str(heapprog), "peak"], logdir).records)
    assert record.metrics == PEAK and Path(record.log_files[0]).parent == logdir
