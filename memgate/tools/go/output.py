"""Reading ``go test`` output: the ``-json`` event stream (read line by line) or the plain text of
``go test -bench -benchmem``, into one record per package (one test binary) with its benchmarks'
figures, its garbage collector's figures, and how it failed."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass, field
from pathlib import Path

from memgate.metrics import MetricName
from memgate.records import HeapSite, MetricSpread, ProcessRecord, TestFigures
from memgate.tools._outputs import MAX_LINE, capped_lines, incomplete
from memgate.units import count_of, counts_read

# "BenchmarkGrow-2   \t     100\t     19693 ns/op\t    7422 B/op\t      24 allocs/op" (b.ReportMetric
# adds other "<value> <unit>" pairs).
_RESULT = re.compile(r"(?P<name>Benchmark\S*)\s+(?P<iterations>[0-9]+)(?P<figures>(?:\s+[0-9.e+-]+ \S+)+)\s*")
_FIGURE = re.compile(r"([0-9.e+-]+) (\S+)")
_COUNT = re.compile(r"[0-9]+")
# In -json output (``-test.v``), each benchmark's exact name, before it runs.
_ANNOUNCED = re.compile(r"Benchmark\S*")
# "gc 3 @0.003s 8%: 0.061+0.12+0.002 ms clock, ...": the first and third clock figures are the two
# stop-the-world phases (sweep termination, mark termination); the second runs alongside the program.
# The runtime writes it between any two writes of the test (the benchmark's name and its figures).
# Milliseconds of a pause: a figure longer than this is no pause the runtime printed.
_MS = r"([0-9]{1,12}(?:\.[0-9]{1,9})?)"
_GC_TRACE = re.compile(rf"gc [0-9]+ @[0-9.]+s [0-9]+%: {_MS}\+[0-9.]+\+{_MS} ms clock.*")
_PROCS_SUFFIX = re.compile(r"-\d+$")
_FAILED_TEST = re.compile(r"\s*--- FAIL: (\S+)")
_BUILD_FAILED = re.compile(r"FAIL\s+(\S+) \[(build|setup) failed\]")
_PACKAGE_FAILED = re.compile(r"FAIL\s+(\S+)\s+[0-9.]+s")
_TEXT_PACKAGE = re.compile(r"pkg: (\S+)")
_CRASH = ("panic: ", "fatal error: ")
_NS_PER_MS = 1_000_000
#: The reason of the record of a run with no benchmark at all.
NO_BENCHMARK = ("go test ran no benchmark: give -bench a pattern that matches Benchmark functions of the "
                "packages in the command")
_FAILURES_NAMED = 3


@dataclass
class PackageRun:
    """What one package's test binary printed, read so far."""

    path: str
    pending: str = ""  # output since its last newline
    announced: str | None = None
    figures: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # name -> (allocs, bytes)
    without_benchmem: list[str] = field(default_factory=list)
    gc_cycles: int = 0
    gc_pause_ms: float = 0.0
    failures: list[str] = field(default_factory=list)
    crash: str | None = None
    build_failed: bool = False
    failed: bool = False

    def feed(self, text: str) -> None:
        """Output of the package, in any pieces: whole lines are read as they complete."""
        self.pending += text
        if "\n" not in text:
            lines = []
        else:
            *lines, self.pending = self.pending.split("\n")
        carried = ""
        for line in lines:
            line, carried = carried + line, ""
            trace = _GC_TRACE.search(line)
            if trace is not None:
                self._count_collection(trace)
                # What came before the trace is the start of a line whose end is still to come.
                carried = line[:trace.start()]
                continue
            self.read_line(line)
        self.pending = carried + self.pending
        if len(self.pending) > MAX_LINE:  # no output line is that long; keep memory flat regardless
            self.pending = self.pending[:MAX_LINE]

    def finish(self) -> None:
        if self.pending:
            self.feed("\n")

    def read_line(self, line: str) -> None:
        result = _RESULT.fullmatch(line)
        if result is not None:
            self._read_result(result)
        elif _ANNOUNCED.fullmatch(line):
            self.announced = line
        elif line.startswith(_CRASH) and self.crash is None:
            self.crash = line
        elif failed := _FAILED_TEST.match(line):
            self.add_failure(failed[1])
        elif _BUILD_FAILED.match(line):
            self.build_failed = True
        elif line == "FAIL" or _PACKAGE_FAILED.match(line):
            self.failed = True

    def add_failure(self, test: str) -> None:
        """A test or benchmark that failed, named once however many of its runs (-count) failed."""
        if test not in self.failures:
            self.failures.append(test)

    def _count_collection(self, trace: re.Match[str]) -> None:
        self.gc_cycles += 1
        self.gc_pause_ms += float(trace[1]) + float(trace[2])

    def _read_result(self, result: re.Match[str]) -> None:
        name = self._test_name(result["name"])
        units = {unit: value for value, unit in _FIGURE.findall(result["figures"])}
        allocs, bytes_ = units.get("allocs/op", ""), units.get("B/op", "")
        if not (_COUNT.fullmatch(allocs) and _COUNT.fullmatch(bytes_)):
            self.without_benchmem.append(name)
            return
        self.figures.setdefault(name, []).append((count_of(allocs), count_of(bytes_)))

    def _test_name(self, printed: str) -> str:
        """The benchmark's name without the ``-GOMAXPROCS`` suffix go test adds when it is not 1: the
        announced name when there is one (-json), else the printed name less a final ``-<digits>``."""
        announced = self.announced
        if announced and (printed == announced or (printed.startswith(announced + "-")
                                                   and printed[len(announced) + 1:].isdigit())):
            return announced
        return _PROCS_SUFFIX.sub("", printed)

    def test_figures(self, shared: Set[str]) -> TestFigures:
        """Each benchmark's figures (the median of its ``-count`` runs); a name in ``shared`` (another
        package has it too) is prefixed with the package's import path."""
        tests: TestFigures = {}
        for name, runs in self.figures.items():
            name = f"{self.path}.{name}" if name in shared and self.path else name
            tests[name] = {"allocs_per_op": statistics.median_low(run[0] for run in runs),
                           "bytes_per_op": statistics.median_low(run[1] for run in runs)}
        return tests

    def test_spreads(self, shared: Set[str]) -> tuple[MetricSpread, ...]:
        """The figures whose ``-count`` runs disagreed: the benchmark is nondeterministic (its input or
        its work changes from run to run)."""
        spreads: list[MetricSpread] = []
        for name, runs in self.figures.items():
            name = f"{self.path}.{name}" if name in shared and self.path else name
            by_metric: tuple[tuple[MetricName, list[int]], ...] = (
                ("allocs_per_op", [run[0] for run in runs]), ("bytes_per_op", [run[1] for run in runs]))
            for metric, values in by_metric:
                if min(values) != max(values):
                    spreads.append(MetricSpread(metric=metric, min=min(values), max=max(values),
                                                value=statistics.median_low(values), test=name))
        return tuple(spreads)

    def gc_metrics(self) -> dict[MetricName, int]:
        if not self.gc_cycles:
            return {}
        return {"gc_cycles": self.gc_cycles, "gc_pause_total_ns": round(self.gc_pause_ms * _NS_PER_MS)}

    def failure(self) -> str | None:
        """Why the package's figures cannot be trusted, in a sentence; None when it passed."""
        if self.build_failed:
            return f"package {self.path} did not build (the go command printed the errors on its stderr)"
        if self.crash is not None:
            return f"package {self.path}: {self.crash}"
        if self.failures:
            named = ", ".join(self.failures[:_FAILURES_NAMED])
            more = len(self.failures) - _FAILURES_NAMED
            return f"package {self.path}: {named}{f' and {more} more' if more > 0 else ''} failed"
        if self.failed:
            return f"package {self.path}: go test reported FAIL (see its output)"
        if self.without_benchmem:
            return (f"package {self.path}: {self.without_benchmem[0]} has no B/op and allocs/op figures "
                    "(run go test with -benchmem)")
        return None


def read_json_stream(path: Path) -> list[PackageRun]:
    """``go test -json`` output, one event a line. Lines that are not JSON events are go's own text
    (Go before 1.21 prints "FAIL <package> [build failed]" so even with -json)."""
    packages: dict[str, PackageRun] = {}
    for line in capped_lines(path):
        event = _event(line)
        if event is None:
            _read_text_line(packages, line)
            continue
        package = event.get("Package")
        if not isinstance(package, str):
            continue
        run = packages.setdefault(package, PackageRun(package))
        output = event.get("Output")
        if isinstance(output, str):
            run.feed(output)
        if event.get("Action") == "fail":
            test = event.get("Test")
            if isinstance(test, str):
                run.add_failure(test)
            else:
                run.failed = True
    for run in packages.values():
        run.finish()
    return list(packages.values())


def _event(line: str) -> dict[str, object] | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:  # a line cut short (a killed run): no event
        return None
    return event if isinstance(event, dict) else None


def _read_text_line(packages: dict[str, PackageRun], line: str) -> None:
    build = _BUILD_FAILED.match(line)
    if build is not None:
        packages.setdefault(build[1], PackageRun(build[1])).build_failed = True


def read_text(path: Path) -> list[PackageRun]:
    """Plain ``go test -bench -benchmem`` output: each package's block starts at its "pkg:" line and
    ends at its "ok"/"FAIL" line."""
    packages: list[PackageRun] = []
    current = PackageRun("")
    for line in capped_lines(path):
        named = _TEXT_PACKAGE.fullmatch(line)
        if named is not None:
            current.path = named[1]
        build = _BUILD_FAILED.match(line)
        if build is not None:
            packages.append(PackageRun(build[1], build_failed=True))
            continue
        current.feed(line + "\n")
        if line.startswith(("ok ", "FAIL\t")):  # the package's summary line ends its block
            current.path = current.path or line.split()[1]
            packages.append(current)
            current = PackageRun("")
    current.finish()
    if current.figures or current.failure() or current.gc_cycles:
        packages.append(current)
    return packages


def is_json_stream(path: Path) -> bool:
    """Whether the file's first non-empty line is a JSON object, as in ``go test -json`` output."""
    for line in capped_lines(path):
        if line.strip():
            return line.lstrip().startswith("{")
    return False


def package_records(packages: Iterable[PackageRun], path: Path,
                    heap_sites: Callable[[PackageRun], tuple[HeapSite, ...]] = lambda _: ()
                    ) -> list[ProcessRecord]:
    """One record per package that ran a benchmark or failed; a benchmark name that two packages share
    is prefixed with each one's import path ("example.com/m/a.BenchmarkX"). No record at all means no
    benchmark ran: that is one incomplete record, never a pass. ``heap_sites`` gives a package's
    allocation sites (from its heap profile, when there is one)."""
    ran = [package for package in packages if package.figures or package.failure()]
    seen = Counter(name for package in ran for name in package.figures)
    shared = {name for name, packages_with_it in seen.items() if packages_with_it > 1}
    records = [_record(package, path, shared, heap_sites(package)) for package in ran]
    if not any(record.tests for record in records) and all(record.complete for record in records):
        return [incomplete(NO_BENCHMARK, log_files=[path])]
    return records


def _record(package: PackageRun, path: Path, shared: Set[str], sites: tuple[HeapSite, ...]) -> ProcessRecord:
    failure = package.failure()
    return ProcessRecord(command=package.path or None, log_files=(str(path),), leak_check=False,
                         metrics=package.gc_metrics(), tests=package.test_figures(shared),
                         nondeterministic_tests=package.test_spreads(shared),
                         complete=failure is None, incomplete_reason=failure,
                         fatal_signal=package.crash, heap_sites=sites)


def read_packages(path: Path) -> list[PackageRun]:
    """The packages of one output file, JSON stream or text."""
    with counts_read(path, not_a="not the output of go test",
                     hint="give the output of go test -json -bench . -benchmem as go wrote it"):
        return read_json_stream(path) if is_json_stream(path) else read_text(path)
