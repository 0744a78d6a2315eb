"""What each memory tool costs, and what memgate adds on top: ``python bench/tool_cost.py``.

Part 1, the tools side by side in the same run. Every workload runs natively and under each tool, the
tools in a different order every round, and the median of the rounds is kept:

- ``start-up``: tests/programs/heapprog.c with no argument, a process that allocates nothing: the fixed
  cost a tool adds (milliseconds, native subtracted). The Valgrind tools and ASan pay it for every
  process of a suite; memusage's (memgate's Python wrapper) and heaptrack's once per suite command.
- ``demo``: the two test programs of examples/demo (test_list, test_strbuf), one after the other: a
  small C test suite, where start-up dominates.
- ``workload``: bench/programs/workload.c, allocation-heavy work (a hash map of 200,000 words, a realloc'd
  array, qsort, every block freed): the tool's cost per unit of work.

Each tool runs the way memgate runs it: the command line and environment its ``launch()`` returns
(memusage through memgate's standard-error splitter, Valgrind tools with ``--trace-children=yes``,
massif with ``--peak-inaccuracy=0``). ASan runs binaries built with ``-fsanitize=address`` and its
ratio is against the plain build. Programs are built like the demo's Makefile (``-g -O0``).

Part 2, memgate's own cost per test process: the wall time of ``memgate run`` (a new Python process,
as in CI) on a suite of K processes (a shell loop running examples/demo's test_list K times) minus the
wall time of the raw tool command for the same K processes, divided by K; also the same difference for
K = 1 (the fixed part: Python start-up, imports, the tool's ``--version``, the report), and the
in-process ``collect()`` time per process (parsing what the tool wrote). The same table gives the
tool's own cost per process of the loop (its raw time per process, less the native loop's). heaptrack
is left out: it traces only the process it starts (the shell), not the K test processes.

Prints figures only; nothing is asserted. Options: ``--rounds`` (default 3), ``--processes`` K
(default 100; ``--valgrind-processes``, default 20, for the Valgrind tools, whose 0.3 s start-up per
process makes large K slow), ``--scale`` of the workload (default 10), ``--tools``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from memgate.errors import ToolError
from memgate.proc import Outcome
from memgate.tools import get_tool
from memgate.tools.base import ToolOptions

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo"
TOOLS = ("native", "rusage", "memusage", "heaptrack", "massif", "dhat", "valgrind", "asan")
VALGRIND_TOOLS = frozenset({"massif", "dhat", "valgrind"})
LABEL = {"valgrind": "memcheck (valgrind)"}


@dataclass(frozen=True)
class Binaries:
    """The programs, plain and with ASan."""

    heapprog: Path
    heapprog_asan: Path
    test_list: Path
    test_list_asan: Path
    test_strbuf: Path
    test_strbuf_asan: Path
    workload: Path
    workload_asan: Path


def build(folder: Path) -> Binaries:
    def compile_c(name: str, sources: Sequence[Path], asan: bool) -> Path:
        output = folder / (name + ("_asan" if asan else ""))
        flags = ["-g", "-O0", "-fno-omit-frame-pointer", "-pthread"]
        flags += ["-fsanitize=address"] if asan else []
        subprocess.run(["gcc", *flags, "-o", str(output), *map(str, sources)], check=True)
        return output

    programs = {
        "heapprog": [ROOT / "tests" / "programs" / "heapprog.c"],
        "test_list": [DEMO / "tests" / "test_list.c", DEMO / "src" / "list.c"],
        "test_strbuf": [DEMO / "tests" / "test_strbuf.c", DEMO / "src" / "strbuf.c"],
        "workload": [ROOT / "bench" / "programs" / "workload.c"],
    }
    built = {}
    for name, sources in programs.items():
        built[name] = compile_c(name, sources, asan=False)
        built[f"{name}_asan"] = compile_c(name, sources, asan=True)
    return Binaries(**built)


def workloads(binaries: Binaries, scale: int) -> dict[str, tuple[list[list[str]], list[list[str]]]]:
    """name -> (plain commands, ASan commands), run one after the other."""
    return {
        "start-up": ([[str(binaries.heapprog)]], [[str(binaries.heapprog_asan)]]),
        "demo": ([[str(binaries.test_list)], [str(binaries.test_strbuf)]],
                 [[str(binaries.test_list_asan)], [str(binaries.test_strbuf_asan)]]),
        "workload": ([[str(binaries.workload), str(scale)]], [[str(binaries.workload_asan), str(scale)]]),
    }


def available(tools: Sequence[str]) -> list[str]:
    usable = []
    for name in tools:
        if name == "native":
            usable.append(name)
            continue
        try:
            get_tool(name).version()
        except ToolError as error:
            print(f"skipping {name}: {error.one_line()}", file=sys.stderr)
            continue
        usable.append(name)
    return usable


def launch(tool: str, command: list[str], logdir: Path) -> tuple[list[str], dict[str, str]]:
    if tool == "native":
        return command, dict(os.environ)
    launched = get_tool(tool).launch(command, logdir, ToolOptions())
    return launched.argv, {**os.environ, **launched.env}


def timed_run(argv: list[str], env: dict[str, str], cwd: Path, logdir: Path) -> float:
    with open(logdir / "stdout.log", "wb") as stdout, open(logdir / "stderr.log", "wb") as stderr:
        started = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                       check=False)
        return time.perf_counter() - started


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def run_workload(tool: str, commands: list[list[str]], work: Path) -> float:
    total = 0.0
    for index, command in enumerate(commands):
        logdir = fresh(work / f"{tool}-{index}")
        argv, env = launch(tool, command, logdir)
        total += timed_run(argv, env, work, logdir)
    return total


# --- part 1 ------------------------------------------------------------------------------------------


def tool_costs(tools: list[str], binaries: Binaries, rounds: int, scale: int, work: Path) -> None:
    times: dict[tuple[str, str], list[float]] = {}
    for round_index in range(rounds):
        order = tools[round_index % len(tools):] + tools[:round_index % len(tools)]
        for name, (plain, asan) in workloads(binaries, scale).items():
            for tool in order:
                commands = asan if tool == "asan" else plain
                times.setdefault((tool, name), []).append(run_workload(tool, commands, work))
        print(f"round {round_index + 1} of {rounds} done", file=sys.stderr)
    median = {key: statistics.median(values) for key, values in times.items()}
    rows = []
    for tool in tools:
        startup_ms = (median[(tool, "start-up")] - median[("native", "start-up")]) * 1000
        rows.append([
            LABEL.get(tool, tool),
            f"{startup_ms:+.0f}" if tool != "native" else "0",
            f"{median[(tool, 'demo')]:.3f}",
            f"{median[(tool, 'demo')] / median[('native', 'demo')]:.1f}x",
            f"{median[(tool, 'workload')]:.3f}",
            f"{median[(tool, 'workload')] / median[('native', 'workload')]:.1f}x",
        ])
    print(f"\nTools side by side: median of {rounds} rounds, wall seconds and ratio to native\n")
    print(tabulate(rows, headers=["tool", "start-up ms/process", "demo s", "demo ratio", "workload s",
                                  "workload ratio"], tablefmt="github", disable_numparse=True))


# --- part 2 ------------------------------------------------------------------------------------------


def overhead(tools: list[str], binaries: Binaries, rounds: int, processes: int, valgrind_processes: int,
             work: Path) -> None:
    native = statistics.median(run_loop("native", binaries.test_list, processes, fresh(work / f"native-{i}"))
                               for i in range(rounds))
    rows = [["native", str(processes), f"{native:.3f}", "-", "-", "-", "-", "-", "-"]]
    for tool in tools:
        if tool in ("native", "heaptrack"):
            continue
        k = valgrind_processes if tool in VALGRIND_TOOLS else processes
        program = binaries.test_list_asan if tool == "asan" else binaries.test_list
        many = per_k(tool, program, k, rounds, work)
        one = per_k(tool, program, 1, rounds, work)
        marginal = ((many.memgate - many.raw) - (one.memgate - one.raw)) / (k - 1) * 1000
        rows.append([
            LABEL.get(tool, tool), str(k), f"{many.raw:.3f}",
            f"{(many.raw / k - native / processes) * 1000:.1f}",
            f"{many.memgate:.3f}", f"{(many.memgate - many.raw) / k * 1000:.1f}",
            f"{(one.memgate - one.raw) * 1000:.0f}", f"{marginal:.2f}", f"{many.collect / k * 1000:.2f}",
        ])
        print(f"overhead of {tool} measured", file=sys.stderr)
    print(f"\nmemgate's own cost: `memgate run` of a suite of K processes vs the raw tool command, median of "
          f"{rounds} rounds\n")
    print(tabulate(rows, headers=["tool", "K", "raw s", "tool ms/process", "memgate run s",
                                  "(memgate - raw) / K ms", "fixed ms (K = 1)", "per extra process ms",
                                  "collect() ms/process"],
                   tablefmt="github", disable_numparse=True))


def run_loop(tool: str, program: Path, k: int, folder: Path) -> float:
    """The raw tool command (or none, for native) running ``program`` K times from a shell loop."""
    logdir = fresh(folder / "raw")
    argv, env = launch(tool, ["/bin/sh", "-c", loop_command(program, k)], logdir)
    return timed_run(argv, env, folder, logdir)


def loop_command(program: Path, k: int) -> str:
    return f"for i in $(seq {k}); do {program} >/dev/null; done"


@dataclass(frozen=True)
class Overhead:
    raw: float
    memgate: float
    collect: float


def per_k(tool: str, program: Path, k: int, rounds: int, work: Path) -> Overhead:
    folder = fresh(work / f"overhead-{tool}-{k}")
    config = folder / "memgate.toml"
    config.write_text(f'artifacts_dir = "artifacts"\n[[suite]]\nname = "loop"\n'
                      f'command = "{loop_command(program, k)}"\ntool = "{tool}"\nshell = true\n'
                      'timeout = "1h"\n')
    raw, memgate, collect = [], [], []
    for _ in range(rounds):
        raw.append(run_loop(tool, program, k, folder))
        started = time.perf_counter()
        get_tool(tool).collect(folder / "raw", Outcome(exit_code=0))
        collect.append(time.perf_counter() - started)
        memgate_argv = [sys.executable, "-m", "memgate", "run", "--config", str(config), "--jobs", "1",
                        "--json", str(folder / "report.json")]
        started = time.perf_counter()
        subprocess.run(memgate_argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
        memgate.append(time.perf_counter() - started)
    return Overhead(statistics.median(raw), statistics.median(memgate), statistics.median(collect))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=100)
    parser.add_argument("--valgrind-processes", type=int, default=20)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated; native is always run")
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args(argv)
    wanted = ["native", *(name for name in args.tools.split(",") if name and name != "native")]
    tools = available(wanted)
    with tempfile.TemporaryDirectory(prefix="memgate-tool-cost-") as temp:
        work = Path(temp)
        binaries = build(fresh(work / "bin"))
        print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}", file=sys.stderr)
        tool_costs(tools, binaries, args.rounds, args.scale, work)
        if not args.skip_overhead:
            overhead(tools, binaries, args.rounds, args.processes, args.valgrind_processes, work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
