"""Every request memgate sends to GitHub, and every answer the fake gives, checked against GitHub's own
OpenAPI description (tests/fakeforge/github-openapi-slice.json, cut from @octokit/openapi 23.0.2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fakeforge import FakeClock, FakeForge, GitHubUser, github_env

from memgate.forges.base import MARKER, CommentForbidden, Rejected
from memgate.forges.ci import GitHubContext
from memgate.forges.github import GitHubForge

openapi_core = pytest.importorskip("openapi_core")
from openapi_core.contrib.requests import (  # noqa: E402 - only once openapi-core is known to be there
    RequestsOpenAPIRequest,
    RequestsOpenAPIResponse,
)

SLICE = Path(__file__).parent.parent / "fakeforge" / "github-openapi-slice.json"


@pytest.fixture
def api(server: FakeForge) -> Any:
    spec = json.loads(SLICE.read_text())
    assert spec["info"]["version"] == "23.0.2"
    spec["servers"] = [{"url": server.github_api_url}]  # GHES-style base, as GITHUB_API_URL gives it
    return openapi_core.OpenAPI.from_dict(spec, config=openapi_core.Config(spec_validator_cls=None))


@pytest.fixture
def seen(session: requests.Session) -> Iterator[list[requests.Response]]:
    """Every exchange on the session, as sent and as answered (a public requests hook, no patching)."""
    responses: list[requests.Response] = []
    session.hooks["response"].append(lambda response, *args, **kwargs: responses.append(response))
    yield responses


def as_documented(request: requests.PreparedRequest, server: FakeForge) -> requests.PreparedRequest:
    """GitHub's Link headers name the repository by id (``/repositories/{id}/…``), a form the
    description does not list; it is the same operation as ``/repos/{owner}/{repo}/…``."""
    by_id = f"{server.github_api_url}/repositories/{server.repo_id}/"
    url = request.url or ""
    if url.startswith(by_id):
        request = request.copy()
        request.url = url.replace(by_id, f"{server.github_api_url}/repos/{server.owner}/{server.repo}/")
    return request


def validate(api: Any, server: FakeForge, response: requests.Response) -> None:
    request = RequestsOpenAPIRequest(as_documented(response.request, server))
    api.validate_request(request)
    api.validate_response(request, RequestsOpenAPIResponse(response))


def test_comment_upsert_requests_and_answers_match_githubs_description(
    api: Any,
    server: FakeForge,
    session: requests.Session,
    seen: list[requests.Response],
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    for n in range(150):
        server.seed_github(7, GitHubUser("alice", 3), f"comment {n}")
    forge = GitHubForge(
        GitHubContext.from_env(github_env(server, tmp_path)), session, sleep=clock.sleep, clock=clock.time
    )
    forge.upsert_comment(f"{MARKER}\nfirst")
    forge.upsert_comment(f"{MARKER}\nsecond")

    for response in seen:
        validate(api, server, response)
    assert [(r.request.method, r.status_code) for r in seen] == [
        ("GET", 200),
        ("GET", 200),
        ("POST", 201),
        ("GET", 200),
        ("GET", 200),
        ("PATCH", 200),
    ]


def test_error_answers_match_githubs_description(
    api: Any,
    server: FakeForge,
    session: requests.Session,
    seen: list[requests.Response],
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    context = GitHubContext.from_env(github_env(server, tmp_path))
    too_lax = GitHubForge(context, session, sleep=clock.sleep, clock=clock.time, comment_limit=70_000)
    with pytest.raises(Rejected):
        too_lax.upsert_comment("x" * 66_000)
    server.github_fork = True
    with pytest.raises(CommentForbidden):
        too_lax.upsert_comment("fork")

    assert [(r.request.method, r.status_code) for r in seen] == [
        ("GET", 200),
        ("POST", 422),
        ("GET", 200),
        ("POST", 403),
    ]
    for response in seen:
        validate(api, server, response)


def test_the_validator_is_not_a_rubber_stamp(api: Any, server: FakeForge) -> None:
    url = f"{server.github_api_url}/repos/octo-org/memprog/issues/7/comments"
    wrong_body = requests.Request("POST", url, json={"text": "the field is called body"}).prepare()
    with pytest.raises(openapi_core.validation.request.exceptions.InvalidRequestBody):
        api.validate_request(RequestsOpenAPIRequest(wrong_body))

    listing = requests.Request("GET", url, params={"per_page": 100}).prepare()
    thin = requests.Response()
    thin.status_code = 200
    thin.headers["Content-Type"] = "application/json; charset=utf-8"
    thin._content = b'[{"id": 2, "body": "no node_id, html_url, user..."}]'
    with pytest.raises(openapi_core.validation.response.exceptions.InvalidData):
        api.validate_response(RequestsOpenAPIRequest(listing), RequestsOpenAPIResponse(thin))
