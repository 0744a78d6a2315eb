"""CI environments (GitHub Actions, GitLab CI) pointing at a ``FakeForge``."""

from __future__ import annotations

import json
from pathlib import Path

from fakeforge.server import FakeForge


def write_event(path: Path, *, number: int = 7, head_repo: str | None = "octo-org/memprog") -> Path:
    """A trimmed pull_request event as the runner writes it to GITHUB_EVENT_PATH."""
    event = {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "state": "open",
            "base": {"ref": "main", "sha": "b" * 40, "repo": {"full_name": "octo-org/memprog"}},
            "head": {
                "ref": "feature",
                "sha": "h" * 40,
                "repo": {"full_name": head_repo} if head_repo else None,
            },
        },
        "repository": {"full_name": "octo-org/memprog"},
    }
    path.write_text(json.dumps(event))
    return path


def github_env(server: FakeForge, tmp_path: Path, **event: object) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": server.github_api_url,
        "GITHUB_SERVER_URL": "https://github.example.test",
        "GITHUB_REPOSITORY": f"{server.owner}/{server.repo}",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(write_event(tmp_path / "event.json", **event)),  # type: ignore[arg-type]
        "GITHUB_REF": "refs/pull/7/merge",
        "GITHUB_RUN_ID": "123456",
        "GITHUB_TOKEN": server.github_token,
    }


def gitlab_env(server: FakeForge) -> dict[str, str]:
    return {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": server.gitlab_api_url,
        "CI_PROJECT_ID": str(server.gitlab_project_id),
        "CI_MERGE_REQUEST_PROJECT_ID": str(server.gitlab_project_id),
        "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": str(server.gitlab_project_id),
        "CI_MERGE_REQUEST_PROJECT_URL": "https://gitlab.example.test/group/memprog",
        "CI_MERGE_REQUEST_IID": "5",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": "d" * 40,
        "CI_JOB_URL": "https://gitlab.example.test/group/memprog/-/jobs/99",
        "CI_JOB_TOKEN": "job-token-should-never-be-used-1234",
        "MEMGATE_GITLAB_TOKEN": server.gitlab_token,
    }
