"""``memgate check --comment`` in a pull request, against a local GitHub stand-in: one comment,
updated in place; a comment that cannot be posted never changes the verdict; no token in output."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeforge import FakeForge, github_env

from memgate.cli import main
from tests.cli.test_check import git_in, write_config
from tests.conftest import BuildProgram


@pytest.fixture
def server() -> Iterator[FakeForge]:
    with FakeForge() as forge:
        yield forge
    assert forge.errors == []


@pytest.fixture
def pull_request(tmp_path: Path, build_program: BuildProgram, server: FakeForge,
                 monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose main has a baseline, checked out at a PR that adds a leak site; the
    environment of a GitHub Actions pull_request run pointing at the fake server."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = git_in(repo)
    binary = build_program("memprog.c")
    git("init", "-q", "-b", "main")
    config = write_config(repo, binary, "valgrind", "leak_many")
    assert main(["baseline", "update", "--config", str(config)]) == 0
    git("add", "memgate.toml", "baselines")
    git("commit", "-qm", "baselines")
    base = git("rev-parse", "HEAD")
    git("checkout", "-qb", "feature")
    write_config(repo, binary, "valgrind", "leak_many", "leak_small")
    git("commit", "-qam", "a new leak")

    for name, value in github_env(server, tmp_path).items():
        monkeypatch.setenv(name, value)
    event = json.loads(Path(os.environ["GITHUB_EVENT_PATH"]).read_text())
    event["pull_request"]["base"]["sha"] = base
    Path(os.environ["GITHUB_EVENT_PATH"]).write_text(json.dumps(event))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output.txt"))
    return config


def test_one_comment_created_then_updated(pull_request: Path, server: FakeForge, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(pull_request), "--comment"]) == 1
    assert main(["check", "--config", str(pull_request), "--comment"]) == 1
    comments = server.comments_on(7)
    assert len(comments) == 1, "the second run updates the first comment"
    assert comments[0].body.startswith("<!-- memgate:report -->")
    assert "leak_small" in comments[0].body
    outputs = (tmp_path / "output.txt").read_text()
    url = f"https://github.example.test/octo-org/memprog/pull/7#issuecomment-{comments[0].id}"
    assert "verdict=fail" in outputs and f"comment-url={url}" in outputs
    assert "leak_small" in (tmp_path / "summary.md").read_text()
    captured = capsys.readouterr()
    assert "::error" in captured.out
    assert server.github_token not in captured.out + captured.err + outputs


def test_a_fork_token_cannot_comment_and_the_verdict_stands(pull_request: Path, server: FakeForge,
                                                            tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    server.github_fork = True
    event_path = Path(os.environ["GITHUB_EVENT_PATH"])
    event = json.loads(event_path.read_text())
    event["pull_request"]["head"]["repo"] = {"full_name": "someone/memprog"}
    event_path.write_text(json.dumps(event))
    assert main(["check", "--config", str(pull_request), "--comment"]) == 1, "same exit code as without"
    err = capsys.readouterr().err
    assert "memgate: warning: no comment posted" in err and "fork" in err
    assert server.comments_on(7) == []
    assert "leak_small" in (tmp_path / "summary.md").read_text(), "the report still reaches the summary"
    assert server.github_token not in err


def test_an_unreachable_forge_is_a_warning(pull_request: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("MEMGATE_FORGE_MAX_WAIT", "0")
    assert main(["check", "--config", str(pull_request), "--comment"]) == 1
    assert "memgate: warning: no comment posted" in capsys.readouterr().err
