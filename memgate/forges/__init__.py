"""Forges memgate comments on (GitHub pull requests, GitLab merge requests): ``forge_from_env`` builds
the one of the CI system this job runs in (``ci``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from memgate.forges import ci
from memgate.forges.base import Forge, ForgeConfigError

if TYPE_CHECKING:
    import requests

    from memgate.forges.http import RetryPolicy


def forge_from_env(
    env: Mapping[str, str],
    session: requests.Session,
    *,
    number: int | None = None,
    retry: RetryPolicy | None = None,
) -> Forge:
    """The forge this CI job runs on (``GITHUB_ACTIONS`` / ``GITLAB_CI``), built from its variables.

    ``number`` overrides the pull/merge request number (``memgate comment --pr N`` in the fork-safe
    workflow_run commenter); ``retry`` sets the retry budget, e.g. ``RetryPolicy(max_total_wait=...)``."""
    # Each forge's module is imported only here, so that commands that never comment do not load it.
    which = ci.provider(env)
    if which == "github":
        from memgate.forges.github import GitHubForge

        return GitHubForge(ci.GitHubContext.from_env(env, pr_number=number), session, retry=retry)
    if which == "gitlab":
        from memgate.forges.gitlab import GitLabForge

        return GitLabForge(ci.GitLabContext.from_env(env, mr_iid=number), session, retry=retry)
    raise ForgeConfigError(
        "not running in GitHub Actions or GitLab CI (neither GITHUB_ACTIONS nor GITLAB_CI is 'true'), "
        "so there is no pull or merge request to comment on",
        hint="run the comment step in CI, or set the forge's variables by hand (see the README)",
    )
