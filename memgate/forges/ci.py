"""The CI job memgate runs in, the one reader of CI variables and the event file: which forge, which
event, the pull/merge request and its base commit, the branches, the commit built, the job's page."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from memgate.forges.base import ForgeConfigError, request_number

if TYPE_CHECKING:
    from pydantic import ValidationError

    from memgate.forges.event import EventPullRequest

# Nothing here talks to the network, nor imports requests or pydantic (the event file's models are in
# forges/event.py): commands that never comment read CI facts too, and pay for neither.

Provider = Literal["github", "gitlab"]
#: The GitHub events of a pull request itself: the action comments on them, and their event file
#: describes the pull request the comment goes to.
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
DEFAULT_BOT_LOGIN = "github-actions[bot]"  # the author of comments made with GITHUB_TOKEN
GITLAB_TOKEN_VARIABLE = "MEMGATE_GITLAB_TOKEN"
GITLAB_TOKEN_HINT = (
    "create a project access token (Settings > Access tokens, role Reporter or higher, scope `api`) and "
    f"store it as a masked, unprotected CI/CD variable {GITLAB_TOKEN_VARIABLE} (a protected variable never "
    "reaches merge request pipelines of unprotected branches)"
)
#: The forge tokens memgate reads to post its comment (the runner keeps them from the suites).
FORGE_TOKEN_VARIABLES = ("GITHUB_TOKEN", GITLAB_TOKEN_VARIABLE)
_PULL_REF = re.compile(r"refs/pull/(\d+)/(?:merge|head)")


def provider(env: Mapping[str, str] | None = None) -> Provider | None:
    """The CI system of this job: GitHub Actions, GitLab CI, or None (a local run)."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    return None


def on_github_actions(env: Mapping[str, str] | None = None) -> bool:
    return provider(env) == "github"


def built_commit(env: Mapping[str, str] | None = None) -> str | None:
    """The commit the CI job builds, as the CI system names it (None outside CI)."""
    env = os.environ if env is None else env
    for variable in ("GITHUB_SHA", "CI_COMMIT_SHA"):
        if env.get(variable):
            return env[variable]
    return None


@dataclass(frozen=True)
class CiFacts:
    provider: Provider | None  # None: a local run
    base_ref: str | None  # the commit whose baselines and thresholds gate a pull/merge request
    branch: str | None  # the branch being built (None on a pull/merge request)
    default_branch: str | None

    @property
    def in_change_request(self) -> bool:
        return self.base_ref is not None


def detect(env: Mapping[str, str] | None = None) -> CiFacts:
    env = os.environ if env is None else env
    which = provider(env)
    if which == "github":
        return _github(env)
    if which == "gitlab":
        return CiFacts(
            provider="gitlab",
            base_ref=_gitlab_base(env),
            branch=env.get("CI_COMMIT_BRANCH") or None,
            default_branch=env.get("CI_DEFAULT_BRANCH") or None,
        )
    return CiFacts(provider=None, base_ref=None, branch=None, default_branch=None)


def in_pull_request_event(env: Mapping[str, str] | None = None) -> bool:
    """Whether this job runs for a GitHub pull request event (the action's script asks, to comment)."""
    env = os.environ if env is None else env
    return on_github_actions(env) and env.get("GITHUB_EVENT_NAME", "") in PULL_REQUEST_EVENTS


def _github(env: Mapping[str, str]) -> CiFacts:
    # Any pull_request* event whose file carries the pull request (reviews too) gates at its base, so
    # that no such workflow reads the thresholds a pull request brings; see PULL_REQUEST_EVENTS.
    event = _event(env.get("GITHUB_EVENT_PATH"))
    pull_request = event.get("pull_request")
    base_ref = None
    if isinstance(pull_request, dict) and env.get("GITHUB_EVENT_NAME", "").startswith("pull_request"):
        base = pull_request.get("base")
        base_ref = base.get("sha") if isinstance(base, dict) else None
    repository = event.get("repository")
    default_branch = repository.get("default_branch") if isinstance(repository, dict) else None
    branch = env.get("GITHUB_REF_NAME") if env.get("GITHUB_REF_TYPE") == "branch" and not base_ref else None
    return CiFacts(provider="github", base_ref=base_ref if isinstance(base_ref, str) else None,
                   branch=branch or None,
                   default_branch=default_branch if isinstance(default_branch, str) else None)


def _event(path: str | None) -> dict[str, object]:
    """The GitHub event file. One that is set but cannot be read is an error, not "no event": read as
    none, a pull request's gate would come from its own working tree instead of its base commit."""
    if not path:
        return {}
    from memgate.errors import UsageError
    from memgate.files import read_json

    try:
        data = read_json(Path(path), error=UsageError, hint="")
    except UsageError as error:
        raise UsageError(f"GITHUB_EVENT_PATH: {error.message}", path=path,
                         hint="it must name the event JSON file the runner wrote") from None
    return data if isinstance(data, dict) else {}


def run_url(env: Mapping[str, str] | None = None) -> str | None:
    """Where the full report of this job can be found (the job's page), for cut comments."""
    env = os.environ if env is None else env
    if on_github_actions(env):
        return _github_run_url(env)
    return _gitlab_job_url(env)


def step_summary_file(env: Mapping[str, str]) -> str | None:
    """The job summary file GitHub Actions gives this step ($GITHUB_STEP_SUMMARY), if any."""
    return env.get("GITHUB_STEP_SUMMARY") or None


def step_output_file(env: Mapping[str, str]) -> str | None:
    """The step outputs file GitHub Actions gives this step ($GITHUB_OUTPUT), if any."""
    return env.get("GITHUB_OUTPUT") or None


def _github_run_url(env: Mapping[str, str]) -> str | None:
    repository, run_id = env.get("GITHUB_REPOSITORY", "").strip(), env.get("GITHUB_RUN_ID", "").strip()
    if not repository or not run_id:
        return None
    server = env.get("GITHUB_SERVER_URL") or "https://github.com"
    return f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"


def _gitlab_job_url(env: Mapping[str, str]) -> str | None:
    return env.get("CI_JOB_URL", "").strip() or None


def _required(env: Mapping[str, str], name: str, hint: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ForgeConfigError(f"{name} is not set", hint=hint)
    return value


# -- the pull/merge request a forge comments on ------------------------------------------------------


@dataclass(frozen=True)
class GitHubContext:
    """The pull request memgate reports on, as the Actions environment describes it."""

    api_url: str
    owner: str
    repo: str
    pr_number: int
    token: str = field(repr=False)
    event_name: str = ""
    base_sha: str | None = None
    head_sha: str | None = None
    base_ref: str | None = None
    head_ref: str | None = None
    is_fork: bool = False
    bot_login: str = DEFAULT_BOT_LOGIN
    run_url: str | None = None  # where the full report is: the run's page with its summary

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, pr_number: int | None = None, bot_login: str | None = None
    ) -> GitHubContext:
        """Read GITHUB_* variables and the event file. ``pr_number`` serves the workflow_run commenter,
        whose event names no pull request for forks; the bot login defaults to MEMGATE_GITHUB_BOT_LOGIN,
        then to ``github-actions[bot]`` (set it to your App's or user's login for other tokens)."""
        api_url = _required(env, "GITHUB_API_URL", "it is set on every GitHub Actions runner; outside "
                            "Actions set it to https://api.github.com or https://HOST/api/v3")
        repository = _required(env, "GITHUB_REPOSITORY", "set it to owner/name")
        owner, slash, repo = repository.partition("/")
        if not slash or not owner or not repo or "/" in repo:
            raise ForgeConfigError(
                f"GITHUB_REPOSITORY={repository!r} is not owner/name", hint="set it to owner/name"
            )
        event_name = env.get("GITHUB_EVENT_NAME", "")
        pull = _pull_request_from_event(env, event_name) if pr_number is None else None
        number = pr_number if pr_number is not None else pull.number if pull else _number_from_ref(env)
        if number is None:
            raise ForgeConfigError(
                f"GITHUB_EVENT_NAME={event_name or '(unset)'} is not a pull request event: there is no pull "
                "request to comment on",
                hint="comment from an `on: pull_request` workflow, or pass the pull request number "
                "(the workflow_run commenter takes it from the report artifact)",
            )
        token = env.get("GITHUB_TOKEN", "").strip()
        if not token:
            raise ForgeConfigError(
                "GITHUB_TOKEN is not set, so memgate cannot comment",
                hint="pass `env: GITHUB_TOKEN: ${{ github.token }}` (the action does this) and grant the job "
                "`permissions: pull-requests: write`",
            )
        head_repo = pull.head.repo.full_name if pull and pull.head.repo else None
        return cls(
            api_url=api_url,
            owner=owner,
            repo=repo,
            pr_number=number,
            token=token,
            event_name=event_name,
            base_sha=pull.base.sha if pull else None,
            head_sha=pull.head.sha if pull else None,
            base_ref=pull.base.ref if pull else None,
            head_ref=pull.head.ref if pull else None,
            # A deleted fork leaves head.repo null: treat it as a fork (its token is read-only too).
            is_fork=pull is not None and head_repo != repository,
            bot_login=bot_login or env.get("MEMGATE_GITHUB_BOT_LOGIN", "").strip() or DEFAULT_BOT_LOGIN,
            run_url=_github_run_url(env),
        )


@dataclass(frozen=True)
class GitLabContext:
    """The merge request memgate reports on, as GitLab CI's predefined variables describe it."""

    api_url: str
    project_id: str  # numeric id or full path; URL-encoded when used
    mr_iid: int
    token: str = field(repr=False)
    diff_base_sha: str | None = None  # the merge-base: where the baseline comes from
    is_fork: bool = False
    mr_url: str | None = None
    job_url: str | None = None  # where the full report is

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, mr_iid: int | None = None) -> GitLabContext:
        """Read GitLab CI's predefined variables; ``mr_iid`` overrides CI_MERGE_REQUEST_IID."""
        api_url = _required(env, "CI_API_V4_URL", "it is set in every GitLab CI job; outside CI set it to "
                            "https://HOST/api/v4")
        iid_text = str(mr_iid) if mr_iid is not None else env.get("CI_MERGE_REQUEST_IID", "").strip()
        if not iid_text:
            raise ForgeConfigError(
                "CI_MERGE_REQUEST_IID is not set: this is not a merge request pipeline, so there is no "
                "merge request to comment on",
                hint='run the comment job with `rules: - if: $CI_PIPELINE_SOURCE == "merge_request_event"`',
            )
        iid = request_number(iid_text)
        if iid is None:
            raise ForgeConfigError(f"CI_MERGE_REQUEST_IID={iid_text[:40]!r} is not a merge request number",
                                   hint="leave it to GitLab, which sets it in merge request pipelines")
        # The merge request lives in the target project, which differs from CI_PROJECT_ID for forks.
        project_id = env.get("CI_MERGE_REQUEST_PROJECT_ID", "").strip() or _required(
            env, "CI_PROJECT_ID", "it is set in every GitLab CI job"
        )
        token = env.get(GITLAB_TOKEN_VARIABLE, "").strip()
        if not token:
            raise ForgeConfigError(_missing_gitlab_token(env), hint=GITLAB_TOKEN_HINT)
        source_project = env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "").strip()
        project_url = env.get("CI_MERGE_REQUEST_PROJECT_URL", "").strip()
        return cls(
            api_url=api_url,
            project_id=project_id,
            mr_iid=iid,
            token=token,
            diff_base_sha=_gitlab_base(env),
            is_fork=bool(source_project) and source_project != project_id,
            mr_url=f"{project_url.rstrip('/')}/-/merge_requests/{iid_text}" if project_url else None,
            job_url=_gitlab_job_url(env),
        )


def _gitlab_base(env: Mapping[str, str]) -> str | None:
    return env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA", "").strip() or None


def _missing_gitlab_token(env: Mapping[str, str]) -> str:
    if env.get("CI_JOB_TOKEN"):
        return (
            f"{GITLAB_TOKEN_VARIABLE} is not set, and CI_JOB_TOKEN cannot post merge request notes (GitLab "
            "lets job tokens only read them)"
        )
    return f"{GITLAB_TOKEN_VARIABLE} is not set, so memgate cannot post the merge request note"


def _pull_request_from_event(env: Mapping[str, str], event_name: str) -> EventPullRequest | None:
    if event_name not in PULL_REQUEST_EVENTS:
        return None
    event_path = _required(env, "GITHUB_EVENT_PATH", "it is set on every GitHub Actions runner; outside "
                           "Actions point it at a pull_request event JSON file")
    from pydantic import ValidationError

    from memgate.forges.event import Event

    try:
        event = Event.model_validate_json(Path(event_path).read_bytes())
    except OSError as exc:
        raise ForgeConfigError(f"cannot read the event file: {exc.strerror}", path=event_path,
                               hint="GITHUB_EVENT_PATH must name the runner's event JSON") from None
    except ValidationError as exc:
        raise ForgeConfigError(
            f"the event file is not a {event_name} event: {_first_error(exc)}",
            path=event_path,
            hint="GITHUB_EVENT_PATH must name the runner's event JSON",
        ) from None
    return event.pull_request


def _number_from_ref(env: Mapping[str, str]) -> int | None:
    match = _PULL_REF.fullmatch(env.get("GITHUB_REF", ""))
    if match is None:
        return None
    number = request_number(match[1])
    if number is None:
        raise ForgeConfigError(f"GITHUB_REF={match[0][:60]!r} names no pull request number",
                               hint="leave GITHUB_REF to GitHub Actions, which sets it")
    return number


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
