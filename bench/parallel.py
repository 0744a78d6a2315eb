"""Parallel suites: the wall time of ``memgate run --jobs 1`` against ``--jobs 2`` (or more) on the
same suites, in the same run: ``python bench/parallel.py``.

The suites: ``--suites`` (default 4) identical suites, each a shell loop running examples/demo's
test_list ``--processes`` times (default 6: 24 test processes in all) under ``--tool`` (default
valgrind, memcheck: the tool whose cost makes parallel suites worth having). Each configuration runs
``--rounds`` times (default 3), alternating, and the median is kept. The times are of the whole
``memgate run`` command, a new Python process as in CI: start-up, the tool's version check, the
suites, parsing and the report; nothing is subtracted. The memory budget is the machine's own (see
memgate/runner/schedule.py): on a machine with less than 1.5 GiB available, two memcheck suites do not run
at once, and the figure shows it.

Side by side, in the same rounds: the raw tool commands of the same suites (what memgate runs, without
memgate), one after the other and ``--jobs`` at a time: the speed-up the machine allows at that moment
(other work on it takes cores from the suites), which memgate's own can be read against.

Prints figures only; nothing is asserted. The target (issue 5) is >= 1.8x on 2 workers; the load
average before and after is printed.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memgate.tools import get_tool
from memgate.tools.base import ToolOptions

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo"


@dataclass(frozen=True)
class Speedup:
    tool: str
    suites: int
    processes: int  # test processes in all
    jobs: int
    serial: float  # median wall seconds, --jobs 1
    parallel: float  # median wall seconds, --jobs N
    raw_serial: float  # median wall seconds of the raw tool commands one after the other
    raw_parallel: float  # the same, N at a time
    rounds: int

    @property
    def ratio(self) -> float:
        return self.serial / self.parallel

    @property
    def raw_ratio(self) -> float:
        return self.raw_serial / self.raw_parallel


def build_test_list(folder: Path) -> Path:
    program = folder / "test_list"
    subprocess.run(["gcc", "-g", "-O0", "-fno-omit-frame-pointer", "-o", str(program),
                    str(DEMO / "tests" / "test_list.c"), str(DEMO / "src" / "list.c")], check=True)
    return program


def loop_command(program: Path, processes: int) -> str:
    return f"for i in $(seq {processes}); do {program} >/dev/null; done"


def write_config(folder: Path, program: Path, tool: str, suites: int, processes: int) -> Path:
    loop = loop_command(program, processes)
    config = folder / "memgate.toml"
    config.write_text('artifacts_dir = "artifacts"\n' + "".join(
        f'[[suite]]\nname = "suite-{index}"\ntool = "{tool}"\nshell = true\ncommand = "{loop}"\n'
        'timeout = "1h"\n' for index in range(1, suites + 1)))
    return config


def memgate_run(config: Path, jobs: int) -> float:
    command = [sys.executable, "-m", "memgate", "run", "--config", str(config), "--jobs", str(jobs),
               "--json", str(config.parent / f"report-{jobs}.json")]
    started = time.perf_counter()
    subprocess.run(command, cwd=config.parent, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def raw_run(tool: str, command: str, suites: int, jobs: int, folder: Path) -> float:
    """The suites' raw tool commands, ``jobs`` at a time (each in its own log folder)."""
    launches = []
    for index in range(suites):
        logdir = folder / f"raw-{index}"
        shutil.rmtree(logdir, ignore_errors=True)
        logdir.mkdir(parents=True)
        launch = get_tool(tool).launch(["/bin/sh", "-c", command], logdir, ToolOptions())
        launches.append((launch.argv, {**os.environ, **launch.env}))
    started = time.perf_counter()
    running: list[subprocess.Popen[bytes]] = []
    for argv, env in launches:
        if len(running) == jobs:
            running.pop(0).wait()
        # A session of its own, as memgate runs a suite: with the kernel's autogroup scheduling
        # (sched_autogroup_enabled) the processes of one session share one session's CPU share.
        running.append(subprocess.Popen(argv, env=env, cwd=folder, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True))
    for process in running:
        process.wait()
    return time.perf_counter() - started


def measure(tool: str = "valgrind", suites: int = 4, processes: int = 6, jobs: int = 2, rounds: int = 3,
            work: Path | None = None) -> Speedup:
    with tempfile.TemporaryDirectory(prefix="memgate-parallel-") as temporary:
        folder = work or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        program = build_test_list(folder)
        config = write_config(folder, program, tool, suites, processes)
        times: dict[str, list[float]] = {"serial": [], "parallel": [], "raw_serial": [], "raw_parallel": []}
        runs: dict[str, Callable[[], float]] = {
            "serial": lambda: memgate_run(config, 1),
            "parallel": lambda: memgate_run(config, jobs),
            "raw_serial": lambda: raw_run(tool, loop_command(program, processes), suites, 1, folder),
            "raw_parallel": lambda: raw_run(tool, loop_command(program, processes), suites, jobs, folder),
        }
        for round_index in range(rounds):
            # alternate the order, so that a change in the machine's load hits all alike
            for name in runs if round_index % 2 == 0 else reversed(runs):
                times[name].append(runs[name]())
    median = {name: statistics.median(values) for name, values in times.items()}
    return Speedup(tool, suites, suites * processes, jobs, median["serial"], median["parallel"],
                   median["raw_serial"], median["raw_parallel"], rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tool", default="valgrind")
    parser.add_argument("--suites", type=int, default=4)
    parser.add_argument("--processes", type=int, default=6, help="test processes per suite")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.2f}")
    result = measure(args.tool, args.suites, args.processes, args.jobs, args.rounds)
    print(f"{result.suites} {result.tool} suites, {result.processes} test processes in all, median of "
          f"{result.rounds} rounds")
    print(f"--jobs 1: {result.serial:.2f} s   --jobs {result.jobs}: {result.parallel:.2f} s   "
          f"speed-up {result.ratio:.2f}x (target >= 1.8x on 2 workers)")
    print(f"raw {result.tool} commands of the same suites: one by one {result.raw_serial:.2f} s, "
          f"{result.jobs} at a time {result.raw_parallel:.2f} s: {result.raw_ratio:.2f}x (what the machine "
          "allows now)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
