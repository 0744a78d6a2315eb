"""A local stand-in for GitHub's and GitLab's REST APIs, on a real socket (127.0.0.1, a free port).

It answers the comment/note endpoints memgate uses the way the forges do (status codes, error
bodies, pagination and rate-limit headers, as documented and as seen in GitHub's OpenAPI
description), keeps comments in memory, and logs every request with tokens blanked out so tests can
assert exactly what was sent. ``script()`` queues canned answers (429, 5xx, rate limits, delays, a
body sent a byte at a time) for the next matching requests; ``endless_pages`` makes every list page
link a next one, as a broken or hostile forge might.

GitHub routes live under ``/api/v3`` (as on GitHub Enterprise Server), GitLab's under ``/api/v4``,
so a client that drops the base URL's path is caught.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

GITHUB_PREFIX = "/api/v3"
GITLAB_PREFIX = "/api/v4"
GITHUB_BODY_LIMIT = 65_536
GITLAB_BODY_LIMIT = 1_000_000
GITHUB_DOCS = "https://docs.github.com/rest/issues/comments"
_EPOCH = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

Headers = dict[str, str]


@dataclass
class Logged:
    """One request as the server received it, and the status it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers  # every configured token value replaced by "<token>"
    body: Any  # parsed JSON, or the raw text when it is not JSON
    status: int = 0
    response_headers: Headers = field(default_factory=dict)


@dataclass
class Scripted:
    method: str
    path: re.Pattern[str]
    status: int
    headers: Headers
    body: Any
    delay: float
    drip: float
    times: int
    apply: bool
    header_drip: float = 0.0


@dataclass
class GitHubUser:
    login: str
    id: int
    type: str = "User"

    def json(self, base: str) -> dict[str, Any]:
        url = f"{base}/users/{self.login}"
        return {
            "login": self.login, "id": self.id, "node_id": f"MDQ6VXNlcj{self.id}",
            "avatar_url": f"https://avatars.example.test/u/{self.id}?v=4", "gravatar_id": "",
            "url": url, "html_url": f"https://github.example.test/{self.login}",
            "followers_url": f"{url}/followers", "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}", "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions", "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events", "type": self.type, "site_admin": False,
        }


ACTIONS_BOT = GitHubUser("github-actions[bot]", 41898282, "Bot")


@dataclass
class GitHubComment:
    id: int
    issue: int
    user: GitHubUser
    body: str
    created: datetime
    updated: datetime
    minimized: str | None = None  # the reason a maintainer hid it ("outdated", "low-quality"...)


@dataclass
class GitLabNote:
    id: int
    iid: int
    author: str
    body: str
    system: bool
    created: datetime
    updated: datetime


class FakeForge:
    """Both fake APIs on one server. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        *,
        github_token: str = "ghs_fakeGitHubToken0123456789abcdef",
        gitlab_token: str = "glpat-fakeGitLabToken0123456789",
        owner: str = "octo-org",
        repo: str = "memprog",
        repo_id: int = 1296269,
        gitlab_project_id: int = 42,
        gitlab_project_path: str = "group/memprog",
        gitlab_username: str = "project_42_bot_0f1e2d",
    ) -> None:
        self.github_token = github_token
        self.gitlab_token = gitlab_token
        self.owner, self.repo, self.repo_id = owner, repo, repo_id
        self.gitlab_project_id, self.gitlab_project_path = gitlab_project_id, gitlab_project_path
        #: GitHub login of each accepted token (the fake's GITHUB_TOKEN is the Actions bot).
        self.github_users: dict[str, GitHubUser] = {github_token: ACTIONS_BOT}
        #: GitLab username of each accepted PRIVATE-TOKEN.
        self.gitlab_users: dict[str, str] = {gitlab_token: gitlab_username}
        self.github_fork = False  # True: writes answer 403 like a fork PR's read-only GITHUB_TOKEN
        self.gitlab_read_only = False  # True: writes answer 403 like a Guest's token
        self.endless_pages = False  # True: every list page links a next one (Link, X-Next-Page)
        self.github_pulls: set[int] = {7}
        self.gitlab_mrs: set[int] = {5}
        self.github_comments: list[GitHubComment] = []
        self.gitlab_notes: list[GitLabNote] = []
        self.requests: list[Logged] = []
        self.errors: list[str] = []  # handler exceptions other than a client hanging up
        self._scripts: list[Scripted] = []
        self._next_id = 1_000_000
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.forge = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fakeforge", daemon=True
        )

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def github_api_url(self) -> str:
        return self.base_url + GITHUB_PREFIX

    @property
    def gitlab_api_url(self) -> str:
        return self.base_url + GITLAB_PREFIX

    def start(self) -> FakeForge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeForge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test set-up ---------------------------------------------------------------------------

    def seed_github(self, issue: int, author: GitHubUser, body: str) -> GitHubComment:
        with self._lock:
            self.github_pulls.add(issue)
            comment = GitHubComment(self._new_id(), issue, author, body, self._now(), self._now())
            self.github_comments.append(comment)
            return comment

    def seed_gitlab(self, iid: int, author: str, body: str, *, system: bool = False) -> GitLabNote:
        with self._lock:
            self.gitlab_mrs.add(iid)
            note = GitLabNote(self._new_id(), iid, author, body, system, self._now(), self._now())
            self.gitlab_notes.append(note)
            return note

    def script(
        self,
        method: str,
        path: str,
        status: int,
        *,
        headers: Headers | None = None,
        body: Any = None,
        delay: float = 0.0,
        drip: float = 0.0,
        times: int = 1,
        apply: bool = False,
        header_drip: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests whose path fully matches the regex ``path`` like this.

        ``apply=True`` carries the request out first (a comment gets created) and only then answers
        as scripted: a gateway error after the work was done. ``drip`` sends the body one byte every
        ``drip`` seconds after the headers: each read gets its byte in time, the body takes long.
        ``header_drip`` does the same with the status line and headers."""
        with self._lock:
            self._scripts.append(Scripted(method, re.compile(path), status, dict(headers or {}), body,
                                          delay, drip, times, apply, header_drip))

    def comments_on(self, issue: int) -> list[GitHubComment]:
        with self._lock:
            return [c for c in self.github_comments if c.issue == issue]

    def notes_on(self, iid: int) -> list[GitLabNote]:
        with self._lock:
            return [n for n in self.gitlab_notes if n.iid == iid]

    def writes(self) -> list[Logged]:
        return [r for r in self.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]

    # -- internals -----------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _now(self) -> datetime:
        return _EPOCH + timedelta(seconds=self._next_id - 1_000_000)

    def _redact(self, text: str) -> str:
        for token in (*self.github_users, *self.gitlab_users):
            text = text.replace(token, "<token>")
        return text

    def _take_script(self, method: str, path: str) -> Scripted | None:
        with self._lock:
            for script in self._scripts:
                if script.method == method and script.path.fullmatch(path):
                    script.times -= 1
                    if script.times == 0:
                        self._scripts.remove(script)
                    return script
        return None


@dataclass
class Answer:
    status: int
    body: Any  # JSON-serialisable, or str for a plain-text body, or None for no content
    headers: Headers = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0  # seconds between the body's bytes
    header_drip: float = 0.0  # seconds between the bytes of the status line and headers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs; every answer has Content-Length
    disable_nagle_algorithm = True  # headers and body go out in two writes; do not delay the second
    server_version = "fakeforge/1"

    @property
    def forge(self) -> FakeForge:
        forge: FakeForge = self.server.forge  # type: ignore[attr-defined]
        return forge

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # the request log is self.forge.requests

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        forge = self.forge
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        entry = Logged(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={name: forge._redact(value) for name, value in self.headers.items()},
            body=body,
        )
        with forge._lock:
            forge.requests.append(entry)
        script = forge._take_script(self.command, parts.path)
        if script is None or script.apply:
            try:
                answer = _route(forge, self.command, parts.path, entry.query, self.headers, body)
            except Exception as exc:  # a bug in the fake: make the test fail loudly
                forge.errors.append(f"{type(exc).__name__}: {exc}")
                answer = Answer(500, {"message": "fakeforge bug"})
        if script is not None:
            answer = Answer(script.status, script.body, dict(script.headers), script.delay, script.drip,
                            script.header_drip)
        entry.status = answer.status
        entry.response_headers = dict(answer.headers)
        self._send(answer)

    def _send(self, answer: Answer) -> None:
        if answer.delay:
            time.sleep(answer.delay)
        if answer.body is None:
            payload, content_type = b"", ""
        elif isinstance(answer.body, str):
            payload, content_type = answer.body.encode(), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(answer.body).encode(), "application/json; charset=utf-8"
        try:
            self.send_response(answer.status)
            if content_type:
                self.send_header("Content-Type", content_type)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if answer.header_drip:
                self._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]  # end_headers' work
                head, self._headers_buffer = b"".join(self._headers_buffer), []  # type: ignore[attr-defined]
                self._drip(head, answer.header_drip)
            else:
                self.end_headers()
            if answer.drip:
                self._drip(payload, answer.drip)
            else:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (timeout tests)

    def _drip(self, payload: bytes, interval: float) -> None:
        self.wfile.flush()
        for index in range(len(payload)):
            time.sleep(interval)
            self.wfile.write(payload[index : index + 1])


# -- routing -------------------------------------------------------------------------------------

_GH_LIST = re.compile(r"/api/v3/(?:repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)|repositories/(?P<rid>\d+))"
                      r"/issues/(?P<issue>\d+)/comments")
_GH_ONE = re.compile(r"/api/v3/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/comments/(?P<id>\d+)")
_GL_USER = re.compile(r"/api/v4/user")
_GL_NOTES = re.compile(r"/api/v4/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes")
_GL_NOTE = re.compile(r"/api/v4/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes/(?P<id>\d+)")


def _route(forge: FakeForge, method: str, path: str, query: dict[str, list[str]], headers: Any,
           body: Any) -> Answer:
    if path.startswith(GITHUB_PREFIX + "/"):
        return _github(forge, method, path, query, headers, body)
    if path.startswith(GITLAB_PREFIX + "/"):
        return _gitlab(forge, method, path, query, headers, body)
    return Answer(404, {"message": "Not Found"})


# -- GitHub --------------------------------------------------------------------------------------


def _github(forge: FakeForge, method: str, path: str, query: dict[str, list[str]], headers: Any,
            body: Any) -> Answer:
    auth = headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    user = forge.github_users.get(token) if scheme.lower() in ("bearer", "token") else None
    if user is None:
        return _gh_error(401, "Bad credentials", "https://docs.github.com/rest")
    if match := _GH_LIST.fullmatch(path):
        if not _gh_repo_matches(forge, match):
            return _gh_error(404, "Not Found", f"{GITHUB_DOCS}#list-issue-comments")
        issue = int(match["issue"])
        if issue not in forge.github_pulls:
            return _gh_error(404, "Not Found", f"{GITHUB_DOCS}#list-issue-comments")
        if method == "GET":
            return _gh_list(forge, issue, query)
        if method == "POST":
            return _gh_write(forge, user, body, issue=issue)
    elif match := _GH_ONE.fullmatch(path):
        if not _gh_repo_matches(forge, match):
            return _gh_error(404, "Not Found", f"{GITHUB_DOCS}#get-an-issue-comment")
        found = [c for c in forge.github_comments if c.id == int(match["id"])]
        if not found:
            return _gh_error(404, "Not Found", f"{GITHUB_DOCS}#update-an-issue-comment")
        if method == "GET":
            return Answer(200, _gh_comment_json(forge, found[0]), _gh_rate_headers(forge))
        if method == "PATCH":
            return _gh_write(forge, user, body, comment=found[0])
    else:
        return _gh_error(404, "Not Found", "https://docs.github.com/rest")
    return _gh_error(404, "Not Found", "https://docs.github.com/rest")


def _gh_repo_matches(forge: FakeForge, match: re.Match[str]) -> bool:
    if match.groupdict().get("rid"):
        return int(match["rid"]) == forge.repo_id
    return (match["owner"], match["repo"]) == (forge.owner, forge.repo)


def _gh_list(forge: FakeForge, issue: int, query: dict[str, list[str]]) -> Answer:
    per_page = min(int(_first(query, "per_page", "30")), 100)
    page = max(int(_first(query, "page", "1")), 1)
    comments = sorted(forge.comments_on(issue), key=lambda c: c.id)  # GitHub: ascending id
    last = max((len(comments) + per_page - 1) // per_page, 1)
    chunk = comments[(page - 1) * per_page : page * per_page]
    headers = _gh_rate_headers(forge)
    if last > 1 or forge.endless_pages:
        # GitHub's links use the repository's id, not owner/name.
        base = f"{forge.github_api_url}/repositories/{forge.repo_id}/issues/{issue}/comments"

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode({"per_page": per_page, "page": number})}>; rel="{rel}"'

        rels = []
        if page > 1:
            rels += [link(page - 1, "prev")]
        if page < last or forge.endless_pages:
            rels += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            rels += [link(1, "first")]
        headers["Link"] = ", ".join(rels)
    return Answer(200, [_gh_comment_json(forge, c) for c in chunk], headers)


def _gh_write(forge: FakeForge, user: GitHubUser, body: Any, *, issue: int | None = None,
              comment: GitHubComment | None = None) -> Answer:
    anchor = "create-an-issue-comment" if comment is None else "update-an-issue-comment"
    if forge.github_fork:
        return _gh_error(403, "Resource not accessible by integration", f"{GITHUB_DOCS}#{anchor}")
    if not isinstance(body, dict) or not isinstance(body.get("body"), str):
        return _gh_error(422, 'Invalid request.\n\n"body" wasn\'t supplied.', f"{GITHUB_DOCS}#{anchor}")
    text: str = body["body"]
    if len(text) > GITHUB_BODY_LIMIT:
        answer = _gh_error(422, "Validation Failed", f"{GITHUB_DOCS}#{anchor}")
        answer.body["errors"] = [{
            "resource": "IssueComment", "code": "custom", "field": "body",
            "message": f"Body is too long (maximum is {GITHUB_BODY_LIMIT} characters)",
        }]
        return answer
    with forge._lock:
        if comment is None:
            assert issue is not None
            created = forge.seed_github(issue, user, text)
            headers = _gh_rate_headers(forge)
            api = f"{forge.github_api_url}/repos/{forge.owner}/{forge.repo}"
            headers["Location"] = f"{api}/issues/comments/{created.id}"
            return Answer(201, _gh_comment_json(forge, created), headers)
        comment.body = text
        comment.updated = forge._now()
        return Answer(200, _gh_comment_json(forge, comment), _gh_rate_headers(forge))


def _gh_comment_json(forge: FakeForge, comment: GitHubComment) -> dict[str, Any]:
    api = f"{forge.github_api_url}/repos/{forge.owner}/{forge.repo}"
    html = f"https://github.example.test/{forge.owner}/{forge.repo}"
    return {
        "id": comment.id,
        "node_id": f"IC_kwDOAAAB{comment.id}",
        "url": f"{api}/issues/comments/{comment.id}",
        "html_url": f"{html}/pull/{comment.issue}#issuecomment-{comment.id}",
        "issue_url": f"{api}/issues/{comment.issue}",
        "body": comment.body,
        "user": comment.user.json(forge.github_api_url),
        "created_at": _iso(comment.created),
        "updated_at": _iso(comment.updated),
        "author_association": "NONE" if comment.user.type == "Bot" else "CONTRIBUTOR",
        "performed_via_github_app": None,
        "minimized": {"reason": comment.minimized} if comment.minimized else None,
        "reactions": {
            "url": f"{api}/issues/comments/{comment.id}/reactions", "total_count": 0, "+1": 0, "-1": 0,
            "laugh": 0, "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
        },
    }


def _gh_rate_headers(forge: FakeForge) -> Headers:
    used = len(forge.requests)
    return {
        "x-ratelimit-limit": "1000", "x-ratelimit-remaining": str(max(1000 - used, 0)),
        "x-ratelimit-used": str(used), "x-ratelimit-reset": str(int(time.time()) + 3600),
        "x-ratelimit-resource": "core", "X-GitHub-Media-Type": "github.v3; format=json",
    }


def _gh_error(status: int, message: str, docs: str) -> Answer:
    return Answer(status, {"message": message, "documentation_url": docs, "status": str(status)})


# -- GitLab --------------------------------------------------------------------------------------


def _gitlab(forge: FakeForge, method: str, path: str, query: dict[str, list[str]], headers: Any,
            body: Any) -> Answer:
    token = headers.get("PRIVATE-TOKEN") or ""
    if not token and headers.get("Authorization", "").lower().startswith("bearer "):
        token = headers["Authorization"][7:]
    username = forge.gitlab_users.get(token)
    if username is None:
        return Answer(401, {"message": "401 Unauthorized"})
    if _GL_USER.fullmatch(path) and method == "GET":
        return Answer(200, _gl_user_json(forge, username), _gl_rate_headers())
    match = _GL_NOTE.fullmatch(path) or _GL_NOTES.fullmatch(path)
    if match is None:
        return Answer(404, {"error": "404 Not Found"})
    project = unquote(match["project"])
    if project not in (str(forge.gitlab_project_id), forge.gitlab_project_path):
        return Answer(404, {"message": "404 Project Not Found"})
    iid = int(match["iid"])
    if iid not in forge.gitlab_mrs:
        return Answer(404, {"message": "404 Merge Request Not Found"})
    if match.re is _GL_NOTES and method == "GET":
        return _gl_list(forge, iid, query)
    if match.re is _GL_NOTES and method == "POST":
        return _gl_write(forge, username, body, iid=iid)
    if match.re is _GL_NOTE:
        found = [n for n in forge.notes_on(iid) if n.id == int(match["id"])]
        if not found:
            return Answer(404, {"message": "404 Note Not Found"})
        if method == "GET":
            return Answer(200, _gl_note_json(forge, found[0]), _gl_rate_headers())
        if method == "PUT":
            return _gl_write(forge, username, body, note=found[0])
    return Answer(405, {"error": "405 Method Not Allowed"})


def _gl_list(forge: FakeForge, iid: int, query: dict[str, list[str]]) -> Answer:
    per_page = min(int(_first(query, "per_page", "20")), 100)
    page = max(int(_first(query, "page", "1")), 1)
    by_update = _first(query, "order_by", "created_at") == "updated_at"
    # GitLab's default order is newest first.
    notes = sorted(forge.notes_on(iid), key=lambda n: (n.updated if by_update else n.created, n.id),
                   reverse=_first(query, "sort", "desc") != "asc")
    total_pages = max((len(notes) + per_page - 1) // per_page, 1)
    chunk = notes[(page - 1) * per_page : page * per_page]
    base = f"{forge.gitlab_api_url}/projects/{forge.gitlab_project_id}/merge_requests/{iid}/notes"
    kept = {k: v[0] for k, v in query.items() if k != "page"}

    def link(number: int, rel: str) -> str:
        return f'<{base}?{urlencode({**kept, "page": number})}>; rel="{rel}"'

    more = page < total_pages or forge.endless_pages
    rels = [link(page + 1, "next")] if more else []
    rels += [link(page - 1, "prev")] if page > 1 else []
    rels += [link(1, "first"), link(total_pages, "last")]
    headers = {
        **_gl_rate_headers(),
        "X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(notes)),
        "X-Total-Pages": str(total_pages),
        "X-Next-Page": str(page + 1) if more else "",
        "X-Prev-Page": str(page - 1) if page > 1 else "",
        "Link": ", ".join(rels),
    }
    return Answer(200, [_gl_note_json(forge, n) for n in chunk], headers)


def _gl_write(forge: FakeForge, username: str, body: Any, *, iid: int | None = None,
              note: GitLabNote | None = None) -> Answer:
    if forge.gitlab_read_only:
        return Answer(403, {"message": "403 Forbidden"})
    if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"]:
        return Answer(400, {"error": "body is missing"})
    text: str = body["body"]
    if len(text) > GITLAB_BODY_LIMIT:
        complaint = f"is too long (maximum is {GITLAB_BODY_LIMIT} characters)"
        return Answer(400, {"message": {"note": [complaint]}})
    with forge._lock:
        if note is None:
            assert iid is not None
            created = forge.seed_gitlab(iid, username, text)
            return Answer(201, _gl_note_json(forge, created), _gl_rate_headers())
        if note.author != username:
            return Answer(403, {"message": "403 Forbidden"})
        note.body = text
        note.updated = forge._now()
        return Answer(200, _gl_note_json(forge, note), _gl_rate_headers())


def _gl_user_json(forge: FakeForge, username: str) -> dict[str, Any]:
    return {
        "id": 9001, "username": username, "name": "memgate bot", "state": "active", "locked": False,
        "avatar_url": None, "web_url": f"https://gitlab.example.test/{username}", "bot": True,
    }


def _gl_note_json(forge: FakeForge, note: GitLabNote) -> dict[str, Any]:
    return {
        "id": note.id, "type": None, "body": note.body, "attachment": None,
        "author": {
            "id": abs(hash(note.author)) % 100_000, "username": note.author, "name": note.author,
            "state": "active", "locked": False, "avatar_url": None,
            "web_url": f"https://gitlab.example.test/{note.author}",
        },
        "created_at": _iso(note.created), "updated_at": _iso(note.updated), "system": note.system,
        "noteable_id": 77, "noteable_type": "MergeRequest", "project_id": forge.gitlab_project_id,
        "resolvable": False, "confidential": False, "internal": False, "noteable_iid": note.iid,
        "commands_changes": {},
    }


def _gl_rate_headers() -> Headers:
    return {
        "RateLimit-Name": "throttle_authenticated_api", "RateLimit-Limit": "2000",
        "RateLimit-Observed": "3", "RateLimit-Remaining": "1997",
        "RateLimit-Reset": str(int(time.time()) + 60),
    }


def _first(query: dict[str, list[str]], name: str, default: str) -> str:
    return query.get(name, [default])[0]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


