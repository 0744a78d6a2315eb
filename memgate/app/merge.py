"""``memgate merge``: the JSON reports of several ``memgate run`` jobs (shards of one pipeline) made
into one report, which ``memgate compare`` judges as one ``memgate check`` of all the suites."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memgate.errors import ExitCode, UsageError, printable

if TYPE_CHECKING:
    from memgate.records import Environment, Report, SuiteRecord

_ONE_PIPELINE = "merge the reports of one pipeline's shards, all run on the same commit"
_SAME_MEMGATE = "run the shards and the merge with the same memgate version"


@dataclass(frozen=True)
class MergeOptions:
    reports: tuple[Path, ...]  # written by `memgate run --json` (or `check --json`, or an earlier merge)
    json: Path  # where the merged report goes


@dataclass(frozen=True)
class MergeResult:
    exit_code: int
    report: Report
    notes: tuple[str, ...]  # what the merged report differs in, said on stderr (tool versions)


def merge(options: MergeOptions) -> MergeResult:
    from memgate.baselines.files import read_report
    from memgate.report.json import write_report

    if not options.reports:
        raise UsageError("no report to merge", hint="give the JSON reports the shards wrote")
    reports = [(path, read_report(path)) for path in options.reports]
    _refuse_other_schemas(reports)
    _refuse_other_commits(reports)
    suites = _suites_once(reports)
    notes = _tool_version_notes(suites)
    report = reports[0][1].model_copy(update={
        "created_at": max(report.created_at for _, report in reports),
        "environment": _common_environment([report.environment for _, report in reports]),
        "suites": tuple(_with_notes(suite, notes) for suite, _ in suites),
    })
    noted = tuple(dict.fromkeys(note for suite_notes in notes.values() for note in suite_notes))
    for note in noted:
        print(printable(f"memgate: note: {note}"), file=sys.stderr)
    write_report(options.json, report)
    print(f"memgate: merged {len(suites)} suite{'s' if len(suites) != 1 else ''} of {len(reports)} "
          f"report{'s' if len(reports) != 1 else ''} into {options.json}", file=sys.stderr)
    return MergeResult(int(ExitCode.PASS), report, noted)


def _refuse_other_schemas(reports: Sequence[tuple[Path, Report]]) -> None:
    """Every report in the schema this memgate writes: one of another version (an older memgate, read
    back for compare) would be rewritten as this one's without a word."""
    from memgate.records import REPORT_SCHEMA_VERSION

    for path, report in reports:
        if report.schema_version != REPORT_SCHEMA_VERSION:
            raise UsageError(f"the report has schema version {report.schema_version} (memgate "
                             f"{report.memgate_version}), and this memgate merges version "
                             f"{REPORT_SCHEMA_VERSION} only", path=path, hint=_SAME_MEMGATE)


def _refuse_other_commits(reports: Sequence[tuple[Path, Report]]) -> None:
    first_path, first = reports[0]
    for path, report in reports[1:]:
        if report.environment.git_commit != first.environment.git_commit:
            raise UsageError(f"the reports are of different commits: {first_path} of "
                             f"{_commit(first)}, {path} of {_commit(report)}", hint=_ONE_PIPELINE)


def _commit(report: Report) -> str:
    return report.environment.git_commit or "no commit (not run in a git repository)"


def _suites_once(reports: Sequence[tuple[Path, Report]]) -> list[tuple[SuiteRecord, Path]]:
    """Each suite with the report it came from, in the reports' order. A suite in two reports must be
    the same record (the same report given twice, or an earlier merge): two runs of one suite with
    different figures cannot both be the verdict's."""
    kept: dict[str, tuple[SuiteRecord, Path]] = {}
    for path, report in reports:
        for suite in report.suites:
            earlier = kept.get(suite.name)
            if earlier is None:
                kept[suite.name] = (suite, path)
            elif earlier[0] != suite:
                raise UsageError(f"suite {suite.name!r} is in both {earlier[1]} and {path}, with "
                                 "different figures", hint="give each suite to one shard only "
                                                           "(memgate run --suite or --shard)")
    return list(kept.values())


def _tool_version_notes(suites: Sequence[tuple[SuiteRecord, Path]]) -> dict[str, tuple[str, ...]]:
    """Suite name -> the note its tool's versions differ between the reports (each suite keeps its
    own version): figures of two valgrind versions may differ for reasons of the tool, not the code."""
    by_tool: dict[str, dict[str, list[str]]] = {}  # tool -> version -> "suite (report)"
    for suite, path in suites:
        if suite.tool_version is not None:
            by_tool.setdefault(suite.tool, {}).setdefault(suite.tool_version, []).append(
                f"{suite.name} ({path})")
    notes: dict[str, tuple[str, ...]] = {}
    for tool, versions in sorted(by_tool.items()):
        if len(versions) > 1:
            shown = "; ".join(f"{version}: {', '.join(names)}" for version, names in versions.items())
            note = f"the shards ran {tool} in {len(versions)} versions ({shown})"
            for suite, _ in suites:
                if suite.tool == tool:
                    notes[suite.name] = (*notes.get(suite.name, ()), note)
    return notes


def _with_notes(suite: SuiteRecord, notes: dict[str, tuple[str, ...]]) -> SuiteRecord:
    added = [note for note in notes.get(suite.name, ()) if note not in suite.notes]
    return suite.model_copy(update={"notes": (*suite.notes, *added)}) if added else suite


def _common_environment(environments: Sequence[Environment]) -> Environment:
    """What the shards share (the commit, checked above); a field in which they differ is left out,
    as the report's fields are best effort."""
    first = environments[0]
    same = {name: value for name, value in first if all(getattr(env, name) == value for env in environments)}
    return first.model_copy(update={name: same.get(name) for name in type(first).model_fields})
