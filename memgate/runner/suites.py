"""Run the chosen suites (``check``, ``run``, ``baseline update``) within a memory budget and put every
suite's outcome in one ``Report``."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from memgate import __version__
from memgate.config import Config, SuiteConfig
from memgate.errors import MemgateError, ToolError
from memgate.forges import ci
from memgate.interrupt import StopRequest
from memgate.records import Environment, Report, SuiteRecord, SuiteStatus
from memgate.runner.schedule import MemoryBudget, run_scheduled
from memgate.runner.suite import LOGDIR_MARK, run_suite
from memgate.tools.base import OWN_FILE_PREFIX


def select_suites(config: Config, names: Sequence[str]) -> list[SuiteConfig]:
    return [config.suite(name) for name in names] if names else list(config.suites)


def run_suites(
    config: Config,
    suites: Sequence[SuiteConfig],
    jobs: int,
    *,
    stop: StopRequest | None = None,
    budget: MemoryBudget | None = None,
) -> Report:
    """Run ``suites``, ``jobs`` at a time within the memory ``budget`` (default: the memory available
    now; see ``memgate.runner.schedule``). A suite that cannot run (tool missing, command not found) is kept
    in the report as incomplete with the reason, so the other suites' results still count. After a
    ``stop`` request (SIGINT, SIGTERM: ``memgate.interrupt``) the running suites end early and the
    others do not start: all of them are incomplete, "interrupted by ...". The report lists suites in
    configuration order whatever order they finish in."""
    stop = stop or StopRequest()
    probes = EnvironmentProbes(config.root)  # git and the compiler answer while the suites run
    try:
        records = run_scheduled(
            suites, lambda suite: _run_one(suite, config, stop), jobs=jobs,
            budget=budget or MemoryBudget.from_system(), tool_of=lambda suite: suite.tool, stop=stop,
            not_started=lambda suite: _not_run(suite, f"not started: {stop.reason()}"),
        )
    except BaseException:
        probes.end()
        raise
    return make_report(records, config.root, probes)


def _run_one(suite: SuiteConfig, config: Config, stop: StopRequest) -> SuiteRecord:
    try:
        return run_suite(suite, config, stop)
    except ToolError as error:
        return _not_run(suite, error.one_line())


def _not_run(suite: SuiteConfig, why: str) -> SuiteRecord:
    return SuiteRecord(name=suite.name, tool=suite.tool, command=tuple(suite.argv()),
                       status=SuiteStatus.INCOMPLETE, status_detail=why)


def make_report(suites: Sequence[SuiteRecord], root: Path | None = None,
                probes: EnvironmentProbes | None = None) -> Report:
    """The report of ``suites``; with ``root`` (the config's folder), frame paths under its git work
    tree are made relative to it (``memgate.report.common.with_repo_relative_frames``). ``probes``:
    the environment's, asked when the run started (default: asked now)."""
    probes = probes or EnvironmentProbes(root)
    if root is not None:
        from memgate.report.common import with_repo_relative_frames

        repo_root = probes.answer("top_level") or root
        suites = [with_repo_relative_frames(suite, repo_root) for suite in suites]
    return Report(
        memgate_version=__version__,
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        environment=describe_environment(root, probes),
        suites=tuple(suites),
    )


def describe_environment(root: Path | None, probes: EnvironmentProbes | None = None) -> Environment:
    probes = probes or EnvironmentProbes(root, work_tree=False)
    libc_name, libc_version = platform.libc_ver()
    return Environment(
        git_commit=ci.built_commit() or probes.answer("commit"),
        compiler=probes.answer("compiler"),
        libc=f"{libc_name} {libc_version}".strip() or None,
        platform=f"{platform.system()} {platform.machine()}, Python {sys.version.split()[0]}",
    )


class EnvironmentProbes:
    """What other programs say of the environment: the compiler's version, the git work tree and commit
    of ``root`` (the commit only outside CI, which names it; the work tree unless ``work_tree`` is
    False). Each program starts when this is made and is read when its answer is wanted, so that a
    run's report need not wait for them after its suites: they answer while the suites run."""

    _TIMEOUT_SECONDS = 10

    def __init__(self, root: Path | None, *, work_tree: bool = True) -> None:
        commands = {"compiler": [os.environ.get("CC", "cc"), "--version"]}
        if root is not None:
            if work_tree:
                commands["top_level"] = ["git", "-C", str(root), "rev-parse", "--show-toplevel"]
            if ci.built_commit() is None:
                commands["commit"] = ["git", "-C", str(root), "rev-parse", "HEAD"]
        self._running = {name: _started(command) for name, command in commands.items()}
        self._answers: dict[str, str | None] = {}

    def answer(self, name: str) -> str | None:
        """The first line the program printed, if it succeeded; None when it failed, could not start,
        took longer than 10 s, or was not asked."""
        if name not in self._answers:
            self._answers[name] = _first_line(self._running.pop(name, None), self._TIMEOUT_SECONDS)
        return self._answers[name]

    def end(self) -> None:
        """Stop the programs not read yet (the run was cut short)."""
        for process in self._running.values():
            if process is not None:
                process.kill()
                process.communicate()
        self._running.clear()


def _started(command: list[str]) -> subprocess.Popen[str] | None:
    try:
        # Its own session: a Ctrl-C meant for the suites does not cut the report's facts short.
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    except OSError:
        return None


def _first_line(process: subprocess.Popen[str] | None, timeout: float) -> str | None:
    if process is None:
        return None
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None
    lines = output.strip().splitlines()
    return lines[0] if process.returncode == 0 and lines else None


def suite_problems(report: Report) -> list[MemgateError]:
    """One error per suite that did not give usable figures, for the one-line messages on stderr."""
    problems: list[MemgateError] = []
    for suite in report.suites:
        if suite.status is SuiteStatus.INCOMPLETE:
            problems.append(ToolError(
                f"suite {suite.name!r}: {suite.status_detail or 'the tool output is incomplete'}",
                path=suite.artifacts_dir, hint=_logs_hint(suite.artifacts_dir),
            ))
    return problems


def _logs_hint(artifacts_dir: str | None) -> str:
    """What the suite's log folder holds, said only when true: a suite that never started has none
    (its detail says why), and a tool that never ran (a program built without the sanitizer) leaves
    only empty logs, where "see what the tool printed" would send the user to nothing."""
    if artifacts_dir is None:
        return ""
    if _holds_output(Path(artifacts_dir)):
        return "the raw logs are kept there; see what the tool printed"
    return "the logs there are empty: neither the tool nor the program printed anything"


def _holds_output(folder: Path) -> bool:
    """Whether a file under ``folder`` (run-N folders included) that memgate did not write itself has
    anything in it; stops at the first one."""
    for parent, _, names in os.walk(folder):
        for name in names:
            if name == LOGDIR_MARK or name.startswith(OWN_FILE_PREFIX):  # memgate's, not printed
                continue
            try:
                if os.stat(os.path.join(parent, name)).st_size > 0:
                    return True
            except OSError:
                continue
    return False
