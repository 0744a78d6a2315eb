"""GitHub's REST API and runner files: the sticky pull request comment, the job summary, step outputs."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pydantic
import requests

from memgate.forges.base import MARKER, CommentForbidden, CommentResult, Forbidden, ForgeError, cut_body
from memgate.forges.ci import GitHubContext
from memgate.forges.http import HttpClient, RetryPolicy, Timeouts, upsert

#: GitHub rejects bodies over 65,536 characters (422 "Body is too long"); stay well under, as
#: changesets/action does, since GitHub may count some characters differently than Python.
COMMENT_LIMIT = 60_000
STEP_SUMMARY_LIMIT = 1_048_576  # bytes per step; GitHub drops a larger summary with an error
_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


# REST endpoints (a pull request is an issue): list ``GET /repos/{o}/{r}/issues/{n}/comments``, create
# ``POST`` to the same path, update ``PATCH /repos/{o}/{r}/issues/comments/{id}``. Checked against GitHub's
# OpenAPI description in tests/fakeforge/github-openapi-slice.json.
class GitHubForge:
    """One sticky memgate comment on the pull request (implements ``memgate.forges.base.Forge``)."""

    def __init__(
        self,
        context: GitHubContext,
        session: requests.Session,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        comment_limit: int = COMMENT_LIMIT,
    ) -> None:
        self.context = context
        self.comment_limit = comment_limit
        self._http = HttpClient(
            session,
            context.api_url,
            service="GitHub",
            auth_headers={"Authorization": f"Bearer {context.token}"},
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
            retry=retry,
            timeouts=timeouts,
            sleep=sleep,
            clock=clock,
        )

    def __repr__(self) -> str:
        ctx = self.context
        return f"GitHubForge({ctx.owner}/{ctx.repo}#{ctx.pr_number} at {ctx.api_url})"

    def upsert_comment(self, body: str) -> CommentResult:
        text = cut_body(body, self.comment_limit, self.context.run_url)
        path = f"{self._repo_path}/issues/{self.context.pr_number}/comments"
        try:
            response, created = upsert(self._http, path, text, find=self.find_own_comment,
                                       update=self._update)
        except Forbidden as exc:
            raise CommentForbidden(exc.message, status=exc.status, hint=self._forbidden_hint()) from None
        return CommentResult(url=self._http.parse(response, _COMMENT, "a comment").html_url, created=created)

    def _update(self, comment_id: int, text: str) -> requests.Response:
        path = f"{self._repo_path}/issues/comments/{comment_id}"
        return self._http.request("PATCH", path, json={"body": text})

    def find_own_comment(self) -> _Comment | None:
        """The oldest comment that carries the marker AND was written by us, reading every page.

        A comment a maintainer hid (minimized) is left alone: updating it would keep the new report
        hidden, so a fresh one is posted instead."""
        path = f"{self._repo_path}/issues/{self.context.pr_number}/comments"
        for page in self._http.pages(path, {"per_page": 100}, "link"):
            comments = self._http.parse(page, _COMMENTS, "a list of comments")
            for comment in comments:
                if MARKER in (comment.body or "") and self._is_ours(comment) and comment.minimized is None:
                    return comment
        return None

    @property
    def _repo_path(self) -> str:
        return f"repos/{self.context.owner}/{self.context.repo}"

    def _is_ours(self, comment: _Comment) -> bool:
        if comment.user is None:  # a deleted account ("ghost")
            return False
        return _same_login(comment.user.login, self.context.bot_login)

    def _forbidden_hint(self) -> str:
        if self.context.is_fork:
            return (
                "this pull request comes from a fork, and GitHub gives fork pull requests a read-only "
                "GITHUB_TOKEN; the report is in the job summary. To comment on fork pull requests, upload "
                "the report as an artifact and post it from a second workflow `on: workflow_run` (see the "
                "fork-safe example in the README)"
            )
        return (
            "grant the job `permissions: pull-requests: write` (or `issues: write`); with a personal or "
            "App token, give it write access to pull requests"
        )


def append_step_summary(path: Path | str, markdown: str, *, limit: int = STEP_SUMMARY_LIMIT) -> bool:
    """Append to ``$GITHUB_STEP_SUMMARY``, keeping the file under ``limit`` bytes; True when cut."""
    path = Path(path)
    try:
        used = path.stat().st_size if path.exists() else 0
        text, cut = _fit_summary(markdown, limit - used - 1)
        with path.open("a", encoding="utf-8") as summary:
            summary.write(text)
    except OSError as exc:
        raise ForgeError(f"cannot write the job summary: {exc.strerror}", path=path,
                         hint="GITHUB_STEP_SUMMARY must name a writable file") from None
    return cut


def set_output(path: Path | str, name: str, value: str) -> None:
    """Append ``name=value`` to ``$GITHUB_OUTPUT``; multiline values get a random delimiter."""
    if not _OUTPUT_NAME.fullmatch(name):
        raise ValueError(f"invalid output name {name!r}")
    if "\n" in value or "\r" in value:
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        while delimiter in value:  # astronomically unlikely, but a collision would end the value early
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
        line = f"{name}<<{delimiter}{os.linesep}{value}{os.linesep}{delimiter}{os.linesep}"
    else:
        line = f"{name}={value}{os.linesep}"
    try:
        with Path(path).open("a", encoding="utf-8") as output:
            output.write(line)
    except OSError as exc:
        raise ForgeError(f"cannot write the step outputs: {exc.strerror}", path=path,
                         hint="GITHUB_OUTPUT must name a writable file") from None


# -- GitHub's JSON, the parts memgate reads ----------------------------------------------------------


class _User(pydantic.BaseModel):
    login: str


class _Minimized(pydantic.BaseModel):
    reason: str | None = None


class _Comment(pydantic.BaseModel):
    id: int
    html_url: str
    body: str | None = None
    user: _User | None = None
    minimized: _Minimized | None = None  # hidden by a maintainer: post a fresh one rather than edit


_COMMENT = pydantic.TypeAdapter(_Comment)
_COMMENTS = pydantic.TypeAdapter(list[_Comment])


def _same_login(author: str, ours: str) -> bool:
    """``my-app`` names the App whose comments show ``my-app[bot]``; ``x[bot]`` must match exactly, so a
    human account called ``github-actions`` can never pass for ``github-actions[bot]``."""
    author, ours = author.lower(), ours.lower()
    return author == ours or (not ours.endswith("[bot]") and author == f"{ours}[bot]")


def _fit_summary(markdown: str, room: int) -> tuple[str, bool]:
    data = markdown.encode("utf-8")
    if len(data) <= room:
        return markdown, False
    note = ("\n\n**memgate: summary truncated at GitHub's 1 MiB step-summary limit; the full report is in "
            "the job log and artifacts.**\n")
    budget = room - len(note.encode("utf-8"))
    if budget <= 0:
        return "", True
    kept = data[:budget].decode("utf-8", errors="ignore")
    newline = kept.rfind("\n")
    return (kept[:newline] if newline > 0 else kept) + note, True

