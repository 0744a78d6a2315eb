"""heaptrack end to end: heapprog.c's scenarios run under ``heaptrack`` as ``launch`` says, the trace
read back by ``collect`` with heaptrack's libstdc++ pool left out; a C++ program against DHAT and
memusage; the saved real traces of tests/data/heaptrack; gzip traces; cut and foreign files."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import PROGRAMS, BuildProgram
from heaprun import (
    CALLS_CALLS,
    CALLS_PEAK,
    CALLS_TOTAL_WHOLE_REALLOCS,
    DATA,
    PEAK,
    THREAD_CALLS,
    needs,
    only,
    run,
    without_path,
)

from memgate.errors import ConfigError, ParseError, ToolError, UsageError
from memgate.proc import Outcome
from memgate.records import HeapSite, ProcessRecord
from memgate.tools import get_tool
from memgate.tools.base import ToolOptions
from memgate.tools.dhat import DHAT
from memgate.tools.heaptrack import HEAPTRACK, read_trace
from memgate.tools.memusage import MEMUSAGE

SAVED = DATA / "heaptrack"
POOL = 72_704  # libstdc++'s emergency EH pool (gcc 12), which heaptrack's preload brings into every process
heaptrack = needs("heaptrack", "zstd")


@pytest.fixture(scope="module")
def heapprog(build_program: BuildProgram) -> Path:
    return build_program("heapprog.c", flags=("-pthread",))


def traced(heapprog: Path, tmp_path: Path, *scenarios: str) -> ProcessRecord:
    return only(run(HEAPTRACK, [str(heapprog), *scenarios], tmp_path / "logs").records)


def test_registry_serves_heaptrack() -> None:
    assert get_tool("heaptrack") is HEAPTRACK
    assert HEAPTRACK.metrics == {"heap_peak_bytes", "heap_total_bytes", "alloc_calls", "heap_end_bytes"}


@heaptrack
def test_launch_names_the_output(tmp_path: Path) -> None:
    launch = HEAPTRACK.launch(["./tests", "-v"], tmp_path, ToolOptions(extra_args=("--use-inject",)))
    assert launch.argv == ["heaptrack", "--use-inject", "-o", f"{tmp_path}/heaptrack", "--", "./tests", "-v"]


@heaptrack
def test_a_log_folder_with_white_space_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="white space") as raised:
        HEAPTRACK.launch(["./tests"], tmp_path / "my logs", ToolOptions())
    assert "artifacts_dir" in raised.value.hint


def test_missing_heaptrack_is_a_tool_error_with_the_install_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_path(monkeypatch, tmp_path)
    for attempt in (HEAPTRACK.version, lambda: HEAPTRACK.launch(["prog"], tmp_path, ToolOptions())):
        with pytest.raises(ToolError, match="heaptrack is not installed") as raised:
            attempt()
        assert "apt-get install heaptrack" in raised.value.hint


@heaptrack
def test_version() -> None:
    assert re.fullmatch(r"heaptrack \d+\.\d+\.\d+", HEAPTRACK.version())


# --------------------------------------------------------------------------------------------------
# Real runs


@heaptrack
def test_peak_is_exact_without_heaptracks_own_pool(heapprog: Path, tmp_path: Path) -> None:
    result = run(HEAPTRACK, [str(heapprog), "peak"], tmp_path / "logs")
    record = only(result.records)
    assert record.metrics == PEAK
    assert record.complete and record.command == f"{heapprog} peak"
    trace = read_trace(Path(record.log_files[0]))
    assert trace.pool_bytes == POOL
    assert record.log_files == (str(tmp_path / "logs" / "heaptrack.zst"),)


@heaptrack
def test_calls_are_exact_but_realloc_to_zero_is_not_seen_as_a_free(heapprog: Path, tmp_path: Path) -> None:
    record = traced(heapprog, tmp_path, "calls")
    # heaptrack 1.4 misses the free in realloc(p, 0): the 100-byte block stays "live" to the end.
    assert record.metrics == {"heap_peak_bytes": CALLS_PEAK, "heap_total_bytes": CALLS_TOTAL_WHOLE_REALLOCS,
                              "alloc_calls": CALLS_CALLS, "heap_end_bytes": 100}


@heaptrack
def test_bytes_live_at_exit(heapprog: Path, tmp_path: Path) -> None:
    assert traced(heapprog, tmp_path, "leak").metrics == {
        "heap_peak_bytes": 4096, "heap_total_bytes": 4096, "alloc_calls": 1, "heap_end_bytes": 4096}


@heaptrack
def test_a_failed_malloc_allocates_nothing(heapprog: Path, tmp_path: Path) -> None:
    assert traced(heapprog, tmp_path, "failed_malloc").metrics == {
        "heap_peak_bytes": 0, "heap_total_bytes": 0, "alloc_calls": 0, "heap_end_bytes": 0}


@heaptrack
def test_a_creeping_heap(heapprog: Path, tmp_path: Path) -> None:
    assert traced(heapprog, tmp_path, "grow").metrics == {
        "heap_peak_bytes": 20000 * 32 + 64, "heap_total_bytes": 20000 * 96, "alloc_calls": 40000,
        "heap_end_bytes": 0}


@heaptrack
def test_threads_calls_are_exact(heapprog: Path, tmp_path: Path) -> None:
    assert traced(heapprog, tmp_path, "threads").metrics["alloc_calls"] == THREAD_CALLS


@heaptrack
def test_only_the_started_process_is_traced(heapprog: Path, tmp_path: Path) -> None:
    forked = traced(heapprog, tmp_path / "fork", "fork")
    assert forked.metrics == {"heap_peak_bytes": 1000, "heap_total_bytes": 1000, "alloc_calls": 1,
                              "heap_end_bytes": 0}
    spawned = traced(heapprog, tmp_path / "spawn", "spawn=peak")
    assert spawned.metrics == {"heap_peak_bytes": 0, "heap_total_bytes": 0, "alloc_calls": 0,
                               "heap_end_bytes": 0}


@heaptrack
def test_a_crash_loses_the_trace(heapprog: Path, tmp_path: Path) -> None:
    result = run(HEAPTRACK, [str(heapprog), "leak", "crash"], tmp_path / "logs")
    assert result.outcome.exit_code == 128 + 11  # heaptrack's shell script reports the signal so
    record = only(result.records)
    assert not record.complete and record.metrics == {}
    assert record.incomplete_reason and "heaptrack lost it" in record.incomplete_reason


@heaptrack
def test_the_exit_status_comes_through(heapprog: Path, tmp_path: Path) -> None:
    result = run(HEAPTRACK, [str(heapprog), "peak", "exit3"], tmp_path / "logs")
    assert result.outcome.exit_code == 3 and only(result.records).metrics == PEAK


@heaptrack
def test_a_command_that_cannot_start_is_incomplete(tmp_path: Path) -> None:
    record = only(run(HEAPTRACK, [str(tmp_path / "no-such-program")], tmp_path / "logs").records)
    assert not record.complete and record.incomplete_reason
    assert "heaptrack wrote no trace" in record.incomplete_reason


@heaptrack
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_a_cxx_program_reads_one_pool_below_dhat_and_memusage(build_program: BuildProgram,
                                                               tmp_path: Path) -> None:
    program = [str(build_program("heapcxx.cpp"))]
    by_heaptrack = only(run(HEAPTRACK, program, tmp_path / "heaptrack").records).metrics
    by_dhat = only(run(DHAT, program, tmp_path / "dhat").records).metrics
    by_memusage = only(run(MEMUSAGE, program, tmp_path / "memusage").records).metrics
    assert by_dhat["heap_peak_bytes"] == by_memusage["heap_peak_bytes"] == POOL + 4000
    assert by_dhat["alloc_calls"] == by_memusage["alloc_calls"] == 2
    assert by_heaptrack == {"heap_peak_bytes": 4000, "heap_total_bytes": 4000, "alloc_calls": 1,
                            "heap_end_bytes": 0}


@heaptrack
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_heap_sites_are_dhats_stack_for_stack(heapprog: Path, tmp_path: Path) -> None:
    """Each stack's bytes and blocks allocated and bytes live at the heap's peak, as DHAT counts them:
    the peak is peak()'s 5 MiB + 1,000 bytes, before the other scenarios ran."""
    program = [str(heapprog), "peak", "calls", "leak", "grow"]
    by_heaptrack = only(run(HEAPTRACK, program, tmp_path / "heaptrack").records).heap_sites
    by_dhat = only(run(DHAT, program, tmp_path / "dhat").records).heap_sites

    def figures(sites: tuple[HeapSite, ...]) -> list[tuple[str, str, int, int | None, int | None]]:
        return [(site.site, site.fingerprint, site.bytes, site.blocks, site.peak_bytes) for site in sites]

    assert figures(by_heaptrack) == figures(by_dhat)
    assert [(site, total, blocks, peak) for site, _, total, blocks, peak in figures(by_heaptrack)] == [
        ("peak < main", PEAK["heap_total_bytes"], 3, PEAK["heap_peak_bytes"]),
        ("grow < main", 20000 * 96, 40000, 0), ("leak < main", 4096, 1, 0),
        ("calls < main", CALLS_TOTAL_WHOLE_REALLOCS, CALLS_CALLS, 0)]

    def places(sites: tuple[HeapSite, ...]) -> list[list[tuple[str | None, str | None, int | None]]]:
        return [[(frame.function, frame.file, frame.line) for frame in site.frames] for site in sites]

    # The same frames: full paths, and the same lines (the call's, from a return address for both).
    # Not calls's: DHAT counts a realloc'd block at the stack that first allocated it, heaptrack at the
    # realloc's, so the stack of calls that allocated most (the one shown) is another.
    assert places(by_heaptrack)[:3] == places(by_dhat)[:3]
    assert by_heaptrack[0].frames[0].file == str(PROGRAMS / "heapprog.c")


@heaptrack
def test_a_stripped_programs_stacks_are_the_same_sites_every_run(build_program: BuildProgram,
                                                                  tmp_path: Path) -> None:
    """heaptrack writes run-time addresses, which address-space randomisation moves with every run: a
    frame without a name is known by its module alone, never by its address."""
    stripped = build_program("heapwrappers.c", flags=("-s",))
    runs = [only(run(HEAPTRACK, [str(stripped), "config=3000", "index=1000"], tmp_path / str(number)).records)
            for number in (1, 2)]
    sites = [[(site.site, site.fingerprint, site.bytes) for site in record.heap_sites] for record in runs]
    module = stripped.name
    assert sites[0] == sites[1] == [(f"{module}+? < {module}+? < {module}+?", sites[0][0][1], 4000)]
    frames = runs[0].heap_sites[0].frames
    assert frames and all(frame.address is None and frame.object == str(stripped) for frame in frames)


# --------------------------------------------------------------------------------------------------
# Saved real traces


PEAK_CALLS = {"heap_peak_bytes": PEAK["heap_peak_bytes"],
              "heap_total_bytes": PEAK["heap_total_bytes"] + CALLS_TOTAL_WHOLE_REALLOCS,
              "alloc_calls": 3 + CALLS_CALLS, "heap_end_bytes": 100}


@needs("zstd")
def test_saved_trace() -> None:
    record = only(HEAPTRACK.parse([SAVED / "peak-calls.zst"]))
    assert record.metrics == PEAK_CALLS and record.pid is None
    assert record.command == "./heapprog peak calls"
    # per stack: bytes and blocks allocated, bytes live at the heap's peak (heapprog.c's figures)
    assert [(site.site, site.bytes, site.blocks, site.peak_bytes) for site in record.heap_sites] == [
        ("peak < main", PEAK["heap_total_bytes"], 3, PEAK["heap_peak_bytes"]),
        ("calls < main", CALLS_TOTAL_WHOLE_REALLOCS, CALLS_CALLS, 0)]
    peak = record.heap_sites[0].frames[0]
    assert (peak.function, peak.file, peak.line) == ("peak", "/work/main/tests/programs/heapprog.c", 29)


@needs("zstd", "heaptrack_print")
def test_heaptrack_print_agrees_once_rounded_and_pool_included() -> None:
    printed = subprocess.run(["heaptrack_print", "--print-peaks=0", "--print-allocators=0",
                              "--print-temporary=0", str(SAVED / "peak-calls.zst")],
                             capture_output=True, text=True, check=True).stdout
    calls = re.search(r"calls to allocation functions: (\d+)", printed)
    peak = re.search(r"peak heap memory consumption: ([\d.]+)M", printed)
    leaked = re.search(r"total memory leaked: (\d+)B", printed)
    assert calls and peak and leaked
    assert int(calls[1]) == PEAK_CALLS["alloc_calls"] + 1
    assert float(peak[1]) == round((PEAK_CALLS["heap_peak_bytes"] + POOL) / 1e6, 2)
    assert int(leaked[1]) == PEAK_CALLS["heap_end_bytes"]


@needs("zstd")
def test_collect_finds_the_trace(tmp_path: Path) -> None:
    shutil.copy(SAVED / "peak-calls.zst", tmp_path / "heaptrack.zst")
    assert only(HEAPTRACK.collect(tmp_path, Outcome(exit_code=0))).metrics == PEAK_CALLS


@needs("zstd")
def test_a_gzip_trace_reads_the_same(tmp_path: Path) -> None:
    text = subprocess.run(["zstd", "-dc", str(SAVED / "peak-calls.zst")], capture_output=True,
                          check=True).stdout
    with gzip.open(tmp_path / "heaptrack.gz", "wb") as handle:
        handle.write(text)
    assert only(HEAPTRACK.collect(tmp_path, Outcome(exit_code=0))).metrics == PEAK_CALLS
    cut = tmp_path / "cut.gz"
    cut.write_bytes((tmp_path / "heaptrack.gz").read_bytes()[:-30])
    assert not only(HEAPTRACK.parse([cut])).complete
    plain = tmp_path / "heaptrack.txt"
    plain.write_bytes(text)
    assert only(HEAPTRACK.parse([plain])).metrics == PEAK_CALLS
    plain.write_bytes(text[: len(text) // 2])
    record = only(HEAPTRACK.parse([plain]))
    assert not record.complete and record.incomplete_reason
    assert "the trace ends early" in record.incomplete_reason


@needs("zstd")
def test_saved_trace_of_a_crash_is_incomplete() -> None:
    record = only(HEAPTRACK.parse([SAVED / "crash.zst"]))
    assert not record.complete and record.incomplete_reason
    assert "the trace is empty" in record.incomplete_reason


@needs("zstd")
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_a_cut_trace_is_incomplete(keep: float, tmp_path: Path) -> None:
    data = (SAVED / "peak-calls.zst").read_bytes()
    cut = tmp_path / "cut.zst"
    cut.write_bytes(data[: int(len(data) * keep)])
    record = only(HEAPTRACK.parse([cut]))
    assert not record.complete and record.incomplete_reason
    assert "zstd cannot decompress" in record.incomplete_reason


def test_reading_zst_without_zstd_is_a_tool_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_path(monkeypatch, tmp_path)
    with pytest.raises(ToolError, match="the zstd program is missing") as raised:
        HEAPTRACK.parse([SAVED / "peak-calls.zst"])
    assert "apt-get install zstd" in raised.value.hint


@needs("zstd")
@pytest.mark.parametrize(("name", "content", "message"), [
    ("random.zst", bytes(range(256)) * 2, "not a zstd-compressed heaptrack trace"),
    ("random.gz", b"\x1f\x8b\x08" + bytes(200), "not a gzip-compressed heaptrack trace"),
    ("summary.txt", b"heaptrack stats:\n\tallocations: 3\n", "does not start with a version line"),
    ("bad-event.txt", b"v 10400 3\nX prog\n+ 5\n", "allocation of undefined kind 5"),
    ("bad-number.txt", b"v 10400 3\na zz 1\n", "a line heaptrack does not write"),
    # a stack node whose parent comes after it: walking the stack would never end
    ("stack-loop.txt", b"v 10400 3\ni 10 0\nt 1 2\nt 1 1\n", "a line heaptrack does not write"),
    ("kind-of-no-stack.txt", b"v 10400 3\na 10 1\n", "a line heaptrack does not write"),
    ("half-frame.txt", b"v 10400 3\ni 10 0 1 2\n", "a line heaptrack does not write"),
    ("undefined-string.txt", b"v 10400 3\ni 10 0 7\nt 1 0\na 10 1\n+ 0\n# ips: 1\n",
     "a frame names string 7, which the trace does not define"),
])
def test_foreign_files_are_parse_errors(name: str, content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ParseError, match=message) as raised:
        HEAPTRACK.parse([path])
    assert raised.value.path == str(path) and raised.value.hint


def test_a_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="no heaptrack trace here"):
        HEAPTRACK.parse([tmp_path / "heaptrack.zst"])


@heaptrack
@pytest.mark.parametrize("argument", ["-o", "--output=x", "--raw", "-p", "--analyze"])
def test_options_memgate_owns_are_refused(argument: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"cannot contain '{argument}'"):
        HEAPTRACK.launch(["./tests"], tmp_path, ToolOptions(extra_args=(argument,)))
