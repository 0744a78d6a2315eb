"""Baseline files, ``<baseline_dir>/<suite>.json`` kept in the repository: paths, reading (an
unreadable file is a ``BaselineError`` naming it and the fix, never a silent pass) and writing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from memgate.baselines.model import BASELINE_SCHEMA_VERSION, Baseline, baselines_from_report
from memgate.config import SUITE_NAME
from memgate.errors import BaselineError
from memgate.files import json_from_text, read_json, write_atomically
from memgate.metrics import MetricName
from memgate.records import COMPARISON_KEYS, REPORT_SCHEMA_VERSION, Report
from memgate.thresholds import Thresholds
from memgate.units import count_of

REGENERATE = "regenerate it with `memgate baseline update`"
UPGRADE = "upgrade memgate (pip install -U memgate)"
_REPORT_HINT = "pass a report written by `memgate run --json`"


def baseline_path(directory: Path, suite: str) -> Path:
    """``<directory>/<suite>.json``; a suite name that could reach outside the folder is refused."""
    if not SUITE_NAME.match(suite):
        raise BaselineError(
            f"{suite!r} is not a usable suite name for a baseline file",
            path=directory,
            hint="use letters, digits, '.', '_' and '-' (starting with a letter or digit)",
        )
    path = directory / f"{suite}.json"
    if path.resolve().parent != directory.resolve():
        raise BaselineError(f"the baseline of suite {suite!r} would be written outside the folder",
                            path=directory, hint="rename the suite")
    return path


def write_baseline(directory: Path, baseline: Baseline) -> Path:
    """Write ``<directory>/<suite>.json`` atomically (a temporary file, then a rename)."""
    path = baseline_path(directory, baseline.suite)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_atomically(path, baseline.to_json())
    except OSError as error:
        raise BaselineError(
            f"cannot write the baseline: {error.strerror or error}",
            path=path,
            hint="check that the baseline folder exists and is writable",
        ) from None
    return path


#: What a baseline says of where it came from, not of the suite: a new run that differs only in these
#: leaves the file as it is, so that a `baseline update` on every merge commits nothing new.
_PROVENANCE = frozenset({"source_commit", "memgate_version"})
#: Compared by ``_same_metrics`` (noise floors) or not at all (heap sites only name where heap growth
#: comes from; they are written again with the next change of a figure).
_NOT_EXACT = frozenset({"metrics", "tests", "heap_sites"})


def holds_same_figures(directory: Path, baseline: Baseline, thresholds: Thresholds | None = None) -> bool:
    """True when ``<directory>/<suite>.json`` already holds ``baseline``'s figures and sites (only the
    commit and memgate version that made it may differ, a metric only within its noise floor under
    ``thresholds``, and the heap sites at all); an unreadable file holds nothing. Noisy figures (GC
    cycles, resident memory) and a Go profile's runtime stacks move on every run: without this, a
    `baseline update` on every merge would commit them every time."""
    path = baseline_path(directory, baseline.suite)
    if not path.is_file():
        return False
    try:
        existing = read_baseline(path)
    except BaselineError:
        return False
    ignored = {*_PROVENANCE, *_NOT_EXACT}
    if existing.model_dump(exclude=ignored) != baseline.model_dump(exclude=ignored):
        return False
    floors = thresholds or {}
    return (existing.tests.keys() == baseline.tests.keys()
            and _same_metrics(existing.metrics, baseline.metrics, floors)
            and all(_same_metrics(existing.tests[test], figures, floors)
                    for test, figures in baseline.tests.items()))


def _same_metrics(before: Mapping[MetricName, int], after: Mapping[MetricName, int],
                  thresholds: Thresholds) -> bool:
    if before.keys() != after.keys():
        return False
    for metric, value in after.items():
        threshold = thresholds.get(metric)
        if abs(value - before[metric]) > (threshold.noise_floor(before[metric]) if threshold else 0):
            return False
    return True


def load_baseline(directory: Path, suite: str) -> Baseline | None:
    """The suite's baseline, or None when it has none yet (the suite then shows as new)."""
    path = baseline_path(directory, suite)
    if not path.exists():
        return None
    baseline = read_baseline(path)
    if baseline.suite != suite:
        raise BaselineError(
            f"the file is the baseline of suite {baseline.suite!r}, not {suite!r}",
            path=path,
            hint=f"rename it to {baseline.suite}.json, or {REGENERATE}",
        )
    return baseline


def load_baselines(directory: Path) -> dict[str, Baseline]:
    """Every ``*.json`` baseline of the folder by suite name; a missing folder means no baselines.
    A folder that cannot exist (it, or a parent, is a file) is an error: read as "no baselines", every
    suite would pass as new."""
    blocker = _file_in_the_way(directory)
    if blocker == directory:
        raise BaselineError("the baseline folder is a file, not a folder", path=directory,
                            hint="point baseline_dir at a folder, or move the file away")
    if blocker is not None:
        raise BaselineError(f"the baseline folder cannot exist: {blocker} is a file, not a folder",
                            path=directory, hint="point baseline_dir at a folder, or move that file away")
    if not directory.exists():
        return {}
    baselines: dict[str, Baseline] = {}
    for path in sorted(directory.glob("*.json")):
        baseline = load_baseline(directory, path.stem)
        if baseline is not None:
            baselines[baseline.suite] = baseline
    return baselines


def _file_in_the_way(directory: Path) -> Path | None:
    """The existing non-folder (``directory`` itself or its nearest existing parent) that keeps
    ``directory`` from being a folder; None when it is one or could be made."""
    for candidate in (directory, *directory.parents):
        if candidate.is_dir():
            return None
        if candidate.exists():
            return candidate
    return None


def read_baseline(path: Path) -> Baseline:
    return _baseline_from(_read_json(path), path)


def baseline_from_bytes(data: bytes, shown: Path) -> Baseline:
    """A baseline file's content as git keeps it (a blob at some commit); errors name ``shown``."""
    hint = REGENERATE
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BaselineError("the file is not UTF-8 JSON", path=shown, hint=hint) from None
    return _baseline_from(json_from_text(text, shown, error=BaselineError, hint=hint, parse_int=count_of),
                          shown)


def _baseline_from(value: object, path: Path) -> Baseline:
    data = _versioned_object(value, path, "memgate baseline", BASELINE_SCHEMA_VERSION, REGENERATE)
    try:
        baseline = Baseline.model_validate(data)
    except ValidationError as error:
        raise BaselineError(
            f"the file is not a memgate baseline: {_first_problem(error)}", path=path, hint=REGENERATE
        ) from None
    return baseline.model_copy(update={"origin": str(path)})


def read_report(path: Path) -> Report:
    """A JSON report written by ``memgate check --json`` or ``memgate run``."""
    return _report_from(_read_json(path), path)


def _report_from(value: object, path: Path) -> Report:
    data = _versioned_object(value, path, "memgate JSON report", REPORT_SCHEMA_VERSION, _REPORT_HINT)
    # The comparison a report of `check` carries is the one of its own baselines: the run is what
    # is read back, and compared again.
    run = {key: value for key, value in data.items() if key not in COMPARISON_KEYS}
    try:
        return Report.model_validate(run)
    except ValidationError as error:
        raise BaselineError(
            f"the file is not a memgate JSON report: {_first_problem(error)}",
            path=path,
            hint=_REPORT_HINT,
        ) from None


def load_baseline_side(path: Path) -> dict[str, Baseline]:
    """The BASELINE argument of ``memgate compare``: a baselines folder, one baseline file, or a JSON
    report (a file with ``suites``)."""
    if path.is_dir():
        return load_baselines(path)
    if not path.exists():
        blocker = _file_in_the_way(path)
        detail = f": {blocker} is a file, not a folder" if blocker is not None else ""
        raise BaselineError(f"no such baseline file or folder{detail}", path=path,
                            hint="pass a baselines folder or a JSON report")
    data = _read_json(path)  # read once, whichever it is
    if isinstance(data, dict) and "suites" in data:
        report = _report_from(data, path)
        try:
            return baselines_from_report(report)
        except BaselineError as error:
            raise BaselineError(error.message, path=path, hint=error.hint) from None
    baseline = _baseline_from(data, path)
    return {baseline.suite: baseline}


def _versioned_object(data: object, path: Path, what: str, supported: int, hint: str) -> dict[str, object]:
    """``data``, read from one of memgate's files, as a JSON object whose ``schema_version`` this
    memgate reads."""
    if not isinstance(data, dict):
        raise BaselineError(f"the file is not a {what} (not a JSON object)", path=path, hint=hint)
    _check_schema_version(data, supported, path, what, hint)
    return data


def _read_json(path: Path) -> object:
    # every figure is a tool's count: no more than 20 digits
    return read_json(path, error=BaselineError, hint=f"{REGENERATE}, or fix the merge conflict in it",
                     parse_int=count_of)


def _check_schema_version(data: dict[str, object], supported: int, path: Path, what: str, hint: str) -> None:
    """Accept exactly a whole-number ``schema_version`` this memgate reads (1 to ``supported``):
    pydantic's lax mode took "1", 1.0 and true as 1, and "999" as 999 without a word. A file without
    one is read as version 1, the first (pydantic's default for the field)."""
    if "schema_version" not in data:
        return
    version = data["schema_version"]
    if isinstance(version, int) and not isinstance(version, bool):
        if version > supported:
            raise BaselineError(f"the file has schema version {version}, newer than this memgate reads "
                                f"({supported}): it was made by a newer memgate", path=path, hint=UPGRADE)
        if version < 1:
            readable = "1" if supported == 1 else f"1 to {supported}"
            raise BaselineError(f"the file has schema version {version}, which no memgate wrote (this one "
                                f"reads {readable})", path=path, hint=hint)
        return
    raise BaselineError(f"the file is not a {what}: its schema_version is {_json_kind(version)}, not a "
                        "whole number", path=path, hint=hint)


def _json_kind(value: object) -> str:
    """``value`` as JSON shows it, and what kind of JSON value it is: '"1" (a string)'."""
    shown = json.dumps(value)
    shown = f"{shown[:20]}..." if len(shown) > 23 else shown
    kind = ("a boolean" if isinstance(value, bool) else "a string" if isinstance(value, str)
            else "a decimal number" if isinstance(value, float) else "null" if value is None
            else "a list" if isinstance(value, list) else "an object")
    return shown if value is None else f"{shown} ({kind})"


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(step) for step in problem["loc"])
    message = "unknown key" if problem["type"] == "extra_forbidden" else problem["msg"]
    return f"{where}: {message}" if where else message
