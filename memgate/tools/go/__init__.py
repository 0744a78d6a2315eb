"""go: ``go test`` benchmarks, read exactly: allocations and bytes per operation of every benchmark
(one test each), and the garbage collector's cycles and pauses of every test binary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from memgate.errors import ConfigError, ParseError
from memgate.fingerprint import AllocWrappers
from memgate.metrics import MetricName
from memgate.proc import Outcome
from memgate.records import HeapSite, ProcessRecord, top_heap_sites
from memgate.tools._outputs import incomplete, no_output_reason
from memgate.tools._programs import program_version, tool_env
from memgate.tools.base import DEFAULT_OPTIONS, Appetite, Launch, ToolOptions
from memgate.tools.go.command import HEAP_PROFILE_SUFFIX, go_test_argv, heap_profile_wrapper
from memgate.tools.go.output import NO_BENCHMARK, package_records, read_packages
from memgate.tools.go.pprof import heap_sites_from_profile

INSTALL_HINT = "install Go 1.19 or newer: apt-get install golang-go (or see https://go.dev/dl)"
#: Where ``go test -json`` writes its events, in the suite's log folder.
OUTPUT = "go-test.json"
#: The folder of the test binaries' heap profiles, in the suite's log folder.
HEAP_PROFILES = "heap-profiles"
# go test writes the events on its stdout; a shell around it sends them to the tool's own file, so
# that collect and parse read one format from one place.
_TO_OUTPUT = 'exec "$@" >"$0"'


class GoTool:
    name = "go"
    metrics: frozenset[MetricName] = frozenset({"allocs_per_op", "bytes_per_op", "gc_cycles",
                                                "gc_pause_total_ns"})
    # The benchmarks run natively; the go command and the compiler cost their own.
    memory_appetite = Appetite(multiple=1.0, fixed_bytes=300 * 1024**2)

    def version(self) -> str:
        """"go version go1.19.8 linux/amd64" -> "go1.19.8"."""
        words = program_version(["go", "version"], INSTALL_HINT).split()
        return words[2] if len(words) > 2 else " ".join(words)

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        if options.extra_args:
            raise ConfigError("the go tool takes no tool_args",
                              hint=f"put go test flags ({' '.join(options.extra_args)}) in the command")
        wrapper = heap_profile_wrapper(logdir / HEAP_PROFILES)
        go_test = go_test_argv(command, options.env, wrapper)
        argv = ["/bin/sh", "-c", _TO_OUTPUT, str(logdir / OUTPUT), *go_test]
        return Launch(argv=argv, env=tool_env(options))

    def collect(self, logdir: Path, outcome: Outcome,
                options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        path = logdir / OUTPUT
        if not path.is_file() or path.stat().st_size == 0:
            return [incomplete(no_output_reason(self.name, logdir, outcome),
                               log_files=[path] if path.exists() else [])]
        profiles = _profiles_by_package(logdir / HEAP_PROFILES, options.alloc_wrappers)
        return package_records(read_packages(path), path,
                               heap_sites=lambda package: profiles.get(package.path, ()))

    def parse(self, paths: Sequence[Path], options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        """``go test -json`` output, or the text of ``go test -bench -benchmem``: one file per run."""
        records: list[ProcessRecord] = []
        for path in paths:
            found = package_records(read_packages(path), path)
            if [record.incomplete_reason for record in found] == [NO_BENCHMARK]:
                raise ParseError("no go test benchmark results in it", path=path,
                                 hint="give the output of go test -json -bench . -benchmem (or of go test "
                                      "-bench . -benchmem)")
            records += found
        return records


def _profiles_by_package(folder: Path, wrappers: AllocWrappers) -> dict[str, tuple[HeapSite, ...]]:
    """The heap sites of each test binary's profile, by the import path of the package it tested (the
    package of its benchmark functions)."""
    by_package: dict[str, list[HeapSite]] = {}
    for profile in sorted(folder.glob(f"*.{HEAP_PROFILE_SUFFIX}")) if folder.is_dir() else ():
        sites = heap_sites_from_profile(profile, wrappers, benchmarks_only=True)
        by_package.setdefault(_benchmarked_package(sites), []).extend(sites)
    return {package: top_heap_sites(sites) for package, sites in by_package.items()}


def _benchmarked_package(sites: tuple[HeapSite, ...]) -> str:
    """"example.com/m/shop.BenchmarkX" -> "example.com/m/shop" (an external test package's
    "shop_test" is the package it tests); "" when no stack names a benchmark."""
    for site in sites:
        for frame in site.frames:
            package, dot, name = (frame.function or "").rpartition(".")
            if dot and name.startswith("Benchmark"):
                return package.removesuffix("_test")
    return ""


GO = GoTool()
