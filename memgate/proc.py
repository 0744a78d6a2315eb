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
from dataclasses import dataclass
from pathlib import Path

from memgate.errors import ToolError
from memgate.interrupt import StopRequest


@dataclass(frozen=True)
class Outcome:
    """How the wrapped command ended, as the runner saw it (``os.wait4``)."""

    exit_code: int | None  # None when killed by a signal
    signal: int | None = None
    timed_out: bool = False
    duration_seconds: float = 0.0
    rss_peak_bytes: int | None = None
    page_faults_minor: int | None = None
    page_faults_major: int | None = None
    user_seconds: float | None = None
    system_seconds: float | None = None


#: After SIGTERM on a timeout, how long the group gets to write its reports before SIGKILL.
TERMINATE_GRACE_SECONDS = 5.0
#: How often a waiting suite looks at the stop request: the delay before an interrupt reaches it.
_POLL_SECONDS = 0.05


# The group is stopped (SIGTERM, then SIGKILL after ``TERMINATE_GRACE_SECONDS``) on a timeout, on a stop
# request (SIGINT or SIGTERM to memgate: ``memgate.interrupt``) and on any exception; whatever is left of
# the group when the command ends (a daemonised child, a Valgrind child still running) is killed, so no
# process of a suite outlives it.
def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float,
    stdout_path: Path,
    stderr_path: Path,
    stop: StopRequest | None = None,
) -> Outcome:
    """Run ``argv`` to completion (or timeout, or ``stop``) and report how it ended. Output goes to
    files. A command cut short by ``stop`` ends by the signal memgate sent its group."""
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
            timed_out = _wait(waiter, timeout, stop)
            if not waiter.finished.is_set():
                _stop_group(process.pid, waiter, stop)
        except BaseException:  # KeyboardInterrupt, SIGTERM turned into SystemExit: leave nothing behind
            _stop_group(process.pid, waiter, stop)
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


def _wait(waiter: _Waiter, timeout: float, stop: StopRequest | None) -> bool:
    """Wait for the command to end, at most ``timeout`` seconds; True when it timed out. Returns
    early (False, the command still running) when a stop is requested."""
    if stop is None:
        return not waiter.finished.wait(timeout)
    deadline = time.monotonic() + timeout
    while not stop.requested:
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        if waiter.finished.wait(min(left, _POLL_SECONDS)):
            return False
    return False


def _stop_group(pid: int, waiter: _Waiter, stop: StopRequest | None = None) -> None:
    """SIGTERM to the group, so that the tools write their reports, and time for every process of it
    to end (Valgrind's children may outlive the shell that started them: killed too early, their XML
    would be cut short); SIGKILL after the grace period, or at once when the stop is forced (a second
    Ctrl-C)."""
    _kill_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + TERMINATE_GRACE_SECONDS
    while not waiter.finished.is_set() or _group_alive(pid):
        if time.monotonic() >= deadline or (stop is not None and stop.forced):
            _kill_group(pid, signal.SIGKILL)
            break
        if waiter.finished.is_set():
            time.sleep(_POLL_SECONDS)
        else:
            waiter.finished.wait(_POLL_SECONDS)
    waiter.finished.wait()


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: in a container nothing may
    ever reap the orphans of a killed shell."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: trust killpg
    return any(entry.isdigit() and _running_in_group(entry, pgid) for entry in entries)


def _running_in_group(pid: str, pgid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")"
    fields = stat[stat.rfind(b")") + 2:].split()
    return len(fields) > 2 and fields[0] != b"Z" and int(fields[2]) == pgid


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
