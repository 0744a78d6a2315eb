"""ASan and LSan end to end: programs of known behaviour built with gcc and clang, run with the
options ``launch`` sets, their logs read back by ``collect`` and ``parse``; then the saved real logs
of tests/data/asan as extra parser cases, and the parser's edges."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import PROGRAMS, BuildProgram
from hypothesis import given, settings
from hypothesis import strategies as st

from memgate.errors import ConfigError, ParseError
from memgate.proc import Outcome
from memgate.records import Frame, Leak, MemError, ProcessRecord
from memgate.sites import top_frames
from memgate.tools import get_tool
from memgate.tools.asan import ASAN, LSAN, SanitizerTool
from memgate.tools.asan import frames as asan_frames
from memgate.tools.asan import log as asan_log
from memgate.tools.asan.frames import FrameCache, parse_frame
from memgate.tools.asan.log import LogParser, error_kind, parse_log
from memgate.tools.asan.options import OPTIONS_FILE, merge_options, split_options
from memgate.tools.base import Tool, ToolOptions

T = TypeVar("T")
DATA = Path(__file__).parent.parent / "data" / "asan"
LEAKS = ("leak_small", "leak_many", "leak_tree", "leak_possible", "leak_reachable")
LEAK_TRUTH = {
    "leak_definite_bytes": 348,
    "leak_definite_blocks": 5,
    "leak_indirect_bytes": 64,
    "leak_indirect_blocks": 1,
}
LEAK_RECORDS = [
    ("definite", 16, 1, "leak_small < main"),
    ("definite", 32, 1, "leak_tree < main"),
    ("definite", 300, 3, "leak_many < main"),
    ("indirect", 64, 1, "leak_tree < main"),
]


@dataclass(frozen=True)
class Build:
    compiler: str
    flags: tuple[str, ...]
    tool: SanitizerTool


BUILDS = {
    "gcc-asan": Build("gcc", ("-fsanitize=address",), ASAN),
    "clang-asan": Build("clang", ("-fsanitize=address",), ASAN),
    "gcc-lsan": Build("gcc", ("-fsanitize=leak",), LSAN),
    "clang-lsan": Build("clang", ("-fsanitize=leak",), LSAN),
}
ALL = [pytest.param(name, marks=[pytest.mark.clang] if "clang" in name else []) for name in BUILDS]
ASAN_BUILDS = [param for param in ALL if "asan" in str(param.values[0])]


@pytest.fixture(autouse=True)
def _no_user_sanitizer_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own ASAN_OPTIONS would change what the programs print."""
    monkeypatch.delenv("ASAN_OPTIONS", raising=False)
    monkeypatch.delenv("LSAN_OPTIONS", raising=False)


def build(
    build_program: BuildProgram, name: str, source: str = "memprog.c", extra_flags: tuple[str, ...] = ()
) -> tuple[Path, SanitizerTool]:
    spec = BUILDS[name]
    return build_program(
        source, compiler=spec.compiler, flags=(*spec.flags, "-pthread", *extra_flags)
    ), spec.tool


def run(
    tool: SanitizerTool,
    command: Sequence[str],
    logdir: Path,
    *,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    kill_after: float | None = None,
) -> list[ProcessRecord]:
    """What the runner does: launch, run with the tool's environment, collect."""
    logdir.mkdir(exist_ok=True)
    launch = tool.launch(command, logdir, ToolOptions(extra_args=extra_args, env=env or {}))
    process = subprocess.Popen(
        launch.argv,
        env={**os.environ, **(env or {}), **launch.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        status = process.wait(timeout=kill_after)
        outcome = Outcome(exit_code=status if status >= 0 else None, signal=-status if status < 0 else None)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        outcome = Outcome(exit_code=None, signal=signal.SIGKILL, timed_out=True)
    return tool.collect(logdir, outcome)


def only(items: Sequence[T]) -> T:
    assert len(items) == 1, items
    return items[0]


def leak_rows(record: ProcessRecord) -> list[tuple[str, int, int, str]]:
    return sorted((leak.kind, leak.bytes, leak.blocks, leak.site) for leak in record.leaks)


def leak_metrics_of(record: ProcessRecord) -> dict[str, int]:
    return {name: value for name, value in record.metrics.items() if name.startswith("leak_")}


# --------------------------------------------------------------------------------------------------
# The tools as the runner sees them


def test_registry_serves_both_tools() -> None:
    asan: Tool = get_tool("asan")
    lsan: Tool = get_tool("lsan")
    assert asan is ASAN and lsan is LSAN
    assert "alloc_calls" in ASAN.metrics and "alloc_calls" not in LSAN.metrics
    assert not {"leak_possible_bytes", "leak_reachable_bytes"} & (ASAN.metrics | LSAN.metrics)


def test_version_names_the_sanitizer_and_the_compilers_on_path() -> None:
    version = ASAN.version()
    assert version.startswith("AddressSanitizer (compiler runtime; ")
    if shutil.which("gcc"):
        gcc = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
        assert f"gcc {gcc}" in version
    assert LSAN.version().startswith("LeakSanitizer (")


def test_launch_keeps_the_command_and_sets_the_options(tmp_path: Path) -> None:
    launch = ASAN.launch(["./tests", "-v"], tmp_path, ToolOptions())
    assert launch.argv == ["./tests", "-v"]
    assert launch.env["ASAN_OPTIONS"] == (
        "detect_leaks=1:exitcode=0:atexit=1:print_summary=1:symbolize=1:log_exe_name=1:"
        f"log_path={tmp_path.resolve()}/asan"
    )
    assert launch.env["LSAN_OPTIONS"] == f"log_path={tmp_path.resolve()}/asan"
    lsan = LSAN.launch(["./tests"], tmp_path, ToolOptions())
    assert lsan.env == {
        "LSAN_OPTIONS": "detect_leaks=1:exitcode=0:verbosity=2:print_summary=1:symbolize=1:log_exe_name=1:"
        f"log_path={tmp_path.resolve()}/lsan"
    }


def test_user_options_win_except_log_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASAN_OPTIONS", "from_environ=1")
    monkeypatch.setenv("LSAN_OPTIONS", "suppressions=/s.txt")
    user = "malloc_context_size=5:log_path=/elsewhere/x:exitcode=3"
    env = ASAN.launch(
        ["prog"], tmp_path, ToolOptions(env={"ASAN_OPTIONS": user}, extra_args=("fast_unwind_on_malloc=0",))
    ).env
    options = dict(split_options(env["ASAN_OPTIONS"]))  # the runtime, too, lets the last one win
    assert options["exitcode"] == "3" and options["malloc_context_size"] == "5"
    assert options["fast_unwind_on_malloc"] == "0" and options["atexit"] == "1"
    assert options["log_path"] == f"{tmp_path.resolve()}/asan"
    assert "from_environ" not in options  # the suite's env replaces memgate's own environment
    assert dict(split_options(env["LSAN_OPTIONS"])) == {
        "suppressions": "/s.txt",
        "log_path": f"{tmp_path.resolve()}/asan",
    }


def test_a_log_folder_with_separators_is_quoted(tmp_path: Path) -> None:
    logdir = tmp_path / "with space:colon"
    logdir.mkdir()
    env = ASAN.launch(["prog"], logdir, ToolOptions()).env
    assert env["ASAN_OPTIONS"].endswith(f":log_path='{logdir.resolve()}/asan'")
    assert dict(split_options(env["ASAN_OPTIONS"]))["log_path"] == f"{logdir.resolve()}/asan"


def test_tool_args_that_are_not_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"sanitizer options \(name=value\), and '--leak-check=full' is not one"
    ):
        ASAN.launch(["prog"], tmp_path, ToolOptions(extra_args=("--leak-check=full",)))


def test_merge_options_puts_defaults_first_and_log_path_last() -> None:
    merged = merge_options("a=1,b='x y'", (("a", "9"), ("c", "2")), (("d", "4"),), "/l/asan")
    assert merged == "c=2:a=1,b='x y':d=4:log_path=/l/asan"
    assert split_options(merged) == [
        ("c", "2"),
        ("a", "1"),
        ("b", "x y"),
        ("d", "4"),
        ("log_path", "/l/asan"),
    ]


# --------------------------------------------------------------------------------------------------
# Real runs: the known truth of memprog.c


@pytest.mark.parametrize("name", ALL)
def test_leak_kinds_and_sizes(build_program: BuildProgram, tmp_path: Path, name: str) -> None:
    binary, tool = build(build_program, name)
    record = only(run(tool, [str(binary), *LEAKS], tmp_path / "logs"))
    assert record.complete and record.leak_check and record.fatal_signal is None
    assert leak_metrics_of(record) == LEAK_TRUTH  # possibly lost / still reachable: not measured, absent
    assert record.metrics["errors"] == 0
    assert leak_rows(record) == LEAK_RECORDS
    many = next(leak for leak in record.leaks if leak.site == "leak_many < main")
    top = next(frame for frame in many.stack if frame.function == "leak_many")
    assert top.file is not None and top.file.endswith("tests/programs/memprog.c") and top.line == 29
    assert ("alloc_calls" in record.metrics) == (tool is ASAN)
    # Named after the program (log_exe_name=1), which the record keeps as its command.
    assert record.pid is not None and record.log_files == (
        str(tmp_path / "logs" / f"{tool.name}.{binary.name}.{record.pid}"),
    )
    assert record.command == binary.name


@pytest.mark.clang
def test_fingerprints_are_the_same_for_every_compiler_and_sanitizer(
    build_program: BuildProgram, tmp_path: Path
) -> None:
    fingerprints = set()
    for name in BUILDS:
        binary, tool = build(build_program, name)
        record = only(run(tool, [str(binary), *LEAKS], tmp_path / name))
        fingerprints.add(frozenset((leak.kind, leak.fingerprint) for leak in record.leaks))
    assert len(fingerprints) == 1 and len(next(iter(fingerprints))) == 4


def build_in(folder: Path, name: str) -> tuple[Path, SanitizerTool]:
    """memprog.c copied into ``folder`` and built there: ASan then prints its frames with that path."""
    spec = BUILDS[name]
    if shutil.which(spec.compiler) is None:
        pytest.skip(f"{spec.compiler} is not installed")
    source = folder / "src" / "memprog.c"
    source.parent.mkdir(parents=True)
    shutil.copy(PROGRAMS / "memprog.c", source)
    binary = folder / "memprog"
    subprocess.run([spec.compiler, "-g", "-O0", "-fno-omit-frame-pointer", *spec.flags, "-o", str(binary),
                    str(source)], check=True, capture_output=True)
    return binary, spec.tool


@pytest.mark.parametrize("name", ALL)
def test_a_source_folder_with_spaces_changes_no_fingerprint(tmp_path: Path, name: str) -> None:
    """The frames of a program built in "my project" were split at the path's space: the function was
    "leak_many /tmp/.../my", so the fingerprints depended on the checkout folder's name."""
    records = {}
    for folder in ("plain", "my project", "two  spaces here"):
        binary, tool = build_in(tmp_path / folder, name)
        records[folder] = only(run(tool, [str(binary), *LEAKS], tmp_path / f"logs-{folder}"))
    spaced = records["my project"]
    assert leak_rows(spaced) == LEAK_RECORDS
    many = next(leak for leak in spaced.leaks if leak.site == "leak_many < main")
    top = next(frame for frame in many.stack if frame.function == "leak_many")
    assert top.file == str(tmp_path / "my project" / "src" / "memprog.c") and top.line == 29
    assert all(" " not in (frame.function or "") for leak in spaced.leaks for frame in leak.stack
               if frame.file and "memprog.c" in frame.file)
    fingerprints = {folder: sorted((leak.kind, leak.fingerprint, leak.site) for leak in record.leaks)
                    for folder, record in records.items()}
    assert fingerprints["my project"] == fingerprints["plain"] == fingerprints["two  spaces here"]


@pytest.mark.parametrize("name", [param for param in ALL if "gcc" in str(param.values[0])])
def test_a_program_in_a_folder_with_spaces_keeps_its_module_unsymbolized(tmp_path: Path, name: str) -> None:
    """``symbolize=0``: frames are ``(module+0xoffset)``, and the module's path has the space."""
    binary, tool = build_in(tmp_path / "my project", name)
    record = only(run(tool, [str(binary), *LEAKS], tmp_path / "logs", extra_args=("symbolize=0",)))
    objects = {frame.object for leak in record.leaks for frame in leak.stack}
    assert str(binary) in objects
    assert all(frame.address and frame.address.startswith("0x") for leak in record.leaks
               for frame in leak.stack if frame.object == str(binary))


@pytest.mark.parametrize("name", ALL)
def test_parse_of_the_files_gives_what_collect_gave(
    build_program: BuildProgram, tmp_path: Path, name: str
) -> None:
    binary, tool = build(build_program, name)
    collected = run(tool, [str(binary), *LEAKS], tmp_path)
    parsed = tool.parse(sorted(tmp_path.glob(f"{tool.name}.*")))
    assert parsed == collected


@pytest.mark.parametrize("name", ASAN_BUILDS)
@pytest.mark.parametrize(
    ("scenario", "kind", "site"),
    [
        ("invalid_read", "heap-buffer-overflow", "invalid_read < main"),
        ("invalid_write", "heap-buffer-overflow", "invalid_write < main"),
        ("use_after_free", "heap-use-after-free", "use_after_free < main"),
        ("double_free", "double-free", "double_free < main"),
        ("stack_overflow", "stack-buffer-overflow", "stack_overflow < main"),
    ],
)
def test_each_memory_error_is_one_error_of_its_kind(
    build_program: BuildProgram, tmp_path: Path, name: str, scenario: str, kind: str, site: str
) -> None:
    binary, tool = build(build_program, name)
    record = only(run(tool, [str(binary), "leak_small", scenario], tmp_path))
    assert [(error.kind, error.count, error.site) for error in record.errors] == [(kind, 1, site)]
    assert record.metrics == {"errors": 1}  # the leak check never ran: no leak figure at all
    assert not record.complete and not record.leak_check and record.fatal_signal is None
    assert (
        record.incomplete_reason
        == f"the sanitizer stopped the process at the first error ({kind}): no leak check"
    )


def test_error_description_has_the_access_and_the_block(build_program: BuildProgram, tmp_path: Path) -> None:
    binary, tool = build(build_program, "gcc-asan")
    error = only(only(run(tool, [str(binary), "invalid_write"], tmp_path)).errors)
    assert error.description.startswith("heap-buffer-overflow on address 0x")
    assert "; WRITE of size 4 at 0x" in error.description
    assert "is located 0 bytes to the right of 40-byte region" in error.description
    assert " at pc " not in error.description
    assert [frame.function for frame in error.stack][:2] == ["invalid_write", "main"]  # not the malloc stack


@pytest.mark.parametrize("name", ALL)
def test_crash_is_an_incomplete_record_with_the_segv(
    build_program: BuildProgram, tmp_path: Path, name: str
) -> None:
    binary, tool = build(build_program, name)
    record = only(run(tool, [str(binary), "crash"], tmp_path))
    assert [(error.kind, error.site) for error in record.errors] == [("SEGV", "crash < main")]
    assert record.fatal_signal == "SEGV"
    assert not record.complete and record.incomplete_reason == "no leak check after SEGV"
    assert record.metrics == {"errors": 1} and not record.leak_check


@pytest.mark.parametrize("name", ALL)
def test_a_forked_child_has_its_own_record(build_program: BuildProgram, tmp_path: Path, name: str) -> None:
    binary, tool = build(build_program, name)
    records = run(tool, [str(binary), "fork_child_leak"], tmp_path)
    assert len(records) == 2 and len({record.pid for record in records}) == 2
    assert all(record.complete for record in records)
    child = next(record for record in records if record.leaks)
    parent = next(record for record in records if not record.leaks)
    assert leak_rows(child) == [("definite", 200, 1, "child_work < fork_child_leak < main")]
    assert leak_metrics_of(parent) == dict.fromkeys(LEAK_TRUTH, 0)


@pytest.mark.parametrize("compiler", ["gcc", pytest.param("clang", marks=pytest.mark.clang)])
def test_new_array_released_with_delete(build_program: BuildProgram, tmp_path: Path, compiler: str) -> None:
    binary = build_program("mismatch.cpp", compiler=compiler, flags=("-fsanitize=address",))
    record = only(run(ASAN, [str(binary)], tmp_path))
    error = only(record.errors)
    assert (error.kind, error.site) == ("alloc-dealloc-mismatch", "mismatched_delete < main")
    assert error.description.startswith("alloc-dealloc-mismatch (operator new [] vs operator delete)")


@pytest.mark.parametrize("name", ALL)
def test_a_clean_run_is_measured_not_missing(build_program: BuildProgram, tmp_path: Path, name: str) -> None:
    binary, tool = build(build_program, name)
    record = only(run(tool, [str(binary), "clean"], tmp_path))
    assert record.complete and record.leak_check and not record.leaks and not record.errors
    assert leak_metrics_of(record) == dict.fromkeys(LEAK_TRUTH, 0) and record.metrics["errors"] == 0


@pytest.mark.parametrize("name", ASAN_BUILDS)
def test_alloc_calls_count_every_malloc(build_program: BuildProgram, tmp_path: Path, name: str) -> None:
    binary, tool = build(build_program, name)
    clean = only(run(tool, [str(binary), "clean"], tmp_path / "clean")).metrics["alloc_calls"]
    churn = only(run(tool, [str(binary), "churn=1000"], tmp_path / "churn")).metrics["alloc_calls"]
    leaky = only(run(tool, [str(binary), *LEAKS], tmp_path / "leaks")).metrics["alloc_calls"]
    assert churn - clean == 1000
    assert leaky - clean == 8  # 16, 3 x 100, 32 + 64, 48, 128: exit statistics follow the leak report


@pytest.mark.parametrize("name", ASAN_BUILDS)
def test_halt_on_error_0_reports_every_error_then_the_leaks(
    build_program: BuildProgram, tmp_path: Path, name: str
) -> None:
    binary, tool = build(build_program, name, extra_flags=("-fsanitize-recover=address",))
    scenarios = [
        "leak_small",
        "invalid_read",
        "invalid_write",
        "use_after_free",
        "double_free",
        "stack_overflow",
        "leak_many",
    ]
    record = only(run(tool, [str(binary), *scenarios], tmp_path, env={"ASAN_OPTIONS": "halt_on_error=0"}))
    assert [error.kind for error in record.errors] == [
        "heap-buffer-overflow",
        "heap-buffer-overflow",
        "heap-use-after-free",
        "double-free",
        "stack-buffer-overflow",
    ]
    assert record.metrics["errors"] == 5
    assert leak_rows(record) == [
        ("definite", 16, 1, "leak_small < main"),
        ("definite", 300, 3, "leak_many < main"),
    ]
    assert record.complete and record.leak_check and "alloc_calls" in record.metrics


@pytest.mark.parametrize("name", ["gcc-asan", pytest.param("clang-lsan", marks=pytest.mark.clang)])
def test_a_program_without_the_sanitizer_is_no_measurement(
    build_program: BuildProgram, tmp_path: Path, name: str
) -> None:
    binary = build_program("memprog.c", compiler=BUILDS[name].compiler)
    tool = BUILDS[name].tool
    record = only(run(tool, [str(binary), "leak_small"], tmp_path))
    assert not record.complete and not record.leak_check and record.metrics == {}
    flag = "-fsanitize=address" if tool is ASAN else "-fsanitize=leak"
    assert record.incomplete_reason is not None and flag in record.incomplete_reason


@pytest.mark.parametrize("name", ALL)
def test_a_killed_run_has_no_leak_figures(build_program: BuildProgram, tmp_path: Path, name: str) -> None:
    binary, tool = build(build_program, name)
    record = only(run(tool, [str(binary), "hang"], tmp_path, kill_after=0.5))
    assert not record.complete and not record.leak_check and not record.leaks
    assert record.incomplete_reason is not None and "timed out" in record.incomplete_reason
    assert not any(name.startswith("leak_") for name in record.metrics)


@pytest.mark.parametrize("variable", ["ASAN_OPTIONS", "LSAN_OPTIONS"])
def test_leak_detection_turned_off_by_the_user_is_not_zero_leaks(
    build_program: BuildProgram, tmp_path: Path, variable: str
) -> None:
    binary, tool = build(build_program, "gcc-asan")
    record = only(run(tool, [str(binary), *LEAKS], tmp_path, env={variable: "detect_leaks=0"}))
    assert record.complete and not record.leak_check and not record.leaks
    assert set(record.metrics) == {"errors", "alloc_calls"}
    assert "detect_leaks=0" in (tmp_path / OPTIONS_FILE).read_text()


def test_user_exitcode_wins_and_the_log_still_lands_in_the_log_folder(
    build_program: BuildProgram, tmp_path: Path
) -> None:
    binary, tool = build(build_program, "gcc-asan")
    user = {"ASAN_OPTIONS": f"exitcode=3:log_path={tmp_path}/elsewhere"}
    launch = tool.launch([str(binary), "leak_small"], tmp_path, ToolOptions(env=user))
    status = subprocess.run(launch.argv, env={**os.environ, **user, **launch.env}).returncode
    assert status == 3
    record = only(tool.collect(tmp_path, Outcome(exit_code=status)))
    # exitcode=3 ends the process after the leak report, before the exit statistics
    assert record.complete and leak_rows(record) == [("definite", 16, 1, "leak_small < main")]
    assert "alloc_calls" not in record.metrics
    assert not list(tmp_path.glob("elsewhere*"))


def test_tool_args_reach_the_runtime(build_program: BuildProgram, tmp_path: Path) -> None:
    binary, tool = build(build_program, "gcc-asan")
    record = only(run(tool, [str(binary), "leak_small"], tmp_path, extra_args=("malloc_context_size=2",)))
    assert [len(leak.stack) for leak in record.leaks] == [2]


@pytest.mark.parametrize("name", ALL)
def test_symbolize_0_frames_keep_object_and_offset(
    build_program: BuildProgram, tmp_path: Path, name: str
) -> None:
    binary, tool = build(build_program, name)
    env = {tool.variable: "symbolize=0"}
    first = only(run(tool, [str(binary), *LEAKS], tmp_path / "1", env=env))
    second = only(run(tool, [str(binary), *LEAKS], tmp_path / "2", env=env))
    assert leak_metrics_of(first) == LEAK_TRUTH
    frames = [frame for leak in first.leaks for frame in leak.stack]
    assert all(frame.function is None and frame.object and frame.address for frame in frames)
    assert any(frame.object == str(binary) for frame in frames)
    # module offsets, unlike pcs, are the same in every run (ASLR): so are the fingerprints
    assert sorted(leak.fingerprint for leak in first.leaks) == sorted(
        leak.fingerprint for leak in second.leaks
    )


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_lsan_under_ptrace_says_it_could_not_check(build_program: BuildProgram, tmp_path: Path) -> None:
    binary, tool = build(build_program, "gcc-lsan")
    record = only(run(tool, ["strace", "-f", "-o", os.devnull, str(binary), "leak_small"], tmp_path))
    assert not record.complete and not record.leaks
    assert record.incomplete_reason is not None
    assert record.incomplete_reason.startswith("LeakSanitizer has encountered a fatal error")


# --------------------------------------------------------------------------------------------------
# Real runs: more kinds (tests/programs/asan_extra.c)


@pytest.mark.parametrize("name", ASAN_BUILDS)
@pytest.mark.parametrize(
    ("scenario", "kind", "site", "fatal"),
    [
        ("bad_free", "bad-free", "bad_free < main", None),
        ("size_too_big", "allocation-size-too-big", "size_too_big < main", None),
        ("calloc_overflow", "calloc-overflow", "calloc_overflow < main", None),
        ("global_overflow", "global-buffer-overflow", "global_overflow < main", None),
        ("memcpy_overlap", "memcpy-param-overlap", "memcpy_overlap < main", None),
        ("divide_by_zero", "FPE", "divide_by_zero < main", "FPE"),
        ("recurse", "stack-overflow", "recurse < recurse < recurse", "stack-overflow"),
    ],
)
def test_more_error_kinds(
    build_program: BuildProgram,
    tmp_path: Path,
    name: str,
    scenario: str,
    kind: str,
    site: str,
    fatal: str | None,
) -> None:
    binary, tool = build(build_program, name, source="asan_extra.c")
    record = only(run(tool, [str(binary), scenario], tmp_path))
    assert [(error.kind, error.site) for error in record.errors] == [(kind, site)]
    assert record.fatal_signal == fatal and not record.complete


@pytest.mark.parametrize("name", ALL)
def test_a_thread_leak(build_program: BuildProgram, tmp_path: Path, name: str) -> None:
    binary, tool = build(build_program, name, source="asan_extra.c")
    record = only(run(tool, [str(binary), "thread_leak"], tmp_path))
    assert record.complete and leak_rows(record) == [("definite", 24, 1, "thread_body")]


@pytest.mark.parametrize("name", ALL)
def test_only_the_last_leak_report_of_a_process_counts(
    build_program: BuildProgram, tmp_path: Path, name: str
) -> None:
    """__lsan_do_recoverable_leak_check() mid-run: its leak is reported again at exit."""
    binary, tool = build(build_program, name, source="asan_extra.c")
    record = only(run(tool, [str(binary), "recheck"], tmp_path))
    assert record.complete and leak_rows(record) == [
        ("definite", 8, 1, "leak_late < recheck < main"),
        ("definite", 40, 1, "leak_early < recheck < main"),
    ]
    assert record.metrics["leak_definite_bytes"] == 48


def test_a_leak_check_before_a_crash_is_not_the_last_word(tmp_path: Path) -> None:
    text = (DATA / "gcc-asan-recheck.log").read_text()
    first_report = text[: text.index("SUMMARY: AddressSanitizer: 40 byte(s)")]
    first_report += "SUMMARY: AddressSanitizer: 40 byte(s) leaked in 1 allocation(s).\n"
    # the crash of the same process (its log's process id made that of the first report)
    crash = (DATA / "gcc-asan-crash.log").read_text().replace("==22762==", "==13589==")
    log = tmp_path / "asan.13589"
    log.write_text(first_report + crash)
    record = only(ASAN.parse([log]))
    assert not record.complete and record.incomplete_reason == "no leak check after SEGV"
    assert record.fatal_signal == "SEGV" and record.metrics["leak_definite_bytes"] == 40


@pytest.mark.parametrize("pending_chars", [0, 300, 5000])
def test_records_read_before_their_report_ends_are_the_same(tmp_path: Path, pending_chars: int) -> None:
    """A report's records are read once it is known to be the last (at the end of the log) or once
    enough of them wait: the same records either way, and a report that a later one replaces counts
    for nothing."""
    text = (DATA / "clang-asan-leaks.log").read_text()
    report = text[: text.index("AddressSanitizer exit stats:")]
    early = report.replace("leak_small", "leak_early")  # a first report that the second replaces
    log = tmp_path / "asan.22428"
    log.write_text(early + report + text[len(report):])
    expected = leak_rows(only(ASAN.parse([DATA / "clang-asan-leaks.log"])))
    assert ("definite", 16, 1, "leak_small < main") in expected
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asan_log, "_PENDING_CHARS", pending_chars)
        (record,) = ASAN.parse([log])
        assert leak_rows(record) == expected and record.complete
        assert ASAN.parse(sorted(DATA.glob("*.log"))) == ASAN.parse(sorted(DATA.glob("*.log")))


@pytest.mark.parametrize("name", [param for param in ALL if "lsan" in str(param.values[0])])
def test_leaks_left_out_of_the_report_make_it_incomplete(
    build_program: BuildProgram, tmp_path: Path, name: str
) -> None:
    binary, tool = build(build_program, name, source="asan_extra.c")
    record = only(run(tool, [str(binary), "leak_sites=5"], tmp_path, env={"LSAN_OPTIONS": "max_leaks=2"}))
    assert not record.complete and record.metrics["leak_definite_blocks"] == 2
    assert record.incomplete_reason == (
        "the leak report lists 16 bytes in 2 blocks but its SUMMARY counts 40 "
        "bytes in 5 blocks (some records were left out, e.g. by max_leaks)"
    )


def test_leaks_left_out_of_a_report_without_summary_are_not_counted_as_none(tmp_path: Path) -> None:
    """"Omitting 3 more leak(s)" and a SUMMARY line that was cut: what the report did list is said."""
    text = (DATA / "clang-lsan-max-leaks.log").read_text()
    log = tmp_path / "lsan.1"
    log.write_text(re.sub(r"SUMMARY: LeakSanitizer: [^\n]*", "SUMMARY: Le", text))
    record = only(LSAN.parse([log]))
    assert not record.complete and record.incomplete_reason == (
        "the leak report lists 16 bytes in 2 blocks but it says it leaves some out, and has no SUMMARY to "
        "count them (some records were left out, e.g. by max_leaks)"
    )


# --------------------------------------------------------------------------------------------------
# Saved real logs (tests/data/asan, made by regenerate.py)


@dataclass(frozen=True)
class Expected:
    metrics: dict[str, int]
    leaks: list[tuple[str, int, int, str]]
    errors: list[tuple[str, str]]
    incomplete: str | None = None  # the start of the reason
    fatal: str | None = None


def _stopped(kind: str) -> str:
    return f"the sanitizer stopped the process at the first error ({kind})"


ASAN_LEAKS = Expected({**LEAK_TRUTH, "errors": 0, "alloc_calls": 12}, LEAK_RECORDS, [])
LSAN_LEAKS = Expected({**LEAK_TRUTH, "errors": 0}, LEAK_RECORDS, [])
RECOVER_ERRORS = [
    ("heap-buffer-overflow", "invalid_read < main"),
    ("heap-buffer-overflow", "invalid_write < main"),
    ("heap-use-after-free", "use_after_free < main"),
    ("double-free", "double_free < main"),
    ("stack-buffer-overflow", "stack_overflow < main"),
]
RECOVER_LEAKS = [("definite", 16, 1, "leak_small < main"), ("definite", 300, 3, "leak_many < main")]
NO_LEAKS = dict.fromkeys(LEAK_TRUTH, 0)

SAVED: dict[str, Expected] = {
    "gcc-asan-leaks": ASAN_LEAKS,
    "clang-asan-leaks": ASAN_LEAKS,
    "gcc-lsan-leaks": LSAN_LEAKS,
    "clang-lsan-leaks": LSAN_LEAKS,
    "gcc-asan-recover": Expected(
        {
            "leak_definite_bytes": 316,
            "leak_definite_blocks": 4,
            "leak_indirect_bytes": 0,
            "leak_indirect_blocks": 0,
            "errors": 5,
            "alloc_calls": 12,
        },
        RECOVER_LEAKS,
        RECOVER_ERRORS,
    ),
    "clang-asan-recover": Expected(
        {
            "leak_definite_bytes": 316,
            "leak_definite_blocks": 4,
            "leak_indirect_bytes": 0,
            "leak_indirect_blocks": 0,
            "errors": 5,
            "alloc_calls": 13,
        },
        RECOVER_LEAKS,
        RECOVER_ERRORS,
    ),
    "gcc-asan-crash": Expected(
        {"errors": 1}, [], [("SEGV", "crash < main")], "no leak check after SEGV", "SEGV"
    ),
    "clang-lsan-crash": Expected(
        {"errors": 1}, [], [("SEGV", "crash < main")], "no leak check after SEGV", "SEGV"
    ),
    "gcc-asan-use-after-free": Expected(
        {"errors": 1}, [], [("heap-use-after-free", "use_after_free < main")], _stopped("heap-use-after-free")
    ),
    "clang-asan-stack-buffer-overflow": Expected(
        {"errors": 1},
        [],
        [("stack-buffer-overflow", "stack_overflow < main")],
        _stopped("stack-buffer-overflow"),
    ),
    "clang-asan-double-free": Expected(
        {"errors": 1}, [], [("double-free", "double_free < main")], _stopped("double-free")
    ),
    "gcc-asan-clean": Expected({**NO_LEAKS, "errors": 0, "alloc_calls": 1004}, [], []),
    "clang-lsan-clean": Expected({**NO_LEAKS, "errors": 0}, [], []),
    "gcc-lsan-ptrace": Expected(
        {"errors": 0},
        [],
        [],
        "LeakSanitizer has encountered a fatal error, so no leak "
        "check ran (it does not work under ptrace: strace, gdb)",
    ),
    "clang-lsan-killed": Expected({"errors": 0}, [], [], "no sign that the leak check ran"),
    "clang-asan-mismatch": Expected(
        {"errors": 1},
        [],
        [("alloc-dealloc-mismatch", "mismatched_delete < main")],
        _stopped("alloc-dealloc-mismatch"),
    ),
    "gcc-asan-mismatch-stderr": Expected(
        {"errors": 1},
        [],
        [("alloc-dealloc-mismatch", "mismatched_delete < main")],
        _stopped("alloc-dealloc-mismatch"),
    ),
    "gcc-asan-bad-free": Expected({"errors": 1}, [], [("bad-free", "bad_free < main")], _stopped("bad-free")),
    "clang-asan-size-too-big": Expected(
        {"errors": 1},
        [],
        [("allocation-size-too-big", "size_too_big < main")],
        _stopped("allocation-size-too-big"),
    ),
    "gcc-asan-calloc-overflow": Expected(
        {"errors": 1}, [], [("calloc-overflow", "calloc_overflow < main")], _stopped("calloc-overflow")
    ),
    "clang-asan-global-overflow": Expected(
        {"errors": 1},
        [],
        [("global-buffer-overflow", "global_overflow < main")],
        _stopped("global-buffer-overflow"),
    ),
    "clang-asan-memcpy-overlap": Expected(
        {"errors": 1},
        [],
        [("memcpy-param-overlap", "memcpy_overlap < main")],
        _stopped("memcpy-param-overlap"),
    ),
    "gcc-asan-fpe": Expected(
        {"errors": 1}, [], [("FPE", "divide_by_zero < main")], "no leak check after FPE", "FPE"
    ),
    "gcc-asan-stack-overflow": Expected(
        {"errors": 1},
        [],
        [("stack-overflow", "recurse < recurse < recurse")],
        "no leak check after stack-overflow",
        "stack-overflow",
    ),
    "gcc-lsan-thread-leak": Expected(
        {
            "leak_definite_bytes": 24,
            "leak_definite_blocks": 1,
            "leak_indirect_bytes": 0,
            "leak_indirect_blocks": 0,
            "errors": 0,
        },
        [("definite", 24, 1, "thread_body")],
        [],
    ),
    "gcc-asan-recheck": Expected(
        {
            "leak_definite_bytes": 48,
            "leak_definite_blocks": 2,
            "leak_indirect_bytes": 0,
            "leak_indirect_blocks": 0,
            "errors": 0,
            "alloc_calls": 6,
        },
        [
            ("definite", 8, 1, "leak_late < recheck < main"),
            ("definite", 40, 1, "leak_early < recheck < main"),
        ],
        [],
    ),
    "clang-lsan-max-leaks": Expected(
        {
            "leak_definite_bytes": 16,
            "leak_definite_blocks": 2,
            "leak_indirect_bytes": 0,
            "leak_indirect_blocks": 0,
            "errors": 0,
        },
        [
            ("definite", 8, 1, "leak_at_depth < leak_at_depth < leak_at_depth"),
            ("definite", 8, 1, "leak_at_depth < leak_at_depth < leak_sites"),
        ],
        [],
        "the leak report lists 16 bytes in 2 blocks but its SUMMARY counts 40",
    ),
}


SYMBOLIZE_0 = ["clang-asan-symbolize0", "gcc-lsan-symbolize0"]


def test_every_saved_log_has_an_expectation() -> None:
    assert {path.stem for path in DATA.glob("*.log")} == set(SAVED) | set(SYMBOLIZE_0)


@pytest.mark.parametrize("case", sorted(SAVED))
def test_saved_log(case: str) -> None:
    expected = SAVED[case]
    record = only(ASAN.parse([DATA / f"{case}.log"]))
    assert record.metrics == expected.metrics
    assert leak_rows(record) == expected.leaks
    assert [(error.kind, error.site) for error in record.errors] == expected.errors
    assert record.fatal_signal == expected.fatal
    if expected.incomplete is None:
        assert record.complete and record.incomplete_reason is None
    else:
        assert not record.complete and (record.incomplete_reason or "").startswith(expected.incomplete)


@pytest.mark.parametrize("case", SYMBOLIZE_0)
def test_saved_symbolize_0_logs(case: str) -> None:
    record = only(ASAN.parse([DATA / f"{case}.log"]))
    assert record.complete and leak_metrics_of(record) == LEAK_TRUTH
    assert sorted((leak.kind, leak.bytes, leak.blocks) for leak in record.leaks) == [
        (kind, size, blocks) for kind, size, blocks, _ in LEAK_RECORDS
    ]
    assert all(frame.function is None and frame.object for leak in record.leaks for frame in leak.stack)


def test_the_process_id_comes_from_the_report_when_the_name_has_none() -> None:
    assert only(ASAN.parse([DATA / "gcc-asan-leaks.log"])).pid == 22274
    assert only(ASAN.parse([DATA / "gcc-lsan-ptrace.log"])).pid == 22944  # not the tracer's 22954


# --------------------------------------------------------------------------------------------------
# Cut, damaged and foreign input


def _cut(source: str, marker: str, tmp_path: Path) -> Path:
    text = (DATA / source).read_text()
    cut = tmp_path / f"{source}.cut"
    cut.write_text(text[: text.index(marker)])
    return cut


def test_a_log_cut_inside_the_leak_report_is_incomplete(tmp_path: Path) -> None:
    cut = _cut("clang-asan-leaks.log", "Indirect leak of", tmp_path)
    record = only(ASAN.parse([cut]))
    assert (
        not record.complete
        and record.incomplete_reason == "the log ends inside the leak report (no SUMMARY line)"
    )
    assert record.metrics["leak_definite_bytes"] == 348  # what was read is kept, marked partial


def test_a_log_cut_inside_an_error_report_is_incomplete(tmp_path: Path) -> None:
    cut = _cut("gcc-asan-recover.log", "SUMMARY: AddressSanitizer: heap-use-after-free", tmp_path)
    record = only(ASAN.parse([cut]))
    assert not record.complete
    assert record.incomplete_reason == "the log ends inside the heap-use-after-free report (no SUMMARY line)"
    assert [error.kind for error in record.errors][-1] == "heap-use-after-free"


@settings(max_examples=40, deadline=None)
@given(read_size=st.integers(min_value=16, max_value=6000))
def test_where_the_reads_end_changes_nothing(read_size: int) -> None:
    """Chunk boundaries fall anywhere, even inside a line or a run of frames."""
    logs = sorted(DATA.glob("*.log"))
    whole = ASAN.parse(logs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asan_log, "_READ_CHARS", read_size)
        assert ASAN.parse(logs) == whole


def _leaks_of(text: str, path: Path, cache: FrameCache | None = None) -> tuple[Leak, ...]:
    path.write_text(text)
    return tuple(parse_log(path, cache).leaks)


@pytest.mark.parametrize("blank_lines", [1, 2, 3, 4, 7])
def test_blank_lines_between_leak_records_change_nothing(tmp_path: Path, blank_lines: int) -> None:
    """A run of leak records is read at once and split at its blank lines: however many there are."""
    text = (DATA / "clang-asan-leaks.log").read_text()
    spaced = re.sub(r"\n\n(?=(?:Direct|Indirect) leak)", "\n" * (blank_lines + 1), text)
    assert spaced.count("\n" * (blank_lines + 1) + "Direct leak") == 3
    assert _leaks_of(spaced, tmp_path / "asan.2") == _leaks_of(text, tmp_path / "asan.1")
    assert len(_leaks_of(spaced, tmp_path / "asan.2")) == 4


def test_records_seen_again_at_other_pcs_are_the_same_records(tmp_path: Path) -> None:
    """A suite's processes print the same leaks at other pcs: the run of records is recognised
    whole; a run longer than those remembered whole gives the same records, one by one."""
    text = (DATA / "gcc-lsan-leaks.log").read_text()
    moved = re.sub(r"(#\d+ 0x)([0-9a-f]+)", lambda pc: f"{pc[1]}{int(pc[2], 16) + 0x1000:x}", text)
    assert moved != text
    cache = FrameCache()
    first = _leaks_of(text, tmp_path / "lsan.1", cache)
    assert _leaks_of(moved, tmp_path / "lsan.2", cache) == first
    assert _leaks_of(moved, tmp_path / "lsan.3") == first  # with a cache of its own
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asan_frames, "_RUN_CHARS", 10)
        assert _leaks_of(moved, tmp_path / "lsan.4", FrameCache()) == first
    assert [(leak.kind, leak.bytes, leak.blocks) for leak in first] == [
        ("definite", 300, 3), ("definite", 32, 1), ("definite", 16, 1), ("indirect", 64, 1)]


def test_a_binary_file_is_a_parse_error(tmp_path: Path) -> None:
    binary = tmp_path / "asan.1"
    binary.write_bytes(b"\x7fELF\x00\x00garbage")
    with pytest.raises(ParseError, match="binary data"):
        ASAN.parse([binary])


def test_a_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot read") as raised:
        ASAN.parse([tmp_path / "asan.404"])
    assert raised.value.path == str(tmp_path / "asan.404")


def test_text_without_sanitizer_output_is_no_measurement(tmp_path: Path) -> None:
    log = tmp_path / "stderr.txt"
    log.write_text("all 12 tests passed\n")
    record = only(ASAN.parse([log]))
    assert not record.complete and record.incomplete_reason == "no AddressSanitizer output in this file"
    assert record.metrics == {}


def test_collect_reads_only_the_tools_logs(tmp_path: Path) -> None:
    shutil.copyfile(DATA / "gcc-asan-clean.log", tmp_path / "asan.777")
    (tmp_path / "stderr.log").write_text("ERROR: AddressSanitizer: SEGV on unknown address\n")
    (tmp_path / "lsan.778").write_text("==778==ERROR: LeakSanitizer: detected memory leaks\n")
    record = only(ASAN.collect(tmp_path, Outcome(exit_code=0)))
    assert record.pid == 777 and record.complete and record.metrics["alloc_calls"] == 1004


def test_very_long_lines_are_cut_not_held(tmp_path: Path) -> None:
    log = tmp_path / "asan.5"
    text = (DATA / "gcc-asan-leaks.log").read_text()
    log.write_text("x" * 3_000_000 + "\n" + text)
    record = only(ASAN.parse([log]))
    assert record.complete and leak_metrics_of(record) == LEAK_TRUTH


# --------------------------------------------------------------------------------------------------
# Frames and kinds


@pytest.mark.parametrize(
    ("line", "frame"),
    [
        (
            "    #1 0x5578318562d6 in leak_many /work/main/tests/programs/memprog.c:29",
            Frame(
                function="leak_many",
                file="/work/main/tests/programs/memprog.c",
                line=29,
            ),
        ),
        (
            "    #1 0x55bb6bdbcf27 in leak_many /work/main/tests/programs/memprog.c:29:44",
            Frame(
                function="leak_many",
                file="/work/main/tests/programs/memprog.c",
                line=29,
            ),
        ),
        (
            "    #0 0x55bb6bd8217e in __interceptor_malloc (/tmp/asx/m-clang-asan+0xa417e) "
            "(BuildId: c1e1f15577f9090ffe846d05f11fbdf6d956f882)",
            Frame(function="__interceptor_malloc", object="/tmp/asx/m-clang-asan", address="0xa417e"),
        ),
        (
            "    #4 0x56271a23a1d0 in _start (/tmp/asx/m-gcc-asan+0x21d0)",
            Frame(function="_start", object="/tmp/asx/m-gcc-asan", address="0x21d0"),
        ),
        (
            "    #0 0x7fc9a28ba3c8 in operator delete(void*, unsigned long) "
            "../../../../src/libsanitizer/asan/asan_new_delete.cpp:164",
            Frame(
                function="operator delete(void*, unsigned long)",
                file="../../../../src/libsanitizer/asan/asan_new_delete.cpp",
                line=164,
            ),
        ),
        (
            "    #0 0x55f25129777d in operator delete(void*) (/tmp/asx/mm-clang+0xdf77d) (BuildId: 28f75dd8)",
            Frame(function="operator delete(void*)", object="/tmp/asx/mm-clang", address="0xdf77d"),
        ),
        (
            "    #0 0x7f52352b89cf  (/lib/x86_64-linux-gnu/libasan.so.8+0xb89cf)",
            Frame(object="/lib/x86_64-linux-gnu/libasan.so.8", address="0xb89cf"),
        ),
        (
            "    #2 0x7f0000001234  (<unknown module>)",
            Frame(object="<unknown module>"),
        ),
        ("    #3 0x401234 in main", Frame(function="main")),
        (
            "    #12 0x401234 in std::vector<int, std::allocator<int> >::push_back(int const&) "
            "/usr/include/c++/12/bits/stl_vector.h:1281:9",
            Frame(
                function="std::vector<int, std::allocator<int> >::push_back(int const&)",
                file="/usr/include/c++/12/bits/stl_vector.h",
                line=1281,
            ),
        ),
        # a path with spaces is one path: its folder's name is no part of the function's
        (
            "    #1 0x55d2a1 in main /home/me/my project/src/a.c:12:5",
            Frame(function="main", file="/home/me/my project/src/a.c", line=12),
        ),
        (
            "    #1 0x55d2a1 in operator delete(void*, unsigned long) /home/me/my project/a b.cpp:7",
            Frame(function="operator delete(void*, unsigned long)", file="/home/me/my project/a b.cpp",
                  line=7),
        ),
        (
            "    #1 0x55d2a1 in main /home/me/a:1 b/c.c:3:4",
            Frame(function="main", file="/home/me/a:1 b/c.c", line=3),
        ),
        ("    #1 0x55d2a1 in /home/me/x y/a.c:3", Frame(file="/home/me/x y/a.c", line=3)),
        (
            "    #1 0x55d2a1 in main (/home/me/my project/a.out+0x1234) (BuildId: 28f75dd8)",
            Frame(function="main", object="/home/me/my project/a.out", address="0x1234"),
        ),
        (
            "    #1 0x55d2a1  (/opt/my libs/libx.so+0x1234)",
            Frame(object="/opt/my libs/libx.so", address="0x1234"),
        ),
        ("not a frame", None),
    ],
)
def test_frame_formats(line: str, frame: Frame | None) -> None:
    assert parse_frame(line) == frame


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("heap-buffer-overflow on address 0x604000000038 at pc 0x1 bp 0x2 sp 0x3", "heap-buffer-overflow"),
        ("attempting double-free on 0x603000000040 in thread T0:", "double-free"),
        ("attempting free on address which was not malloc()-ed: 0x602000000018 in thread T0", "bad-free"),
        (
            "requested allocation size 0x1000000000000000 (0x1000000000001000 after adjustments for "
            "alignment, red zones etc.) exceeds maximum supported size of 0x10000000000 (thread T0)",
            "allocation-size-too-big",
        ),
        ("memcpy-param-overlap: memory ranges [0x1,0x2) and [0x3, 0x4) overlap", "memcpy-param-overlap"),
        ("SEGV on unknown address 0x000000000000 (pc 0x1 bp 0x2 sp 0x3 T0)", "SEGV"),
    ],
)
def test_error_kinds_from_the_error_line(message: str, kind: str) -> None:
    assert error_kind(message) == kind


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=80),
            st.sampled_from(
                [
                    "",
                    "=" * 65,
                    "==1==ERROR: LeakSanitizer: detected memory leaks",
                    "Direct leak of 8 byte(s) in 1 object(s) allocated from:",
                    "    #0 0x1 in f a.c:1",
                    "SUMMARY: AddressSanitizer: 8 byte(s) leaked in 1 allocation(s).",
                    "==1==ABORTING",
                    "==2==ERROR: AddressSanitizer: SEGV on unknown address",
                    "AddressSanitizer exit stats:",
                    "Stats: 0M malloced (0M for red zones) by 4 calls",
                    "Omitting 3 more leak(s).",
                ]
            ),
        ),
        max_size=40,
    )
)
def test_the_parser_takes_any_lines(lines: list[str]) -> None:
    parser = LogParser(Path("asan.1"))
    parser.feed(lines)
    findings = parser.finish()
    assert all(leak.bytes >= 0 for leak in findings.leaks)


# -- several processes' reports in one stderr ------------------------------------------------------


def _forked_stderr(binary: Path, tool: SanitizerTool, path: Path) -> Path:
    """A program that forks, run as a user runs it: no log_path, so the child's report and then
    the parent's go to the one stderr, each under its own ==PID==."""
    with path.open("wb") as handle:
        subprocess.run([str(binary), "fork_child_leak", "leak_small"], stderr=handle, timeout=60,
                       env={**os.environ, tool.variable: "detect_leaks=1"})
    return path


@pytest.mark.parametrize("name", ALL)
def test_reports_of_a_forking_program_in_one_stderr_are_one_record_each(
        build_program: BuildProgram, tmp_path: Path, name: str) -> None:
    binary, tool = build(build_program, name)
    stderr = _forked_stderr(binary, tool, tmp_path / "stderr.txt")
    pids = [int(pid) for pid in re.findall(r"==(\d+)==ERROR: LeakSanitizer", stderr.read_text())]
    assert len(set(pids)) == 2  # the child's report, then the parent's
    child, parent = tool.parse([stderr])
    assert (child.pid, parent.pid) == tuple(pids)
    assert leak_rows(child) == [("definite", 200, 1, "child_work < fork_child_leak < main")]
    assert leak_rows(parent) == [("definite", 16, 1, "leak_small < main")]
    assert child.complete and parent.complete, (child.incomplete_reason, parent.incomplete_reason)
    # the same records as each process's own log (log_path) gives
    logged = run(tool, [str(binary), "fork_child_leak", "leak_small"], tmp_path / "logs")
    assert sorted(leak_rows(record) for record in logged) == sorted([leak_rows(child), leak_rows(parent)])
    assert len({record.pid for record in logged}) == 2


def test_reports_written_at_the_same_time_are_refused(build_program: BuildProgram, tmp_path: Path) -> None:
    """Two live processes' lines mixed: the frame lines carry no prefix, so whose they are cannot be
    known. Made from a real stderr: the parent's report starts inside the child's."""
    binary, tool = build(build_program, "gcc-asan")
    lines = _forked_stderr(binary, tool, tmp_path / "stderr.txt").read_text().splitlines()
    second = [index for index, line in enumerate(lines) if "ERROR: LeakSanitizer" in line][1]
    first_record = next(index for index, line in enumerate(lines) if line.startswith("Direct leak"))
    mixed = [*lines[:first_record + 2], *lines[second - 1:second + 1], *lines[first_record + 2:second - 1],
             *lines[second + 1:]]
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(mixed) + "\n")
    with pytest.raises(ParseError, match="written at the same time") as raised:
        tool.parse([path])
    assert raised.value.hint is not None and "log_path" in raised.value.hint
    with pytest.raises(ParseError, match="several processes"):  # one process is asked for: refused
        parse_log(tmp_path / "stderr.txt")


def test_lines_before_the_first_report_go_with_the_first_process(tmp_path: Path) -> None:
    source = (DATA / "gcc-lsan-leaks.log").read_text()
    pid = re.search(r"==(\d+)==", source)
    assert pid is not None
    other = source.replace(f"=={pid[1]}==", "==4242==")
    path = tmp_path / "two.txt"
    path.write_text("the program's own output\n" + other + source)
    first, second = ASAN.parse([path])
    assert (first.pid, second.pid) == (4242, int(pid[1]))
    alone = only(ASAN.parse([DATA / "gcc-lsan-leaks.log"]))
    assert first.leaks == second.leaks == alone.leaks
    assert first.metrics == second.metrics == alone.metrics


# -- an error's other stacks: where its block was freed and allocated ------------------------------


def _line_of(snippet: str, function: str, source: Path = PROGRAMS / "memprog.c") -> int:
    """The line of ``snippet`` in ``function``'s body (tests name lines by their code)."""
    lines = source.read_text().splitlines()
    start = next(number for number, line in enumerate(lines) if f" {function}(" in line and "{" in line)
    return next(number for number, line in enumerate(lines[start:], start=start + 1) if snippet in line)


def _related_rows(error: MemError) -> list[tuple[str, str | None, int | None]]:
    """Each related stack: its words, and the first frame of the program's own code in it."""
    rows = []
    for related in error.related:
        own = top_frames(related.stack)[0]
        rows.append((related.description, own.function, own.line))
        assert own.file is not None and own.file.endswith("memprog.c")
    return rows


@pytest.mark.parametrize("name", ASAN_BUILDS)
def test_use_after_free_keeps_the_free_and_allocation_stacks(
        build_program: BuildProgram, tmp_path: Path, name: str) -> None:
    binary, tool = build(build_program, name)
    error = only(only(run(tool, [str(binary), "use_after_free"], tmp_path)).errors)
    assert error.kind == "heap-use-after-free" and error.site == "use_after_free < main"
    assert _related_rows(error) == [
        ("freed by thread T0 here", "use_after_free", _line_of("free(a);", "use_after_free")),
        ("previously allocated by thread T0 here", "use_after_free", _line_of("malloc(", "use_after_free")),
    ]
    assert [frame.function for frame in error.related[0].stack][1:3] == ["use_after_free", "main"]
    assert [frame.function for frame in error.stack][:2] == ["use_after_free", "main"]  # the access


@pytest.mark.parametrize("name", ASAN_BUILDS)
def test_heap_overflow_keeps_the_allocation_stack(build_program: BuildProgram, tmp_path: Path,
                                                  name: str) -> None:
    binary, tool = build(build_program, name)
    error = only(only(run(tool, [str(binary), "invalid_write"], tmp_path)).errors)
    assert error.kind == "heap-buffer-overflow"
    assert _related_rows(error) == [("allocated by thread T0 here", "invalid_write",
                                     _line_of("malloc(", "invalid_write"))]
