"""Which test each process of a suite ran for (issue 13). In a suite of several processes (a ``ctest``
run, a script that starts several test programs) each process's figures belong to the test that
started it: for a ctest run its CTest test name, else its command.

The rule, as ``name_processes`` applies it:

- The suite's own command (the script, ``ctest``) is the driver, not a test: it keeps no test.
- A ctest run (a suite whose command is ``ctest ...``, as a list or as a ``shell`` command that is
  ctest alone): ``ctest <its arguments> --show-only=json-v1`` lists the tests it runs with their
  commands. A process is the test whose command is its command; or, when the tool only knows the
  program (ASan names its logs after it), the one test that runs that program. A process that
  matches no test, or several (one program run by several tests, as ``gtest_discover_tests``
  does), is named by its command.
- Otherwise a process is named by its command: the program's file name and its arguments, cut to
  ``COMMAND_CHARS`` characters.
- A suite whose processes all have one name (a single test program, or one that forks copies of
  itself) keeps no test on its processes: per-test figures would only repeat the suite's.

A leak or error with no GoogleTest frame of its own then belongs to its process's test
(``memgate.testnames.with_process_test``). One whose GoogleTest class name is ambiguous
(``memgate.testnames.ambiguous_class``: a suite name with an underscore) is named from the test
binary's ``--gtest_list_tests`` when memgate finds the binary.
"""

from __future__ import annotations

import json
import mmap
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from memgate.records import Leak, MemError, ProcessRecord
from memgate.testnames import ambiguous_class, listed_classes, listed_test_name, with_process_test

#: The longest name a process gets from its command.
COMMAND_CHARS = 80
#: How long listing a ctest run's tests, or a GoogleTest binary's, may take.
_LIST_SECONDS = 60
_Finding = TypeVar("_Finding", Leak, MemError)


@dataclass(frozen=True)
class CTestTest:
    """One test of a ctest run: its name and the command ctest runs for it."""

    name: str
    command: tuple[str, ...]


def name_processes(processes: Sequence[ProcessRecord], argv: Sequence[str], cwd: Path,
                   env: Mapping[str, str]) -> tuple[list[ProcessRecord], tuple[str, ...]]:
    """``processes`` with the test each ran for (see the module's rule), and notes on what could not
    be worked out (a ctest run whose tests could not be listed). Records that each measured their own
    tests (Go: one record per package, a test per benchmark) are no processes of tests: left as they are."""
    notes: tuple[str, ...] = ()
    ctest: list[CTestTest] | None = None
    ctest_argv = _ctest_command(argv)
    if ctest_argv is not None:
        ctest, problem = list_ctest_tests(ctest_argv, cwd, env)
        if problem is not None:
            notes = (f"could not list the CTest tests ({problem}): its processes are named by their "
                     "commands",)
    processes = _with_listed_gtest_names(processes, argv, cwd, env, ctest or [])
    if ctest_argv is None and len(processes) > 1 and all(process.tests for process in processes):
        return list(processes), notes  # each record names its tests itself (Go: a package's benchmarks)
    names = [_test_of(process, argv, ctest) for process in processes]
    if len({name for name in names if name is not None}) < 2:
        return list(processes), notes
    return [with_process_test(process, name) for process, name in zip(processes, names, strict=True)], notes


#: What makes a shell command more than one program with its arguments.
_SHELL_SYNTAX = frozenset(";&|<>()$`*?[]{}~\n")


def _ctest_command(argv: Sequence[str]) -> list[str] | None:
    """The ctest command line of a suite that is a ctest run: ``["ctest", ...]``, or ``/bin/sh -c``
    with a command that is ctest and its arguments only (no other program, redirection or expansion,
    which would make ``--show-only`` list another run)."""
    if argv and _program(argv[0]) == "ctest":
        return list(argv)
    if len(argv) != 3 or list(argv[:2]) != ["/bin/sh", "-c"] or _SHELL_SYNTAX & set(argv[2]):
        return None
    try:
        words = shlex.split(argv[2])
    except ValueError:
        return None
    return words if words and _program(words[0]) == "ctest" else None


def _with_listed_gtest_names(processes: Sequence[ProcessRecord], argv: Sequence[str], cwd: Path,
                             env: Mapping[str, str], ctest: Sequence[CTestTest]) -> list[ProcessRecord]:
    """The processes, their tests of an ambiguous GoogleTest class name (findings', and the tool's
    own per-test figures) named from the test binary's list. The binary is run (once each) only when
    a name needs it."""
    listings: dict[Path | None, dict[str, set[str]]] = {}
    named: list[ProcessRecord] = []
    for process in processes:
        tests = {*(leak.test for leak in process.leaks), *(error.test for error in process.errors),
                 *process.tests}
        if not any(ambiguous_class(test) for test in tests if test is not None):
            named.append(process)
            continue
        binary = _binary_of(process, argv, cwd, env, ctest)
        if binary not in listings:
            listings[binary] = list_gtest_classes(binary, cwd, env) if binary is not None else {}
        named.append(_renamed(process, listings[binary]))
    return named


def _renamed(process: ProcessRecord, classes: dict[str, set[str]]) -> ProcessRecord:
    return process.model_copy(update={
        "leaks": tuple(_listed_name(leak, classes) for leak in process.leaks),
        "errors": tuple(_listed_name(error, classes) for error in process.errors),
        "tests": {listed_test_name(test, classes): figures for test, figures in process.tests.items()},
    })


def _listed_name(finding: _Finding, classes: dict[str, set[str]]) -> _Finding:
    if finding.test is None:
        return finding
    return finding.model_copy(update={"test": listed_test_name(finding.test, classes)})


def _binary_of(process: ProcessRecord, argv: Sequence[str], cwd: Path, env: Mapping[str, str],
               ctest: Sequence[CTestTest]) -> Path | None:
    """The program a process ran, as a file: its command's path (memcheck), else the suite's program
    or a CTest test's of that name (ASan knows the name only), else the name on the suite's PATH."""
    if not process.command:
        return None
    program = process.command.split(" ", 1)[0]
    candidates = [program] if "/" in program else []
    candidates += [command for command in (argv[:1] if argv else []) if _program(command) == program]
    candidates += [test.command[0] for test in ctest if test.command and _program(test.command[0]) == program]
    found = shutil.which(program, path=env.get("PATH", os.defpath)) if "/" not in program else None
    for candidate in [*candidates, *([found] if found else [])]:
        path = cwd / candidate
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def list_gtest_classes(binary: Path, cwd: Path, env: Mapping[str, str]) -> dict[str, set[str]]:
    """``memgate.testnames.listed_classes`` of ``binary --gtest_list_tests``; empty when it cannot
    say (not a GoogleTest binary, it failed to start): the split at the first underscore stands. A
    program that does not hold GoogleTest's symbols is never run: to a script or another test runner,
    the option could mean anything, or nothing, and run every test again."""
    if not _holds_gtest(binary):
        return {}
    # GTEST_OUTPUT would have the list written over the report the suite's run just wrote.
    quiet_env = {name: value for name, value in env.items() if name != "GTEST_OUTPUT"}
    try:
        result = subprocess.run([str(binary), "--gtest_list_tests"], cwd=cwd, env=quiet_env,
                                capture_output=True, text=True, errors="replace", timeout=_LIST_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return listed_classes(result.stdout)


def _test_of(process: ProcessRecord, argv: Sequence[str], ctest: list[CTestTest] | None) -> str | None:
    command = process.command
    if not command or _is_driver(command, argv):
        return None
    if ctest is not None:
        name = _ctest_name(command, ctest)
        if name is not None:
            return name
    return short_command(command)


def _is_driver(command: str, argv: Sequence[str]) -> bool:
    """The suite's own command, or a ctest that runs the tests (a script may start one)."""
    return command == " ".join(argv) or _program(command.split(" ", 1)[0]) == "ctest"


def _ctest_name(command: str, tests: Sequence[CTestTest]) -> str | None:
    """The test whose command is ``command`` (memcheck and heaptrack know a process's whole command
    line); else the only test that runs its program (ASan knows the program only)."""
    exact = [test.name for test in tests if " ".join(test.command) == command]
    if len(exact) == 1:
        return exact[0]
    program = _program(command.split(" ", 1)[0])
    by_program = {test.name for test in tests if test.command and _program(test.command[0]) == program}
    return by_program.pop() if len(by_program) == 1 else None


def short_command(command: str) -> str:
    """``tidy 1`` for ``/home/me/build/tidy 1``: the program's file name and the arguments, at most
    ``COMMAND_CHARS`` characters (a longer one ends with "...")."""
    program, _, arguments = command.partition(" ")
    name = f"{_program(program)} {arguments}".strip()
    return name if len(name) <= COMMAND_CHARS else name[:COMMAND_CHARS - 3] + "..."


#: In the symbol names of every GoogleTest test program (``testing::internal::...``), linked statically
#: or not.
_GTEST_SYMBOL = b"_ZN7testing8internal"


def _holds_gtest(binary: Path) -> bool:
    try:
        with open(binary, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(_GTEST_SYMBOL) >= 0
    except (OSError, ValueError):  # ValueError: an empty file cannot be mapped
        return False


def _program(path: str) -> str:
    return os.path.basename(path)


def list_ctest_tests(argv: Sequence[str], cwd: Path,
                     env: Mapping[str, str]) -> tuple[list[CTestTest] | None, str | None]:
    """The tests the ctest command ``argv`` runs, from ``ctest --show-only=json-v1`` with the same
    arguments (so the same filters and build folder); None and why when ctest cannot say."""
    listing = [*argv, "--show-only=json-v1"]
    try:
        result = subprocess.run(listing, cwd=cwd, env=dict(env), capture_output=True, text=True,
                                timeout=_LIST_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"{' '.join(listing)}: {error}"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        return None, f"{' '.join(listing)}: {last}"
    try:
        tests = json.loads(result.stdout)["tests"]
        return [CTestTest(name=str(test["name"]), command=tuple(map(str, test.get("command", ()))))
                for test in tests], None
    except (ValueError, KeyError, TypeError) as error:
        return None, f"{' '.join(listing)} printed no test list ({type(error).__name__}: {error})"
