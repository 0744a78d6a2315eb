"""Fuzz memgate's parsers for minutes: mutated real outputs (tests/data) must give clean records or a
one-line MemgateError, never another exception, never a hang.

Run: ``python bench/fuzz.py --tool asan --minutes 10`` (``--tool`` is a parser target of
tests/robustness/fuzzing.py, a tool name for all its targets, or ``all``). The property and the
mutations are the ones tests/robustness/test_fuzz_parsers.py runs a few times in every test run.

For each target it prints the examples tried, how many gave records and how many a clean error, the
slowest example, the process's peak RSS (hypothesis's own memory included) and the most that peak rose
during a single example (what one parse can cost). A failing example is shrunk by hypothesis, its
input saved under ``$TMPDIR/memgate-fuzz-failures/``, and the script exits 1. An example that takes
longer than ``--hang-seconds`` counts as a failure too (a parser loop that does not end); one that
raises the peak by more than 32 MiB is saved there too, without failing.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.robustness.fuzzing import TARGETS, Target, check_parse, mutate, operations  # noqa: E402

FAILURES = Path(tempfile.gettempdir()) / "memgate-fuzz-failures"
BATCH = 300  # examples per hypothesis run; runs repeat until the time is up
GROWTH_KEPT_KIB = 32 * 1024  # an example that raises the peak RSS by more is saved


class Hang(Exception):
    pass


def _alarm(_signal: int, _frame: FrameType | None) -> None:
    raise Hang("the parser did not finish in time")


def fuzz(target: Target, seconds: float, hang_seconds: int, folder: Path) -> dict[str, float]:
    outcomes: Counter[str] = Counter()
    slowest = 0.0
    growth = 0  # KiB: the most the process's peak RSS rose during one example
    failing: list[tuple[str, bytes]] = []  # the last one is the shrunk example

    @settings(max_examples=BATCH, deadline=None, database=None, phases=[Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        nonlocal slowest, growth
        case = data.draw(st.sampled_from(target.cases), label="case")
        ops = data.draw(operations(target.real_lines), label="operations")
        mutated = mutate(case.files[case.target], ops)
        started, peak_before = time.perf_counter(), _peak_kib()
        signal.alarm(hang_seconds)
        try:
            outcomes[check_parse(target, case, mutated, folder)] += 1
        except BaseException:
            failing.append((case.name, mutated))
            raise
        finally:
            signal.alarm(0)
        slowest = max(slowest, time.perf_counter() - started)
        grown = _peak_kib() - peak_before
        if grown > growth:
            growth = grown
            if grown > GROWTH_KEPT_KIB:  # an input that makes a parser use this much is kept to look at
                _save(target, case.name, mutated, f"made the peak RSS grow by {grown // 1024} MiB")

    deadline = time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < deadline:
        try:
            run()
        except BaseException:
            if failing:
                _save(target, *failing[-1])
            raise
    return {"minutes": (time.monotonic() - started) / 60, "examples": sum(outcomes.values()),
            "records": outcomes["records"], "errors": outcomes["error"], "slowest": slowest,
            "growth": growth / 1024}


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _save(target: Target, case: str, data: bytes, why: str = "failing") -> None:
    FAILURES.mkdir(exist_ok=True)
    path = FAILURES / f"{target.name}-{hashlib.sha256(data).hexdigest()[:12]}"
    path.write_bytes(data)
    print(f"  input of case {case} ({why}) saved as {path}", file=sys.stderr)


def main() -> int:
    tools = sorted({target.tool for target in TARGETS.values()})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", required=True, choices=["all", *tools, *sorted(set(TARGETS) - set(tools))],
                        help="a parser target, a tool (all its targets) or all")
    parser.add_argument("--minutes", type=float, default=10.0, help="per target (default 10)")
    parser.add_argument("--hang-seconds", type=int, default=20, help="an example slower than this fails")
    args = parser.parse_args()
    chosen = [target for name, target in sorted(TARGETS.items())
              if args.tool in ("all", name, target.tool)]
    signal.signal(signal.SIGALRM, _alarm)
    print(f"{'target':<16}{'minutes':>8}{'examples':>10}{'records':>9}{'errors':>8}{'slowest s':>10}"
          f"{'peak RSS MiB':>13}{'most in one MiB':>16}")
    failed = False
    for target in chosen:
        with tempfile.TemporaryDirectory(prefix="memgate-fuzz-") as folder:
            try:
                figures = fuzz(target, args.minutes * 60, args.hang_seconds, Path(folder) / "case")
            except Exception as error:  # noqa: BLE001 - hypothesis has printed the falsifying example
                print(f"{target.name:<16} FAILED: {type(error).__name__}: {error}")
                failed = True
                continue
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{target.name:<16}{figures['minutes']:>8.1f}{figures['examples']:>10,.0f}"
              f"{figures['records']:>9,.0f}{figures['errors']:>8,.0f}{figures['slowest']:>10.3f}{peak:>13.0f}"
              f"{figures['growth']:>16.1f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
