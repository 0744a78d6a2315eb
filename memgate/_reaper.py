"""Run one suite's command as the child of a Linux child subreaper, and end whatever the command leaves
running: every process started under it, including those that left its process group (``setsid``) or
whose parent died (a double fork), because an orphan of this tree is re-parented to this helper rather
than to init (``PR_SET_CHILD_SUBREAPER``). memgate starts one helper per suite run, so whatever the
helper ends belongs to that suite, however many suites run at once.

The protocol with memgate (``memgate.proc``):

- standard input: one line ``LENGTH\\n``, then LENGTH bytes of the request: the number of arguments
  on a line, then each argument and each ``NAME=VALUE`` of the environment ended by a NUL byte. The
  pipe then stays open; when memgate closes it (after the command ended and memgate has waited for
  what it waits for: Valgrind's children writing their reports on a timeout), the helper ends the
  command's remaining processes and exits.
- file descriptor ``REPORT_FD`` (the only argument), lines: ``started PID`` (the command runs in a
  session and process group of its own, PID's) or ``failed ERRNO`` (it could not be executed); then
  ``exited STATUS UTIME STIME MAXRSS MINFLT MAJFLT`` (its wait status and resource usage, from
  ``wait4``: the command's own, not this helper's); then one ``left PID NAME`` for each process ended.

The command's standard input is /dev/null; its standard output and error are the helper's. The helper
writes nothing there. This file is run as a script (``python -I -S _reaper.py FD``) and imports
nothing from memgate, so that it starts fast and runs with any Python 3 that can run memgate.
"""

from __future__ import annotations

import os
import select
import sys
import time

# The start of this helper delays every suite: typing, and the signal module (which pulls enum,
# functools and collections), would cost it more than the rest of its imports together.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
else:
    import _signal as signal

_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
#: How long ending the leftovers may take (a process that cannot be killed, such as one of another
#: user's, must not hold the suite for ever).
_SWEEP_SECONDS = 10.0
_POLL_SECONDS = 0.02
#: The signals Python ignores in itself, which a command must not inherit ignored.
_RESTORED = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name))


def become_subreaper() -> bool:
    """Make orphaned descendants this process's children (Linux 3.4 and later); False elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def read_request(fd: int) -> tuple[list[bytes], dict[bytes, bytes]]:
    header = b""
    while not header.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            raise EOFError("no request")
        header += byte
    data = _read_exactly(fd, int(header))
    count, _, rest = data.partition(b"\n")
    items = rest.split(b"\0")[:-1]
    argv = items[:int(count)]
    env = dict(item.split(b"=", 1) for item in items[int(count):])
    return argv, env


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            raise EOFError("request cut short")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def start(argv: list[bytes], env: dict[bytes, bytes]) -> int | str:
    """The command's process id, or the ``errno`` (as text) of its failed ``execve``."""
    errors_read, errors_write = os.pipe()  # close-on-exec: empty at EOF when the exec succeeded
    pid = os.fork()
    if pid == 0:
        try:
            os.close(errors_read)
            os.setsid()
            for signum in _RESTORED:
                signal.signal(signum, signal.SIG_DFL)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.execvpe(argv[0], argv, env)
        except OSError as error:
            os.write(errors_write, str(error.errno or 0).encode())
        finally:
            os._exit(127)
    os.close(errors_write)
    failure = b""
    while chunk := os.read(errors_read, 64):
        failure += chunk
    os.close(errors_read)
    if failure:
        os.waitpid(pid, 0)
        return failure.decode()
    return pid


def wait_for(pid: int) -> str:
    """Wait for ``pid`` to end, reaping any orphan that ends meanwhile; its ``exited`` line."""
    while True:
        ended, status, usage = os.wait4(-1, 0)
        if ended == pid:
            return (f"exited {status} {usage.ru_utime} {usage.ru_stime} {usage.ru_maxrss} "
                    f"{usage.ru_minflt} {usage.ru_majflt}")


def wait_for_sweep_order(fd: int) -> None:
    """Until memgate closes our standard input (or writes to it), reap what ends by itself."""
    while not select.select([fd], [], [], _POLL_SECONDS)[0]:
        reap_children()


def reap_children() -> bool:
    """Reap every child that has ended; False once there are no children left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def sweep(command: int) -> dict[int, str]:
    """SIGKILL every live descendant, until none is left (a process killed makes its children ours);
    the ones ended, with their names."""
    ended: dict[int, str] = {}
    if not reap_children():  # no child left: nothing under us at all (the usual case; /proc unread)
        return ended
    deadline = time.monotonic() + _SWEEP_SECONDS
    while True:
        live = live_descendants(os.getpid())
        for pid, name in live.items():
            if _signalled(os.kill, pid):
                ended.setdefault(pid, name)
        _signalled(os.killpg, command)  # without /proc, the command's group at least
        children_left = reap_children()
        if (not live and not children_left) or time.monotonic() > deadline:
            return ended
        time.sleep(_POLL_SECONDS)


def _signalled(send: Callable[[int, int], None], target: int) -> bool:
    """SIGKILL sent to ``target`` (a process, or a group); False when it is gone or not ours."""
    try:
        send(target, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def live_descendants(root: int) -> dict[int, str]:
    """The processes under ``root`` that are not zombies, with their command names (from /proc)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat_file:
                stat = stat_file.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")"
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) < 2:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        if fields[0] not in (b"Z", b"X"):
            names[pid] = _printable(stat[stat.find(b"(") + 1:stat.rfind(b")")])
    found: dict[int, str] = {}
    pending = list(children.get(root, ()))
    while pending:
        pid = pending.pop()
        if pid in names:
            found[pid] = names[pid]
        pending.extend(children.get(pid, ()))
    return found


def _printable(name: bytes) -> str:
    """A command name as one word of a line: any character that is not printable is escaped."""
    text = name.decode("utf-8", "replace")
    return "".join(char if char.isprintable() and not char.isspace() else f"\\x{ord(char):02x}"
                   for char in text)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: _reaper.py REPORT_FD < request", file=sys.stderr)
        return 2
    report_fd = int(argv[0])
    os.set_inheritable(report_fd, False)
    become_subreaper()
    command, env = read_request(0)
    started = start(command, env)
    if isinstance(started, str):
        say(report_fd, f"failed {started}")
        return 0
    say(report_fd, f"started {started}")
    say(report_fd, wait_for(started))
    wait_for_sweep_order(0)
    say(report_fd, "".join(f"left {pid} {name}\n" for pid, name in sorted(sweep(started).items())))
    return 0


def say(fd: int, lines: str) -> None:
    """Write to memgate; if memgate is gone (killed), carry on: the leftovers must be ended anyway."""
    data = (lines if lines.endswith("\n") or not lines else lines + "\n").encode()
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(code)  # the interpreter's clean-up would only delay the suite's end
