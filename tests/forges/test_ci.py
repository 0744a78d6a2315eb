"""CI detection (``memgate.forges.ci``): which CI, the pull/merge request's base commit, the branches,
the commit built and the job's page, from real environments and event files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fakeforge import FakeForge, github_env, gitlab_env

from memgate.errors import ExitCode, UsageError
from memgate.forges import ci
from memgate.forges.base import ForgeConfigError
from memgate.forges.ci import GitHubContext, GitLabContext

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


# -- the pull request GitHub Actions describes ---------------------------------------------------


def test_github_reads_the_pull_request_from_the_event_file(server: FakeForge, tmp_path: Path) -> None:
    context = GitHubContext.from_env(github_env(server, tmp_path))
    assert (context.owner, context.repo, context.pr_number) == ("octo-org", "memprog", 7)
    assert (context.base_sha, context.head_sha) == ("b" * 40, "h" * 40)
    assert (context.base_ref, context.head_ref) == ("main", "feature")
    assert context.api_url == server.github_api_url
    assert context.is_fork is False
    assert context.bot_login == "github-actions[bot]"
    assert context.run_url == "https://github.example.test/octo-org/memprog/actions/runs/123456"


def test_github_detects_a_fork_and_a_deleted_fork(server: FakeForge, tmp_path: Path) -> None:
    assert GitHubContext.from_env(github_env(server, tmp_path, head_repo="someone/memprog")).is_fork
    assert GitHubContext.from_env(github_env(server, tmp_path, head_repo=None)).is_fork


@pytest.mark.parametrize(
    ("missing", "says"),
    [
        ("GITHUB_API_URL", "GITHUB_API_URL is not set"),
        ("GITHUB_REPOSITORY", "GITHUB_REPOSITORY is not set"),
        ("GITHUB_EVENT_PATH", "GITHUB_EVENT_PATH is not set"),
        ("GITHUB_TOKEN", "GITHUB_TOKEN is not set"),
    ],
)
def test_github_names_the_missing_variable(
    server: FakeForge, tmp_path: Path, missing: str, says: str
) -> None:
    env = github_env(server, tmp_path)
    del env[missing]
    with pytest.raises(ForgeConfigError) as caught:
        GitHubContext.from_env(env)
    assert caught.value.message.startswith(says)
    assert caught.value.hint
    assert caught.value.exit_code == ExitCode.TOOL


def test_github_missing_token_hint_says_how_to_grant_it(server: FakeForge, tmp_path: Path) -> None:
    env = github_env(server, tmp_path)
    env["GITHUB_TOKEN"] = "  "
    with pytest.raises(ForgeConfigError) as caught:
        GitHubContext.from_env(env)
    assert "pull-requests: write" in caught.value.hint
    assert "${{ github.token }}" in caught.value.hint


def test_github_push_event_has_no_pull_request(server: FakeForge, tmp_path: Path) -> None:
    env = github_env(server, tmp_path)
    env.update(GITHUB_EVENT_NAME="push", GITHUB_REF="refs/heads/main")
    with pytest.raises(ForgeConfigError, match="GITHUB_EVENT_NAME=push is not a pull request event"):
        GitHubContext.from_env(env)


def test_github_workflow_run_commenter_passes_the_number(server: FakeForge, tmp_path: Path) -> None:
    env = github_env(server, tmp_path)
    env.update(GITHUB_EVENT_NAME="workflow_run", GITHUB_REF="refs/heads/main")
    context = GitHubContext.from_env(env, pr_number=12)
    assert context.pr_number == 12
    assert context.head_sha is None


def test_github_pull_ref_is_a_fallback_for_the_number(server: FakeForge, tmp_path: Path) -> None:
    env = github_env(server, tmp_path)
    env.update(GITHUB_EVENT_NAME="merge_group", GITHUB_REF="refs/pull/31/merge")
    assert GitHubContext.from_env(env).pr_number == 31


def test_github_broken_event_file_is_named(server: FakeForge, tmp_path: Path) -> None:
    env = github_env(server, tmp_path)
    Path(env["GITHUB_EVENT_PATH"]).write_text('{"pull_request": {"number": "seven"}}')
    with pytest.raises(ForgeConfigError) as caught:
        GitHubContext.from_env(env)
    assert caught.value.path == env["GITHUB_EVENT_PATH"]
    assert "not a pull_request event" in caught.value.message
    env["GITHUB_EVENT_PATH"] = str(tmp_path / "absent.json")
    with pytest.raises(ForgeConfigError, match="cannot read the event file"):
        GitHubContext.from_env(env)


def test_github_bad_repository_value(server: FakeForge, tmp_path: Path) -> None:
    env = github_env(server, tmp_path)
    env["GITHUB_REPOSITORY"] = "memprog"
    with pytest.raises(ForgeConfigError, match="is not owner/name"):
        GitHubContext.from_env(env)


def test_github_bot_login_is_configurable(server: FakeForge, tmp_path: Path) -> None:
    env = github_env(server, tmp_path)
    env["MEMGATE_GITHUB_BOT_LOGIN"] = "memgate-app"
    assert GitHubContext.from_env(env).bot_login == "memgate-app"
    assert GitHubContext.from_env(env, bot_login="other").bot_login == "other"


# -- the merge request GitLab CI describes -------------------------------------------------------


def test_gitlab_reads_the_merge_request(server: FakeForge) -> None:
    context = GitLabContext.from_env(gitlab_env(server))
    assert (context.api_url, context.project_id, context.mr_iid) == (server.gitlab_api_url, "42", 5)
    assert context.diff_base_sha == "d" * 40
    assert context.is_fork is False
    assert context.mr_url == "https://gitlab.example.test/group/memprog/-/merge_requests/5"
    assert context.job_url == "https://gitlab.example.test/group/memprog/-/jobs/99"
    assert server.gitlab_token not in repr(context)


def test_gitlab_a_fork_mr_uses_the_target_project(server: FakeForge) -> None:
    env = gitlab_env(server)
    env.update(CI_PROJECT_ID="77", CI_MERGE_REQUEST_SOURCE_PROJECT_ID="77")
    context = GitLabContext.from_env(env)
    assert context.project_id == "42"
    assert context.is_fork is True


def test_gitlab_job_token_alone_cannot_post_notes(server: FakeForge) -> None:
    env = gitlab_env(server)
    del env["MEMGATE_GITLAB_TOKEN"]
    with pytest.raises(ForgeConfigError) as caught:
        GitLabContext.from_env(env)
    assert caught.value.message == (
        "MEMGATE_GITLAB_TOKEN is not set, and CI_JOB_TOKEN cannot post merge request notes (GitLab lets job "
        "tokens only read them)"
    )
    assert caught.value.hint.startswith(
        "create a project access token (Settings > Access tokens, role Reporter or higher, scope `api`) and "
        "store it as a masked, unprotected CI/CD variable MEMGATE_GITLAB_TOKEN"
    )
    assert env["CI_JOB_TOKEN"] not in caught.value.one_line()


def test_gitlab_no_token_at_all(server: FakeForge) -> None:
    env = gitlab_env(server)
    del env["MEMGATE_GITLAB_TOKEN"], env["CI_JOB_TOKEN"]
    with pytest.raises(ForgeConfigError, match="^MEMGATE_GITLAB_TOKEN is not set, so memgate cannot post"):
        GitLabContext.from_env(env)


def test_gitlab_not_a_merge_request_pipeline(server: FakeForge) -> None:
    env = gitlab_env(server)
    del env["CI_MERGE_REQUEST_IID"]
    with pytest.raises(ForgeConfigError) as caught:
        GitLabContext.from_env(env)
    assert caught.value.message.startswith(
        "CI_MERGE_REQUEST_IID is not set: this is not a merge request pipeline"
    )
    assert "merge_request_event" in caught.value.hint


@pytest.mark.parametrize("missing", ["CI_API_V4_URL", "CI_PROJECT_ID"])
def test_gitlab_missing_variables_are_named(server: FakeForge, missing: str) -> None:
    env = gitlab_env(server)
    del env[missing], env["CI_MERGE_REQUEST_PROJECT_ID"]
    with pytest.raises(ForgeConfigError, match=f"^{missing} is not set$"):
        GitLabContext.from_env(env)


# -- the one reader ----------------------------------------------------------------------------------


def test_only_pull_request_events_are_pull_requests_for_the_action(tmp_path: Path) -> None:
    for event in ci.PULL_REQUEST_EVENTS:
        assert ci.in_pull_request_event({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event})
    for event in ("push", "workflow_run", "pull_request_review", ""):
        assert not ci.in_pull_request_event({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event})
    assert not ci.in_pull_request_event({"GITHUB_EVENT_NAME": "pull_request"})  # not on Actions


def test_the_runners_files_for_the_summary_and_the_outputs() -> None:
    env = {"GITHUB_STEP_SUMMARY": "/runner/summary.md", "GITHUB_OUTPUT": "/runner/output"}
    assert (ci.step_summary_file(env), ci.step_output_file(env)) == ("/runner/summary.md", "/runner/output")
    assert (ci.step_summary_file({}), ci.step_output_file({"GITHUB_OUTPUT": ""})) == (None, None)


def test_the_comment_and_the_job_use_one_run_url(server: FakeForge, tmp_path: Path) -> None:
    env = {**github_env(server, tmp_path), "GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://ghe.test/"}
    assert GitHubContext.from_env(env).run_url == ci.run_url(env) == "https://ghe.test/octo-org/memprog/actions/runs/123456"
    gitlab = {**gitlab_env(server), "GITLAB_CI": "true"}
    assert GitLabContext.from_env(gitlab).job_url == ci.run_url(gitlab)


def test_the_forge_tokens_are_the_ones_the_contexts_read() -> None:
    assert ci.FORGE_TOKEN_VARIABLES == ("GITHUB_TOKEN", ci.GITLAB_TOKEN_VARIABLE)


def test_no_other_module_reads_ci_variables_or_the_event_file() -> None:
    """One home for CI detection: memgate/forges/ci.py; the action's script asks it too."""
    package = Path(ci.__file__).parents[1]
    reads = re.compile(r"""(?:env|environ)(?:\.get\(|\[)\s*["'](?:GITHUB_|GITLAB_|CI_)""")
    readers = [str(path.relative_to(package)) for path in sorted(package.rglob("*.py"))
               if path != Path(ci.__file__) and reads.search(path.read_text(encoding="utf-8"))]
    assert readers == []
    script = (package.parent / "ci" / "github" / "run.sh").read_text(encoding="utf-8")
    assert "GITHUB_EVENT" not in script and "ci.in_pull_request_event()" in script
