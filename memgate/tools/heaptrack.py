"""heaptrack: exact heap peak, totals, calls and live-at-exit bytes, read from its trace."""

from __future__ import annotations

import gzip
import re
import shutil
import signal
import subprocess
import zlib
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from memgate.errors import ConfigError, ParseError, ToolError, UsageError
from memgate.metrics import MetricName
from memgate.proc import Outcome
from memgate.records import ProcessRecord, TestFigures
from memgate.testnames import TEST_BODY, gtest_test_name
from memgate.tools._outputs import incomplete
from memgate.tools._programs import program_version, require_program, tool_env
from memgate.tools.base import DEFAULT_OPTIONS, Appetite, Launch, ToolOptions

INSTALL_HINT = "install heaptrack: apt-get install heaptrack (dnf install heaptrack)"
ZSTD_HINT = "install zstd to read heaptrack's .zst traces: apt-get install zstd (dnf install zstd)"
OUTPUT_STEM = "heaptrack"
OUTPUT_SUFFIXES = (".zst", ".gz")
_HINT_NOT_TRACE = "give the heaptrack.*.zst or .gz file heaptrack wrote (not heaptrack_print's output)"
_MAX_LINE = 1 << 16
# heaptrack options that would move, change or replace the trace memgate reads
_OWNED_OPTIONS = frozenset({"-o", "--output", "--output-file", "-r", "--raw", "-p", "--pid", "-a",
                            "--analyze", "-d", "--debug"})
_LIBSTDCXX = re.compile(r"(^|/)libstdc\+\+[^/]*$")
_LOADER = re.compile(r"(^|/)ld-[^/]*\.so[^/]*$|(^|/)ld64\.so[^/]*$")


class _Truncated(Exception):
    pass


@dataclass(frozen=True)
class HeaptrackTrace:
    """Figures of one trace, with heaptrack's own libstdc++ pool left out."""

    command: str | None
    heap_peak_bytes: int
    heap_total_bytes: int
    alloc_calls: int
    heap_end_bytes: int
    pool_bytes: int  # the libstdc++ emergency pool left out (0 if none was seen)
    tests: TestFigures  # per GoogleTest test (``_TestTally``)

    def metrics(self) -> dict[MetricName, int]:
        return {"heap_peak_bytes": self.heap_peak_bytes, "heap_total_bytes": self.heap_total_bytes,
                "alloc_calls": self.alloc_calls, "heap_end_bytes": self.heap_end_bytes}


# Normalisation: heaptrack's preload library links libstdc++, whose static initialiser allocates its
# emergency exception-handling pool (72,704 bytes with gcc 12's libstdc++) in every traced process. That
# allocation is recognised by its stack (its only frame outside the dynamic loader is in libstdc++) and
# left out of every figure, with its free; a C program then reads exactly as under DHAT and memusage.
# A C++ program's own copy of libstdc++ has the same pool, and it is left out too, so heaptrack reads
# one allocation and 72,704 bytes below DHAT and memusage on C++ programs, consistently.
# Per GoogleTest test: the allocations whose stack holds a test's ``TestBody`` frame (the innermost
# one) are that test's: ``heap_total_bytes``, ``alloc_calls`` and ``heap_end_bytes`` (its bytes still
# live when the trace ends: heaptrack's view of the test's leaks). A peak has no test, and is left out.
class _TestTally:
    """Which test each stack node of a trace belongs to, and each test's figures. Stack nodes are
    defined after their parent, so a node's test is known at once: its own frame's, else its
    parent's (the innermost ``TestBody`` wins)."""

    def __init__(self) -> None:
        self.names: list[str] = []  # test number - 1 -> Suite.Name
        self._numbers: dict[str, int] = {}
        self._string_test: dict[int, int] = {}  # string index -> test number, for TestBody functions
        self.ip_test = array("i")  # instruction pointer index - 1 -> test number (0: none)
        self.trace_test = array("i")  # trace index - 1 -> test number (0: none)
        self.kind_test = array("i")  # allocation kind -> test number (0: none)
        self.total: dict[int, int] = {}
        self.calls: dict[int, int] = {}
        self.live: dict[int, int] = {}

    def string(self, index: int, text: str) -> None:
        if TEST_BODY in text:
            name = gtest_test_name(text)
            if name is not None:
                number = self._numbers.get(name)
                if number is None:
                    self.names.append(name)
                    number = self._numbers[name] = len(self.names)
                self._string_test[index] = number

    def ip(self, fields: list[str]) -> None:
        """``i IP MODULE [FUNCTION FILE LINE]...``: the function of the frame and of its inlined ones."""
        test = 0
        if self._string_test:
            for function in fields[2::3]:
                test = self._string_test.get(int(function, 16), 0)
                if test:
                    break
        self.ip_test.append(test)

    def trace(self, ip: int, parent: int) -> None:
        own = self.ip_test[ip - 1] if 0 < ip <= len(self.ip_test) else 0
        inherited = self.trace_test[parent - 1] if 0 < parent <= len(self.trace_test) else 0
        self.trace_test.append(own or inherited)

    def kind(self, trace: int) -> None:
        self.kind_test.append(self.trace_test[trace - 1] if 0 < trace <= len(self.trace_test) else 0)

    def allocate(self, kind: int, size: int) -> None:
        test = self.kind_test[kind]
        if test:
            self.total[test] = self.total.get(test, 0) + size
            self.calls[test] = self.calls.get(test, 0) + 1
            self.live[test] = self.live.get(test, 0) + size

    def free(self, kind: int, size: int) -> None:
        test = self.kind_test[kind]
        if test:
            self.live[test] -= size

    def figures(self) -> TestFigures:
        return {self.names[test - 1]: {"heap_total_bytes": self.total[test], "alloc_calls": self.calls[test],
                                       "heap_end_bytes": self.live[test]}
                for test in sorted(self.calls, key=lambda test: self.names[test - 1])}


class _Replay:
    """Replays a trace's allocation events, tracking just enough of its stacks to know the pool."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.command: str | None = None
        self.version_seen = False
        self.trailer_seen = False
        self.strings = 0
        self.special_strings: dict[int, str] = {}  # string index -> "stdcxx" | "loader"
        self.ip_module = array("q")  # instruction pointer index - 1 -> module string index
        self.trace_ip = array("q")  # trace index - 1 -> instruction pointer index
        self.trace_parent = array("q")  # trace index - 1 -> parent trace index (0: root)
        self.kind_size = array("q")  # allocation kind -> block size
        self.kind_live = array("q")  # allocation kind -> blocks of it allocated and not yet freed
        self.pool_kind = -1
        self.pool_live = False
        self.pool_bytes = 0
        self.live = self.peak = self.total = self.calls = 0
        self.tests = _TestTally()

    def line(self, line: str) -> None:
        tag, _, rest = line.partition(" ")
        if tag == "+":
            self._allocate(int(rest, 16))
        elif tag == "-":
            self._free(int(rest, 16))
        elif tag == "a":
            size, trace = rest.split()[:2]
            self._kind(int(size, 16), int(trace, 16))
        elif tag == "s":
            self._string(rest)
        elif tag == "i":
            fields = rest.split()
            self.ip_module.append(int(fields[1], 16) if len(fields) > 1 else 0)
            self.tests.ip(fields)
        elif tag == "t":
            ip, parent = rest.split()[:2]
            self.trace_ip.append(int(ip, 16))
            self.trace_parent.append(int(parent, 16))
            self.tests.trace(self.trace_ip[-1], self.trace_parent[-1])
        elif tag == "v":
            self.version_seen = True
        elif tag == "X":
            self.command = rest
        elif tag == "#" and rest.startswith("ips:"):
            self.trailer_seen = True

    def _string(self, rest: str) -> None:
        self.strings += 1
        _length, _, text = rest.partition(" ")
        self.tests.string(self.strings, text)
        if _LIBSTDCXX.search(text):
            self.special_strings[self.strings] = "stdcxx"
        elif _LOADER.search(text):
            self.special_strings[self.strings] = "loader"

    def _module_kind(self, ip: int) -> str | None:
        if not 0 < ip <= len(self.ip_module):
            return None
        return self.special_strings.get(self.ip_module[ip - 1])

    def _is_pool_stack(self, trace: int) -> bool:
        """libstdc++'s static initialiser: a libstdc++ frame on top, the dynamic loader below."""
        if not 0 < trace <= len(self.trace_ip) or self._module_kind(self.trace_ip[trace - 1]) != "stdcxx":
            return False
        node, depth = self.trace_parent[trace - 1], 0
        while node > 0 and depth < 64:
            if node > len(self.trace_ip) or self._module_kind(self.trace_ip[node - 1]) != "loader":
                return False
            node, depth = self.trace_parent[node - 1], depth + 1
        return depth > 0

    def _kind(self, size: int, trace: int) -> None:
        if size < 0:
            raise ValueError("a negative block size")
        if self.pool_kind < 0 and self._is_pool_stack(trace):
            self.pool_kind = len(self.kind_size)
        self.kind_size.append(size)
        self.kind_live.append(0)
        self.tests.kind(trace)

    def _size(self, kind: int) -> int:
        if not 0 <= kind < len(self.kind_size):
            raise ParseError(f"an allocation of undefined kind {kind}", path=self.path, hint=_HINT_NOT_TRACE)
        return self.kind_size[kind]

    def _allocate(self, kind: int) -> None:
        size = self._size(kind)
        if kind == self.pool_kind and not self.pool_bytes:
            self.pool_live, self.pool_bytes = True, size
            return
        self.kind_live[kind] += 1
        self.tests.allocate(kind, size)
        self.calls += 1
        self.total += size
        self.live += size
        self.peak = max(self.peak, self.live)

    def _free(self, kind: int) -> None:
        size = self._size(kind)
        if kind == self.pool_kind and self.pool_live:
            self.pool_live = False
            return
        if not self.kind_live[kind]:  # heaptrack writes a free only for a block it saw allocated
            raise ParseError(f"a free of a block of kind {kind} when none is allocated", path=self.path,
                             hint=_HINT_NOT_TRACE)
        self.kind_live[kind] -= 1
        self.tests.free(kind, size)
        self.live -= size

    def result(self) -> HeaptrackTrace:
        if not self.version_seen:
            raise _Truncated("the trace is empty: heaptrack lost it (the process crashed or was "
                             "killed before heaptrack wrote its buffered data)")
        if not self.trailer_seen:
            raise _Truncated("the trace ends early: heaptrack's interpreter was stopped while writing")
        return HeaptrackTrace(command=self.command, heap_peak_bytes=self.peak, heap_total_bytes=self.total,
                              alloc_calls=self.calls, heap_end_bytes=self.live, pool_bytes=self.pool_bytes,
                              tests=self.tests.figures())


@contextmanager
def _decompressed(path: Path) -> Iterator[IO[str]]:
    """The trace as text: ``zstd -dc`` for .zst, gzip for .gz, the file itself otherwise."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield handle
        return
    if path.suffix != ".zst":
        with path.open(encoding="utf-8", errors="replace") as handle:
            yield handle
        return
    zstd = shutil.which("zstd")
    if zstd is None:
        raise ToolError("cannot read a .zst heaptrack trace: the zstd program is missing", path=path,
                        hint=ZSTD_HINT)
    process = subprocess.Popen([zstd, "-dcq", "--", str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace")
    assert process.stdout is not None and process.stderr is not None
    try:
        yield process.stdout
        # A caller that stopped early must not leave zstd blocked on a full pipe.
        process.stdout.close()
        error = process.stderr.read().strip()
        if process.wait() != 0:
            message = error.splitlines()[-1] if error else "zstd failed"
            if "unsupported format" in message or "unknown header" in message:
                raise ParseError(f"not a zstd-compressed heaptrack trace ({message})", path=path,
                                 hint=_HINT_NOT_TRACE)
            raise _Truncated(f"zstd cannot decompress it ({message})")
    finally:  # also when the reader gave up on the trace (ParseError): no pipe left open
        process.stdout.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


# ``launch`` runs ``heaptrack -o <logdir>/heaptrack -- COMMAND``; heaptrack writes
# ``<logdir>/heaptrack.zst`` (``.gz`` when the ``zstd`` program is missing). ``heaptrack_print``
# rounds its figures ("5.32M", decimal units), so memgate reads the trace itself: after decompression
# (the ``zstd`` program, or Python's gzip) it is text, one event a line: ``a SIZE TRACE`` defines an
# allocation kind, ``+ N`` allocates one block of kind N, ``- N`` frees one; ``s``, ``i`` and ``t``
# lines name strings, instruction pointers (with their module) and stack nodes. Replaying the
# ``+``/``-`` lines gives exact figures (checked against ``heaptrack_print``'s rounded ones).
def read_trace(path: Path) -> HeaptrackTrace:
    """Replay a heaptrack trace. ``ParseError`` for a file that is not one; ``_Truncated`` (caught by
    the callers) for a trace cut short or lost."""
    if not path.is_file():
        raise ParseError("no heaptrack trace here", path=path, hint="check the path")
    replay = _Replay(path)
    try:
        with _decompressed(path) as handle:
            _replay_lines(handle, replay)
    except (gzip.BadGzipFile, zlib.error) as error:
        raise ParseError(f"not a gzip-compressed heaptrack trace, or a corrupt one ({error})", path=path,
                         hint=_HINT_NOT_TRACE) from None
    except EOFError as error:
        raise _Truncated(f"the compressed file ends early ({error})") from None
    except OSError as error:
        raise ParseError(f"cannot read the heaptrack trace: {error.strerror or error}", path=path,
                         hint="check the path and its permissions") from None
    return replay.result()


# The trace is streamed line by line; memory grows with its distinct allocation kinds, stack nodes and
# instruction pointers (compact integer arrays), not with its events.
def _replay_lines(handle: IO[str], replay: _Replay) -> None:
    first = True
    while True:
        line = handle.readline(_MAX_LINE)
        if not line:
            return
        line = line.rstrip("\n")
        if first and line and not line.startswith(("v ", "#")):
            raise ParseError("not a heaptrack trace: it does not start with a version line",
                             path=replay.path, hint=_HINT_NOT_TRACE)
        first = first and not line
        try:
            replay.line(line)
        except (ValueError, IndexError, OverflowError):  # OverflowError: beyond a 64-bit array slot
            raise ParseError(f"a line heaptrack does not write: {line[:80]!r}", path=replay.path,
                             hint=_HINT_NOT_TRACE) from None


# Metrics, for the traced process:
#
# - ``heap_peak_bytes``: the largest sum of live block sizes.
# - ``heap_total_bytes``: bytes of every block allocated; a realloc counts its whole new size.
# - ``alloc_calls``: blocks allocated (malloc, calloc, realloc, C++ new, aligned allocations).
# - ``heap_end_bytes``: bytes still live when the trace ends (heaptrack's "leaked" figure).
#   heaptrack 1.4 does not see the free that ``realloc(p, 0)`` does: such blocks stay "live".
def trace_record(path: Path) -> ProcessRecord:
    try:
        trace = read_trace(path)
    except _Truncated as error:
        return incomplete(f"the heaptrack trace is unusable: {error}", log_files=[path])
    return ProcessRecord(command=trace.command, log_files=(str(path),), metrics=trace.metrics(),
                         leak_check=False, tests=trace.tests)


def _with_signal(record: ProcessRecord, outcome: Outcome) -> ProcessRecord:
    """heaptrack's launcher (a shell script) turns a command killed by signal N into exit status
    128 + N. With the trace lost too, that status is the signal: the suite crashed, not failed."""
    code = outcome.exit_code
    if record.complete or code is None or not 128 < code < 128 + signal.NSIG:
        return record
    try:
        name = signal.Signals(code - 128).name
    except ValueError:
        return record
    return record.model_copy(update={"fatal_signal": name})


# Limits of heaptrack itself:
# - only the process it starts is traced: neither forked nor exec'd children are (seen with both), so
#   a suite that is a shell script or a test runner is measured as that script or runner alone;
#   prefer dhat, massif or memusage for multi-process suites.
# - a process that crashes or is killed loses its trace (heaptrack buffers it): incomplete record.
# - heaptrack's launcher is a shell script: a command killed by a signal comes back as exit status
#   128 + signal, and it prints "heaptrack output will be written to ..." on standard output.
# - heaptrack 1.4's launcher splits output paths at white space (``-o "/a b/heaptrack"`` wrote
#   ``/a.zst``): such a log folder is refused. Its ``%p`` in ``-o`` is not replaced either (a file
#   named ``heaptrack.%p.zst``), so memgate names the one trace ``heaptrack.zst``.
class HeaptrackTool:
    name = "heaptrack"
    metrics: frozenset[MetricName] = frozenset(
        {"heap_peak_bytes", "heap_total_bytes", "alloc_calls", "heap_end_bytes"})
    # the trace buffers and heaptrack_interpret
    memory_appetite = Appetite(multiple=1.0, fixed_bytes=100 * 1024**2)

    def version(self) -> str:
        return program_version(["heaptrack", "--version"], INSTALL_HINT)

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        require_program("heaptrack", INSTALL_HINT)
        if re.search(r"\s", str(logdir)):
            raise UsageError(f"heaptrack cannot write to a folder whose path has white space: {logdir}",
                             hint="set artifacts_dir to a path without spaces")
        for argument in options.extra_args:
            if argument.split("=", 1)[0] in _OWNED_OPTIONS:
                raise ConfigError(f"tool_args for heaptrack cannot contain {argument!r}: memgate runs the "
                                  "command and reads the trace itself",
                                  hint="remove it from the suite's tool_args")
        argv = ["heaptrack", *options.extra_args, "-o", str(logdir / OUTPUT_STEM), "--", *command]
        return Launch(argv=argv, env=tool_env(options))

    def collect(self, logdir: Path, outcome: Outcome,
                options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        for suffix in OUTPUT_SUFFIXES:
            path = logdir / f"{OUTPUT_STEM}{suffix}"
            if path.is_file():
                return [_with_signal(trace_record(path), outcome)]
        return [incomplete(f"heaptrack wrote no trace in {logdir}: it did not start the command (a "
                           "missing program? see the suite's output)")]

    def parse(self, paths: Sequence[Path], options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        return [trace_record(path) for path in paths]


HEAPTRACK = HeaptrackTool()
