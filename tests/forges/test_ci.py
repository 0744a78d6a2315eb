"""CI detection (``memgate.forges.ci``): which CI, the pull/merge request's base commit, the branches,
the commit built and the job's page, from real environments and event files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memgate.errors import UsageError
from memgate.forges import ci

BASE = "b" * 40


def github(tmp_path: Path, event: dict[str, object], **env: str) -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(path), **env}


def test_a_local_run_has_no_ci_facts() -> None:
    assert ci.provider({}) is None
    assert not ci.on_github_actions({})
    assert ci.detect({}) == ci.CiFacts(provider=None, base_ref=None, branch=None, default_branch=None)
    assert ci.run_url({}) is None


def test_github_pull_request_gives_its_base_commit_and_no_branch(tmp_path: Path) -> None:
    event = {"pull_request": {"base": {"sha": BASE}}, "repository": {"default_branch": "main"}}
    env = github(tmp_path, event, GITHUB_EVENT_NAME="pull_request", GITHUB_REF_TYPE="branch",
                 GITHUB_REF_NAME="7/merge")
    facts = ci.detect(env)
    assert facts == ci.CiFacts(provider="github", base_ref=BASE, branch=None, default_branch="main")
    assert facts.in_change_request


def test_github_push_gives_the_branch_and_the_default_branch(tmp_path: Path) -> None:
    env = github(tmp_path, {"repository": {"default_branch": "main"}}, GITHUB_EVENT_NAME="push",
                 GITHUB_REF_TYPE="branch", GITHUB_REF_NAME="feature")
    facts = ci.detect(env)
    assert facts == ci.CiFacts(provider="github", base_ref=None, branch="feature", default_branch="main")
    assert not facts.in_change_request


def test_a_pull_request_in_the_event_of_another_event_is_not_a_base(tmp_path: Path) -> None:
    env = github(tmp_path, {"pull_request": {"base": {"sha": BASE}}}, GITHUB_EVENT_NAME="workflow_run")
    assert ci.detect(env).base_ref is None


def test_no_event_file_gives_no_facts_from_it() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": ""}
    assert ci.detect(env) == ci.CiFacts(provider="github", base_ref=None, branch=None, default_branch=None)


@pytest.mark.parametrize(("content", "words"), [
    (None, "file not found"),
    (b"{not json", "the file is not valid JSON (line 1, column 2"),
    (b"\xff\xfe{}", "the file is not UTF-8 JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nests JSON arrays or objects thousands deep"),
    (b'{"pull_request": {"base": {"sha": ' + b"[" * 5_000 + b"]" * 5_000 + b"}}}",
     "nests JSON arrays or objects thousands deep"),
])
def test_an_event_file_that_cannot_be_read_is_a_usage_error_naming_it(
    content: bytes | None, words: str, tmp_path: Path
) -> None:
    """Read as "no event" (as it was), a pull request's gate came from its own working tree instead of
    its base commit; and json's RecursionError on thousands of "[" was an internal error (exit 4)."""
    path = tmp_path / "event.json"
    if content is not None:
        path.write_bytes(content)
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(path)}
    with pytest.raises(UsageError) as raised:
        ci.detect(env)
    assert words in raised.value.message and raised.value.path == str(path)
    assert raised.value.message.startswith("GITHUB_EVENT_PATH: ") and raised.value.exit_code == 2


def test_gitlab_merge_request_and_branch_pipeline() -> None:
    merge_request = {"GITLAB_CI": "true", "CI_MERGE_REQUEST_DIFF_BASE_SHA": BASE, "CI_DEFAULT_BRANCH": "main"}
    assert ci.detect(merge_request) == ci.CiFacts(provider="gitlab", base_ref=BASE, branch=None,
                                                  default_branch="main")
    branch = {"GITLAB_CI": "true", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}
    assert ci.detect(branch) == ci.CiFacts(provider="gitlab", base_ref=None, branch="main",
                                           default_branch="main")
    assert ci.provider(branch) == "gitlab" and not ci.on_github_actions(branch)


def test_only_the_value_true_names_a_ci() -> None:
    assert ci.provider({"GITHUB_ACTIONS": "1"}) is None
    assert ci.provider({"GITLAB_CI": "false"}) is None
    assert ci.provider({"GITHUB_ACTIONS": "true", "GITLAB_CI": "true"}) == "github"


def test_the_commit_built_is_the_ci_systems_own() -> None:
    assert ci.built_commit({"GITHUB_SHA": "a" * 40}) == "a" * 40
    assert ci.built_commit({"CI_COMMIT_SHA": "c" * 40}) == "c" * 40
    assert ci.built_commit({"GITHUB_SHA": "", "CI_COMMIT_SHA": "c" * 40}) == "c" * 40
    assert ci.built_commit({}) is None


def test_the_jobs_page_on_github_and_gitlab() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "42"}
    assert ci.run_url(env) == "https://github.com/o/r/actions/runs/42"
    assert ci.run_url({**env, "GITHUB_SERVER_URL": "https://ghe.test"}) == "https://ghe.test/o/r/actions/runs/42"
    assert ci.run_url({"CI_JOB_URL": "https://gitlab.test/o/r/-/jobs/9"}) == "https://gitlab.test/o/r/-/jobs/9"
