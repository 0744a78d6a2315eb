"""rusage: what the kernel counted for the suite's process tree, for any program (C, Go, Python, JVM)."""

from __future__ import annotations

import platform
import re
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from memgate.errors import ConfigError, ToolError, UsageError
from memgate.metrics import MetricName
from memgate.proc import Outcome
from memgate.records import ProcessRecord
from memgate.tools._outputs import incomplete
from memgate.tools._programs import require_program, tool_env
from memgate.tools.base import DEFAULT_OPTIONS, Appetite, Launch, ToolOptions
from memgate.units import count_of, counts_read

INSTALL_HINT = "install GNU time: apt-get install time (dnf install time, apk add time)"
OUTPUT = "rusage.txt"
_MAX_REPORT = 4096
_FORMAT = "memgate-rusage maxrss_kib=%M minor=%R major=%F"
_FIGURES = re.compile(r"^memgate-rusage maxrss_kib=(\d+) minor=(\d+) major=(\d+)$")
_SIGNALLED = re.compile(r"^Command terminated by signal (\d+)$")


def gnu_time() -> str:
    """The path of GNU time; ``ToolError`` when ``time`` is missing or another implementation."""
    path = require_program("time", INSTALL_HINT)
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ToolError(f"cannot run {path} --version: {error}", hint=INSTALL_HINT) from None
    if "GNU Time" not in result.stdout + result.stderr:
        raise ToolError(f"{path} is not GNU time (its -o and -f options are needed)", hint=INSTALL_HINT)
    return path


# ``launch`` runs the command under GNU time (``/usr/bin/time -o <logdir>/rusage.txt``), which forks
# it, waits for it with ``wait4`` and writes the figures. Why not the runner's own ``os.wait4``: Linux
# starts a process's peak RSS (``ru_maxrss``) at the RSS of the process that forked it (at exec, the
# kernel keeps the high-water mark of the forked copy), so every process memgate starts reads at least
# memgate's own RSS: a 2 MB program read as 321 MB under a 321 MB Python parent, and still as 14 MB
# (the interpreter) under a bare one. Forked by GNU time (about 1 MB resident), the program reads as
# itself (2,020 KB here, as for a shell started from a terminal).
class RusageTool:
    name = "rusage"
    metrics: frozenset[MetricName] = frozenset({"rss_peak_bytes", "page_faults_minor", "page_faults_major"})
    memory_appetite = Appetite(multiple=1.0)

    def version(self) -> str:
        """The kernel, whose accounting the figures are (e.g. "Linux 6.1")."""
        gnu_time()
        release = platform.release().split("-")[0]
        return f"{platform.system()} {'.'.join(release.split('.')[:2])}"

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        if options.extra_args:
            raise ConfigError("the rusage tool takes no tool_args",
                             hint=f"remove tool_args ({' '.join(options.extra_args)}) from the suite")
        argv = [gnu_time(), "-o", str(logdir / OUTPUT), "-f", _FORMAT, "--", *command]
        return Launch(argv=argv, env=tool_env(options))

    def collect(self, logdir: Path, outcome: Outcome,
                options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        return [read_figures(logdir / OUTPUT)]

    def parse(self, paths: Sequence[Path], options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        raise UsageError("rusage measures a live run and leaves no files to parse",
                         hint="run the suite with tool = \"rusage\" instead of parsing files")


def read_figures(path: Path) -> ProcessRecord:
    """GNU time's report: a status line when the command failed, then the figures' line."""
    try:
        with path.open(encoding="utf-8", errors="replace") as report:
            lines = report.read(_MAX_REPORT).splitlines()  # GNU time writes one or two short lines
    except FileNotFoundError:
        lines = []
    figures = _FIGURES.match(lines[-1]) if lines else None
    if figures is None:
        return incomplete("GNU time reported nothing: the run was killed (a timeout?) or could not start",
                          log_files=[path] if path.exists() else [])
    with counts_read(path, not_a="not a report GNU time writes",
                     hint="let no suite write into memgate's log folder"):
        return _record(path, lines, figures)


# Metrics, one record for the whole run:
#
# - ``rss_peak_bytes``: GNU time's ``%M``, ``ru_maxrss`` of the command, which covers its descendants
#   that were waited for: the largest peak resident set of *one* process of the tree, not a sum of
#   processes alive at once. RSS counts pages touched, not bytes allocated: allocator caching, shared
#   libraries and page granularity make it noisy (give it a noise floor).
# - ``page_faults_minor`` (``%R``), ``page_faults_major`` (``%F``): summed over the waited processes.
#
# User, system and wall time are the runner's (``Outcome``); they are not memory metrics.
#
# GNU time reports a command killed by a signal as exit status 128 + signal (and memgate records the
# signal as the record's ``fatal_signal``). There are no files to parse after the fact: ``parse``
# refuses.
def _record(path: Path, lines: list[str], figures: re.Match[str]) -> ProcessRecord:
    fatal: str | None = None
    for line in lines:
        signalled = _SIGNALLED.match(line)
        if signalled:
            fatal = _signal_name(count_of(signalled[1]))
    metrics: dict[MetricName, int] = {
        "rss_peak_bytes": count_of(figures[1]) * 1024,
        "page_faults_minor": count_of(figures[2]),
        "page_faults_major": count_of(figures[3]),
    }
    return ProcessRecord(log_files=(str(path),), metrics=metrics, leak_check=False, fatal_signal=fatal)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


RUSAGE = RusageTool()
