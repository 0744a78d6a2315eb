"""``memgate comment``: post or update the memgate comment from a Markdown file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memgate.errors import ExitCode


@dataclass(frozen=True)
class CommentOptions:
    markdown: Path  # written by ``memgate check --markdown``, perhaps by an untrusted fork's run
    number: int | None = None  # the pull/merge request; None: from the CI environment


@dataclass(frozen=True)
class CommentResult:
    exit_code: int
    url: str | None  # None: not posted (a warning said why)


def comment(options: CommentOptions) -> CommentResult:
    from memgate import publish

    url = publish.post_comment(publish.comment_body_from_file(options.markdown), number=options.number)
    return CommentResult(int(ExitCode.PASS if url else ExitCode.TOOL), url)
