"""The history of the baselines on a branch: the commits that changed ``baseline_dir`` (first parent
only, so a merged branch counts as its merge commit), and the figures each one held, read from git's
blobs. An old or broken baseline file in that history is skipped with a note, never an error."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from memgate.errors import BaselineError
from memgate.metrics import METRIC_NAMES, MetricName

if TYPE_CHECKING:
    from memgate.baselines.repository import FileAt

DEFAULT_LIMIT = 20
#: Unreadable files named one by one in the notes; the rest are counted.
MAX_NAMED_SKIPS = 3


@dataclass(frozen=True)
class BaselineCommit:
    """One commit of the history that changed the baselines, and every suite's figures at it."""

    commit: str
    date: str  # the committer date, ISO 8601 with its offset: when it landed on the branch
    subject: str
    metrics: Mapping[str, Mapping[MetricName, int]]  # suite -> its baseline's metrics at this commit

    @property
    def short(self) -> str:
        return self.commit[:12]


@dataclass(frozen=True)
class HistoryPoint:
    commit: str
    date: str
    value: int


@dataclass(frozen=True)
class BaselineHistory:
    """The last ``limit`` baseline commits of ``ref``, oldest first. ``complete`` is False when a
    shallow clone ended the history before ``limit`` commits were found (``notes`` say how deep to
    fetch)."""

    ref: str
    tip: str
    limit: int
    commits: tuple[BaselineCommit, ...]
    complete: bool = True
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def unavailable(cls, ref: str, limit: int, note: str) -> BaselineHistory:
        """No history (git could not give it), and the note that says why."""
        return cls(ref=ref, tip="", limit=limit, commits=(), complete=False, notes=(note,))

    def only(self, suites: Sequence[str] = (), metrics: Sequence[str] = ()) -> BaselineHistory:
        """The history of these suites and metrics alone (empty: all of them)."""
        def kept(figures: Mapping[MetricName, int]) -> dict[MetricName, int]:
            return {metric: value for metric, value in figures.items() if not metrics or metric in metrics}

        commits = tuple(replace(commit, metrics={suite: kept(figures)
                                                 for suite, figures in commit.metrics.items()
                                                 if not suites or suite in suites})
                        for commit in self.commits)
        return replace(self, commits=commits)

    def suites(self) -> list[str]:
        return sorted({suite for commit in self.commits for suite in commit.metrics})

    def metrics_of(self, suite: str) -> list[MetricName]:
        present = {metric for commit in self.commits for metric in commit.metrics.get(suite, {})}
        return [metric for metric in METRIC_NAMES if metric in present]

    def series(self, suite: str, metric: MetricName) -> list[HistoryPoint]:
        """The metric's value at each baseline commit that has it, oldest first."""
        return [HistoryPoint(commit.commit, commit.date, commit.metrics[suite][metric])
                for commit in self.commits if metric in commit.metrics.get(suite, {})]

    def to_data(self) -> dict[str, object]:
        """As JSON data: the commits, then per suite and metric the values with commit and date."""
        return {
            "ref": self.ref, "tip": self.tip, "limit": self.limit, "complete": self.complete,
            "notes": list(self.notes),
            "commits": [{"commit": c.commit, "date": c.date, "subject": c.subject} for c in self.commits],
            "suites": {suite: {metric: [{"commit": p.commit, "date": p.date, "value": p.value}
                                        for p in self.series(suite, metric)]
                               for metric in self.metrics_of(suite)}
                       for suite in self.suites()},
        }


def read_history(repo_dir: Path, ref: str, baseline_dir: str, limit: int = DEFAULT_LIMIT) -> BaselineHistory:
    """The last ``limit`` commits of ``ref`` (first parent only) that changed ``baseline_dir``
    (relative to ``repo_dir``), with the baselines each held. One ``git log`` finds the commits;
    GitPython's one object reader reads their files, and a file unchanged between commits is parsed
    once. ``UnknownRefError`` when the clone lacks ``ref``."""
    from memgate.baselines import repository

    with repository.open_repository(repo_dir) as repo:
        tip = repository.resolve_ref(repo, ref)
        folder = repository.path_in_tree(repo, repo_dir, baseline_dir)
        boundary = repository.shallow_boundary(repo)
        # A shallow clone's oldest commit looks like a root that added every baseline: not a change.
        logged = repository.first_parent_log(repo, tip, folder, limit + (1 if boundary else 0))
        found = [entry for entry in logged if entry.sha not in boundary][:limit]
        reader = _BaselineReader()
        commits = []
        for entry in reversed(found):
            files = repository.files_in_folder_at(repo, entry.sha, folder)
            commits.append(BaselineCommit(commit=entry.sha, date=entry.date, subject=entry.subject,
                                          metrics=reader.metrics_in(files, entry.sha)))
        complete = not boundary or len(commits) >= limit
        notes = reader.notes()
        if not complete:
            count = repository.run_git(repo, "rev-list", "--first-parent", "--count", tip).stdout.strip()
            notes.insert(0, _shallow_note(ref, int(count or 0), len(commits), limit))
    return BaselineHistory(ref=ref, tip=tip, limit=limit, commits=tuple(commits), complete=complete,
                           notes=tuple(notes))


def _shallow_note(ref: str, depth: int, found: int, limit: int) -> str:
    """How deep to fetch: the clone's ``depth`` commits of ``ref`` held ``found`` baseline commits; at
    the same rate, ``limit`` of them take proportionally more (at least ``limit`` commits)."""
    from memgate.baselines.repository import FULL_HISTORY_HINT

    needed = max(limit, math.ceil(depth * limit / found) if found else depth * limit)
    branch = ref.removeprefix("refs/heads/").removeprefix("refs/remotes/").removeprefix("origin/")
    return (f"this clone is shallow: its {depth} commit{'s' if depth != 1 else ''} of {ref} hold "
            f"{found} of the last {limit} baseline commits; fetch about {needed} commits of history "
            f"(git fetch --no-tags --depth={needed} origin {branch}), {FULL_HISTORY_HINT}")


class _BaselineReader:
    """Reads baseline files, each distinct content (blob) once, and remembers the files it skipped."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[str, Mapping[MetricName, int]] | None] = {}
        self._skipped: list[str] = []

    def metrics_in(self, files: Sequence[FileAt], commit: str) -> dict[str, Mapping[MetricName, int]]:
        """Each suite's metrics in the ``*.json`` files of a baseline folder at ``commit``."""
        metrics: dict[str, Mapping[MetricName, int]] = {}
        for file in files:
            if not file.name.endswith(".json"):
                continue
            if file.blob_id not in self._parsed:
                self._parsed[file.blob_id] = self._parse(file, commit)
            parsed = self._parsed[file.blob_id]
            if parsed is not None:
                metrics[parsed[0]] = parsed[1]
        return metrics

    def _parse(self, file: FileAt, commit: str) -> tuple[str, Mapping[MetricName, int]] | None:
        from memgate.baselines.files import baseline_from_bytes

        try:
            baseline = baseline_from_bytes(file.read(), Path(file.path))
        except BaselineError as error:
            self._skipped.append(f"{file.path} at {commit[:12]} ({error.message})")
            return None
        if f"{baseline.suite}.json" != file.name:
            self._skipped.append(f"{file.path} at {commit[:12]} (it is the baseline of suite "
                                 f"{baseline.suite!r})")
            return None
        return baseline.suite, dict(baseline.metrics)

    def notes(self) -> list[str]:
        if not self._skipped:
            return []
        named = "; ".join(self._skipped[:MAX_NAMED_SKIPS])
        count = len(self._skipped)
        more = f" and {count - MAX_NAMED_SKIPS} more" if count > MAX_NAMED_SKIPS else ""
        return [f"skipped {count} unreadable baseline file{'s' if count != 1 else ''} in the history: "
                f"{named}{more}"]
