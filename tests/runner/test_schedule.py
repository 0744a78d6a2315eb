"""Parallel suites: at most ``--jobs`` at once within a memory budget (injected here: the budget and
the tools' weights, not the machine's memory), and reports that do not depend on which suite
finished first. Real suites: shell commands and memprog under ASan, timed by the commands themselves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from memgate.config import Config, load_config
from memgate.interrupt import StopRequest
from memgate.records import Report
from memgate.report.table import render_suites
from memgate.runner.schedule import MemoryBudget, mem_available, run_scheduled, tool_weight
from memgate.runner.suites import run_suites
from tests.conftest import BuildProgram


def toml(value: str | Path) -> str:
    return json.dumps(str(value))


def timed_suite(name: str, tool: str, seconds: float, folder: Path, then: Path | None = None) -> str:
    """A suite that writes when it started and ended (nanoseconds) beside the config, then runs
    ``then`` (memusage needs a program that allocates and exits: a shell alone gives no summary)."""
    command = f"date +%s%N > {folder}/{name}.start; sleep {seconds}; date +%s%N > {folder}/{name}.end"
    if then is not None:
        command += f"; exec {then} churn=10"
    return f'[[suite]]\nname = "{name}"\ntool = "{tool}"\nshell = true\ncommand = {toml(command)}\n'


def config_of(folder: Path, *suites: str) -> Config:
    path = folder / "memgate.toml"
    path.write_text('artifacts_dir = "artifacts"\n' + "".join(suites))
    return load_config(path)


def stamp(folder: Path, name: str, edge: str) -> int:
    return int((folder / f"{name}.{edge}").read_text())


@pytest.fixture
def memprog(build_program: BuildProgram) -> Path:
    return build_program("memprog.c")


def test_a_suite_waits_until_its_tool_s_memory_fits_in_the_budget(tmp_path: Path, memprog: Path) -> None:
    """rusage suites reserve 600, memusage ones 300, of 1000: the short memusage suite runs beside
    the first rusage one, the second rusage suite waits for the first to end although a job is free."""
    config = config_of(tmp_path, timed_suite("big1", "rusage", 1.0, tmp_path),
                       timed_suite("small", "memusage", 0.1, tmp_path, then=memprog),
                       timed_suite("big2", "rusage", 0.1, tmp_path))
    budget = MemoryBudget(total=1000, weights={"rusage": 600, "memusage": 300})
    report = run_suites(config, config.suites, jobs=3, budget=budget)
    assert [suite.status.value for suite in report.suites] == ["ok", "ok", "ok"]
    assert stamp(tmp_path, "small", "start") < stamp(tmp_path, "big1", "end")
    assert stamp(tmp_path, "big2", "start") >= stamp(tmp_path, "big1", "end")


def test_suites_that_fit_run_together(tmp_path: Path) -> None:
    config = config_of(tmp_path, timed_suite("one", "rusage", 1.0, tmp_path),
                       timed_suite("two", "rusage", 1.0, tmp_path))
    run_suites(config, config.suites, jobs=2, budget=MemoryBudget(total=1200, weights={"rusage": 600}))
    assert stamp(tmp_path, "two", "start") < stamp(tmp_path, "one", "end")
    assert stamp(tmp_path, "one", "start") < stamp(tmp_path, "two", "end")


def test_jobs_still_limits_the_suites_at_once(tmp_path: Path) -> None:
    config = config_of(tmp_path, timed_suite("one", "rusage", 0.5, tmp_path),
                       timed_suite("two", "rusage", 0.1, tmp_path))
    run_suites(config, config.suites, jobs=1, budget=MemoryBudget(total=None))
    assert stamp(tmp_path, "two", "start") >= stamp(tmp_path, "one", "end")


def test_a_suite_larger_than_the_whole_budget_runs_alone(tmp_path: Path, memprog: Path) -> None:
    config = config_of(tmp_path, timed_suite("huge", "rusage", 0.5, tmp_path),
                       timed_suite("after", "memusage", 0.1, tmp_path, then=memprog))
    budget = MemoryBudget(total=1000, weights={"rusage": 5000, "memusage": 10})
    report = run_suites(config, config.suites, jobs=2, budget=budget)
    assert [suite.status.value for suite in report.suites] == ["ok", "ok"]
    assert stamp(tmp_path, "after", "start") >= stamp(tmp_path, "huge", "end")


def leaky_suite(name: str, program: Path, delay: float, scenarios: str, folder: Path) -> str:
    command = (f"sleep {delay}; {program} {scenarios}; status=$?; date +%s%N > {folder}/{name}.end; "
               "exit $status")
    return f'[[suite]]\nname = "{name}"\ntool = "asan"\nshell = true\ncommand = {toml(command)}\n'


def stable_view(report: Report) -> dict[str, object]:
    """The report without what differs between two runs of the same suites: the time, durations,
    process ids and the log names made of them."""
    data: dict[str, object] = json.loads(report.model_dump_json())
    data.pop("created_at")
    for suite in data["suites"]:  # type: ignore[attr-defined]
        suite.pop("duration_seconds")
        for process in suite["processes"]:
            process.pop("pid")
            process.pop("log_files")
    return data


def test_reports_are_identical_whatever_order_the_suites_finish_in(
    build_program: BuildProgram, tmp_path: Path
) -> None:
    program = shutil.copy(build_program("memprog.c", flags=("-fsanitize=address",)), tmp_path / "memprog")
    config = config_of(tmp_path,
                       leaky_suite("first", Path(program), 1.6, "leak_small leak_many", tmp_path),
                       leaky_suite("second", Path(program), 0.8, "leak_tree", tmp_path),
                       leaky_suite("third", Path(program), 0.0, "invalid_read", tmp_path))
    unlimited = MemoryBudget(total=None)

    in_parallel = run_suites(config, config.suites, jobs=3, budget=unlimited)
    ends = [stamp(tmp_path, name, "end") for name in ("first", "second", "third")]
    assert ends == sorted(ends, reverse=True), "the suites were meant to finish in reverse order"
    one_by_one = run_suites(config, config.suites, jobs=1, budget=unlimited)
    ends = [stamp(tmp_path, name, "end") for name in ("first", "second", "third")]
    assert ends == sorted(ends), "one job: the suites finish in configuration order"

    assert [suite.name for suite in in_parallel.suites] == ["first", "second", "third"]
    assert stable_view(in_parallel) == stable_view(one_by_one)
    assert render_suites(in_parallel) == render_suites(one_by_one)
    figures = {suite.name: (suite.metrics.get("leak_definite_bytes"), suite.metrics.get("errors"))
               for suite in in_parallel.suites}
    # The third one halts on its invalid read: no leak check, so no leak figures (not 0).
    assert figures == {"first": (316, 0), "second": (32, 0), "third": (None, 1)}


def test_mem_available_reads_proc_meminfo_format(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684520 kB\nMemFree:        22043244 kB\n"
                       "MemAvailable:   24070760 kB\nBuffers:          123456 kB\n")
    assert mem_available(meminfo) == 24070760 * 1024
    assert MemoryBudget.from_system(meminfo).total == 24070760 * 1024
    meminfo.write_text("MemTotal:       24684520 kB\n")  # a kernel older than 3.14
    assert mem_available(meminfo) is None
    assert MemoryBudget.from_system(tmp_path / "missing").total is None  # not Linux: no limit


def test_the_tools_weights_follow_their_appetite() -> None:
    budget = MemoryBudget(total=None)
    mib = 1024**2
    assert budget.weight("memcheck") == 768 * mib == tool_weight("memcheck")
    assert budget.weight("valgrind") == 768 * mib  # memcheck's other name
    assert budget.weight("dhat") == 640 * mib
    assert budget.weight("heaptrack") == 228 * mib
    assert budget.weight("rusage") == 128 * mib
    assert budget.weight("a-future-tool") == 128 * mib


def test_items_not_started_when_stop_is_requested_get_their_placeholder() -> None:
    stop = StopRequest()
    ran: list[int] = []

    def run(item: int) -> str:
        ran.append(item)
        if item == 1:
            stop.request(15)
        return f"ran {item}"

    results = run_scheduled([1, 2, 3], run, jobs=1, budget=MemoryBudget(total=None),
                            tool_of=lambda _: "rusage", stop=stop, not_started=lambda item: f"skipped {item}")
    assert results == ["ran 1", "skipped 2", "skipped 3"]
    assert ran == [1]


@pytest.mark.parametrize("jobs", [1, 2, 8])
def test_results_come_back_in_item_order(jobs: int) -> None:
    results = run_scheduled(list(range(20)), lambda item: item * item, jobs=jobs,
                            budget=MemoryBudget(total=None), tool_of=lambda _: "rusage", stop=StopRequest(),
                            not_started=lambda item: -1)
    assert results == [item * item for item in range(20)]
