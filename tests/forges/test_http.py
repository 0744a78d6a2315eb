"""The HTTP client over a real local server: retries, rate limits, the time budget, timeouts,
redirects, pagination, and what of a forge's answer reaches a message."""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import socket
import time
from typing import Any

import pydantic
import pytest
import requests
from fakeforge import FakeClock, FakeForge

from memgate.forges.base import (
    Forbidden,
    ForgeRequestError,
    ForgeUnavailable,
    NotFound,
    OutOfTime,
    RateLimited,
    Unauthorized,
)
from memgate.forges.http import MAX_PAGES, HttpClient, Pagination, RetryPolicy, Timeouts

LIST = "repos/octo-org/memprog/issues/7/comments"
LIST_PATH = r"/api/v3/repos/octo-org/memprog/issues/7/comments"
CREATE = {"body": "hello"}


def client(server: FakeForge, session: requests.Session, clock: FakeClock, **options: object) -> HttpClient:
    return HttpClient(
        session,
        server.github_api_url,
        service="GitHub",
        auth_headers={"Authorization": f"Bearer {server.github_token}"},
        sleep=clock.sleep,
        clock=clock.time,
        **options,  # type: ignore[arg-type]
    )


def statuses(server: FakeForge) -> list[int]:
    return [r.status for r in server.requests]


def test_429_with_retry_after_then_success(
    server: FakeForge, session: requests.Session, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("POST", LIST_PATH, 429, headers={"Retry-After": "3"}, body={"message": "slow down"})
    response = client(server, session, clock).request("POST", LIST, json=CREATE)
    assert response.status_code == 201
    assert clock.sleeps == [3.0]
    assert statuses(server) == [429, 201]
    assert len(server.comments_on(7)) == 1
    assert (
        "GitHub: POST /api/v3/repos/octo-org/memprog/issues/7/comments: 429 Too Many Requests "
        "(slow down); retrying in 3 s (attempt 2 of 5)" in caplog.text
    )


def test_retry_after_as_an_http_date(server: FakeForge, session: requests.Session, clock: FakeClock) -> None:
    when = email.utils.formatdate(clock.now + 42, usegmt=True)
    server.script("GET", LIST_PATH, 429, headers={"Retry-After": when})
    client(server, session, clock).request("GET", LIST)
    assert clock.sleeps == [42.0]


def test_5xx_is_retried_with_exponential_backoff(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script("GET", LIST_PATH, 502, body="<html>Bad Gateway</html>", times=2)
    server.script("GET", LIST_PATH, 503, body={"message": "Service Unavailable"})
    response = client(server, session, clock).request("GET", LIST)
    assert response.status_code == 200
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert statuses(server) == [502, 502, 503, 200]


def test_5xx_gives_up_after_max_attempts(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script("GET", LIST_PATH, 500, body={"message": "Server Error"}, times=10)
    with pytest.raises(ForgeUnavailable) as caught:
        client(server, session, clock).request("GET", LIST)
    assert caught.value.message == (
        "GitHub: GET /api/v3/repos/octo-org/memprog/issues/7/comments: 500 Internal Server Error "
        "(Server Error) after 5 attempts"
    )
    assert caught.value.hint == "GitHub has trouble; re-run later"
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert len(server.requests) == 5


def test_secondary_rate_limit_with_retry_after(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script(
        "POST",
        LIST_PATH,
        403,
        headers={"retry-after": "60"},
        body={
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you "
            "try again.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        },
    )
    assert client(server, session, clock).request("POST", LIST, json=CREATE).status_code == 201
    assert clock.sleeps == [60.0]


def test_secondary_rate_limit_without_headers_waits_a_minute(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script(
        "POST",
        LIST_PATH,
        403,
        body={
            "message": "You have exceeded a secondary rate limit and have been temporarily blocked "
            "from content creation. Please retry your request again later.",
        },
    )
    assert client(server, session, clock).request("POST", LIST, json=CREATE).status_code == 201
    assert clock.sleeps == [60.0]


def test_primary_rate_limit_waits_until_the_reset(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    reset = int(clock.now) + 30
    server.script(
        "GET",
        LIST_PATH,
        403,
        headers={
            "x-ratelimit-limit": "1000",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": "1000",
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-resource": "core",
        },
        body={"message": "API rate limit exceeded for installation ID 1234."},
    )
    client(server, session, clock).request("GET", LIST)
    assert clock.sleeps == [31.0]  # until the reset, plus a second for clock skew


def test_a_reset_beyond_the_cap_gives_up_at_once(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script(
        "GET",
        LIST_PATH,
        403,
        headers={
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(int(clock.now) + 3599),
        },
        body={"message": "API rate limit exceeded for installation ID 1234."},
    )
    with pytest.raises(RateLimited) as caught:
        client(server, session, clock).request("GET", LIST)
    assert clock.sleeps == []
    assert caught.value.message == (
        "GitHub: GET /api/v3/repos/octo-org/memprog/issues/7/comments: 403 Forbidden (API rate limit "
        "exceeded for installation ID 1234.); it asks to wait 3600 s more (0 s waited already), over "
        "memgate's cap of 300 s"
    )
    assert caught.value.hint == "re-run the job after 23:13:20 UTC, when the rate limit resets"


def test_the_cap_bounds_the_sum_of_all_waits(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script("GET", LIST_PATH, 429, headers={"Retry-After": "4"}, times=3)
    with pytest.raises(
        RateLimited, match=r"asks to wait 4 s more \(8 s waited already\), over memgate's cap of 10 s"
    ):
        client(server, session, clock, retry=RetryPolicy(max_total_wait=10)).request("GET", LIST)
    assert clock.sleeps == [4.0, 4.0]


def test_rate_limit_retries_run_out(server: FakeForge, session: requests.Session, clock: FakeClock) -> None:
    server.script("GET", LIST_PATH, 429, headers={"Retry-After": "1"}, times=3)
    with pytest.raises(RateLimited, match="after 3 attempts"):
        client(server, session, clock, retry=RetryPolicy(max_attempts=3)).request("GET", LIST)
    assert clock.sleeps == [1.0, 2.0]  # Retry-After, then at least the backoff


def test_gitlab_ratelimit_reset_is_a_unix_time(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script(
        "GET",
        r"/api/v4/user",
        429,
        headers={
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": "2000",
            "RateLimit-Observed": "2001",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(clock.now) + 20),
            "RateLimit-ResetTime": email.utils.formatdate(clock.now + 20, usegmt=True),
        },
        body="Retry later\n",
    )
    gitlab = HttpClient(
        session,
        server.gitlab_api_url,
        service="GitLab",
        auth_headers={"PRIVATE-TOKEN": server.gitlab_token},
        sleep=clock.sleep,
        clock=clock.time,
    )
    assert gitlab.get_json("user") == {
        "id": 9001,
        "username": "project_42_bot_0f1e2d",
        "name": "memgate bot",
        "state": "active",
        "locked": False,
        "avatar_url": None,
        "web_url": "https://gitlab.example.test/project_42_bot_0f1e2d",
        "bot": True,
    }
    assert clock.sleeps == [21.0]


@pytest.mark.parametrize(
    ("status", "error", "hint"),
    [
        (401, Unauthorized, "the token is wrong, expired or revoked"),
        (403, Forbidden, "the token lacks the permission this needs"),
        (404, NotFound, "check the repository/project and number, and that the token can see it"),
    ],
)
def test_client_errors_are_final(
    server: FakeForge,
    session: requests.Session,
    clock: FakeClock,
    status: int,
    error: type[Exception],
    hint: str,
) -> None:
    server.script("GET", LIST_PATH, status, body={"message": "no"})
    with pytest.raises(error) as caught:
        client(server, session, clock).request("GET", LIST)
    assert isinstance(caught.value, ForgeRequestError)
    assert caught.value.hint == hint
    assert clock.sleeps == []
    assert len(server.requests) == 1


def test_every_request_has_a_timeout(server: FakeForge, session: requests.Session, clock: FakeClock) -> None:
    server.script("GET", LIST_PATH, 200, body=[], delay=1.0, times=2)
    quick = client(
        server, session, clock, timeouts=Timeouts(connect=1, read=0.2), retry=RetryPolicy(max_attempts=2)
    )
    with pytest.raises(ForgeUnavailable) as caught:
        quick.request("GET", LIST)
    assert caught.value.message == (
        "GitHub: GET /api/v3/repos/octo-org/memprog/issues/7/comments: no answer within 0.2 s "
        "after 2 attempts"
    )
    assert clock.sleeps == [1.0]
    assert len(server.requests) == 2


def test_a_post_that_timed_out_is_not_sent_again(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script("POST", LIST_PATH, 201, body={}, delay=1.0)
    quick = client(server, session, clock, timeouts=Timeouts(connect=1, read=0.2))
    with pytest.raises(ForgeUnavailable, match="no answer within 0.2 s$"):
        quick.request("POST", LIST, json=CREATE)
    assert len(server.requests) == 1  # it may have been applied: posting twice would duplicate the comment


def test_connection_refused_is_retried_then_reported(session: requests.Session, clock: FakeClock) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = HttpClient(
        session,
        f"http://127.0.0.1:{port}/api/v3",
        service="GitHub",
        auth_headers={"Authorization": "Bearer ghs_secret_never_shown_1234"},
        sleep=clock.sleep,
        clock=clock.time,
        retry=RetryPolicy(max_attempts=3),
    )
    with pytest.raises(ForgeUnavailable) as caught:
        down.request("GET", LIST)
    assert caught.value.one_line() == (
        f"GitHub: GET /api/v3/{LIST}: connection failed after 3 attempts: "
        f"check that http://127.0.0.1:{port} is reachable from this job"
    )
    assert clock.sleeps == [1.0, 2.0]


def test_same_origin_redirect_is_followed(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script(
        "GET",
        r"/api/v3/repos/octo-org/old-name/issues/7/comments",
        301,
        headers={"Location": f"{server.github_api_url}/repositories/{server.repo_id}/issues/7/comments"},
    )
    response = client(server, session, clock).request("GET", "repos/octo-org/old-name/issues/7/comments")
    assert response.status_code == 200
    assert [(r.path, r.status) for r in server.requests] == [
        ("/api/v3/repos/octo-org/old-name/issues/7/comments", 301),
        ("/api/v3/repositories/1296269/issues/7/comments", 200),
    ]
    assert server.requests[1].headers["Authorization"] == "Bearer <token>"


def test_the_token_never_follows_a_redirect_to_another_host(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    elsewhere = server.base_url.replace("127.0.0.1", "localhost") + "/steal"
    server.script("GET", LIST_PATH, 307, headers={"Location": elsewhere})
    with pytest.raises(ForgeRequestError, match="refusing to send the token there"):
        client(server, session, clock).request("GET", LIST)
    assert [r.path for r in server.requests] == [f"{LIST_PATH}"]


def test_the_token_never_follows_a_link_to_another_host(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    elsewhere = server.base_url.replace("127.0.0.1", "localhost")
    server.script(
        "GET", LIST_PATH, 200, body=[], headers={"Link": f'<{elsewhere}/api/v3/x?page=2>; rel="next"'}
    )
    with pytest.raises(ForgeRequestError, match="refusing to send the token there"):
        list(client(server, session, clock).pages(LIST, {"per_page": 100}, "link"))
    assert len(server.requests) == 1


def test_link_pagination_reads_every_page(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    for n in range(7):
        server.seed_github(7, server.github_users[server.github_token], f"c{n}")
    pages = list(client(server, session, clock).pages(LIST, {"per_page": 3}, "link"))
    assert [[c["body"] for c in page.json()] for page in pages] == [
        ["c0", "c1", "c2"],
        ["c3", "c4", "c5"],
        ["c6"],
    ]


def test_a_pagination_loop_is_caught(server: FakeForge, session: requests.Session, clock: FakeClock) -> None:
    server.script("GET", LIST_PATH, 200, body=[], headers={"X-Next-Page": "1"}, times=5)
    with pytest.raises(ForgeRequestError, match="pagination loops back"):
        list(client(server, session, clock).pages(LIST, {"page": 1}, "x-next-page"))


def test_an_answer_that_is_not_json(server: FakeForge, session: requests.Session, clock: FakeClock) -> None:
    server.script("GET", LIST_PATH, 200, body="<html>captive portal</html>")
    with pytest.raises(ForgeRequestError, match="with something that is not JSON") as caught:
        client(server, session, clock).get_json(LIST)
    assert caught.value.hint == "check that the API URL points at the forge's REST API"


def test_no_token_in_logs_or_errors(
    server: FakeForge, session: requests.Session, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = server.github_token
    http = client(server, session, clock, retry=RetryPolicy(max_attempts=2))
    server.script("GET", LIST_PATH, 503, body={"message": f"token {token} rejected"}, times=2)
    with pytest.raises(ForgeUnavailable) as caught:
        http.request("GET", LIST)
    assert "token *** rejected" in caught.value.message
    for text in (
        caplog.text,
        str(caught.value),
        repr(caught.value),
        caught.value.one_line(),
        repr(http),
        str(server.requests),
    ):
        assert token not in text
        assert f"Bearer {token}" not in text


def test_a_post_answered_with_5xx_is_left_to_the_caller(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    # The forge may have applied it; the comment upsert looks before posting again.
    server.script("POST", LIST_PATH, 502, body={"message": "Server Error"})
    with pytest.raises(ForgeUnavailable, match=r"502 Bad Gateway \(Server Error\)$"):
        client(server, session, clock).request("POST", LIST, json=CREATE)
    server.script("POST", LIST_PATH, 502, body={"message": "Server Error"})
    response = client(server, session, clock).request("POST", LIST, json=CREATE, repeatable=True)
    assert response.status_code == 201
    assert statuses(server) == [502, 502, 201]
    assert clock.sleeps == [1.0]


# -- secrets: redacted before any cut, in every form ------------------------------------------------


def test_a_token_straddling_the_cut_is_redacted_whole(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    """The forge's message is cut to 300 characters; the token sits across the cut."""
    token = server.github_token
    server.script("GET", LIST_PATH, 401, body={"message": "x" * 290 + token + " is not valid"})
    with pytest.raises(Unauthorized) as caught:
        client(server, session, clock).request("GET", LIST)
    line = caught.value.one_line()
    assert "x" * 290 + "***" in line
    assert token[:4] not in line, "not even the token's prefix"


def test_the_tokens_base64_form_is_redacted(
    server: FakeForge, session: requests.Session, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A forge (or a proxy before it) echoing a Basic authorization header back, at each alignment."""
    token = server.github_token
    echoes = [base64.b64encode(f"{user}:{token}".encode()).decode() for user in ("x", "xy", "x-access-token")]
    message = "bad header: " + ", ".join(f"Basic {echo}" for echo in echoes)
    server.script("GET", LIST_PATH, 503, body={"message": message}, times=2)
    http = client(server, session, clock, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(ForgeUnavailable) as caught:
        http.request("GET", LIST)
    for text in (caught.value.one_line(), caplog.text):
        assert text.count("***") == 3
        for echo in echoes:
            assert echo[len(echo) // 2 :][:8] not in text


def test_the_password_of_a_url_is_redacted(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script("GET", LIST_PATH, 422,
                  body={"message": "cannot clone https://oauth2:glpat-notOurs0123@gitlab.example.test/x.git"})
    with pytest.raises(ForgeRequestError) as caught:
        client(server, session, clock).request("GET", LIST)
    assert "https://oauth2:***@gitlab.example.test/x.git" in caught.value.one_line()
    assert "glpat-notOurs0123" not in caught.value.one_line()


@pytest.mark.parametrize("elsewhere", ["https://{host}:{port}", "http://{host}:{other}", "http://{host}",
                                       "http://user:{token}@{host}:{port}", "http://{host}:{port}@localhost"])
def test_a_next_link_to_another_scheme_port_or_user_is_refused(
    server: FakeForge, session: requests.Session, clock: FakeClock, elsewhere: str
) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    url = elsewhere.format(host=host, port=port, other=int(port) + 1, token=server.github_token)
    server.script("GET", LIST_PATH, 200, body=[], headers={"Link": f'<{url}/api/v3/x?page=2>; rel="next"'})
    with pytest.raises(ForgeRequestError, match="refusing to send the token there") as caught:
        list(client(server, session, clock).pages(LIST, {"per_page": 100}, "link"))
    assert len(server.requests) == 1
    assert server.github_token.lower() not in caught.value.one_line().lower()  # origins show lowercased


# -- a slow or hostile forge never holds the job ----------------------------------------------------


@pytest.mark.parametrize("slow", [{"body": "[" + " " * 30 + "]", "drip": 0.2},  # 6.4 s in all
                                  {"body": [], "header_drip": 0.2}])  # the status line and headers: 20 s
def test_an_answer_sent_a_byte_at_a_time_ends_within_the_budget(
    server: FakeForge, session: requests.Session, slow: dict[str, Any]
) -> None:
    """Each byte (of the body, or of the headers) comes well within the read timeout; the budget
    bounds the whole answer."""
    server.script("GET", LIST_PATH, 200, **slow)
    http = HttpClient(session, server.github_api_url, service="GitHub", auth_headers={},
                      retry=RetryPolicy(max_total_wait=1.0))
    started = time.monotonic()
    with pytest.raises(OutOfTime) as caught:
        http.request("GET", LIST)
    assert time.monotonic() - started < 1.5
    assert caught.value.one_line() == (
        f"GitHub: GET /api/v3/{LIST}: no complete answer within the 1 s memgate gives the forge: "
        "the forge answers too slowly; re-run later, or raise MEMGATE_FORGE_MAX_WAIT"
    )
    assert len(server.requests) == 1, "the budget is spent: no retry"


def test_headers_sent_slowly_within_the_budget_are_read(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script("GET", LIST_PATH, 200, body=[], header_drip=0.001)
    assert client(server, session, clock).get_json(LIST) == []


NESTED = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_json_is_a_clear_error(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    """Thousands of '[' in an answer: a ForgeRequestError naming the answer, never a RecursionError."""
    server.script("GET", LIST_PATH, 200, body=NESTED, times=2)
    http = client(server, session, clock)
    with pytest.raises(ForgeRequestError) as caught:
        http.get_json(LIST)
    assert caught.value.one_line() == (
        f"GitHub answered /api/v3/{LIST} with JSON nested too deeply to read: check that the API URL "
        "points at the forge's REST API")
    with pytest.raises(ForgeRequestError, match=f"GitHub answered /api/v3/{LIST} with a list memgate cannot "
                       "read"):
        http.parse(http.request("GET", LIST), pydantic.TypeAdapter(list[int]), "a list")


@pytest.mark.parametrize(("status", "body"), [
    (422, NESTED), (503, NESTED),
    (422, {"message": json.loads("[" * 900 + "]" * 900)}),  # JSON reads it; flattening it must not recurse
])
def test_an_error_answer_of_deeply_nested_json_is_a_clear_error(
    server: FakeForge, session: requests.Session, clock: FakeClock, status: int, body: object
) -> None:
    """The error's detail is read from its JSON: nested too deeply, the message says so."""
    server.script("GET", LIST_PATH, status, body=body, times=2)
    with pytest.raises(ForgeRequestError) as caught:
        client(server, session, clock, retry=RetryPolicy(max_attempts=2)).request("GET", LIST)
    assert caught.value.message.startswith(f"GitHub: GET /api/v3/{LIST}: {status} ")
    tries = " after 2 attempts" if status == 503 else ""
    assert caught.value.message.endswith(f"(an answer of JSON nested too deeply to read){tries}")


def test_retries_end_within_the_budget(server: FakeForge, session: requests.Session) -> None:
    server.script("GET", LIST_PATH, 503, body={"message": "busy"}, delay=0.4, times=10)
    http = HttpClient(session, server.github_api_url, service="GitHub", auth_headers={},
                      retry=RetryPolicy(max_total_wait=1.5, max_attempts=10, backoff_seconds=0.01))
    started = time.monotonic()
    with pytest.raises(ForgeRequestError):
        http.request("GET", LIST)
    assert time.monotonic() - started < 2.0
    assert len(server.requests) <= 4


def test_an_answer_over_the_size_cap_is_not_read(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    server.script("GET", LIST_PATH, 200, body=[{"body": "x" * 5000}])
    with pytest.raises(ForgeRequestError) as caught:
        client(server, session, clock, max_body_bytes=4096).request("GET", LIST)
    assert caught.value.message == (
        f"GitHub: GET /api/v3/{LIST}: the answer is larger than 4,096 bytes, more than memgate reads"
    )
    assert clock.sleeps == []


@pytest.mark.parametrize("style", ["link", "x-next-page"])
def test_endless_pages_stop_at_the_cap(
    server: FakeForge, session: requests.Session, clock: FakeClock, style: Pagination
) -> None:
    server.endless_pages = True
    if style == "link":
        pages = client(server, session, clock).pages(LIST, {"per_page": 100}, style)
    else:
        gitlab = HttpClient(session, server.gitlab_api_url, service="GitLab",
                            auth_headers={"PRIVATE-TOKEN": server.gitlab_token}, sleep=clock.sleep)
        pages = gitlab.pages("projects/42/merge_requests/5/notes", {"per_page": 100}, style)
    with pytest.raises(ForgeRequestError, match=f"goes on past {MAX_PAGES} pages, memgate's cap"):
        list(pages)
    assert len(server.requests) == MAX_PAGES == 100


def test_exactly_max_pages_is_not_an_error(
    server: FakeForge, session: requests.Session, clock: FakeClock
) -> None:
    for n in range(6):
        server.seed_github(7, server.github_users[server.github_token], f"c{n}")
    pages = list(client(server, session, clock).pages(LIST, {"per_page": 2}, "link", max_pages=3))
    assert len(pages) == 3


# -- text from the forge is printed escaped ----------------------------------------------------------


def test_forge_text_cannot_start_a_line_of_its_own(
    server: FakeForge, session: requests.Session, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    hostile = "busy\nmemgate: PASS\r\x1b[2K\u2028memgate: PASS"
    server.script("GET", LIST_PATH, 503, body={"message": hostile}, times=2)
    with pytest.raises(ForgeUnavailable) as caught:
        client(server, session, clock, retry=RetryPolicy(max_attempts=2)).request("GET", LIST)
    shown = "busy\\nmemgate: PASS\\r\\x1b[2K\\u2028memgate: PASS"
    assert f"503 Service Unavailable ({shown})" in caught.value.message
    assert f"({shown}); retrying in 1 s" in caplog.text
    for text in (caught.value.one_line(), caplog.text):
        assert not any(line.startswith("memgate: PASS") for line in text.splitlines())
        assert "\x1b" not in text and "\r" not in text
