"""Run a command and keep its standard error split by process: ``<logdir>/<prefix>.<pid>.stderr``."""

from __future__ import annotations

import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import time
from types import FrameType

_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_CHUNK = 1 << 16
_POLL_SECONDS = 0.2
# Once the command has exited, how long descendants that still hold its standard error may go on
# writing (a forked child finishing its summary) before the wrapper stops listening.
_DRAIN_SECONDS = 2.0
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _usage() -> int:
    print("usage: _stderr_by_pid.py LOGDIR PREFIX [--preload LIBRARY] -- COMMAND...", file=sys.stderr)
    return 2


def _command_env(preload: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if preload:
        current = env.get("LD_PRELOAD", "").strip()
        env["LD_PRELOAD"] = f"{preload}:{current}" if current else preload
    return env


def _writer_pid(ancillary: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid: int = _CREDENTIALS.unpack(data[: _CREDENTIALS.size])[0]
            return pid
    return 0  # unknown writer: kept apart in <prefix>.0.stderr


def _append(logdir: str, prefix: str, pid: int, data: bytes) -> None:
    with open(os.path.join(logdir, f"{prefix}.{pid}.stderr"), "ab") as handle:
        handle.write(data)


def _echo(data: bytes) -> None:
    try:
        sys.stderr.buffer.write(data)
        sys.stderr.buffer.flush()
    except (OSError, ValueError):
        pass  # our own standard error is gone: the files still get everything


# glibc's libmemusage prints each process's summary to that process's standard error when it exits, and
# nowhere else (``MEMUSAGE_OUTPUT`` is a binary trace of one fixed name that every exec'd child truncates,
# without the totals). To get one summary per process, with its process id, the command's standard error is
# a Unix stream socket with ``SO_PASSCRED``: Linux stamps every write with the writer's process id and never
# merges writes of two processes into one read, so each chunk goes to its writer's file. Everything is also
# copied to this wrapper's own standard error, so the suite's output looks as it would without memgate.
def _relay(reader: socket.socket, child: subprocess.Popen[bytes], logdir: str, prefix: str) -> None:
    """Copy chunks to their writers' files until every writer has closed its end, or until the drain
    time after the command's exit has passed."""
    space = socket.CMSG_SPACE(_CREDENTIALS.size)
    reader.settimeout(_POLL_SECONDS)
    exited_at: float | None = None
    while True:
        try:
            data, ancillary, _flags, _address = reader.recvmsg(_CHUNK, space)
        except TimeoutError:
            if exited_at is None and child.poll() is not None:
                exited_at = time.monotonic()
            if exited_at is not None and time.monotonic() - exited_at > _DRAIN_SECONDS:
                return
            continue
        except InterruptedError:
            continue
        if not data:
            return
        _append(logdir, prefix, _writer_pid(ancillary), data)
        _echo(data)


def _exit_like(status: int) -> int:
    if status >= 0:
        return status
    signum = -status
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash of the command is not ours to dump
    if signum not in (signal.SIGKILL, signal.SIGSTOP):  # their disposition cannot be set (EINVAL)
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum  # signals that do not kill by default


# ``LD_PRELOAD`` is set for the command only (``--preload``), never for this wrapper.
# The wrapper's exit status is the command's; a command killed by a signal kills the wrapper with the
# same signal (without a core dump). SIGTERM, SIGINT and SIGHUP are passed on to the command.
#
# This file is run as a script (``python _stderr_by_pid.py ...``) and imports nothing from memgate, so
# that it starts fast and runs with any Python 3 that can run memgate.
# Linux only (``SO_PASSCRED``), as is libmemusage.
#
# Usage: python _stderr_by_pid.py LOGDIR PREFIX [--preload LIBRARY] -- COMMAND [ARGUMENT]...
def main(argv: list[str]) -> int:
    if len(argv) < 4 or "--" not in argv:
        return _usage()
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    if len(options) not in (2, 4) or not command or (len(options) == 4 and options[2] != "--preload"):
        return _usage()
    logdir, prefix = options[0], options[1]
    preload = options[3] if len(options) == 4 else None
    os.makedirs(logdir, exist_ok=True)

    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    try:
        child = subprocess.Popen(command, stderr=writer.fileno(), env=_command_env(preload))
    except OSError as error:
        print(f"memgate: cannot run {command[0]}: {error.strerror}", file=sys.stderr)
        return 127
    finally:
        writer.close()

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    _relay(reader, child, logdir, prefix)
    reader.close()
    return _exit_like(child.wait())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
