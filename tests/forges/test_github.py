"""GitHub: context from the Actions environment, sticky comment upsert over real HTTP, summary, outputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import requests
from fakeforge import ACTIONS_BOT, FakeClock, FakeForge, GitHubUser, github_env, write_event

from memgate.errors import ExitCode
from memgate.forges import forge_from_env
from memgate.forges.base import (
    MARKER,
    CommentForbidden,
    ForgeConfigError,
    ForgeError,
    Rejected,
    Unauthorized,
)
from memgate.forges.ci import GitHubContext
from memgate.forges.github import COMMENT_LIMIT, GitHubForge, append_step_summary, set_output

REPORT = f"{MARKER}\n## memgate: 2 suites passed\n\n| suite | peak heap |\n|---|---|\n| unit | 1.2 MiB |\n"
MALLORY = GitHubUser("mallory", 666)
HUMAN_NAMED_LIKE_BOT = GitHubUser("github-actions", 9999)  # a user account, not the Actions App


def make_forge(server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock,
               **event: object) -> GitHubForge:
    context = GitHubContext.from_env(github_env(server, tmp_path, **event))
    return GitHubForge(context, session, sleep=clock.sleep, clock=clock.time)


# -- the forge from the environment (the context itself: tests/forges/test_ci.py) -----------------


def test_forge_from_env_picks_github(server: FakeForge, session: requests.Session, tmp_path: Path) -> None:
    forge = forge_from_env(github_env(server, tmp_path), session)
    assert isinstance(forge, GitHubForge)
    with pytest.raises(ForgeConfigError, match="not running in GitHub Actions or GitLab CI"):
        forge_from_env({}, session)


# -- the sticky comment ----------------------------------------------------------------------------


def test_first_run_creates_the_comment_second_updates_it(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    forge = make_forge(server, session, tmp_path, clock)
    first = forge.upsert_comment(REPORT)
    second = forge.upsert_comment(REPORT.replace("1.2 MiB", "1.3 MiB"))

    comments = server.comments_on(7)
    assert len(comments) == 1
    (ours,) = comments
    assert ours.user == ACTIONS_BOT
    assert ours.body == REPORT.replace("1.2 MiB", "1.3 MiB")
    assert first.created is True and second.created is False
    assert first.url == second.url == f"https://github.example.test/octo-org/memprog/pull/7#issuecomment-{ours.id}"

    repo = "/api/v3/repos/octo-org/memprog"
    assert [(r.method, r.path, r.status) for r in server.requests] == [
        ("GET", f"{repo}/issues/7/comments", 200),
        ("POST", f"{repo}/issues/7/comments", 201),
        ("GET", f"{repo}/issues/7/comments", 200),
        ("PATCH", f"{repo}/issues/comments/{ours.id}", 200),
    ]
    assert server.requests[0].query == {"per_page": ["100"]}
    assert server.requests[1].body == {"body": REPORT}
    for sent in server.requests:
        assert sent.headers["Accept"] == "application/vnd.github+json"
        assert sent.headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert sent.headers["Authorization"] == "Bearer <token>"


def test_a_body_without_the_marker_gets_it(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    forge = make_forge(server, session, tmp_path, clock)
    forge.upsert_comment("no marker here")
    assert forge.upsert_comment("still none").created is False
    assert [c.body for c in server.comments_on(7)] == [f"{MARKER}\nstill none"]


def test_marker_comments_by_other_authors_are_never_touched(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    theirs = server.seed_github(7, MALLORY, f"{MARKER}\nfake report")
    lookalike = server.seed_github(7, HUMAN_NAMED_LIKE_BOT, f"{MARKER}\nfake report too")
    forge = make_forge(server, session, tmp_path, clock)

    assert forge.upsert_comment(REPORT).created is True
    assert forge.upsert_comment(REPORT).created is False

    assert [c.body for c in server.comments_on(7)] == [theirs.body, lookalike.body, REPORT]
    assert theirs.body == f"{MARKER}\nfake report" and lookalike.body == f"{MARKER}\nfake report too"
    touched = {r.path.rsplit("/", 1)[-1] for r in server.writes() if r.method == "PATCH"}
    assert touched == {str(server.comments_on(7)[2].id)}


def test_our_comment_is_found_on_page_two_behind_150_others(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    for n in range(150):
        server.seed_github(7, MALLORY if n % 2 else HUMAN_NAMED_LIKE_BOT, f"comment {n}")
    ours = server.seed_github(7, ACTIONS_BOT, f"{MARKER}\nold report")
    forge = make_forge(server, session, tmp_path, clock)

    result = forge.upsert_comment(REPORT)

    assert result.created is False
    assert ours.body == REPORT
    assert len(server.comments_on(7)) == 151
    assert [(r.method, r.path, r.query) for r in server.requests] == [
        ("GET", "/api/v3/repos/octo-org/memprog/issues/7/comments", {"per_page": ["100"]}),
        # GitHub's Link header names the repository by id; the client follows it verbatim.
        ("GET", "/api/v3/repositories/1296269/issues/7/comments", {"per_page": ["100"], "page": ["2"]}),
        ("PATCH", f"/api/v3/repos/octo-org/memprog/issues/comments/{ours.id}", {}),
    ]


def test_every_page_is_read_before_posting(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    for n in range(250):
        server.seed_github(7, MALLORY, f"comment {n}")
    forge = make_forge(server, session, tmp_path, clock)
    assert forge.upsert_comment(REPORT).created is True
    assert [r.query.get("page") for r in server.requests if r.method == "GET"] == [None, ["2"], ["3"]]
    assert server.comments_on(7)[-1].body == REPORT


def test_an_app_login_matches_its_bot_account(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    app = GitHubUser("memgate-app[bot]", 555, "Bot")
    server.github_users = {server.github_token: app}
    ours = server.seed_github(7, app, f"{MARKER}\nold")
    server.seed_github(7, ACTIONS_BOT, f"{MARKER}\nfrom the default token")
    env = github_env(server, tmp_path)
    env["MEMGATE_GITHUB_BOT_LOGIN"] = "memgate-app"
    forge = GitHubForge(GitHubContext.from_env(env), session, sleep=clock.sleep, clock=clock.time)
    assert forge.upsert_comment(REPORT).created is False
    assert ours.body == REPORT
    assert server.comments_on(7)[1].body == f"{MARKER}\nfrom the default token"


def test_fork_token_403_raises_comment_forbidden_with_the_fork_hint(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    server.github_fork = True
    forge = make_forge(server, session, tmp_path, clock, head_repo="contributor/memprog")
    with pytest.raises(CommentForbidden) as caught:
        forge.upsert_comment(REPORT)
    error = caught.value
    assert isinstance(error, ForgeError) and error.exit_code == ExitCode.TOOL
    assert error.status == 403
    assert error.message == (
        "GitHub: POST /api/v3/repos/octo-org/memprog/issues/7/comments: 403 Forbidden "
        "(Resource not accessible by integration)"
    )
    assert "fork" in error.hint and "workflow_run" in error.hint and "job summary" in error.hint
    assert clock.sleeps == []  # a plain 403 is final: no retry
    assert server.comments_on(7) == []


def test_same_repo_403_hint_is_about_permissions(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    server.github_fork = True  # the same answer GitHub gives a token without pull-requests: write
    forge = make_forge(server, session, tmp_path, clock)
    with pytest.raises(CommentForbidden) as caught:
        forge.upsert_comment(REPORT)
    assert "permissions: pull-requests: write" in caught.value.hint
    assert "fork" not in caught.value.hint


def test_a_too_long_body_is_cut_keeping_the_marker_and_a_pointer(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    rows = "".join(f"| suite{n} | {n} bytes |\n" for n in range(20_000))  # about 460,000 characters
    forge = make_forge(server, session, tmp_path, clock)
    forge.upsert_comment(REPORT + rows)

    (comment,) = server.comments_on(7)
    assert len(comment.body) <= COMMENT_LIMIT < 65_536
    assert comment.body.startswith(MARKER)
    assert comment.body.endswith(
        "**memgate: report truncated to fit the comment limit.** The full report: "
        "https://github.example.test/octo-org/memprog/actions/runs/123456\n"
    )
    kept_rows = comment.body.split("\n\n**memgate: report truncated")[0]
    assert (REPORT + rows).startswith(kept_rows) and kept_rows.endswith(" bytes |")


def test_the_fake_rejects_an_over_long_body_as_github_does(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    context = GitHubContext.from_env(github_env(server, tmp_path))
    forge = GitHubForge(context, session, sleep=clock.sleep, clock=clock.time, comment_limit=70_000)
    with pytest.raises(Rejected) as caught:
        forge.upsert_comment("x" * 69_000)
    assert caught.value.status == 422
    assert caught.value.message.endswith(
        "422 Unprocessable Entity (Validation Failed; Body is too long (maximum is 65536 characters))"
    )


def test_no_token_in_errors_reprs_logs_or_the_server_log(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = server.github_token
    forge = make_forge(server, session, tmp_path, clock)
    forge.upsert_comment(REPORT)
    server.script("GET", r".*/comments", 502, body={"message": f"echoing {token}"}, times=2)
    forge.upsert_comment(REPORT)
    errors: list[ForgeError] = []
    server.github_fork = True
    with pytest.raises(CommentForbidden) as forbidden:
        forge.upsert_comment(REPORT)
    errors.append(forbidden.value)
    server.script("GET", r".*/comments", 401, body={"message": f"Bad credentials {token}"})
    with pytest.raises(Unauthorized) as unauthorized:
        forge.upsert_comment(REPORT)
    errors.append(unauthorized.value)

    assert "echoing ***" in caplog.text  # the server echoed the token; the client blanked it
    assert "Bad credentials ***" in unauthorized.value.message
    texts = [caplog.text, repr(forge), repr(forge.context), repr(forge._http), str(server.requests)]
    for error in errors:
        texts += [str(error), repr(error), error.one_line(), error.hint]
    for text in texts:
        assert token not in text
    assert all(r.headers["Authorization"] == "Bearer <token>" for r in server.requests)


# -- job summary and step outputs ------------------------------------------------------------------


def test_step_summary_is_appended(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    assert append_step_summary(summary, "## memgate\nall good\n") is False
    assert summary.read_text() == "# earlier step\n## memgate\nall good\n"


def test_step_summary_stays_under_the_limit(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("x" * 1000 + "\n")
    rows = "".join(f"| site {n} | leak ✗ |\n" for n in range(100_000))  # about 2 MB, multibyte
    assert append_step_summary(summary, rows) is True
    data = summary.read_bytes()
    assert len(data) < 1_048_576
    text = data.decode("utf-8")  # cut on a character boundary
    assert text.endswith("the full report is in the job log and artifacts.**\n")
    assert text.split("\n\n**memgate: summary truncated")[0].endswith("leak ✗ |")


def test_step_summary_failure_is_a_forge_error(tmp_path: Path) -> None:
    with pytest.raises(ForgeError, match="cannot write the job summary") as caught:
        append_step_summary(tmp_path / "missing-dir" / "summary.md", "text")
    assert caught.value.path == str(tmp_path / "missing-dir" / "summary.md")


def test_outputs_single_and_multiline(tmp_path: Path) -> None:
    output = tmp_path / "output"
    set_output(output, "verdict", "fail")
    set_output(output, "report-json", '{"a": 1}\n{"b": 2}')
    lines = output.read_text().splitlines()
    assert lines[0] == "verdict=fail"
    name, delimiter = lines[1].split("<<")
    assert name == "report-json" and delimiter.startswith("ghadelimiter_") and len(delimiter) > 40
    assert lines[2:] == ['{"a": 1}', '{"b": 2}', delimiter]
    with pytest.raises(ValueError, match="invalid output name"):
        set_output(output, "bad\nname", "x")


def test_event_fixture_matches_what_the_runner_writes(tmp_path: Path) -> None:
    # The context reads only these keys; keep the fixture honest about their shape.
    event = json.loads(write_event(tmp_path / "e.json").read_text())
    assert set(event["pull_request"]) >= {"number", "base", "head"}
    assert set(event["pull_request"]["head"]) >= {"sha", "ref", "repo"}


# -- never two comments ----------------------------------------------------------------------------


def test_a_post_that_failed_after_creating_the_comment_is_not_repeated(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    # GitHub created the comment, then its gateway answered 502: posting again would leave two.
    server.script("POST", r".*/issues/7/comments", 502, body={"message": "Server Error"}, apply=True)
    forge = make_forge(server, session, tmp_path, clock)
    result = forge.upsert_comment(REPORT)

    (comment,) = server.comments_on(7)
    assert comment.body == REPORT
    assert result.created is True
    assert [(r.method, r.status) for r in server.requests] == [
        ("GET", 200), ("POST", 502), ("GET", 200), ("PATCH", 200),
    ]
    assert clock.sleeps == []


def test_a_post_that_failed_before_creating_is_sent_again(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    server.script("POST", r".*/issues/7/comments", 503, body={"message": "Service Unavailable"})
    forge = make_forge(server, session, tmp_path, clock)
    assert forge.upsert_comment(REPORT).created is True
    assert [c.body for c in server.comments_on(7)] == [REPORT]
    assert [(r.method, r.status) for r in server.requests] == [
        ("GET", 200), ("POST", 503), ("GET", 200), ("POST", 201),
    ]


def test_a_comment_hidden_by_a_maintainer_is_left_hidden(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    hidden = server.seed_github(7, ACTIONS_BOT, f"{MARKER}\nold report")
    hidden.minimized = "outdated"
    forge = make_forge(server, session, tmp_path, clock)
    assert forge.upsert_comment(REPORT).created is True
    assert forge.upsert_comment(REPORT).created is False
    assert [c.body for c in server.comments_on(7)] == [f"{MARKER}\nold report", REPORT]


def test_an_answer_of_the_wrong_shape_is_named(
    server: FakeForge, session: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    server.script("GET", r".*/issues/7/comments", 200, body=[{"id": "one", "html_url": "x"}])
    forge = make_forge(server, session, tmp_path, clock)
    with pytest.raises(ForgeError) as caught:
        forge.upsert_comment(REPORT)
    assert caught.value.message.startswith(
        "GitHub answered /api/v3/repos/octo-org/memprog/issues/7/comments?per_page=100 with a list of "
        "comments memgate cannot read (0.id: Input should be a valid integer"
    )
    assert server.writes() == []


def test_forge_from_env_takes_the_number_from_the_commenter(
    server: FakeForge, session: requests.Session, tmp_path: Path
) -> None:
    env = github_env(server, tmp_path)
    env.update(GITHUB_EVENT_NAME="workflow_run", GITHUB_REF="refs/heads/main")
    forge = forge_from_env(env, session, number=12)
    assert isinstance(forge, GitHubForge) and forge.context.pr_number == 12


def test_endless_pages_post_nothing(server: FakeForge, session: requests.Session, tmp_path: Path,
                                    clock: FakeClock) -> None:
    """Every page links a next one: memgate stops at its cap and posts no comment (which could be a
    second one, since the first may sit on a page it did not read)."""
    server.endless_pages = True
    with pytest.raises(ForgeError, match="goes on past 100 pages, memgate's cap"):
        make_forge(server, session, tmp_path, clock).upsert_comment(REPORT)
    assert len(server.requests) == 100
    assert server.writes() == []
