"""What a run is judged against: the config and baselines of this checkout, or of a target commit."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from memgate.baselines.files import load_baselines
from memgate.baselines.model import Baseline
from memgate.config import Config, parse_config
from memgate.errors import BaselineError, ConfigError
from memgate.suppressions import SuppressionFile


@dataclass(frozen=True)
class Target:
    """What a run is judged against: the config whose thresholds apply, the baselines, and notes
    for the report (e.g. that the request edits baselines that only count after the merge)."""

    config: Config
    baselines: dict[str, Baseline]
    notes: tuple[str, ...] = field(default=())
    ref: str | None = None  # the commit or branch the gate was read at; None: this checkout's
    #: The suppression files each suite's tool gets, by suite name: the target's (None: this checkout's).
    suppression_files: dict[str, tuple[SuppressionFile, ...]] | None = None
    #: The request's own suppression files, of the suites where they differ from the target's: not
    #: applied, only matched against the run's leaks to show what they would hide.
    own_suppressions: dict[str, tuple[SuppressionFile, ...]] = field(default_factory=dict)

    def run_config(self, config: Config) -> Config:
        """``config`` with the suppression files the target applies."""
        if self.suppression_files is None:
            return config
        return config.model_copy(update={"suppression_files": self.suppression_files})


def local_target(config: Config) -> Target:
    """This checkout's own config and baselines (a run on a branch, not a pull request)."""
    return Target(config=config, baselines=load_baselines(config.baseline_path))


def target_at(config: Config, ref: str) -> Target:
    """The gate as defined at ``ref`` (the target branch or merge-base of a pull/merge request), so
    that a pull request that edits ``baselines/`` or the thresholds cannot loosen its own gate.

    The baselines and the gate's settings (thresholds, new-site rules) are read from that commit
    through git, never from the request's working tree; the suites to run still come from the
    working tree (a new suite simply has no baseline yet).
    """
    from memgate.baselines import repository

    config_file = Path(config.source).resolve()
    repo_dir = config.root
    with tempfile.TemporaryDirectory(prefix="memgate-target-") as temp:
        copied = repository.materialise_at(repo_dir, ref, [config_file.name, config.baseline_dir],
                                           Path(temp))
        short = copied.commit[:12]
        notes: list[str] = []
        target_config = config
        if config_file.name in copied.missing:
            notes.append(f"the target ({short}) has no {config_file.name} yet: "
                         "this request's own thresholds apply")
        else:
            text = (Path(temp) / config_file.name).read_text(encoding="utf-8")
            target_config = _target_config(text, config, f"{config_file.name} at {short}")
        baselines = _target_baselines(Path(temp), target_config.baseline_dir, short, config_file)
        edited = repository.changed_paths(repo_dir, copied.commit, "HEAD",
                                          under=[config_file.name, config.baseline_dir])
    applied, own = (None, {}) if config_file.name in copied.missing else \
        _target_suppressions(config, target_config, ref, short)
    if own:
        names = ", ".join(_changed_files(own, applied or {})) or "drops a file"
        notes.append(f"this request adds or edits suppressions ({names}): those of the target "
                     f"({short}) apply, and the request's own take effect only after the merge")
    if edited:
        shown = ", ".join(edited[:5]) + (" ..." if len(edited) > 5 else "")
        notes.append(f"this request edits {shown}: baselines and thresholds are read from the target "
                     f"({short}) and the edits take effect only after the merge")
    return Target(config=target_config, baselines=baselines, notes=tuple(notes), ref=ref,
                  suppression_files=applied, own_suppressions=own)


SuppressionsBySuite = dict[str, tuple[SuppressionFile, ...]]


def _target_suppressions(config: Config, target_config: Config, ref: str, short: str
                         ) -> tuple[SuppressionsBySuite, SuppressionsBySuite]:
    """The suppression files of each suite as the target names them, read at ``ref`` into a folder
    that lasts as long as memgate runs; and the request's own files of the suites where they differ
    (other files, or the same files with other contents)."""
    from memgate.baselines import repository

    wanted = {suite.name: target_config.suppression_names(suite.name) for suite in config.suites}
    every = sorted({name for names in wanted.values() for name in names})
    if not every:
        folder = Path()
    else:
        folder = Path(tempfile.mkdtemp(prefix="memgate-target-suppressions-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        copied = repository.materialise_at(config.root, ref, every, folder)
        if copied.missing:
            raise ConfigError(f"suppression file {copied.missing[0]} is named in the config at the target "
                              f"({short}) but is not there", path=config.source,
                              hint="add the file on the target branch, or remove it from its suppressions")
    applied = {suite: tuple(SuppressionFile(shown=name, path=folder / name) for name in names)
               for suite, names in wanted.items()}
    own: dict[str, tuple[SuppressionFile, ...]] = {}
    for suite in config.suites:
        mine = tuple(SuppressionFile(shown=name, path=config.root / name)
                     for name in config.suppression_names(suite.name))
        if _contents(mine) != _contents(applied[suite.name]):
            own[suite.name] = mine
    return applied, own


def _changed_files(own: SuppressionsBySuite, applied: SuppressionsBySuite) -> list[str]:
    """The request's suppression files that the target does not apply as they are: new, or edited."""
    target = {file.shown: file for files in applied.values() for file in files}
    return sorted({file.shown for files in own.values() for file in files
                   if file.shown not in target or _contents((file,)) != _contents((target[file.shown],))})


def _contents(files: tuple[SuppressionFile, ...]) -> list[tuple[str, bytes | None]]:
    return [(file.shown, file.path.read_bytes() if file.path.is_file() else None) for file in files]


def _target_baselines(temp: Path, baseline_dir: str, short: str, config_file: Path) -> dict[str, Baseline]:
    """The target's baselines, copied into ``temp``. Their errors name the file in the repository at
    the target commit: the temporary copy they were read from is gone once they are raised."""
    folder = temp / baseline_dir
    if folder.exists() and not folder.is_dir():
        raise BaselineError(f"baseline_dir {baseline_dir!r} is a file at the target ({short}), not a "
                            "folder of baselines", path=config_file,
                            hint="point baseline_dir at a folder on the target branch first")
    try:
        return load_baselines(folder)
    except BaselineError as error:
        copy = Path(error.path) if error.path else None
        where = copy.relative_to(temp) if copy is not None and copy.is_relative_to(temp) else copy
        hint = f"{error.hint}, on the target branch" if error.hint else ""
        raise BaselineError(f"{error.message}, at the target ({short})", path=where, hint=hint) from None


def _target_config(text: str, local: Config, shown: str) -> Config:
    try:
        target = parse_config(text, Path(local.source).with_name(Path(local.source).name))
    except ConfigError as error:
        raise ConfigError(f"the target branch's config is invalid: {error.message}", path=shown,
                          hint="fix the config on the target branch first") from None
    # Paths stay those of this checkout; only the gate's settings come from the target.
    return target.model_copy(update={"root": local.root, "source": local.source})
