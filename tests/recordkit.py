"""Build suite records directly for the unit tests of pure logic (compare, baselines, reports).

Fingerprints and sites are computed by memgate.fingerprint exactly as the parsers do, and leak and
error metrics are summed from the records the way a tool's summary would state them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from memgate.fingerprint import fingerprint, site_of
from memgate.metrics import LEAK_KINDS, LeakKind, MetricName, leak_metrics
from memgate.records import (
    Frame,
    Leak,
    MemError,
    ProcessRecord,
    SuiteRecord,
    SuiteStatus,
    TestFigures,
    combine_tests,
)


def stack(*functions: str, file: str = "prog.c") -> tuple[Frame, ...]:
    """malloc first (a runtime frame, left out of the fingerprint), then the given functions."""
    frames = [Frame(function="malloc", object="/usr/lib/x86_64-linux-gnu/libasan.so.8", address="0x7f01")]
    frames += [Frame(function=name, file=file, line=10 + i, address=f"0x40{i:04x}")
               for i, name in enumerate(functions)]
    return tuple(frames)


def leak(kind: LeakKind, size: int, blocks: int, *functions: str, test: str | None = None) -> Leak:
    frames = stack(*functions)
    return Leak(kind=kind, bytes=size, blocks=blocks, stack=frames,
                fingerprint=fingerprint(f"leak:{kind}", frames), site=site_of(frames), test=test)


def error(kind: str, *functions: str, count: int = 1, description: str = "") -> MemError:
    frames = stack(*functions)
    return MemError(kind=kind, count=count, stack=frames, description=description,
                    fingerprint=fingerprint(f"error:{kind}", frames), site=site_of(frames))


def leak_and_error_metrics(leaks: Iterable[Leak], errors: Iterable[MemError]) -> dict[MetricName, int]:
    leaks, errors = list(leaks), list(errors)
    metrics: dict[MetricName, int] = {}
    for kind in LEAK_KINDS:
        bytes_name, blocks_name = leak_metrics(kind)
        metrics[bytes_name] = sum(item.bytes for item in leaks if item.kind == kind)
        metrics[blocks_name] = sum(item.blocks for item in leaks if item.kind == kind)
    metrics["errors"] = sum(item.count for item in errors)
    return metrics


def suite(
    name: str = "unit",
    *,
    leaks: Iterable[Leak] = (),
    errors: Iterable[MemError] = (),
    metrics: Mapping[MetricName, int] | None = None,
    tool: str = "valgrind",
    tool_version: str | None = "3.19.0",
    status: SuiteStatus = SuiteStatus.OK,
    status_detail: str | None = None,
    complete: bool = True,
    leak_check: bool = True,
    tests: TestFigures | None = None,
) -> SuiteRecord:
    """One process holding ``leaks`` and ``errors``; ``metrics`` adds to (or overrides) the leak and
    error figures derived from them; ``tests``: figures the tool measured per test (the suite's
    per-test figures also hold those of the findings that name a test)."""
    leaks, errors = tuple(leaks), tuple(errors)
    all_metrics = leak_and_error_metrics(leaks, errors)
    if not leak_check:  # a tool that did not look for leaks reports no leak figures at all
        all_metrics = {"errors": all_metrics["errors"]}
    all_metrics.update(metrics or {})
    process = ProcessRecord(pid=100, metrics=all_metrics, leaks=leaks, errors=errors, leak_check=leak_check,
                            complete=complete, incomplete_reason=None if complete else "log truncated",
                            tests=tests or {})
    return SuiteRecord(name=name, tool=tool, tool_version=tool_version, status=status,
                       status_detail=status_detail, processes=(process,), metrics=all_metrics,
                       tests=combine_tests((process,)))
