"""The output files a tool writes per process: finding them by process id, and the incomplete record
of a process (or a run) whose output is missing."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from memgate.proc import Outcome
from memgate.records import ProcessRecord


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


#: The longest line a reader keeps whole; an output file with longer lines (a C++ name in a tree,
#: program output) is not read into memory at once.
MAX_LINE = 1 << 16


def capped_lines(path: Path) -> Iterator[str]:
    """The file's lines without their newline; of a line longer than ``MAX_LINE``, only the start."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        while True:
            line = handle.readline(MAX_LINE)
            if not line:
                return
            while len(line) == MAX_LINE and not line.endswith("\n"):
                rest = handle.readline(MAX_LINE)
                if not rest or rest.endswith("\n"):
                    break
            yield line.rstrip("\n")
