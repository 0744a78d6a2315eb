"""What the Valgrind tools (memcheck, massif, DHAT) share: the install hint and version, massif's and
DHAT's command line, the fatal signal in a Valgrind log, and collecting one output file per process."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from memgate.errors import ConfigError
from memgate.proc import Outcome
from memgate.records import Frame, ProcessRecord
from memgate.tools._outputs import files_by_pid, incomplete, no_output_reason
from memgate.tools._programs import program_version, require_program, tool_env
from memgate.tools.base import Launch, ToolOptions
from memgate.units import count_of

VALGRIND_INSTALL = "install Valgrind: apt-get install valgrind (dnf install valgrind, apk add valgrind)"


def valgrind_version() -> str:
    """``valgrind-3.19.0``."""
    return program_version(["valgrind", "--version"], VALGRIND_INSTALL)


def valgrind_launch(tool: str, out_option: str, out_suffix: str, command: Sequence[str], logdir: Path,
                    options: ToolOptions) -> Launch:
    """``valgrind --tool=<tool>`` writing ``<logdir>/<tool>.<pid>.<out_suffix>`` and its log
    ``<logdir>/<tool>.<pid>.log`` for every process, exec'd children included.

    The log is per process so that a crash (the fatal signal) and a profile that never came (a
    process killed before exit) are seen process by process. Frames carry their source file's full
    path (``--fullpath-after=``, unless the suite's ``tool_args`` choose their own): Valgrind writes
    the file name alone by default, and a heap site is located by its file in the repository (the
    runner makes the paths relative to its root).
    """
    require_program("valgrind", VALGRIND_INSTALL)
    owned = ("--tool", "--log-file", "--log-fd", "--log-socket", out_option)
    for argument in options.extra_args:
        if argument.split("=", 1)[0] in owned:
            raise ConfigError(f"tool_args for {tool} cannot contain {argument!r}: memgate sets it to find "
                              "the output", hint="remove it from the suite's tool_args")
    folder = escape_percent(logdir.resolve())
    full_paths = [] if any(arg.startswith("--fullpath-after") for arg in options.extra_args) else [
        "--fullpath-after="]
    argv = [
        "valgrind",
        f"--tool={tool}",
        f"{out_option}={folder}/{tool}.%p.{out_suffix}",
        f"--log-file={folder}/{tool}.%p.log",
        "--trace-children=yes",
        *full_paths,
        *options.extra_args,
        *command,
    ]
    return Launch(argv=argv, env=tool_env(options))


def escape_percent(path: Path) -> str:
    """Valgrind expands ``%p``, ``%q{VAR}`` and ``%n`` in file names; a literal ``%`` is ``%%``."""
    return str(path).replace("%", "%%")


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


# With --fullpath-after= a frame's file is a full path, whose folders may hold " (" ("/src/app (v2)/a.c"):
# its location starts at the first " (/" (no function name holds "(/"), where memcheck's text parser,
# written for file names alone, takes the last " (".
_FULL_PATH_FRAME = re.compile(r"^(0x[0-9A-Fa-f]+): (.*?) \((in )?(/.*)\)$")
_SOURCE_LINE = re.compile(r"^(.*):(\d+)$")


def frame_of_text(text: str) -> Frame:
    """A frame as DHAT's frame table and massif's heap tree write it, Valgrind's frame text without
    its "at"/"by": "0x10919E: grow (/src/prog.c:10)", "0x4005A3: ??? (in /lib/libx.so)"."""
    from memgate.tools.memcheck.model import to_frame
    from memgate.tools.memcheck.textlog import parse_frame

    full = _FULL_PATH_FRAME.match(text)
    if full:
        address, name, in_object, path = full.groups()
        function = None if name in ("???", "") else name
        if in_object:
            return Frame(function=function, object=path, address=address)
        source = _SOURCE_LINE.match(path)
        if source:
            return Frame(function=function, file=source[1], line=count_of(source[2]), address=address)

    raw = parse_frame(f"   at {text}")
    return to_frame(raw) if raw is not None else Frame(function=text)

