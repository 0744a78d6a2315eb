"""``memgate parse``: turn tool output the user already has into a suite record, printed as JSON."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from memgate.errors import ExitCode, UsageError, printable

if TYPE_CHECKING:
    from pydantic import BaseModel

    from memgate.records import ProcessRecord, SuiteRecord


@dataclass(frozen=True)
class ParseOptions:
    tool: str
    files: tuple[Path, ...]  # several files are several processes of one run
    name: str = "parsed"  # the suite name the record gets
    alloc_wrappers: tuple[str, ...] = ()  # function-name globs, as the config's alloc_wrappers


@dataclass(frozen=True)
class ParseResult:
    exit_code: int
    record: SuiteRecord


def parse(options: ParseOptions) -> ParseResult:
    from memgate.config import alloc_wrapper_globs
    from memgate.fingerprint import AllocWrappers
    from memgate.gcpause import collector_paused
    from memgate.records import SuiteRecord
    from memgate.tools import get_tool
    from memgate.tools.base import ToolOptions

    for path in options.files:
        if not path.is_file():
            raise UsageError("no such file", path=path, hint="give the tool's output files")
    try:
        wrappers = AllocWrappers.of(alloc_wrapper_globs(list(options.alloc_wrappers)))
    except ValueError as error:
        raise UsageError(f"--alloc-wrapper: {error}",
                         hint="give the names of the wrapper functions") from None
    with collector_paused():
        processes = get_tool(options.tool).parse(list(options.files), ToolOptions(alloc_wrappers=wrappers))
    record = SuiteRecord.from_processes(options.name, options.tool, processes, alloc_wrappers=wrappers.globs)
    write_record_json(record, sys.stdout)
    sys.stdout.write("\n")
    incomplete = [p for p in processes if not p.complete]
    if incomplete:
        first = incomplete[0]
        shown = first.log_files[0] if first.log_files else options.files[0]
        print(printable(f"memgate: error: the output is incomplete ({shown}): {first.incomplete_reason}; "
                        "the figures above are partial"), file=sys.stderr)
        return ParseResult(int(ExitCode.TOOL), record)
    return ParseResult(int(ExitCode.PASS), record)


# A model's JSON with a tuple field left empty holds this line, where the streamed items go.
_EMPTY_LIST = '\n{indent}"{field}": []'
_ITEMS_CACHED = 1 << 13  # JSON texts of records kept for records repeated (by object) in a process


def write_record_json(record: SuiteRecord, out: TextIO) -> None:
    """``record.model_dump_json(indent=2)``, byte for byte, written piece by piece: one leak or error
    record at a time, so that memory holds the records (one object per distinct record: the parsers
    share them) but never the whole text, which is several times the log's size."""
    _write_with_items(record.model_copy(update={"processes": ()}), out, 0,
                      {"processes": lambda: _write_processes(record.processes, out)})


def _write_processes(processes: Sequence[ProcessRecord], out: TextIO) -> bool:
    for index, process in enumerate(processes):
        out.write(",\n    " if index else "\n    ")
        _write_process(process, out)
    return bool(processes)


def _write_process(process: ProcessRecord, out: TextIO) -> None:
    shell = process.model_copy(update={"leaks": (), "errors": ()})
    texts: dict[int, str] = {}  # id -> JSON of a record: the tuples keep every object alive
    _write_with_items(shell, out, 4, {
        "leaks": lambda: _write_items(process.leaks, out, 8, texts),
        "errors": lambda: _write_items(process.errors, out, 8, texts),
    })


def _write_with_items(shell: BaseModel, out: TextIO, indent: int,
                      items: dict[str, Callable[[], bool]]) -> None:
    """``shell``'s JSON (its ``items`` fields empty) indented by ``indent`` spaces, each of those
    fields' items written in place of its ``[]`` by the function given for it."""
    text = shell.model_dump_json(indent=2).replace("\n", "\n" + " " * indent)
    for field, write_items in items.items():
        marker = _EMPTY_LIST.format(indent=" " * (indent + 2), field=field)
        head, found, text = text.partition(marker)
        assert found, f"{field} is a top-level list of {type(shell).__name__}"
        out.write(head + marker[:-1])
        out.write(("\n" + " " * (indent + 2) + "]") if write_items() else "]")
    out.write(text)


def _write_items(records: Sequence[BaseModel], out: TextIO, indent: int, texts: dict[int, str]) -> bool:
    """The records as the items of a JSON list indented by ``indent``; False when there are none."""
    if not records:
        return False
    newline = "\n" + " " * indent
    for index, record in enumerate(records):
        text = texts.get(id(record))
        if text is None:
            text = record.model_dump_json(indent=2).replace("\n", newline)
            if len(texts) >= _ITEMS_CACHED:
                texts.clear()
            texts[id(record)] = text
        out.write(("," if index else "") + newline + text)
    return True
