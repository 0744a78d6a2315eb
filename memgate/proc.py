"""Running a suite's command: its own process group, a timeout that kills the whole group, the
exit status and resource usage from ``os.wait4``, and stdout/stderr kept as files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from memgate.errors import ToolError
from memgate.tools.base import Outcome

#: After SIGTERM on a timeout, how long the group gets to write its reports before SIGKILL.
TERMINATE_GRACE_SECONDS = 5.0


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float,
    stdout_path: Path,
    stderr_path: Path,
) -> Outcome:
    """Run ``argv`` to completion (or timeout) and report how it ended. Output goes to files."""
    started = time.monotonic()
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        try:
            process = subprocess.Popen(
                list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout,
                stderr=stderr, start_new_session=True,
            )
        except FileNotFoundError:
            raise ToolError(
                f"cannot run {argv[0]!r}: no such program", path=cwd,
                hint="build the test program first, or fix the suite's command (paths are relative to cwd)",
            ) from None
        except PermissionError:
            raise ToolError(f"cannot run {argv[0]!r}: permission denied", path=cwd,
                            hint="make it executable (chmod +x)") from None
        waiter = _Waiter(process.pid)
        waiter.start()
        timed_out = False
        try:
            if not waiter.finished.wait(timeout):
                timed_out = True
                _stop_group(process.pid, waiter)
        except BaseException:  # KeyboardInterrupt, SIGTERM turned into SystemExit: leave nothing behind
            _stop_group(process.pid, waiter)
            raise
        finally:
            waiter.join()
            _kill_group(process.pid, signal.SIGKILL)  # orphans of a finished test must not linger
        process.returncode = -1  # reaped by wait4 already; keep Popen from waiting again
    return _outcome(waiter, timed_out, time.monotonic() - started)


class _Waiter(threading.Thread):
    """Blocks in ``os.wait4`` so the timeout can be waited on and the rusage is the child's own."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.status = 0
        self.rusage: os.struct_rusage | None = None  # type: ignore[name-defined]
        self.finished = threading.Event()

    def run(self) -> None:
        while True:
            try:
                _, self.status, self.rusage = os.wait4(self.pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
        self.finished.set()


def _stop_group(pid: int, waiter: _Waiter) -> None:
    _kill_group(pid, signal.SIGTERM)
    if not waiter.finished.wait(TERMINATE_GRACE_SECONDS):
        _kill_group(pid, signal.SIGKILL)
        waiter.finished.wait()


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pid, sig)


def _outcome(waiter: _Waiter, timed_out: bool, duration: float) -> Outcome:
    status = waiter.status
    usage = waiter.rusage
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    return Outcome(
        exit_code=exit_code,
        signal=sig,
        timed_out=timed_out,
        duration_seconds=round(duration, 3),
        rss_peak_bytes=usage.ru_maxrss * 1024 if usage else None,  # Linux reports KiB
        page_faults_minor=usage.ru_minflt if usage else None,
        page_faults_major=usage.ru_majflt if usage else None,
        user_seconds=usage.ru_utime if usage else None,
        system_seconds=usage.ru_stime if usage else None,
    )
