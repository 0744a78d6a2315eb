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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from memgate.errors import ConfigError, ParseError, ToolError, UsageError
from memgate.fingerprint import NO_WRAPPERS, AllocWrappers, is_runtime_frame
from memgate.metrics import MetricName
from memgate.proc import Outcome
from memgate.records import Frame, HeapSite, ProcessRecord, TestFigures
from memgate.sites import TOP_FRAMES
from memgate.testnames import TEST_BODY, gtest_test_name
from memgate.tools._heapsites import HeapStack, heap_sites
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
# Frames of a stack read at most, from the allocation outwards: a site is made of the first frames of the
# project's code, near the top, and a recursion thousands deep would only cost time.
_STACK_FRAMES_READ = 128


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
    tests: TestFigures = field(default_factory=dict)  # per GoogleTest test (``_TestTally``)
    heap_sites: tuple[HeapSite, ...] = ()

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

    def ip(self, fields: list[int]) -> None:
        """``i IP MODULE [FUNCTION FILE LINE]...``: the function of the frame and of its inlined ones."""
        test = 0
        if self._string_test:
            for function in fields[2::3]:
                test = self._string_test.get(function, 0)
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
    """Replays a trace's allocation events, tracking its stacks: to know the pool, and to sum what each
    allocation stack allocated (``heap_sites``)."""

    def __init__(self, path: Path, wrappers: AllocWrappers = NO_WRAPPERS) -> None:
        self.path = path
        self.wrappers = wrappers
        self.command: str | None = None
        self.version_seen = False
        self.trailer_seen = False
        self.strings: list[str] = [""]  # string index -> text (0: none)
        self.special_strings: dict[int, str] = {}  # string index -> "stdcxx" | "loader"
        # instruction pointer index - 1 -> its module string index, and its frame's function, file
        # (string indexes) and line; frames inlined at it are in ip_inlined. Not its address: heaptrack
        # writes run-time addresses, which address-space randomisation moves with every run, and the
        # trace has no module base to make them offsets (a frame without a name is its module's).
        self.ip_module = array("q")
        self.ip_function = array("q")
        self.ip_file = array("q")
        self.ip_line = array("q")
        self.ip_inlined: dict[int, tuple[int, ...]] = {}  # ip index -> (function, file, line) * n
        # ip index -> its frames, and how many of them are the project's code, once asked for
        self.ip_frames: dict[int, tuple[tuple[Frame, ...], int]] = {}
        self.trace_ip = array("q")  # trace index - 1 -> instruction pointer index
        self.trace_parent = array("q")  # trace index - 1 -> parent trace index (0: root)
        self.kind_size = array("q")  # allocation kind -> block size
        self.kind_trace = array("q")  # allocation kind -> its stack (trace index)
        self.kind_live = array("q")  # allocation kind -> blocks of it allocated and not yet freed
        self.kind_calls = array("q")  # allocation kind -> blocks of it allocated
        # What each kind held when the heap last reached a new peak, kept lazily: a kind's first change
        # after a peak saves its count (kind_at_peak) and stamps it with the peak's number.
        self.kind_at_peak = array("q")
        self.kind_stamp = array("q")
        self.peaks = 0  # how many times the heap reached a new peak
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
            fields = [int(field, 16) for field in rest.split()]
            self.tests.ip(fields)
            self._instruction_pointer(fields)
        elif tag == "t":
            ip, parent = rest.split()[:2]
            self._trace(int(ip, 16), int(parent, 16))
            self.tests.trace(self.trace_ip[-1], self.trace_parent[-1])
        elif tag == "v":
            self.version_seen = True
        elif tag == "X":
            self.command = rest
        elif tag == "#" and rest.startswith("ips:"):
            self.trailer_seen = True

    def _string(self, rest: str) -> None:
        _length, _, text = rest.partition(" ")
        self.strings.append(text)
        self.tests.string(len(self.strings) - 1, text)
        if _LIBSTDCXX.search(text):
            self.special_strings[len(self.strings) - 1] = "stdcxx"
        elif _LOADER.search(text):
            self.special_strings[len(self.strings) - 1] = "loader"

    def _instruction_pointer(self, fields: list[int]) -> None:
        """``i ADDRESS MODULE [FUNCTION [FILE LINE [FUNCTION FILE LINE]...]]``: the frames at the
        address, innermost first (see ``_frames``)."""
        if not fields or len(fields) == 4 or len(fields) > 5 and (len(fields) - 5) % 3:
            raise ValueError("an instruction pointer line of a length heaptrack does not write")
        fields += [0] * (5 - len(fields))
        self.ip_module.append(fields[1])
        self.ip_function.append(fields[2])
        self.ip_file.append(fields[3])
        self.ip_line.append(fields[4])
        if len(fields) > 5:
            self.ip_inlined[len(self.ip_module)] = tuple(fields[5:])

    def _trace(self, ip: int, parent: int) -> None:
        # heaptrack writes an instruction pointer and a parent before the stack nodes that use them:
        # checked, so that walking a stack always ends
        if not 0 <= ip <= len(self.ip_module) or not 0 <= parent <= len(self.trace_ip):
            raise ValueError("a stack node of an undefined instruction pointer or parent")
        self.trace_ip.append(ip)
        self.trace_parent.append(parent)

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
        if size < 0 or not 0 <= trace <= len(self.trace_ip):
            raise ValueError("a negative block size, or an undefined stack")
        if self.pool_kind < 0 and self._is_pool_stack(trace):
            self.pool_kind = len(self.kind_size)
        self.kind_size.append(size)
        self.kind_trace.append(trace)
        self.kind_live.append(0)
        self.tests.kind(trace)
        self.kind_calls.append(0)
        self.kind_at_peak.append(0)
        self.kind_stamp.append(-1)

    def _size(self, kind: int) -> int:
        if not 0 <= kind < len(self.kind_size):
            raise ParseError(f"an allocation of undefined kind {kind}", path=self.path, hint=_HINT_NOT_TRACE)
        return self.kind_size[kind]

    def _allocate(self, kind: int) -> None:
        size = self._size(kind)
        if kind == self.pool_kind and not self.pool_bytes:
            self.pool_live, self.pool_bytes = True, size
            return
        if self.kind_stamp[kind] != self.peaks:  # its first change since the last peak (see __init__)
            self.kind_at_peak[kind], self.kind_stamp[kind] = self.kind_live[kind], self.peaks
        self.kind_live[kind] += 1
        self.tests.allocate(kind, size)
        self.kind_calls[kind] += 1
        self.calls += 1
        self.total += size
        self.live += size
        if self.live > self.peak:
            self.peak = self.live
            self.peaks += 1

    def _free(self, kind: int) -> None:
        size = self._size(kind)
        if kind == self.pool_kind and self.pool_live:
            self.pool_live = False
            return
        if not self.kind_live[kind]:  # heaptrack writes a free only for a block it saw allocated
            raise ParseError(f"a free of a block of kind {kind} when none is allocated", path=self.path,
                             hint=_HINT_NOT_TRACE)
        if self.kind_stamp[kind] != self.peaks:
            self.kind_at_peak[kind], self.kind_stamp[kind] = self.kind_live[kind], self.peaks
        self.kind_live[kind] -= 1
        self.tests.free(kind, size)
        self.live -= size

    def _heap_sites(self) -> tuple[HeapSite, ...]:
        """Per allocation stack: bytes and blocks allocated, and bytes live at the heap's peak (its
        first moment, as DHAT's t-gmax); summed by site with the project's wrappers skipped."""
        by_trace: dict[int, list[int]] = {}
        for kind, calls in enumerate(self.kind_calls):
            if not calls:
                continue
            at_peak = self.kind_live[kind] if self.kind_stamp[kind] != self.peaks else self.kind_at_peak[kind]
            size = self.kind_size[kind]
            figures = by_trace.setdefault(self.kind_trace[kind], [0, 0, 0])
            figures[0] += calls * size
            figures[1] += calls
            figures[2] += at_peak * size
        return heap_sites((HeapStack(self._stack(trace), total, blocks, peak)
                           for trace, (total, blocks, peak) in by_trace.items()), self.wrappers)

    def _stack(self, trace: int) -> tuple[Frame, ...]:
        """A stack node's frames, innermost first (the caller of the allocation function on top), read
        outwards until they hold the ``TOP_FRAMES`` frames of the project's code a site is named by and
        shows: the site is then that of the whole stack, and a deep stack (a Python interpreter's are
        50 frames) costs no more than a shallow one."""
        frames: list[Frame] = []
        own = 0
        node = trace
        while node > 0 and own < TOP_FRAMES and len(frames) < _STACK_FRAMES_READ:
            ip = self.trace_ip[node - 1]
            if ip:
                at_ip, own_at_ip = self._frames(ip)
                frames.extend(at_ip)
                own += own_at_ip
            node = self.trace_parent[node - 1]
        return tuple(frames[:_STACK_FRAMES_READ])

    def _frames(self, ip: int) -> tuple[tuple[Frame, ...], int]:
        """The frames at an instruction pointer, innermost first as heaptrack writes them: the function
        inlined where the address is, then those it was inlined into, the last one the function whose
        code the address is in; and how many are the project's code (not the runtime's or a wrapper).
        Made once per address: stacks share most of theirs."""
        known = self.ip_frames.get(ip)
        if known is not None:
            return known
        module = self._text(self.ip_module[ip - 1])
        named = (self.ip_function[ip - 1], self.ip_file[ip - 1], self.ip_line[ip - 1],
                 *self.ip_inlined.get(ip, ()))
        frames = tuple(Frame(function=self._text(named[at]), file=self._text(named[at + 1]),
                             line=named[at + 2] or None, object=module) for at in range(0, len(named), 3))
        own = sum(not is_runtime_frame(frame, self.wrappers) for frame in frames)
        self.ip_frames[ip] = frames, own
        return frames, own

    def _text(self, index: int) -> str | None:
        if not 0 <= index < len(self.strings):
            raise ParseError(f"a frame names string {index}, which the trace does not define", path=self.path,
                             hint=_HINT_NOT_TRACE)
        return self.strings[index] or None

    def result(self) -> HeaptrackTrace:
        if not self.version_seen:
            raise _Truncated("the trace is empty: heaptrack lost it (the process crashed or was "
                             "killed before heaptrack wrote its buffered data)")
        if not self.trailer_seen:
            raise _Truncated("the trace ends early: heaptrack's interpreter was stopped while writing")
        return HeaptrackTrace(command=self.command, heap_peak_bytes=self.peak, heap_total_bytes=self.total,
                              alloc_calls=self.calls, heap_end_bytes=self.live, pool_bytes=self.pool_bytes,
                              tests=self.tests.figures(), heap_sites=self._heap_sites())


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
# lines name strings, instruction pointers (``i ADDRESS MODULE FUNCTION FILE LINE``, then the frames
# inlined there) and stack nodes (``t IP PARENT``). Replaying the ``+``/``-`` lines gives exact figures
# (checked against ``heaptrack_print``'s rounded ones), and per allocation stack the bytes and blocks
# it allocated and the bytes it held at the heap's peak: ``heap_sites``, fingerprinted as DHAT's (the
# same figures as DHAT's on the test programs; heaptrack's stacks start at malloc's caller).
def read_trace(path: Path, wrappers: AllocWrappers = NO_WRAPPERS) -> HeaptrackTrace:
    """Replay a heaptrack trace (its stacks made sites with the allocator ``wrappers`` skipped).
    ``ParseError`` for a file that is not one; ``_Truncated`` (caught by the callers) for a trace cut
    short or lost."""
    if not path.is_file():
        raise ParseError("no heaptrack trace here", path=path, hint="check the path")
    replay = _Replay(path, wrappers)
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
# instruction pointers (compact integer arrays) and its strings (the names of its functions, files and
# modules), not with its events. Frames are made only for the stacks that allocated, once per address.
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
#
# ``heap_sites``: the stacks that allocated most bytes, each with its blocks and its bytes live at the
# peak; ``wrappers``, the project's allocators, are skipped like ``malloc`` when they are named.
def trace_record(path: Path, wrappers: AllocWrappers = NO_WRAPPERS) -> ProcessRecord:
    try:
        trace = read_trace(path, wrappers)
    except _Truncated as error:
        return incomplete(f"the heaptrack trace is unusable: {error}", log_files=[path])
    return ProcessRecord(command=trace.command, log_files=(str(path),), metrics=trace.metrics(),
                         leak_check=False, tests=trace.tests, heap_sites=trace.heap_sites)


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
                return [_with_signal(trace_record(path, options.alloc_wrappers), outcome)]
        return [incomplete(f"heaptrack wrote no trace in {logdir}: it did not start the command (a "
                           "missing program? see the suite's output)")]

    def parse(self, paths: Sequence[Path], options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        return [trace_record(path, options.alloc_wrappers) for path in paths]


HEAPTRACK = HeaptrackTool()
