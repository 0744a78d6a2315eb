"""Running a suite's command: its own process group, a timeout that kills the whole group, the
exit status and resource usage from ``os.wait4``, and stdout/stderr kept as files."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from memgate.errors import ToolError
from memgate.interrupt import StopRequest


@dataclass(frozen=True)
class Leftover:
    """A process the command left running, ended by memgate."""

    pid: int
    name: str  # the kernel's command name (``comm``), control characters escaped


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
    leftovers: tuple[Leftover, ...] = ()  # processes it left running, ended by memgate


#: After SIGTERM on a timeout, how long the group gets to write its reports before SIGKILL.
TERMINATE_GRACE_SECONDS = 5.0
#: How often a waiting suite looks at the stop request: the delay before an interrupt reaches it.
_POLL_SECONDS = 0.05


# The group is stopped (SIGTERM, then SIGKILL after ``TERMINATE_GRACE_SECONDS``) on a timeout, on a stop
# request (SIGINT or SIGTERM to memgate: ``memgate.interrupt``) and on any exception; whatever is left of
# the group when the command ends (a daemonised child, a Valgrind child still running) is killed, so no
# process of a suite outlives it.
# The group is stopped (SIGTERM, then SIGKILL after ``TERMINATE_GRACE_SECONDS``) on a timeout, on a
# stop request (SIGINT or SIGTERM to memgate: ``memgate.interrupt``) and on any exception. The command
# runs under a small helper, ``memgate/_reaper.py``, that is a Linux child subreaper: every process the
# command starts stays in the helper's tree, even one that left the group (``setsid``, a daemon's
# double fork). Whatever is left of that tree when the command ends (a daemon, a Valgrind child still
# running) is killed and named (``Outcome.leftovers``), so no process of a suite outlives it, and with
# several suites running at once each one's leftovers are its own.
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
    files. A command cut short by ``stop`` ends by the signal memgate sent its group. Whatever the
    command leaves running is ended once it ends, and named in ``Outcome.leftovers``."""
    started = time.monotonic()
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        waiter = _Waiter.start_command(argv, env, cwd, stdout, stderr)
        pid = waiter.command_pid(argv, cwd)
        timed_out = False
        try:
            timed_out = _wait(waiter, timeout, stop)
            if not waiter.finished.is_set():
                _stop_group(pid, waiter, stop)
        except BaseException:  # KeyboardInterrupt, SIGTERM turned into SystemExit: leave nothing behind
            _stop_group(pid, waiter, stop)
            raise
        finally:
            waiter.end_leftovers()  # orphans of a finished test must not linger
    return _outcome(waiter, timed_out, time.monotonic() - started)


@dataclass(frozen=True)
class _Usage:
    """The command's own resource usage, as its ``wait4`` gave it."""

    user_seconds: float
    system_seconds: float
    maxrss_kib: int
    minor_faults: int
    major_faults: int


#: The helper that runs a command under a Linux child subreaper (see its docstring for the protocol).
_REAPER = Path(__file__).with_name("_reaper.py")


class _Waiter(threading.Thread):
    """Reads what the helper (``memgate/_reaper.py``) says about the command it runs: its process id,
    how it ended (``finished``) with its own resource usage, and the processes it left running, ended
    once ``end_leftovers`` is called."""

    def __init__(self, helper: subprocess.Popen[bytes], report: BinaryIO) -> None:
        super().__init__(daemon=True)
        self.helper = helper
        self.report = report
        self.pid: int | None = None
        self.exec_errno: int | None = None
        self.status = 0
        self.rusage: _Usage | None = None
        self.leftovers: list[Leftover] = []
        self.ready = threading.Event()  # the command started, or could not be
        self.finished = threading.Event()  # the command ended (its status and usage are known)

    @classmethod
    def start_command(cls, argv: Sequence[str], env: Mapping[str, str], cwd: Path,
                      stdout: IO[bytes], stderr: IO[bytes]) -> _Waiter:
        request = _request(argv, env)
        report_read, report_write = os.pipe()
        try:
            helper = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_REAPER), str(report_write)], env={}, cwd=cwd,
                stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, pass_fds=(report_write,),
                start_new_session=True,
            )
        except OSError as error:
            os.close(report_read)
            raise ToolError(f"cannot run {argv[0]!r}: {error.strerror}", path=cwd,
                            hint="make the suite's cwd a folder memgate can enter") from None
        finally:
            os.close(report_write)
        waiter = cls(helper, os.fdopen(report_read, "rb"))
        waiter.start()
        assert helper.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # the helper died: the report says nothing then
            helper.stdin.write(b"%d\n%s" % (len(request), request))
            helper.stdin.flush()
        return waiter

    def command_pid(self, argv: Sequence[str], cwd: Path) -> int:
        """The command's process id (and process group's); a ``ToolError`` when it could not start."""
        self.ready.wait()
        if self.pid is not None:
            return self.pid
        self.end_leftovers()
        if self.exec_errno == errno.ENOENT:
            raise ToolError(
                f"cannot run {argv[0]!r}: no such program", path=cwd,
                hint="build the test program first, or fix the suite's command (paths are relative to cwd)",
            )
        if self.exec_errno == errno.EACCES:
            raise ToolError(f"cannot run {argv[0]!r}: permission denied", path=cwd,
                            hint="make it executable (chmod +x)")
        if self.exec_errno is not None:
            raise ToolError(f"cannot run {argv[0]!r}: {os.strerror(self.exec_errno)}", path=cwd,
                            hint="fix the suite's command")
        raise ToolError(f"cannot run {argv[0]!r}: memgate's helper {_REAPER} ended with status "
                        f"{self.helper.returncode}", path=cwd,
                        hint="see its message in the suite's stderr.log")

    def end_leftovers(self) -> None:
        """Tell the helper to end what the command left running, and wait until it has."""
        if self.helper.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.helper.stdin.close()
        self.join()
        if self.pid is not None and self.helper.returncode != 0:  # the helper died: the group at least
            _kill_group(self.pid, signal.SIGKILL)

    def run(self) -> None:
        try:
            for line in self.report:
                self._read(line.decode("utf-8", "replace").split())
        finally:
            self.report.close()
            self.helper.wait()
            if not self.finished.is_set() and self.helper.returncode < 0:  # the helper was killed
                self.status = -self.helper.returncode  # a wait status "killed by that signal"
            self.ready.set()
            self.finished.set()

    def _read(self, words: list[str]) -> None:
        if words[:1] == ["started"]:
            self.pid = int(words[1])
            self.ready.set()
        elif words[:1] == ["failed"]:
            self.exec_errno = int(words[1])
            self.ready.set()
        elif words[:1] == ["exited"]:
            self.status = int(words[1])
            self.rusage = _Usage(float(words[2]), float(words[3]), *(int(word) for word in words[4:7]))
            self.finished.set()
        elif words[:1] == ["left"]:
            self.leftovers.append(Leftover(int(words[1]), words[2] if len(words) > 2 else "?"))


def _request(argv: Sequence[str], env: Mapping[str, str]) -> bytes:
    """The helper's request: the argument count, then each argument and ``NAME=VALUE`` ended by NUL.
    Refused as ``subprocess.Popen`` would refuse it."""
    items = [os.fsencode(argument) for argument in argv]
    for name, value in env.items():
        if "=" in name or not name:
            raise ValueError(f"illegal environment variable name: {name!r}")
        items.append(os.fsencode(name) + b"=" + os.fsencode(value))
    if any(b"\0" in item for item in items):
        raise ValueError("embedded null byte")
    return b"%d\n" % len(argv) + b"".join(item + b"\0" for item in items)


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
        rss_peak_bytes=usage.maxrss_kib * 1024 if usage else None,  # Linux reports KiB
        page_faults_minor=usage.minor_faults if usage else None,
        page_faults_major=usage.major_faults if usage else None,
        user_seconds=usage.user_seconds if usage else None,
        system_seconds=usage.system_seconds if usage else None,
        leftovers=tuple(waiter.leftovers),
    )
