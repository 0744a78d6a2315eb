"""DHAT (``valgrind --tool=dhat``): exact heap totals, peak and live-at-exit from its JSON profile."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from memgate.errors import ParseError
from memgate.fingerprint import NO_WRAPPERS, AllocWrappers
from memgate.metrics import MetricName
from memgate.proc import Outcome
from memgate.records import Frame, HeapSite, ProcessRecord
from memgate.tools._heapsites import HeapStack, heap_sites
from memgate.tools._outputs import incomplete
from memgate.tools._valgrind import (
    collect_valgrind_outputs,
    frame_of_text,
    read_valgrind_log,
    valgrind_launch,
    valgrind_version,
)
from memgate.tools.base import DEFAULT_OPTIONS, Appetite, Launch, ToolOptions
from memgate.units import MAX_COUNT_DIGITS

SUPPORTED_FILE_VERSIONS = frozenset({2})
_READ_CHARS = 1 << 16
_MAX_VALUE_CHARS = 1 << 24  # no DHAT value (a program point, a frame) comes near 16 MiB
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_WORD = re.compile(r"[\w.-]{1,40}")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape reads it
_HINT_NOT_DHAT = "give the JSON file DHAT wrote (--dhat-out-file), e.g. dhat.out.1234"
# The first number longer than a count (``count_of``): checked on the values read, since a parse_int
# hook that checks every number's text makes the whole read nearly twice as slow.
_COUNT_LIMIT = 10**MAX_COUNT_DIGITS

# program-point key -> the metric its sum gives
_SUMMED: dict[str, MetricName] = {
    "tb": "heap_total_bytes",
    "tbk": "alloc_calls",
    "gb": "heap_peak_bytes",
    "eb": "heap_end_bytes",
}


class _Truncated(Exception):
    """The document ended before its last closing bracket."""


class _Malformed(Exception):
    """Not JSON as DHAT writes it."""


# The profile is read as a stream: top-level fields one by one and the program points one object at a
# time, never the whole document (a profile grows with the number of distinct allocation stacks:
# 7 MB for a C++ compiler run of 2 million blocks, 25,605 program points; ``json.load`` of it takes
# 60 MB of memory, the stream about the size of one read).
class _JsonStream:
    """Reads one JSON value at a time from a text file, keeping at most one value and one read."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._buffer = ""
        self._position = 0
        self._eof = False
        self._decoder = json.JSONDecoder()

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._handle.read(_READ_CHARS)
        if not chunk:
            self._eof = True
            return False
        self._buffer = self._buffer[self._position:] + chunk
        self._position = 0
        if len(self._buffer) > _MAX_VALUE_CHARS:
            raise _Malformed(f"a value longer than {_MAX_VALUE_CHARS:,} characters")
        return True

    def peek(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            blank = _WHITESPACE.match(self._buffer, self._position)
            assert blank is not None  # "*" matches the empty string
            self._position = blank.end()
            if self._position < len(self._buffer):
                return self._buffer[self._position]
            if not self._fill():
                return ""

    def take(self, expected: str) -> None:
        found = self.peek()
        if found == "":
            raise _Truncated(f"the file ends where {expected!r} was expected")
        if found != expected:
            raise _Malformed(f"{found!r} where {expected!r} was expected")
        self._position += 1

    def value(self) -> object:
        if self.peek() == "":
            raise _Truncated("the file ends where a value was expected")
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._position)
            except json.JSONDecodeError as error:
                if self._fill():
                    continue
                raise (_Truncated if self._eof else _Malformed)(str(error)) from None
            except ValueError:  # int() refuses a number of thousands of digits
                raise _Malformed(f"a number of thousands of digits (a count has at most {MAX_COUNT_DIGITS})"
                                 ) from None
            # A number can end where the read ended ("12" of "1234"): read on before trusting it.
            if end == len(self._buffer) and self._fill():
                continue
            self._position = end
            return value

    def array(self) -> Iterator[object]:
        self.take("[")
        if self.peek() == "]":
            self._position += 1
            return
        while True:
            yield self.value()
            if self.peek() == ",":
                self._position += 1
                continue
            self.take("]")
            return

    def object_keys(self) -> Iterator[str]:
        """The keys of the object that starts here; the caller reads each key's value."""
        self.take("{")
        if self.peek() == "}":
            self._position += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise _Malformed(f"an object key that is not a string: {key!r}")
            self.take(":")
            yield key
            if self.peek() == ",":
                self._position += 1
                continue
            self.take("}")
            return


@dataclass(frozen=True)
class DhatProfile:
    """What memgate reads from one DHAT profile."""

    pid: int | None
    command: str | None
    totals: dict[MetricName, int]
    program_points: int
    heap_sites: tuple[HeapSite, ...] = ()


def read_profile(path: Path, wrappers: AllocWrappers = NO_WRAPPERS) -> DhatProfile:
    """Stream a DHAT JSON profile (its stacks made sites with the allocator ``wrappers`` skipped).
    ``ParseError`` for a file that is not one; ``_Truncated`` (caught by the callers) for one cut short."""
    try:
        # DHAT copies file and function names into its strings byte for byte: a Latin-1 source path
        # is no reason to refuse the profile (records turn such bytes into U+FFFD).
        with path.open(encoding="utf-8", errors="surrogateescape") as handle:
            return _read(_JsonStream(handle), path, wrappers)
    except _Malformed as error:
        raise ParseError(f"not a DHAT profile: {error}", path=path, hint=_HINT_NOT_DHAT) from None
    except OSError as error:
        raise ParseError(f"cannot read the DHAT profile: {error.strerror}", path=path,
                         hint="check the path and its permissions") from None


def _read(stream: _JsonStream, path: Path, wrappers: AllocWrappers) -> DhatProfile:
    first = stream.peek()
    if first not in ("{", ""):
        what = "the file is not UTF-8 text" if _UNDECODABLE.match(first) else "it is not a JSON object"
        raise ParseError(f"not a DHAT profile: {what}", path=path, hint=_HINT_NOT_DHAT)
    header: dict[str, object] = {}
    totals: dict[MetricName, int] = dict.fromkeys(_SUMMED.values(), 0)
    points: int | None = None
    stacks: list[_PointFigures] = []
    frame_table: list[object] = []
    for key in stream.object_keys():
        if key == "pps":
            # DHAT writes the header fields first: check them before summing anything.
            _check_header(header, path)
            points = 0
            for point in stream.array():
                _add_point(point, totals)
                stacks.append(_figures(point))
                points += 1
        elif key == "ftbl":
            frame_table = list(stream.array())
        else:
            header[key] = stream.value()
    if any(type(total) is not int for total in totals.values()):
        raise _Malformed("program-point figures that are not integers")
    if points is None:
        _check_header(header, path)
        raise ParseError("not a DHAT profile: it has no program points (pps)", path=path,
                         hint=_HINT_NOT_DHAT)
    pid = header.get("pid")
    if type(pid) is int and not 0 <= pid < _COUNT_LIMIT:
        raise _Malformed(f"a pid no process can have (below 0, or of more than {MAX_COUNT_DIGITS} digits)")
    command = header.get("cmd")
    return DhatProfile(pid=pid if isinstance(pid, int) else None,
                       command=command if isinstance(command, str) else None,
                       totals=totals, program_points=points,
                       heap_sites=_heap_sites(stacks, frame_table, wrappers))


# A program point's frame indexes (into "ftbl"), bytes and blocks allocated, and bytes at the peak.
_PointFigures = tuple[tuple[int, ...], int, int, int]


def _figures(point: object) -> _PointFigures:
    assert isinstance(point, dict)  # _add_point checked it
    frames = point.get("fs", [])
    if not isinstance(frames, list) or any(type(index) is not int or index < 0 for index in frames):
        raise _Malformed("a program point whose frames (fs) are not a list of frame-table indexes")
    return tuple(frames), point["tb"], point["tbk"], point["gb"]


def _heap_sites(points: list[_PointFigures], frame_table: list[object],
                wrappers: AllocWrappers) -> tuple[HeapSite, ...]:
    """The program points as allocation sites (``memgate.tools._heapsites``, as leaks are): DHAT's
    frame table holds each frame as Valgrind prints it, "0x10919E: grow (prog.c:10)"; a point lists its
    frames innermost first."""
    frames: dict[int, Frame] = {}

    def frame(index: int) -> Frame:
        if index not in frames:
            if index >= len(frame_table) or not isinstance(frame_table[index], str):
                raise _Malformed(f"a program point names frame {index}, which the frame table (ftbl) lacks")
            frames[index] = frame_of_text(str(frame_table[index]))
        return frames[index]

    return heap_sites((HeapStack(tuple(frame(index) for index in indexes), total, blocks, peak)
                       for indexes, total, blocks, peak in points), wrappers)


def _shown(value: object) -> str:
    """A value from the file in a message: a word as it is, anything else quoted (one line)."""
    text = str(value)
    return text if _WORD.fullmatch(text) else repr(text[:40])


def _check_header(header: dict[str, object], path: Path) -> None:
    version = header.get("dhatFileVersion")
    if version is None:
        raise ParseError("not a DHAT profile: no dhatFileVersion", path=path, hint=_HINT_NOT_DHAT)
    if version not in SUPPORTED_FILE_VERSIONS:
        raise ParseError(f"DHAT file version {_shown(version)} is not supported (memgate reads version 2)",
                         path=path, hint="use Valgrind 3.15 or later, or report the new version")
    if header.get("mode", "heap") != "heap":
        raise ParseError(f"DHAT ran in {_shown(header.get('mode'))} mode: its figures are not heap figures",
                         path=path, hint="remove --mode from the suite's tool_args")


def _add_point(point: object, totals: dict[MetricName, int]) -> None:
    if not isinstance(point, dict):
        raise _Malformed("a program point that is not an object")
    try:
        for key, metric in _SUMMED.items():
            value = point[key]
            if type(value) is int and not 0 <= value < _COUNT_LIMIT:  # DHAT counts bytes and blocks
                raise _Malformed("program-point figures that are not integers of 0 or more, of at most "
                                 f"{MAX_COUNT_DIGITS} digits")
            totals[metric] += value
    except (KeyError, TypeError):
        raise _Malformed(f"a program point without the integers {', '.join(_SUMMED)}") from None


# Metrics, per process, summed over DHAT's program points (the JSON has no totals of its own; the sums
# equal the "Total", "At t-gmax" and "At t-end" lines of DHAT's log, checked on a 2-million-block
# compiler run):
#
# - ``heap_total_bytes``: ``tb``, bytes of every block allocated. A growing ``realloc`` counts its
#   whole new size (memusage counts only the growth).
# - ``alloc_calls``: ``tbk``, blocks allocated: malloc, calloc, realloc (also ``realloc(NULL, n)``),
#   memalign and friends, C++ new. A ``realloc(p, 0)`` is a free and a failed call allocates nothing;
#   this matches ``memusage``'s ``alloc_calls`` on the same program.
# - ``heap_peak_bytes``: ``gb``, live bytes at t-gmax, the moment of the global peak: exact.
# - ``heap_end_bytes``: ``eb``, live bytes at exit (t-end). DHAT knows no reachability: this is not a
#   leak figure.
#
# A forked child (no exec) inherits its parent's DHAT state, so its figures include the parent's
# allocations made before the fork (its blocks and its counts); an exec'd child starts from zero.
def profile_record(path: Path, *, pid: int | None = None, log: Path | None = None,
                   wrappers: AllocWrappers = NO_WRAPPERS) -> ProcessRecord:
    """One process's record from its profile (and Valgrind log, when there is one); ``wrappers``: the
    project's allocators, skipped like ``malloc`` in its heap sites."""
    logs = [path] + ([log] if log else [])
    valgrind_log = read_valgrind_log(log) if log else None
    fatal = valgrind_log.fatal_signal if valgrind_log else None
    try:
        profile = read_profile(path, wrappers)
    except _Truncated as error:
        return incomplete(f"the DHAT profile is truncated ({error}): the process or Valgrind was "
                          "killed while writing it", pid=pid, log_files=logs, fatal_signal=fatal)
    return ProcessRecord(
        pid=profile.pid if profile.pid is not None else pid,
        command=profile.command,
        log_files=tuple(str(p) for p in logs),
        metrics=profile.totals,
        leak_check=False,
        fatal_signal=fatal,
        heap_sites=profile.heap_sites,
    )


# ``launch`` runs ``valgrind --tool=dhat --trace-children=yes`` with one profile per process,
# ``<logdir>/dhat.<pid>.json``, and one Valgrind log per process, ``<logdir>/dhat.<pid>.log`` (the
# fatal signal of a crashed process is read there; DHAT still writes its profile after a crash).
class DhatTool:
    name = "dhat"
    metrics: frozenset[MetricName] = frozenset(_SUMMED.values())
    memory_appetite = Appetite(multiple=5.0)

    def version(self) -> str:
        return valgrind_version()

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        return valgrind_launch("dhat", "--dhat-out-file", "json", command, logdir, options)

    def collect(self, logdir: Path, outcome: Outcome,
                options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        return collect_valgrind_outputs(logdir, outcome, "dhat", "DHAT", "json", "profile",
                                        lambda path, pid, log: profile_record(
                                            path, pid=pid, log=log, wrappers=options.alloc_wrappers))

    def parse(self, paths: Sequence[Path], options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        return [profile_record(path, wrappers=options.alloc_wrappers) for path in paths]


DHAT = DhatTool()
