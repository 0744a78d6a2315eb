"""Committing and pushing regenerated baselines from the default branch, safe against races."""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from memgate.baselines.repository import (
    GitIdentity,
    UnknownRefError,
    VcsError,
    check_git,
    checked_out_branch,
    git_reason,
    hide_credentials,
    identity_from,
    location,
    open_repository,
    path_from_tree,
    path_in_tree,
    recorded_default_branch,
    resolve_ref,
    run_git,
)
from memgate.files import write_atomically

SKIP_CI_TAG = "[skip ci]"
SOURCE_TRAILER = "Memgate-Source-Commit"
#: Seconds a fetch or push may take before it is killed (CI must not hang on a credential prompt).
NETWORK_TIMEOUT = 300.0

_SKIP_TAGS = ("[skip ci]", "[ci skip]", "[no ci]", "[skip actions]", "[actions skip]")


class NotDefaultBranchError(VcsError):
    pass


class PushError(VcsError):
    """The baseline commit could not be pushed (given up after retries, or refused by the server)."""


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


# ------------------------------------------------------------------------------ the default branch


def check_can_commit(repo_dir: Path | str, *, push: bool, branch: str | None = None,
                     default_branch: str | None = None, allow_non_default: bool = False,
                     remote: str = "origin", env: Mapping[str, str] | None = None) -> None:
    """Check, before the suites run (they take minutes), everything ``commit_baselines`` will need
    with the same arguments: a checkout with no rebase or merge under way, a branch to commit onto (a
    detached HEAD needs ``branch``, which it can be moved onto), the remote, the default-branch rule,
    an identity git accepts, and with ``push`` that the remote branch can be fetched and already holds
    HEAD. Each raises the error the commit would have raised after the run."""
    with open_repository(repo_dir) as repo:
        _require_checkout(repo)
        target = _target_branch(repo, branch)
        _check_remote_name(repo, remote)
        _check_default_branch(repo, target, remote, default_branch, allow_non_default)
        _check_identity(repo, identity_from(repo, os.environ if env is None else env))
        if checked_out_branch(repo) is None:
            _check_attachable(repo, target)
        if push:
            _require_only_baselines_unpushed(repo, _fetch(repo, remote, target), remote, target)


def _refuse_other_than_default(repo: git.Repo, branch: str, default: str) -> None:
    """Baselines are the project's gate: only the default branch's figures may become one."""
    if branch != default:
        raise NotDefaultBranchError(
            f"refusing to commit baselines on branch {branch!r}: the default branch is {default!r}",
            path=location(repo),
            hint="run this on the default branch, or pass --force to commit on this branch anyway",
        )


def _default_branch(repo: git.Repo, given: str | None, remote: str) -> str | None:
    return _branch_name(given) or recorded_default_branch(repo, remote)


def _branch_name(ref: str | None) -> str:
    return (ref or "").removeprefix("refs/heads/")


# ------------------------------------------------------------------------------ baseline commits

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
    """Commit the regenerated baseline files ``paths`` (and nothing else) and optionally push them:
    tagged ``[skip ci]``, never forced; a push that lost a race is rebased (or the baselines re-applied
    onto the remote tip) and retried a bounded number of times.

    ``branch`` is the branch to update (default: the checked-out one; required on a detached HEAD,
    GitLab's ``$CI_COMMIT_BRANCH`` or ``--branch``: HEAD is then moved onto it, so that the commit
    goes onto that branch, not onto a detached HEAD). ``default_branch`` comes from the CI
    (``$CI_DEFAULT_BRANCH``, the GitHub event's ``repository.default_branch``), else from
    ``refs/remotes/<remote>/HEAD``; off it the run is refused unless ``allow_non_default``. ``env``
    is where MEMGATE_GIT_AUTHOR_NAME/EMAIL are read (default ``os.environ``). A rejected push is
    fetched, rebased (our files win over a merge of the same file) and retried up to ``max_attempts``
    pushes with jittered exponential backoff.
    """
    if max_attempts < 1:
        raise VcsError("max_attempts must be at least 1")
    with open_repository(repo_dir) as repo:
        _require_checkout(repo)
        target = _target_branch(repo, branch)
        _check_remote_name(repo, remote)
        _check_default_branch(repo, target, remote, default_branch, allow_non_default)
        who = identity or identity_from(repo, os.environ if env is None else env)
        _check_identity(repo, who)
        if checked_out_branch(repo) is None:
            _attach(repo, target)
        full_message = _commit_message(message, _source_sha(repo, source_commit))
        tree_paths = sorted({path_in_tree(repo, repo_dir, path) for path in paths})
        snapshot = _snapshot(repo, tree_paths)
        shown = tuple(sorted(path_from_tree(repo, repo_dir, p) for p in tree_paths))
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
        raise VcsError("baselines are committed from a checkout, not a bare repository",
                       path=location(repo))
    for marker in ("rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD"):
        # --git-path answers relative to the top of the checkout (git's working folder here)
        marker_path = run_git(repo, "rev-parse", "--git-path", marker).stdout.strip()
        if Path(repo.working_tree_dir, marker_path).exists():
            raise VcsError("a rebase, merge or cherry-pick is in progress in this checkout",
                           path=location(repo), hint="finish or abort it first")


def _target_branch(repo: git.Repo, branch: str | None) -> str:
    target = _branch_name(branch) or checked_out_branch(repo)
    if target is None:
        raise VcsError("HEAD is detached and no branch to update was given", path=location(repo),
                       hint="pass --branch NAME (GitLab CI: $CI_COMMIT_BRANCH; GitHub: the branch built)")
    if run_git(repo, "check-ref-format", "--branch", target).status != 0:
        raise VcsError(f"{target!r} is not a valid branch name", hint="name the branch to push to")
    return target


def _check_attachable(repo: git.Repo, branch: str) -> None:
    """A detached HEAD can be moved onto ``branch`` when the local branch does not exist, or holds
    nothing that HEAD does not (it is then moved forward to HEAD): nothing of it is lost."""
    local = f"refs/heads/{branch}"
    if run_git(repo, "rev-parse", "--verify", "--quiet", local).status != 0:
        return
    if run_git(repo, "merge-base", "--is-ancestor", local, "HEAD").status != 0:
        raise VcsError(
            f"HEAD is detached, and the local branch {branch!r} has commits that HEAD does not: "
            "the baseline commit cannot go onto it",
            path=location(repo),
            hint=f"check out {branch} and run again, or delete the local branch (git branch -D {branch})",
        )


def _attach(repo: git.Repo, branch: str) -> None:
    """Move the detached HEAD onto ``branch``, created at HEAD or moved forward to it; the working
    tree (the baselines just written) is left as it is."""
    _check_attachable(repo, branch)
    check_git(repo, "checkout", "--quiet", "-B", branch, "HEAD", what="checkout")


def _check_identity(repo: git.Repo, who: GitIdentity) -> None:
    """git refuses some names and addresses only when it commits (an empty name, one of only
    ``<>``, a line break): ask it first, with the identity the commit will use."""
    result = run_git(repo, "var", "GIT_COMMITTER_IDENT", env=who.env())
    if result.status != 0 or any(char in who.name + who.email for char in "<>\n"):
        raise VcsError(
            f"git refuses the identity {who.name!r} <{who.email!r}> for the baseline commit"
            + (f": {git_reason(result.stderr)}" if result.status != 0 else ""),
            path=location(repo),
            hint="set MEMGATE_GIT_AUTHOR_NAME and MEMGATE_GIT_AUTHOR_EMAIL (or git's user.name and "
                 "user.email) to a name and an address",
        )


def _check_remote_name(repo: git.Repo, remote: str) -> None:
    if remote.startswith("-") or run_git(repo, "config", "--get", f"remote.{remote}.url").status != 0:
        raise VcsError(f"no git remote named {remote!r}", path=location(repo),
                       hint="name an existing remote (git remote -v lists them)")


def _check_default_branch(repo: git.Repo, target: str, remote: str, default_branch: str | None,
                          allow_non_default: bool) -> None:
    if allow_non_default:
        return
    known = _default_branch(repo, default_branch, remote)
    if known is None:
        raise NotDefaultBranchError(
            f"cannot tell the default branch of {remote!r}, so baselines are not committed",
            path=location(repo),
            hint=("pass the default branch (GitLab: $CI_DEFAULT_BRANCH; GitHub: the event's "
                  f"repository.default_branch), or record it with `git remote set-head {remote} --auto`"),
        )
    _refuse_other_than_default(repo, target, known)


def _source_sha(repo: git.Repo, source_commit: str) -> str:
    """The measured commit as a full SHA; a SHA this clone does not have is recorded as given."""
    try:
        return resolve_ref(repo, source_commit)
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
            write_atomically(file, data)


def _commit_snapshot(repo: git.Repo, snapshot: Snapshot, message: str, who: GitIdentity) -> str | None:
    """Commit exactly the snapshot's paths (``--only``: whatever else is staged stays out); None when
    HEAD already holds them."""
    present = [path for path, data in snapshot.items() if data is not None]
    removed = [path for path, data in snapshot.items() if data is None and _in_head(repo, path)]
    if present:
        added = run_git(repo, "--literal-pathspecs", "add", "--", *present)
        if added.status != 0:
            ignored = "ignored by one of your .gitignore files" in added.stderr
            raise VcsError(f"git add failed: {git_reason(added.stderr)}", path=location(repo),
                           hint="remove the .gitignore pattern that matches the baselines "
                                "(git check-ignore -v PATH names it)" if ignored else "")
    if removed:
        check_git(repo, "--literal-pathspecs", "rm", "--cached", "--quiet", "--ignore-unmatch", "--",
                  *removed, what="rm")
    paths = present + removed
    if not paths or run_git(repo, "--literal-pathspecs", "diff", "--cached", "--quiet", "HEAD", "--",
                            *paths).status == 0:
        return None
    check_git(repo, "--literal-pathspecs", "commit", "--only", "--quiet", "-m", message, "--", *paths,
              env=who.env(), what="commit")
    return resolve_ref(repo, "HEAD")


def _in_head(repo: git.Repo, tree_path: str) -> bool:
    return bool(run_git(repo, "--literal-pathspecs", "ls-tree", "--name-only", "HEAD", "--",
                        tree_path).stdout.strip())


def _head_holds(repo: git.Repo, snapshot: Snapshot) -> bool:
    commit = repo.commit(resolve_ref(repo, "HEAD"))
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
    result = run_git(repo, "fetch", "--no-tags", "--quiet", remote,
                     f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}",
                     env=_NETWORK_ENV, timeout=NETWORK_TIMEOUT)
    if result.status != 0:
        raise PushError(f"could not fetch {remote}/{branch}: {git_reason(result.stderr)}",
                        path=location(repo),
                        hint="check that the branch exists on the remote and the token may read it")
    return resolve_ref(repo, f"refs/remotes/{remote}/{branch}")


def _require_only_baselines_unpushed(repo: git.Repo, tip: str, remote: str, branch: str) -> None:
    """memgate pushes its baseline commit and nothing else: HEAD must already be on the remote."""
    if run_git(repo, "merge-base", "--is-ancestor", "HEAD", tip).status != 0:
        raise PushError(
            f"the checkout has commits that are not on {remote}/{branch}; "
            "memgate pushes only baseline commits",
            path=location(repo),
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
        path=location(repo),
        hint="run the baseline update again, and serialise baseline jobs (GitHub concurrency group, "
             "GitLab resource_group)",
    )


def _push(repo: git.Repo, plan: _PushPlan, sha: str) -> bool:
    """True when pushed, False when rejected because the remote moved on (retry); raises otherwise."""
    destination = f"refs/heads/{plan.branch}"
    result = run_git(repo, "push", "--porcelain", plan.remote, f"{sha}:{destination}",
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
            f"{plan.remote} refused the baseline commit: {hide_credentials(summary)}",
            path=location(repo),
            hint="a protected branch needs a token allowed to push (or a bypass rule); see the README",
        )
    raise PushError(f"git push to {plan.remote} failed: {git_reason(result.stderr) or result.status}",
                    path=location(repo),
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
    rebase = run_git(repo, "rebase", "--autostash", "--quiet", tip, env=env)
    if rebase.status != 0:
        conflicted = _conflicted(repo)
        run_git(repo, "rebase", "--abort", env=env)
        if not conflicted or not set(conflicted) <= set(plan.snapshot):
            raise PushError(f"could not rebase the baseline commit onto {plan.remote}/{plan.branch}: "
                            f"{git_reason(rebase.stderr) or git_reason(rebase.stdout)}",
                            path=location(repo),
                            hint="check the checkout for local changes, then run the update again")
        return _reapply(repo, tip, plan)
    if not _head_holds(repo, plan.snapshot):
        return _reapply(repo, tip, plan)
    head = resolve_ref(repo, "HEAD")
    return None if head == tip else head


def _conflicted(repo: git.Repo) -> list[str]:
    result = run_git(repo, "diff", "--name-only", "-z", "--diff-filter=U")
    return [name for name in result.stdout.split("\0") if name]


def _reapply(repo: git.Repo, tip: str, plan: _PushPlan) -> str | None:
    reset = run_git(repo, "reset", "--keep", "--quiet", tip)
    if reset.status != 0:
        raise PushError(f"could not move the checkout to {plan.remote}/{plan.branch}: "
                        f"{git_reason(reset.stderr)}", path=location(repo),
                        hint="commit or discard local changes to files the remote changed")
    _write_snapshot(repo, plan.snapshot)
    return _commit_snapshot(repo, plan.snapshot, plan.message, plan.identity)


