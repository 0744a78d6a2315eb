"""GitLab's REST API v4: memgate's sticky note on the merge request."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import pydantic
import requests

from memgate.forges.base import MARKER, CommentForbidden, CommentResult, Forbidden, cut_body
from memgate.forges.ci import GITLAB_TOKEN_HINT, GitLabContext
from memgate.forges.http import HttpClient, RetryPolicy, Timeouts, upsert

#: GitLab: a note body is "limited to 1,000,000 characters"; keep a margin for its own counting.
COMMENT_LIMIT = 990_000


# Endpoints: ``GET /user`` (who we are), ``GET/POST /projects/:id/merge_requests/:iid/notes`` and ``PUT
# .../notes/:note_id``. ``CI_JOB_TOKEN`` may only read notes, so posting needs a real token in
# ``MEMGATE_GITLAB_TOKEN`` (sent as ``PRIVATE-TOKEN``).
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
        return f"{fork}the token's user must be Reporter or higher in the project: {GITLAB_TOKEN_HINT}"


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
