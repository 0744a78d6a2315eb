"""glibc memusage (``libmemusage.so`` preloaded): exact heap peak, totals and calls per process."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from memgate.errors import ConfigError, ParseError, ToolError
from memgate.metrics import MetricName
from memgate.proc import Outcome
from memgate.records import ProcessRecord
from memgate.tools._outputs import capped_lines, files_by_pid, incomplete, pid_in_name
from memgate.tools._programs import tool_env
from memgate.tools.base import DEFAULT_OPTIONS, Appetite, Launch, ToolOptions
from memgate.units import NumberTooLong, count_of

INSTALL_HINT = ("install glibc's memusage: apt-get install libc-devtools (Debian, Ubuntu), "
                "dnf install glibc-utils (Fedora)")
LIBRARY = "libmemusage.so"
PREFIX = "memusage"
_WRAPPER = Path(__file__).with_name("_stderr_by_pid.py")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_HEADER = re.compile(r"Memory usage summary: heap total: (\d+), heap peak: (\d+), stack peak: (\d+)")
_FUNCTION = re.compile(r"^\s*([a-z()]+)\|\s+(\d+)\s+(\d+)(?:\s+(\d+))?(.*)$")
_REALLOC_DETAIL = re.compile(r"\(nomove:(\d+), dec:(\d+), free:(\d+)\)")
_FUNCTIONS_NEEDED = ("malloc", "realloc", "calloc", "free")
_MEMUSAGE_VARIABLE = re.compile(r"(MEMUSAGE_[A-Z_]+)=(.*)", re.DOTALL)


@dataclass(frozen=True)
class FunctionCalls:
    calls: int
    bytes: int
    failed: int = 0


@dataclass(frozen=True)
class MemusageSummary:
    """One process's summary as libmemusage printed it."""

    heap_total_bytes: int
    heap_peak_bytes: int
    stack_peak_bytes: int
    # "malloc", "realloc", "calloc", "free"; with MEMUSAGE_TRACE_MMAP also "mmap(r)", "mmap(w)",
    # "mmap(a)", "mremap", "munmap"
    functions: dict[str, FunctionCalls]
    realloc_nomove: int
    realloc_shrink: int
    realloc_free: int  # realloc(p, 0): a free, not an allocation

    @property
    def alloc_calls(self) -> int:
        malloc, calloc, realloc = (self.functions[name] for name in ("malloc", "calloc", "realloc"))
        return (malloc.calls - malloc.failed + calloc.calls - calloc.failed
                + realloc.calls - realloc.failed - self.realloc_free)

    def metrics(self) -> dict[MetricName, int]:
        return {"heap_peak_bytes": self.heap_peak_bytes, "heap_total_bytes": self.heap_total_bytes,
                "alloc_calls": self.alloc_calls}


class _Truncated(Exception):
    pass


class _Malformed(Exception):
    """Figures libmemusage cannot have printed."""


def _lines(path: Path) -> Iterator[str]:
    """Lines without colour codes; a line longer than 64 KiB is cut (only program output is)."""
    return (_ANSI.sub("", line) for line in capped_lines(path))


def _summary(header: re.Match[str], lines: Iterator[str]) -> tuple[MemusageSummary, str | None]:
    """The summary whose header was just read, and the first line after its table (None at the end)."""
    functions: dict[str, FunctionCalls] = {}
    detail: re.Match[str] | None = None
    after: str | None = None
    for line in lines:
        match = _FUNCTION.match(line)
        if not match:
            if "total calls" in line and not functions:
                continue
            after = line
            break
        name = match[1]
        functions[name] = FunctionCalls(calls=count_of(match[2]), bytes=count_of(match[3]),
                                        failed=count_of(match[4] or "0"))
        if name == "realloc":
            detail = _REALLOC_DETAIL.search(match[5])
    missing = [name for name in _FUNCTIONS_NEEDED if name not in functions]
    if missing or detail is None:
        raise _Truncated(f"the summary lacks its {', '.join(missing) or 'realloc details'} line")
    _check_counts(functions, realloc_free=count_of(detail[3]))
    summary = MemusageSummary(
        heap_total_bytes=count_of(header[1]), heap_peak_bytes=count_of(header[2]),
        stack_peak_bytes=count_of(header[3]), functions=functions, realloc_nomove=count_of(detail[1]),
        realloc_shrink=count_of(detail[2]), realloc_free=count_of(detail[3]),
    )
    return summary, after


def _check_counts(functions: dict[str, FunctionCalls], *, realloc_free: int) -> None:
    """A function's calls include its failed ones, and a realloc's calls its frees: else no call
    count can be derived (it would come out negative)."""
    for name, calls in functions.items():
        frees = realloc_free if name == "realloc" else 0
        if calls.failed + frees > calls.calls:
            raise _Malformed(f"its {name} line counts {calls.calls} calls, fewer than its {calls.failed} "
                             f"failed calls{f' and {frees} frees' if frees else ''}")


def read_summaries(path: Path) -> list[MemusageSummary]:
    """Every summary in a file of standard error (usually one; two if a process id was reused).
    ``_Truncated`` (caught by the callers) for a summary cut short."""
    summaries: list[MemusageSummary] = []
    lines = _lines(path)
    line = next(lines, None)
    while line is not None:
        header = _HEADER.search(line)
        if header:
            summary, line = _summary(header, lines)
            summaries.append(summary)
        else:
            line = next(lines, None)
    return summaries


# Metrics, per process:
#
# - ``heap_peak_bytes``: "heap peak", the peak of live heap bytes (requested sizes): exact.
# - ``heap_total_bytes``: "heap total": bytes of malloc and calloc calls plus the growth of reallocs,
#   and, unlike DHAT, the bytes of *failed* calls too (a failed 1 TiB malloc adds 1 TiB).
# - ``alloc_calls``: successful allocations: malloc, calloc and realloc calls, less failed calls, less
#   the reallocs to 0 bytes (frees). libmemusage counts ``realloc(NULL, n)`` as a malloc; C++ ``new``
#   reaches it as malloc. memalign, posix_memalign and aligned_alloc are not intercepted, so a program
#   using them has fewer calls here than under DHAT, which is otherwise equal on the same program.
#
# The per-function table (calls, bytes and failed calls of malloc, realloc, calloc and free, and the
# realloc details) is no canonical metric; ``read_summaries`` returns it in ``MemusageSummary``.
#
# What libmemusage cannot see, and memgate cannot either:
# - a process whose standard error goes elsewhere: a test harness that captures its tests' output
#   (ctest, pytest) keeps their summaries; only processes whose standard error reaches memgate count;
# - a process that ends without running its exit handlers: killed, crashed, ``_exit()`` (dash ends
#   every shell that way, so ``sh -c "a; b"`` gives summaries for a and b, none for sh), a static or
#   setuid program. Such processes simply have no record. A run with no summary at all is incomplete.
# - A forked child (no exec) inherits its parent's counters: its summary includes the parent's
#   allocations made before the fork.
def _records(path: Path, pid: int | None) -> list[ProcessRecord]:
    try:
        summaries = read_summaries(path)
    except _Truncated as error:
        return [incomplete(f"the memusage summary is truncated: {error}", pid=pid, log_files=[path])]
    except (_Malformed, NumberTooLong) as error:
        raise ParseError(f"not a summary libmemusage writes: {error}", path=path,
                         hint="give the standard error of a program run under memusage") from None
    except OSError as error:
        raise ParseError(f"cannot read the memusage output: {error.strerror}", path=path,
                         hint="check the path and its permissions") from None
    return [ProcessRecord(pid=pid, log_files=(str(path),), metrics=summary.metrics(), leak_check=False)
            for summary in summaries]


def _library_folders() -> tuple[str, ...]:
    multiarch = getattr(sys.implementation, "_multiarch", "")  # "x86_64-linux-gnu" on Debian
    first = (f"/usr/lib/{multiarch}", f"/lib/{multiarch}") if multiarch else ()
    return (*first, "/usr/lib64", "/lib64", "/usr/lib", "/lib")


LIBRARY_FOLDERS = _library_folders()


def find_library() -> str:
    """libmemusage.so: where the ``memusage`` script on PATH says, else in ``LIBRARY_FOLDERS``."""
    script = shutil.which("memusage")
    if script:
        found = _library_in_script(Path(script))
        if found:
            return found
    for folder in LIBRARY_FOLDERS:
        candidate = Path(folder) / LIBRARY
        if candidate.is_file():
            return str(candidate)
    raise ToolError(f"glibc's {LIBRARY} was not found", hint=INSTALL_HINT)


def _library_in_script(script: Path) -> str | None:
    try:
        with script.open(encoding="utf-8", errors="replace") as handle:
            for _, line in zip(range(100), handle, strict=False):
                match = re.match(r"""\s*memusageso=['"]?([^'"\s]+)""", line)
                if match and Path(match[1]).is_file():
                    return match[1]
    except OSError:
        return None
    return None


# ``MEMUSAGE_*`` variables of libmemusage can be given as the suite's ``tool_args``, e.g.
# ``["MEMUSAGE_PROG_NAME=mytests"]`` to profile only the processes of that program name.
def _memusage_variables(extra_args: Sequence[str]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for argument in extra_args:
        match = _MEMUSAGE_VARIABLE.fullmatch(argument.strip())
        if not match:
            raise ConfigError(f"tool_args for memusage are MEMUSAGE_* variables, and {argument!r} is not one",
                              hint="write each as NAME=value, e.g. \"MEMUSAGE_PROG_NAME=mytests\"")
        variables[match[1]] = match[2]
    return variables


# libmemusage counts every malloc, calloc, realloc and free of a process and prints a summary to that
# process's standard error when it exits (an ``exit()``, not ``_exit()``, a crash or a kill). It has no
# option to write the summary anywhere else, so ``launch`` runs the command under a small wrapper,
# ``_stderr_by_pid.py``, that preloads the library into the command (not into itself) and splits the
# command's standard error by writing process (``SO_PASSCRED``) into ``<logdir>/memusage.<pid>.stderr``,
# while still copying it to the suite's own standard error. Each file holds that process's whole
# standard error; the summary is found in it, its ANSI colour codes stripped (libmemusage writes them
# even into files).
class MemusageTool:
    name = "memusage"
    metrics: frozenset[MetricName] = frozenset({"heap_peak_bytes", "heap_total_bytes", "alloc_calls"})
    memory_appetite = Appetite(multiple=1.0)

    def version(self) -> str:
        find_library()
        libc = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else None
        return f"libmemusage ({libc or 'glibc'})"

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        variables = _memusage_variables(options.extra_args)
        argv = [sys.executable, "-I", "-S", str(_WRAPPER), str(logdir), PREFIX,
                "--preload", find_library(), "--", *command]
        return Launch(argv=argv, env=tool_env(options, **variables))

    def collect(self, logdir: Path, outcome: Outcome,
                options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        records: list[ProcessRecord] = []
        outputs = files_by_pid(logdir, PREFIX, "stderr")
        for pid in sorted(outputs):
            records += _records(outputs[pid], pid)
        if not records:
            records.append(incomplete(
                "libmemusage printed no summary: no process of the command ended through exit() with "
                "its standard error reaching memgate (a static or setuid program, a crash, _exit(), "
                "or a harness that captures its tests' output?)",
                log_files=[outputs[pid] for pid in sorted(outputs)]))
        return records

    def parse(self, paths: Sequence[Path], options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        records: list[ProcessRecord] = []
        for path in paths:
            found = _records(path, pid_in_name(path))
            if not found:
                raise ParseError("no memusage summary in this file (\"Memory usage summary: ...\")",
                                 path=path, hint="give the standard error of a program run under memusage")
            records += found
        return records


MEMUSAGE = MemusageTool()
