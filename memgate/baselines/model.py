"""A suite's baseline: its metrics and its leak and error sites, made from a complete run."""

from __future__ import annotations

import json
from collections.abc import Iterable

from pydantic import Field

from memgate import __version__
from memgate.errors import BaselineError
from memgate.gcpause import collector_paused
from memgate.metrics import MetricName
from memgate.records import HeapSite, Record, Report, SuiteRecord, SuiteStatus, ToolName
from memgate.sites import ErrorSite, LeakSite, group_errors, group_leaks

BASELINE_SCHEMA_VERSION = 1


# A suite's metrics and its leak and error sites (fingerprint, kind, size, top frames), and which tool,
# tool version and commit made them. (A comment, not a docstring: it would enter baseline.schema.json.)
class Baseline(Record):
    schema_version: int = BASELINE_SCHEMA_VERSION
    suite: str
    tool: ToolName
    tool_version: str | None = None
    metrics: dict[MetricName, int] = Field(default_factory=dict)
    leaks: tuple[LeakSite, ...] = ()
    errors: tuple[ErrorSite, ...] = ()
    #: Of a heap profiler that records stacks: the stacks that allocated most (growth is traced to them).
    heap_sites: tuple[HeapSite, ...] = ()
    source_commit: str | None = None
    memgate_version: str = __version__
    #: Where the baseline was read from, for error messages; never written.
    origin: str | None = Field(default=None, exclude=True)

    @classmethod
    def from_suite(cls, record: SuiteRecord, commit: str | None = None) -> Baseline:
        """The baseline a suite's run makes; a run that ``can_be_baseline`` refuses is an error."""
        _check_usable(record)
        with collector_paused():
            leaks = sorted(group_leaks(record.leaks).values(), key=lambda s: (s.kind, s.site, s.fingerprint))
            # Descriptions can carry addresses ("READ of size 4 at 0x6020..."): noise in a diff.
            errors = sorted(group_errors(record.errors, descriptions=False).values(),
                            key=lambda s: (s.kind, s.site, s.fingerprint))
        return cls(
            suite=record.name,
            tool=record.tool,
            tool_version=record.tool_version,
            metrics=dict(record.metrics),
            leaks=tuple(leaks),
            errors=tuple(errors),
            heap_sites=record.heap_sites,
            source_commit=commit,
        )

    def to_json(self) -> str:
        """The stable file text: sorted keys, indent 2 (one item per line), ASCII only (any symbol name
        round-trips) and a trailing newline, so that a baseline update reads well as a diff in review."""
        data = self.model_dump(mode="json", exclude_none=True)
        if not data["heap_sites"]:  # only heap profilers have them: other baselines stay as they were
            del data["heap_sites"]
        return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def can_be_baseline(record: SuiteRecord) -> bool:
    """Only a complete run that ended normally can be a baseline: a crashed or truncated run would
    record missing leaks as "fixed" and ratchet the gate open."""
    return record.status is SuiteStatus.OK and not record.incomplete_reasons


def unusable_for_baseline(suites: Iterable[SuiteRecord]) -> list[SuiteRecord]:
    """The suites whose run cannot become a baseline (see ``can_be_baseline``)."""
    return [suite for suite in suites if not can_be_baseline(suite)]


def _check_usable(record: SuiteRecord) -> None:
    if can_be_baseline(record):
        return
    if record.status is not SuiteStatus.OK:
        detail = f" ({record.status_detail})" if record.status_detail else ""
        problem = f"suite {record.name!r} ended with status {record.status.value}{detail}"
    else:
        problem = f"suite {record.name!r} has incomplete output: {record.incomplete_reasons[0]}"
    raise BaselineError(
        f"{problem}: its figures cannot be a baseline",
        hint="fix the suite so that it runs to the end, then update the baseline again",
    )


def baselines_from_report(report: Report, commit: str | None = None) -> dict[str, Baseline]:
    """A JSON report used as the baseline side of ``memgate compare``: one baseline per suite."""
    commit = commit if commit is not None else report.environment.git_commit
    return {suite.name: Baseline.from_suite(suite, commit) for suite in report.suites}
