"""glibc memusage end to end: heapprog.c's scenarios run with libmemusage preloaded through the wrapper
``launch`` returns (standard error split by process), read back by ``collect``; the saved real outputs
of tests/data/memusage through ``parse``; the wrapper's exit status, signals and echo; cut and
foreign files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BuildProgram
from heaprun import (
    CALLS_CALLS,
    CALLS_PEAK,
    CALLS_TOTAL_REALLOC_GROWTH,
    DATA,
    PEAK,
    THREAD_CALLS,
    MiB,
    by_pid,
    only,
    run,
    without_path,
)

from memgate.errors import ConfigError, ParseError, ToolError
from memgate.proc import Outcome
from memgate.tools import get_tool, memusage
from memgate.tools.base import ToolOptions
from memgate.tools.memusage import MEMUSAGE, FunctionCalls, find_library, read_summaries

SAVED = DATA / "memusage"
PEAK_ONLY = {name: value for name, value in PEAK.items() if name != "heap_end_bytes"}


def _library_installed() -> bool:
    try:
        find_library()
    except ToolError:
        return False
    return True


libmemusage = pytest.mark.skipif(not _library_installed(), reason="libmemusage.so not installed")


@pytest.fixture(scope="module")
def heapprog(build_program: BuildProgram) -> Path:
    return build_program("heapprog.c", flags=("-pthread",))


def test_registry_serves_memusage() -> None:
    assert get_tool("memusage") is MEMUSAGE
    assert MEMUSAGE.metrics == {"heap_peak_bytes", "heap_total_bytes", "alloc_calls"}


@libmemusage
def test_launch_runs_the_wrapper_that_preloads_the_library(tmp_path: Path) -> None:
    launch = MEMUSAGE.launch(["./tests", "-v"], tmp_path, ToolOptions(
        env={"A": "1"}, extra_args=("MEMUSAGE_PROG_NAME=tests",)))
    wrapper = Path(memusage.__file__).with_name("_stderr_by_pid.py")
    assert launch.argv == [sys.executable, "-I", "-S", str(wrapper), str(tmp_path), "memusage",
                           "--preload", find_library(), "--", "./tests", "-v"]
    assert launch.env == {"A": "1", "MEMUSAGE_PROG_NAME": "tests"}
    assert "LD_PRELOAD" not in launch.env  # for the command only, never for the wrapper


def test_tool_args_that_are_not_memusage_variables_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MEMUSAGE_\\* variables, and '--png=x' is not one"):
        MEMUSAGE.launch(["prog"], tmp_path, ToolOptions(extra_args=("--png=x",)))


def test_a_missing_library_is_a_tool_error_naming_the_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_path(monkeypatch, tmp_path)
    monkeypatch.setattr(memusage, "LIBRARY_FOLDERS", (str(tmp_path),))
    for attempt in (MEMUSAGE.version, lambda: MEMUSAGE.launch(["prog"], tmp_path, ToolOptions())):
        with pytest.raises(ToolError, match="libmemusage.so was not found") as raised:
            attempt()
        assert "apt-get install libc-devtools" in raised.value.hint


@libmemusage
def test_version_names_glibc() -> None:
    assert MEMUSAGE.version().startswith("libmemusage (glibc 2.")


# --------------------------------------------------------------------------------------------------
# Real runs


@libmemusage
def test_peak_is_exact(heapprog: Path, tmp_path: Path) -> None:
    result = run(MEMUSAGE, [str(heapprog), "peak"], tmp_path / "logs")
    record = only(result.records)
    assert record.metrics == PEAK_ONLY
    assert record.complete and record.pid and record.log_files == (
        str(tmp_path / "logs" / f"memusage.{record.pid}.stderr"),)
    assert result.outcome.exit_code == 0


@libmemusage
def test_calls_are_exact_and_reallocs_count_their_growth(heapprog: Path, tmp_path: Path) -> None:
    record = only(run(MEMUSAGE, [str(heapprog), "calls"], tmp_path / "logs").records)
    assert record.metrics == {"heap_peak_bytes": CALLS_PEAK, "heap_total_bytes": CALLS_TOTAL_REALLOC_GROWTH,
                              "alloc_calls": CALLS_CALLS}


@libmemusage
def test_a_failed_malloc_is_no_call_but_counts_in_the_total(heapprog: Path, tmp_path: Path) -> None:
    record = only(run(MEMUSAGE, [str(heapprog), "failed_malloc"], tmp_path / "logs").records)
    assert record.metrics == {"heap_peak_bytes": 0, "heap_total_bytes": 1 << 40, "alloc_calls": 0}


@libmemusage
def test_a_creeping_heap(heapprog: Path, tmp_path: Path) -> None:
    record = only(run(MEMUSAGE, [str(heapprog), "grow"], tmp_path / "logs").records)
    assert record.metrics == {"heap_peak_bytes": 20000 * 32 + 64, "heap_total_bytes": 20000 * 96,
                              "alloc_calls": 40000}


@libmemusage
def test_threads_calls_are_exact(heapprog: Path, tmp_path: Path) -> None:
    record = only(run(MEMUSAGE, [str(heapprog), "threads"], tmp_path / "logs").records)
    assert record.metrics["alloc_calls"] == THREAD_CALLS


@libmemusage
def test_a_forked_child_has_its_own_summary_with_its_parents_counts(heapprog: Path, tmp_path: Path) -> None:
    parent, child = by_pid(run(MEMUSAGE, [str(heapprog), "fork"], tmp_path / "logs").records)
    assert parent.metrics == {"heap_peak_bytes": 1000, "heap_total_bytes": 1000, "alloc_calls": 1}
    assert child.metrics == {"heap_peak_bytes": 3000, "heap_total_bytes": 3000, "alloc_calls": 2}


@libmemusage
def test_an_execd_child_starts_from_zero(heapprog: Path, tmp_path: Path) -> None:
    parent, child = by_pid(run(MEMUSAGE, [str(heapprog), "spawn=peak"], tmp_path / "logs").records)
    assert parent.metrics == {"heap_peak_bytes": 0, "heap_total_bytes": 0, "alloc_calls": 0}
    assert child.metrics == PEAK_ONLY


@libmemusage
def test_a_shell_that_ends_with_exit_underscore_has_no_record(heapprog: Path, tmp_path: Path) -> None:
    """dash leaves through _exit(): its children are measured, the shell itself is not."""
    sh = shutil.which("dash") or pytest.skip("dash not installed")
    script = f"{heapprog} peak; {heapprog} calls; echo from-the-shell >&2"
    result = run(MEMUSAGE, [sh, "-c", script], tmp_path / "logs")
    first, second = by_pid(result.records)
    assert first.metrics == PEAK_ONLY and second.metrics["alloc_calls"] == CALLS_CALLS
    shell_files = [path for path in (tmp_path / "logs").iterdir()
                   if "from-the-shell" in path.read_text()]
    assert len(shell_files) == 1 and str(shell_files[0]) not in first.log_files + second.log_files


@libmemusage
def test_the_programs_own_standard_error_is_kept_and_echoed(heapprog: Path, tmp_path: Path) -> None:
    sh = shutil.which("sh")
    assert sh
    result = run(MEMUSAGE, [sh, "-c", f"echo before >&2; exec {heapprog} peak"], tmp_path / "logs")
    record = only(result.records)  # one process: the shell became heapprog
    text = Path(record.log_files[0]).read_text()
    assert text.startswith("before\n") and "Memory usage summary" in text
    assert b"before\n" in result.stderr and b"heap peak: 5243880" in result.stderr


@libmemusage
def test_exit_status_and_signal_of_the_command_come_through(heapprog: Path, tmp_path: Path) -> None:
    exited = run(MEMUSAGE, [str(heapprog), "peak", "exit3"], tmp_path / "exit")
    assert exited.outcome.exit_code == 3 and only(exited.records).metrics == PEAK_ONLY
    crashed = run(MEMUSAGE, [str(heapprog), "crash"], tmp_path / "crash")
    assert crashed.outcome.signal == signal.SIGSEGV
    record = only(crashed.records)  # a crash runs no exit handler: no summary at all
    assert not record.complete and record.incomplete_reason
    assert record.incomplete_reason.startswith("libmemusage printed no summary")


@libmemusage
def test_sigterm_to_the_wrapper_reaches_the_command(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep
    launch = MEMUSAGE.launch([sleep, "30"], tmp_path, ToolOptions())
    process = subprocess.Popen(launch.argv, env={**os.environ, **launch.env})
    time.sleep(1.0)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == -signal.SIGTERM
    assert time.monotonic() - started < 10


@libmemusage
def test_a_killed_run_is_incomplete(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep
    result = run(MEMUSAGE, [sleep, "60"], tmp_path / "logs", kill_after=1.0)
    assert result.outcome.timed_out
    assert not only(result.records).complete


@libmemusage
def test_prog_name_limits_the_profiled_processes(heapprog: Path, tmp_path: Path) -> None:
    record = only(run(MEMUSAGE, [str(heapprog), "peak"], tmp_path / "logs",
                      extra_args=("MEMUSAGE_PROG_NAME=another-program",)).records)
    assert not record.complete


@libmemusage
def test_mmap_tracing_adds_lines_that_change_nothing(heapprog: Path, tmp_path: Path) -> None:
    record = only(run(MEMUSAGE, [str(heapprog), "peak"], tmp_path / "logs",
                      extra_args=("MEMUSAGE_TRACE_MMAP=yes",)).records)
    assert record.metrics == PEAK_ONLY
    summary = only_summary(Path(record.log_files[0]))
    assert {"mmap(r)", "mmap(w)", "mmap(a)", "mremap", "munmap"} <= summary.functions.keys()


# --------------------------------------------------------------------------------------------------
# Saved real outputs


def only_summary(path: Path) -> memusage.MemusageSummary:
    summaries = read_summaries(path)
    assert len(summaries) == 1, summaries
    return summaries[0]


def test_saved_run_of_a_parent_and_its_forked_child(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    shutil.copytree(SAVED / "run-peak-calls-fork", logdir)
    parent, child = MEMUSAGE.collect(logdir, Outcome(exit_code=0))
    assert (parent.pid, child.pid) == (14441, 14442)
    total = PEAK["heap_total_bytes"] + CALLS_TOTAL_REALLOC_GROWTH + 1000
    assert parent.metrics == {"heap_peak_bytes": PEAK["heap_peak_bytes"], "heap_total_bytes": total,
                              "alloc_calls": 3 + CALLS_CALLS + 1}
    assert child.metrics == {"heap_peak_bytes": PEAK["heap_peak_bytes"], "heap_total_bytes": total + 2000,
                             "alloc_calls": 3 + CALLS_CALLS + 2}


def test_the_per_function_table_is_read_without_colour_codes() -> None:
    path = SAVED / "run-peak-calls-fork" / "memusage.14441.stderr"
    assert "\x1b[" in path.read_text()
    summary = only_summary(path)
    assert summary.functions == {
        "malloc": FunctionCalls(calls=15, bytes=8 * MiB + 3300, failed=0),
        "realloc": FunctionCalls(calls=5, bytes=1200, failed=0),
        "calloc": FunctionCalls(calls=5, bytes=1000, failed=0),
        "free": FunctionCalls(calls=19, bytes=8 * MiB + 5500, failed=0),
    }
    assert (summary.realloc_nomove, summary.realloc_shrink, summary.realloc_free) == (0, 0, 1)
    assert summary.stack_peak_bytes == 192


def test_parse_takes_the_pid_from_the_file_name() -> None:
    record = only(MEMUSAGE.parse([SAVED / "run-peak-calls-fork" / "memusage.14442.stderr"]))
    assert record.pid == 14442 and record.metrics["alloc_calls"] == 25


def test_a_summary_cut_short_is_incomplete(tmp_path: Path) -> None:
    lines = (SAVED / "run-peak-calls-fork" / "memusage.14441.stderr").read_text().splitlines(keepends=True)
    header = next(i for i, line in enumerate(lines) if "Memory usage summary" in line)
    for keep in range(header + 1, header + 5):
        cut = tmp_path / f"memusage.{keep}.stderr"
        cut.write_text("".join(lines[:keep]))
        record = only(MEMUSAGE.parse([cut]))
        assert not record.complete and record.metrics == {}
        assert record.incomplete_reason and "the memusage summary is truncated" in record.incomplete_reason


def test_a_file_without_summary_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "stderr.txt"
    path.write_text("Segmentation fault\n")
    with pytest.raises(ParseError, match="no memusage summary") as raised:
        MEMUSAGE.parse([path])
    assert raised.value.path == str(path)


def test_a_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot read the memusage output"):
        MEMUSAGE.parse([tmp_path / "memusage.1.stderr"])


def test_a_run_with_no_output_at_all_is_incomplete(tmp_path: Path) -> None:
    record = only(MEMUSAGE.collect(tmp_path, Outcome(exit_code=0)))
    assert not record.complete and record.log_files == ()


@libmemusage
def test_a_command_that_cannot_start_is_incomplete(tmp_path: Path) -> None:
    result = run(MEMUSAGE, [str(tmp_path / "no-such-program")], tmp_path / "logs")
    assert result.outcome.exit_code == 127 and b"memgate: cannot run" in result.stderr
    assert not only(result.records).complete


@libmemusage
def test_chatty_processes_keep_their_output_apart(heapprog: Path, tmp_path: Path) -> None:
    """Two processes writing at once: every line lands in its writer's file, none is cut."""
    sh = shutil.which("sh")
    assert sh
    def writer(tag: str) -> str:
        return f'(i=0; while [ $i -lt 2000 ]; do echo "{tag}-$i" >&2; i=$((i+1)); done)'

    result = run(MEMUSAGE, [sh, "-c", f"{writer('a')} & {writer('b')} & wait"], tmp_path / "logs")
    assert result.outcome.exit_code == 0
    by_writer: dict[str, list[str]] = {}
    for path in (tmp_path / "logs").iterdir():
        lines = path.read_text().splitlines()
        if lines:
            by_writer[lines[0][0]] = lines
    assert by_writer["a"] == [f"a-{i}" for i in range(2000)]
    assert by_writer["b"] == [f"b-{i}" for i in range(2000)]
