"""Everything memgate asks of git, through GitPython: nothing else in memgate imports ``git``.

Two jobs:

* Reading the gate from the target of a pull request (``read_file_at``, ``read_tree_at``,
  ``materialise_at``, ``merge_base``, ``changed_paths``), so that a pull request that edits
  ``baselines/`` or the thresholds cannot loosen its own gate.
* Committing and pushing regenerated baselines from the default branch (``commit_baselines``): only
  the baseline files, tagged ``[skip ci]``, never forced; a push that lost a race is rebased (or the
  baselines re-applied onto the remote tip) and retried a bounded number of times.

Paths given to these functions are relative to ``repo_dir`` (which may be a folder inside the
checkout, such as the folder of ``memgate.toml``) or absolute inside the checkout; paths returned are
POSIX paths relative to ``repo_dir``.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import git

from memgate.errors import ExitCode, MemgateError

DEFAULT_AUTHOR_NAME = "github-actions[bot]"
DEFAULT_AUTHOR_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
SKIP_CI_TAG = "[skip ci]"
SOURCE_TRAILER = "Memgate-Source-Commit"
#: Seconds a fetch or push may take before it is killed (CI must not hang on a credential prompt).
NETWORK_TIMEOUT = 300.0
FULL_HISTORY_HINT = "or check out the full history (actions/checkout fetch-depth: 0; GitLab GIT_DEPTH: 0)"

_SYMLINK_MODE = 0o120000
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_SKIP_TAGS = ("[skip ci]", "[ci skip]", "[no ci]", "[skip actions]", "[actions skip]")
_CREDENTIALS_IN_URL = re.compile(r"(\w+://)[^/@\s]+@")


class VcsError(MemgateError):
    """git could not give memgate what it needs: not a repository, a missing commit, a failed push."""

    exit_code = ExitCode.USAGE


class NotARepositoryError(VcsError):
    pass


class UnknownRefError(VcsError):
    """A ref or commit that the clone does not have (often: a shallow clone)."""


class NotDefaultBranchError(VcsError):
    pass


class PushError(VcsError):
    """The baseline commit could not be pushed (given up after retries, or refused by the server)."""


@dataclass(frozen=True)
class GitIdentity:
    name: str
    email: str

    def env(self) -> dict[str, str]:
        """Author and committer for one git command, overriding whatever the process inherited."""
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


@dataclass(frozen=True)
class Materialised:
    """What ``materialise_at`` wrote: files relative to ``dest_dir``, requested paths absent at ``ref``."""

    commit: str
    dest_dir: Path
    written: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class CommitResult:
    """The outcome of ``commit_baselines``.

    ``commit`` is the baseline commit now at the tip of the branch (after any rebase), or None when
    there was nothing to commit; ``attempts`` counts push attempts (0 without ``push``).
    """

    commit: str | None
    pushed: bool
    attempts: int
    paths: tuple[str, ...]
    detail: str


@dataclass(frozen=True)
class _Git:
    """A finished git command."""

    status: int
    stdout: str
    stderr: str


# --------------------------------------------------------------------------------------------- repo


@contextmanager
def _open(repo_dir: Path | str) -> Iterator[git.Repo]:
    try:
        repo = git.Repo(repo_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise NotARepositoryError(
            "not inside a git repository",
            path=repo_dir,
            hint="run memgate in the checkout of your project (actions/checkout, git clone)",
        ) from None
    try:
        _check_git_accepts(repo, repo_dir)
        yield repo
    finally:
        repo.close()  # GitPython keeps cat-file processes alive until closed


def _check_git_accepts(repo: git.Repo, repo_dir: Path | str) -> None:
    """GitPython reads the folder itself; git may still refuse it. The usual case in CI containers is
    a checkout owned by another user ("dubious ownership"), which would otherwise look like a
    missing commit."""
    probe = _run(repo, "rev-parse", "--git-dir")
    if probe.status == 0:
        return
    reason = _reason(probe.stderr) or f"exit status {probe.status}"
    hint = "run memgate in the checkout of your project"
    if "dubious ownership" in probe.stderr or "safe.directory" in probe.stderr:
        hint = f"mark the checkout as safe: git config --global --add safe.directory {_where(repo)}"
    raise NotARepositoryError(f"git refuses this repository: {reason}", path=repo_dir, hint=hint)


def _run(repo: git.Repo, *args: str, env: Mapping[str, str] | None = None,
         timeout: float | None = None) -> _Git:
    """Run ``git <args>`` in the repository; never raises for a non-zero status."""
    status, stdout, stderr = repo.git.execute(
        ["git", *args],
        with_extended_output=True,
        with_exceptions=False,
        env=dict(env) if env else None,
        kill_after_timeout=timeout,
    )
    return _Git(int(status), str(stdout), str(stderr))


def _check(repo: git.Repo, *args: str, env: Mapping[str, str] | None = None,
           timeout: float | None = None, what: str = "") -> _Git:
    result = _run(repo, *args, env=env, timeout=timeout)
    if result.status != 0:
        raise VcsError(
            f"git {what or args[0]} failed: {_reason(result.stderr) or f'exit status {result.status}'}",
            path=_where(repo),
        )
    return result


def _where(repo: git.Repo) -> str:
    return str(repo.working_tree_dir or repo.git_dir)


def _reason(stderr: str) -> str:
    """git's own one-line reason: its last fatal/error line, else what it said minus the hints."""
    lines = [line.strip() for line in _scrub(stderr).splitlines()
             if line.strip() and not line.startswith("hint:")]
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    text = errors[-1] if errors else " ".join(lines)
    return text if len(text) <= 300 else f"{text[:297]}..."


def _scrub(text: str) -> str:
    """Credentials embedded in remote URLs never reach a message."""
    return _CREDENTIALS_IN_URL.sub(r"\1***@", text)


def _prefix(repo: git.Repo, repo_dir: Path | str) -> PurePosixPath:
    """Where ``repo_dir`` sits inside the checkout (empty for its top folder or a bare repository)."""
    if repo.working_tree_dir is None:
        return PurePosixPath()
    top = Path(repo.working_tree_dir).resolve()
    try:
        return PurePosixPath(Path(repo_dir).resolve().relative_to(top).as_posix())
    except ValueError:
        raise VcsError("folder is not inside the repository's checkout", path=repo_dir,
                       hint="run memgate in the checkout of your project") from None


def _tree_path(repo: git.Repo, repo_dir: Path | str, path: Path | str) -> str:
    """``path`` (relative to ``repo_dir`` or absolute) as a path from the top of the repository."""
    candidate = Path(path)
    if candidate.is_absolute():
        if repo.working_tree_dir is None:
            raise VcsError("an absolute path needs a checkout, not a bare repository", path=path)
        relative = _relative_to_top(repo, candidate)
    else:
        relative = _normalise(_prefix(repo, repo_dir) / PurePosixPath(candidate.as_posix()), path)
    return "" if str(relative) == "." else relative.as_posix()


def _relative_to_top(repo: git.Repo, absolute: Path) -> PurePosixPath:
    assert repo.working_tree_dir is not None
    normal = Path(os.path.normpath(absolute))
    for top in (Path(repo.working_tree_dir), Path(repo.working_tree_dir).resolve()):
        try:
            return PurePosixPath(normal.relative_to(top).as_posix())
        except ValueError:
            continue
    raise VcsError("path is outside the repository", path=absolute,
                   hint="give a path inside the checkout")


def _normalise(path: PurePosixPath, original: Path | str) -> PurePosixPath:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                raise VcsError("path is outside the repository", path=original,
                               hint="give a path inside the checkout")
            parts.pop()
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _from_tree_path(repo: git.Repo, repo_dir: Path | str, tree_path: str) -> str:
    """The inverse of ``_tree_path`` for paths git reports (``../x`` when outside ``repo_dir``)."""
    prefix = str(_prefix(repo, repo_dir))
    if prefix in ("", "."):
        return tree_path
    return os.path.relpath(tree_path, prefix).replace(os.sep, "/")


def is_shallow(repo_dir: Path | str) -> bool:
    with _open(repo_dir) as repo:
        return _is_shallow(repo)


def _is_shallow(repo: git.Repo) -> bool:
    return _run(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"


# ------------------------------------------------------------------------------------ refs and reads


def resolve_commit(repo_dir: Path | str, ref: str) -> str:
    """The full SHA of the commit ``ref`` names; ``UnknownRefError`` with a fetch hint if the clone
    lacks it."""
    with _open(repo_dir) as repo:
        return _resolve(repo, ref)


def _resolve(repo: git.Repo, ref: str) -> str:
    if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise UnknownRefError(f"{ref!r} is not a git ref or commit", hint="give a branch, tag or commit SHA")
    result = _run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if result.status != 0:
        shallow = " (this clone is shallow)" if _is_shallow(repo) else ""
        raise UnknownRefError(
            f"this clone does not have {ref!r}{shallow}",
            path=_where(repo),
            hint=_fetch_hint(ref),
        )
    return result.stdout.strip()


def _fetch_hint(ref: str) -> str:
    if _SHA.match(ref):
        fetch = f"fetch that commit: git fetch --no-tags --depth=50 origin {ref}"
    else:
        branch = ref.removeprefix("refs/heads/").removeprefix("refs/remotes/").removeprefix("origin/")
        fetch = (f"fetch the target branch: git fetch --no-tags --depth=50 origin "
                 f"{branch}:refs/remotes/origin/{branch}")
    return f"{fetch}, {FULL_HISTORY_HINT}"


def merge_base(repo_dir: Path | str, a: str, b: str) -> str:
    """The best common ancestor of ``a`` and ``b``: the commit a pull request is compared with."""
    with _open(repo_dir) as repo:
        first, second = _resolve(repo, a), _resolve(repo, b)
        result = _run(repo, "merge-base", first, second)
        if result.status == 0 and result.stdout.strip():
            return result.stdout.strip().splitlines()[0]
        if _is_shallow(repo):
            raise UnknownRefError(
                f"the shallow clone does not reach the merge-base of {a!r} and {b!r}",
                path=_where(repo),
                hint=f"deepen the history: git fetch --no-tags --deepen=200 origin, {FULL_HISTORY_HINT}",
            )
        raise UnknownRefError(f"{a!r} and {b!r} have no common history",
                              path=_where(repo),
                              hint="compare the pull request with its real target branch")


def read_file_at(repo_dir: Path | str, ref: str, path: Path | str) -> bytes | None:
    """The content of ``path`` in commit ``ref``, or None when the commit has no such file."""
    with _open(repo_dir) as repo:
        commit = repo.commit(_resolve(repo, ref))
        tree_path = _tree_path(repo, repo_dir, path)
        try:
            item = commit.tree[tree_path] if tree_path else commit.tree
        except KeyError:
            return None
        if not isinstance(item, git.Blob):
            raise VcsError(f"{tree_path or '.'} is a folder in {ref}, not a file", path=path)
        return _blob_bytes(item, ref)


def read_tree_at(repo_dir: Path | str, ref: str, subpath: Path | str) -> dict[str, bytes]:
    """Every file under ``subpath`` in commit ``ref``, keyed by its path relative to ``subpath``.

    Empty when the commit has no such folder (a first run, before any baseline was committed).
    """
    with _open(repo_dir) as repo:
        commit = repo.commit(_resolve(repo, ref))
        tree_path = _tree_path(repo, repo_dir, subpath)
        return _files_under(commit, tree_path, ref, subpath)


def _files_under(commit: git.Commit, tree_path: str, ref: str, shown: Path | str) -> dict[str, bytes]:
    try:
        item = commit.tree[tree_path] if tree_path else commit.tree
    except KeyError:
        return {}
    if not isinstance(item, git.Tree):
        raise VcsError(f"{tree_path} is a file in {ref}, not a folder", path=shown)
    files: dict[str, bytes] = {}
    for entry in item.traverse():
        if isinstance(entry, git.Tree):
            continue
        if not isinstance(entry, git.Blob):
            raise VcsError(f"{tree_path or '.'} in {ref} holds a submodule; memgate reads only files",
                           path=shown)
        full = PurePosixPath(str(entry.path))
        files[str(full.relative_to(tree_path)) if tree_path else str(full)] = _blob_bytes(entry, ref)
    return files


def _blob_bytes(blob: git.Blob, ref: str) -> bytes:
    if blob.mode == _SYMLINK_MODE:
        # A link's target would be read from the pull request's working tree: the very thing to avoid.
        raise VcsError(f"{blob.path} in {ref} is a symbolic link; memgate reads only regular files",
                       path=str(blob.path), hint="commit the file itself")
    data: bytes = blob.data_stream.read()
    return data


def materialise_at(repo_dir: Path | str, ref: str, paths: Sequence[Path | str],
                   dest_dir: Path | str) -> Materialised:
    """Write ``ref``'s version of each of ``paths`` (files or folders) under ``dest_dir``, keeping their
    layout relative to ``repo_dir``, so that the config and baselines of the target branch can be
    loaded from there. ``dest_dir`` must be empty or absent: a stale file would become a baseline."""
    dest = Path(dest_dir)
    if dest.exists() and any(dest.iterdir()):
        raise VcsError("folder for the target's files is not empty", path=dest,
                       hint="give a new, empty temporary folder")
    with _open(repo_dir) as repo:
        sha = _resolve(repo, ref)
        commit = repo.commit(sha)
        written: list[str] = []
        missing: list[str] = []
        for path in paths:
            tree_path = _tree_path(repo, repo_dir, path)
            files = _path_at(commit, tree_path, ref, path)
            if files is None:
                missing.append(_from_tree_path(repo, repo_dir, tree_path))
                continue
            for relative_to_path, data in files.items():
                shown = _from_tree_path(repo, repo_dir, str(PurePosixPath(tree_path, relative_to_path)))
                _write_inside(dest, shown, data)
                written.append(shown)
    return Materialised(commit=sha, dest_dir=dest, written=tuple(sorted(set(written))),
                        missing=tuple(missing))


def _path_at(commit: git.Commit, tree_path: str, ref: str, shown: Path | str) -> dict[str, bytes] | None:
    """A file as ``{"": data}``, a folder as its files, None when absent."""
    try:
        item = commit.tree[tree_path] if tree_path else commit.tree
    except KeyError:
        return None
    if isinstance(item, git.Blob):
        return {"": _blob_bytes(item, ref)}
    return _files_under(commit, tree_path, ref, shown)


def _write_inside(dest: Path, relative: str, data: bytes) -> None:
    parts = PurePosixPath(relative).parts
    if not parts or any(part in ("..", ".git") for part in parts):
        raise VcsError(f"refusing to write {relative!r} outside the folder for the target's files",
                       path=dest, hint="keep the config and baselines inside the config's folder")
    target = dest.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def changed_paths(repo_dir: Path | str, base: str, head: str = "HEAD",
                  under: Sequence[Path | str] | None = None) -> tuple[str, ...]:
    """Files that differ between ``base`` and ``head`` (pass the merge-base as ``base`` so that the
    target's own later commits do not count), limited to ``under`` (files or folders). A rename
    counts as both its old and its new path."""
    with _open(repo_dir) as repo:
        first, second = _resolve(repo, base), _resolve(repo, head)
        specs = [f":(top,literal){_tree_path(repo, repo_dir, p)}" for p in under] if under is not None else []
        if under is not None and not specs:
            return ()
        result = _check(repo, "diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", "--no-textconv",
                        first, second, "--", *specs, what="diff")
        names = [name for name in result.stdout.split("\0") if name]
        return tuple(sorted(_from_tree_path(repo, repo_dir, name) for name in names))


# ---------------------------------------------------------------------------------- branch facts


def current_branch(repo_dir: Path | str) -> str | None:
    """The checked-out branch, None on a detached HEAD (GitLab CI checks out detached)."""
    with _open(repo_dir) as repo:
        return _current_branch(repo)


def _current_branch(repo: git.Repo) -> str | None:
    result = _run(repo, "symbolic-ref", "--quiet", "--short", "HEAD")
    return (result.stdout.strip() or None) if result.status == 0 else None


def remote_default_branch(repo_dir: Path | str, remote: str = "origin") -> str | None:
    """The remote's default branch as this clone recorded it (``refs/remotes/<remote>/HEAD``); None
    when unknown, as in clones made by actions/checkout: pass the CI's own value then."""
    with _open(repo_dir) as repo:
        return _remote_default_branch(repo, remote)


def _remote_default_branch(repo: git.Repo, remote: str) -> str | None:
    result = _run(repo, "symbolic-ref", "--quiet", f"refs/remotes/{remote}/HEAD")
    prefix = f"refs/remotes/{remote}/"
    target = result.stdout.strip()
    return target[len(prefix):] if result.status == 0 and target.startswith(prefix) else None


def resolve_identity(repo_dir: Path | str, env: Mapping[str, str] | None = None) -> GitIdentity:
    """Who signs baseline commits: MEMGATE_GIT_AUTHOR_NAME/EMAIL, else git's own identity
    (GIT_AUTHOR_NAME/EMAIL, then user.name/user.email), else the GitHub Actions bot."""
    with _open(repo_dir) as repo:
        return _resolve_identity(repo, os.environ if env is None else env)


def _config(repo: git.Repo, key: str) -> str | None:
    result = _run(repo, "config", "--get", key)
    return (result.stdout.strip() or None) if result.status == 0 else None


def _resolve_identity(repo: git.Repo, environ: Mapping[str, str]) -> GitIdentity:
    name = (environ.get("MEMGATE_GIT_AUTHOR_NAME") or environ.get("GIT_AUTHOR_NAME")
            or _config(repo, "user.name") or DEFAULT_AUTHOR_NAME)
    email = (environ.get("MEMGATE_GIT_AUTHOR_EMAIL") or environ.get("GIT_AUTHOR_EMAIL")
             or _config(repo, "user.email") or DEFAULT_AUTHOR_EMAIL)
    return GitIdentity(name=name, email=email)


# ------------------------------------------------------------------------------- baseline commits

Snapshot = dict[str, bytes | None]  # tree path -> our file's bytes, None for a file we removed


def commit_baselines(
    repo_dir: Path | str,
    paths: Sequence[Path | str],
    message: str,
    source_commit: str,
    push: bool,
    *,
    remote: str = "origin",
    branch: str | None = None,
    max_attempts: int = 5,
    allow_non_default: bool = False,
    default_branch: str | None = None,
    identity: GitIdentity | None = None,
    env: Mapping[str, str] | None = None,
    backoff_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> CommitResult:
    """Commit the regenerated baseline files ``paths`` (and nothing else) and optionally push them.

    ``branch`` is the branch to update (default: the checked-out one; required on a detached HEAD,
    GitLab's ``$CI_COMMIT_BRANCH``). ``default_branch`` comes from the CI (``$CI_DEFAULT_BRANCH``, the
    GitHub event's ``repository.default_branch``), else from ``refs/remotes/<remote>/HEAD``; off it the
    run is refused unless ``allow_non_default``. ``env`` is where MEMGATE_GIT_AUTHOR_NAME/EMAIL are
    read (default ``os.environ``). A rejected push is fetched, rebased (our files win over a merge
    of the same file) and retried up to ``max_attempts`` pushes with jittered exponential backoff.
    """
    if max_attempts < 1:
        raise VcsError("max_attempts must be at least 1")
    with _open(repo_dir) as repo:
        _require_checkout(repo)
        target = _target_branch(repo, branch)
        _check_remote_name(repo, remote)
        _check_default_branch(repo, target, remote, default_branch, allow_non_default)
        who = identity or _resolve_identity(repo, os.environ if env is None else env)
        full_message = _commit_message(message, _source_sha(repo, source_commit))
        tree_paths = sorted({_tree_path(repo, repo_dir, path) for path in paths})
        snapshot = _snapshot(repo, tree_paths)
        shown = tuple(sorted(_from_tree_path(repo, repo_dir, p) for p in tree_paths))
        if push:
            _require_only_baselines_unpushed(repo, _fetch(repo, remote, target), remote, target)
        sha = _commit_snapshot(repo, snapshot, full_message, who)
        if sha is None:
            return CommitResult(None, False, 0, shown, "baselines unchanged: nothing to commit")
        if not push:
            return CommitResult(sha, False, 0, shown, f"committed {sha[:12]} (not pushed)")
        return _push_with_retry(repo, _PushPlan(remote, target, snapshot, full_message, who, shown),
                                sha, max_attempts, backoff_seconds, sleep)


@dataclass(frozen=True)
class _PushPlan:
    remote: str
    branch: str
    snapshot: Snapshot
    message: str
    identity: GitIdentity
    shown: tuple[str, ...]


def _require_checkout(repo: git.Repo) -> None:
    if repo.working_tree_dir is None:
        raise VcsError("baselines are committed from a checkout, not a bare repository", path=_where(repo))
    for marker in ("rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD"):
        # --git-path answers relative to the top of the checkout (git's working folder here)
        if Path(repo.working_tree_dir, _run(repo, "rev-parse", "--git-path", marker).stdout.strip()).exists():
            raise VcsError("a rebase, merge or cherry-pick is in progress in this checkout",
                           path=_where(repo), hint="finish or abort it first")


def _target_branch(repo: git.Repo, branch: str | None) -> str:
    target = (branch or "").removeprefix("refs/heads/") or _current_branch(repo)
    if target is None:
        raise VcsError("HEAD is detached and no branch to update was given", path=_where(repo),
                       hint="name the branch to push to (GitLab CI: $CI_COMMIT_BRANCH)")
    if _run(repo, "check-ref-format", "--branch", target).status != 0:
        raise VcsError(f"{target!r} is not a valid branch name", hint="name the branch to push to")
    return target


def _check_remote_name(repo: git.Repo, remote: str) -> None:
    if remote.startswith("-") or _run(repo, "config", "--get", f"remote.{remote}.url").status != 0:
        raise VcsError(f"no git remote named {remote!r}", path=_where(repo),
                       hint="name an existing remote (git remote -v lists them)")


def _check_default_branch(repo: git.Repo, target: str, remote: str, default_branch: str | None,
                          allow_non_default: bool) -> None:
    if allow_non_default:
        return
    known = (default_branch or "").removeprefix("refs/heads/") or _remote_default_branch(repo, remote)
    if known is None:
        raise NotDefaultBranchError(
            f"cannot tell the default branch of {remote!r}, so baselines are not committed",
            path=_where(repo),
            hint=("pass the default branch (GitLab: $CI_DEFAULT_BRANCH; GitHub: the event's "
                  f"repository.default_branch), or record it with `git remote set-head {remote} --auto`"),
        )
    if target != known:
        raise NotDefaultBranchError(
            f"refusing to commit baselines on branch {target!r}: the default branch is {known!r}",
            path=_where(repo),
            hint="update baselines from a pipeline on the default branch, or force it for this branch",
        )


def _source_sha(repo: git.Repo, source_commit: str) -> str:
    """The measured commit as a full SHA; a SHA this clone does not have is recorded as given."""
    try:
        return _resolve(repo, source_commit)
    except UnknownRefError:
        if re.fullmatch(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}", source_commit):
            return source_commit.lower()
        raise


def _commit_message(message: str, source: str) -> str:
    """``message`` with ``[skip ci]`` on its subject (pushes by a PAT or App token would start a new
    pipeline otherwise) and the measured commit as a trailer."""
    lines = message.replace("\0", "").strip().splitlines() or ["Update memgate baselines"]
    subject = lines[0].strip()
    if not any(tag in message.lower() for tag in _SKIP_TAGS):
        subject = f"{subject} {SKIP_CI_TAG}"
    body = "\n".join(lines[1:]).strip()
    paragraphs = [subject, body] if body else [subject]
    return "\n\n".join([*paragraphs, f"{SOURCE_TRAILER}: {source}"]) + "\n"


def _snapshot(repo: git.Repo, tree_paths: Sequence[str]) -> Snapshot:
    """Our regenerated files, read once: after a reset to the remote tip they are written back."""
    assert repo.working_tree_dir is not None
    snapshot: Snapshot = {}
    for tree_path in tree_paths:
        file = Path(repo.working_tree_dir, tree_path)
        if not tree_path or file.is_dir():
            raise VcsError("a baseline path must be a file, not a folder", path=file,
                           hint="pass the baseline files that were written")
        if file.is_symlink():
            raise VcsError("a baseline file must not be a symbolic link", path=file)
        snapshot[tree_path] = file.read_bytes() if file.exists() else None
    return snapshot


def _write_snapshot(repo: git.Repo, snapshot: Snapshot) -> None:
    assert repo.working_tree_dir is not None
    for tree_path, data in snapshot.items():
        file = Path(repo.working_tree_dir, tree_path)
        if data is None:
            file.unlink(missing_ok=True)
        else:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)


def _commit_snapshot(repo: git.Repo, snapshot: Snapshot, message: str, who: GitIdentity) -> str | None:
    """Commit exactly the snapshot's paths (``--only``: whatever else is staged stays out); None when
    HEAD already holds them."""
    present = [path for path, data in snapshot.items() if data is not None]
    removed = [path for path, data in snapshot.items() if data is None and _in_head(repo, path)]
    if present:
        added = _run(repo, "--literal-pathspecs", "add", "--", *present)
        if added.status != 0:
            ignored = "ignored by one of your .gitignore files" in added.stderr
            raise VcsError(f"git add failed: {_reason(added.stderr)}", path=_where(repo),
                           hint="remove the .gitignore pattern that matches the baselines "
                                "(git check-ignore -v PATH names it)" if ignored else "")
    if removed:
        _check(repo, "--literal-pathspecs", "rm", "--cached", "--quiet", "--ignore-unmatch", "--",
               *removed, what="rm")
    paths = present + removed
    if not paths or _run(repo, "--literal-pathspecs", "diff", "--cached", "--quiet", "HEAD", "--",
                         *paths).status == 0:
        return None
    _check(repo, "--literal-pathspecs", "commit", "--only", "--quiet", "-m", message, "--", *paths,
           env=who.env(), what="commit")
    return _resolve(repo, "HEAD")


def _in_head(repo: git.Repo, tree_path: str) -> bool:
    return bool(_run(repo, "--literal-pathspecs", "ls-tree", "--name-only", "HEAD", "--",
                     tree_path).stdout.strip())


def _head_holds(repo: git.Repo, snapshot: Snapshot) -> bool:
    commit = repo.commit(_resolve(repo, "HEAD"))
    for tree_path, data in snapshot.items():
        try:
            blob = commit.tree[tree_path]
        except KeyError:
            if data is not None:
                return False
            continue
        if data is None or not isinstance(blob, git.Blob) or blob.data_stream.read() != data:
            return False
    return True


# -------------------------------------------------------------------------------------- pushing

_NETWORK_ENV = {"GIT_TERMINAL_PROMPT": "0"}  # fail, never wait for a password nobody will type


def _fetch(repo: git.Repo, remote: str, branch: str) -> str:
    result = _run(repo, "fetch", "--no-tags", "--quiet", remote,
                  f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}",
                  env=_NETWORK_ENV, timeout=NETWORK_TIMEOUT)
    if result.status != 0:
        raise PushError(f"could not fetch {remote}/{branch}: {_reason(result.stderr)}",
                        path=_where(repo),
                        hint="check that the branch exists on the remote and the token may read it")
    return _resolve(repo, f"refs/remotes/{remote}/{branch}")


def _require_only_baselines_unpushed(repo: git.Repo, tip: str, remote: str, branch: str) -> None:
    """memgate pushes its baseline commit and nothing else: HEAD must already be on the remote."""
    if _run(repo, "merge-base", "--is-ancestor", "HEAD", tip).status != 0:
        raise PushError(
            f"the checkout has commits that are not on {remote}/{branch}; "
            "memgate pushes only baseline commits",
            path=_where(repo),
            hint="push or drop those commits first, or commit the baselines without pushing",
        )


def _push_with_retry(repo: git.Repo, plan: _PushPlan, sha: str, max_attempts: int,
                     backoff_seconds: float, sleep: Callable[[float], None]) -> CommitResult:
    for attempt in range(1, max_attempts + 1):
        if _push(repo, plan, sha):
            tries = f" (attempt {attempt})" if attempt > 1 else ""
            return CommitResult(sha, True, attempt, plan.shown,
                                f"pushed {sha[:12]} to {plan.remote}/{plan.branch}{tries}")
        if attempt == max_attempts:
            break
        # Jitter keeps two pipelines that collided from colliding again in lockstep.
        sleep(min(backoff_seconds * 2 ** (attempt - 1), 30.0) * random.uniform(0.5, 1.0))
        replayed = _replay_onto(repo, _fetch(repo, plan.remote, plan.branch), plan)
        if replayed is None:
            return CommitResult(None, False, attempt, plan.shown,
                                f"{plan.remote}/{plan.branch} already has these baselines: nothing to push")
        sha = replayed
    raise PushError(
        f"gave up pushing baselines to {plan.remote}/{plan.branch}: rejected {max_attempts} times "
        "because other pushes landed first",
        path=_where(repo),
        hint="run the baseline update again, and serialise baseline jobs (GitHub concurrency group, "
             "GitLab resource_group)",
    )


def _push(repo: git.Repo, plan: _PushPlan, sha: str) -> bool:
    """True when pushed, False when rejected because the remote moved on (retry); raises otherwise."""
    destination = f"refs/heads/{plan.branch}"
    result = _run(repo, "push", "--porcelain", plan.remote, f"{sha}:{destination}",
                  env=_NETWORK_ENV, timeout=NETWORK_TIMEOUT)
    for line in result.stdout.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or not fields[1].endswith(f":{destination}"):
            continue
        flag, summary = fields[0], fields[2]
        if flag in (" ", "*", "=") and result.status == 0:
            return True
        if flag == "!" and (summary.startswith("[rejected]") or _lost_server_side_race(summary)):
            return False
        raise PushError(
            f"{plan.remote} refused the baseline commit: {_scrub(summary)}",
            path=_where(repo),
            hint="a protected branch needs a token allowed to push (or a bypass rule); see the README",
        )
    raise PushError(f"git push to {plan.remote} failed: {_reason(result.stderr) or result.status}",
                    path=_where(repo),
                    hint="check the remote URL and that the token may push (contents: write)")


def _lost_server_side_race(summary: str) -> bool:
    """Another push moved the branch between the ref advertisement and our update: the server's
    ref transaction fails (``[remote rejected] (failed to update ref)``); worth a retry."""
    return summary.startswith("[remote rejected]") and any(
        reason in summary for reason in ("failed to update ref", "failed to lock", "incorrect old value")
    )


def _replay_onto(repo: git.Repo, tip: str, plan: _PushPlan) -> str | None:
    """Our baseline commit on top of ``tip``: rebased, or re-applied when the rebase conflicts or
    merged our file with the remote's (a mix of two measurements is no baseline). Our files win;
    every other file comes from the remote. None when ``tip`` already holds our files."""
    env = {**plan.identity.env(), "GIT_EDITOR": "true"}
    rebase = _run(repo, "rebase", "--autostash", "--quiet", tip, env=env)
    if rebase.status != 0:
        conflicted = _conflicted(repo)
        _run(repo, "rebase", "--abort", env=env)
        if not conflicted or not set(conflicted) <= set(plan.snapshot):
            raise PushError(f"could not rebase the baseline commit onto {plan.remote}/{plan.branch}: "
                            f"{_reason(rebase.stderr) or _reason(rebase.stdout)}",
                            path=_where(repo),
                            hint="check the checkout for local changes, then run the update again")
        return _reapply(repo, tip, plan)
    if not _head_holds(repo, plan.snapshot):
        return _reapply(repo, tip, plan)
    head = _resolve(repo, "HEAD")
    return None if head == tip else head


def _conflicted(repo: git.Repo) -> list[str]:
    result = _run(repo, "diff", "--name-only", "-z", "--diff-filter=U")
    return [name for name in result.stdout.split("\0") if name]


def _reapply(repo: git.Repo, tip: str, plan: _PushPlan) -> str | None:
    reset = _run(repo, "reset", "--keep", "--quiet", tip)
    if reset.status != 0:
        raise PushError(f"could not move the checkout to {plan.remote}/{plan.branch}: "
                        f"{_reason(reset.stderr)}", path=_where(repo),
                        hint="commit or discard local changes to files the remote changed")
    _write_snapshot(repo, plan.snapshot)
    return _commit_snapshot(repo, plan.snapshot, plan.message, plan.identity)


def top_level(folder: Path | str) -> Path | None:
    """The root of the git work tree holding ``folder``; None outside one (or without git)."""
    try:
        repo = git.Repo(folder, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
        return None
    root = repo.working_tree_dir
    return Path(root) if root else None
