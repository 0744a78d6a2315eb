"""What a suite's command leaves running is ended when it ends: processes of its group, a daemon that
left the group with ``setsid``, the grandchild of a double fork; each suite is told its own leftovers
when several run at once, and a process that is not the suite's is left alone. Real shells, real
processes, real ``memgate`` runs; a process is found by a marker argument of its own (``sleep
300.<random>``), scanning /proc."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memgate.errors import ToolError
from memgate.proc import Leftover, Outcome, run_command
from memgate.records import SuiteRecord
from memgate.runner.suite import combine_runs, leftovers_note

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and subreapers: Linux")

EXIT_TIMEOUT = 60.0


def marker() -> str:
    """A ``sleep`` argument no other process has: ``300.<random digits>``."""
    return f"300.{random.randrange(10**8, 10**9)}"


def alive_with(argument: str) -> list[int]:
    """The processes (zombies left out) whose command line holds ``argument`` as one argument."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            arguments = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if argument.encode() in arguments and stat[stat.rfind(")") + 2] != "Z":
            found.append(int(entry))
    return found


def started(argument: str) -> str:
    """Shell text that waits until the ``sleep ARGUMENT`` started in the background runs, so that
    what the test checks does not depend on how fast the shell forks."""
    return f"until pgrep -f '^sleep {argument}$' >/dev/null; do sleep 0.01; done\n"


def script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def run(folder: Path, command: Path, timeout: float = 60.0) -> Outcome:
    return run_command([str(command)], env=dict(os.environ), cwd=folder, timeout=timeout,
                       stdout_path=folder / "stdout.log", stderr_path=folder / "stderr.log")


@pytest.fixture
def bystander() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A ``sleep`` that the test started before the suite: not the suite's, so it must survive."""
    argument = marker()
    process = subprocess.Popen(["sleep", argument])
    yield process, argument
    process.kill()
    process.wait()


# --- the leftover-kill step itself -------------------------------------------------------------------


def test_a_background_child_in_the_suites_group_is_ended_and_named(tmp_path: Path) -> None:
    daemon = marker()
    outcome = run(tmp_path, script(tmp_path, "suite.sh", f"sleep {daemon} &\n{started(daemon)}exit 0\n"))
    assert alive_with(daemon) == []
    assert outcome.exit_code == 0
    assert [leftover.name for leftover in outcome.leftovers] == ["sleep"]


def test_a_daemon_that_left_the_group_with_setsid_is_ended(tmp_path: Path) -> None:
    daemon = marker()
    body = f"setsid sleep {daemon} &\n{started(daemon)}exit 0\n"
    outcome = run(tmp_path, script(tmp_path, "suite.sh", body))
    assert alive_with(daemon) == []
    assert [leftover.name for leftover in outcome.leftovers] == ["sleep"]


def test_the_grandchild_of_a_double_fork_is_ended(tmp_path: Path) -> None:
    """The subshell exits at once, so the sleep's parent is gone before the suite ends: it is an
    orphan, which the subreaper adopted."""
    daemon = marker()
    outcome = run(tmp_path, script(tmp_path, "suite.sh", f"( setsid sleep {daemon} & ) &\nwait\n"
                                                         f"{started(daemon)}exit 0\n"))
    assert alive_with(daemon) == []
    assert [leftover.name for leftover in outcome.leftovers] == ["sleep"]


def test_a_whole_tree_left_running_is_ended_each_process_named_once(tmp_path: Path) -> None:
    parent, child = marker(), marker()
    body = (f"setsid sh -c 'sleep {child} & exec sleep {parent}' &\n"
            f"{started(parent)}{started(child)}exit 0\n")
    outcome = run(tmp_path, script(tmp_path, "suite.sh", body))
    assert alive_with(parent) == [] and alive_with(child) == []
    pids = [leftover.pid for leftover in outcome.leftovers]
    assert len(pids) == 2 and len(set(pids)) == 2


def test_a_suite_that_leaves_nothing_running_has_no_leftovers(tmp_path: Path) -> None:
    outcome = run(tmp_path, script(tmp_path, "suite.sh", "sleep 0.1 & wait\nexit 4\n"))
    assert outcome.exit_code == 4
    assert outcome.leftovers == ()


def test_a_process_that_is_not_the_suites_survives(
    tmp_path: Path, bystander: tuple[subprocess.Popen[bytes], str]
) -> None:
    process, argument = bystander
    daemon = marker()
    outcome = run(tmp_path, script(tmp_path, "suite.sh", f"setsid sleep {daemon} &\n{started(daemon)}"))
    assert alive_with(argument) == [process.pid]
    assert process.poll() is None
    assert [leftover.name for leftover in outcome.leftovers] == ["sleep"]
    assert process.pid not in [leftover.pid for leftover in outcome.leftovers]
    assert alive_with(daemon) == []


def test_a_timed_out_suites_daemon_is_ended_too(tmp_path: Path) -> None:
    daemon = marker()
    outcome = run(tmp_path, script(tmp_path, "suite.sh", f"setsid sleep {daemon} &\n{started(daemon)}"
                                                         "exec sleep 300\n"), timeout=1.0)
    assert outcome.timed_out
    assert alive_with(daemon) == []
    assert "sleep" in [leftover.name for leftover in outcome.leftovers]


# --- the command is still run as before --------------------------------------------------------------


def test_the_exit_status_and_output_are_the_commands_own(tmp_path: Path) -> None:
    outcome = run(tmp_path, script(tmp_path, "suite.sh", "echo out; echo err >&2; read line; exit 7\n"))
    assert outcome.exit_code == 7 and outcome.signal is None
    assert (tmp_path / "stdout.log").read_text() == "out\n"  # and stdin was /dev/null: read returned
    assert (tmp_path / "stderr.log").read_text() == "err\n"  # the helper wrote nothing there


def test_the_resource_usage_is_the_commands_own(tmp_path: Path) -> None:
    """64 MiB touched by the command: its peak, not the helper's (a small Python that touches little)."""
    outcome = run_command([sys.executable, "-c", "data = b'x' * (64 << 20)"], env=dict(os.environ),
                          cwd=tmp_path, timeout=60, stdout_path=tmp_path / "o", stderr_path=tmp_path / "e")
    assert outcome.rss_peak_bytes is not None and outcome.rss_peak_bytes >= 64 << 20
    assert outcome.user_seconds is not None and outcome.page_faults_minor is not None
    assert outcome.page_faults_minor >= (64 << 20) // os.sysconf("SC_PAGE_SIZE")


def test_a_command_killed_by_a_signal_says_which(tmp_path: Path) -> None:
    outcome = run(tmp_path, script(tmp_path, "suite.sh", "kill -SEGV $$\n"))
    assert outcome.exit_code is None and outcome.signal == signal.SIGSEGV


def test_the_environment_is_passed_exactly_and_a_relative_command_runs_from_cwd(tmp_path: Path) -> None:
    script(tmp_path, "suite.sh", 'printf "%s|%s" "$MEMGATE_PROBE" "$1"\n')
    env = {"MEMGATE_PROBE": "é=x y", "PATH": "/usr/bin:/bin"}
    outcome = run_command(["./suite.sh", "two words"], env=env, cwd=tmp_path, timeout=60,
                          stdout_path=tmp_path / "o", stderr_path=tmp_path / "e")
    assert outcome.exit_code == 0
    assert (tmp_path / "o").read_text() == "é=x y|two words"


def test_a_missing_program_is_a_tool_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"cannot run './nothing-here': no such program"):
        run_command(["./nothing-here"], env=dict(os.environ), cwd=tmp_path, timeout=60,
                    stdout_path=tmp_path / "o", stderr_path=tmp_path / "e")


def test_a_program_that_is_not_executable_is_a_tool_error_saying_so(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a program")
    with pytest.raises(ToolError, match="permission denied"):
        run_command(["./data"], env=dict(os.environ), cwd=tmp_path, timeout=60,
                    stdout_path=tmp_path / "o", stderr_path=tmp_path / "e")


# --- what memgate says ---------------------------------------------------------------------------------


def test_the_note_counts_and_names_the_processes() -> None:
    assert leftovers_note([Leftover(1234, "sleep"), Leftover(1240, "mydaemon")]) == (
        "left 2 processes running (1234 sleep, 1240 mydaemon): ended them")
    assert leftovers_note([Leftover(7, "sleep")]) == "left 1 process running (7 sleep): ended it"
    many = leftovers_note([Leftover(pid, "x") for pid in range(1, 13)])
    assert many.startswith("left 12 processes running (1 x, 2 x,") and many.endswith(
        "10 x and 2 more): ended them")


def test_the_notes_of_several_runs_say_which_run() -> None:
    runs = [SuiteRecord(name="s", tool="rusage"),
            SuiteRecord(name="s", tool="rusage", notes=("left 1 process running (7 sleep): ended it",))]
    assert combine_runs(runs, repeat=2).notes == ("run 2: left 1 process running (7 sleep): ended it",)


def two_suites_config(folder: Path, daemons: dict[str, list[str]]) -> Path:
    suites = []
    for name, arguments in daemons.items():
        body = "".join(f"setsid sleep {argument} &\n( sleep {argument}0 & ) &\n" for argument in arguments)
        body += "".join(started(argument) + started(argument + "0") for argument in arguments)
        script(folder, f"{name}.sh", body + "sleep 0.5\nexit 0\n")  # both suites run at once
        suites.append(f'[[suite]]\nname = "{name}"\ntool = "rusage"\ncommand = ["./{name}.sh"]\n')
    config = folder / "memgate.toml"
    config.write_text('artifacts_dir = "artifacts"\n' + "".join(suites))
    return config


def leftover_lines(stderr: str) -> dict[str, str]:
    lines = re.findall(r"^memgate: suite '(\w+)' (left .*)$", stderr, flags=re.MULTILINE)
    return dict(lines)


def pids_of(note: str) -> set[int]:
    return {int(pid) for pid in re.findall(r"(\d+) sleep", note)}


def test_two_suites_at_once_are_each_told_their_own_leftovers(
    tmp_path: Path, bystander: tuple[subprocess.Popen[bytes], str]
) -> None:
    daemons = {"unit": [marker()], "slow": [marker(), marker()]}
    two_suites_config(tmp_path, daemons)
    ended = subprocess.run([sys.executable, "-m", "memgate", "run", "--jobs", "2", "--json", "report.json"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=EXIT_TIMEOUT)
    assert ended.returncode == 0, ended.stderr
    for arguments in daemons.values():
        for argument in arguments:
            assert alive_with(argument) == [] and alive_with(argument + "0") == []
    assert alive_with(bystander[1]) == [bystander[0].pid]
    lines = leftover_lines(ended.stderr)
    assert set(lines) == {"unit", "slow"}
    assert lines["unit"].startswith("left 2 processes running (")
    assert lines["slow"].startswith("left 4 processes running (")
    assert lines["unit"].endswith("): ended them")
    assert not pids_of(lines["unit"]) & pids_of(lines["slow"])
    suites = {suite["name"]: suite for suite in json.loads((tmp_path / "report.json").read_text())["suites"]}
    assert suites["unit"]["notes"] == [lines["unit"]] and suites["slow"]["notes"] == [lines["slow"]]


def test_sigterm_to_memgate_still_ends_every_process_of_the_suite(tmp_path: Path) -> None:
    daemon = marker()
    script(tmp_path, "suite.sh", f"setsid sleep {daemon} &\n( setsid sleep {daemon}0 & ) &\nexec sleep 300\n")
    (tmp_path / "memgate.toml").write_text(
        'artifacts_dir = "artifacts"\n[[suite]]\nname = "hangs"\ntool = "rusage"\ncommand = ["./suite.sh"]\n')
    memgate = subprocess.Popen([sys.executable, "-m", "memgate", "run"], cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + EXIT_TIMEOUT
    while not (alive_with(daemon) and alive_with(daemon + "0")):
        assert time.monotonic() < deadline, "the suite's daemons never started"
        time.sleep(0.05)
    memgate.send_signal(signal.SIGTERM)
    _, err = memgate.communicate(timeout=EXIT_TIMEOUT)
    assert memgate.returncode == 143, err
    assert alive_with(daemon) == [] and alive_with(daemon + "0") == []
    said = r"^memgate: suite 'hangs' left 2 processes running \(\d+ sleep, \d+ sleep\): ended them$"
    assert re.search(said, err, flags=re.MULTILINE), err


def test_a_helper_killed_midway_still_leaves_no_command_behind(tmp_path: Path) -> None:
    """The OOM killer may pick the helper: memgate then kills the command's group itself, and the suite
    ends "killed by SIGKILL" rather than hanging on a command nobody waits for."""
    daemon = marker()
    command = script(tmp_path, "suite.sh", f"exec sleep {daemon}\n")
    outcomes: list[Outcome] = []
    runner = threading.Thread(target=lambda: outcomes.append(run(tmp_path, command)))
    runner.start()
    deadline = time.monotonic() + EXIT_TIMEOUT
    while not alive_with(daemon):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    stat = Path(f"/proc/{alive_with(daemon)[0]}/stat").read_text()
    helper = int(stat[stat.rfind(")") + 2:].split()[1])
    os.kill(helper, signal.SIGKILL)
    runner.join(EXIT_TIMEOUT)
    assert alive_with(daemon) == []
    assert outcomes and outcomes[0].signal == signal.SIGKILL and outcomes[0].exit_code is None


def test_memgate_killed_outright_still_has_the_leftovers_ended_when_the_command_ends(tmp_path: Path) -> None:
    """SIGKILL gives memgate no chance to stop anything; the helper, left on its own, still ends what
    the command left running once the command ends."""
    daemon, command = marker(), marker()
    script(tmp_path, "suite.sh", f"setsid sleep {daemon} &\n{started(daemon)}exec sleep {command}\n")
    (tmp_path / "memgate.toml").write_text(
        'artifacts_dir = "artifacts"\n[[suite]]\nname = "s"\ntool = "rusage"\ncommand = ["./suite.sh"]\n')
    memgate = subprocess.Popen([sys.executable, "-m", "memgate", "run"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + EXIT_TIMEOUT
    while not alive_with(daemon):
        assert time.monotonic() < deadline, "the suite's daemon never started"
        time.sleep(0.05)
    memgate.kill()
    memgate.wait()
    while alive_with(daemon):  # the command (sleep 300.x) is still running: end it as a test would end
        for pid in alive_with(command):
            os.kill(pid, signal.SIGTERM)
        assert time.monotonic() < deadline + EXIT_TIMEOUT, "the daemon outlived its suite"
        time.sleep(0.05)
