"""The CI job memgate runs in, read from the environment: which forge, the pull/merge request's base
commit, the branch, the default branch, the commit built. Nothing here talks to the network."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Provider = Literal["github", "gitlab"]


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
            base_ref=env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA") or None,
            branch=env.get("CI_COMMIT_BRANCH") or None,
            default_branch=env.get("CI_DEFAULT_BRANCH") or None,
        )
    return CiFacts(provider=None, base_ref=None, branch=None, default_branch=None)


def _github(env: Mapping[str, str]) -> CiFacts:
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
    if on_github_actions(env) and env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return env.get("CI_JOB_URL") or None
