"""memgate's benchmarks in one command: ``python bench/run.py [--full]``.

Prints one table: each figure next to what it is measured against, in the same run (so that the
load of the machine, which is shared, weighs on both), their ratio, and the target (issues 5 and
16). It reuses the benchmark modules beside it:

- parse throughput (bench_valgrind_parse): memcheck XML on memgate's stdlib and lxml readers against
  bare libxml2 (an lxml parser whose target has no callbacks: every byte read and checked, nothing
  built; memgate's lxml reader does that and its own scan, so this is its floor) and
  ``xml.etree.ElementTree.parse`` of the whole tree of the same file, both inputs (``shallow``, the
  worst case, and ``deep``); ASan text (bench_asan_parse), every input a complete log ending with its
  SUMMARY line (an input the parser finds incomplete stops the bench), against a plain Python
  ``for line in file`` over the same file (a text log has no tree parse to compare with: reading its
  lines is the floor).
  MB/s are 10^6 bytes per CPU second (user + system) of the parse, timed inside its process (start-up
  and imports left out); CPU time is the figure a busy machine disturbs least (wall seconds are given
  too). Each parse, the references' included, runs ``--rounds`` times in fresh processes, interleaved,
  and its fastest run is kept: other work on the machine only ever adds time (the same parse measured
  47 to 80 MB/s in three runs here while a fuzzer ran on the other core);
- peak RSS of the memcheck readers (and of the ASan parser) on a large log (100 MB here, 1 GiB with
  ``--full``), next to the interpreter with the reader imported, and the whole-tree parse's peak on
  the throughput file;
- the summary of 100,000 leak and error records (bench_compare): the comparison against a baseline,
  next to building those records (the full pass of the cyclic collector that building them makes
  due is run before the comparison is timed, and its time shown: left to fall inside the
  comparison, it adds 0.7-0.8 s that belong to the 400,000 objects built before);
- CLI start-up: medians of ``memgate --version``, ``python -c pass``, ``python -c "import memgate"``
  and ``memgate run`` / ``memgate check`` of one suite running ``/bin/true`` (rusage), runs
  interleaved, in a fresh venv where ``pip install .`` put memgate (what the README's set-up gives
  a user), next to this interpreter's own ``python -c pass`` and ``memgate --version`` (site .pth
  files and an editable install's import hook can make these 40 ms or more before memgate does
  anything);
- memgate's cost per test process (tool_cost: ``memgate run`` of a shell loop of K processes against
  the raw tool command, the fixed part at K = 1 taken out; the fastest of the rounds), and
  ``collect()``'s parse time per process, for ASan and rusage (memcheck too with ``--full``);
- parallel suites (parallel): ``memgate run --jobs 2`` against ``--jobs 1`` on 24 memcheck processes,
  next to the raw tool commands of the same suites two at a time against one by one (the speed-up
  the machine allows at that moment).

Nothing is asserted: the "meets" column compares with the target and the figures go in the notes.
``--only`` runs some sections (parse, rss, summary, startup, overhead, parallel).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import bench_asan_parse  # noqa: E402
import bench_compare  # noqa: E402
import bench_valgrind_parse  # noqa: E402
import parallel  # noqa: E402
import tool_cost  # noqa: E402
from tabulate import tabulate  # noqa: E402

MiB = 2**20
SECTIONS = ("parse", "rss", "summary", "startup", "overhead", "parallel")


@dataclass(frozen=True)
class Row:
    measure: str
    measured: str
    against: str  # what the figure is measured against, and its value
    ratio: str
    target: str
    meets: str  # "yes", "no" or "-" (no target)


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "NO")


# --- parse throughput ---------------------------------------------------------------------------------


def parse_rows(size_mb: int, rounds: int, work: Path) -> list[Row]:
    rows: list[Row] = []
    for name, source in bench_valgrind_parse.INPUTS.items():
        path = work / f"memcheck-{name}.xml"
        expected = bench_valgrind_parse.build(path, size_mb * 10**6, source)
        megabytes = path.stat().st_size / 1e6
        fastest = _fastest_xml(("etree-full", "libxml2", "stdlib", "lxml"), path, rounds)
        whole_cpu, floor_cpu = fastest["etree-full"].cpu, fastest["libxml2"].cpu
        for mode, target in (("stdlib", 25.0), ("lxml", 75.0)):  # issue 5's 25; issue 16's 75
            result = fastest[mode]
            _check_figures(mode, result.found, expected)
            cpu, wall = result.cpu, result.wall
            rate = megabytes / cpu
            rows.append(Row(
                f"memcheck XML, {mode} reader ({name}, {megabytes:.0f} MB)",
                f"{rate:.1f} MB/s ({megabytes / wall:.1f} wall)",
                f"bare libxml2 (lxml, no callbacks): {megabytes / floor_cpu:.1f} MB/s; whole-tree "
                f"ElementTree: {megabytes / whole_cpu:.1f} MB/s",
                f"{cpu / floor_cpu:.2f}x bare libxml2's time, {whole_cpu / cpu:.2f}x faster than the tree",
                f">= {target:g} MB/s", verdict(rate >= target)))
        path.unlink()
    for name in bench_asan_parse.INPUTS:
        path = work / f"asan.{name}"
        megabytes = bench_asan_parse.size_of(name, size_mb)
        size = bench_asan_parse.write_input(path, name, int(megabytes * 1e6))
        cpu, floor = math.inf, math.inf
        for _ in range(rounds):
            _wall, seconds, _peak, leaks = asan_parse(path)
            cpu = min(cpu, seconds)
            floor = min(floor, line_read_seconds(path))
        rate = size / 1e6 / cpu
        measured, goal, meets = f"{rate:.1f} MB/s", ">= 100 MB/s", verdict(rate >= 100)
        if name == bench_asan_parse.WORST_CASE:  # every record a new site: bound by making records
            measured += f" ({leaks / cpu:,.0f} records/s)"
        rows.append(Row(f"ASan text ({name}, {size / 1e6:.0f} MB)", measured,
                        f"for line in file: {size / 1e6 / floor:.0f} MB/s", f"{cpu / floor:.1f}x slower",
                        goal, meets))
        path.unlink()
    return rows


def _fastest_xml(modes: Sequence[str], path: Path,
                 rounds: int) -> dict[str, bench_valgrind_parse.Measure]:
    """Each mode's fastest run by CPU time, the modes' runs interleaved."""
    fastest: dict[str, bench_valgrind_parse.Measure] = {}
    for _ in range(rounds):
        for mode in modes:
            result = bench_valgrind_parse.measure(mode, path)
            if mode not in fastest or result.cpu < fastest[mode].cpu:
                fastest[mode] = result
    return fastest


def _check_figures(mode: str, found: dict[str, int], expected: dict[str, int]) -> None:
    wrong = {key: (found.get(key), value) for key, value in expected.items() if found.get(key) != value}
    if wrong:
        raise SystemExit(f"{mode}: wrong figures (found, expected): {wrong}")


def asan_parse(path: Path) -> tuple[float, float, int, int]:
    """(wall s, CPU s, peak RSS, leak records) of ``ASAN.parse`` in a process of its own
    (bench_asan_parse)."""
    result = subprocess.run([sys.executable, bench_asan_parse.__file__, "--parse", str(path)],
                            capture_output=True, text=True, check=True, cwd=ROOT)
    elapsed, cpu, peak, leaks, _errors, complete = result.stdout.split()
    if complete != "True":  # a figure on a log cut short would measure the wrong thing
        raise SystemExit(f"{path.name}: the parser found this input incomplete; the bench's inputs must "
                         "be complete logs, ending with their SUMMARY line")
    return float(elapsed), float(cpu), int(peak), int(leaks)


def line_read_seconds(path: Path) -> float:
    """CPU seconds of Python reading ``path`` line by line as text (the parser's own decoding)."""
    code = ("import sys, time\nstart = time.process_time()\n"
            "with open(sys.argv[1], encoding='utf-8', errors='surrogateescape') as lines:\n"
            "    for line in lines:\n        pass\nprint(time.process_time() - start)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                            check=True)
    return float(result.stdout)


# --- peak RSS on a large log --------------------------------------------------------------------------


def rss_rows(size_mb: int, whole_mb: int, work: Path) -> list[Row]:
    rows: list[Row] = []
    path = work / "memcheck-large.xml"
    expected = bench_valgrind_parse.build(path, size_mb * 10**6, bench_valgrind_parse.INPUTS["shallow"])
    megabytes = path.stat().st_size / 1e6
    alone = bench_valgrind_parse.measure("import", path)
    small = work / "memcheck-small.xml"
    bench_valgrind_parse.build(small, whole_mb * 10**6, bench_valgrind_parse.INPUTS["shallow"])
    whole = bench_valgrind_parse.measure("etree-full", small)
    small_mb = small.stat().st_size / 1e6
    small.unlink()
    for mode in ("stdlib", "lxml"):
        result = bench_valgrind_parse.measure(mode, path)
        _check_figures(mode, result.found, expected)
        peak = result.peak_rss / MiB
        rows.append(Row(
            f"peak RSS, memcheck XML {mode} reader ({megabytes:,.0f} MB)", f"{peak:.1f} MiB",
            f"interpreter + reader imported: {alone.peak_rss / MiB:.1f} MiB; whole tree of "
            f"{small_mb:.0f} MB: {whole.peak_rss / MiB:.0f} MiB",
            f"+{peak - alone.peak_rss / MiB:.1f} MiB for the parse", "<= 64 MiB", verdict(peak <= 64)))
    path.unlink()
    asan_path = work / "asan-large.log"
    size = bench_asan_parse.write_input(asan_path, "leak-reports", size_mb * 10**6)
    _elapsed, _cpu, peak_bytes, _leaks = asan_parse(asan_path)
    asan_path.unlink()
    rows.append(Row(f"peak RSS, ASan parser (leak-reports, {size / 1e6:,.0f} MB)",
                    f"{peak_bytes / MiB:.1f} MiB", "-", "-", "<= 64 MiB", verdict(peak_bytes / MiB <= 64)))
    return rows + parse_command_rows(size_mb, work)


def parse_command_rows(size_mb: int, work: Path) -> list[Row]:
    """``memgate parse`` end to end (the parser and its JSON on stdout), next to the parser alone in
    the same run: the JSON is streamed record by record, so it adds no memory that grows with the log."""
    rows: list[Row] = []
    for name in ("leak-records", bench_asan_parse.WORST_CASE):
        path = work / f"asan-parse.{name}"
        size = bench_asan_parse.write_input(path, name, int(bench_asan_parse.size_of(name, size_mb) * 1e6))
        _elapsed, _cpu, parser_peak, leaks = asan_parse(path)
        command = [*memgate_command(), "parse", "--tool", "asan", str(path)]
        with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
            _pid, status, usage = os.wait4(process.pid, 0)
        path.unlink()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"memgate parse of the {name} input failed: {process.stderr}")
        peak = usage.ru_maxrss * 1024 / MiB
        rows.append(Row(f"peak RSS, memgate parse ({name}, {size / 1e6:,.0f} MB, {leaks:,} leaks)",
                        f"{peak:.1f} MiB", f"the parser alone: {parser_peak / MiB:.1f} MiB",
                        f"+{peak - parser_peak / MiB:.1f} MiB for the JSON",
                        "<= 64 MiB" if name != bench_asan_parse.WORST_CASE else "bounded by the sites",
                        verdict(peak <= 64) if name != bench_asan_parse.WORST_CASE else "-"))
    return rows


# --- 100k-record summary ------------------------------------------------------------------------------


def summary_rows(records: int) -> list[Row]:
    from memgate.baselines.model import Baseline
    from memgate.comparison import compare
    from memgate.report.markdown import render_markdown
    from memgate.report.table import render_table

    started = time.perf_counter()
    current = bench_compare.make_suite(records)
    before = bench_compare.make_suite(records, offset=records // 8)
    build = time.perf_counter() - started
    baseline = Baseline.from_suite(before)
    # Building the inputs makes a full pass of the cyclic collector due (0.7-0.8 s over their
    # objects): settled here, or it falls inside compare() when its pause of the collector ends.
    started = time.perf_counter()
    gc.collect()
    settled = time.perf_counter() - started
    started = time.perf_counter()
    comparison = compare([current], {"big": baseline})
    summary = time.perf_counter() - started
    started = time.perf_counter()
    render_table(comparison)
    render_markdown(comparison)
    comparison.model_dump_json()
    reports = time.perf_counter() - started
    return [
        Row(f"summary of {records:,} records (compare)", f"{summary:.2f} s",
            f"building them (2 x {records:,}): {build:.2f} s, then a full gc.collect(): {settled:.2f} s",
            f"{summary / build:.2f}x", "<= 2 s", verdict(summary <= 2)),
        Row("  then table + Markdown + JSON of it", f"{reports:.2f} s", "-", "-", "-", "-"),
    ]


# --- CLI start-up -------------------------------------------------------------------------------------


def memgate_command() -> list[str]:
    """The console script next to this interpreter (what a user runs), else ``python -m memgate``."""
    script = Path(sys.executable).parent / "memgate"
    return [str(script)] if script.exists() else [sys.executable, "-m", "memgate"]


def installed_venv(work: Path) -> Path | None:
    """A fresh venv with memgate installed as the README installs it (``pip install .``), or None
    when pip cannot install it here (no package index). This interpreter may start slowly for
    reasons of its own (site .pth files that import packages, an editable install's import hook);
    a user's venv has none of them."""
    venv = work / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)], check=True,
                       capture_output=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        print(f"(no venv for the start-up figures: {error})", file=sys.stderr)
        return None
    return venv / "bin"


def startup_rows(runs: int, work: Path) -> list[Row]:
    config = work / "startup" / "memgate.toml"
    config.parent.mkdir()
    config.write_text('artifacts_dir = "artifacts"\n[[suite]]\nname = "true"\ncommand = ["/bin/true"]\n'
                      'tool = "rusage"\n')
    commands = {"/bin/true": ["/bin/true"], "python -c pass": [sys.executable, "-c", "pass"],
                "memgate --version": [*memgate_command(), "--version"]}
    venv = installed_venv(work)
    if venv is not None:
        memgate, one_suite = str(venv / "memgate"), ["--config", str(config), "--jobs", "1"]
        commands |= {
            "venv: python -c pass": [str(venv / "python"), "-c", "pass"],
            "venv: python -c 'import memgate'": [str(venv / "python"), "-c", "import memgate"],
            "venv: memgate --version": [memgate, "--version"],
            "venv: memgate run (1 suite, /bin/true)": [memgate, "run", *one_suite],
            "venv: memgate check (1 suite, /bin/true)": [memgate, "check", *one_suite],
        }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_index in range(runs):
        names = list(commands) if round_index % 2 == 0 else list(reversed(commands))
        for name in names:
            started = time.perf_counter()
            subprocess.run(commands[name], cwd=config.parent, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    return [_startup_row(name, ms, median, runs) for name, ms in median.items() if name != "/bin/true"]


def _startup_row(name: str, ms: float, median: dict[str, float], runs: int) -> Row:
    """A suite run (memgate run/check of /bin/true) against /bin/true itself: what memgate adds to
    the tool's own run (target <= 100 ms); the other commands against the bare interpreter."""
    if name.endswith("(1 suite, /bin/true)"):
        bare_name, target = "/bin/true", 100.0
    else:
        bare_name = "venv: python -c pass" if name.startswith("venv: ") else "python -c pass"
        target = 50.0 if name.endswith("memgate --version") else math.nan
    if name == bare_name:
        return Row(f"start-up: {name} (median of {runs})", f"{ms:.0f} ms", "-", "-", "-", "-")
    added = ms - median[bare_name]
    if math.isnan(target):
        goal, meets = "-", "-"
    elif bare_name == "/bin/true":
        goal, meets = f"<= {target:.0f} ms added", verdict(added <= target)
    else:
        goal, meets = f"<= {target:.0f} ms", verdict(ms <= target)
    return Row(f"start-up: {name} (median of {runs})", f"{ms:.0f} ms",
               f"{bare_name}: {median[bare_name]:.0f} ms", f"+{added:.0f} ms", goal, meets)


# --- per-process overhead -----------------------------------------------------------------------------


def overhead_rows(tools: Sequence[str], rounds: int, processes: int, valgrind_processes: int,
                  work: Path) -> list[Row]:
    binaries = tool_cost.build(tool_cost.fresh(work / "bin"))
    rows: list[Row] = []
    for tool in tool_cost.available(tools):
        k = valgrind_processes if tool in tool_cost.VALGRIND_TOOLS else processes
        program = binaries.test_list_asan if tool == "asan" else binaries.test_list
        many, one = fastest_rounds(tool, program, k, rounds, work)
        marginal = ((many.memgate - many.raw) - (one.memgate - one.raw)) / (k - 1) * 1000
        raw_per_process = many.raw / k * 1000
        rows.append(Row(f"memgate per test process, {tool} (K = {k})", f"{marginal:+.2f} ms",
                        f"raw {tool} run: {raw_per_process:.1f} ms/process",
                        f"{marginal / raw_per_process:+.1%}", "<= 2 ms", verdict(marginal <= 2)))
        rows.append(Row(f"  of which collect() parsing, {tool}", f"{many.collect / k * 1000:.2f} ms",
                        f"fixed cost at K = 1: {(one.memgate - one.raw) * 1000:.0f} ms", "-", "-", "-"))
    return rows


def fastest_rounds(tool: str, program: Path, k: int, rounds: int,
                   work: Path) -> tuple[tool_cost.Overhead, tool_cost.Overhead]:
    """tool_cost's measure for K and for 1 process, rounds interleaved, the fastest round of each
    figure kept: load from other work only ever adds time, and a difference of two noisy medians
    divided by K is mostly noise."""
    samples: dict[int, list[tool_cost.Overhead]] = {k: [], 1: []}
    for _ in range(rounds):
        for count in (k, 1):
            samples[count].append(tool_cost.per_k(tool, program, count, 1, work))
    fastest = {count: tool_cost.Overhead(min(s.raw for s in runs), min(s.memgate for s in runs),
                                         min(s.collect for s in runs))
               for count, runs in samples.items()}
    return fastest[k], fastest[1]


# --- parallel suites ----------------------------------------------------------------------------------


def parallel_rows(rounds: int, work: Path) -> list[Row]:
    if shutil.which("valgrind") is None:
        return [Row("parallel suites", "skipped: valgrind is not installed", "-", "-", ">= 1.8x", "-")]
    result = parallel.measure("valgrind", suites=4, processes=6, jobs=2, rounds=rounds,
                              work=work / "parallel")
    return [
        Row(f"parallel: {result.suites} memcheck suites, {result.processes} processes, --jobs 2",
            f"{result.parallel:.2f} s", f"--jobs 1: {result.serial:.2f} s", f"{result.ratio:.2f}x faster",
            ">= 1.8x", verdict(result.ratio >= 1.8)),
        Row("  the raw valgrind commands, 2 at once", f"{result.raw_parallel:.2f} s",
            f"one by one: {result.raw_serial:.2f} s",
            f"{result.raw_ratio:.2f}x faster (the machine's ceiling now)", "-", "-"),
    ]


# --- main ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--full", action="store_true",
                        help="1 GiB for the RSS figure, 200 MB parse inputs, more rounds, memcheck overhead")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--rounds", type=int,
                        help="rounds of the parse, overhead and parallel runs (default 3, 5 with --full)")
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    rounds = args.rounds or (5 if args.full else 3)
    parse_mb, rss_mb = (200, 1074) if args.full else (50, 100)
    sections: dict[str, Callable[[Path], list[Row]]] = {
        "parse": lambda work: parse_rows(parse_mb, rounds, work),
        "rss": lambda work: rss_rows(rss_mb, parse_mb, work),
        "summary": lambda work: summary_rows(100_000),
        "startup": lambda work: startup_rows(31 if args.full else 21, work),
        "overhead": lambda work: overhead_rows(["asan", "rusage", *(["valgrind"] if args.full else [])],
                                               rounds, 100, 20, work),
        "parallel": lambda work: parallel_rows(rounds, work),
    }
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, load average before: "
          f"{os.getloadavg()[0]:.2f}{' (full run)' if args.full else ' (quick run; --full for 1 GiB)'}",
          file=sys.stderr)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="memgate-bench-") as temporary:
        for name in SECTIONS:
            if name in wanted:
                started = time.perf_counter()
                rows += sections[name](Path(temporary))
                print(f"{name}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    table = [[row.measure, row.measured, row.against, row.ratio, row.target, row.meets] for row in rows]
    print(tabulate(table, headers=["measure", "measured", "side by side", "ratio", "target", "meets"],
                   tablefmt="github", disable_numparse=True))
    print(f"\nload average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (other work on the "
          "machine slows the parallel and wall-time figures)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
