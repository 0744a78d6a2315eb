"""GitLab: context from CI variables, the sticky merge request note over real HTTP."""

from __future__ import annotations

import logging

import pytest
import requests
from fakeforge import FakeClock, FakeForge, gitlab_env

from memgate.forges import forge_from_env
from memgate.forges.base import MARKER, CommentForbidden, ForgeError, Unauthorized
from memgate.forges.ci import GitLabContext
from memgate.forges.gitlab import COMMENT_LIMIT, GitLabForge

REPORT = f"{MARKER}\n## memgate: 1 suite failed\n\n| suite | new leaks |\n|---|---|\n| unit | 1 |\n"
US = "project_42_bot_0f1e2d"
NOTES = "/api/v4/projects/42/merge_requests/5/notes"


def make_forge(server: FakeForge, session: requests.Session, clock: FakeClock, **env: str) -> GitLabForge:
    context = GitLabContext.from_env({**gitlab_env(server), **env})
    return GitLabForge(context, session, sleep=clock.sleep, clock=clock.time)


# -- the forge from the environment (the context itself: tests/forges/test_ci.py) -----------------


def test_forge_from_env_picks_gitlab(server: FakeForge, session: requests.Session) -> None:
    assert isinstance(forge_from_env(gitlab_env(server), session), GitLabForge)


# -- the sticky note -------------------------------------------------------------------------------


def test_first_run_creates_the_note_second_updates_it(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    forge = make_forge(server, session, clock)
    first = forge.upsert_comment(REPORT)
    second = forge.upsert_comment(REPORT.replace("| 1 |", "| 2 |"))

    (note,) = server.notes_on(5)
    assert (note.author, note.body) == (US, REPORT.replace("| 1 |", "| 2 |"))
    assert first.created is True and second.created is False
    assert (
        first.url
        == second.url
        == f"https://gitlab.example.test/group/memprog/-/merge_requests/5#note_{note.id}"
    )
    listing = {"sort": ["asc"], "order_by": ["created_at"], "per_page": ["100"]}
    assert [(r.method, r.path, r.query, r.status) for r in server.requests] == [
        ("GET", "/api/v4/user", {}, 200),
        ("GET", NOTES, listing, 200),
        ("POST", NOTES, {}, 201),
        ("GET", "/api/v4/user", {}, 200),
        ("GET", NOTES, listing, 200),
        ("PUT", f"{NOTES}/{note.id}", {}, 200),
    ]
    assert server.requests[2].body == {"body": REPORT}
    for sent in server.requests:
        assert sent.headers["PRIVATE-TOKEN"] == "<token>"
        assert "JOB-TOKEN" not in sent.headers


def test_pages_are_followed_through_x_next_page(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    for n in range(230):
        server.seed_gitlab(5, "alice" if n % 2 else "bob", f"review comment {n}")
    ours = server.seed_gitlab(5, US, f"{MARKER}\nold report")
    forge = make_forge(server, session, clock)

    assert forge.upsert_comment(REPORT).created is False
    assert ours.body == REPORT
    pages = [r.query.get("page") for r in server.requests if r.path == NOTES]
    assert pages == [None, ["2"], ["3"]]
    # The fake answers as GitLab does: these are the headers the client followed.
    listings = [r for r in server.requests if r.path == NOTES]
    assert [r.response_headers["X-Next-Page"] for r in listings] == ["2", "3", ""]
    assert {r.response_headers["X-Total"] for r in listings} == {"231"}
    assert {r.response_headers["X-Total-Pages"] for r in listings} == {"3"}


def test_without_sort_asc_gitlab_would_answer_newest_first(
    server: FakeForge, session: requests.Session
) -> None:
    # Why the client asks for sort=asc: GitLab's default order is descending.
    server.seed_gitlab(5, "alice", "first")
    server.seed_gitlab(5, "bob", "second")
    answer = session.get(
        f"{server.gitlab_api_url}/projects/42/merge_requests/5/notes",
        headers={"PRIVATE-TOKEN": server.gitlab_token},
        timeout=5,
    )
    assert [n["body"] for n in answer.json()] == ["second", "first"]


def test_other_authors_and_system_notes_are_never_touched(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    theirs = server.seed_gitlab(5, "mallory", f"{MARKER}\nfake report")
    system = server.seed_gitlab(5, US, f"{MARKER}\nchanged the description", system=True)
    forge = make_forge(server, session, clock)

    assert forge.upsert_comment(REPORT).created is True
    assert forge.upsert_comment(REPORT).created is False

    notes = server.notes_on(5)
    assert [n.body for n in notes] == [f"{MARKER}\nfake report", f"{MARKER}\nchanged the description", REPORT]
    assert (theirs.body, system.body) == (f"{MARKER}\nfake report", f"{MARKER}\nchanged the description")
    assert [r.path for r in server.writes()] == [NOTES, f"{NOTES}/{notes[2].id}"]


def test_project_path_is_url_encoded(server: FakeForge, session: requests.Session, clock: FakeClock) -> None:
    forge = make_forge(server, session, clock, CI_MERGE_REQUEST_PROJECT_ID="group/memprog")
    forge.upsert_comment(REPORT)
    assert [r.path for r in server.writes()] == ["/api/v4/projects/group%2Fmemprog/merge_requests/5/notes"]
    assert len(server.notes_on(5)) == 1


def test_a_token_without_reporter_role_gets_the_hint(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.gitlab_read_only = True
    forge = make_forge(server, session, clock)
    with pytest.raises(CommentForbidden) as caught:
        forge.upsert_comment(REPORT)
    assert caught.value.message == f"GitLab: POST {NOTES}: 403 Forbidden (403 Forbidden)"
    assert caught.value.hint.startswith("the token's user must be Reporter or higher in the project")
    assert "project access token" in caught.value.hint
    assert clock.sleeps == []


def test_a_fork_mr_hint_mentions_forks(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.gitlab_read_only = True
    forge = make_forge(server, session, clock, CI_MERGE_REQUEST_SOURCE_PROJECT_ID="77")
    with pytest.raises(CommentForbidden) as caught:
        forge.upsert_comment(REPORT)
    assert caught.value.hint.startswith("this merge request comes from a fork")


def test_429_retry_later_then_success(server: FakeForge, session: requests.Session, clock: FakeClock) -> None:
    server.script(
        "POST",
        NOTES,
        429,
        headers={
            "Retry-After": "7",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(clock.now) + 7),
        },
        body="Retry later\n",
    )
    forge = make_forge(server, session, clock)
    assert forge.upsert_comment(REPORT).created is True
    assert clock.sleeps == [7.0]
    assert [r.status for r in server.writes()] == [429, 201]
    assert len(server.notes_on(5)) == 1


def test_a_body_over_the_limit_is_cut(server: FakeForge, session: requests.Session, clock: FakeClock) -> None:
    forge = make_forge(server, session, clock)
    forge.upsert_comment(REPORT + "| row | 1 |\n" * 150_000)  # 1.8 million characters
    (note,) = server.notes_on(5)
    assert len(note.body) <= COMMENT_LIMIT < 1_000_000
    assert note.body.startswith(MARKER)
    assert note.body.endswith("The full report: https://gitlab.example.test/group/memprog/-/jobs/99\n")


def test_a_rejected_token_is_reported_without_the_token(
    server: FakeForge, session: requests.Session, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = gitlab_env(server)
    env["MEMGATE_GITLAB_TOKEN"] = "glpat-revoked-token-abcdef012345"
    forge = GitLabForge(GitLabContext.from_env(env), session, sleep=clock.sleep, clock=clock.time)
    with pytest.raises(Unauthorized) as caught:
        forge.upsert_comment(REPORT)
    error: ForgeError = caught.value
    assert error.one_line() == (
        "GitLab: GET /api/v4/user: 401 Unauthorized (401 Unauthorized): "
        "the token is wrong, expired or revoked"
    )
    # The token from the environment was sent (the fake blanks only the tokens it accepts)...
    assert server.requests[0].headers["PRIVATE-TOKEN"] == "glpat-revoked-token-abcdef012345"
    # ...and memgate's own output never shows it.
    for text in (str(error), repr(error), error.one_line(), caplog.text, repr(forge), repr(forge.context)):
        assert "glpat-revoked-token-abcdef012345" not in text


def test_no_token_anywhere_after_a_full_run(
    server: FakeForge, session: requests.Session, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forge = make_forge(server, session, clock)
    server.script("GET", NOTES, 502, body={"message": f"upstream said {server.gitlab_token}"})
    forge.upsert_comment(REPORT)
    server.gitlab_read_only = True
    with pytest.raises(CommentForbidden) as caught:
        forge.upsert_comment(REPORT)
    assert "upstream said ***" in caplog.text
    for text in (caplog.text, str(server.requests), str(caught.value), caught.value.one_line(), repr(forge)):
        assert server.gitlab_token not in text


def test_a_post_that_failed_after_creating_the_note_is_not_repeated(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script("POST", NOTES, 502, body="<html>502 Bad Gateway</html>", apply=True)
    forge = make_forge(server, session, clock)
    assert forge.upsert_comment(REPORT).created is True
    assert [n.body for n in server.notes_on(5)] == [REPORT]
    assert [r.method for r in server.writes()] == ["POST", "PUT"]


def test_the_number_can_be_given(server: FakeForge, session: requests.Session) -> None:
    env = gitlab_env(server)
    del env["CI_MERGE_REQUEST_IID"]
    forge = forge_from_env(env, session, number=5)
    assert isinstance(forge, GitLabForge) and forge.context.mr_iid == 5


def test_endless_pages_post_nothing(server: FakeForge, session: requests.Session, clock: FakeClock) -> None:
    server.endless_pages = True
    with pytest.raises(ForgeError, match="goes on past 100 pages, memgate's cap"):
        make_forge(server, session, clock).upsert_comment(REPORT)
    assert len(server.requests) == 1 + 100  # who we are, then the pages
    assert server.writes() == []
