"""SIGINT and SIGTERM to a running ``memgate``: every suite's process group is stopped (Valgrind's
children included), the partial report is written with the suites cut short marked incomplete, and
memgate exits 128 + N. Real ``memgate`` processes, real Valgrind and ASan, real signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from memgate.interrupt import StopRequest, stop_signals
from memgate.proc import TERMINATE_GRACE_SECONDS, run_command
from tests.conftest import BuildProgram

START_TIMEOUT = 60.0  # seconds for the suites to be running (Valgrind starts slowly on a busy machine)
EXIT_TIMEOUT = 30.0

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")


def toml(value: str | Path) -> str:
    return json.dumps(str(value))


@dataclass(frozen=True)
class Programs:
    """memprog copied under the test's own folder: a path no other test's processes have, so that
    pgrep on it finds this test's processes only."""

    folder: Path
    plain: Path
    asan: Path

    def leftovers(self) -> list[str]:
        found = subprocess.run(["pgrep", "-af", str(self.folder)], capture_output=True, text=True)
        return found.stdout.splitlines()


@pytest.fixture
def programs(build_program: BuildProgram, tmp_path: Path) -> Programs:
    folder = tmp_path / "bin"
    folder.mkdir()
    plain = shutil.copy(build_program("memprog.c"), folder / "memprog")
    asan = shutil.copy(build_program("memprog.c", flags=("-fsanitize=address",)), folder / "memprog_asan")
    return Programs(folder, Path(plain), Path(asan))


def hanging_config(folder: Path, programs: Programs) -> Path:
    """Three suites: memcheck on a shell whose two children hang (three Valgrind processes), ASan on
    a hanging program, and a third suite that ``--jobs 2`` leaves queued."""
    config = folder / "memgate.toml"
    two_children = f"{programs.plain} hang & {programs.plain} hang; wait"
    config.write_text(
        'artifacts_dir = "artifacts"\n'
        f'[[suite]]\nname = "memcheck"\ntool = "valgrind"\nshell = true\ncommand = {toml(two_children)}\n'
        'timeout = "10m"\n'
        f'[[suite]]\nname = "asan"\ntool = "asan"\ncommand = [{toml(programs.asan)}, "hang"]\n'
        'timeout = "10m"\n'
        f'[[suite]]\nname = "queued"\ntool = "rusage"\ncommand = [{toml(programs.plain)}, "clean"]\n'
    )
    return config


def wait_for(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def suites_running(folder: Path, programs: Programs) -> bool:
    """memcheck runs the shell and both children, the ASan program runs, and all of them wait in
    ``pause()`` (sleeping): past start-up, so that what they did so far is in the partial report."""
    xml_files = list((folder / "artifacts" / "memcheck").glob("memcheck.*.xml"))
    found = subprocess.run(["pgrep", "-f", str(programs.folder)], capture_output=True, text=True)
    pids = found.stdout.split()
    return len(xml_files) == 3 and len(pids) == 4 and all(process_state(pid) == "S" for pid in pids)


def process_state(pid: str) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rfind(")") + 2]


def settled(condition: Callable[[], bool], times: int = 5) -> Callable[[], bool]:
    """``condition`` true at ``times`` polls in a row (a process sleeps a moment during start-up too)."""
    streak = [0]

    def check() -> bool:
        streak[0] = streak[0] + 1 if condition() else 0
        return streak[0] >= times

    return check


@dataclass(frozen=True)
class Ended:
    code: int
    out: str
    err: str


def start_memgate(folder: Path, *argv: str) -> subprocess.Popen[str]:
    """``memgate ARGV`` in a session of its own, as a shell runs a foreground job."""
    return subprocess.Popen([sys.executable, "-m", "memgate", *argv], cwd=folder, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_sigint_as_in_a_foreground_job)


def _sigint_as_in_a_foreground_job() -> None:
    """A foreground job gets SIGINT at its default, even when the tests run with it ignored (started
    in the background by a shell without job control), which memgate would rightly keep ignoring."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(process: subprocess.Popen[str], signum: signal.Signals) -> Ended:
    if signum is signal.SIGINT:
        os.killpg(process.pid, signum)  # Ctrl-C: the terminal signals the foreground process group
    else:
        process.send_signal(signum)  # kill, timeout(1), a CI runner cancelling the job
    out, err = process.communicate(timeout=EXIT_TIMEOUT)
    return Ended(process.returncode, out, err)


def suites_of(report: Path) -> dict[str, dict[str, object]]:
    return {suite["name"]: suite for suite in json.loads(report.read_text())["suites"]}


@needs_valgrind
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_check_interrupted_stops_every_suite_and_writes_the_partial_report(
    signum: signal.Signals, programs: Programs, tmp_path: Path
) -> None:
    config = hanging_config(tmp_path, programs)
    process = start_memgate(tmp_path, "check", "--config", str(config), "--jobs", "2",
                            "--json", "report.json", "--markdown", "report.md")
    try:
        wait_for(settled(lambda: suites_running(tmp_path, programs)), "the suites to start")
        ended = interrupt(process, signum)
    finally:
        if process.poll() is None:
            process.kill()
    name = signum.name

    assert ended.code == 128 + signum, ended.err
    assert programs.leftovers() == [], "a process of a suite outlived memgate"
    assert "Traceback" not in ended.err
    assert f"memgate: interrupted by {name}: the running suites were stopped; the partial report is in " \
           "report.json" in ended.err
    suites = suites_of(tmp_path / "report.json")
    assert list(suites) == ["memcheck", "asan", "queued"]
    # memcheck's XML says what the processes did so far; ASan, killed, writes nothing (empty logs).
    logs = {"memcheck": "the raw logs are kept there", "asan": "the logs there are empty"}
    for cut in ("memcheck", "asan"):
        assert suites[cut]["status"] == "incomplete"
        assert suites[cut]["status_detail"] == f"interrupted by {name}"
        assert suites[cut]["artifacts_dir"] == str(tmp_path / "artifacts" / cut)
        assert f"memgate: error: suite '{cut}': interrupted by {name} ({tmp_path / 'artifacts' / cut}): " \
               f"{logs[cut]}" in ended.err
    assert suites["queued"]["status"] == "incomplete"
    assert suites["queued"]["status_detail"] == f"not started: interrupted by {name}"
    assert suites["queued"]["artifacts_dir"] is None
    # The raw logs stay: memcheck's XML of the shell and both children, each process one record.
    memcheck_logs = tmp_path / "artifacts" / "memcheck"
    assert len(list(memcheck_logs.glob("memcheck.*.xml"))) == 3
    assert {"stdout.log", "stderr.log"} <= {path.name for path in memcheck_logs.iterdir()}
    # What memcheck saw before the stop is kept: each child's 16-byte leak (SIGTERM lets memcheck
    # finish its XML: the children were given the grace period although the shell ended first).
    processes = suites["memcheck"]["processes"]
    assert isinstance(processes, list) and len(processes) == 3
    assert suites["memcheck"]["metrics"]["leak_definite_bytes"] == 32  # type: ignore[index]
    # The partial table is printed and the Markdown written: both say the run is incomplete.
    assert "INCOMPLETE" in ended.out
    assert f"memcheck: incomplete figures: interrupted by {name}" in ended.out, ended.out
    assert "incomplete" in (tmp_path / "report.md").read_text().lower()


@needs_valgrind
def test_run_interrupted_by_sigterm_exits_143_with_the_json_report(
    programs: Programs, tmp_path: Path
) -> None:
    config = hanging_config(tmp_path, programs)
    process = start_memgate(tmp_path, "run", "--config", str(config), "--jobs", "2")
    try:
        wait_for(settled(lambda: suites_running(tmp_path, programs)), "the suites to start")
        ended = interrupt(process, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    assert ended.code == 143, ended.err
    assert programs.leftovers() == []
    suites = suites_of(tmp_path / "artifacts" / "report.json")
    assert [suite["status_detail"] for suite in suites.values()] == [
        "interrupted by SIGTERM", "interrupted by SIGTERM", "not started: interrupted by SIGTERM"]


def test_baseline_update_interrupted_writes_no_baseline(programs: Programs, tmp_path: Path) -> None:
    config = tmp_path / "memgate.toml"
    config.write_text(f'[[suite]]\nname = "asan"\ntool = "asan"\ncommand = [{toml(programs.asan)}, "hang"]\n')
    process = start_memgate(tmp_path, "baseline", "update", "--config", str(config))
    try:
        wait_for(lambda: bool(programs.leftovers()), "the suite to start")
        ended = interrupt(process, signal.SIGINT)
    finally:
        if process.poll() is None:
            process.kill()
    assert ended.code == 130, ended.err
    assert programs.leftovers() == []
    assert "memgate: no baseline written" in ended.err
    assert not (tmp_path / "baselines").exists()


def test_a_second_signal_kills_a_suite_that_ignores_sigterm_without_the_grace_period(
    programs: Programs, tmp_path: Path
) -> None:
    """The command ignores SIGTERM (inherited SIG_IGN): only SIGKILL ends it. The first SIGINT asks
    politely, the second one does not wait out the grace period."""
    config = tmp_path / "memgate.toml"
    stubborn = f"trap '' TERM; exec {programs.plain} hang"
    config.write_text('[[suite]]\nname = "stubborn"\ntool = "rusage"\nshell = true\n'
                      f'command = {toml(stubborn)}\n')
    process = start_memgate(tmp_path, "run", "--config", str(config))
    try:
        wait_for(lambda: bool(programs.leftovers()), "the suite to start")
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.5)
        assert process.poll() is None, "the suite ignores SIGTERM: memgate waits for the grace period"
        started = time.monotonic()
        ended = interrupt(process, signal.SIGINT)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
    assert ended.code == 130, ended.err
    assert programs.leftovers() == []
    assert took < TERMINATE_GRACE_SECONDS - 1, took
    suites = suites_of(tmp_path / ".memgate" / "artifacts" / "report.json")
    assert suites["stubborn"]["status_detail"] == "interrupted by SIGINT"


def test_run_command_returns_when_stop_is_requested(programs: Programs, tmp_path: Path) -> None:
    stop = StopRequest()
    threading.Timer(0.3, stop.request, args=(signal.SIGTERM,)).start()
    outcome = run_command([str(programs.plain), "hang"], env=dict(os.environ), cwd=tmp_path, timeout=60,
                          stdout_path=tmp_path / "out", stderr_path=tmp_path / "err", stop=stop)
    assert outcome.signal == signal.SIGTERM and outcome.exit_code is None and not outcome.timed_out
    assert outcome.duration_seconds < TERMINATE_GRACE_SECONDS
    assert programs.leftovers() == []


def test_stop_request_names_the_signal_and_the_exit_status() -> None:
    stop = StopRequest()
    states = [(stop.requested, stop.forced, stop.reason())]
    stop.request(signal.SIGTERM)
    states.append((stop.requested, stop.forced, stop.reason()))
    stop.request(signal.SIGINT)  # a second signal forces the stop and keeps the first one's name
    states.append((stop.requested, stop.forced, stop.reason()))
    assert states == [(False, False, "interrupted by a stop request"),
                      (True, False, "interrupted by SIGTERM"),
                      (True, True, "interrupted by SIGTERM")]
    assert stop.exit_code() == 143


def test_stop_signals_restores_the_previous_handlers() -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with stop_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # handled: it only records the request
        wait_for(lambda: stop.requested, "the handler", timeout=5)
    assert stop.exit_code() == 143
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_an_ignored_signal_stays_ignored() -> None:
    """A shell starts background jobs with SIGINT ignored: memgate must not start answering it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_signals() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert callable(signal.getsignal(signal.SIGTERM))  # SIGTERM is still caught
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            assert not stop.requested
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
