"""Frozen pydantic records: what memgate measured, tool by tool, process by process."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from memgate.metrics import (
    LEAK_KINDS,
    LOST_LEAK_KINDS,
    METRIC_NAMES,
    LeakKind,
    MetricName,
    combine,
    leak_metrics,
)
from memgate.tools import canonical_tool_name

#: 2: a report written by ``check`` or ``compare --json`` carries its comparison and exit code
#: (``memgate.comparison.ComparedReport``); version 1 reports (the run only) are still read.
REPORT_SCHEMA_VERSION = 2
#: The keys a version 2 report adds to the run: they are recomputed, never read back.
COMPARISON_KEYS = ("comparison", "exit_code")

#: Figures that vary between runs of the same program by nature: their differences are noise (see
#: the noise floors of ``memgate.config``), not nondeterminism.
NOISY_METRICS: frozenset[MetricName] = frozenset(
    {"rss_peak_bytes", "page_faults_minor", "page_faults_major", "gc_cycles", "gc_pause_total_ns"})
#: Findings: of several runs, the largest figure of any run counts.
FINDING_METRICS: frozenset[MetricName] = frozenset(
    {"errors", *(name for kind in LEAK_KINDS for name in leak_metrics(kind))})


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


class _ValidUnicode:
    """How a ``ToolText`` is validated. pydantic-core refuses a string that is not valid Unicode when
    it checks its length, in Rust; only such a string (rare) is handed to ``_valid_unicode``, so the
    others cost no Python call per field."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.union_schema(
            [core_schema.str_schema(max_length=1 << 62),
             core_schema.no_info_before_validator_function(_valid_unicode, core_schema.str_schema())],
            mode="left_to_right", custom_error_type="string_type",  # a string's error, as before
            serialization=core_schema.simple_ser_schema("str"))  # not a union's: it tries each choice

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string"}


#: A string from tool output: always valid Unicode.
ToolText = Annotated[str, _ValidUnicode]
#: A tool's name, as the registry spells it: files written when memcheck was "valgrind" still read.
ToolName = Annotated[str, AfterValidator(canonical_tool_name)]


# Parsers produce ``ProcessRecord``s; the runner wraps them into a ``SuiteRecord``; a run of several suites
# is a ``Report``. The JSON report is ``Report.model_dump_json()``; its schema is generated into
# ``memgate/schema/report.schema.json``.
class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_TEST_OF_FINDING = ("The test this finding belongs to: a GoogleTest test (Suite.Name) whose TestBody is "
                    "on its stack, else its process's test; absent when not known.")
_NONDETERMINISTIC_TESTS = ("Exact figures of single tests that differed between the tool's own repeats "
                           "of them (go test -count): test, metric and range.")
#: A suite's figures per test: test name -> metrics.
TestFigures = dict[str, dict[MetricName, int]]


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
    test: ToolText | None = Field(default=None, description=_TEST_OF_FINDING)


class RelatedStack(Record):
    """Another stack the tool gave with a memory error: where the block was freed or allocated."""

    description: ToolText = Field(description="The tool's own words, e.g. \"freed by thread T0 here\", "
                                  "\"Block was alloc'd at\".")
    stack: tuple[Frame, ...] = ()


class MemError(Record):
    """One memory error (invalid read, use after free, ...); ``count`` occurrences of one stack."""

    kind: ToolText = Field(description="The tool's own kind name, e.g. InvalidRead, heap-use-after-free.")
    description: ToolText = ""
    count: int = 1
    stack: tuple[Frame, ...] = ()
    fingerprint: str
    site: ToolText
    related: tuple[RelatedStack, ...] = Field(
        default=(), description="The error's other stacks, in the tool's order (free, allocation); "
                                "never part of its identity.")
    test: ToolText | None = Field(default=None, description=_TEST_OF_FINDING)


#: Allocation stacks a heap profiler's record keeps per process and suite: the ones that allocated most.
HEAP_SITES_KEPT = 100


class HeapSite(Record):
    """One allocation stack of a heap profiler: what it allocated. Heap growth is traced to the stacks
    whose bytes grew most (``memgate.comparison``)."""

    fingerprint: str
    site: ToolText
    frames: tuple[Frame, ...] = ()
    bytes: int = Field(description="DHAT, heaptrack: bytes allocated at this stack over the run. massif "
                                   "(which keeps no totals): bytes live at the heap's peak.")
    blocks: int | None = Field(default=None, description="Blocks allocated at this stack (DHAT, heaptrack).")
    peak_bytes: int | None = Field(default=None, description="Bytes live at the heap's peak.")


class SuppressionUse(Record):
    """One suppression and what it hid in a process or suite: Valgrind's count of the errors and leak
    records it matched, LSan's count and bytes of the leaks it matched."""

    name: ToolText = Field(description="The Valgrind suppression's name, or the LSan leak: pattern.")
    file: str | None = Field(description="The suppression file that holds it, as the config names it; "
                                         "absent for the tool's own default suppressions.")
    count: int = Field(description="What it hid: 0 for a suppression that hid nothing (stale).")
    bytes: int | None = Field(default=None, description="Bytes it hid (LSan); absent when not known.")

    @property
    def stale(self) -> bool:
        return self.count == 0 and self.file is not None


def combine_suppressions(processes: Iterable[ProcessRecord]) -> tuple[SuppressionUse, ...]:
    """Each suppression once, in the order first seen, with the counts (and bytes) of all processes."""
    combined: dict[tuple[str, str | None], SuppressionUse] = {}
    for process in processes:
        for use in process.suppressions:
            seen = combined.get((use.name, use.file))
            if seen is not None:
                use = seen.model_copy(update={"count": seen.count + use.count,
                                              "bytes": _sum_known(seen.bytes, use.bytes)})
            combined[(use.name, use.file)] = use
    return tuple(combined.values())


def top_heap_sites(sites: Iterable[HeapSite]) -> tuple[HeapSite, ...]:
    """Sites of one fingerprint summed, the ``HEAP_SITES_KEPT`` that allocated most bytes kept."""
    summed: dict[str, HeapSite] = {}
    for site in sites:
        seen = summed.get(site.fingerprint)
        if seen is not None:
            site = seen.model_copy(update={"bytes": seen.bytes + site.bytes,
                                           "blocks": _sum_known(seen.blocks, site.blocks),
                                           "peak_bytes": _sum_known(seen.peak_bytes, site.peak_bytes)})
        summed[site.fingerprint] = site
    ranked = sorted(summed.values(), key=lambda site: (-site.bytes, site.site, site.fingerprint))
    return tuple(ranked[:HEAP_SITES_KEPT])


def _sum_known(first: int | None, second: int | None) -> int | None:
    return None if first is None or second is None else first + second


class ProcessRecord(Record):
    """What one process of a suite measured (one log or output file of the tool)."""

    pid: int | None = None
    command: ToolText | None = None
    log_files: tuple[str, ...] = ()
    metrics: dict[MetricName, int] = Field(default_factory=dict)
    leaks: tuple[Leak, ...] = ()
    errors: tuple[MemError, ...] = ()
    leak_check: bool = Field(default=True, description="False when the tool did not look for leaks.")
    heap_sites: tuple[HeapSite, ...] = Field(
        default=(), description="Of a heap profiler that records stacks (DHAT, massif, heaptrack): the "
                                "allocation stacks that allocated most bytes, at most 100.")
    complete: bool = True
    incomplete_reason: ToolText | None = None
    fatal_signal: ToolText | None = Field(default=None, description="The signal or crash the tool reported.")
    run: int | None = Field(default=None, description="Which run (1, 2, ...) of a suite run several "
                            "times (repeat) this process belongs to; absent for a suite run once.")
    test: ToolText | None = Field(default=None, description="The test this process ran for, in a suite "
                                  "of several processes: its CTest test name, else its command.")
    tests: TestFigures = Field(default_factory=dict, description="Figures the tool measured per test "
                               "(Go: per benchmark): test name -> metrics.")
    nondeterministic_tests: tuple[MetricSpread, ...] = Field(
        default=(), description=_NONDETERMINISTIC_TESTS)
    suppressions: tuple[SuppressionUse, ...] = Field(
        default=(), description="The suppressions given to the tool and what each hid in this process.")

    @property
    def has_findings(self) -> bool:
        """A memory error or a lost block (definite or indirect leak): what a sanitizer exits
        non-zero for."""
        return bool(self.errors) or any(leak.kind in LOST_LEAK_KINDS for leak in self.leaks)


class SuiteStatus(str, Enum):
    OK = "ok"  # ran to the end; its exit status was accepted
    FAILED = "failed"  # the command exited with a status that is not accepted
    CRASHED = "crashed"  # killed by a signal, or the tool reported a fatal signal
    TIMEOUT = "timeout"  # killed by memgate after the suite's timeout
    INCOMPLETE = "incomplete"  # the tool's output is missing, truncated or unreadable

    @property
    def fails_gate(self) -> bool:
        return self in (SuiteStatus.FAILED, SuiteStatus.CRASHED, SuiteStatus.TIMEOUT)


class SuiteRun(Record):
    """One run of a suite run several times (``repeat``): how it ended and its own figures."""

    index: int = Field(description="1 for the first run.")
    status: SuiteStatus = SuiteStatus.OK
    status_detail: str | None = None
    exit_code: int | None = None
    duration_seconds: float | None = None
    artifacts_dir: str | None = None
    metrics: dict[MetricName, int] = Field(default_factory=dict)


class MetricSpread(Record):
    """An exact metric that differed between the runs of one suite, or of one test."""

    metric: MetricName
    min: int
    max: int
    value: int = Field(description="The figure the suite's metrics hold (see SuiteRecord.metrics).")
    test: str | None = Field(default=None, description="The test whose runs differed (None: the suite).")


class SuiteRecord(Record):
    name: str
    tool: ToolName
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
        description="Per-process metrics combined: sums for leaks, errors and calls; max for peaks. "
                    "Of a suite run several times: the largest leak and error figures of any run, the "
                    "median (the lower middle value) of every other figure.",
    )
    runs: tuple[SuiteRun, ...] = Field(
        default=(), description="Each run of a suite run several times (repeat); empty for one run.")
    nondeterministic: tuple[MetricSpread, ...] = Field(
        default=(), description="Exact metrics (all but rss_peak_bytes and page faults) that differed "
                                "between the runs: the suite is nondeterministic.")
    notes: tuple[str, ...] = Field(
        default=(), description="What memgate had to do besides running the suite, one sentence each: "
                                "\"left 2 processes running (1234 sleep, 1240 mydaemon): ended them\".")
    alloc_wrappers: tuple[str, ...] = Field(
        default=(), description="The allocator wrappers (function-name globs) whose frames were skipped "
                                "when the sites were fingerprinted.")
    nondeterministic_tests: tuple[MetricSpread, ...] = Field(
        default=(), description=_NONDETERMINISTIC_TESTS)
    tests: TestFigures = Field(
        default_factory=dict, description="The suite's figures per test (test name -> metrics), combined "
                                          "like the suite's: what the tool measured per test (Go "
                                          "benchmarks), each process's figures under its test, and the "
                                          "leak and error figures of the findings that name a test.")
    suppressions: tuple[SuppressionUse, ...] = Field(
        default=(), description="The suppressions given to the tool and what each hid over the suite "
                                "(count 0 and a file: stale).")

    @property
    def leaks(self) -> tuple[Leak, ...]:
        """Every leak record; of several runs, each site (kind and fingerprint) from the first run
        that had it, so that a site seen in any run counts once, with one run's figures."""
        return _first_seen_sites(self.processes, lambda process: process.leaks)

    @property
    def errors(self) -> tuple[MemError, ...]:
        return _first_seen_sites(self.processes, lambda process: process.errors)

    @property
    def heap_sites(self) -> tuple[HeapSite, ...]:
        """The allocation stacks that allocated most, summed over the processes (of several runs,
        those of the first run: a sum over runs would double every figure)."""
        runs = {process.run for process in self.processes}
        first = min((run for run in runs if run is not None), default=None)
        return top_heap_sites(site for process in self.processes if process.run == first
                              for site in process.heap_sites)

    @property
    def incomplete_reasons(self) -> tuple[str, ...]:
        return tuple(p.incomplete_reason or "incomplete" for p in self.processes if not p.complete)

    @classmethod
    def from_processes(
        cls,
        name: str,
        tool: str,
        processes: Sequence[ProcessRecord],
        *,
        status: SuiteStatus | None = None,
        status_detail: str | None = None,
        tool_version: str | None = None,
        command: tuple[str, ...] = (),
        exit_code: int | None = None,
        duration_seconds: float | None = None,
        artifacts_dir: str | None = None,
        notes: tuple[str, ...] = (),
        alloc_wrappers: tuple[str, ...] = (),
    ) -> SuiteRecord:
        """One run of a suite from its processes: their metrics combined, and the status given, or
        else the one their output says (``output_status``)."""
        if status is None:
            status, status_detail = output_status(processes)
        return cls(
            name=name, tool=tool, tool_version=tool_version, command=command, status=status,
            status_detail=status_detail, exit_code=exit_code, duration_seconds=duration_seconds,
            artifacts_dir=artifacts_dir, processes=tuple(processes), metrics=combine_processes(processes),
            tests=combine_tests(processes), notes=notes, suppressions=combine_suppressions(processes),
            nondeterministic_tests=tuple(spread for process in processes
                                         for spread in process.nondeterministic_tests),
            alloc_wrappers=alloc_wrappers,
        )


def output_status(processes: Iterable[ProcessRecord]) -> tuple[SuiteStatus, str | None]:
    """INCOMPLETE, with the first incomplete process's reason, when the tool's output of a process is
    incomplete; else OK."""
    for process in processes:
        if not process.complete:
            return SuiteStatus.INCOMPLETE, process.incomplete_reason or "tool output incomplete"
    return SuiteStatus.OK, None


def combine_processes(processes: Iterable[ProcessRecord]) -> dict[MetricName, int]:
    return combine(process.metrics for process in processes)


def combine_tests(processes: Sequence[ProcessRecord]) -> TestFigures:
    """Per-test figures of one run: each test's tool-measured figures, the non-finding figures of the
    processes that ran for it, and the leak and error figures of the findings that name it."""
    parts: dict[str, list[Mapping[MetricName, int]]] = {}
    for process in processes:
        for name, metrics in process.tests.items():
            parts.setdefault(name, []).append(metrics)
        if process.test is not None:
            parts.setdefault(process.test, []).append(
                {metric: value for metric, value in process.metrics.items() if metric not in FINDING_METRICS})
        for leak in process.leaks:
            if leak.test is not None:
                bytes_metric, blocks_metric = leak_metrics(leak.kind)
                parts.setdefault(leak.test, []).append({bytes_metric: leak.bytes, blocks_metric: leak.blocks})
        for error in process.errors:
            if error.test is not None:
                parts.setdefault(error.test, []).append({"errors": error.count})
    return {name: combine(parts[name]) for name in sorted(parts)}


def combine_run_metrics(
    per_run: Sequence[Mapping[MetricName, int]],
) -> tuple[dict[MetricName, int], tuple[MetricSpread, ...]]:
    """Each metric over the runs that measured it: the largest finding, the median of the rest; and
    the exact metrics whose runs disagree."""
    combined: dict[MetricName, int] = {}
    spreads: list[MetricSpread] = []
    for metric in METRIC_NAMES:
        values = [metrics[metric] for metrics in per_run if metric in metrics]
        if not values:
            continue
        value = max(values) if metric in FINDING_METRICS else statistics.median_low(values)
        combined[metric] = value
        if metric not in NOISY_METRICS and min(values) != max(values):
            spreads.append(MetricSpread(metric=metric, min=min(values), max=max(values), value=value))
    return combined, tuple(spreads)


def combine_run_tests(per_run: Sequence[TestFigures]) -> TestFigures:
    """Per-test figures of several runs, each test's like a suite's (``combine_run_metrics``) over
    the runs that measured it. A test whose figures differ between runs does not make the suite
    nondeterministic by itself: the suite's own figures say that."""
    names = sorted({name for tests in per_run for name in tests})
    return {name: combine_run_metrics([tests[name] for tests in per_run if name in tests])[0]
            for name in names}


def run_test_spreads(per_run: Sequence[TestFigures]) -> tuple[MetricSpread, ...]:
    """The exact figures of single tests that differed between the runs of a repeated suite (a Go
    benchmark whose input is seeded once per process: its in-process repeats agree, separate runs do
    not). Leak and error figures are left out: a finding of one run in several is a finding."""
    names = sorted({name for tests in per_run for name in tests})
    return tuple(spread.model_copy(update={"test": name}) for name in names
                 for spread in combine_run_metrics([tests[name] for tests in per_run if name in tests])[1]
                 if spread.metric not in FINDING_METRICS)


_Finding = TypeVar("_Finding", Leak, MemError)


def _first_seen_sites(
    processes: tuple[ProcessRecord, ...], findings: Callable[[ProcessRecord], tuple[_Finding, ...]]
) -> tuple[_Finding, ...]:
    if all(process.run is None for process in processes):
        return tuple(finding for process in processes for finding in findings(process))
    by_run: dict[int, list[_Finding]] = {}
    for process in processes:
        by_run.setdefault(process.run or 0, []).extend(findings(process))
    seen: set[tuple[str, str]] = set()
    kept: list[_Finding] = []
    for run in sorted(by_run):
        batch = by_run[run]
        kept += [finding for finding in batch if (finding.kind, finding.fingerprint) not in seen]
        seen.update((finding.kind, finding.fingerprint) for finding in batch)
    return tuple(kept)


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
