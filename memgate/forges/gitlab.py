"""GitLab: the merge request from the CI environment and memgate's sticky note on it (REST API v4).

Endpoints: ``GET /user`` (who we are), ``GET/POST /projects/:id/merge_requests/:iid/notes`` and
``PUT .../notes/:note_id``. ``CI_JOB_TOKEN`` may only read notes, so posting needs a real token
in ``MEMGATE_GITLAB_TOKEN`` (sent as ``PRIVATE-TOKEN``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

import pydantic
import requests

from memgate.forges.base import (
    MARKER,
    CommentForbidden,
    CommentResult,
    Forbidden,
    ForgeConfigError,
    cut_body,
    request_number,
)
from memgate.forges.http import HttpClient, RetryPolicy, Timeouts, upsert

TOKEN_VARIABLE = "MEMGATE_GITLAB_TOKEN"
#: GitLab: a note body is "limited to 1,000,000 characters"; keep a margin for its own counting.
COMMENT_LIMIT = 990_000
_TOKEN_HINT = (
    "create a project access token (Settings > Access tokens, role Reporter or higher, scope `api`) and "
    f"store it as a masked, unprotected CI/CD variable {TOKEN_VARIABLE} (a protected variable never "
    "reaches merge request pipelines of unprotected branches)"
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
        token = env.get(TOKEN_VARIABLE, "").strip()
        if not token:
            raise ForgeConfigError(_missing_token_message(env), hint=_TOKEN_HINT)
        source_project = env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "").strip()
        project_url = env.get("CI_MERGE_REQUEST_PROJECT_URL", "").strip()
        return cls(
            api_url=api_url,
            project_id=project_id,
            mr_iid=iid,
            token=token,
            diff_base_sha=env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA", "").strip() or None,
            is_fork=bool(source_project) and source_project != project_id,
            mr_url=f"{project_url.rstrip('/')}/-/merge_requests/{iid_text}" if project_url else None,
            job_url=env.get("CI_JOB_URL", "").strip() or None,
        )


class GitLabForge:
    """One sticky memgate note on the merge request (implements ``memgate.forges.base.Forge``)."""

    def __init__(
        self,
        context: GitLabContext,
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
            service="GitLab",
            auth_headers={"PRIVATE-TOKEN": context.token},
            headers={"Accept": "application/json"},
            retry=retry,
            timeouts=timeouts,
            sleep=sleep,
            clock=clock,
        )

    def __repr__(self) -> str:
        ctx = self.context
        return f"GitLabForge(project {ctx.project_id} !{ctx.mr_iid} at {ctx.api_url})"

    def upsert_comment(self, body: str) -> CommentResult:
        text = cut_body(body, self.comment_limit, self.context.job_url)
        try:
            response, created = upsert(self._http, self._notes_path, text, find=self.find_own_note,
                                       update=self._update)
        except Forbidden as exc:
            raise CommentForbidden(exc.message, status=exc.status, hint=self._forbidden_hint()) from None
        note = self._http.parse(response, _NOTE, "a note")
        return CommentResult(url=self._note_url(note.id), created=created)

    def _update(self, note_id: int, text: str) -> requests.Response:
        return self._http.request("PUT", f"{self._notes_path}/{note_id}", json={"body": text})

    def username(self) -> str:
        """Whose token this is: only that user's notes are ever ours to update."""
        return self._http.parse(self._http.request("GET", "user"), _USER, "a user").username

    def find_own_note(self) -> _Note | None:
        """The oldest non-system note carrying the marker AND written by us, reading every page."""
        ours = self.username()
        params: dict[str, str | int] = {"sort": "asc", "order_by": "created_at", "per_page": 100}
        for page in self._http.pages(self._notes_path, params, "x-next-page"):
            for note in self._http.parse(page, _NOTES, "a list of notes"):
                if not note.system and note.author.username == ours and MARKER in note.body:
                    return note
        return None

    @property
    def _notes_path(self) -> str:
        project = quote(self.context.project_id, safe="")
        return f"projects/{project}/merge_requests/{self.context.mr_iid}/notes"

    def _note_url(self, note_id: int) -> str:
        if self.context.mr_url:
            return f"{self.context.mr_url}#note_{note_id}"
        return self._http.url(f"{self._notes_path}/{note_id}")

    def _forbidden_hint(self) -> str:
        fork = (
            "this merge request comes from a fork, whose pipelines do not get the parent project's "
            "variables; " if self.context.is_fork else ""
        )
        return f"{fork}the token's user must be Reporter or higher in the project: {_TOKEN_HINT}"


class _User(pydantic.BaseModel):
    username: str


class _Note(pydantic.BaseModel):
    id: int
    body: str
    author: _User
    system: bool = False


_USER = pydantic.TypeAdapter(_User)
_NOTE = pydantic.TypeAdapter(_Note)
_NOTES = pydantic.TypeAdapter(list[_Note])


def _required(env: Mapping[str, str], name: str, hint: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ForgeConfigError(f"{name} is not set", hint=hint)
    return value


def _missing_token_message(env: Mapping[str, str]) -> str:
    if env.get("CI_JOB_TOKEN"):
        return (
            f"{TOKEN_VARIABLE} is not set, and CI_JOB_TOKEN cannot post merge request notes (GitLab lets "
            "job tokens only read them)"
        )
    return f"{TOKEN_VARIABLE} is not set, so memgate cannot post the merge request note"
