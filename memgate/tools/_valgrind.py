"""What the heap tools (dhat, massif, memusage, heaptrack, rusage) share: finding their programs, the
user's environment, per-process output files, and Valgrind's command line and log."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from memgate.errors import ConfigError, ToolError
from memgate.proc import Outcome
from memgate.records import ProcessRecord
from memgate.tools.base import Launch, ToolOptions

VALGRIND_INSTALL = "install Valgrind: apt-get install valgrind (dnf install valgrind, apk add valgrind)"
_VERSION_TIMEOUT = 30.0


def require_program(name: str, install_hint: str) -> str:
    """The program's path on PATH; ``ToolError`` with the install hint when it is missing."""
    path = shutil.which(name)
    if path is None:
        raise ToolError(f"{name} is not installed (not found on PATH)", hint=install_hint)
    return path


def program_version(argv: Sequence[str], install_hint: str) -> str:
    """The first line a program prints for ``--version``."""
    require_program(argv[0], install_hint)
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=_VERSION_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ToolError(f"cannot run {' '.join(argv)}: {error}", hint=install_hint) from None
    lines = (result.stdout or result.stderr).strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ToolError(f"{' '.join(argv)} failed (exit {result.returncode})", hint=install_hint)
    return lines[0].strip()


def user_variable(options: ToolOptions, name: str) -> str | None:
    """A variable as the suite's program would see it: the suite's ``env``, else memgate's own."""
    if name in options.env:
        return options.env[name]
    return os.environ.get(name)


def tool_env(options: ToolOptions, **variables: str) -> dict[str, str]:
    """The suite's environment with the tool's own variables on top."""
    return {**options.env, **variables}


def files_by_pid(logdir: Path, prefix: str, suffix: str) -> dict[int, Path]:
    """``<logdir>/<prefix>.<pid>.<suffix>`` files, by process id."""
    pattern = re.compile(rf"{re.escape(prefix)}\.(\d+)\.{re.escape(suffix)}")
    found: dict[int, Path] = {}
    if not logdir.is_dir():
        return found
    for path in logdir.iterdir():
        match = pattern.fullmatch(path.name)
        if match:
            found[int(match[1])] = path
    return found


_PID_NAMES = (re.compile(r"[^.]+\.out\.(\d+)"), re.compile(r"[^.]+\.(\d+)\.[A-Za-z]+"))


def pid_in_name(path: Path) -> int | None:
    """The process id in a file named as the tools name them: ``massif.out.1234`` (Valgrind's
    default) or ``dhat.1234.json`` (memgate's)."""
    for pattern in _PID_NAMES:
        match = pattern.fullmatch(path.name)
        if match:
            return int(match[1])
    return None


def incomplete(reason: str, *, pid: int | None = None, log_files: Sequence[Path] = (),
               command: str | None = None, fatal_signal: str | None = None) -> ProcessRecord:
    """A record that measured nothing usable: it fails closed, never passes as "0 bytes"."""
    return ProcessRecord(pid=pid, command=command, log_files=tuple(str(p) for p in log_files),
                         leak_check=False, complete=False, incomplete_reason=reason,
                         fatal_signal=fatal_signal)


# --------------------------------------------------------------------------------------------------
# Valgrind (DHAT and massif)


def valgrind_version() -> str:
    """``valgrind-3.19.0``."""
    return program_version(["valgrind", "--version"], VALGRIND_INSTALL)


def valgrind_launch(tool: str, out_option: str, out_suffix: str, command: Sequence[str], logdir: Path,
                    options: ToolOptions) -> Launch:
    """``valgrind --tool=<tool>`` writing ``<logdir>/<tool>.<pid>.<out_suffix>`` and its log
    ``<logdir>/<tool>.<pid>.log`` for every process, exec'd children included.

    The log is per process so that a crash (the fatal signal) and a profile that never came (a
    process killed before exit) are seen process by process.
    """
    require_program("valgrind", VALGRIND_INSTALL)
    owned = ("--tool", "--log-file", "--log-fd", "--log-socket", out_option)
    for argument in options.extra_args:
        if argument.split("=", 1)[0] in owned:
            raise ConfigError(f"tool_args for {tool} cannot contain {argument!r}: memgate sets it to find "
                              "the output", hint="remove it from the suite's tool_args")
    folder = _escape_percent(logdir.resolve())
    argv = [
        "valgrind",
        f"--tool={tool}",
        f"{out_option}={folder}/{tool}.%p.{out_suffix}",
        f"--log-file={folder}/{tool}.%p.log",
        "--trace-children=yes",
        *options.extra_args,
        *command,
    ]
    return Launch(argv=argv, env=tool_env(options))


def _escape_percent(path: Path) -> str:
    """Valgrind expands ``%p``, ``%q{VAR}`` and ``%n`` in file names; a literal ``%`` is ``%%``."""
    return str(path).replace("%", "%%")


def no_output_reason(tool: str, logdir: Path, outcome: Outcome | None) -> str:
    """Why a run left no output at all, as far as the runner's outcome tells."""
    if outcome is not None and outcome.timed_out:
        why = "the run timed out before any process wrote one"
    elif outcome is not None and outcome.signal is not None:
        why = f"the run was killed by signal {outcome.signal} first"
    else:
        status = f"exit status {outcome.exit_code}; " if outcome is not None else ""
        why = f"the command did not start under it ({status}see the suite's output: a missing program?)"
    return f"{tool} wrote nothing in {logdir}: {why}"


@dataclass(frozen=True)
class ValgrindLog:
    command: str | None = None
    fatal_signal: str | None = None  # "SIGSEGV"
    fatal_detail: str | None = None  # "Process terminating with default action of signal 11 (SIGSEGV)"


_LOG_PREFIX = re.compile(r"^==\d+== ?")
_FATAL = re.compile(r"Process terminating with default action of signal (\d+) \((\w+)\)")


def read_valgrind_log(path: Path) -> ValgrindLog:
    """The command and the fatal signal, if any, of a Valgrind log (streamed line by line)."""
    command: str | None = None
    signal: str | None = None
    detail: str | None = None
    try:
        with path.open(encoding="utf-8", errors="replace") as log:
            for raw in log:
                line = _LOG_PREFIX.sub("", raw.rstrip("\n"))
                if command is None and line.startswith("Command: "):
                    command = line.removeprefix("Command: ")
                    continue
                match = _FATAL.search(line)
                if match:
                    signal, detail = match[2], match[0]
    except OSError:
        return ValgrindLog()
    return ValgrindLog(command=command, fatal_signal=signal, fatal_detail=detail)


def collect_valgrind_outputs(logdir: Path, outcome: Outcome, tool: str, label: str, suffix: str, what: str,
                             read: Callable[[Path, int, Path | None], ProcessRecord]) -> list[ProcessRecord]:
    """DHAT's and massif's ``collect()``: a record per process from its ``what`` (output file,
    ``read(path, pid, log)``), and an incomplete one for a process that left only its Valgrind log
    (killed before it exited: the output is written at exit)."""
    outputs = files_by_pid(logdir, tool, suffix)
    logs = files_by_pid(logdir, tool, "log")
    records: list[ProcessRecord] = []
    for pid in sorted(set(outputs) | set(logs)):
        log = logs.get(pid)
        if pid in outputs:
            records.append(read(outputs[pid], pid, log))
            continue
        assert log is not None
        detail = read_valgrind_log(log)
        records.append(incomplete(
            f"{label} wrote no {what} for process {pid}: it was killed before it could exit "
            "(SIGKILL, a timeout) or Valgrind failed; see its log",
            pid=pid, log_files=[log], command=detail.command, fatal_signal=detail.fatal_signal,
        ))
    if not records:
        records.append(incomplete(no_output_reason(label, logdir, outcome)))
    return records
