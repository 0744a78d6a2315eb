"""memcheck's text output (``--log-file``, or stderr captured), streamed line by line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from memgate.errors import ParseError
from memgate.metrics import LeakKind
from memgate.tools.memcheck.model import (
    TEXT_LEAK_KINDS,
    Amount,
    HeapUsage,
    MemcheckOutput,
    RawFrame,
    Sites,
)
from memgate.units import count_of, counts_read

_MAX_LINE = 1 << 16  # characters; a longer line is cut (no memcheck line is that long)
_MAX_BLOCK = 4096  # lines kept of one block

_PREFIX = re.compile(r"==(\d+)==(?: (?:\d\d:\d\d:\d\d:\d\d\.\d\d\d )?|$)")
_DELTA = r"(?: \([+-]\d[\d,]*\))?"
_LEAK_RECORD = re.compile(
    rf"^(?P<total>\d[\d,]*){_DELTA}(?: \((?P<direct>\d[\d,]*){_DELTA} direct, (?P<indirect>\d[\d,]*){_DELTA} "
    rf"indirect\))? bytes in (?P<blocks>\d[\d,]*){_DELTA} blocks are (?P<kind>definitely lost|indirectly lost"
    r"|possibly lost|still reachable) in loss record \d[\d,]* of \d[\d,]*$"
)
_SUMMARY_LINE = re.compile(
    rf"^\s*(?P<kind>definitely lost|indirectly lost|possibly lost|still reachable|suppressed): "
    rf"(?P<bytes>\d[\d,]*){_DELTA} bytes in (?P<blocks>\d[\d,]*){_DELTA} blocks$"
)
_IN_USE = re.compile(r"in use at exit: (\d[\d,]*) bytes in (\d[\d,]*) blocks")
_TOTAL = re.compile(r"total heap usage: (\d[\d,]*) allocs, (\d[\d,]*) frees, (\d[\d,]*) bytes allocated")
_ERROR_SUMMARY = re.compile(r"ERROR SUMMARY: (\d[\d,]*) errors from (\d[\d,]*) contexts")
_RECAP = re.compile(r"^(\d[\d,]*) errors in context \d[\d,]* of \d[\d,]*:$")
_FATAL = re.compile(r"^Process terminating with default action of signal (\d+) \((\w+)\)")
_FRAME = re.compile(r"^\s+(?:at|by) (0x[0-9A-Fa-f]+): (.*)$")
_SOURCE = re.compile(r"^(.*):(\d+)$")
_THREAD = re.compile(r"^Thread \d+(?: [^:]*)?:$")
_GAVE_UP = ("More than ", "I'm not reporting any more")
_HINT = "give memgate valgrind's --log-file, --xml-file, or the stderr it wrote"

# memcheck's error headlines (mc_errors.c), as the XML names their kinds
_KINDS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), kind) for pattern, kind in (
    (r"^Invalid read of size", "InvalidRead"),
    (r"^Invalid write of size", "InvalidWrite"),
    (r"^Invalid free\(\) / delete / delete\[\] / realloc\(\)", "InvalidFree"),
    (r"^Mismatched free\(\) / delete / delete ?\[\]", "MismatchedFree"),
    (r"^Jump to the invalid address", "InvalidJump"),
    (r"^Source and destination overlap in ", "Overlap"),
    (r"^Illegal memory pool address", "InvalidMemPool"),
    (r"^Conditional jump or move depends on uninitialised value", "UninitCondition"),
    (r"^Use of uninitialised value of size", "UninitValue"),
    (r"^Syscall param ", "SyscallParam"),
    (r"^(Uninitialised|Unaddressable) byte\(s\) found during client check request", "ClientCheck"),
    (r"^Argument '.*' of function .* has a fishy", "FishyValue"),
    (r" contains unaddressable byte\(s\)$", "CoreMemError"),
    (r"^realloc\(\) with size 0", "ReallocSizeZero"),
    (r"^Invalid alignment value", "InvalidAlignment"),
    (r"^Invalid size value", "InvalidSize"),
    (r"^Invalid .*size and alignment", "InvalidSizeAndAlignment"),
    (r"^Mismatched .* size", "MismatchedAllocateDeallocateSize"),
    (r"^Mismatched .* alignment", "MismatchedAllocateDeallocateAlignment"),
))


def error_kind(headline: str) -> str:
    for pattern, kind in _KINDS:
        if pattern.search(headline):
            return kind
    return "Unknown"


def _int(text: str) -> int:
    return count_of(text.replace(",", ""))


def parse_frame(line: str) -> RawFrame | None:
    """``   at 0x1092F1: invalid_read (memprog.c:51)``, ``   by 0x4005A3: ??? (in /lib/libx.so)``."""
    match = _FRAME.match(line)
    if not match:
        return None
    address, rest = match[1], match[2].strip()
    function, file, number, obj = rest, None, None, None
    cut = rest.rfind(" (")
    if cut >= 0 and rest.endswith(")"):
        inside = rest[cut + 2:-1]
        source = _SOURCE.match(inside)
        if inside.startswith("in "):
            function, obj = rest[:cut], inside[3:]
        elif source:
            function, file, number = rest[:cut], source[1], count_of(source[2])
    return (None if function in ("???", "") else function, file, number, obj, address)


def _stack(lines: list[str]) -> tuple[RawFrame, ...]:
    """The frames right after the headline: where it happened (later stacks are auxiliary)."""
    frames: list[RawFrame] = []
    for line in lines:
        frame = parse_frame(line)
        if frame is None:
            break
        frames.append(frame)
    return tuple(frames)


@dataclass
class _Process:
    """The blocks of one process so far."""

    output: MemcheckOutput
    block: list[str] = field(default_factory=list)
    printed: list[tuple[str, str, tuple[RawFrame, ...]]] = field(default_factory=list)  # first printings
    recap: list[tuple[int, str, str, tuple[RawFrame, ...]]] = field(default_factory=list)
    summary: tuple[int, int] | None = None  # ERROR SUMMARY: errors, contexts
    gave_up: bool = False


# One file may hold several processes (stderr of a run with ``--trace-children=yes``): lines are routed
# by their ``==PID==`` prefix, and lines without one (the program's own output) are skipped. Each
# process's lines form blocks separated by empty ``==PID==`` lines, and a block is an error, a loss
# record, a summary or something to skip.
#
# Counting, and the traps in it:
#
# - An error context is printed once, at its first occurrence. ``-s`` (or ``-v``) adds at the end a
#   recap, "N errors in context K of M:" and the error again: the counts come from there, and the
#   first printing is not counted a second time.
# - Without the recap, "ERROR SUMMARY: N errors from M contexts" counts leak records too (one error
#   and one context each, for the kinds of ``--errors-for-leak-kinds``). The errors that are not
#   leaks are N - (M - C), C being the error contexts printed. When that is more than C and there is
#   more than one context, which context repeated is not said: each record then says 1 and the
#   ``errors`` figure keeps the exact total.
# - A loss record "96 (32 direct, 64 indirect) bytes" owns 32 bytes; the 64 are indirect records.
# - A leak search during the run (``VALGRIND_DO_LEAK_CHECK``) prints records and a LEAK SUMMARY too;
#   the one at exit follows "HEAP SUMMARY:", so that heading starts the records that count.
class TextReader:
    def __init__(self, path: Path, sites: Sites | None = None) -> None:
        self.path = path
        self.sites = sites or Sites()
        self._processes: dict[int, _Process] = {}

    def read(self) -> list[MemcheckOutput]:
        for pid, text in self._lines():
            process = self._processes.get(pid)
            if process is None:
                process = self._processes[pid] = _Process(
                    MemcheckOutput(path=self.path, format="text", pid=pid, sites=self.sites))
            if text.strip():
                if len(process.block) < _MAX_BLOCK:
                    process.block.append(text)
            else:
                self._close_block(process)
        if not self._processes:
            raise ParseError("no Valgrind lines (==PID== ...) in this file", path=self.path, hint=_HINT)
        outputs = []
        for process in self._processes.values():
            self._close_block(process)
            outputs.append(self._finish(process))
        return outputs

    def _lines(self) -> Iterator[tuple[int, str]]:
        try:
            with self.path.open(encoding="utf-8", errors="replace", newline="") as handle:
                while line := handle.readline(_MAX_LINE):
                    match = _PREFIX.search(line)
                    if match:
                        yield count_of(match[1]), line[match.end():].rstrip("\r\n")
        except OSError as error:
            raise ParseError(f"cannot read {self.path}: {error.strerror or error}", path=self.path) from None

    # -- blocks ----------------------------------------------------------------------------------

    def _close_block(self, process: _Process) -> None:
        lines, process.block = process.block, []
        if not lines:
            return
        output = process.output
        for line in lines:
            summary = _ERROR_SUMMARY.search(line)
            if summary:
                process.summary = (_int(summary[1]), _int(summary[2]))
                output.finished = True
            if line.startswith(_GAVE_UP[0]) and _GAVE_UP[1] in line:
                process.gave_up = True
        while lines and _THREAD.match(lines[0]):
            lines = lines[1:]
        if not lines:
            return
        first = lines[0]
        if output.command is None:
            for line in lines:
                if line.startswith("Command: "):
                    output.command = line.removeprefix("Command: ")
        if first.startswith("HEAP SUMMARY:"):
            self._heap_summary(output, lines)
        elif first.startswith("LEAK SUMMARY:"):
            self._leak_summary(output, lines)
        elif first.startswith("All heap blocks were freed"):
            output.leak_summary = {kind: Amount() for kind in TEXT_LEAK_KINDS.values()}
            output.leak_check = "summary"
        elif (fatal := _FATAL.match(first)) is not None:
            output.fatal_signal = fatal[2]
        elif (record := _LEAK_RECORD.match(first)) is not None:
            self._leak(output, record, lines[1:])
        elif (recap := _RECAP.match(first)) is not None:
            self._recap(process, _int(recap[1]), lines[1:])
        elif len(lines) > 1 and parse_frame(lines[1]) is not None:
            process.printed.append((error_kind(first), first.strip(), _stack(lines[1:])))

    def _heap_summary(self, output: MemcheckOutput, lines: list[str]) -> None:
        # The search at exit starts here: records printed before came from searches during the run.
        output.restart_leaks()
        output.leak_summary = None
        output.leak_check = "no"  # until a LEAK SUMMARY or loss record says otherwise
        text = "\n".join(lines)
        in_use, total = _IN_USE.search(text), _TOTAL.search(text)
        if in_use is None or total is None:
            output.note("a HEAP SUMMARY without its figures")
            return
        output.heap = HeapUsage(in_use_bytes=_int(in_use[1]), in_use_blocks=_int(in_use[2]),
                                allocs=_int(total[1]), bytes_allocated=_int(total[3]), source="HEAP SUMMARY")

    def _leak_summary(self, output: MemcheckOutput, lines: list[str]) -> None:
        summary: dict[LeakKind, Amount] = {}
        for line in lines[1:]:
            match = _SUMMARY_LINE.match(line)
            if not match:
                continue
            amount = Amount(_int(match["bytes"]), _int(match["blocks"]))
            if match["kind"] == "suppressed":
                output.suppressed_leaks = amount
            else:
                summary[TEXT_LEAK_KINDS[match["kind"]]] = amount
        if len(summary) != len(TEXT_LEAK_KINDS):
            output.note("a LEAK SUMMARY without all four kinds")
            return
        output.leak_summary = summary
        if output.leak_check != "full":
            output.leak_check = "summary"

    def _leak(self, output: MemcheckOutput, record: re.Match[str], rest: list[str]) -> None:
        own = _int(record["direct"]) if record["direct"] else _int(record["total"])
        output.leaks.add(TEXT_LEAK_KINDS[record["kind"]], own, _int(record["blocks"]), _stack(rest))
        output.leak_check = "full"

    def _recap(self, process: _Process, count: int, lines: list[str]) -> None:
        if not lines:
            return
        headline = lines[0]
        process.recap.append((count, error_kind(headline), headline.strip(), _stack(lines[1:])))

    # -- the end ---------------------------------------------------------------------------------

    def _finish(self, process: _Process) -> MemcheckOutput:
        output = process.output
        if process.recap:
            for count, kind, headline, stack in process.recap:
                output.errors.add(kind, headline, stack, count)
        else:
            for kind, headline, stack in process.printed:
                output.errors.add(kind, headline, stack, 1)
            self._attribute_repeats(process)
        if process.summary is None:
            output.note(
                f"no ERROR SUMMARY for process {output.pid} in {self.path.name}: valgrind was killed "
                "before the end, ran with -q, or wrote its findings as XML (give memgate that file)"
            )
        if process.gave_up:
            output.note("valgrind stopped reporting errors (too many): its counts are not exact; rerun "
                        "with --error-limit=no")
        return output

    def _attribute_repeats(self, process: _Process) -> None:
        """Without a recap, the errors that are not leaks are N - (M - C) (see the module's doc)."""
        if process.summary is None:
            return
        errors, contexts = process.summary
        printed = len(process.printed)
        occurrences = errors - (contexts - printed)
        if occurrences <= printed:
            return
        output = process.output
        if printed == 1:
            kind, headline, stack = process.printed[0]
            output.errors.add(kind, headline, stack, occurrences - 1)
        else:
            output.errors_total = occurrences


def read_text(path: Path, sites: Sites | None = None) -> list[MemcheckOutput]:
    """Every process of one memcheck text log, one output each."""
    with counts_read(path, not_a="not a log valgrind writes", hint=_HINT):
        return TextReader(path, sites).read()
