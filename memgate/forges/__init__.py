"""Forges memgate comments on: GitHub pull requests and GitLab merge requests.

``forge_from_env`` picks the forge of the CI system the job runs in; the modules load lazily so that
commands that never comment do not import them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

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
    if env.get("GITHUB_ACTIONS") == "true":
        from memgate.forges.github import GitHubContext, GitHubForge

        return GitHubForge(GitHubContext.from_env(env, pr_number=number), session, retry=retry)
    if env.get("GITLAB_CI") == "true":
        from memgate.forges.gitlab import GitLabContext, GitLabForge

        return GitLabForge(GitLabContext.from_env(env, mr_iid=number), session, retry=retry)
    raise ForgeConfigError(
        "not running in GitHub Actions or GitLab CI (neither GITHUB_ACTIONS nor GITLAB_CI is 'true'), "
        "so there is no pull or merge request to comment on",
        hint="run the comment step in CI, or set the forge's variables by hand (see the README)",
    )
