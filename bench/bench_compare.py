"""Compare and report on 100,000 leak and error records: grouping by fingerprint, the comparison
and every renderer. Run: ``python bench/bench_compare.py [N]``; prints one line per step.

The records are built in memory (parsing is benchmarked elsewhere): N/2 leak records over N/4 sites
(each site seen twice, across two processes) and N/2 error records over N/4 sites, against a baseline
that knows half of the sites, so every path (new, known, fixed) does real work.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

from memgate.baselines.model import Baseline
from memgate.comparison import compare
from memgate.fingerprint import fingerprint, site_of
from memgate.records import Frame, Leak, MemError, ProcessRecord, SuiteRecord
from memgate.report.json import render_comparison
from memgate.report.markdown import render_markdown
from memgate.report.table import render_table

T = TypeVar("T")


def stack(index: int) -> tuple[Frame, ...]:
    return (Frame(function="malloc", object="/usr/lib/libasan.so.8"),
            Frame(function=f"site_{index}", file="src/module.c", line=index % 1000),
            Frame(function=f"caller_{index % 97}", file="src/caller.c", line=7),
            Frame(function="main", file="src/main.c", line=3))


def make_suite(records: int, offset: int = 0) -> SuiteRecord:
    sites = records // 4
    leaks, errors = [], []
    for i in range(sites):
        frames = stack(i + offset)
        leaks.append(Leak(kind="definite", bytes=16, blocks=1, stack=frames,
                          fingerprint=fingerprint("leak:definite", frames), site=site_of(frames)))
        errors.append(MemError(kind="InvalidRead", count=1, stack=frames,
                               fingerprint=fingerprint("error:InvalidRead", frames), site=site_of(frames)))
    processes = tuple(
        ProcessRecord(pid=pid, leaks=tuple(leaks), errors=tuple(errors), leak_check=True,
                      metrics={"leak_definite_bytes": 16 * sites, "leak_definite_blocks": sites,
                               "errors": sites})
        for pid in (1, 2)
    )
    return SuiteRecord(name="big", tool="valgrind", processes=processes,
                       metrics={"leak_definite_bytes": 32 * sites, "leak_definite_blocks": 2 * sites,
                                "errors": 2 * sites})


def timed(label: str, action: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = action()
    print(f"{label:<44} {time.perf_counter() - start:8.3f} s")
    return result


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    current = make_suite(records)
    # The baseline knows the second half of today's sites and as many that are gone (fixed).
    before = make_suite(records, offset=records // 8)
    baseline = timed(f"Baseline.from_suite ({records:,} records)", lambda: Baseline.from_suite(before))
    comparison = timed(f"compare ({records:,} records)", lambda: compare([current], {"big": baseline}))
    suite = comparison.suites[0]
    print(f"  sites: {len(suite.sites_with('new')):,} new, {len(suite.sites_with('known')):,} known, "
          f"{len(suite.sites_with('fixed')):,} fixed; verdict {comparison.verdict.value}")
    text = timed("render_markdown", lambda: render_markdown(comparison))
    print(f"  {len(text):,} characters")
    timed("render_table", lambda: render_table(comparison))
    timed("render_comparison (JSON)", lambda: render_comparison(comparison))
    timed("Baseline.to_json", baseline.to_json)


if __name__ == "__main__":
    main()
