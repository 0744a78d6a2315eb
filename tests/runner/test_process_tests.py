"""Which test each process of a suite ran for (``memgate.runner.process_tests``): a real CMake project
with three CTest tests (one leaking) run by ``ctest`` under real ASan and memcheck, and a shell script
that starts two programs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from memgate.config import Config, SuiteConfig
from memgate.records import ProcessRecord, SuiteRecord
from memgate.runner.process_tests import CTestTest, list_ctest_tests, name_processes, short_command
from memgate.runner.suite import run_suite

CMAKELISTS = """\
cmake_minimum_required(VERSION 3.13)
project(demo C)
add_executable(tidy tidy.c)
add_executable(leaky leaky.c)
enable_testing()
add_test(NAME tidy_one COMMAND tidy 1)
add_test(NAME leaks_once COMMAND leaky)
add_test(NAME tidy_two COMMAND tidy 2)
"""
TIDY = """\
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    char *copy = strdup(argc > 1 ? argv[1] : "");
    free(copy);
    return 0;
}
"""
LEAKY = """\
#include <stdlib.h>
int main(void) {
    char *kept = malloc(40);
    kept[0] = 1;
    kept = 0;
    return 0;
}
"""
LEAK = {"leak_definite_bytes": 40, "leak_definite_blocks": 1}


def _project(folder: Path, tool: str) -> Path:
    """The project built for ``tool``: its build folder, where ctest runs."""
    for program in ("cmake", "ctest", "gcc"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed")
    if tool == "memcheck" and shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    source = folder / "src"
    source.mkdir()
    (source / "CMakeLists.txt").write_text(CMAKELISTS)
    (source / "tidy.c").write_text(TIDY)
    (source / "leaky.c").write_text(LEAKY)
    build = folder / "build"
    flags = "-g -O0 -fno-omit-frame-pointer" + (" -fsanitize=address" if tool == "asan" else "")
    for command in (["cmake", "-S", str(source), "-B", str(build), f"-DCMAKE_C_FLAGS={flags}"],
                    ["cmake", "--build", str(build)]):
        subprocess.run(command, check=True, capture_output=True)
    return build


def _run(build: Path, tool: str, command: list[str] | str) -> SuiteRecord:
    config = Config(root=build, artifacts_dir=str(build.parent / "artifacts"),
                    suite=[SuiteConfig(name="all", tool=tool, command=command,
                                                shell=isinstance(command, str))])
    record = run_suite(config.suites[0], config)
    assert record.status.value == "ok", record.status_detail
    return record


def _non_finding(metrics: dict[str, int]) -> dict[str, int]:
    return {name: value for name, value in metrics.items() if not name.startswith(("leak_", "errors"))}


def test_under_memcheck_each_ctest_process_is_its_ctest_test(tmp_path: Path) -> None:
    record = _run(_project(tmp_path, "memcheck"), "memcheck", ["ctest"])
    by_test = {process.test: process for process in record.processes}
    # ctest itself (traced too) is the driver: no test. Each test process: its whole command line.
    assert set(by_test) == {None, "tidy_one", "leaks_once", "tidy_two"}
    assert by_test[None].command == "ctest"
    assert set(record.tests) == {"tidy_one", "leaks_once", "tidy_two"}
    leaky = by_test["leaks_once"]
    definite = [(leak.bytes, leak.test) for leak in leaky.leaks if leak.kind == "definite"]
    assert definite == [(40, "leaks_once")]
    assert {name: record.tests["leaks_once"][name] for name in LEAK} == LEAK
    for name in ("tidy_one", "tidy_two"):  # the process's figures under its test; no finding, no leak figure
        assert record.tests[name] == _non_finding(by_test[name].metrics)
        assert record.tests[name]["alloc_calls"] >= 1
    assert _non_finding(record.tests["leaks_once"]) == _non_finding(leaky.metrics)


@pytest.mark.parametrize(("command", "leaky_test"), [
    (["ctest"], "leaks_once"),
    ("ctest --output-on-failure", "leaks_once"),  # a shell command that is ctest alone
    ("ctest; true", "leaky"),  # more than ctest: not read as one ctest run, named by program
])
def test_under_asan_a_process_is_the_ctest_test_of_its_program_when_only_one_runs_it(
        tmp_path: Path, command: list[str] | str, leaky_test: str) -> None:
    record = _run(_project(tmp_path, "asan"), "asan", command)
    # ASan knows a process's program only (its log is named after it): leaky is one test's; tidy runs
    # in two tests, so those two processes are named by what is known of their command.
    assert sorted(process.test or "" for process in record.processes) == sorted([leaky_test, "tidy", "tidy"])
    assert {name: record.tests[leaky_test][name] for name in LEAK} == LEAK
    (leaky,) = (process for process in record.processes if process.test == leaky_test)
    assert [leak.test for leak in leaky.leaks] == [leaky_test]
    assert record.tests["tidy"] == {"alloc_calls": sum(process.metrics["alloc_calls"] for process in
                                                       record.processes if process.test == "tidy")}


@pytest.mark.parametrize("tool", ["asan", "memcheck"])
def test_a_script_that_starts_programs_names_each_process_by_its_command(tmp_path: Path, tool: str) -> None:
    build = _project(tmp_path, tool)
    record = _run(build, tool, "./tidy 1 && ./leaky")
    tests = sorted(process.test or "" for process in record.processes)
    # memcheck also traces the shell (the suite's own command: no test) and knows the arguments.
    assert tests == (["leaky", "tidy"] if tool == "asan" else ["", "leaky", "tidy 1"])
    assert {name: record.tests["leaky"][name] for name in LEAK} == LEAK
    assert "leak_definite_bytes" not in record.tests["tidy" if tool == "asan" else "tidy 1"]


def test_ctest_lists_its_tests_with_their_commands(tmp_path: Path) -> None:
    build = _project(tmp_path, "none")
    tests, problem = list_ctest_tests(["ctest", "-R", "tidy"], build, {"PATH": "/usr/bin:/bin"})
    assert problem is None
    assert tests == [CTestTest("tidy_one", (str(build / "tidy"), "1")),
                     CTestTest("tidy_two", (str(build / "tidy"), "2"))]
    missing, problem = list_ctest_tests(["ctest", "--test-dir", str(tmp_path / "nowhere")], build,
                                        {"PATH": str(tmp_path)})  # no ctest on this PATH
    assert missing is None and problem is not None and "ctest" in problem


def test_a_ctest_run_whose_tests_cannot_be_listed_says_so_and_names_by_command(tmp_path: Path) -> None:
    processes = [ProcessRecord(pid=1, command="/b/tidy 1"), ProcessRecord(pid=2, command="/b/leaky")]
    named, notes = name_processes(processes, ["ctest"], tmp_path, {"PATH": str(tmp_path)})
    assert [process.test for process in named] == ["tidy 1", "leaky"]
    assert len(notes) == 1 and notes[0].startswith("could not list the CTest tests (")


def test_processes_of_one_program_keep_no_test() -> None:
    # One program (a test binary that forks copies of itself): per-test figures would repeat the suite's.
    processes = [ProcessRecord(pid=1, command="/b/unit"), ProcessRecord(pid=2, command="/b/unit")]
    named, notes = name_processes(processes, ["/b/unit"], Path("/"), {})
    assert [process.test for process in named] == [None, None] and notes == ()


def test_a_long_command_is_cut() -> None:
    assert short_command("/home/me/build/tidy 1") == "tidy 1"
    cut = short_command("/b/prog " + "x" * 200)
    assert len(cut) == 80 and cut.endswith("...") and cut.startswith("prog xxx")
