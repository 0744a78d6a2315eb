"""The bad-input matrix, run side, under every tool through ``memgate check``: a test that crashes, a
test that hangs, a tool that is not installed. Real programs (tests/programs/memprog.c), real tools."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from memgate.baselines.model import Baseline
from memgate.tools import TOOL_NAMES, memusage
from tests.conftest import BuildProgram

from .clikit import memgate, suite_config, tree_snapshot

# tool -> the log files a crashed or killed run leaves beside stdout.log and stderr.log (globs)
TOOL_LOGS: dict[str, tuple[str, ...]] = {
    "asan": ("asan.*", "memgate-sanitizer-options"),
    "lsan": ("lsan.*", "memgate-sanitizer-options"),
    "memcheck": ("memcheck.*.xml", "memcheck.*.xtmemory.kcg"),
    "dhat": ("dhat.*.json", "dhat.*.log"),
    "massif": ("massif.*.out", "massif.*.log"),
    "memusage": (),  # libmemusage prints nothing for a process that crashes or is killed
    "heaptrack": ("heaptrack.zst",),
    "rusage": ("rusage.txt",),
}
# A SIGTERM'd run: ASan's handler-less runtime writes nothing, and heaptrack's buffered trace is kept.
HANG_LOGS: dict[str, tuple[str, ...]] = {**TOOL_LOGS, "asan": ("memgate-sanitizer-options",)}
REQUIRED_PROGRAMS = {"memcheck": "valgrind", "dhat": "valgrind", "massif": "valgrind",
                     "heaptrack": "heaptrack"}


# The tools that run a program of the suite's: the go tool runs go test, not memprog; its crash (a
# panic), hang and missing go are tests/tools/test_go.py's.
PROGRAM_TOOLS = tuple(tool for tool in TOOL_NAMES if tool != "go")


def test_every_tool_is_in_the_matrix() -> None:
    assert set(TOOL_LOGS) == set(PROGRAM_TOOLS)


@pytest.fixture
def program(request: pytest.FixtureRequest, build_program: BuildProgram) -> Path:
    """memprog built for the test's tool: with ASan or LSan for those, plain for the others."""
    tool: str = request.node.callspec.params["tool"]
    needed = REQUIRED_PROGRAMS.get(tool)
    if needed and shutil.which(needed) is None:
        pytest.skip(f"{needed} is not installed")
    flags = {"asan": ("-fsanitize=address",), "lsan": ("-fsanitize=leak",)}.get(tool, ())
    return build_program("memprog.c", flags=flags)


def logs_kept(folder: Path, tool: str, expected: dict[str, tuple[str, ...]]) -> list[str]:
    names = sorted(path.name for path in folder.iterdir())
    assert {"stdout.log", "stderr.log"} <= set(names), names
    for pattern in expected[tool]:
        assert list(folder.glob(pattern)), (pattern, names)
    return names


def the_suite(report: Path) -> dict[str, object]:
    (suite,) = json.loads(report.read_text())["suites"]
    assert isinstance(suite, dict)
    return suite


@pytest.mark.parametrize("tool", PROGRAM_TOOLS)
def test_a_crashing_test_fails_the_gate_keeps_its_logs_and_writes_no_baseline(
    tool: str, program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = suite_config(tmp_path, [str(program), "crash"], tool)
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "unit.json").write_text(Baseline(suite="unit", tool=tool).to_json())
    before = tree_snapshot(baselines)

    run = memgate(capsys, "check", "--config", config, "--jobs", "1", "--json", tmp_path / "report.json")
    run.assert_clean()
    assert run.code == 1, run.err
    assert run.error_lines == []  # a gate verdict, not an error: the table says why
    assert "crashed" in run.out
    suite = the_suite(tmp_path / "report.json")
    assert suite["status"] == "crashed"
    assert suite["artifacts_dir"] == str(tmp_path / ".memgate" / "artifacts" / "unit")
    logs_kept(Path(str(suite["artifacts_dir"])), tool, TOOL_LOGS)

    update = memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1")
    update.one_error(1, "suite 'unit' crashed", str(suite["artifacts_dir"]), "baseline must come from")
    assert "no baseline written" in update.err
    assert tree_snapshot(baselines) == before, "a failed update overwrote the baseline"


@pytest.mark.parametrize("tool", PROGRAM_TOOLS)
def test_a_hanging_test_times_out_leaves_no_process_and_keeps_its_logs(
    tool: str, program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = suite_config(tmp_path, [str(program), "hang"], tool, timeout="2s")
    run = memgate(capsys, "check", "--config", config, "--jobs", "1", "--json", tmp_path / "report.json")
    run.assert_clean()
    assert run.code == 1, run.err
    assert len(run.error_lines) <= 1  # at most "incomplete figures" of the killed run
    assert "timeout" in run.out
    suite = the_suite(tmp_path / "report.json")
    assert suite["status"] == "timeout" and suite["status_detail"] == "killed after the 2 s timeout"
    logs_kept(Path(str(suite["artifacts_dir"])), tool, HANG_LOGS)
    leftover = subprocess.run(["pgrep", "-f", f"{program} hang"], capture_output=True, text=True)
    assert leftover.stdout == "", "the timeout must kill the whole process group"


# tool -> (what makes it "not installed", words of the install hint)
MISSING: dict[str, str] = {
    "asan": "-fsanitize=address",  # the runtime is in the program: a program built without it
    "lsan": "-fsanitize=leak",
    "memcheck": "apt-get install valgrind",
    "dhat": "apt-get install valgrind",
    "massif": "apt-get install valgrind",
    "memusage": "apt-get install libc-devtools",
    "heaptrack": "apt-get install heaptrack",
    "rusage": "apt-get install time",
}

WHAT_IS_MISSING = {"asan": "no AddressSanitizer log", "lsan": "no LeakSanitizer log",
                   "memcheck": "valgrind is not", "dhat": "valgrind is not", "massif": "valgrind is not",
                   "memusage": "libmemusage.so was not found", "rusage": "time is not installed"}


@pytest.mark.parametrize("tool", PROGRAM_TOOLS)
def test_a_tool_that_is_not_installed_is_exit_3_with_the_install_hint(
    tool: str, build_program: BuildProgram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Built before PATH is emptied: built after, gcc was not found and every case was skipped.
    plain = build_program("memprog.c")  # for asan and lsan: a program without the sanitizer
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # nothing on PATH: no valgrind, heaptrack, time, memusage
    monkeypatch.setattr(memusage, "LIBRARY_FOLDERS", (str(empty),))  # nor libmemusage.so anywhere
    config = suite_config(tmp_path, [str(plain), "leak_small"], tool)
    run = memgate(capsys, "check", "--config", config, "--jobs", "1")
    line = run.one_error(3, "suite 'unit'", MISSING[tool])
    assert WHAT_IS_MISSING.get(tool, tool) in line
    # No tool ran, so no log says what it printed: the line must not send the user to one.
    assert "kept there" not in line and "see what the tool printed" not in line
    folder = tmp_path / ".memgate" / "artifacts" / "unit"
    if tool in ("asan", "lsan"):  # the program ran without the sanitizer, and printed nothing
        assert line.endswith(f"({folder}): the logs there are empty: neither the tool nor the program "
                             "printed anything")
        assert all(path.stat().st_size == 0 for path in folder.glob("*.log"))
    else:  # nothing ran: no folder named
        assert str(folder) not in line and "the logs there" not in line


def test_logs_with_something_in_them_are_pointed_to(build_program: BuildProgram, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The same missing sanitizer, but the program printed an error: that log is worth reading."""
    plain = build_program("memprog.c")
    config = suite_config(tmp_path, [str(plain), "no_such_scenario"], "asan",
                          suite="accept_exit_codes = [64]")  # memprog's exit status for it
    run = memgate(capsys, "check", "--config", config, "--jobs", "1")
    folder = tmp_path / ".memgate" / "artifacts" / "unit"
    line = run.one_error(3, "suite 'unit'", "no AddressSanitizer log")
    assert line.endswith(f"({folder}): the raw logs are kept there; see what the tool printed")
    assert (folder / "stderr.log").read_text() == "unknown scenario no_such_scenario\n"


# --- the same ending, the same words, for every tool ------------------------------------------------

CANNOT_START = ("memgate: error: suite 'unit': cannot run '{program}': {why} ({cwd}): {hint}")
NO_SUCH_PROGRAM = ("no such program", "build the test program first, or fix the suite's command (paths are "
                                      "relative to cwd)")


@pytest.mark.parametrize("tool", PROGRAM_TOOLS)
@pytest.mark.parametrize("problem", ["missing", "not executable", "a folder"])
def test_a_program_that_cannot_start_is_exit_3_with_the_same_line_for_every_tool(
    tool: str, problem: str, program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "tests-bin"
    why, hint = NO_SUCH_PROGRAM
    if problem == "not executable":
        target.write_text("#!/bin/sh\nexit 0\n")
        target.chmod(0o644)
        why, hint = "permission denied", "make it executable (chmod +x)"
    elif problem == "a folder":
        target.mkdir()
        why, hint = "it is a folder", "give the test program in the suite's command, not its folder"
    config = suite_config(tmp_path, [str(target), "clean"], tool)
    run = memgate(capsys, "check", "--config", config, "--jobs", "1")
    line = run.one_error(3)
    assert line == CANNOT_START.format(program=target, why=why, cwd=tmp_path, hint=hint)
    bare = suite_config(tmp_path, ["memgate-no-such-test-program"], tool)
    line = memgate(capsys, "check", "--config", bare, "--jobs", "1").one_error(3)
    assert line == CANNOT_START.format(program="memgate-no-such-test-program", why=NO_SUCH_PROGRAM[0],
                                       cwd=tmp_path, hint=NO_SUCH_PROGRAM[1])


# scenario of memprog -> (exit code of memgate check, suite status, start of its detail)
ENDINGS: dict[str, tuple[int, str, str | None]] = {
    "exit3": (1, "failed", "exited with status 3"),
    "sigkill": (1, "crashed", "killed by SIGKILL"),  # leaks first: no tool can report it
    "crash": (1, "crashed", "killed by SIGSEGV"),
    "clean": (0, "ok", None),  # the program prints nothing, allocates nothing
}


@pytest.mark.parametrize("tool", PROGRAM_TOOLS)
@pytest.mark.parametrize("scenario", list(ENDINGS))
def test_how_a_program_ends_is_told_the_same_by_every_tool(
    tool: str, scenario: str, program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, status, detail = ENDINGS[scenario]
    config = suite_config(tmp_path, [str(program), scenario], tool)
    run = memgate(capsys, "check", "--config", config, "--jobs", "1", "--json", tmp_path / "report.json")
    run.assert_clean()
    assert run.code == code, run.err
    assert run.error_lines == []
    suite = the_suite(tmp_path / "report.json")
    assert suite["status"] == status, suite["status_detail"]
    if detail is None:
        assert suite["status_detail"] is None
    else:
        assert str(suite["status_detail"]).startswith(detail), suite["status_detail"]
