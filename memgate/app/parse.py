"""``memgate parse``: turn tool output the user already has into a suite record, printed as JSON."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memgate.errors import ExitCode, UsageError, printable

if TYPE_CHECKING:
    from memgate.records import SuiteRecord


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
    print(record.model_dump_json(indent=2))
    incomplete = [p for p in processes if not p.complete]
    if incomplete:
        first = incomplete[0]
        shown = first.log_files[0] if first.log_files else options.files[0]
        print(printable(f"memgate: error: the output is incomplete ({shown}): {first.incomplete_reason}; "
                        "the figures above are partial"), file=sys.stderr)
        return ParseResult(int(ExitCode.TOOL), record)
    return ParseResult(int(ExitCode.PASS), record)
