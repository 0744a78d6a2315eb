"""What memgate asks of git, through GitPython (nothing else in memgate imports ``git``): reading
files, folders and changes at a commit, and the repository helpers that ``baselines.commit`` uses."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import git

from memgate.errors import ExitCode, MemgateError
from memgate.files import write_atomically

DEFAULT_AUTHOR_NAME = "github-actions[bot]"
DEFAULT_AUTHOR_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
FULL_HISTORY_HINT = "or check out the full history (actions/checkout fetch-depth: 0; GitLab GIT_DEPTH: 0)"

_SYMLINK_MODE = 0o120000
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_CREDENTIALS_IN_URL = re.compile(r"(\w+://)[^/@\s]+@")


class VcsError(MemgateError):
    """git could not give memgate what it needs: not a repository, a missing commit, a failed push."""

    exit_code = ExitCode.USAGE


class NotARepositoryError(VcsError):
    pass


class UnknownRefError(VcsError):
    """A ref or commit that the clone does not have (often: a shallow clone)."""


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
class GitResult:
    """A finished git command."""

    status: int
    stdout: str
    stderr: str


# --------------------------------------------------------------------------------------------- repo


@contextmanager
def open_repository(repo_dir: Path | str) -> Iterator[git.Repo]:
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
    probe = run_git(repo, "rev-parse", "--git-dir")
    if probe.status == 0:
        return
    reason = git_reason(probe.stderr) or f"exit status {probe.status}"
    hint = "run memgate in the checkout of your project"
    if "dubious ownership" in probe.stderr or "safe.directory" in probe.stderr:
        hint = f"mark the checkout as safe: git config --global --add safe.directory {location(repo)}"
    raise NotARepositoryError(f"git refuses this repository: {reason}", path=repo_dir, hint=hint)


def run_git(repo: git.Repo, *args: str, env: Mapping[str, str] | None = None,
            timeout: float | None = None) -> GitResult:
    """Run ``git <args>`` in the repository; never raises for a non-zero status."""
    status, stdout, stderr = repo.git.execute(
        ["git", *args],
        with_extended_output=True,
        with_exceptions=False,
        env=dict(env) if env else None,
        kill_after_timeout=timeout,
    )
    return GitResult(int(status), str(stdout), str(stderr))


def check_git(repo: git.Repo, *args: str, env: Mapping[str, str] | None = None,
              timeout: float | None = None, what: str = "") -> GitResult:
    result = run_git(repo, *args, env=env, timeout=timeout)
    if result.status != 0:
        raise VcsError(
            f"git {what or args[0]} failed: {git_reason(result.stderr) or f'exit status {result.status}'}",
            path=location(repo),
        )
    return result


def location(repo: git.Repo) -> str:
    return str(repo.working_tree_dir or repo.git_dir)


def git_reason(stderr: str) -> str:
    """git's own one-line reason: its last fatal/error line, else what it said minus the hints."""
    lines = [line.strip() for line in hide_credentials(stderr).splitlines()
             if line.strip() and not line.startswith("hint:")]
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    text = errors[-1] if errors else " ".join(lines)
    return text if len(text) <= 300 else f"{text[:297]}..."


def hide_credentials(text: str) -> str:
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


# Paths given to these functions are relative to ``repo_dir`` (which may be a folder inside the checkout,
# such as the folder of ``memgate.toml``) or absolute inside the checkout; paths returned are POSIX paths
# relative to ``repo_dir``.
def path_in_tree(repo: git.Repo, repo_dir: Path | str, path: Path | str) -> str:
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


def path_from_tree(repo: git.Repo, repo_dir: Path | str, tree_path: str) -> str:
    """The inverse of ``path_in_tree`` for paths git reports (``../x`` when outside ``repo_dir``)."""
    prefix = str(_prefix(repo, repo_dir))
    if prefix in ("", "."):
        return tree_path
    return os.path.relpath(tree_path, prefix).replace(os.sep, "/")


def is_shallow(repo_dir: Path | str) -> bool:
    with open_repository(repo_dir) as repo:
        return _is_shallow(repo)


def _is_shallow(repo: git.Repo) -> bool:
    return run_git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"


# ------------------------------------------------------------------------------------ refs and reads


def resolve_commit(repo_dir: Path | str, ref: str) -> str:
    """The full SHA of the commit ``ref`` names; ``UnknownRefError`` with a fetch hint if the clone
    lacks it."""
    with open_repository(repo_dir) as repo:
        return resolve_ref(repo, ref)


def resolve_ref(repo: git.Repo, ref: str) -> str:
    if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise UnknownRefError(f"{ref!r} is not a git ref or commit", hint="give a branch, tag or commit SHA")
    result = run_git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if result.status != 0:
        shallow = " (this clone is shallow)" if _is_shallow(repo) else ""
        raise UnknownRefError(
            f"this clone does not have {ref!r}{shallow}",
            path=location(repo),
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
    with open_repository(repo_dir) as repo:
        first, second = resolve_ref(repo, a), resolve_ref(repo, b)
        result = run_git(repo, "merge-base", first, second)
        if result.status == 0 and result.stdout.strip():
            return result.stdout.strip().splitlines()[0]
        if _is_shallow(repo):
            raise UnknownRefError(
                f"the shallow clone does not reach the merge-base of {a!r} and {b!r}",
                path=location(repo),
                hint=f"deepen the history: git fetch --no-tags --deepen=200 origin, {FULL_HISTORY_HINT}",
            )
        raise UnknownRefError(f"{a!r} and {b!r} have no common history",
                              path=location(repo),
                              hint="compare the pull request with its real target branch")


def read_file_at(repo_dir: Path | str, ref: str, path: Path | str) -> bytes | None:
    """The content of ``path`` in commit ``ref``, or None when the commit has no such file."""
    with open_repository(repo_dir) as repo:
        commit = repo.commit(resolve_ref(repo, ref))
        tree_path = path_in_tree(repo, repo_dir, path)
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
    with open_repository(repo_dir) as repo:
        commit = repo.commit(resolve_ref(repo, ref))
        tree_path = path_in_tree(repo, repo_dir, subpath)
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
    with open_repository(repo_dir) as repo:
        sha = resolve_ref(repo, ref)
        commit = repo.commit(sha)
        written: list[str] = []
        missing: list[str] = []
        for path in paths:
            tree_path = path_in_tree(repo, repo_dir, path)
            files = _path_at(commit, tree_path, ref, path)
            if files is None:
                missing.append(path_from_tree(repo, repo_dir, tree_path))
                continue
            for relative_to_path, data in files.items():
                shown = path_from_tree(repo, repo_dir, str(PurePosixPath(tree_path, relative_to_path)))
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
    write_atomically(target, data)


@dataclass(frozen=True)
class LoggedCommit:
    sha: str
    date: str  # the committer date, ISO 8601 with its offset
    subject: str


def first_parent_log(repo: git.Repo, tip: str, tree_path: str, max_count: int) -> list[LoggedCommit]:
    """The last ``max_count`` commits from ``tip`` that changed ``tree_path`` (from the top of the
    repository), first parent only, newest first: one ``git log``."""
    log = check_git(repo, "log", "--first-parent", f"--max-count={max_count}", "--format=%H %cI %s", tip,
                    "--", f":(top,literal){tree_path or '.'}", what="log")
    entries = [line.split(" ", 2) for line in log.stdout.splitlines() if line.strip()]
    return [LoggedCommit(sha, date, rest[0] if rest else "") for sha, date, *rest in entries]


def shallow_boundary(repo: git.Repo) -> frozenset[str]:
    """The commits a shallow clone stops at (``shallow`` in the git folder); empty for a full clone.
    Each looks like a root commit that added every file."""
    try:
        return frozenset((Path(repo.common_dir) / "shallow").read_text(encoding="ascii").split())
    except FileNotFoundError:
        return frozenset()


@dataclass(frozen=True)
class FileAt:
    """A regular file directly in a folder at some commit: its blob is read only when asked."""

    path: str  # from the top of the repository
    blob_id: str  # the same content has the same id at every commit
    blob: git.Blob

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def read(self) -> bytes:
        data: bytes = self.blob.data_stream.read()
        return data


def files_in_folder_at(repo: git.Repo, sha: str, tree_path: str) -> list[FileAt]:
    """The regular files directly in ``tree_path`` at commit ``sha`` (not its subfolders, symbolic
    links or submodules); empty when the commit has no such folder."""
    commit = repo.commit(sha)
    try:
        tree = commit.tree[tree_path] if tree_path else commit.tree
    except KeyError:
        return []
    if not isinstance(tree, git.Tree):
        return []
    return [FileAt(str(blob.path), blob.hexsha, blob) for blob in tree.blobs if blob.mode != _SYMLINK_MODE]


def changed_paths(repo_dir: Path | str, base: str, head: str = "HEAD",
                  under: Sequence[Path | str] | None = None) -> tuple[str, ...]:
    """Files that differ between ``base`` and ``head`` (pass the merge-base as ``base`` so that the
    target's own later commits do not count), limited to ``under`` (files or folders). A rename
    counts as both its old and its new path."""
    with open_repository(repo_dir) as repo:
        first, second = resolve_ref(repo, base), resolve_ref(repo, head)
        specs = [f":(top,literal){path_in_tree(repo, repo_dir, p)}" for p in under or ()]
        if under is not None and not specs:
            return ()
        result = check_git(repo, "diff", "--name-only", "-z", "--no-renames", "--no-ext-diff",
                           "--no-textconv", first, second, "--", *specs, what="diff")
        names = [name for name in result.stdout.split("\0") if name]
        return tuple(sorted(path_from_tree(repo, repo_dir, name) for name in names))


# ---------------------------------------------------------------------------------- branch facts


def current_branch(repo_dir: Path | str) -> str | None:
    """The checked-out branch, None on a detached HEAD (GitLab CI checks out detached)."""
    with open_repository(repo_dir) as repo:
        return checked_out_branch(repo)


def checked_out_branch(repo: git.Repo) -> str | None:
    result = run_git(repo, "symbolic-ref", "--quiet", "--short", "HEAD")
    return (result.stdout.strip() or None) if result.status == 0 else None


def remote_default_branch(repo_dir: Path | str, remote: str = "origin") -> str | None:
    """The remote's default branch as this clone recorded it (``refs/remotes/<remote>/HEAD``); None
    when unknown, as in clones made by actions/checkout: pass the CI's own value then."""
    with open_repository(repo_dir) as repo:
        return recorded_default_branch(repo, remote)


def recorded_default_branch(repo: git.Repo, remote: str) -> str | None:
    result = run_git(repo, "symbolic-ref", "--quiet", f"refs/remotes/{remote}/HEAD")
    prefix = f"refs/remotes/{remote}/"
    target = result.stdout.strip()
    return target[len(prefix):] if result.status == 0 and target.startswith(prefix) else None


def resolve_identity(repo_dir: Path | str, env: Mapping[str, str] | None = None) -> GitIdentity:
    """Who signs baseline commits: MEMGATE_GIT_AUTHOR_NAME/EMAIL, else git's own identity
    (GIT_AUTHOR_NAME/EMAIL, then user.name/user.email), else the GitHub Actions bot."""
    with open_repository(repo_dir) as repo:
        return identity_from(repo, os.environ if env is None else env)


def _config(repo: git.Repo, key: str) -> str | None:
    result = run_git(repo, "config", "--get", key)
    return (result.stdout.strip() or None) if result.status == 0 else None


def identity_from(repo: git.Repo, environ: Mapping[str, str]) -> GitIdentity:
    name = (environ.get("MEMGATE_GIT_AUTHOR_NAME") or environ.get("GIT_AUTHOR_NAME")
            or _config(repo, "user.name") or DEFAULT_AUTHOR_NAME)
    email = (environ.get("MEMGATE_GIT_AUTHOR_EMAIL") or environ.get("GIT_AUTHOR_EMAIL")
             or _config(repo, "user.email") or DEFAULT_AUTHOR_EMAIL)
    return GitIdentity(name=name, email=email)


def top_level(folder: Path | str) -> Path | None:
    """The root of the git work tree holding ``folder``; None outside one (or without git)."""
    try:
        repo = git.Repo(folder, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
        return None
    root = repo.working_tree_dir
    return Path(root) if root else None
