"""ci/github/run.sh, the action's step, run as the runner runs it: inputs as env, GITHUB_* files.

The end-to-end test installs memgate from a copy of the action's folder into the venv under
$RUNNER_TEMP, offline: the venv sees this interpreter's packages through a .pth file and pip is
told to use no index (PIP_NO_INDEX) and no build isolation, so nothing is downloaded. It then runs
the real demo (examples/demo) under Valgrind and ASan against a bare git remote.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"


@dataclass(frozen=True)
class Runner:
    """The files a GitHub runner gives a step, in a temporary folder."""

    temp: Path
    output: Path
    summary: Path
    action_path: Path

    def env(self, inputs: Mapping[str, str], **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ["PATH"], "HOME": str(self.temp), "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(self.temp / "gitconfig"),
            "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(self.output),
            "GITHUB_STEP_SUMMARY": str(self.summary), "RUNNER_TEMP": str(self.temp),
            "GITHUB_ACTION_PATH": str(self.action_path), "GITHUB_REPOSITORY": "octo/demo",
            "GITHUB_API_URL": "http://127.0.0.1:9", "GITHUB_SERVER_URL": "http://127.0.0.1:9",
            "GITHUB_RUN_ID": "1",
            # The offline install (see the module docstring).
            "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        for name, value in inputs.items():  # as action.yml maps them
            env[f"MEMGATE_ACTION_{name.upper().replace('-', '_')}"] = value
        env.update(extra)
        return env

    def run(self, inputs: Mapping[str, str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
        script = self.action_path / "ci" / "github" / "run.sh"
        return subprocess.run(["bash", str(script)], cwd=cwd, env=self.env(inputs, **extra),
                              capture_output=True, text=True, timeout=600)

    def outputs(self) -> dict[str, str]:
        return parse_github_output(self.output.read_text(encoding="utf-8")) if self.output.exists() else {}


def parse_github_output(text: str) -> dict[str, str]:
    """``name=value`` lines and ``name<<DELIMITER`` blocks, as the runner reads $GITHUB_OUTPUT."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for body in lines:
                if body == delimiter:
                    break
                block.append(body)
            values[name] = "\n".join(block)
        elif line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    (temp / "gitconfig").write_text("[user]\n\tname = Test\n\temail = test@example.invalid\n")
    return Runner(temp=temp, output=tmp_path / "github-output", summary=tmp_path / "step-summary",
                  action_path=ROOT)


# --- inputs are checked before anything is installed ----------------------------------------------


@pytest.mark.parametrize(("inputs", "message"), [
    ({"mode": "bogus"}, "input mode is 'bogus'; use one of: check run compare update-baselines"),
    ({"mode": "check", "shard": "1/2"},
     "input shard is for mode run (a shard's job), and mode is 'check': leave shard out, or set mode: run"),
    ({"comment": "yes"}, "input comment is 'yes'; use one of: true false"),
    ({"fail-on": "never"}, "input fail-on is 'never'; use one of: fail warn"),
])
def test_a_bad_input_is_one_error_annotation_and_exit_2(
    runner: Runner, tmp_path: Path, inputs: dict[str, str], message: str
) -> None:
    result = runner.run(inputs, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == f"::error title=memgate::{message}\n"
    assert runner.outputs() == {"verdict": "error"}
    assert not (runner.temp / "memgate-venv").exists()  # nothing installed


def test_an_input_cannot_start_a_workflow_command_of_its_own(runner: Runner, tmp_path: Path) -> None:
    result = runner.run({"mode": "x\n::add-mask::secret\r%"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ("::error title=memgate::input mode is 'x%0A::add-mask::secret%0D%25'; "
                             "use one of: check run compare update-baselines\n")


@pytest.mark.parametrize(("inputs", "message"), [
    ({"mode": "compare"},
     "mode compare needs the shards' reports: set the reports input, e.g. 'shards/*/report.json'"),
    ({"mode": "compare", "reports": "shards/1/report.json shards/*/nothing.json"},
     "input reports: 'shards/*/nothing.json' matches no file in {cwd}: download the shards' reports there "
     "first (actions/download-artifact)"),
    ({"mode": "run", "reports": "shards/*/report.json"},
     "input reports is for modes compare and update-baselines, and mode is 'run': leave reports out"),
])
def test_bad_shard_reports_are_one_error_and_exit_2_before_the_install(
    runner: Runner, tmp_path: Path, inputs: dict[str, str], message: str
) -> None:
    (tmp_path / "shards" / "1").mkdir(parents=True)
    (tmp_path / "shards" / "1" / "report.json").write_text("{}")
    result = runner.run(inputs, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == f"::error title=memgate::{message.format(cwd=tmp_path)}\n"
    assert not (runner.temp / "memgate-venv").exists()


def test_a_missing_working_directory_is_exit_2(runner: Runner, tmp_path: Path) -> None:
    result = runner.run({"working-directory": "no/such/dir"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == (f"::error title=memgate::working-directory 'no/such/dir' does not exist in "
                             f"{tmp_path}: give a folder of the checked-out repository\n")


def test_an_action_folder_without_memgate_is_exit_3(runner: Runner, tmp_path: Path) -> None:
    result = runner.run({}, cwd=tmp_path, GITHUB_ACTION_PATH=str(tmp_path))
    assert result.returncode == 3
    assert result.stdout == (f"::error title=memgate::memgate's source is not in {tmp_path} "
                             "(GITHUB_ACTION_PATH): use the action as owner/memgate@<sha>\n")


def test_a_python_that_is_not_python_is_exit_3(runner: Runner, tmp_path: Path) -> None:
    result = runner.run({"python": "/bin/false"}, cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout.startswith(
        "::error title=memgate::memgate needs Python 3.10 or newer, /bin/false is"
    )


# --- end to end: the demo, a bare remote, baselines, a leaking pull request --------------------------


def _needs_for_end_to_end() -> None:
    for program in ("git", "make", "gcc", "valgrind"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed")
    # setuptools >= 70.1 builds wheels by itself; older ones need the wheel package (no download here).
    if importlib.util.find_spec("wheel") is None and _setuptools_version() < (70, 1):
        pytest.skip("building memgate offline needs the `wheel` package or setuptools >= 70.1 in the test "
                    "environment (add `wheel` to the test extra)")


def _setuptools_version() -> tuple[int, ...]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return tuple(int(part) for part in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return (0,)


def _offline_venv(runner_temp: Path) -> None:
    """The action's venv, made beforehand (run.sh reuses it) with this interpreter's packages visible."""
    venv = runner_temp / "memgate-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    inner = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           check=True, capture_output=True, text=True).stdout.strip()
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(inner) / "outer-packages.pth").write_text("\n".join(sorted(paths)) + "\n")


def _copy_action(destination: Path) -> Path:
    """What `uses: owner/memgate@sha` puts in GITHUB_ACTION_PATH: the repository's files."""
    destination.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("pyproject.toml", "README.md", "action.yml"):
        shutil.copy2(ROOT / name, destination / name)
    shutil.copytree(ROOT / "memgate", destination / "memgate", ignore=ignore)
    shutil.copytree(ROOT / "ci", destination / "ci", ignore=ignore)
    return destination


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Dev",
           "GIT_AUTHOR_EMAIL": "dev@x.invalid", "GIT_COMMITTER_NAME": "Dev",
           "GIT_COMMITTER_EMAIL": "dev@x.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def _demo_repository(tmp_path: Path) -> tuple[Path, Path]:
    """A bare remote holding the demo on main, and a clone of it (origin/HEAD set, as checkout does)."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    seed = tmp_path / "seed"
    shutil.copytree(DEMO, seed, ignore=shutil.ignore_patterns("build", ".memgate", "baselines"))
    (seed / ".gitignore").write_text("build/\n.memgate/\n")
    git(seed, "init", "--quiet", "--initial-branch=main")
    git(seed, "add", ".")
    git(seed, "commit", "--quiet", "-m", "demo")
    git(seed, "push", "--quiet", str(remote), "main")
    work = tmp_path / "work"
    git(tmp_path, "clone", "--quiet", str(remote), str(work))
    return remote, work


def _build(work: Path) -> None:
    subprocess.run(["make", "-s", "-C", str(work)], check=True, capture_output=True, text=True)


def _pull_request_event(path: Path, base_sha: str, head_sha: str) -> Path:
    path.write_text(json.dumps({
        "number": 7,
        "pull_request": {
            "number": 7,
            "base": {"sha": base_sha, "ref": "main", "repo": {"full_name": "octo/demo"}},
            "head": {"sha": head_sha, "ref": "leaky", "repo": {"full_name": "octo/demo"}},
        },
        "repository": {"full_name": "octo/demo", "default_branch": "main"},
    }))
    return path


def test_the_action_updates_baselines_on_main_then_fails_a_leaking_pull_request_whole_and_sharded(
    runner: Runner, tmp_path: Path
) -> None:
    _needs_for_end_to_end()
    _offline_venv(runner.temp)
    action = _copy_action(tmp_path / "action")
    runner = Runner(runner.temp, runner.output, runner.summary, action)
    remote, work = _demo_repository(tmp_path)
    _build(work)
    first = git(work, "rev-parse", "HEAD")

    # 1. Push to main: mode update-baselines commits baselines/ and pushes it to the remote.
    push_event = tmp_path / "push.json"
    push_event.write_text(json.dumps({"ref": "refs/heads/main", "after": first,
                                      "repository": {"full_name": "octo/demo", "default_branch": "main"}}))
    update = runner.run({"mode": "update-baselines"}, cwd=work, GITHUB_EVENT_NAME="push",
                        GITHUB_EVENT_PATH=str(push_event), GITHUB_REF="refs/heads/main", GITHUB_SHA=first)
    assert update.returncode == 0, update.stdout + update.stderr
    assert git(remote, "log", "-1", "--format=%P", "main") == first
    assert "[skip ci]" in git(remote, "log", "-1", "--format=%B", "main")
    assert git(remote, "ls-tree", "--name-only", "main", "baselines/").split() == [
        "baselines/list.json", "baselines/strbuf.json",
    ]
    base = git(remote, "rev-parse", "main")

    # 2. A pull request that drops list_free(): a definite leak fails the gate (leak_definite_bytes +0).
    git(work, "pull", "--quiet", "--ff-only")
    git(work, "checkout", "--quiet", "-b", "leaky")
    test_list = work / "tests" / "test_list.c"
    test_list.write_text(test_list.read_text().replace("    list_free(list);\n", ""))
    git(work, "commit", "--quiet", "-am", "forget to free the list")
    head = git(work, "rev-parse", "HEAD")
    _build(work)
    runner.output.unlink(missing_ok=True)
    check = runner.run({"comment": "false"}, cwd=work, GITHUB_EVENT_NAME="pull_request",
                       GITHUB_EVENT_PATH=str(_pull_request_event(tmp_path / "pr.json", base, head)),
                       GITHUB_REF="refs/pull/7/merge", GITHUB_SHA=head, GITHUB_BASE_REF="main",
                       GITHUB_HEAD_REF="leaky")
    assert check.returncode == 1, check.stdout + check.stderr
    command = next(line for line in check.stdout.splitlines() if line.startswith("memgate "))
    markdown = work / ".memgate" / "report.md"
    assert command == f"memgate check --fail-on fail --markdown {markdown} --base-ref {base}"
    outputs = runner.outputs()
    assert outputs["verdict"] == "fail"
    assert Path(outputs["markdown"]).resolve() == markdown
    assert markdown.is_file() and "list" in markdown.read_text()
    assert Path(work, outputs["report-json"]).is_file()
    assert runner.summary.read_text().strip()
    assert "::error" in check.stdout

    # 3. The same pull request over two shards (mode run), their reports downloaded into shards/*/ as
    # download-artifact does, then merged and judged by mode compare: the same verdict and comment.
    pr_env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(tmp_path / "pr.json"),
              "GITHUB_REF": "refs/pull/7/merge", "GITHUB_SHA": head, "GITHUB_BASE_REF": "main",
              "GITHUB_HEAD_REF": "leaky"}
    whole = markdown.read_text()
    for index in (1, 2):
        runner.output.unlink(missing_ok=True)
        shard = runner.run({"mode": "run", "shard": f"{index}/2"}, cwd=work, **pr_env)
        assert shard.returncode == 0, shard.stdout + shard.stderr
        report = Path(runner.outputs()["report-json"])
        assert report == work / ".memgate" / "report.json"
        (work / "shards" / str(index)).mkdir(parents=True)
        shutil.copy(report, work / "shards" / str(index) / "report.json")
    runner.output.unlink(missing_ok=True)
    compared = runner.run({"mode": "compare", "comment": "false", "reports": "shards/*/report.json"},
                          cwd=work, **pr_env)
    assert compared.returncode == 1, compared.stdout + compared.stderr
    commands = [line for line in compared.stdout.splitlines() if line.startswith("memgate ")]
    merged = work / ".memgate" / "report.json"
    assert commands == [
        f"memgate merge shards/1/report.json shards/2/report.json --json {merged}",
        f"memgate compare {merged} --fail-on fail --markdown {markdown} --base-ref {base}",
    ]
    assert runner.outputs()["verdict"] == "fail"
    assert markdown.read_text() == whole, "the comment one check of all the suites gives"
