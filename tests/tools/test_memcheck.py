"""Valgrind memcheck end to end: programs of known behaviour (tests/programs, gcc -g -O0) run under
the command line ``launch`` builds, their output read back by ``collect`` and ``parse``; memcheck's
own text output of the same programs; then the saved real outputs of tests/data/memcheck as extra
parser cases, and the edges: cut, empty, foreign and broken files."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import PROGRAMS, BuildProgram

from memgate.errors import ConfigError, ParseError, ToolError
from memgate.metrics import METRIC_NAMES, MetricName
from memgate.proc import Outcome
from memgate.records import ProcessRecord
from memgate.sites import top_frames
from memgate.tools import get_tool
from memgate.tools.base import Tool, ToolOptions
from memgate.tools.memcheck import MEMCHECK, MEMCHECK_METRICS, xmlstream
from memgate.tools.memcheck.xmlfile import XmlReader, read_xml
from memgate.tools.memcheck.xmlstream import ROOT, Item, XmlElement, _leaves, _walk_error

DATA = Path(__file__).parent.parent / "data" / "memcheck"
LEAKS = ("leak_small", "leak_many", "leak_tree", "leak_possible", "leak_reachable")
ERRORS = ("invalid_read", "invalid_write", "use_after_free", "double_free")
KINDS = ("repeat_read=5", "uninit_cond", "syscall_param", "overlap", "fishy", "client_check", "free_stack")

LEAK_METRICS: dict[MetricName, int] = {
    "leak_definite_bytes": 348,
    "leak_definite_blocks": 5,
    "leak_indirect_bytes": 64,
    "leak_indirect_blocks": 1,
    "leak_possible_bytes": 48,
    "leak_possible_blocks": 1,
    "leak_reachable_bytes": 128,
    "leak_reachable_blocks": 1,
}
NO_LEAKS: dict[MetricName, int] = {name: 0 for name in LEAK_METRICS}
# (kind, own bytes, blocks, site): definite leak_tree owns 32 bytes; its child's 64 are the indirect record
LEAK_RECORDS = sorted(
    [
        ("definite", 16, 1, "leak_small < main"),
        ("definite", 300, 3, "leak_many < main"),
        ("definite", 32, 1, "leak_tree < main"),
        ("indirect", 64, 1, "leak_tree < main"),
        ("possible", 48, 1, "leak_possible < main"),
        ("reachable", 128, 1, "leak_reachable < main"),
    ]
)
ERROR_RECORDS = sorted(
    [
        ("InvalidRead", 1, "invalid_read < main"),
        ("InvalidWrite", 1, "invalid_write < main"),
        ("InvalidRead", 1, "use_after_free < main"),
        ("InvalidFree", 1, "double_free < main"),
    ]
)
# In text mode a frame with source information does not name its object, so libc's write() is not
# recognised as a runtime frame by memgate.fingerprint (it is in the XML, which names libc.so.6).
TEXT_SYSCALL_SITE = "write < syscall_param < main"
KIND_RECORDS = sorted(
    [
        ("InvalidRead", 5, "repeat_read < main"),
        ("UninitCondition", 1, "uninit_cond < main"),
        ("SyscallParam", 1, "syscall_param < main"),
        ("Overlap", 1, "overlap < main"),
        ("FishyValue", 1, "fishy < main"),
        ("ClientCheck", 1, "client_check < main"),
        ("InvalidFree", 1, "free_stack < main"),
    ]
)


@pytest.fixture(autouse=True)
def _no_user_valgrind_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own VALGRIND_OPTS or .valgrindrc would change what memcheck prints."""
    monkeypatch.delenv("VALGRIND_OPTS", raising=False)


@pytest.fixture(scope="session")
def valgrind() -> str:
    path = shutil.which("valgrind")
    if path is None:
        pytest.skip("valgrind is not installed (.ci/run installs it)")
    return path


@pytest.fixture(scope="session")
def memprog(build_program: BuildProgram, valgrind: str) -> Path:
    return build_program("memprog.c")


@pytest.fixture(scope="session")
def vgextra(build_program: BuildProgram, valgrind: str) -> Path:
    return build_program("vgextra.c")


# --------------------------------------------------------------------------------------------------
# Helpers


def run_memcheck(
    command: Sequence[str],
    logdir: Path,
    *,
    options: ToolOptions | None = None,
    kill_after: float | None = None,
    kill_once_written: str | None = None,
    kill_with: int = signal.SIGKILL,
) -> tuple[list[ProcessRecord], Outcome]:
    """Run ``command`` under ``MEMCHECK.launch``'s command line, the way the runner does; collect.
    ``kill_after`` seconds, or once the XML holds ``kill_once_written`` (not a fixed time, which a
    loaded machine may not reach the point in), ``kill_with`` is sent to valgrind."""
    logdir.mkdir(parents=True, exist_ok=True)
    launch = MEMCHECK.launch(list(command), logdir, options or ToolOptions())
    started = time.monotonic()
    process = subprocess.Popen(
        launch.argv, env={**os.environ, **launch.env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if kill_after is not None:
        time.sleep(kill_after)
        process.send_signal(kill_with)
    if kill_once_written is not None:
        _wait_for_xml(logdir, kill_once_written, deadline=started + 120)
        process.send_signal(kill_with)
    process.communicate(timeout=120)
    code = process.returncode
    outcome = Outcome(
        exit_code=code if code >= 0 else None,
        signal=-code if code < 0 else None,
        duration_seconds=time.monotonic() - started,
    )
    return MEMCHECK.collect(logdir, outcome), outcome


def _wait_for_xml(logdir: Path, text: str, *, deadline: float) -> None:
    while not any(text in path.read_text(errors="replace") for path in logdir.glob("memcheck.*.xml")):
        assert time.monotonic() < deadline, f"memcheck never wrote {text!r}"
        time.sleep(0.05)


def run_text_mode(command: Sequence[str], logdir: Path, *valgrind_options: str) -> Path:
    """memcheck as a user runs it by hand, text output: the log file it writes."""
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / "memcheck.%p.log"
    subprocess.run(
        [
            "valgrind",
            "--leak-check=full",
            "--show-leak-kinds=all",
            f"--log-file={log}",
            *valgrind_options,
            *command,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    (path,) = logdir.glob("memcheck.*.log")
    return path


def leaks_of(record: ProcessRecord) -> list[tuple[str, int, int, str]]:
    return sorted((leak.kind, leak.bytes, leak.blocks, leak.site) for leak in record.leaks)


def errors_of(record: ProcessRecord) -> list[tuple[str, int, str]]:
    return sorted((error.kind, error.count, error.site) for error in record.errors)


def leak_metrics_of(record: ProcessRecord) -> dict[MetricName, int]:
    return {name: value for name, value in record.metrics.items() if name.startswith("leak_")}


def text_kind_records() -> list[tuple[str, int, str]]:
    return sorted(
        (kind, count, TEXT_SYSCALL_SITE if kind == "SyscallParam" else site)
        for kind, count, site in KIND_RECORDS
    )


def only(records: list[ProcessRecord]) -> ProcessRecord:
    assert len(records) == 1, records
    return records[0]


def saved(case: str) -> list[Path]:
    return sorted(path for path in (DATA / case).iterdir() if path.is_file())


def comparable(record: ProcessRecord) -> ProcessRecord:
    """A record without what differs between two readings of the same run (file names)."""
    return record.model_copy(update={"log_files": ()})


# --------------------------------------------------------------------------------------------------
# The tool object


def test_registered_and_shaped_as_a_tool() -> None:
    tool: Tool = get_tool("memcheck")
    assert tool is MEMCHECK
    assert MEMCHECK.name == "memcheck"
    assert get_tool("valgrind") is MEMCHECK  # its name before massif and DHAT came
    assert set(METRIC_NAMES) >= MEMCHECK_METRICS
    assert {*LEAK_METRICS, "errors", "alloc_calls", "heap_total_bytes", "heap_end_bytes"} == MEMCHECK_METRICS


def test_version_is_valgrinds(valgrind: str) -> None:
    assert MEMCHECK.version().startswith("valgrind-3.")


def test_missing_valgrind_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError) as raised:
        MEMCHECK.version()
    # The same message as DHAT's and massif's (one helper finds Valgrind for the three tools).
    assert raised.value.message == "valgrind is not installed (not found on PATH)"
    assert raised.value.hint == (
        "install Valgrind: apt-get install valgrind (dnf install valgrind, apk add valgrind)")


def test_launch_command_line(tmp_path: Path) -> None:
    logdir = tmp_path / "100%logs"
    launch = MEMCHECK.launch(
        ["./tests", "--filter", "x"],
        logdir,
        ToolOptions(extra_args=("--suppressions=my.supp",), env={"MY_VAR": "1"}),
    )
    folder = str(logdir.resolve()).replace("%", "%%")
    assert launch.argv == [
        "valgrind",
        "--tool=memcheck",
        "--xml=yes",
        f"--xml-file={folder}/memcheck.%p.xml",
        "--leak-check=full",
        "--show-leak-kinds=all",
        "--trace-children=yes",
        "--child-silent-after-fork=no",
        "--error-limit=no",
        "--num-callers=30",
        "--xtree-memory=full",
        f"--xtree-memory-file={folder}/memcheck.%p.xtmemory.kcg",
        "--suppressions=my.supp",
        "--",
        "./tests",
        "--filter",
        "x",
    ]
    assert "--error-exitcode" not in " ".join(launch.argv)  # the exit status stays the program's
    assert not any(argument.startswith("--log-file") for argument in launch.argv)
    assert launch.env == {"MY_VAR": "1"}


@pytest.mark.parametrize(
    "argument",
    [
        "--xml=no",
        "--xml-file=/tmp/x.xml",
        "--xml-fd=3",
        "--tool=helgrind",
        "--child-silent-after-fork=yes",
        "--xtree-memory=none",
        "--xtree-memory-file=x",
        "--log-file=/tmp/vg.%p.log",
        "--log-file=vg.%n.log",
    ],
)
def test_launch_refuses_arguments_that_move_the_output(argument: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        MEMCHECK.launch(["./tests"], tmp_path, ToolOptions(extra_args=(argument,)))
    assert argument in raised.value.message
    assert raised.value.hint


def test_launch_accepts_refinements(tmp_path: Path) -> None:
    for argument in (
        "--log-file=/tmp/valgrind.log",
        "--num-callers=50",
        "--show-leak-kinds=definite",
        "--tool=memcheck",
        "--xml=yes",
        "--track-origins=yes",
    ):
        assert argument in MEMCHECK.launch(["./t"], tmp_path, ToolOptions(extra_args=(argument,))).argv


# --------------------------------------------------------------------------------------------------
# Real runs: launch, run, collect


def test_leaks_of_every_kind(memprog: Path, tmp_path: Path) -> None:
    records, outcome = run_memcheck([str(memprog), *LEAKS], tmp_path / "logs")
    record = only(records)
    assert outcome.exit_code == 0
    assert record.complete, record.incomplete_reason
    assert leak_metrics_of(record) == LEAK_METRICS
    assert leaks_of(record) == LEAK_RECORDS
    # in use at exit is every leaked block, each counted once: 348 + 64 + 48 + 128
    assert record.metrics["heap_end_bytes"] == 588
    assert record.metrics["alloc_calls"] == 8  # 1 + 3 + 2 + 1 + 1 mallocs, nothing else
    assert record.metrics["heap_total_bytes"] == 588
    assert record.metrics["errors"] == 0
    assert record.leak_check and record.fatal_signal is None and record.pid is not None
    assert record.command == f"{memprog} {' '.join(LEAKS)}"
    stack = next(leak for leak in record.leaks if leak.site == "leak_many < main").stack
    assert [frame.function for frame in stack] == ["malloc", "leak_many", "main"]
    assert (stack[1].file, stack[1].line, stack[1].object) == (str(PROGRAMS / "memprog.c"), 29, str(memprog))
    assert stack[0].object and "vgpreload_memcheck" in stack[0].object and stack[0].address


def test_parse_of_the_same_files_gives_the_same_records(memprog: Path, tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    collected = only(run_memcheck([str(memprog), *LEAKS, *ERRORS], logdir)[0])
    files = sorted(logdir.iterdir())
    assert [path.name.split(".", 2)[2] for path in files] == ["xml", "xtmemory.kcg"]
    assert MEMCHECK.parse(files) == [collected]
    assert MEMCHECK.parse(files[::-1]) == [collected]
    # the XML alone: leaks and errors, no allocation figures
    xml_only = only(MEMCHECK.parse(files[:1]))
    assert xml_only.complete
    assert leak_metrics_of(xml_only) == LEAK_METRICS
    assert "alloc_calls" not in xml_only.metrics and "heap_total_bytes" not in xml_only.metrics
    assert xml_only.leaks == collected.leaks and xml_only.errors == collected.errors


def test_memory_errors_one_of_each(memprog: Path, tmp_path: Path) -> None:
    record = only(run_memcheck([str(memprog), *ERRORS], tmp_path / "logs")[0])
    assert record.complete, record.incomplete_reason
    assert errors_of(record) == ERROR_RECORDS
    assert record.metrics["errors"] == 4
    assert leak_metrics_of(record) == NO_LEAKS
    by_site = {error.site: error for error in record.errors}
    assert by_site["invalid_read < main"].description == "Invalid read of size 4"
    assert by_site["double_free < main"].description == "Invalid free() / delete / delete[] / realloc()"
    assert by_site["use_after_free < main"].stack[0].function == "use_after_free"


@pytest.mark.parametrize(
    "scenario, kind, site",
    [
        ("invalid_read", "InvalidRead", "invalid_read < main"),
        ("invalid_write", "InvalidWrite", "invalid_write < main"),
        ("use_after_free", "InvalidRead", "use_after_free < main"),
        ("double_free", "InvalidFree", "double_free < main"),
    ],
)
def test_each_error_alone(memprog: Path, tmp_path: Path, scenario: str, kind: str, site: str) -> None:
    record = only(run_memcheck([str(memprog), scenario], tmp_path / "logs")[0])
    assert errors_of(record) == [(kind, 1, site)]
    assert record.metrics["errors"] == 1


def test_mismatched_delete(build_program: BuildProgram, valgrind: str, tmp_path: Path) -> None:
    program = build_program("mismatch.cpp")
    record = only(run_memcheck([str(program)], tmp_path / "logs")[0])
    assert record.complete, record.incomplete_reason
    assert errors_of(record) == [("MismatchedFree", 1, "mismatched_delete < main")]
    assert record.metrics["errors"] == 1
    assert leak_metrics_of(record) == NO_LEAKS


@pytest.mark.parametrize("times", [1, 5, 40])
def test_an_error_repeated_counts_every_time(vgextra: Path, tmp_path: Path, times: int) -> None:
    record = only(run_memcheck([str(vgextra), f"repeat_read={times}"], tmp_path / "logs")[0])
    assert errors_of(record) == [("InvalidRead", times, "repeat_read < main")]
    assert record.metrics["errors"] == times


def test_every_error_kind(vgextra: Path, tmp_path: Path) -> None:
    record = only(run_memcheck([str(vgextra), *KINDS], tmp_path / "logs")[0])
    assert record.complete, record.incomplete_reason
    assert errors_of(record) == KIND_RECORDS
    assert record.metrics["errors"] == 11
    assert leak_metrics_of(record) == NO_LEAKS


def test_a_forked_child_is_a_process_of_its_own(memprog: Path, tmp_path: Path) -> None:
    records, _ = run_memcheck([str(memprog), "fork_child_leak"], tmp_path / "logs")
    assert len(records) == 2
    parent, child = sorted(records, key=lambda record: record.metrics["alloc_calls"])
    assert all(record.complete for record in records)
    assert parent.pid is not None and child.pid is not None and parent.pid != child.pid
    assert leak_metrics_of(parent) == NO_LEAKS and parent.leaks == ()
    assert leak_metrics_of(child) == {**NO_LEAKS, "leak_definite_bytes": 200, "leak_definite_blocks": 1}
    assert leaks_of(child) == [("definite", 200, 1, "child_work < fork_child_leak < main")]
    assert (parent.metrics["alloc_calls"], child.metrics["alloc_calls"]) == (0, 1)


def test_exec_children_write_their_own_files(memprog: Path, tmp_path: Path) -> None:
    """A shell that runs the program twice: three processes (the shell and its two children), each
    with its own XML and heap totals."""
    command = ["/bin/sh", "-c", f"{memprog} leak_small; {memprog} leak_many"]
    records, _ = run_memcheck(command, tmp_path / "logs")
    assert len(records) == 3 and all(record.complete for record in records)
    assert len({record.pid for record in records}) == 3
    by_command = {record.command: record for record in records}
    small, many = by_command[f"{memprog} leak_small"], by_command[f"{memprog} leak_many"]
    assert leaks_of(small) == [("definite", 16, 1, "leak_small < main")]
    assert leaks_of(many) == [("definite", 300, 3, "leak_many < main")]
    assert (small.metrics["alloc_calls"], many.metrics["alloc_calls"]) == (1, 3)
    assert len(list((tmp_path / "logs").glob("memcheck.*.xml"))) == 3


def test_a_child_forked_after_leaking_inherits_the_leak(memprog: Path, tmp_path: Path) -> None:
    """Memory lost before fork() is lost in both processes, and memcheck says so in both."""
    records, _ = run_memcheck([str(memprog), "leak_small", "fork_child_leak"], tmp_path / "logs")
    totals = sorted(record.metrics["leak_definite_bytes"] for record in records)
    assert totals == [16, 216]


def test_crash_after_leaking(memprog: Path, tmp_path: Path) -> None:
    """memcheck still searches for leaks when the program dies of a signal."""
    records, outcome = run_memcheck([str(memprog), "leak_small", "crash"], tmp_path / "logs")
    record = only(records)
    assert outcome.exit_code == 139 or outcome.signal == signal.SIGSEGV
    assert record.fatal_signal == "SIGSEGV"
    assert record.complete and record.leak_check
    assert errors_of(record) == [("InvalidWrite", 1, "crash < main")]
    assert leaks_of(record) == [
        ("definite", 16, 1, "leak_small < crash < main"),
        ("definite", 16, 1, "leak_small < main"),
    ]


def test_killed_valgrind_leaves_an_incomplete_record(memprog: Path, tmp_path: Path) -> None:
    records, outcome = run_memcheck([str(memprog), "invalid_read", "leak_small", "hang"], tmp_path / "logs",
                                     kill_once_written="<kind>InvalidRead</kind>")
    record = only(records)
    assert outcome.signal == signal.SIGKILL
    assert not record.complete
    assert record.incomplete_reason is not None
    assert "probably killed" in record.incomplete_reason
    assert f"killed by signal {int(signal.SIGKILL)}" in record.incomplete_reason
    assert not record.leak_check and leak_metrics_of(record) == {}
    assert "alloc_calls" not in record.metrics  # no xtree report either
    assert errors_of(record) == [("InvalidRead", 1, "invalid_read < main")]  # what came before is kept


def test_terminated_valgrind_still_reports(memprog: Path, tmp_path: Path) -> None:
    records, _ = run_memcheck(
        [str(memprog), "leak_small", "hang"], tmp_path / "logs", kill_after=3.0, kill_with=signal.SIGTERM
    )
    record = only(records)
    assert record.complete, record.incomplete_reason
    assert record.fatal_signal == "SIGTERM"
    assert record.metrics["leak_definite_bytes"] == 32 and record.metrics["leak_definite_blocks"] == 2


def test_alloc_calls_are_exact(memprog: Path, tmp_path: Path) -> None:
    """memgate's figures are memcheck's: churn=N adds exactly N calls and N * 32 bytes, and a program
    that allocates nothing has 0 (the C library allocates nothing in memprog)."""
    idle = only(run_memcheck([str(memprog), "churn=0"], tmp_path / "idle")[0])
    busy = only(run_memcheck([str(memprog), "churn=1000"], tmp_path / "busy")[0])
    heap = ("alloc_calls", "heap_total_bytes", "heap_end_bytes")
    assert [idle.metrics[name] for name in heap] == [0, 0, 0]
    assert busy.metrics["alloc_calls"] - idle.metrics["alloc_calls"] == 1000
    assert busy.metrics["heap_total_bytes"] - idle.metrics["heap_total_bytes"] == 32000
    assert busy.metrics["heap_end_bytes"] == 0
    assert leak_metrics_of(busy) == NO_LEAKS


def test_alloc_calls_count_realloc_calloc_strdup(vgextra: Path, tmp_path: Path) -> None:
    record = only(run_memcheck([str(vgextra), "alloc_kinds"], tmp_path / "logs")[0])
    # malloc 16, calloc 40, realloc 32, 64, 128 (each a new block for memcheck), strdup 6
    assert (record.metrics["alloc_calls"], record.metrics["heap_total_bytes"]) == (6, 286)


@pytest.mark.parametrize(
    "arguments",
    [
        (*LEAKS, "churn=100"),
        ("alloc_kinds", "leak_chain", "repeat_read=3"),
        ("fork_child_leak",),
    ],
)
def test_xtree_totals_are_memchecks_heap_summary(
    memprog: Path, vgextra: Path, tmp_path: Path, arguments: tuple[str, ...]
) -> None:
    """The HEAP SUMMARY memcheck prints in text mode, and the figures memgate takes from the xtree
    report in XML mode, are the same for the same program."""
    program = memprog if "leak_small" in arguments or "fork_child_leak" in arguments else vgextra
    xml_records, _ = run_memcheck([str(program), *arguments], tmp_path / "xml")
    logdir = tmp_path / "text"
    logdir.mkdir()
    subprocess.run(
        [
            "valgrind",
            "--trace-children=yes",
            f"--log-file={logdir}/memcheck.%p.log",
            str(program),
            *arguments,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    text_records = MEMCHECK.parse(sorted(logdir.iterdir()))
    heap = ("alloc_calls", "heap_total_bytes", "heap_end_bytes")

    def figures(records: list[ProcessRecord]) -> list[tuple[int, ...]]:
        return sorted(tuple(record.metrics[name] for name in heap) for record in records)

    assert figures(xml_records) == figures(text_records)


def test_a_leak_search_during_the_run_is_not_counted_again(vgextra: Path, tmp_path: Path) -> None:
    """VALGRIND_DO_LEAK_CHECK prints loss records; the search at exit prints them again."""
    record = only(run_memcheck([str(vgextra), "leak_twice", "leak_chain"], tmp_path / "logs")[0])
    assert record.complete, record.incomplete_reason
    assert leaks_of(record) == [
        ("definite", 16, 1, "leak_chain < main"),
        ("definite", 48, 2, "leak_twice < main"),
        ("indirect", 32, 2, "leak_chain < main"),
    ]
    assert (record.metrics["leak_definite_bytes"], record.metrics["leak_indirect_bytes"]) == (64, 32)


def test_frames_without_debug_info_keep_object_and_address(memprog: Path, tmp_path: Path) -> None:
    stripped = tmp_path / "memprog-stripped"
    shutil.copy(memprog, stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    record = only(run_memcheck([str(stripped), "leak_small", "invalid_read"], tmp_path / "logs")[0])
    assert record.complete, record.incomplete_reason
    (leak,) = record.leaks
    (error,) = record.errors
    assert (leak.kind, leak.bytes, leak.blocks) == ("definite", 16, 1)
    assert (error.kind, error.count) == ("InvalidRead", 1)
    own = [frame for frame in (*leak.stack, *error.stack) if frame.object == str(stripped)]
    assert own and all(frame.function is None and frame.file is None and frame.address for frame in own)
    assert leak.site.startswith("memprog-stripped+0x")


def test_leak_kinds_not_shown_are_absent_not_zero(memprog: Path, tmp_path: Path) -> None:
    record = only(
        run_memcheck(
            [str(memprog), *LEAKS],
            tmp_path / "logs",
            options=ToolOptions(extra_args=("--show-leak-kinds=definite,possible",)),
        )[0]
    )
    assert record.complete, record.incomplete_reason
    assert leak_metrics_of(record) == {
        "leak_definite_bytes": 348,
        "leak_definite_blocks": 5,
        "leak_possible_bytes": 48,
        "leak_possible_blocks": 1,
    }


def test_xml_mode_always_searches_for_leaks(memprog: Path, tmp_path: Path) -> None:
    """memcheck forces --leak-check=full when it writes XML (mc_post_clo_init): the records are there."""
    record = only(
        run_memcheck(
            [str(memprog), *LEAKS, "invalid_read"],
            tmp_path / "logs",
            options=ToolOptions(extra_args=("--leak-check=no",)),
        )[0]
    )
    assert record.complete and record.leak_check
    assert leak_metrics_of(record) == LEAK_METRICS and leaks_of(record) == LEAK_RECORDS
    assert record.metrics["errors"] == 1 and record.metrics["heap_end_bytes"] == 588


def test_text_log_without_leak_check(memprog: Path, tmp_path: Path) -> None:
    """In text mode --leak-check=no is obeyed: no leak figure at all, not zeros."""
    log = run_text_mode([str(memprog), *LEAKS, "invalid_read"], tmp_path, "--leak-check=no")
    record = only(MEMCHECK.parse([log]))
    assert record.complete and not record.leak_check
    assert leak_metrics_of(record) == {} and record.leaks == ()
    assert record.metrics["errors"] == 1 and record.metrics["heap_end_bytes"] == 588


def test_program_that_cannot_start(tmp_path: Path, valgrind: str) -> None:
    records, outcome = run_memcheck([str(tmp_path / "no-such-program")], tmp_path / "logs")
    record = only(records)
    assert outcome.exit_code == 127
    assert not record.complete and not record.leak_check
    assert record.incomplete_reason is not None and "exit status 127" in record.incomplete_reason


def test_collect_without_any_output(tmp_path: Path) -> None:
    record = only(MEMCHECK.collect(tmp_path, Outcome(exit_code=None, timed_out=True)))
    assert not record.complete
    assert record.incomplete_reason is not None and "timed out" in record.incomplete_reason


# --------------------------------------------------------------------------------------------------
# memcheck's text output: the same truth


def test_text_log_gives_the_same_figures_as_the_xml(memprog: Path, tmp_path: Path) -> None:
    xml_record = only(run_memcheck([str(memprog), *LEAKS, *ERRORS, "churn=10"], tmp_path / "xml")[0])
    log = run_text_mode([str(memprog), *LEAKS, *ERRORS, "churn=10"], tmp_path / "text")
    text_record = only(MEMCHECK.parse([log]))
    assert text_record.complete, text_record.incomplete_reason
    assert text_record.metrics == xml_record.metrics
    assert leaks_of(text_record) == LEAK_RECORDS
    assert errors_of(text_record) == ERROR_RECORDS
    assert [leak.fingerprint for leak in text_record.leaks] == [leak.fingerprint for leak in xml_record.leaks]


@pytest.mark.parametrize("options", [("-s",), ()], ids=["with-recap", "without-recap"])
def test_text_log_error_counts(vgextra: Path, tmp_path: Path, options: tuple[str, ...]) -> None:
    log = run_text_mode([str(vgextra), *KINDS], tmp_path / "text", *options)
    record = only(MEMCHECK.parse([log]))
    assert record.complete, record.incomplete_reason
    assert record.metrics["errors"] == 11
    if options:  # the recap says which context repeated
        assert errors_of(record) == text_kind_records()
    else:  # each printed context once; the total still counts the repeats
        assert sorted(kind for kind, _, _ in errors_of(record)) == sorted(kind for kind, _, _ in KIND_RECORDS)


def test_text_log_one_repeated_context(vgextra: Path, tmp_path: Path) -> None:
    record = only(MEMCHECK.parse([run_text_mode([str(vgextra), "repeat_read=7", "leak_chain"], tmp_path)]))
    assert errors_of(record) == [("InvalidRead", 7, "repeat_read < main")]
    assert leak_metrics_of(record) == {
        **NO_LEAKS,
        "leak_definite_bytes": 16,
        "leak_definite_blocks": 1,
        "leak_indirect_bytes": 32,
        "leak_indirect_blocks": 2,
    }


def test_text_stderr_of_several_processes(memprog: Path, tmp_path: Path) -> None:
    """What a user who captured valgrind's stderr gives: program output and two processes mixed."""
    command = [
        "valgrind",
        "--leak-check=full",
        "--trace-children=yes",
        str(memprog),
        "leak_small",
        "fork_child_leak",
        "invalid_write",
    ]
    result = subprocess.run(command, capture_output=True, timeout=120)
    log = tmp_path / "stderr.log"
    log.write_bytes(b"test output before valgrind\n" + result.stderr + b"\nmore program output\n")
    records = MEMCHECK.parse([log])
    assert len(records) == 2 and all(record.complete for record in records)
    by_errors = sorted(records, key=lambda record: record.metrics["errors"])
    child, parent = by_errors
    assert errors_of(parent) == [("InvalidWrite", 1, "invalid_write < main")]
    assert (parent.metrics["leak_definite_bytes"], child.metrics["leak_definite_bytes"]) == (16, 216)


# --------------------------------------------------------------------------------------------------
# Saved real outputs (tests/data/memcheck, made by its regenerate.py)

SAVED: dict[str, list[dict[MetricName, int]]] = {
    "leaks": [
        {**LEAK_METRICS, "errors": 0, "alloc_calls": 8, "heap_total_bytes": 588, "heap_end_bytes": 588}
    ],
    "protocol6-leaks": [
        {**LEAK_METRICS, "errors": 0, "alloc_calls": 8, "heap_total_bytes": 588, "heap_end_bytes": 588}
    ],
    "errors": [{**NO_LEAKS, "errors": 4, "alloc_calls": 4, "heap_total_bytes": 144, "heap_end_bytes": 0}],
    "kinds": [{**NO_LEAKS, "errors": 11, "alloc_calls": 5, "heap_total_bytes": 124, "heap_end_bytes": 0}],
    "fork": [
        {**NO_LEAKS, "errors": 0, "alloc_calls": 0, "heap_total_bytes": 0, "heap_end_bytes": 0},
        {
            **NO_LEAKS,
            "leak_definite_bytes": 200,
            "leak_definite_blocks": 1,
            "errors": 0,
            "alloc_calls": 1,
            "heap_total_bytes": 200,
            "heap_end_bytes": 200,
        },
    ],
    "crash": [
        {
            **NO_LEAKS,
            "leak_definite_bytes": 32,
            "leak_definite_blocks": 2,
            "errors": 1,
            "alloc_calls": 2,
            "heap_total_bytes": 32,
            "heap_end_bytes": 32,
        }
    ],
    "terminated": [
        {
            **NO_LEAKS,
            "leak_definite_bytes": 32,
            "leak_definite_blocks": 2,
            "errors": 0,
            "alloc_calls": 2,
            "heap_total_bytes": 32,
            "heap_end_bytes": 32,
        }
    ],
    "mismatch": [{**NO_LEAKS, "errors": 1, "alloc_calls": 3, "heap_total_bytes": 76832, "heap_end_bytes": 0}],
    "leak-twice": [
        {
            **NO_LEAKS,
            "leak_definite_bytes": 64,
            "leak_definite_blocks": 3,
            "leak_indirect_bytes": 32,
            "leak_indirect_blocks": 2,
            "errors": 0,
            "alloc_calls": 5,
            "heap_total_bytes": 96,
            "heap_end_bytes": 96,
        }
    ],
    "stripped": [
        {
            **NO_LEAKS,
            "leak_definite_bytes": 16,
            "leak_definite_blocks": 1,
            "errors": 1,
            "alloc_calls": 2,
            "heap_total_bytes": 56,
            "heap_end_bytes": 16,
        }
    ],
    "deep": [
        {
            **NO_LEAKS,
            "leak_definite_bytes": 24,
            "leak_definite_blocks": 1,
            "errors": 1,
            "alloc_calls": 2,
            "heap_total_bytes": 56,
            "heap_end_bytes": 24,
        }
    ],
    "clean": [{**NO_LEAKS, "errors": 0, "alloc_calls": 1000, "heap_total_bytes": 32000, "heap_end_bytes": 0}],
    "protocol6-clean": [
        {**NO_LEAKS, "errors": 0, "alloc_calls": 1000, "heap_total_bytes": 32000, "heap_end_bytes": 0}
    ],
    "user-default-kinds": [
        {
            "leak_definite_bytes": 348,
            "leak_definite_blocks": 5,
            "leak_possible_bytes": 48,
            "leak_possible_blocks": 1,
            "errors": 1,
        }
    ],
    "text-leaks-errors": [
        {**LEAK_METRICS, "errors": 4, "alloc_calls": 12, "heap_total_bytes": 732, "heap_end_bytes": 588}
    ],
    "text-kinds-recap": [
        {
            **NO_LEAKS,
            "leak_definite_bytes": 64,
            "leak_definite_blocks": 3,
            "leak_indirect_bytes": 32,
            "leak_indirect_blocks": 2,
            "errors": 11,
            "alloc_calls": 10,
            "heap_total_bytes": 220,
            "heap_end_bytes": 96,
        }
    ],
    "text-kinds-no-recap": [
        {
            **NO_LEAKS,
            "leak_definite_bytes": 16,
            "leak_definite_blocks": 1,
            "leak_indirect_bytes": 32,
            "leak_indirect_blocks": 2,
            "errors": 6,
            "alloc_calls": 5,
            "heap_total_bytes": 144,
            "heap_end_bytes": 48,
        }
    ],
    "text-one-context": [
        {
            **NO_LEAKS,
            "leak_definite_bytes": 16,
            "leak_definite_blocks": 1,
            "leak_indirect_bytes": 32,
            "leak_indirect_blocks": 2,
            "errors": 7,
            "alloc_calls": 4,
            "heap_total_bytes": 80,
            "heap_end_bytes": 48,
        }
    ],
    "text-summary-only": [
        {**LEAK_METRICS, "errors": 1, "alloc_calls": 9, "heap_total_bytes": 628, "heap_end_bytes": 588}
    ],
    "text-stderr-fork": [
        {
            **NO_LEAKS,
            "leak_definite_bytes": 16,
            "leak_definite_blocks": 1,
            "errors": 1,
            "alloc_calls": 2,
            "heap_total_bytes": 56,
            "heap_end_bytes": 16,
        },
        {
            **NO_LEAKS,
            "leak_definite_bytes": 216,
            "leak_definite_blocks": 2,
            "errors": 0,
            "alloc_calls": 2,
            "heap_total_bytes": 216,
            "heap_end_bytes": 216,
        },
    ],
    "text-crash": [
        {
            **NO_LEAKS,
            "leak_definite_bytes": 32,
            "leak_definite_blocks": 2,
            "errors": 1,
            "alloc_calls": 2,
            "heap_total_bytes": 32,
            "heap_end_bytes": 32,
        }
    ],
    "text-clean": [
        {**NO_LEAKS, "errors": 0, "alloc_calls": 1000, "heap_total_bytes": 32000, "heap_end_bytes": 0}
    ],
}


@pytest.mark.parametrize("case", sorted(SAVED))
def test_saved_output(case: str) -> None:
    records = MEMCHECK.parse(saved(case))
    assert [record.metrics for record in records] == SAVED[case]
    assert all(record.complete for record in records), [record.incomplete_reason for record in records]
    for record in records:
        assert (
            sum(error.count for error in record.errors) == record.metrics["errors"]
            or case == "text-kinds-no-recap"
        )


def test_saved_records_are_the_truth() -> None:
    (leaks,) = MEMCHECK.parse(saved("leaks"))
    assert leaks_of(leaks) == LEAK_RECORDS
    (protocol6,) = MEMCHECK.parse(saved("protocol6-leaks"))
    assert comparable(protocol6) == comparable(leaks)
    (kinds,) = MEMCHECK.parse(saved("kinds"))
    assert errors_of(kinds) == KIND_RECORDS
    (text,) = MEMCHECK.parse(saved("text-kinds-recap"))
    assert errors_of(text) == text_kind_records()
    (crash,) = MEMCHECK.parse(saved("crash"))
    assert crash.fatal_signal == "SIGSEGV"
    (deep,) = MEMCHECK.parse(saved("deep"))
    assert len(deep.leaks[0].stack) == 30  # --num-callers=30
    assert deep.leaks[0].site == "descend < descend < descend"


def test_saved_killed_run() -> None:
    (record,) = MEMCHECK.parse(saved("killed"))
    assert not record.complete and not record.leak_check
    assert (
        record.incomplete_reason is not None and "ends before </valgrindoutput>" in record.incomplete_reason
    )
    assert errors_of(record) == [("InvalidRead", 1, "invalid_read < main")]
    (text,) = MEMCHECK.parse(saved("text-killed"))
    assert (
        not text.complete
        and text.incomplete_reason is not None
        and "no ERROR SUMMARY" in text.incomplete_reason
    )


def test_saved_fork_bug_output_is_refused_with_the_fix() -> None:
    """Valgrind 3.19 with a %p --log-file writes a forked child's XML into its parent's file."""
    (xml,) = (DATA / "user-fork-log-bug").glob("*.xml")
    with pytest.raises(ParseError) as raised:
        MEMCHECK.parse([xml])
    assert raised.value.path == str(xml)
    assert "%p" in raised.value.hint and "--log-file" in raised.value.hint


# -- two independent readings of the XML agree ----------------------------------------------------


def _changed_copy(case: str, old: bytes, new: bytes, tmp_path: Path, count: int = -1) -> tuple[Path, Path]:
    """The saved XML of ``case`` and a copy of it with ``old`` replaced by ``new``."""
    (source,) = (DATA / case).glob("*.xml")
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes().replace(old, new, count))
    assert path.read_bytes() != source.read_bytes()
    return source, path


def _whole_tree_items(path: Path) -> Iterator[Item]:
    """The items of a (small, whole) XML file from a whole-tree parse and the element walk."""
    root = ElementTree.parse(path).getroot()
    for element in root:
        if element.tag == "error":
            yield ROOT, _walk_error(element)
        elif element.tag in xmlstream.PAIR_PARENTS:
            for pair in element:
                yield element.tag, XmlElement("pair", "", list(_leaves(pair)))
            yield ROOT, XmlElement(element.tag)
        else:
            yield ROOT, XmlElement(element.tag, element.text or "", list(_leaves(element)))
    yield "", XmlElement(root.tag)


def _summary(path: Path, reading: str) -> tuple[object, ...]:
    if reading == "tree":
        output = XmlReader(path).read(_whole_tree_items(path))
    else:
        output = read_xml(path, use_lxml=reading == "lxml")
    return (
        output.pid,
        output.command,
        output.finished,
        output.problems,
        output.fatal_signal,
        output.leak_check,
        output.shown_kinds,
        output.heap,
        output.leak_summary,
        output.leaks.leaks(),
        output.errors.errors(),
    )


COMPLETE_XML = sorted(
    path for path in DATA.glob("*/*.xml") if path.parent.name not in ("killed", "user-fork-log-bug")
)


@pytest.mark.parametrize("path", COMPLETE_XML, ids=lambda path: path.parent.name)
def test_expat_lxml_and_whole_tree_readings_agree(path: Path) -> None:
    assert _summary(path, "expat") == _summary(path, "lxml") == _summary(path, "tree")


# Well-formed shapes valgrind does not write but an XML parser takes: the three readings agree.
ODD_BUT_WELL_FORMED = {
    "attribute holding >": (b"<status>", b"<status a=\">x\" b='&lt;'>"),
    "byte order mark": (b"<?xml", b"\xef\xbb\xbf<?xml"),
    "blank in end tags": (b"</error>", b"</error >"),
    "empty <error/>": (b"<errorcounts>", b"<error/>\n<errorcounts>"),
    "empty top-level element": (b"<status>", b"<foo/><status>"),
    "entity in a top-level element": (b"<tool>memcheck</tool>", b"<tool>mem&amp;check</tool>"),
    "CR LF line ends": (b"\n", b"\r\n"),
    "attribute on <error>": (b"<error>", b"<error x=\"1\">"),
    "tab in a tag": (b"<status>", b"<status\t>"),
}


@pytest.mark.parametrize("change", ODD_BUT_WELL_FORMED.values(), ids=ODD_BUT_WELL_FORMED)
def test_odd_but_well_formed_xml_reads_the_same_three_ways(change: tuple[bytes, bytes],
                                                           tmp_path: Path) -> None:
    old, new = change
    _, path = _changed_copy("leaks", old, new, tmp_path, 1 if old != b"\n" else -1)
    assert _summary(path, "expat") == _summary(path, "lxml") == _summary(path, "tree")


# The same for <pair>s, on a file that has some: a run of pairs in another shape is read one by one.
ODD_PAIRS = {
    "blank in a pair's end tag": (b"</pair>", b"</pair >"),
    "attribute on a pair": (b"<pair>", b"<pair a=\"1\">"),
}


@pytest.mark.parametrize("change", ODD_PAIRS.values(), ids=ODD_PAIRS)
def test_pairs_in_another_shape_read_the_same_three_ways(change: tuple[bytes, bytes], tmp_path: Path) -> None:
    source, path = _changed_copy("kinds", *change, tmp_path, 1)
    assert _summary(path, "expat") == _summary(path, "lxml") == _summary(path, "tree")
    assert _summary(path, "expat") == _summary(source, "expat")  # the same figures as memcheck's own


@pytest.mark.parametrize(("moved", "records"), [("0x48417B4", 1), ("0x1091F6", 2)],
                         ids=["address of a frame with a function", "address of a stripped frame"])
def test_loss_records_whose_stacks_differ_in_one_address(moved: str, records: int, tmp_path: Path) -> None:
    """A stack is known by its text without addresses (``Sites.identity``) only when no frame's site
    depends on its address: a stripped frame's (no function, no file) does, malloc's does not."""
    (source,) = (DATA / "stripped").glob("*.xml")
    text = source.read_text()
    match = re.search(r"<error>\s*<unique>0x1</unique>.*?</error>\n", text, re.S)
    assert match is not None and moved in match[0]
    copy = match[0].replace("<unique>0x1<", "<unique>0x7<").replace(moved, "0x1234560")
    path = tmp_path / source.name
    path.write_text(text.replace(match[0], match[0] + copy))
    leaks = read_xml(path).leaks.leaks()
    assert sorted(leak.bytes for leak in leaks) == ([32] if records == 1 else [16, 16])
    assert _summary(path, "expat") == _summary(path, "lxml") == _summary(path, "tree")


@pytest.mark.parametrize("markup", [b"<!-- c -->", b"<![CDATA[x]]>", b"<?foo bar?>"],
                         ids=["comment", "CDATA", "processing instruction"])
@pytest.mark.parametrize("where", [b"<kind>", b"<status>"], ids=["in an error", "between elements"])
def test_markup_valgrind_never_writes_is_refused_by_both_readings(markup: bytes, where: bytes,
                                                                   tmp_path: Path) -> None:
    (source,) = (DATA / "leaks").glob("*.xml")
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes().replace(where, markup + where, 1))
    for chunk in (1, 7, xmlstream.CHUNK_BYTES):  # markup cut by the ends of chunks too
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(xmlstream, "CHUNK_BYTES", chunk)
            for use_lxml in (False, True):
                with pytest.raises(ParseError, match="which valgrind never writes"):
                    read_xml(path, use_lxml=use_lxml)


def test_a_tag_without_end_does_not_grow_the_lxml_reading(tmp_path: Path) -> None:
    """The tag scan keeps a tag cut by the end of the bytes fed until its '>' comes (here an <error>
    that is not where memcheck puts one, fed up to its name): a bound, not 3 MB in one tag."""
    (source,) = (DATA / "leaks").glob("*.xml")
    path = tmp_path / source.name
    odd = b'<status><error a="' + b"x" * (3 << 20) + b'"/>'
    path.write_bytes(source.read_bytes().replace(b"<status>", odd, 1))
    with pytest.raises(ParseError, match="a tag that does not end within 1,048,576 bytes"):
        read_xml(path, use_lxml=True)


@pytest.mark.parametrize("use_lxml", [False, True], ids=["expat", "lxml"])
@pytest.mark.parametrize("inside", [b"<a>" * 1000, b"garbage <<< ", b"<status><state>RUNNING"])
def test_broken_xml_that_ends_with_the_root_end_is_broken_not_cut_short(inside: bytes, use_lxml: bool,
                                                                         tmp_path: Path) -> None:
    """Both parsers wait for the '>' after a '<', so the error can come only with the last bytes, as
    for a file cut short: a file that ends with </valgrindoutput> was not cut short."""
    (source,) = (DATA / "leaks").glob("*.xml")
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes().replace(b"</valgrindoutput>", inside + b"</valgrindoutput>"))
    with pytest.raises(ParseError, match="broken Valgrind XML"):
        read_xml(path, use_lxml=use_lxml)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
@pytest.mark.parametrize(
    "path", [*COMPLETE_XML, *DATA.glob("killed/*.xml")], ids=lambda path: path.parent.name
)
def test_any_chunk_size_gives_the_same_reading(
    path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tags, elements and runs of elements cut by the end of a chunk anywhere."""
    expected = _summary(path, "expat")
    monkeypatch.setattr(xmlstream, "CHUNK_BYTES", chunk)
    assert _summary(path, "expat") == expected
    assert _summary(path, "lxml") == expected


# --------------------------------------------------------------------------------------------------
# Cut, empty, foreign and broken input


@pytest.mark.parametrize("use_lxml", [False, True], ids=["expat", "lxml"])
def test_xml_cut_anywhere_is_incomplete_or_refused_never_a_pass(tmp_path: Path, use_lxml: bool) -> None:
    (source,) = (DATA / "errors").glob("*.xml")
    text = source.read_bytes()
    cut_file = tmp_path / "memcheck.4242.xml"
    header_end = text.index(b"</protocoltool>") + len(b"</protocoltool>")
    for cut in range(1, len(text) - 20, 37):
        cut_file.write_bytes(text[:cut])
        try:
            output = read_xml(cut_file, use_lxml=use_lxml)
        except ParseError as error:
            assert cut < header_end, (cut, error.one_line())
            continue
        assert not output.finished and output.problems, cut
        assert "probably killed" in output.problems[0]


def test_cut_xml_through_parse_is_incomplete(tmp_path: Path) -> None:
    (source,) = (DATA / "leaks").glob("*.xml")
    text = source.read_text()
    cut = tmp_path / "memcheck.77.xml"
    cut.write_text(text[: text.index("<status>\n  <state>FINISHED") + 20])
    (record,) = MEMCHECK.parse([cut])
    assert record.pid == 32639 and not record.complete and not record.leak_check
    assert record.metrics == {"errors": 0}


def test_empty_file_is_incomplete(tmp_path: Path) -> None:
    empty = tmp_path / "memcheck.555.xml"
    empty.write_text("")
    (record,) = MEMCHECK.parse([empty])
    assert record.pid == 555 and not record.complete
    assert record.incomplete_reason is not None and "empty" in record.incomplete_reason


@pytest.mark.parametrize(
    "content, words",
    [
        ("this is not valgrind output\n", "not Valgrind memcheck output"),
        ("\x00\x01\x02binary", "binary"),
        ('<?xml version="1.0"?>\n<svg><g/></svg>\n', "not Valgrind's"),
        (
            "<valgrindoutput><protocolversion>4</protocolversion><protocoltool>memcheck</protocoltool>"
            "<error><kind>InvalidRead</kind></error> garbage <<< </valgrindoutput>",
            "broken Valgrind XML",
        ),
        (
            "<valgrindoutput><protocolversion>3</protocolversion></valgrindoutput>",
            "protocol '3' is not supported",
        ),
        (
            "<valgrindoutput><protocolversion>7</protocolversion></valgrindoutput>",
            "protocol '7' is not supported",
        ),
        (
            "<valgrindoutput><protocolversion>4</protocolversion><protocoltool>helgrind</protocoltool>"
            "</valgrindoutput>",
            "helgrind tool, not memcheck",
        ),
        ("<valgrindoutput><pid>3</pid></valgrindoutput>", "without Valgrind's <protocolversion>"),
        (
            "<valgrindoutput><protocolversion>4</protocolversion><protocoltool>memcheck</protocoltool>"
            "</valgrindoutput>",
            "no <errorcounts>",
        ),
        ("<valgrindoutput><!-- hi --><protocolversion>4</protocolversion></valgrindoutput>", "comment"),
        (
            '<?xml version="1.0"?>\n<!DOCTYPE v [<!ENTITY a "aaaa">]>\n<valgrindoutput>&a;</valgrindoutput>',
            "DOCTYPE",
        ),
        ("# callgrind format\nversion: 1\ncreator: xtree-1\n", "without an events: line"),
        ("==12== Memcheck\n==12== \n", "no ERROR SUMMARY"),
    ],
)
def test_foreign_or_broken_input(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "input.out"
    path.write_text(content)
    try:
        records = MEMCHECK.parse([path])
    except ParseError as error:
        assert words in error.message, error.one_line()
        assert error.path == str(path) and error.hint
        return
    (record,) = records
    assert not record.complete and record.incomplete_reason and words in record.incomplete_reason


def test_helgrind_xml_is_refused(tmp_path: Path, memprog: Path) -> None:
    xml = tmp_path / "helgrind.xml"
    subprocess.run(
        ["valgrind", "--tool=helgrind", "--xml=yes", f"--xml-file={xml}", str(memprog), "clean"],
        capture_output=True,
        timeout=120,
    )
    with pytest.raises(ParseError) as raised:
        MEMCHECK.parse([xml])
    assert "helgrind" in raised.value.message


def test_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError) as raised:
        MEMCHECK.parse([tmp_path / "nope.xml"])
    assert raised.value.path == str(tmp_path / "nope.xml")


def test_two_files_for_one_process_are_refused() -> None:
    (xml,) = (DATA / "leaks").glob("*.xml")
    with pytest.raises(ParseError) as raised:
        MEMCHECK.parse([xml, xml])
    assert "one run at a time" in raised.value.hint


# -- the figures must agree, or the record says they do not -------------------------------------


def test_loss_records_that_miss_blocks_make_the_record_incomplete(tmp_path: Path) -> None:
    """A loss record dropped from the XML: the records no longer add up to what was in use at exit."""
    (xml,) = (DATA / "leaks").glob("*.xml")
    (xtree,) = (DATA / "leaks").glob("*.kcg")
    text = xml.read_text()
    start = text.index("<error>", text.index("<kind>Leak_StillReachable") - 200)
    end = text.index("</error>", start) + len("</error>")
    edited = tmp_path / xml.name
    edited.write_text(text[:start] + text[end:])
    shutil.copy(xtree, tmp_path / xtree.name)
    (record,) = MEMCHECK.parse([edited, tmp_path / xtree.name])
    assert not record.complete
    assert record.incomplete_reason == (
        "the loss records add up to 460 bytes in 7 blocks but 588 bytes in 8 blocks were in use at exit "
        f"(xtree report {xtree.name})"
    )


def test_definite_bytes_counted_with_their_indirect_ones_are_caught(tmp_path: Path) -> None:
    """If a loss record said 96 bytes of its own (the double count of its 64 indirect bytes), the
    cross-check with the heap figures would catch it."""
    (xml,) = (DATA / "leaks").glob("*.xml")
    (xtree,) = (DATA / "leaks").glob("*.kcg")
    edited = tmp_path / xml.name
    edited.write_text(xml.read_text().replace("96 (32 direct, 64 indirect) bytes", "96 bytes"))
    shutil.copy(xtree, tmp_path / xtree.name)
    (record,) = MEMCHECK.parse([edited, tmp_path / xtree.name])
    assert not record.complete
    assert (
        record.incomplete_reason is not None
        and "652 bytes in 8 blocks but 588 bytes" in record.incomplete_reason
    )


def test_text_leak_summary_disagreeing_with_the_records(tmp_path: Path) -> None:
    (log,) = (DATA / "text-leaks-errors").glob("*.log")
    edited = tmp_path / log.name
    edited.write_text(
        log.read_text().replace(
            "definitely lost: 348 bytes in 5 blocks", "definitely lost: 444 bytes in 5 blocks"
        )
    )
    (record,) = MEMCHECK.parse([edited])
    assert not record.complete
    assert record.incomplete_reason is not None
    assert (
        "the definite loss records add up to 348 bytes in 5 blocks but memcheck's leak summary says 444 "
        "bytes in 5 blocks" in record.incomplete_reason
    )


def test_protocol6_summaries_are_checked_too(tmp_path: Path) -> None:
    (xml,) = (DATA / "protocol6-leaks").glob("*.xml")
    edited = tmp_path / xml.name
    edited.write_text(xml.read_text().replace("<bytes>588</bytes>", "<bytes>600</bytes>"))
    (record,) = MEMCHECK.parse([edited])
    assert not record.complete and record.incomplete_reason is not None
    assert "600 bytes in 8 blocks were in use at exit (<heap_summary>)" in record.incomplete_reason


def test_all_heap_blocks_freed_is_zero_of_every_kind() -> None:
    (record,) = MEMCHECK.parse(saved("text-clean"))
    assert "All heap blocks were freed" in saved("text-clean")[0].read_text()
    assert leak_metrics_of(record) == NO_LEAKS and record.leak_check


def test_a_text_log_of_an_xml_run_alone_is_incomplete(tmp_path: Path) -> None:
    """memcheck prints neither summary in its log when it writes XML: the log alone measures nothing."""
    logs = sorted((DATA / "user-fork-log-bug").glob("vg.*.log"))
    records = MEMCHECK.parse(logs)
    assert len(records) == 2 and not any(record.complete for record in records)
    assert all("empty" in (record.incomplete_reason or "") for record in records)


# -- C++ frames: XML entities (&amp; &lt; &gt;) in function names and loss record texts ----------------

_TEXT_SUMMARY = re.compile(r"==\d+==\s+(definitely|indirectly) lost: ([\d,]+) bytes in ([\d,]+) blocks")


def _memchecks_own_summary(command: Sequence[str], logdir: Path) -> dict[str, tuple[int, int]]:
    """memcheck's own LEAK SUMMARY of a text run: kind -> (bytes, blocks)."""
    text = run_text_mode(command, logdir).read_text()
    found = {kind: (int(size.replace(",", "")), int(blocks.replace(",", "")))
             for kind, size, blocks in _TEXT_SUMMARY.findall(text)}
    assert set(found) == {"definitely", "indirectly"}, text
    return found


def test_cxx_frames_with_entities_keep_the_direct_indirect_split(
        build_program: BuildProgram, valgrind: str, tmp_path: Path) -> None:
    """The loss records' texts hold "&amp;" (std::string&), "&lt;" (templates, operator<<): each one
    is read like plain text, so a definite record owns its direct bytes only."""
    program = build_program("cxxleaks.cpp")
    record = only(run_memcheck([str(program)], tmp_path / "xml")[0])
    (xml,) = (tmp_path / "xml").glob("*.xml")
    assert b"&amp;" in xml.read_bytes() and b"&lt;" in xml.read_bytes()
    truth = _memchecks_own_summary([str(program)], tmp_path / "text")
    assert record.complete, record.incomplete_reason
    metrics = record.metrics
    assert (metrics["leak_definite_bytes"], metrics["leak_definite_blocks"]) == truth["definitely"]
    assert (metrics["leak_indirect_bytes"], metrics["leak_indirect_blocks"]) == truth["indirectly"]
    # the program's own blocks, whatever libstdc++ allocates for the strings
    definite = {leak.site: leak.bytes for leak in record.leaks if leak.kind == "definite"}
    assert definite["make_holder < main"] == 16
    assert definite["leak_name < main"] == 13
    assert definite["(anonymous namespace)::Streamer::operator<< < main"] == 7
    assert sum(definite.values()) == 60 == truth["definitely"][0]
    indirect = {leak.site: leak.bytes for leak in record.leaks if leak.kind == "indirect"}
    assert indirect["make_holder < main"] == 40
    string = "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >"
    assert indirect[f"make_holder({string}&)::{{lambda()#1}}::operator() < make_holder < main"] == 24
    assert _summary(xml, "expat") == _summary(xml, "lxml") == _summary(xml, "tree")


# Character references and entities in every place the fast path reads text from.
REFERENCES = {
    "decimal and hexadecimal references in a function":
        (b"<fn>main</fn>", b"<fn>m&#97;in&#x80;&#x1F600;</fn>"),
    "entities in a function":
        (b"<fn>main</fn>", b"<fn>operator&lt;&lt;(std::string&amp;, char&apos;&quot;&gt;)</fn>"),
    "entities in a file name": (b"<file>", b"<file>a&amp;b&#47;"),
    "entities in a loss record's text": (b"are definitely lost", b"are &#100;efinitely &amp; lost"),
    "entities in an object": (b"<obj>", b"<obj>&#47;x&amp;"),
}


@pytest.mark.parametrize("change", REFERENCES.values(), ids=REFERENCES)
def test_character_references_read_the_same_three_ways(change: tuple[bytes, bytes], tmp_path: Path) -> None:
    _, path = _changed_copy("leaks", *change, tmp_path)
    assert _summary(path, "expat") == _summary(path, "lxml") == _summary(path, "tree")


# -- an error's other stacks: <auxwhat> and the <stack> after it ------------------------------------


def _line_of(snippet: str, function: str) -> int:
    """The line of ``snippet`` in ``function``'s body in memprog.c (tests name lines by their code)."""
    lines = (PROGRAMS / "memprog.c").read_text().splitlines()
    start = next(number for number, line in enumerate(lines) if f" {function}(" in line and "{" in line)
    return next(number for number, line in enumerate(lines[start:], start=start + 1) if snippet in line)


def _related_rows(record: ProcessRecord, site: str) -> list[tuple[str, str | None, int | None]]:
    error = next(error for error in record.errors if error.site == site)
    rows = []
    for related in error.related:
        own = top_frames(related.stack)[0]
        assert own.file == str(PROGRAMS / "memprog.c")
        rows.append((re.sub(r"0x[0-9a-fA-F]+", "0x…", related.description), own.function, own.line))
    return rows


def test_errors_keep_the_free_and_allocation_stacks(memprog: Path, tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    record = only(run_memcheck([str(memprog), "invalid_read", "use_after_free"], logdir)[0])
    assert _related_rows(record, "use_after_free < main") == [
        ("Address 0x… is 8 bytes inside a block of size 40 free'd", "use_after_free",
         _line_of("free(a);", "use_after_free")),
        ("Block was alloc'd at", "use_after_free", _line_of("malloc(", "use_after_free")),
    ]
    assert _related_rows(record, "invalid_read < main") == [
        ("Address 0x… is 0 bytes after a block of size 40 alloc'd", "invalid_read",
         _line_of("malloc(", "invalid_read")),
    ]
    (xml,) = logdir.glob("*.xml")
    assert _summary(xml, "expat") == _summary(xml, "lxml") == _summary(xml, "tree")


# xauxwhat (a variable's description, with --read-var-info) holds its words in <text>.
def test_an_xauxwhat_names_the_stack_after_it_the_same_three_ways(tmp_path: Path) -> None:
    xauxwhat = b"<xauxwhat><text>Block was alloc&apos;d at</text><file>x.c</file><line>3</line></xauxwhat>"
    source, path = _changed_copy("errors", b"<auxwhat>Block was alloc'd at</auxwhat>", xauxwhat, tmp_path)
    expat = _summary(path, "expat")
    assert expat == _summary(path, "lxml") == _summary(path, "tree") == _summary(source, "expat")
