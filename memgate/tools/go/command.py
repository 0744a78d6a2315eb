"""The ``go test`` command memgate runs for a suite: the user's command, plus the flags that make its
figures exact and readable."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from memgate.errors import ConfigError

#: Iterations per benchmark when the command gives no ``-benchtime=Nx``: allocs/op and B/op are totals
#: divided by ``b.N``, so a ``b.N`` that changes from run to run (``-benchtime=1s``) moves them on
#: unchanged code; a fixed count does not. 1000 iterations averaged a map's seeded bucket layout to
#: within 0.5% of B/op over 20 reruns, where 3x and 8x moved allocs/op itself (see the README).
DEFAULT_ITERATIONS = 1000
#: Runs of each benchmark when the command gives no ``-count``; each figure is their median. Whatever
#: the runtime allocates once during a run (X bytes) adds X/N to that run's B/op, which a benchmark of
#: a few bytes per operation feels; the median leaves one such run out.
DEFAULT_COUNT = 3
#: The environment variable of the Go runtime that makes it print one line per garbage collection.
GC_TRACE = "gctrace=1"
#: The file suffix of the heap profiles the test binaries write (``heap_profile_wrapper``).
HEAP_PROFILE_SUFFIX = "memprofile"

_GO_PROGRAM = re.compile(r"go[0-9.]*")
_ITERATIONS = re.compile(r"[1-9][0-9]*x")
# go test's flags that take a value (``-name value`` or ``-name=value``); the others memgate reads are
# booleans. ``-test.`` spellings are the test binary's own and mean the same.
_VALUE_FLAGS = frozenset({"bench", "benchtime", "count", "run", "exec", "cpu", "timeout", "p", "o",
                          "memprofile", "cpuprofile", "tags", "ldflags", "gcflags", "mod", "parallel",
                          "coverprofile", "blockprofile", "mutexprofile", "trace", "outputdir", "C",
                          "covermode", "coverpkg", "vet", "shuffle", "skip", "list", "fuzz", "fuzztime"})


def go_test_argv(command: Sequence[str], env: Mapping[str, str],
                 exec_wrapper: Path | None = None) -> list[str]:
    """``command`` with memgate's flags right after ``go test``: ``-json -benchmem``, ``-run ^$`` and
    ``-bench .`` when it gives none, a fixed ``-benchtime=1000x -count=3`` when it gives none, and
    ``-exec`` that turns on the runtime's GC trace in the test binaries only (the go command and the
    compiler are Go programs too: their traces would fill the build output and its cache), through
    ``exec_wrapper`` when one is given (``heap_profile_wrapper``)."""
    if len(command) < 2 or not _GO_PROGRAM.fullmatch(os.path.basename(command[0])) or command[1] != "test":
        raise ConfigError(f"a go suite's command is a go test command, not {' '.join(command)!r}",
                          hint="write it as a list, e.g. [\"go\", \"test\", \"-bench\", \".\", \"./...\"]")
    given = given_flags(command[2:])
    _refuse_inexact(given)
    added = [flag for flag in ("-json", "-benchmem") if flag[1:] not in given]
    # Unit tests are run by the project's own test job: here they would run a second time, and their
    # allocations are no benchmark's.
    for name, default in (("run", "^$"), ("bench", "."), ("benchtime", f"{DEFAULT_ITERATIONS}x"),
                          ("count", str(DEFAULT_COUNT))):
        if name not in given:
            added.append(f"-{name}={default}")
    godebug = env.get("GODEBUG", os.environ.get("GODEBUG", ""))
    wrapper = f" '{exec_wrapper}'" if exec_wrapper is not None else ""
    added.append(f"-exec=env GODEBUG={godebug + ',' if godebug else ''}{GC_TRACE}{wrapper}")
    return [command[0], "test", *added, *command[2:]]


def heap_profile_wrapper(folder: Path) -> Path | None:
    """A script for go test's ``-exec`` that runs each test binary with every allocation in a heap
    profile (``-test.memprofile``, ``-memprofilerate=1``) written into ``folder``, one per binary: go
    test refuses ``-memprofile`` for several packages, a test binary takes it for itself. None when
    the path cannot be quoted for ``-exec`` (it holds a quote): the run goes on without profiles."""
    script = folder / "go-exec.sh"
    if "'" in str(script) or '"' in str(script):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    # The flags go right after the binary: a test binary stops reading flags at its first argument
    # that is not one (what follows the user's -args).
    script.write_text('#!/bin/sh\nbinary=$1\nshift\n'
                      f'exec "$binary" -test.memprofile="$(dirname "$0")/$$.{HEAP_PROFILE_SUFFIX}" '
                      '-test.memprofilerate=1 "$@"\n')
    script.chmod(0o755)
    return script


def given_flags(arguments: Sequence[str]) -> dict[str, str | None]:
    """The flags of go test's arguments, by name without dashes or ``test.``: their value, or None for
    a boolean. Arguments after ``-args`` are the test binary's and are not read."""
    flags: dict[str, str | None] = {}
    waiting: str | None = None
    for argument in arguments:
        if waiting is not None:
            flags[waiting], waiting = argument, None
            continue
        if argument in ("-args", "--args"):
            break
        if not argument.startswith("-") or argument in ("-", "--"):
            continue
        name, equals, value = argument.lstrip("-").removeprefix("test.").partition("=")
        if equals:
            flags[name] = value
        elif name in _VALUE_FLAGS:
            waiting = name
        else:
            flags[name] = None
    return flags


def _refuse_inexact(given: Mapping[str, str | None]) -> None:
    benchtime = given.get("benchtime")
    if "benchtime" in given and not (benchtime and _ITERATIONS.fullmatch(benchtime)):
        raise ConfigError(
            f"-benchtime={benchtime} makes allocs/op and B/op move between runs of unchanged code "
            "(they are divided by an iteration count that changes)",
            hint=f"give a fixed count such as -benchtime={DEFAULT_ITERATIONS}x, or leave -benchtime out "
                 f"(memgate uses {DEFAULT_ITERATIONS}x)")
    if "exec" in given:
        raise ConfigError("memgate runs the test binaries through go test's -exec itself (to read their "
                          "garbage collector's trace)", hint="remove -exec from the go suite's command")
