"""GitHub's event file, the parts memgate reads to comment on a pull request. Its own module: the
pydantic models are built only when memgate comments, not by every command that reads CI facts."""

from __future__ import annotations

from pydantic import BaseModel


class EventRepo(BaseModel):
    full_name: str


class EventRef(BaseModel):
    sha: str
    ref: str = ""
    repo: EventRepo | None = None


class EventPullRequest(BaseModel):
    number: int
    base: EventRef
    head: EventRef


class Event(BaseModel):
    pull_request: EventPullRequest | None = None
