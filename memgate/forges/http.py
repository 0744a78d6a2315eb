"""A thin REST client over an injected ``requests.Session``: one time budget, bounded retries,
bounded pagination, and messages that carry no token and no raw forge text.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

import pydantic
import requests
import urllib3.exceptions

from memgate.errors import escaped, redacted
from memgate.forges.base import (
    Forbidden,
    ForgeRequestError,
    ForgeUnavailable,
    NotFound,
    OutOfTime,
    RateLimited,
    Rejected,
    Unauthorized,
)

log = logging.getLogger(__name__)

Json = object  # parsed JSON; each forge module validates the shape it needs
Pagination = Literal["link", "x-next-page"]
T = TypeVar("T")

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_MAX_ERROR_TEXT = 300
#: The most pages of one list memgate reads: 100 pages of 100 comments, far more than a pull request
#: holds, while a forge whose every page links a next one costs 100 requests, not thousands.
MAX_PAGES = 100
#: The largest answer memgate reads: a page of 100 comments at GitHub's 65,536-character limit is at
#: most ~40 MB of JSON (6 bytes a character, escaped); a forge sending more (or a gzip bomb) is cut
#: off, not held in memory.
MAX_BODY_BYTES = 64 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024
#: A timeout this close to the deadline is the deadline's, not the forge's per-read one.
_DEADLINE_SLACK = 0.05


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``max_total_wait`` is the client's whole budget, from its creation: every
    connect, every read (a forge sending its headers or body a byte at a time included), every retry
    and rate limit sleep, every page. Past it a request raises ``OutOfTime``, so a slow or hostile
    forge never holds the CI job."""

    max_attempts: int = 5
    backoff_seconds: float = 1.0  # doubled after each failed attempt
    backoff_max_seconds: float = 60.0
    max_total_wait: float = 300.0
    #: GitHub: a secondary rate limit without retry-after means "wait at least one minute".
    secondary_limit_wait: float = 60.0


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 30.0


class HttpClient:
    """Requests to one API (``base_url``) with the token headers added to each request.

    Why not ``urllib3.Retry``: memgate must honour GitHub's and GitLab's own rate-limit headers, cap
    the total time so a CI job never waits for an hour, tell secondary rate limits from real 403s,
    and keep tokens out of every message. Sleep and clock are injectable, so tests run against a
    real local server without waiting.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        *,
        service: str,
        auth_headers: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.service = service
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self._session = session
        self._auth_headers = dict(auth_headers)
        self._headers = dict(headers or {})
        # The header value and the token inside it ("Bearer <token>"): never let either out.
        self._secrets = tuple(
            {part for value in auth_headers.values() for part in (value, *value.split()[-1:]) if part}
        )
        self._sleep = sleep
        self._clock = clock
        self._max_body_bytes = max_body_bytes
        self._origin = _origin(self.base_url)
        # Real time, whatever ``clock`` says: the budget is the CI job's wall time.
        self._deadline = time.monotonic() + self.retry.max_total_wait

    def __repr__(self) -> str:
        return f"HttpClient(service={self.service!r}, base_url={self.base_url!r})"

    def url(self, path: str) -> str:
        """``path`` relative to the base URL (which may carry a prefix such as ``/api/v3``)."""
        return urljoin(self.base_url, path.lstrip("/"))

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Json | None = None,
        repeatable: bool | None = None,
    ) -> requests.Response:
        """Send one request, retrying what is worth retrying; raise a ``ForgeRequestError`` otherwise.

        Rate-limit answers are always retried (the forge did nothing). A 5xx or a read timeout may
        come after the forge applied the request, so those are retried only when ``repeatable``:
        by default for idempotent methods, not for POST (the caller looks before posting again).
        """
        if repeatable is None:
            repeatable = method in _IDEMPOTENT
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        self._check_origin(url)
        waited = 0.0
        attempt = 1
        while True:
            outcome = self._send(method, url, params, json)
            if isinstance(outcome, requests.Response) and outcome.status_code < 400:
                return outcome
            wait = self._retry_wait(method, url, outcome, attempt, repeatable)
            if waited + wait > self.retry.max_total_wait or wait > self._time_left():
                raise self._too_long(method, url, outcome, wait, waited)
            log.warning(
                "%s: %s %s: %s; retrying in %.0f s (attempt %d of %d)",
                self.service, method, self._path(url), self._describe(outcome), wait,
                attempt + 1, self.retry.max_attempts,
            )
            self._sleep(wait)
            waited += wait
            attempt += 1

    def get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Json:
        return self.json_of(self.request("GET", path, params=params))

    def json_of(self, response: requests.Response) -> Json:
        try:
            value: Json = response.json()
        except RecursionError:
            raise ForgeRequestError(
                f"{self.service} answered {self._path(response.url)} with JSON nested too deeply to read",
                status=response.status_code,
                hint="check that the API URL points at the forge's REST API",
            ) from None
        except ValueError:
            raise ForgeRequestError(
                f"{self.service} answered {self._path(response.url)} with something that is not JSON",
                status=response.status_code,
                hint="check that the API URL points at the forge's REST API",
            ) from None
        return value

    def parse(self, response: requests.Response, adapter: pydantic.TypeAdapter[T], what: str) -> T:
        """The response's JSON as ``adapter``'s type; a clear error when the shape is not the API's."""
        try:
            return adapter.validate_json(response.content)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            where = self._outside(".".join(str(part) for part in error["loc"]) or "(top)")
            raise ForgeRequestError(
                f"{self.service} answered {self._path(response.url)} with {what} memgate cannot read "
                f"({where}: {self._outside(error['msg'])})",
                status=response.status_code,
                hint="check that the API URL points at the forge's REST API",
            ) from None

    def pages(
        self, path: str, params: Mapping[str, str | int], style: Pagination, *, max_pages: int = MAX_PAGES
    ) -> Iterator[requests.Response]:
        """Every page of a list, at most ``max_pages``: follow ``Link: rel="next"`` (GitHub) or
        ``X-Next-Page`` (GitLab). A ``next`` link to another origin than the API's is refused by
        ``request``, before anything is sent."""
        response = self.request("GET", path, params=params)
        seen = {response.url}
        yield response
        for _ in range(max_pages - 1):
            if style == "link":
                next_url = response.links.get("next", {}).get("url")
                if not next_url:
                    return
                response = self.request("GET", next_url)
            else:
                next_page = response.headers.get("X-Next-Page", "").strip()
                if not next_page:
                    return
                response = self.request("GET", path, params={**params, "page": next_page})
            if response.url in seen:
                raise ForgeRequestError(
                    f"{self.service} pagination loops back to {self._path(response.url)}",
                    hint="report this to the memgate maintainers with the forge's version",
                )
            seen.add(response.url)
            yield response
        if _has_next(response, style):
            raise ForgeRequestError(
                f"{self.service} list at {self._path(self.url(path))} goes on past {max_pages} pages, "
                f"memgate's cap (MAX_PAGES): it stopped reading there",
                hint="a list this long is most likely a forge answering wrongly; report it with the "
                "forge's version if the list really is that long",
            )

    # -- sending -------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        json: Json | None,
    ) -> requests.Response | requests.RequestException:
        """One attempt, body read included; a transport failure is returned for ``request`` to judge.

        Tokens travel only in headers this client adds per request: they never enter URLs, and a
        request to another origin than the base URL (a redirect, a ``Link`` header) is refused
        rather than sent with the token."""
        headers = {**self._headers, **self._auth_headers}
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                response = self._within_budget(method, url, functools.partial(
                    self._session.request, method, url, params=params, json=json, headers=headers,
                    timeout=self._timeouts_left(method, url), allow_redirects=False, stream=True,
                ))
                log.debug("%s: %s %s -> %d", self.service, method, self._path(response.url),
                          response.status_code)
                location = response.headers.get("Location")
                if response.status_code not in _REDIRECTS or not location:
                    self._read_body(response, method, url)
                    return response
                # Follow by hand: requests would carry PRIVATE-TOKEN to whatever host a redirect names.
                url, params = urljoin(response.url, location), None
                response.close()
                self._check_origin(url)
            raise ForgeRequestError(f"{self.service}: {method} {self._path(url)}: too many redirects")
        except requests.RequestException as exc:
            if isinstance(exc, requests.Timeout) and self._time_left() <= _DEADLINE_SLACK:
                raise self._out_of_time(method, url) from None
            return exc

    def _within_budget(self, method: str, url: str,
                       send: Callable[[], requests.Response]) -> requests.Response:
        """``send()`` (connect, send, read the status line and headers), given the time the budget
        leaves and not a moment more. requests' timeouts bound each read of the socket, not the
        headers: a forge sending them a byte at a time would hold the job. So ``send`` runs in a
        thread of its own, left behind when the budget is spent (a daemon: it never delays the exit,
        and every later request of this client finds the budget spent before sending anything)."""
        outcome: list[requests.Response | BaseException] = []

        def run() -> None:
            try:
                outcome.append(send())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, raised there
                outcome.append(exc)

        worker = threading.Thread(target=run, name="memgate-forge-request", daemon=True)
        worker.start()
        worker.join(max(self._time_left(), 0.0))
        if not outcome:
            raise self._out_of_time(method, url)
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    def _time_left(self) -> float:
        return self._deadline - time.monotonic()

    def _timeouts_left(self, method: str, url: str) -> tuple[float, float]:
        """The connect and read timeouts, shrunk to the time the budget leaves."""
        left = self._time_left()
        if left <= _DEADLINE_SLACK:
            raise self._out_of_time(method, url)
        return min(self.timeouts.connect, left), min(self.timeouts.read, left)

    def _read_body(self, response: requests.Response, method: str, url: str) -> None:
        """Read the streamed body into ``response`` within the budget and the size cap.

        requests' read timeout bounds each read, not the body: a forge sending a byte every few
        seconds would hold the job forever. So the body is read in chunks of what has arrived
        (``read1``), each with the socket's timeout shrunk to the time left."""
        raw = response.raw
        read = getattr(raw, "read1", raw.read)  # read1: urllib3 2.3 and later
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                _set_read_timeout(raw, self._timeouts_left(method, url)[1])
                chunk: bytes = read(_CHUNK_BYTES, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > self._max_body_bytes:
                    raise ForgeRequestError(
                        f"{self.service}: {method} {self._path(url)}: the answer is larger than "
                        f"{self._max_body_bytes:,} bytes, more than memgate reads",
                        hint="check that the API URL points at the forge's REST API",
                    )
                chunks.append(chunk)
        except ForgeRequestError:
            response.close()
            raise
        except urllib3.exceptions.HTTPError as exc:
            response.close()
            raise _as_requests_error(exc) from None
        response._content = b"".join(chunks)
        raw.release_conn()  # read to the end: the connection may serve the next request

    def _check_origin(self, url: str) -> None:
        if _origin(url) != self._origin:
            raise ForgeRequestError(
                f"{self.service} pointed memgate at {self._outside(_origin(url))}, not the API at "
                f"{self._outside(self._origin)}; refusing to send the token there",
                hint="check the API URL variable (GITHUB_API_URL / CI_API_V4_URL)",
            )

    # -- retry decisions -----------------------------------------------------------------------

    def _retry_wait(
        self,
        method: str,
        url: str,
        outcome: requests.Response | requests.RequestException,
        attempt: int,
        repeatable: bool,
    ) -> float:
        """Seconds to wait before the next attempt; raises when the outcome is final."""
        wait = self._wait_if_retryable(outcome, attempt, repeatable)
        if wait is None:
            raise self._final(method, url, outcome, exhausted=False)
        if attempt >= self.retry.max_attempts:
            raise self._final(method, url, outcome, exhausted=True)
        return wait

    def _wait_if_retryable(
        self, outcome: requests.Response | requests.RequestException, attempt: int, repeatable: bool
    ) -> float | None:
        backoff = min(self.retry.backoff_seconds * 2.0 ** (attempt - 1), self.retry.backoff_max_seconds)
        if isinstance(outcome, requests.RequestException):
            if not isinstance(outcome, _TRANSIENT):
                return None
            if isinstance(outcome, requests.ReadTimeout) and not repeatable:
                return None  # the request may have been applied: do not apply it twice
            return backoff
        rate_limit_wait = self._rate_limit_wait(outcome)
        if rate_limit_wait is not None:
            return max(rate_limit_wait, backoff if attempt > 1 else 0.0)
        if outcome.status_code >= 500 and repeatable:
            return backoff
        return None

    def _rate_limit_wait(self, response: requests.Response) -> float | None:
        """The wait a 403/429 rate-limit answer asks for, or None when it is not a rate limit."""
        if response.status_code not in (403, 429):
            return None
        headers = response.headers
        now = self._clock()
        retry_after = _retry_after(headers.get("Retry-After"), now)
        if retry_after is not None:
            return retry_after
        if headers.get("x-ratelimit-remaining") == "0":
            reset = _number(headers.get("x-ratelimit-reset"))  # GitHub: UTC epoch seconds
            if reset is not None:
                return max(reset - now, 0.0) + 1.0
        if headers.get("RateLimit-Remaining") == "0" or response.status_code == 429:
            reset = _number(headers.get("RateLimit-Reset"))  # GitLab: Unix time, not a delta
            if reset is not None:
                return max(reset - now, 0.0) + 1.0
        if response.status_code == 429 or _says_rate_limit(response):
            return self.retry.secondary_limit_wait
        return None

    # -- errors --------------------------------------------------------------------------------

    def _describe(self, outcome: requests.Response | requests.RequestException) -> str:
        if isinstance(outcome, requests.ConnectTimeout):
            return f"could not connect within {self.timeouts.connect:g} s"
        if isinstance(outcome, requests.Timeout):
            return f"no answer within {self.timeouts.read:g} s"
        if isinstance(outcome, requests.ConnectionError):
            return "connection failed"
        if isinstance(outcome, requests.RequestException):
            return f"request failed ({type(outcome).__name__})"
        text = self._outside(f"{outcome.status_code} {outcome.reason or ''}".strip())
        detail = self._outside(_error_detail(outcome), limit=_MAX_ERROR_TEXT)
        return f"{text} ({detail})" if detail else text

    def _outside(self, text: str, *, limit: int | None = None) -> str:
        """Text from outside (a forge's answer, a URL it named) as a message may quote it: tokens
        redacted first, then cut to ``limit`` (a cut through a token would leave a prefix no
        redaction finds), control characters and line breaks escaped."""
        return escaped(redacted(text, self._secrets)[:limit])

    def _path(self, url: str) -> str:
        """The URL's path and query for messages: never its host or user info."""
        parts = urlsplit(url)
        return self._outside(parts.path + (f"?{parts.query}" if parts.query else ""))

    def _out_of_time(self, method: str, url: str) -> OutOfTime:
        return OutOfTime(
            f"{self.service}: {method} {self._path(url)}: no complete answer within the "
            f"{self.retry.max_total_wait:g} s memgate gives the forge",
            hint="the forge answers too slowly; re-run later, or raise MEMGATE_FORGE_MAX_WAIT",
        )

    def _final(
        self,
        method: str,
        url: str,
        outcome: requests.Response | requests.RequestException,
        *,
        exhausted: bool,
    ) -> ForgeRequestError:
        what = f"{self.service}: {method} {self._path(url)}: {self._describe(outcome)}"
        tries = f" after {self.retry.max_attempts} attempts" if exhausted else ""
        if isinstance(outcome, requests.RequestException):
            return ForgeUnavailable(
                f"{what}{tries}", hint=f"check that {self._outside(self._origin)} is reachable from this job"
            )
        status = outcome.status_code
        if status == 401:
            return Unauthorized(what, status=status, hint="the token is wrong, expired or revoked")
        if status == 404:
            hint = "check the repository/project and number, and that the token can see it"
            return NotFound(what, status=status, hint=hint)
        if status in (400, 422):
            return Rejected(what, status=status)
        if self._rate_limit_wait(outcome) is not None:
            hint = "the API rate limit is spent; re-run later"
            return RateLimited(f"{what}{tries}", status=status, hint=hint)
        if status == 403:
            return Forbidden(what, status=status, hint="the token lacks the permission this needs")
        if status >= 500:
            hint = f"{self.service} has trouble; re-run later"
            return ForgeUnavailable(f"{what}{tries}", status=status, hint=hint)
        return ForgeRequestError(what, status=status)

    def _too_long(
        self,
        method: str,
        url: str,
        outcome: requests.Response | requests.RequestException,
        wait: float,
        waited: float,
    ) -> RateLimited:
        return RateLimited(
            f"{self.service}: {method} {self._path(url)}: {self._describe(outcome)}; it asks to wait "
            f"{wait:.0f} s more ({waited:.0f} s waited already), over memgate's cap of "
            f"{self.retry.max_total_wait:.0f} s",
            status=outcome.status_code if isinstance(outcome, requests.Response) else None,
            hint=f"re-run the job after {_utc(self._clock() + wait)}, when the rate limit resets",
        )


def _utc(epoch: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _has_next(response: requests.Response, style: Pagination) -> bool:
    if style == "link":
        return bool(response.links.get("next", {}).get("url"))
    return bool(response.headers.get("X-Next-Page", "").strip())


def _set_read_timeout(raw: object, seconds: float) -> None:
    """Shrink the timeout of the socket a streamed body is read from (kept when unreachable)."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if isinstance(sock, socket.socket):
        sock.settimeout(seconds)


def _as_requests_error(error: urllib3.exceptions.HTTPError) -> requests.RequestException:
    """What requests raises for a body read failure, so that retries treat it alike."""
    if isinstance(error, urllib3.exceptions.ReadTimeoutError):
        return requests.ReadTimeout(error)
    if isinstance(error, urllib3.exceptions.DecodeError):
        return requests.exceptions.ContentDecodingError(error)
    if isinstance(error, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(error)
    return requests.exceptions.ChunkedEncodingError(error)


def _number(value: str | None) -> float | None:
    """A header's number, or None: also for "nan" and "inf" (or thousands of digits), which float()
    takes and no wait can be (time.sleep() refuses NaN)."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds to wait: either a number of seconds or an HTTP date."""
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)


def _says_rate_limit(response: requests.Response) -> bool:
    """GitHub's secondary rate limit may come as a bare 403 whose message names it."""
    return "rate limit" in _error_detail(response).lower()


def _error_detail(response: requests.Response) -> str:
    """The forge's own error message, whole (redact, then cut it): GitHub ``message`` (+ ``errors``),
    GitLab ``message``."""
    try:
        data = response.json()
    except RecursionError:
        return _TOO_DEEP
    except ValueError:
        return response.text.strip()
    if not isinstance(data, dict):
        return ""
    parts = [_flatten(data.get("message", data.get("error", "")))]
    errors = data.get("errors")
    if isinstance(errors, list):
        for error in errors:
            if isinstance(error, dict):
                parts.append(_flatten(error.get("message", error.get("code", ""))))
    return "; ".join(part for part in parts if part)


_TOO_DEEP = "an answer of JSON nested too deeply to read"
#: GitLab nests a ``message`` two levels deep; deeper is hostile, and must not exhaust the stack.
_MAX_MESSAGE_DEPTH = 8


def _flatten(value: object, depth: int = 0) -> str:
    """GitLab's ``message`` may be a dict of field -> list of complaints."""
    if isinstance(value, (dict, list)) and depth >= _MAX_MESSAGE_DEPTH:
        return _TOO_DEEP
    if isinstance(value, dict):
        return "; ".join(f"{key} {_flatten(item, depth + 1)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(_flatten(item, depth + 1) for item in value)
    return str(value).strip()


class _Identified(Protocol):
    id: int


def upsert(
    http: HttpClient,
    path: str,
    text: str,
    *,
    find: Callable[[], _Identified | None],
    update: Callable[[int, str], requests.Response],
) -> tuple[requests.Response, bool]:
    """Update our comment when ``find`` finds it, else create it at ``path`` (``create_once``); the
    answer, and whether the comment was created."""
    existing = find()
    if existing is not None:
        return update(existing.id, text), False
    return create_once(http, path, text, find=find, update=update), True


def create_once(
    http: HttpClient,
    path: str,
    text: str,
    *,
    find: Callable[[], _Identified | None],
    update: Callable[[int, str], requests.Response],
) -> requests.Response:
    """POST a new comment, without ever leaving two: when the POST fails in a way that may have
    created it anyway (5xx, no answer), look for it again and update it, or post once more."""
    try:
        return http.request("POST", path, json={"body": text})
    except ForgeUnavailable:
        log.warning("%s: posting the comment failed; checking whether it was created anyway", http.service)
    existing = find()
    if existing is not None:
        return update(existing.id, text)
    return http.request("POST", path, json={"body": text}, repeatable=True)
