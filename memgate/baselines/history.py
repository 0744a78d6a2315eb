"""The history of the baselines on a branch: the commits that changed ``baseline_dir`` (first parent
only, so a merged branch counts as its merge commit), and the figures each one held, read from git's
blobs. An old or broken baseline file in that history is skipped with a note, never an error."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from memgate.errors import BaselineError
from memgate.metrics import METRIC_NAMES, MetricName

if TYPE_CHECKING:
    import git

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
        boundary = _shallow_boundary(repo)
        # A shallow clone's oldest commit looks like a root that added every baseline: not a change.
        wanted = limit + (1 if boundary else 0)
        log = repository.check_git(repo, "log", "--first-parent", f"--max-count={wanted}",
                                   "--format=%H %cI %s", tip, "--", f":(top,literal){folder or '.'}",
                                   what="log")
        found = [line.split(" ", 2) for line in log.stdout.splitlines() if line.strip()]
        found = [entry for entry in found if entry[0] not in boundary][:limit]
        reader = _BlobReader(folder)
        commits = [BaselineCommit(commit=sha, date=date, subject=rest[0] if rest else "",
                                  metrics=reader.metrics_at(repo.commit(sha)))
                   for sha, date, *rest in reversed(found)]
        complete = not boundary or len(commits) >= limit
        notes = reader.notes()
        if not complete:
            notes.insert(0, _shallow_note(repo, tip, ref, len(commits), limit))
    return BaselineHistory(ref=ref, tip=tip, limit=limit, commits=tuple(commits), complete=complete,
                           notes=tuple(notes))


def _shallow_boundary(repo: git.Repo) -> frozenset[str]:
    """The commits a shallow clone stops at (``.git/shallow``); empty for a full clone."""
    shallow = Path(repo.common_dir) / "shallow"
    try:
        return frozenset(shallow.read_text(encoding="ascii").split())
    except FileNotFoundError:
        return frozenset()


def _shallow_note(repo: git.Repo, tip: str, ref: str, found: int, limit: int) -> str:
    """How deep to fetch: the clone's commits of ``ref`` held ``found`` baseline commits; at the same
    rate, ``limit`` of them take proportionally more (at least ``limit`` commits)."""
    from memgate.baselines import repository

    depth = int(repository.run_git(repo, "rev-list", "--first-parent", "--count", tip).stdout.strip() or 0)
    needed = max(limit, math.ceil(depth * limit / found) if found else depth * limit)
    branch = ref.removeprefix("refs/heads/").removeprefix("refs/remotes/").removeprefix("origin/")
    return (f"this clone is shallow: its {depth} commit{'s' if depth != 1 else ''} of {ref} hold "
            f"{found} of the last {limit} baseline commits; fetch about {needed} commits of history "
            f"(git fetch --no-tags --depth={needed} origin {branch}), {repository.FULL_HISTORY_HINT}")


class _BlobReader:
    """Reads the baselines of ``folder`` at commits, each distinct file (blob) once, and remembers the
    files it skipped."""

    def __init__(self, folder: str) -> None:
        self._folder = folder
        self._parsed: dict[str, tuple[str, Mapping[MetricName, int]] | None] = {}
        self._skipped: list[str] = []

    def metrics_at(self, commit: git.Commit) -> dict[str, Mapping[MetricName, int]]:
        metrics: dict[str, Mapping[MetricName, int]] = {}
        for blob in self._baseline_blobs(commit):
            if blob.hexsha not in self._parsed:
                self._parsed[blob.hexsha] = self._parse(blob, commit.hexsha)
            parsed = self._parsed[blob.hexsha]
            if parsed is not None:
                metrics[parsed[0]] = parsed[1]
        return metrics

    def _baseline_blobs(self, commit: git.Commit) -> Iterator[git.Blob]:
        import git

        try:
            tree = commit.tree[self._folder] if self._folder else commit.tree
        except KeyError:
            return  # no baselines yet at this commit
        if not isinstance(tree, git.Tree):
            return
        # The files directly in the folder, as load_baselines reads them; symbolic links are skipped.
        yield from (blob for blob in tree.blobs if blob.name.endswith(".json") and blob.mode != 0o120000)

    def _parse(self, blob: git.Blob, commit: str) -> tuple[str, Mapping[MetricName, int]] | None:
        from memgate.baselines.files import baseline_from_bytes

        shown = PurePosixPath(str(blob.path))
        try:
            baseline = baseline_from_bytes(blob.data_stream.read(), Path(shown))
        except BaselineError as error:
            self._skipped.append(f"{shown} at {commit[:12]} ({error.message})")
            return None
        if f"{baseline.suite}.json" != blob.name:
            self._skipped.append(f"{shown} at {commit[:12]} (it is the baseline of suite {baseline.suite!r})")
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
