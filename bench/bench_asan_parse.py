"""Parse speed and peak memory of the ASan/LSan parser on large logs made by repeating real reports.

Run: ``python bench/bench_asan_parse.py [MEGABYTES]`` (default 256). For each input it prints the
size, the wall and CPU time with MB/s (10^6 bytes per second) for each, and the peak RSS of a fresh
process that did nothing but parse it (CPU time is the steadier figure on a busy machine).
Inputs, each built from a saved real log of tests/data/asan:

- ``leak-reports``: clang ASan's leak report of memprog (4 records, 4 frames each) repeated as the
  successive reports of one process (what ``__lsan_do_recoverable_leak_check()`` in a loop prints),
  every repetition with its own pcs, so no frame is parsed from the cache;
- ``leak-records``: one leak report with the same records repeated, pcs varied: one record per
  repetition stays in memory (what a process with that many distinct leak sites gives);
- ``distinct-sites``: the same, but every repetition's functions renamed: no frame, stack or site
  repeats, the worst case for the parser's caches. Its records all stay in memory (they are the
  result), so this input is capped at 32 MB (about 68,000 distinct leak sites);
- ``error-reports``: gcc's ``halt_on_error=0`` log (5 error reports with their shadow-byte maps and
  a leak report) repeated without its exit statistics: mostly lines the parser skips;
- ``lsan-verbose``: gcc LSan's leaks log, with its ``verbosity=2`` lines, repeated as is (it has no
  exit statistics).
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "asan"
sys.path.insert(0, str(ROOT))

_PC = re.compile(r"(#\d+ 0x)([0-9a-f]+)")


def _with_pcs_of(text: str, repetition: int) -> str:
    """The same frames at other pcs: what another build or another call site prints."""
    return _PC.sub(lambda match: f"{match[1]}{int(match[2], 16) + repetition * 16:x}", text)


def leak_reports() -> Iterator[str]:
    text = (DATA / "clang-asan-leaks.log").read_text()
    report = text[: text.index("AddressSanitizer exit stats:")]
    for repetition in range(sys.maxsize):
        yield _with_pcs_of(report, repetition)


def leak_records() -> Iterator[str]:
    text = (DATA / "clang-asan-leaks.log").read_text()
    start, end = text.index("Direct leak of"), text.index("SUMMARY:")
    yield text[:start]
    for repetition in range(sys.maxsize):
        yield _with_pcs_of(text[start:end], repetition)


def distinct_sites() -> Iterator[str]:
    """Every record its own call site: function names changed in each repetition."""
    text = (DATA / "clang-asan-leaks.log").read_text()
    start, end = text.index("Direct leak of"), text.index("SUMMARY:")
    records = _with_pcs_of(text[start:end], 0)
    yield text[:start]
    for repetition in range(sys.maxsize):
        yield re.sub(r" in (leak_\w+|main) ", rf" in \1_{repetition} ", records)


def repeated(name: str) -> Callable[[], Iterator[str]]:
    """The log repeated, its exit statistics left out: they end a process, and a file with several
    processes' output is refused (the parser cannot tell them apart)."""

    def blocks() -> Iterator[str]:
        text = (DATA / name).read_text()
        text = text.split("AddressSanitizer exit stats:", 1)[0]
        while True:
            yield text

    return blocks


WORST_CASE = "distinct-sites"  # every record a new site: the records are the cost, not the reading
DISTINCT_SITES_CAP = 32.0  # megabytes


def size_of(name: str, megabytes: float) -> float:
    """The megabytes of input ``name`` for a run asking ``megabytes``: the worst case is capped."""
    return min(megabytes, DISTINCT_SITES_CAP) if name == WORST_CASE else megabytes
INPUTS: dict[str, Callable[[], Iterator[str]]] = {
    "leak-reports": leak_reports,
    "leak-records": leak_records,
    WORST_CASE: distinct_sites,
    "error-reports": repeated("gcc-asan-recover.log"),
    "lsan-verbose": repeated("gcc-lsan-leaks.log"),
}


def _leak_summary(repetitions: int) -> str:
    """The SUMMARY line of a leak report holding ``repetitions`` copies of the saved log's records."""
    text = (DATA / "clang-asan-leaks.log").read_text()
    leaked = re.search(r"SUMMARY: AddressSanitizer: (\d+) byte\(s\) leaked in (\d+) allocation", text)
    assert leaked is not None
    return (f"SUMMARY: AddressSanitizer: {int(leaked[1]) * repetitions} byte(s) leaked in "
            f"{int(leaked[2]) * repetitions} allocation(s).\n")


# The line that ends the inputs whose blocks are the records of one report (the first block is the
# report's header), given the records' repetitions: every input is a complete log, as a run writes it.
CLOSINGS: dict[str, Callable[[int], str]] = {"leak-records": _leak_summary, WORST_CASE: _leak_summary}


def write_input(path: Path, name: str, size: int) -> int:
    """Input ``name`` of about ``size`` bytes at ``path``, a complete log; its size in bytes."""
    written, count = 0, 0
    with path.open("w", encoding="utf-8") as handle:
        for count, block in enumerate(INPUTS[name](), start=1):  # noqa: B007 - count is used below
            handle.write(block)
            written += len(block.encode())
            if written >= size:
                break
        if name in CLOSINGS:
            closing = CLOSINGS[name](count - 1)
            handle.write(closing)
            written += len(closing.encode())
    return written


def parse_only(path: Path) -> None:
    """The measured part, in a process of its own so that its peak RSS is the parser's."""
    from memgate.gcpause import collector_paused
    from memgate.tools.asan import ASAN

    started, cpu_started = time.perf_counter(), time.process_time()
    with collector_paused():  # as memgate parses (runner, memgate parse)
        records = ASAN.parse([path])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    record = records[0]
    print(f"{elapsed:.6f} {cpu:.6f} {peak} {len(record.leaks)} {len(record.errors)} {record.complete}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--parse":
        parse_only(Path(sys.argv[2]))
        return
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 256.0
    baseline = subprocess.run([sys.executable, "-c", "import memgate.tools.asan, resource; "
                               "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"],
                              capture_output=True, text=True, check=True, cwd=ROOT)
    print(f"interpreter with memgate.tools.asan imported: {int(baseline.stdout) / 2**20:.1f} MiB RSS")
    print(f"{'input':<14} {'MB':>6} {'wall s':>7} {'MB/s':>6} {'CPU s':>6} {'MB/s':>6} {'peak RSS':>10} "
          f"{'leaks':>7} {'errors':>7}")
    with tempfile.TemporaryDirectory() as temporary:
        for name in INPUTS:
            path = Path(temporary) / f"asan.{name}"
            size = write_input(path, name, int(size_of(name, megabytes) * 1e6))
            result = subprocess.run([sys.executable, __file__, "--parse", str(path)], capture_output=True,
                                    text=True, check=True, cwd=ROOT)
            elapsed, cpu, peak, leaks, errors, _ = result.stdout.split()
            written = size / 1e6
            print(f"{name:<14} {written:>6.1f} {float(elapsed):>7.2f} {written / float(elapsed):>6.1f} "
                  f"{float(cpu):>6.2f} {written / float(cpu):>6.1f} {int(peak) / 2**20:>6.1f} MiB "
                  f"{int(leaks):>7,} {int(errors):>7,}")
            path.unlink()


if __name__ == "__main__":
    main()
