"""massif (``valgrind --tool=massif``): peak heap from the snapshots of its ``massif.out`` file."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from memgate.errors import ParseError
from memgate.fingerprint import NO_WRAPPERS, AllocWrappers
from memgate.metrics import MetricName
from memgate.proc import Outcome
from memgate.records import Frame, HeapSite, ProcessRecord
from memgate.tools._heapsites import HeapStack, heap_sites
from memgate.tools._outputs import capped_lines, incomplete, pid_in_name
from memgate.tools._valgrind import (
    collect_valgrind_outputs,
    frame_of_text,
    read_valgrind_log,
    valgrind_launch,
    valgrind_version,
)
from memgate.tools.base import DEFAULT_OPTIONS, Appetite, Launch, ToolOptions
from memgate.units import count_of, counts_read

_HINT_NOT_MASSIF = "give the file massif wrote (--massif-out-file), e.g. massif.out.1234"
_DIGITS = re.compile(r"[0-9]+")
_SNAPSHOT_FIELDS = ("time", "mem_heap_B", "mem_heap_extra_B", "mem_stacks_B")
_TREE_NODE = re.compile(r"^\s*n(\d+): (\d+)")


class _Truncated(Exception):
    """The file ends inside a snapshot."""


@dataclass(frozen=True)
class MassifProfile:
    command: str | None
    snapshots: int
    peak_heap_bytes: int
    peak_extra_bytes: int  # mem_heap_extra_B at the peak: allocator overhead, not a metric
    heap_sites: tuple[HeapSite, ...] = ()  # the allocation stacks of the peak snapshot's tree


@dataclass
class _Snapshot:
    fields: dict[str, int]
    tree: str | None = None
    pending_nodes: int = 0  # tree nodes announced but not read yet
    lines: list[str] | None = None  # the tree's lines, kept for the peak snapshot only


# The file is read line by line; a snapshot's tree is checked only for completeness (its node counts),
# so memory stays bounded on any size of file.
class _Reader:
    def __init__(self, path: Path, wrappers: AllocWrappers = NO_WRAPPERS) -> None:
        self.path = path
        self.wrappers = wrappers
        self.command: str | None = None
        self.count = 0
        self.peak = -1
        self.peak_extra = 0
        self.peak_tree: list[str] = []
        self.current: _Snapshot | None = None

    def feed(self, lines: Iterator[str]) -> MassifProfile:
        self._header(lines)
        for line in lines:
            self._line(line)
        self._close_snapshot()
        if self.count == 0:
            raise _Truncated("no snapshot")
        return MassifProfile(command=self.command, snapshots=self.count, peak_heap_bytes=self.peak,
                             peak_extra_bytes=self.peak_extra,
                             heap_sites=_tree_sites(self.peak_tree, self.wrappers))

    def _header(self, lines: Iterator[str]) -> None:
        first = next(lines, None)
        if first is None:
            raise _Truncated("the file is empty")
        if not first.startswith("desc:"):
            raise ParseError("not a massif output file: it does not start with \"desc:\"",
                             path=self.path, hint=_HINT_NOT_MASSIF)
        if "--pages-as-heap=yes" in first:
            raise ParseError("massif ran with --pages-as-heap=yes: its figures are page mappings, "
                             "not heap", path=self.path, hint="remove --pages-as-heap from tool_args")

    def _line(self, line: str) -> None:
        snapshot = self.current
        if snapshot is not None and snapshot.pending_nodes:
            self._tree_node(snapshot, line)
        elif line.startswith("snapshot="):
            self._close_snapshot()
            self.current = _Snapshot(fields={})
        elif line.startswith("cmd:") and self.count == 0 and snapshot is None:
            self.command = line.removeprefix("cmd:").strip()
        elif line.startswith("#") or not line.strip():
            return
        elif snapshot is not None and line.startswith("heap_tree="):
            snapshot.tree = line.removeprefix("heap_tree=").strip()
            snapshot.pending_nodes = 0 if snapshot.tree == "empty" else 1
            snapshot.lines = [] if snapshot.tree == "peak" else None
        elif snapshot is not None and "=" in line:
            name, _, value = line.partition("=")
            if name in _SNAPSHOT_FIELDS:
                snapshot.fields[name] = self._integer(name, value)

    def _tree_node(self, snapshot: _Snapshot, line: str) -> None:
        match = _TREE_NODE.match(line)
        if not match:
            raise ParseError(f"a heap tree line massif does not write: {line[:80]!r}", path=self.path,
                             hint=_HINT_NOT_MASSIF)
        snapshot.pending_nodes += count_of(match[1]) - 1
        if snapshot.lines is not None:
            snapshot.lines.append(line)

    def _integer(self, name: str, value: str) -> int:
        """A count of bytes or instructions: digits only (``int()`` would also take "-1", "+1_0")."""
        digits = value.strip(" \t\r")  # not str.strip(): it takes U+001C-U+001F for blanks, int() does not
        if not _DIGITS.fullmatch(digits):
            raise ParseError(f"{name} is not a number of 0 or more: {value[:40]!r}", path=self.path,
                             hint=_HINT_NOT_MASSIF)
        return count_of(digits)

    def _close_snapshot(self) -> None:
        snapshot = self.current
        if snapshot is None:
            return
        missing = [name for name in _SNAPSHOT_FIELDS if name not in snapshot.fields]
        if missing or snapshot.tree is None:
            raise _Truncated(f"snapshot {self.count} lacks {', '.join(missing) or 'heap_tree'}")
        if snapshot.pending_nodes:
            raise _Truncated(f"the heap tree of snapshot {self.count} ends early")
        heap = snapshot.fields["mem_heap_B"]
        if heap > self.peak:
            self.peak, self.peak_extra = heap, snapshot.fields["mem_heap_extra_B"]
        if snapshot.lines is not None:  # massif marks one snapshot "peak"
            self.peak_tree = snapshot.lines
        self.count += 1
        self.current = None


_TREE_ENTRY = re.compile(r"^( *)n(\d+): (\d+) (.*)$")
_BELOW_THRESHOLD = re.compile(r"^in \d+ places?, (all )?below massif's threshold")


def _tree_sites(lines: list[str], wrappers: AllocWrappers) -> tuple[HeapSite, ...]:
    """The leaves of the peak snapshot's heap tree as allocation stacks: under the root (the
    allocation functions) each node is a caller, one space of indent per level, so a leaf's path is
    its stack, innermost first, and its bytes are the bytes live at the peak through that stack.
    Leaves that massif merged below its threshold (--threshold, 1% by default) name no stack."""
    path: list[Frame] = []
    stacks: list[HeapStack] = []
    for line in lines:
        entry = _TREE_ENTRY.match(line)
        if entry is None or not entry[1]:  # the root, or a line cut at 64 KiB before its figures
            continue
        depth, children, size, text = len(entry[1]), entry[2], count_of(entry[3]), entry[4]
        del path[depth - 1:]
        if _BELOW_THRESHOLD.match(text):
            continue
        path.append(frame_of_text(text))
        if children == "0" and size:
            stacks.append(HeapStack(tuple(path), bytes=size, blocks=None, peak_bytes=size))
    return heap_sites(stacks, wrappers)


def read_profile(path: Path, wrappers: AllocWrappers = NO_WRAPPERS) -> MassifProfile:
    """Stream a massif output file (its peak's stacks made sites with the allocator ``wrappers``
    skipped). ``ParseError`` for a file that is not one; ``_Truncated`` (caught by the callers) for one
    cut short."""
    try:
        with counts_read(path, not_a="not a massif output file", hint=_HINT_NOT_MASSIF):
            return _Reader(path, wrappers).feed(capped_lines(path))
    except OSError as error:
        raise ParseError(f"cannot read the massif file: {error.strerror}", path=path,
                         hint="check the path and its permissions") from None


# Metrics, per process:
#
# - ``heap_peak_bytes``: the largest ``mem_heap_B`` of any snapshot: the useful heap, the bytes the
#   program asked for. massif snapshots the heap at intervals, and by default takes its peak snapshot
#   only when the heap exceeds the last recorded peak by 1% (``--peak-inaccuracy=1.0``), so the true
#   peak can be missed by up to about 1%: seen 0.9% low on a steadily growing heap, 0.3% low on a C++
#   compiler run. memgate passes ``--peak-inaccuracy=0`` (unless the suite's ``tool_args`` set it),
#   which found the exact peak of every test program; it cost 4-15% more time on allocation-heavy test
#   programs and nothing measurable on the compiler run, not the "drastically slower" the manual warns
#   of. Even so, treat massif's peak as a lower bound: an 8-byte shortfall against DHAT was seen once
#   on a churning program.
#
# massif takes no snapshot at exit (the last one comes from the last allocation event that fell on its
# sampling schedule: a program that frees everything at the end showed 179,703 bytes in its last
# snapshot), so it gives no ``heap_end_bytes``; DHAT does.
#
# ``mem_heap_extra_B`` (the allocator's per-block overhead and alignment padding, as massif estimates
# it) is no canonical metric: other tools cannot measure it. It is read, at the peak snapshot, into
# ``MassifProfile.peak_extra_bytes``; records leave it out. ``--pages-as-heap=yes`` makes the figures
# page-level mappings, not heap: such files are refused.
#
# A forked child inherits its parent's heap, so its figures include the parent's live blocks.
def profile_record(path: Path, *, pid: int | None, log: Path | None = None,
                   wrappers: AllocWrappers = NO_WRAPPERS) -> ProcessRecord:
    logs = [path] + ([log] if log else [])
    fatal = read_valgrind_log(log).fatal_signal if log else None
    try:
        profile = read_profile(path, wrappers)
    except _Truncated as error:
        return incomplete(f"the massif file is truncated ({error}): the process or Valgrind was "
                          "killed while writing it", pid=pid, log_files=logs, fatal_signal=fatal)
    metrics: dict[MetricName, int] = {"heap_peak_bytes": profile.peak_heap_bytes}
    return ProcessRecord(pid=pid, command=profile.command, log_files=tuple(str(p) for p in logs),
                         metrics=metrics, leak_check=False, fatal_signal=fatal, heap_sites=profile.heap_sites)


# ``launch`` runs ``valgrind --tool=massif --trace-children=yes --peak-inaccuracy=0`` with one output
# per process, ``<logdir>/massif.<pid>.out``, and one Valgrind log per process,
# ``<logdir>/massif.<pid>.log`` (for the fatal signal of a crashed process).
class MassifTool:
    name = "massif"
    metrics: frozenset[MetricName] = frozenset({"heap_peak_bytes"})
    memory_appetite = Appetite(multiple=3.0)

    def version(self) -> str:
        return valgrind_version()

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        if not any(arg.startswith("--peak-inaccuracy") for arg in options.extra_args):
            options = replace(options, extra_args=("--peak-inaccuracy=0", *options.extra_args))
        return valgrind_launch("massif", "--massif-out-file", "out", command, logdir, options)

    def collect(self, logdir: Path, outcome: Outcome,
                options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        return collect_valgrind_outputs(logdir, outcome, "massif", "massif", "out", "output",
                                        lambda path, pid, log: profile_record(
                                            path, pid=pid, log=log, wrappers=options.alloc_wrappers))

    def parse(self, paths: Sequence[Path], options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        return [profile_record(path, pid=pid_in_name(path), wrappers=options.alloc_wrappers)
                for path in paths]


MASSIF = MassifTool()
