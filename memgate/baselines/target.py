"""What a run is judged against: the config and baselines of this checkout, or of a target commit."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from memgate.baselines.files import load_baselines
from memgate.baselines.model import Baseline
from memgate.config import Config, parse_config
from memgate.errors import BaselineError, ConfigError


@dataclass(frozen=True)
class Target:
    """What a run is judged against: the config whose thresholds apply, the baselines, and notes
    for the report (e.g. that the request edits baselines that only count after the merge)."""

    config: Config
    baselines: dict[str, Baseline]
    notes: tuple[str, ...] = field(default=())
    ref: str | None = None  # the commit or branch the gate was read at; None: this checkout's


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
    if edited:
        shown = ", ".join(edited[:5]) + (" ..." if len(edited) > 5 else "")
        notes.append(f"this request edits {shown}: baselines and thresholds are read from the target "
                     f"({short}) and the edits take effect only after the merge")
    return Target(config=target_config, baselines=baselines, notes=tuple(notes), ref=ref)


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
