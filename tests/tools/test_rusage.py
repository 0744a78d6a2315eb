"""rusage: the command runs under GNU time, which reports the figures of the process it forks; here
measured on heapprog.c touching known amounts of memory, itself and in a child."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from conftest import BuildProgram
from heaprun import MiB, needs, only, run, without_path

from memgate.errors import ConfigError, ToolError, UsageError
from memgate.proc import Outcome
from memgate.tools import get_tool
from memgate.tools.base import ToolOptions
from memgate.tools.rusage import RUSAGE, gnu_time

gnu_time_installed = needs("time")


@pytest.fixture(scope="module")
def heapprog(build_program: BuildProgram) -> Path:
    return build_program("heapprog.c", flags=("-pthread",))


def test_registry_serves_rusage() -> None:
    assert get_tool("rusage") is RUSAGE
    assert RUSAGE.metrics == {"rss_peak_bytes", "page_faults_minor", "page_faults_major"}


@gnu_time_installed
def test_version_names_the_kernel() -> None:
    assert re.fullmatch(r"Linux \d+\.\d+", RUSAGE.version())


@gnu_time_installed
def test_launch_runs_the_command_under_gnu_time(tmp_path: Path) -> None:
    launch = RUSAGE.launch(["./tests", "-v"], tmp_path, ToolOptions(env={"A": "1"}))
    assert launch.argv == [gnu_time(), "-o", str(tmp_path / "rusage.txt"), "-f",
                           "memgate-rusage maxrss_kib=%M minor=%R major=%F", "--", "./tests", "-v"]
    assert launch.env == {"A": "1"}


def test_missing_gnu_time_is_a_tool_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_path(monkeypatch, tmp_path)
    with pytest.raises(ToolError, match="time is not installed") as raised:
        RUSAGE.launch(["./tests"], tmp_path, ToolOptions())
    assert "apt-get install time" in raised.value.hint


def test_a_time_that_is_not_gnu_time_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_path(monkeypatch, tmp_path, "true")
    (tmp_path / "bin" / "time").symlink_to((tmp_path / "bin" / "true").resolve())
    with pytest.raises(ToolError, match="is not GNU time"):
        RUSAGE.version()


def test_tool_args_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="takes no tool_args"):
        RUSAGE.launch(["./tests"], tmp_path, ToolOptions(extra_args=("-x",)))


def test_parse_explains_that_only_a_live_run_can_be_measured(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="measures a live run") as raised:
        RUSAGE.parse([tmp_path / "anything"])
    assert "tool = \"rusage\"" in raised.value.hint


def test_a_run_without_report_is_incomplete(tmp_path: Path) -> None:
    record = only(RUSAGE.collect(tmp_path, Outcome(exit_code=0)))
    assert not record.complete and record.metrics == {} and record.log_files == ()
    (tmp_path / "rusage.txt").write_text("")
    assert not only(RUSAGE.collect(tmp_path, Outcome(exit_code=0))).complete


@gnu_time_installed
def test_figures_of_a_run(heapprog: Path, tmp_path: Path) -> None:
    small = only(run(RUSAGE, [str(heapprog), "touch=1"], tmp_path / "small").records)
    large = only(run(RUSAGE, [str(heapprog), "touch=64"], tmp_path / "large").records)
    assert small.complete and large.complete and large.fatal_signal is None
    assert small.metrics["rss_peak_bytes"] < 8 * MiB  # the program itself, not the Python that ran it
    grown = large.metrics["rss_peak_bytes"] - small.metrics["rss_peak_bytes"]
    assert 62 * MiB <= grown <= 66 * MiB  # 63 more MiB written, page by page; RSS varies by a few pages
    assert large.metrics["page_faults_minor"] > small.metrics["page_faults_minor"]
    assert large.log_files == (str(tmp_path / "large" / "rusage.txt"),)


@gnu_time_installed
def test_the_runners_own_wait4_would_read_its_own_size(heapprog: Path, tmp_path: Path) -> None:
    """Why GNU time: the figure the runner's wait4 gives is never below the runner's own RSS."""
    result = run(RUSAGE, [str(heapprog), "touch=1"], tmp_path / "logs")
    assert result.outcome.rss_peak_bytes is not None
    assert result.outcome.rss_peak_bytes > 2 * only(result.records).metrics["rss_peak_bytes"]


@gnu_time_installed
def test_a_childs_peak_counts(heapprog: Path, tmp_path: Path) -> None:
    """wait4 covers the descendants that were waited for: the child's 64 MiB show."""
    record = only(run(RUSAGE, [str(heapprog), "spawn=touch=64"], tmp_path / "logs").records)
    assert 64 * MiB <= record.metrics["rss_peak_bytes"] <= 72 * MiB


@gnu_time_installed
def test_exit_status_and_signal(heapprog: Path, tmp_path: Path) -> None:
    exited = run(RUSAGE, [str(heapprog), "exit3"], tmp_path / "exit")
    assert exited.outcome.exit_code == 3 and only(exited.records).complete
    crashed = run(RUSAGE, [str(heapprog), "crash"], tmp_path / "crash")
    assert crashed.outcome.exit_code == 128 + signal.SIGSEGV
    record = only(crashed.records)
    assert record.complete and record.fatal_signal == "SIGSEGV"


@gnu_time_installed
def test_a_killed_run_is_incomplete(tmp_path: Path) -> None:
    result = run(RUSAGE, ["sleep", "60"], tmp_path / "logs", kill_after=0.5)
    assert result.outcome.timed_out and not only(result.records).complete
