"""Frozen pydantic records: what memgate measured, tool by tool, process by process.

Parsers produce ``ProcessRecord``s; the runner wraps them into a ``SuiteRecord``; a run of several
suites is a ``Report``. The JSON report is ``Report.model_dump_json()``; its schema is generated into
``memgate/schema/report.schema.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from memgate.metrics import LeakKind, MetricName, combine

REPORT_SCHEMA_VERSION = 1


def _valid_unicode(value: object) -> object:
    """Tool output is read with ``surrogateescape`` so no byte is lost; a string that still holds
    undecodable bytes gets U+FFFD for them, since JSON and hashing need valid Unicode."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape" if _only_escapes(value) else "replace").decode(
                "utf-8", "replace")
    return value


def _only_escapes(value: str) -> bool:
    return all(not 0xD800 <= ord(char) <= 0xDFFF or 0xDC80 <= ord(char) <= 0xDCFF for char in value)


#: A string from tool output: always valid Unicode.
ToolText = Annotated[str, BeforeValidator(_valid_unicode)]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Frame(Record):
    """One stack frame as the tool printed it; any part may be unknown (no debug info, symbolize=0)."""

    function: ToolText | None = None
    file: ToolText | None = None
    line: int | None = None
    object: ToolText | None = Field(default=None, description="Binary or shared library of the frame.")
    address: ToolText | None = Field(default=None, description="As printed; never used for identity.")

    def label(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else (self.file or self.object or "")
        name = self.function or self.address or "??"
        return f"{name} ({where})" if where else name


class Leak(Record):
    """One leak record. ``bytes`` are the record's own bytes: a definite leak's indirect children are
    separate ``indirect`` records, never counted twice."""

    kind: LeakKind
    bytes: int
    blocks: int
    stack: tuple[Frame, ...] = ()
    fingerprint: str
    site: ToolText = Field(description="Readable identity: the frames the fingerprint is made of.")


class MemError(Record):
    """One memory error (invalid read, use after free, ...); ``count`` occurrences of one stack."""

    kind: ToolText = Field(description="The tool's own kind name, e.g. InvalidRead, heap-use-after-free.")
    description: ToolText = ""
    count: int = 1
    stack: tuple[Frame, ...] = ()
    fingerprint: str
    site: ToolText


class ProcessRecord(Record):
    """What one process of a suite measured (one log or output file of the tool)."""

    pid: int | None = None
    command: ToolText | None = None
    log_files: tuple[str, ...] = ()
    metrics: dict[MetricName, int] = Field(default_factory=dict)
    leaks: tuple[Leak, ...] = ()
    errors: tuple[MemError, ...] = ()
    leak_check: bool = Field(True, description="False when the tool did not look for leaks.")
    complete: bool = True
    incomplete_reason: ToolText | None = None
    fatal_signal: ToolText | None = Field(default=None, description="The signal or crash the tool reported.")


class SuiteStatus(str, Enum):
    OK = "ok"  # ran to the end; its exit status was accepted
    FAILED = "failed"  # the command exited with a status that is not accepted
    CRASHED = "crashed"  # killed by a signal, or the tool reported a fatal signal
    TIMEOUT = "timeout"  # killed by memgate after the suite's timeout
    INCOMPLETE = "incomplete"  # the tool's output is missing, truncated or unreadable

    @property
    def fails_gate(self) -> bool:
        return self in (SuiteStatus.FAILED, SuiteStatus.CRASHED, SuiteStatus.TIMEOUT)


class SuiteRecord(Record):
    name: str
    tool: str
    tool_version: str | None = None
    command: tuple[str, ...] = ()
    status: SuiteStatus = SuiteStatus.OK
    status_detail: str | None = None
    exit_code: int | None = None
    duration_seconds: float | None = None
    artifacts_dir: str | None = None
    processes: tuple[ProcessRecord, ...] = ()
    metrics: dict[MetricName, int] = Field(
        default_factory=dict,
        description="Per-process metrics combined: sums for leaks, errors and calls; max for peaks.",
    )

    @property
    def leaks(self) -> tuple[Leak, ...]:
        return tuple(leak for process in self.processes for leak in process.leaks)

    @property
    def errors(self) -> tuple[MemError, ...]:
        return tuple(error for process in self.processes for error in process.errors)

    @property
    def incomplete_reasons(self) -> tuple[str, ...]:
        return tuple(p.incomplete_reason or "incomplete" for p in self.processes if not p.complete)


def combine_processes(processes: Iterable[ProcessRecord]) -> dict[MetricName, int]:
    return combine(process.metrics for process in processes)


class Environment(Record):
    """Where a report was made; every field is best effort."""

    git_commit: str | None = None
    compiler: str | None = None
    libc: str | None = None
    platform: str | None = None


class Report(Record):
    schema_version: int = REPORT_SCHEMA_VERSION
    memgate_version: str
    created_at: str = Field(description="UTC, ISO 8601.")
    environment: Environment = Field(default_factory=Environment)
    suites: tuple[SuiteRecord, ...] = ()
