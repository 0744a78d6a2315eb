"""Where a comparison goes besides the terminal: the one PR/MR comment, GitHub's job
summary, step outputs and annotations; none of them changes the verdict (a failure is a warning)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from memgate.comparison import Comparison
from memgate.errors import MemgateError, UsageError
from memgate.forges import ci
from memgate.thresholds import Verdict

#: GitHub shows at most 10 error annotations per step; the rest are in the summary.
MAX_ANNOTATIONS = 10


def warn(message: str) -> None:
    print(f"memgate: warning: {message}", file=sys.stderr)


def post_comment(markdown: str, *, number: int | None = None) -> str | None:
    """Post or update the memgate comment; the comment's URL, or None (with a warning) on failure.

    The whole step, every request and wait, ends within MEMGATE_FORGE_MAX_WAIT (the forge client's
    budget); the URL the forge answers is printed escaped, so it cannot add a line to the log."""
    import requests

    from memgate.errors import escaped
    from memgate.forges import forge_from_env
    from memgate.forges.http import RetryPolicy

    try:
        retry = RetryPolicy(max_total_wait=_max_wait(os.environ.get("MEMGATE_FORGE_MAX_WAIT")))
        with requests.Session() as session:
            result = forge_from_env(os.environ, session, number=number, retry=retry).upsert_comment(markdown)
    except MemgateError as error:
        warn(f"no comment posted: {error.one_line()}")
        return None
    print(f"memgate: {'posted' if result.created else 'updated'} the comment {escaped(result.url)}",
          file=sys.stderr)
    return result.url


def repository_root(folder: Path) -> Path:
    """The git work tree holding ``folder`` (frame paths are shown relative to it), else ``folder``."""
    from memgate.baselines import repository

    return repository.top_level(folder) or folder


def _max_wait(value: str | None) -> float:
    """Seconds the whole comment step may take, requests, retries and rate limits included
    (default 300). ``inf`` or ``nan`` would let a slow forge hold the job: refused like text."""
    import math

    from memgate.forges.http import RetryPolicy

    if not value:
        return RetryPolicy().max_total_wait
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise UsageError(f"MEMGATE_FORGE_MAX_WAIT={value!r} is not a number of seconds",
                         hint="set it to a number such as 60, or unset it") from None
    return max(0.0, seconds)


def github_job_outputs(comparison: Comparison, markdown: str, *, repo_root: Path, report_json: Path,
                       markdown_path: Path | None, comment_url: str | None,
                       env: Mapping[str, str] | None = None) -> None:
    """Under GitHub Actions: the job summary, the step outputs and annotations for new sites."""
    from memgate.forges.github import append_step_summary, set_output

    env = os.environ if env is None else env
    if not ci.on_github_actions(env):
        return
    try:
        summary_file, output_file = ci.step_summary_file(env), ci.step_output_file(env)
        if summary_file:
            append_step_summary(summary_file, markdown)
        if output_file:
            outputs = {"verdict": comparison.outcome, "report-json": str(report_json.resolve()),
                       "markdown": str(markdown_path.resolve()) if markdown_path else "",
                       "comment-url": comment_url or ""}
            for name, value in outputs.items():
                set_output(output_file, name, value)
    except MemgateError as error:
        warn(error.one_line())
    for line in annotation_lines(comparison, repo_root):
        print(line)


def annotation_lines(comparison: Comparison, repo_root: Path) -> list[str]:
    """``::error`` workflow commands for new leak and error sites, and grown ones that fail, at most
    ``MAX_ANNOTATIONS``, each at its first frame in the repository when there is one."""
    from memgate.report.common import source_location

    lines: list[str] = []
    new_sites = [site for suite in comparison.suites for site in suite.sites
                 if site.status in ("new", "grown") and site.verdict is Verdict.FAIL]
    for site in new_sites[:MAX_ANNOTATIONS]:
        place = source_location(site.frames, repo_root)
        where = ""
        if place is not None:
            where = f"file={_property(place.path)}," + (f"line={place.line}," if place.line else "")
        title = f"memgate: {site.status} {site.category} in suite {site.suite}"
        message = f"{site.kind}: {site.site}"
        lines.append(f"::error {where}title={_property(title)}::{_data(message)}")
    if len(new_sites) > MAX_ANNOTATIONS:
        lines.append(f"::notice::{len(new_sites) - MAX_ANNOTATIONS} more new sites: see the job summary")
    return lines


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


#: A Markdown file handed to ``memgate comment`` may come from an untrusted fork's run: read this much.
MAX_COMMENT_FILE_BYTES = 1_000_000


def comment_body_from_file(path: Path) -> str:
    """The comment body from a file ``memgate check --markdown`` wrote, made safe to post as the bot:
    a regular file of at most ``MAX_COMMENT_FILE_BYTES``, raw @mentions broken, and our marker exactly
    once, at the top.

    Opened without blocking and checked on the open descriptor: a FIFO would block the open (or the
    read) forever, and a device such as /dev/zero never ends; both are refused before any read."""
    import stat

    from memgate.report.markdown import MARKER, break_mentions

    hint = "pass the file `memgate check --markdown PATH` wrote"
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as error:
        raise UsageError(f"cannot read the Markdown file: {error.strerror}", path=path, hint=hint) from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise UsageError("the Markdown file is not a regular file (a FIFO, a device or a folder)",
                             path=path, hint=hint)
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(MAX_COMMENT_FILE_BYTES + 1)
    except OSError as error:
        raise UsageError(f"cannot read the Markdown file: {error.strerror}", path=path, hint=hint) from None
    finally:
        os.close(descriptor)
    if len(data) > MAX_COMMENT_FILE_BYTES:
        raise UsageError(f"the Markdown file holds more than the {MAX_COMMENT_FILE_BYTES:,} bytes "
                         "memgate posts", path=path, hint=hint)
    text = data.decode("utf-8", errors="replace").replace(MARKER, "")
    return f"{MARKER}\n{break_mentions(text.strip())}\n"
