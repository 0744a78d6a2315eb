"""The test a finding belongs to (``memgate.testnames``): a real GoogleTest binary, built at test time
with a leak or an overflow in a TEST, TEST_P, TYPED_TEST and TYPED_TEST_P, run under real ASan and
real memcheck; then the rule on frame names as gcc and Valgrind print them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import BuildProgram

from memgate.config import Config, SuiteConfig
from memgate.records import Frame, Leak, MemError, ProcessRecord, SuiteRecord
from memgate.runner.process_tests import name_processes
from memgate.runner.suite import run_suite
from memgate.testnames import (
    ambiguous_class,
    gtest_of_stack,
    gtest_test_name,
    listed_classes,
    listed_test_name,
    with_process_test,
)
from memgate.tools.memcheck import MEMCHECK

GTEST_LIBS = ("-lgtest", "-lgtest_main", "-pthread")
# What each test of tests/programs/gtestprog.cpp leaves: Sizes.Overflows overflows in one of its two
# instances, Typed.Reads in both types (two sites: the frames name the type).
PER_TEST = {
    # One site (make_buffer < fill_inner < fill), two tests: one record each.
    "Cache.FillsOnce": {"leak_definite_bytes": 8, "leak_definite_blocks": 1},
    "Cache.FillsTwice": {"leak_definite_bytes": 8, "leak_definite_blocks": 1},
    "Parser.Leaks": {"leak_definite_bytes": 48, "leak_definite_blocks": 1},
    "Pattern.Leaks": {"leak_definite_bytes": 12, "leak_definite_blocks": 1},
    "Sizes.Overflows": {"errors": 1},
    "Typed.Reads": {"errors": 2},
    # TEST(snake_suite, KeepsBuffer): a suite name with an underscore, named by the binary's test list.
    "snake_suite.KeepsBuffer": {"leak_definite_bytes": 24, "leak_definite_blocks": 1},
}


def _gtest_binary(build_program: BuildProgram, tool: str) -> Path:
    if not Path("/usr/include/gtest/gtest.h").is_file():
        pytest.skip("libgtest-dev is not installed")
    flags = ("-fsanitize=address", "-fsanitize-recover=address") if tool == "asan" else ()
    return build_program("gtestprog.cpp", flags=flags, libs=GTEST_LIBS)


def _run(binary: Path, tool: str, folder: Path) -> SuiteRecord:
    # halt_on_error=0: every overflow is reported (the binary is built to recover), then the leaks.
    # GTEST_OUTPUT: the run's own XML report, which listing the tests (snake_suite) must not replace.
    env = {"ASAN_OPTIONS": "halt_on_error=0"} if tool == "asan" else {}
    env["GTEST_OUTPUT"] = f"xml:{folder}/gtest.xml"
    config = Config(root=folder, suite=[SuiteConfig(name="unit", tool=tool, command=[str(binary)], env=env)])
    return run_suite(config.suites[0], config)


@pytest.mark.parametrize("tool", ["asan", "memcheck"])
def test_a_gtest_binary_has_figures_per_test_from_the_testbody_frames(
        build_program: BuildProgram, tmp_path: Path, tool: str) -> None:
    if tool == "memcheck" and shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    record = _run(_gtest_binary(build_program, tool), tool, tmp_path)
    assert record.status.value == "ok", record.status_detail
    # Only the tests that leaked or erred have figures: the one process ran for no test of its own.
    assert record.tests == PER_TEST
    (process,) = record.processes
    assert process.test is None
    findings: list[Leak | MemError] = [*process.leaks, *process.errors]
    tests_by_site = {(finding.site.split(" < ")[0], finding.test) for finding in findings}
    assert tests_by_site == {
        ("make_buffer", "Parser.Leaks"), ("make_buffer", "snake_suite.KeepsBuffer"),
        ("make_buffer", "Cache.FillsOnce"), ("make_buffer", "Cache.FillsTwice"),
        ("read_past", "Sizes.Overflows"),
        ("Typed_Reads_Test<int>::TestBody", "Typed.Reads"),
        ("Typed_Reads_Test<char>::TestBody", "Typed.Reads"),
        ("gtest_suite_Pattern_::Leaks<int>::TestBody", "Pattern.Leaks"),
    }
    assert 'timestamp="' in (tmp_path / "gtest.xml").read_text()  # the run's report, not a test list
    # The suite's totals are the tests' sums: every finding is some test's.
    assert record.metrics["leak_definite_bytes"] == 8 + 8 + 48 + 12 + 24
    assert record.metrics["errors"] == 1 + 2
    cache_leaks = [leak for leak in process.leaks if leak.test is not None and leak.test.startswith("Cache.")]
    assert len({leak.fingerprint for leak in cache_leaks}) == 1 and len(cache_leaks) == 2


def test_memgate_parse_of_a_memcheck_text_log_names_the_tests_too(
        build_program: BuildProgram, tmp_path: Path) -> None:
    # A log the user made: no binary to list, so the suite name with an underscore keeps the first split.
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    log = tmp_path / "memcheck.log"
    binary = _gtest_binary(build_program, "memcheck")
    subprocess.run(["valgrind", "--leak-check=full", f"--log-file={log}", str(binary)], check=True,
                   capture_output=True)
    record = SuiteRecord.from_processes("unit", "memcheck", MEMCHECK.parse([log]))
    first_split = {"snake_suite.KeepsBuffer": "snake.suite_KeepsBuffer"}
    assert record.tests == {first_split.get(test, test): figures for test, figures in PER_TEST.items()}


# Under heaptrack, which keeps no leak or error records, each test's allocations: made with its
# TestBody on the stack (Sizes.Overflows: two instances of 8 bytes; Typed.Reads: 2 ints and 2 chars).
HEAPTRACK_PER_TEST = {
    "Cache.FillsOnce": (8, 1, 8), "Cache.FillsTwice": (8, 1, 8), "Parser.Clean": (16, 1, 0),
    "Parser.Leaks": (48, 1, 48), "Pattern.Leaks": (12, 1, 12), "Sizes.Overflows": (16, 2, 0),
    "Typed.Reads": (10, 2, 0), "snake_suite.KeepsBuffer": (24, 1, 24),
}


def test_under_heaptrack_a_gtest_binary_has_each_tests_allocations(
        build_program: BuildProgram, tmp_path: Path) -> None:
    for program in ("heaptrack", "zstd"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed")
    record = _run(_gtest_binary(build_program, "heaptrack"), "heaptrack", tmp_path)
    assert record.status.value == "ok", record.status_detail
    assert record.tests == {test: {"heap_total_bytes": total, "alloc_calls": calls, "heap_end_bytes": end}
                            for test, (total, calls, end) in HEAPTRACK_PER_TEST.items()}
    (process,) = record.processes
    assert process.tests == record.tests and process.test is None


@pytest.mark.parametrize(("function", "test"), [
    ("Parser_Empty_Test::TestBody()", "Parser.Empty"),  # TEST, TEST_F and TEST_P
    ("Parser_Empty_Test::TestBody", "Parser.Empty"),  # without the parameter list
    ("Parser_reads_empty_input_Test::TestBody()", "Parser.reads_empty_input"),
    ("inner::(anonymous namespace)::Parser_Empty_Test::TestBody()", "Parser.Empty"),
    ("Typed_Reads_Test<int>::TestBody()", "Typed.Reads"),  # TYPED_TEST
    ("Typed_Reads_Test<std::pair<int, char> >::TestBody()", "Typed.Reads"),
    ("gtest_suite_Pattern_::Leaks<int>::TestBody()", "Pattern.Leaks"),  # TYPED_TEST_P
    ("gtest_case_Pattern_::Leaks<int>::TestBody()", "Pattern.Leaks"),  # before gtest 1.10
    ("gtest_suite_my_pattern_::Leaks<char>::TestBody()", "my_pattern.Leaks"),  # no ambiguity there
    ("Parser_Empty_Test::TestBody.cold", "Parser.Empty"),
])
def test_a_testbody_frame_names_its_test(function: str, test: str) -> None:
    assert gtest_test_name(function) == test


@pytest.mark.parametrize("function", [
    "testing::Test::Run()", "make_buffer", "TestBody()", "Helper::TestBody()",  # no <Suite>_<Name>_Test
    "Parser_Empty_Test::SetUp()", "Parser_Empty_Test::TestBodyHelper()", "Empty_Test::TestBody()",
    "void testing::internal::HandleExceptionsInMethodIfSupported<testing::Test, void>(testing::Test*, "
    "void (testing::Test::*)(), char const*)",
])
def test_other_functions_name_no_test(function: str) -> None:
    assert gtest_test_name(function) is None


def test_the_innermost_testbody_frame_wins() -> None:
    stack = (Frame(function="malloc"), Frame(function="helper"),
             Frame(function="Inner_Body_Test::TestBody()"), Frame(function="Outer_Body_Test::TestBody()"),
             Frame(function="main"))
    assert gtest_of_stack(stack) == "Inner.Body"
    assert gtest_of_stack(stack[:2]) is None
    assert gtest_of_stack(()) is None


def test_findings_without_a_frame_of_their_own_get_their_process_test() -> None:
    own = Leak(kind="definite", bytes=8, blocks=1, fingerprint="a", site="s", test="Parser.Leaks")
    other = Leak(kind="definite", bytes=16, blocks=1, fingerprint="b", site="t")
    error = MemError(kind="InvalidRead", fingerprint="c", site="u")
    process = ProcessRecord(pid=7, leaks=(own, other), errors=(error,))
    named = with_process_test(process, "unit_tests")
    assert named.test == "unit_tests"
    assert [leak.test for leak in named.leaks] == ["Parser.Leaks", "unit_tests"]
    assert [error.test for error in named.errors] == ["unit_tests"]
    assert with_process_test(process, None) is process


# What gtest 1.12's --gtest_list_tests printed for tests/programs/gtestprog.cpp (with another suite).
LISTING = """\
Running main() from ./googletest/src/gtest_main.cc
Parser.
  Leaks
Sizes_Base.
  Reads_past
Typed/0.  # TypeParam = int
  Reads
snake_suite.
  KeepsBuffer
Small/Sizes.
  Overflows/0  # GetParam() = 0
Ints/Pattern/0.  # TypeParam = int
  Leaks
"""


def test_the_binarys_test_list_names_a_class_whose_suite_has_an_underscore() -> None:
    classes = listed_classes(LISTING)
    assert listed_test_name("snake.suite_KeepsBuffer", classes) == "snake_suite.KeepsBuffer"
    assert listed_test_name("Sizes.Base_Reads_past", classes) == "Sizes_Base.Reads_past"
    assert listed_test_name("Sizes.Overflows", classes) == "Sizes.Overflows"  # instance and index dropped
    assert listed_test_name("Other.suite_Case", classes) == "Other.suite_Case"  # not listed: it stands


def test_only_a_name_from_a_class_with_two_underscores_is_ambiguous() -> None:
    assert ambiguous_class("snake.suite_KeepsBuffer") == "snake_suite_KeepsBuffer"
    assert ambiguous_class("Parser.reads_empty") == "Parser_reads_empty"  # may be Parser_reads.empty
    assert ambiguous_class("Parser.Leaks") is None
    assert ambiguous_class("leaks_once_more") is None  # a CTest test or a command: no class


def test_without_the_binary_the_first_underscore_split_stands(tmp_path: Path) -> None:
    leak = Leak(kind="definite", bytes=24, blocks=1, fingerprint="f", site="s",
                test="snake.suite_KeepsBuffer",
                stack=(Frame(function="inner::snake_suite_KeepsBuffer_Test::TestBody()"),))
    # A binary gone since the run, and a program that is no GoogleTest binary (a script that would
    # run every test again if it were started): neither is run.
    script = tmp_path / "runner.sh"
    script.write_text(f"#!/bin/sh\ntouch {tmp_path}/started\n")
    script.chmod(0o755)
    for program in (tmp_path / "gone", script):
        process = ProcessRecord(pid=1, command=str(program), leaks=(leak,))
        (named,), _ = name_processes([process], [str(program)], tmp_path, {})
        assert named.leaks[0].test == "snake.suite_KeepsBuffer"
    assert not (tmp_path / "started").exists()
