"""Run one suite under its tool (``repeat`` times) and turn what the tool wrote into a ``SuiteRecord``."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from memgate.config import Config, SuiteConfig
from memgate.errors import ConfigError, ToolError
from memgate.fingerprint import AllocWrappers
from memgate.forges import ci
from memgate.gcpause import collector_paused
from memgate.interrupt import StopRequest
from memgate.proc import Leftover, Outcome, run_command
from memgate.records import (
    ProcessRecord,
    SuiteRecord,
    SuiteRun,
    SuiteStatus,
    combine_run_metrics,
    combine_run_tests,
    output_status,
    run_test_spreads,
)
from memgate.runner.process_tests import name_processes
from memgate.tools import get_tool
from memgate.tools.base import Tool, ToolOptions

#: The forge tokens memgate reads to post its comment. The suites do not need them, and a test that
#: prints its environment would put them into the logs that CI keeps as artifacts: they are left out
#: of the environment the suites inherit (a suite's own ``env`` can still set them).
FORGE_TOKENS = ci.FORGE_TOKEN_VARIABLES
#: Written into every log folder memgate makes; a folder without it is never emptied (artifacts_dir
#: = "" would otherwise make the folder of a suite named "src" the source folder).
LOGDIR_MARK = ".memgate-logs"

# Which run's status the combined record takes: the first of the highest rank.
_STATUS_RANK = {SuiteStatus.OK: 0, SuiteStatus.INCOMPLETE: 1, SuiteStatus.FAILED: 2,
                SuiteStatus.TIMEOUT: 3, SuiteStatus.CRASHED: 3}


def run_suite(suite: SuiteConfig, config: Config, stop: StopRequest | None = None) -> SuiteRecord:
    """Run ``suite`` (``repeat`` times); its logs stay under ``<artifacts>/<suite>/`` whatever happens.
    A ``stop`` request (SIGINT, SIGTERM) ends the run early: the record is incomplete, "interrupted"."""
    tool = get_tool(suite.tool)
    version = tool.version()
    make_memgate_folder(config.artifacts_path)
    suite_dir = _fresh_logdir(config.artifacts_path / suite.name)
    cwd = (config.root / suite.cwd) if suite.cwd else config.root
    if not cwd.is_dir():
        raise ConfigError(f"suite {suite.name!r}: cwd {suite.cwd!r} is not a folder", path=config.source,
                          hint="fix the suite's cwd (relative to the config file)")
    options = ToolOptions(extra_args=tuple(suite.tool_args), env=suite.env,
                          alloc_wrappers=AllocWrappers(config.alloc_wrappers_for(suite)),
                          suppressions=tuple(config.suppressions_for(suite)))
    if not suite.shell:
        check_runnable(suite.argv()[0], cwd, {**os.environ, **suite.env})
    try:
        if suite.repeat == 1:
            return _run_once(suite, tool, version, cwd, suite_dir, stop, options)
        runs: list[SuiteRecord] = []
        for index in range(1, suite.repeat + 1):
            logdir = _fresh_logdir(suite_dir / f"run-{index}")
            run = _run_once(suite, tool, version, cwd, logdir, stop, options)
            runs.append(run)
            if run.status is not SuiteStatus.OK:
                break
    except ConfigError as error:
        if error.path:
            raise
        # A tool refusing the suite's tool_args knows neither the suite nor the config file.
        raise ConfigError(f"suite {suite.name!r}: {error.message}", path=config.source,
                          hint=error.hint) from None
    return combine_runs(runs, repeat=suite.repeat, artifacts_dir=str(suite_dir))


def _run_once(suite: SuiteConfig, tool: Tool, version: str, cwd: Path, logdir: Path,
              stop: StopRequest | None, options: ToolOptions) -> SuiteRecord:
    launch = tool.launch(suite.argv(), logdir, options)
    inherited = {name: value for name, value in os.environ.items() if name not in FORGE_TOKENS}
    suite_env = {**inherited, **suite.env}
    env = {**suite_env, **launch.env}
    outcome = run_command(launch.argv, env=env, cwd=cwd, timeout=suite.timeout,
                          stdout_path=logdir / "stdout.log", stderr_path=logdir / "stderr.log", stop=stop)
    notes: tuple[str, ...] = (leftovers_note(outcome.leftovers),) if outcome.leftovers else ()
    for note in notes:  # now, not with the report: a runner kept busy is worth knowing at once
        print(f"memgate: suite {suite.name!r} {note}", file=sys.stderr)
    with collector_paused():
        processes = tool.collect(logdir, outcome, options)
    processes, naming_notes = name_processes(processes, suite.argv(), cwd, suite_env)
    notes += naming_notes
    status, detail = suite_status(outcome, processes, suite.accept_exit_codes, suite.timeout)
    if stop is not None and stop.requested:  # what was measured is kept, but the run was cut short
        status, detail = SuiteStatus.INCOMPLETE, stop.reason()
    return SuiteRecord.from_processes(
        suite.name, suite.tool, processes, status=status, status_detail=detail, tool_version=version,
        command=tuple(suite.argv()), exit_code=outcome.exit_code, duration_seconds=outcome.duration_seconds,
        artifacts_dir=str(logdir), notes=notes, alloc_wrappers=options.alloc_wrappers.globs,
    )


#: How many of the processes a suite left running its note names one by one.
_LEFTOVERS_NAMED = 10


def leftovers_note(leftovers: Sequence[Leftover]) -> str:
    """"left 2 processes running (1234 sleep, 1240 mydaemon): ended them"."""
    named = ", ".join(f"{process.pid} {process.name}" for process in leftovers[:_LEFTOVERS_NAMED])
    more = len(leftovers) - _LEFTOVERS_NAMED
    if more > 0:
        named += f" and {more} more"
    count = f"{len(leftovers)} process{'es' if len(leftovers) != 1 else ''}"
    return f"left {count} running ({named}): ended {'them' if len(leftovers) != 1 else 'it'}"


def combine_runs(
    runs: Sequence[SuiteRecord], *, repeat: int, artifacts_dir: str | None = None
) -> SuiteRecord:
    """The runs of one suite (in order; fewer than ``repeat`` when a run stopped the series) as one
    record. Each run's logs are under ``<artifacts>/<suite>/run-<i>/``, and:

    - status: the worst run's (crashed or timed out, then failed, then incomplete); the runs after the
      first that did not end normally are skipped, since the suite fails or is incomplete already;
    - leak and error figures: the largest of any run, and every leak or error site seen in any run, so
      that a finding of one run in five is not voted away;
    - every other figure: the median of the runs (the lower middle value for an even count, so the
      figure is one that was measured);
    - exact metrics (all but ``rss_peak_bytes`` and the page faults, which vary by nature) must agree:
      those that differ make the suite nondeterministic (``SuiteRecord.nondeterministic``, with their
      range), which the reports say;
    - per-test figures (``SuiteRecord.tests``): each test's combined the same way, over the runs
      that measured it;
    - each run's status and figures stay in ``SuiteRecord.runs``, its processes in ``processes`` (with
      their ``run``)."""
    if not runs:
        raise ValueError("combine_runs needs at least one run")
    first = runs[0]
    worst_index = max(range(len(runs)), key=lambda i: (_STATUS_RANK[runs[i].status], -i))
    worst = runs[worst_index]
    detail = None
    if worst.status is not SuiteStatus.OK:
        skipped = repeat - len(runs)
        left_out = f"; {skipped} more run{'s' if skipped != 1 else ''} skipped" if skipped else ""
        detail = f"run {worst_index + 1} of {repeat}: {worst.status_detail or worst.status.value}{left_out}"
    metrics, spreads = combine_run_metrics([run.metrics for run in runs])
    durations = [run.duration_seconds for run in runs if run.duration_seconds is not None]
    return SuiteRecord(
        name=first.name,
        tool=first.tool,
        tool_version=first.tool_version,
        command=first.command,
        status=worst.status,
        status_detail=detail,
        exit_code=worst.exit_code,
        duration_seconds=round(sum(durations), 3) if durations else None,
        artifacts_dir=artifacts_dir,
        processes=tuple(process.model_copy(update={"run": index})
                        for index, run in enumerate(runs, 1) for process in run.processes),
        metrics=metrics,
        runs=tuple(SuiteRun(index=index, status=run.status, status_detail=run.status_detail,
                            exit_code=run.exit_code, duration_seconds=run.duration_seconds,
                            artifacts_dir=run.artifacts_dir, metrics=run.metrics)
                   for index, run in enumerate(runs, 1)),
        nondeterministic=spreads,
        tests=combine_run_tests([run.tests for run in runs]),
        nondeterministic_tests=(*(spread for run in runs for spread in run.nondeterministic_tests),
                                *run_test_spreads([run.tests for run in runs])),
        notes=tuple(f"run {index}: {note}" for index, run in enumerate(runs, 1) for note in run.notes),
        alloc_wrappers=first.alloc_wrappers,
        suppressions=first.suppressions,  # every run had the same suppressions; the first run's counts
    )


def check_runnable(program: str, cwd: Path, env: dict[str, str]) -> None:
    """Raise ``ToolError`` when the suite's program cannot be started, before any tool runs: under
    valgrind, heaptrack or time the tool would start and fail on its own, each in its own words and
    exit status; this way every tool says the same thing, and the run is exit 3, not a failing suite.
    The program is looked up as ``exec`` would: a path from ``cwd``, a bare name on the suite's PATH."""
    if "/" in program:
        path: str | None = str(cwd / program)
    else:
        path = shutil.which(program, mode=os.F_OK, path=env.get("PATH", os.defpath))
    if path is None or not os.path.exists(path):
        raise ToolError(f"cannot run {program!r}: no such program", path=cwd,
                        hint="build the test program first, or fix the suite's command (paths are relative "
                             "to cwd)")
    if os.path.isdir(path):
        raise ToolError(f"cannot run {program!r}: it is a folder", path=cwd,
                        hint="give the test program in the suite's command, not its folder")
    if not os.access(path, os.X_OK):
        raise ToolError(f"cannot run {program!r}: permission denied", path=cwd,
                        hint="make it executable (chmod +x)")


def make_memgate_folder(artifacts: Path) -> None:
    """Make the ``.memgate`` folder that holds ``artifacts`` (the default ``.memgate/artifacts``) with a
    ``.gitignore`` of ``*`` inside, as pytest does for its cache: git then never sees memgate's logs and
    reports, and nobody commits them by mistake. A folder that exists already is left as it is."""
    folder = next((parent for parent in (artifacts, *artifacts.parents) if parent.name == ".memgate"), None)
    if folder is None:
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir()
        (folder / ".gitignore").write_text("# made by memgate: its logs and reports stay out of git\n*\n")
    except FileExistsError:
        return
    except OSError as error:
        raise ToolError(f"cannot make the artifacts folder: {error.strerror}", path=folder,
                        hint="make its parent writable, or set artifacts_dir in the config") from None


def _fresh_logdir(path: Path) -> Path:
    """The suite's log folder, emptied of an earlier run's logs (which would be parsed again). Only a
    folder memgate made, or an empty one, is ever emptied."""
    try:
        if path.is_dir() and not _made_by_memgate(path) and any(path.iterdir()):
            raise ConfigError("this log folder already exists and memgate did not make it: it is left alone",
                              path=path, hint="set artifacts_dir to a folder for memgate's logs only (the "
                              "default is .memgate/artifacts), or remove that folder")
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        (path / LOGDIR_MARK).touch()
    except OSError as error:
        raise ToolError(f"cannot prepare the artifacts folder: {error.strerror}", path=path,
                        hint="make it writable, or set artifacts_dir in the config") from None
    return path


def _made_by_memgate(path: Path) -> bool:
    """It holds ``LOGDIR_MARK``; or, made before there was one, the two logs every run writes (in its
    first run's folder, for a suite run several times)."""
    if (path / LOGDIR_MARK).is_file():
        return True
    return any(all((folder / name).is_file() for name in ("stdout.log", "stderr.log"))
               for folder in (path, path / "run-1"))


def signal_name(value: int | str) -> str:
    """"SIGSEGV" for 11, "SEGV" (ASan's word) or "SIGSEGV"; what no signal is called stays as given."""
    if isinstance(value, int):
        try:
            return signal.Signals(value).name
        except ValueError:
            return f"signal {value}"
    name = value.strip().upper()
    for candidate in (name, f"SIG{name}"):
        if candidate in signal.Signals.__members__:
            return candidate
    return value


def suite_status(
    outcome: Outcome, processes: Sequence[ProcessRecord], accepted: Sequence[int], timeout: float
) -> tuple[SuiteStatus, str | None]:
    """How the suite ended. A failing exit status is forgiven only when the tool found something
    (sanitizers exit non-zero on a finding), because then the comparison judges the findings."""
    if outcome.timed_out:
        return SuiteStatus.TIMEOUT, f"killed after the {timeout:g} s timeout"
    crashed = [p for p in processes if p.fatal_signal]
    # The same words whichever tool saw the signal: the program's own (sanitizers), re-raised by the
    # tool (valgrind, memusage), or only recorded by it (heaptrack, time), which knows the process.
    if outcome.signal is not None:
        return SuiteStatus.CRASHED, f"killed by {signal_name(outcome.signal)}"
    if crashed:
        who = f" (process {crashed[0].pid})" if crashed[0].pid is not None else ""
        return SuiteStatus.CRASHED, f"killed by {signal_name(crashed[0].fatal_signal or '')}{who}"
    if outcome.exit_code not in accepted and not any(p.has_findings for p in processes):
        return SuiteStatus.FAILED, f"exited with status {outcome.exit_code}"
    if not processes:
        return SuiteStatus.INCOMPLETE, "the tool wrote no output"
    return output_status(processes)
