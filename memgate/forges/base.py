"""What every forge (GitHub, GitLab) offers memgate, the errors it raises, and the body cut they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from memgate.errors import ExitCode, MemgateError
from memgate.units import MAX_COUNT_DIGITS

#: Hidden in the rendered Markdown; how memgate recognises its own comment among all others.
MARKER = "<!-- memgate:report -->"


@dataclass(frozen=True)
class CommentResult:
    url: str
    created: bool  # False when an existing memgate comment was updated


# A forge posts one sticky report comment per pull/merge request: found again by a hidden marker AND our own
# author, updated in place. Failing to comment must never change the gate's verdict: the CLI catches
# ``ForgeError`` and prints ``one_line()`` as a warning.
class Forge(Protocol):
    def upsert_comment(self, body: str) -> CommentResult:
        """Create memgate's comment on the pull/merge request, or update the one posted before."""
        ...


class ForgeError(MemgateError):
    """A comment could not be posted. A warning for the CLI, never a change of verdict."""

    exit_code = ExitCode.TOOL


class ForgeConfigError(ForgeError):
    """The CI environment lacks what commenting needs (a variable, the event file, a token)."""


def request_number(text: str) -> int | None:
    """A pull/merge request number as CI variables write it (ASCII digits, no more than a count has:
    ``int()`` also takes other digits, and fails on thousands of them), else None."""
    if text.isascii() and text.isdecimal() and len(text) <= MAX_COUNT_DIGITS:
        return int(text)
    return None


class ForgeRequestError(ForgeError):
    """The forge answered with an error, or could not be reached."""

    def __init__(
        self, message: str, *, status: int | None = None, hint: str = "", path: str | None = None
    ) -> None:
        super().__init__(message, hint=hint, path=path)
        self.status = status


class Unauthorized(ForgeRequestError):
    """401: the token is wrong, expired or revoked."""


class Forbidden(ForgeRequestError):
    """403 that is not a rate limit: the token may not do this."""


class CommentForbidden(Forbidden):
    """403 on writing the comment: typically a fork's read-only token."""


class NotFound(ForgeRequestError):
    """404: wrong repository/project, pull/merge request, or a token that cannot see it."""


class Rejected(ForgeRequestError):
    """400/422: the forge refused the request's content (for example a body that is too long)."""


class RateLimited(ForgeRequestError):
    """The forge asked to wait longer than memgate may, or kept refusing after every retry."""


class ForgeUnavailable(ForgeRequestError):
    """Network failure, timeout or 5xx after every retry."""


class OutOfTime(ForgeRequestError):
    """The comment step's time budget (``MEMGATE_FORGE_MAX_WAIT``) ran out: a slow forge, a body sent
    a byte at a time. Never retried, and not a sign that a POST failed (so no look-again either)."""


def cut_body(body: str, limit: int, full_report: str | None) -> str:
    """``body`` with the marker, at most ``limit`` characters, ending with a pointer when it was cut.

    The cut falls on a line boundary and closes a Markdown code fence left open, so the table stays
    readable; the pointer says where the full report is (job summary, artifact).
    """
    if MARKER not in body:
        body = f"{MARKER}\n{body}"
    if len(body) <= limit:
        return body
    where = f" The full report: {full_report}" if full_report else " The full report is in the job log."
    note = f"\n\n**memgate: report truncated to fit the comment limit.**{where}\n"
    budget = limit - len(note) - len(_FENCE_CLOSE)
    if budget < len(MARKER) + 1:
        raise ValueError(f"comment limit {limit} too small for the marker and the truncation note")
    if MARKER not in body[:budget]:  # the marker sits below the cut: move it to the top
        body = f"{MARKER}\n{body.replace(MARKER, '', 1)}"
    kept = body[:budget]
    marker_end = kept.index(MARKER) + len(MARKER)
    newline = kept.rfind("\n")
    if newline >= marker_end:
        kept = kept[:newline]
    if kept.count("```") % 2 == 1:
        kept += _FENCE_CLOSE
    return kept + note


_FENCE_CLOSE = "\n```"
