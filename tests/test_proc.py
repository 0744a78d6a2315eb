"""Running one command (``memgate.proc``): its exit status, its output kept in files, and a timeout
that stops its whole process group, children included."""

from __future__ import annotations

import os
import time
from pathlib import Path

from memgate.proc import Outcome, run_command


def run(tmp_path: Path, script: str, timeout: float = 60.0) -> Outcome:
    return run_command(["sh", "-c", script], env={"PATH": os.environ["PATH"]}, cwd=tmp_path,
                       timeout=timeout, stdout_path=tmp_path / "out.log", stderr_path=tmp_path / "err.log")


def test_the_exit_status_and_output_are_kept(tmp_path: Path) -> None:
    outcome = run(tmp_path, "echo measured; echo warned >&2; exit 7")
    assert (outcome.exit_code, outcome.signal, outcome.timed_out) == (7, None, False)
    assert (tmp_path / "out.log").read_text() == "measured\n"
    assert (tmp_path / "err.log").read_text() == "warned\n"
    assert outcome.duration_seconds >= 0 and outcome.rss_peak_bytes is not None


def test_a_timeout_stops_the_whole_group(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = run(tmp_path, "sleep 300 & echo $! > child.pid; wait", timeout=1.0)
    assert outcome.timed_out and outcome.exit_code is None
    assert time.monotonic() - started < 60
    child = int((tmp_path / "child.pid").read_text())
    assert not _running(child), f"the background child {child} outlived its suite"


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed child whose new parent has not reaped it yet is gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
