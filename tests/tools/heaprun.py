"""What the runner does, for the heap tools' tests: launch under a tool, run, wait4, collect."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from memgate.proc import Outcome
from memgate.records import ProcessRecord
from memgate.tools.base import Tool, ToolOptions

DATA = Path(__file__).parent.parent / "data"
MiB = 1024 * 1024

# The figures heapprog.c states for each scenario (see its comments).
PEAK = {"heap_peak_bytes": 5 * MiB + 1000, "heap_total_bytes": 8 * MiB + 1000, "alloc_calls": 3,
        "heap_end_bytes": 0}
CALLS_PEAK = 3500
CALLS_CALLS = 20
CALLS_TOTAL_WHOLE_REALLOCS = 3900  # DHAT, heaptrack
CALLS_TOTAL_REALLOC_GROWTH = 3500  # memusage
THREAD_CALLS = 4 * 1000 + 4  # 4 threads x 1,000 mallocs, + 1 calloc per thread by glibc (its TLS)


def needs(*programs: str) -> pytest.MarkDecorator:
    missing = [name for name in programs if shutil.which(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not installed")


@dataclass(frozen=True)
class Run:
    records: list[ProcessRecord]
    outcome: Outcome
    pid: int
    stderr: bytes


def run(tool: Tool, command: Sequence[str], logdir: Path, *, extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None, kill_after: float | None = None) -> Run:
    """Launch, run (killed with SIGKILL after ``kill_after`` seconds), wait4, collect."""
    logdir.mkdir(parents=True, exist_ok=True)
    launch = tool.launch(command, logdir, ToolOptions(extra_args=extra_args, env=env or {}))
    with open(logdir.parent / f"{logdir.name}.stderr", "w+b") as stderr:
        process = subprocess.Popen(launch.argv, env={**os.environ, **launch.env}, stdout=subprocess.DEVNULL,
                                   stderr=stderr, start_new_session=True)
        outcome = _wait(process.pid, kill_after)
        process.returncode = 0  # reaped by wait4 above
        stderr.seek(0)
        output = stderr.read()
    return Run(tool.collect(logdir, outcome), outcome, process.pid, output)


def _wait(pid: int, kill_after: float | None) -> Outcome:
    started = time.monotonic()
    timed_out = False
    while True:
        waited, status, usage = os.wait4(pid, os.WNOHANG)
        if waited:
            break
        if kill_after is not None and time.monotonic() - started > kill_after and not timed_out:
            os.killpg(pid, signal.SIGKILL)
            timed_out = True
        time.sleep(0.01)
    return Outcome(
        exit_code=os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
        signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        timed_out=timed_out,
        duration_seconds=time.monotonic() - started,
        rss_peak_bytes=usage.ru_maxrss * 1024,
        page_faults_minor=usage.ru_minflt,
        page_faults_major=usage.ru_majflt,
        user_seconds=usage.ru_utime,
        system_seconds=usage.ru_stime,
    )


def by_pid(records: Sequence[ProcessRecord]) -> list[ProcessRecord]:
    return sorted(records, key=lambda record: record.pid or 0)


def only(records: Sequence[ProcessRecord]) -> ProcessRecord:
    assert len(records) == 1, records
    return records[0]


def without_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *keep: str) -> None:
    """PATH with only ``keep`` programs (linked into an empty folder): the others are "not installed"."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name in keep:
        found = shutil.which(name)
        assert found, name
        (folder / name).symlink_to(found)
    monkeypatch.setenv("PATH", str(folder))
