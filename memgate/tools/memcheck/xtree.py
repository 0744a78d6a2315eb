"""memcheck's xtree memory report (``--xtree-memory=full``): the heap totals that protocol-4 XML lacks."""

from __future__ import annotations

import os
from pathlib import Path

from memgate.errors import ParseError
from memgate.tools.memcheck.model import HeapUsage, MemcheckOutput
from memgate.units import count_of, counts_read

_HEAD_LINES = 64
_TAIL_BYTES = 4096
_HINT = "give memgate the file valgrind wrote with --xtree-memory=full --xtree-memory-file="


# The file is in callgrind format: a header naming the events (``events: curB curBk totB totBk totFdB
# totFdBk``), one cost line per allocation stack, and a ``totals:`` line at the very end. Only the header
# and the tail are read, however long the file.
def _header(path: Path, lines: list[str]) -> tuple[int | None, str | None, list[str]]:
    if not lines or lines[0].strip() != "# callgrind format" or not any(
            line.startswith("creator: xtree") for line in lines):
        raise ParseError("not a Valgrind xtree memory report", path=path, hint=_HINT)
    pid: int | None = None
    command: str | None = None
    events: list[str] = []
    for line in lines:
        name, _, value = line.partition(":")
        if name == "pid" and value.strip().isdecimal():
            pid = count_of(value.strip())
        elif name == "cmd":
            command = value.strip()
        elif name == "events":
            events = value.split()
    if not events:
        raise ParseError("xtree memory report without an events: line", path=path, hint=_HINT)
    return pid, command, events


# With ``--xtree-memory=full`` the totals are memcheck's HEAP SUMMARY exactly: curB/curBk "in use at exit",
# totBk "allocs", totB "bytes allocated" (realloc counts as a new block, as memcheck's summary counts it). A
# run that allocated nothing writes ``totals: (null)``. In a forked child, as in its HEAP SUMMARY, the
# figures include what the parent had allocated before ``fork()``.
def _totals_line(path: Path) -> str | None:
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - _TAIL_BYTES))
        tail = handle.read().decode("utf-8", errors="replace")
    for line in reversed(tail.splitlines()):
        if line.startswith("totals:"):
            return line.removeprefix("totals:").strip()
    return None


def read_xtree(path: Path) -> MemcheckOutput:
    """The heap totals of one process; a report cut before ``totals:`` is noted as incomplete."""
    with counts_read(path, not_a="not an xtree report valgrind writes", hint=_HINT):
        return _read(path)


def _read(path: Path) -> MemcheckOutput:
    output = MemcheckOutput(path=path, format="xtree")
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            head = [line.rstrip("\n") for _, line in zip(range(_HEAD_LINES), handle, strict=False)]
        output.pid, output.command, events = _header(path, head)
        totals = _totals_line(path)
    except OSError as error:
        raise ParseError(f"cannot read {path}: {error.strerror or error}", path=path) from None
    if totals is None:
        output.note(f"{path.name} ends before its totals: valgrind was probably killed while writing it")
        return output
    if totals == "(null)":  # nothing was ever allocated
        values = [0] * len(events)
    else:
        values = [count_of(word) for word in totals.split() if word.isdecimal()]
    if len(values) != len(events):
        raise ParseError(f"xtree totals {totals!r} do not match its events {' '.join(events)}", path=path,
                         hint=_HINT)
    figures = dict(zip(events, values, strict=True))
    if "curB" not in figures or "curBk" not in figures:
        raise ParseError("xtree memory report without curB/curBk: not --xtree-memory", path=path, hint=_HINT)
    output.heap = HeapUsage(in_use_bytes=figures["curB"], in_use_blocks=figures["curBk"],
                            allocs=figures.get("totBk"), bytes_allocated=figures.get("totB"),
                            source=f"xtree report {path.name}")
    output.finished = True
    return output
