"""A suite's baseline: its metrics and its leak and error sites, made from a complete run."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TypeVar

from pydantic import Field

from memgate import __version__
from memgate.errors import BaselineError
from memgate.fingerprint import AllocWrappers, fingerprint, site_of
from memgate.gcpause import collector_paused
from memgate.metrics import MetricName
from memgate.records import (
    HeapSite,
    MetricSpread,
    Record,
    Report,
    SuiteRecord,
    SuiteStatus,
    TestFigures,
    ToolName,
)
from memgate.sites import ErrorSite, LeakSite, SiteKey, group_errors, group_leaks, top_frames
from memgate.tools._heapsites import refingerprinted as refingerprinted_heap_sites

BASELINE_SCHEMA_VERSION = 1


# A suite's metrics and its leak and error sites (fingerprint, kind, size, top frames), and which tool,
# tool version, commit and allocator wrappers made them (alloc_wrappers is written only when not empty,
# so the baselines of projects that use none stay as they were), and its figures per test (tests, written
# only when the suite has some, for the same reason). Sites keep no test: a site's identity is its
# fingerprint, whichever test reached it. (A comment, not a docstring: it would enter
# baseline.schema.json.)
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
    #: Test figures that differed between the tool's own repeats when the baseline was made.
    nondeterministic_tests: tuple[MetricSpread, ...] = ()
    source_commit: str | None = None
    alloc_wrappers: tuple[str, ...] = ()
    #: The suite's figures per test (test name -> metrics), compared test by test.
    tests: TestFigures = Field(default_factory=dict)
    memgate_version: str = __version__
    #: Where the baseline was read from, for error messages; never written.
    origin: str | None = Field(default=None, exclude=True)

    @classmethod
    def from_suite(cls, record: SuiteRecord, commit: str | None = None) -> Baseline:
        """The baseline a suite's run makes; a run that ``can_be_baseline`` refuses is an error."""
        _check_usable(record)
        wrappers = AllocWrappers(record.alloc_wrappers)
        with collector_paused():
            leaks = _sorted_sites(group_leaks(record.leaks, wrappers, tests=False))
            # Descriptions can carry addresses ("READ of size 4 at 0x6020..."): noise in a diff.
            errors = _sorted_sites(group_errors(record.errors, descriptions=False, wrappers=wrappers))
        return cls(
            suite=record.name,
            tool=record.tool,
            tool_version=record.tool_version,
            metrics=dict(record.metrics),
            leaks=tuple(leaks),
            errors=tuple(errors),
            heap_sites=record.heap_sites,
            nondeterministic_tests=record.nondeterministic_tests,
            source_commit=commit,
            alloc_wrappers=record.alloc_wrappers,
            tests={name: dict(metrics) for name, metrics in record.tests.items()},
        )

    def with_alloc_wrappers(self, globs: tuple[str, ...]) -> Baseline:
        """This baseline's sites (leaks, errors, heap sites) fingerprinted again as if made with the
        wrappers ``globs``, from the frames each site keeps (the first ``TOP_FRAMES`` of the project's
        code): the same rule as the run's. Sites that become one are summed. Frames dropped when the
        baseline was made (wrappers of its own list, frames past the kept ones) cannot come back, so
        some sites may still differ."""
        if globs == self.alloc_wrappers:
            return self
        wrappers = AllocWrappers(globs)
        return self.model_copy(update={"leaks": tuple(_refingerprinted(self.leaks, "leak", wrappers)),
                                       "errors": tuple(_refingerprinted(self.errors, "error", wrappers)),
                                       "heap_sites": refingerprinted_heap_sites(self.heap_sites, wrappers),
                                       "alloc_wrappers": globs})

    def to_json(self) -> str:
        """The stable file text: sorted keys, indent 2 (one item per line), ASCII only (any symbol name
        round-trips) and a trailing newline, so that a baseline update reads well as a diff in review."""
        data = self.model_dump(mode="json", exclude_none=True)
        # Written only when a suite has them: the baselines of other suites stay as they were.
        for optional in ("alloc_wrappers", "heap_sites", "tests", "nondeterministic_tests"):
            if not data[optional]:
                del data[optional]
        return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


_Site = TypeVar("_Site", LeakSite, ErrorSite)


def _sorted_sites(sites: dict[SiteKey, _Site]) -> list[_Site]:
    return sorted(sites.values(), key=lambda s: (s.kind, s.site, s.fingerprint))


def _refingerprinted(sites: Iterable[_Site], category: str, wrappers: AllocWrappers) -> list[_Site]:
    """``sites`` named and fingerprinted again from their frames, as the parsers do (``identify``)."""
    merged: dict[SiteKey, _Site] = {}
    for old in sites:
        name = site_of(old.frames, wrappers)
        new = old.model_copy(update={
            "site": name, "frames": top_frames(old.frames, wrappers),
            "fingerprint": fingerprint(f"{category}:{old.kind}", old.frames, name, wrappers)})
        key = (new.kind, new.fingerprint)
        merged[key] = new if key not in merged else _summed(merged[key], new)
    return _sorted_sites(merged)


def _summed(first: _Site, second: _Site) -> _Site:
    if isinstance(first, LeakSite) and isinstance(second, LeakSite):
        return first.model_copy(update={"bytes": first.bytes + second.bytes,
                                        "blocks": first.blocks + second.blocks})
    assert isinstance(first, ErrorSite) and isinstance(second, ErrorSite)
    return first.model_copy(update={"count": first.count + second.count})


def alloc_wrappers_note(baseline: Baseline, current: tuple[str, ...]) -> str | None:
    """What a comparison says when the baseline was made with other allocator wrappers than the run."""
    if baseline.alloc_wrappers == current:
        return None
    return (f"alloc_wrappers changed since the baseline ({_globs(baseline.alloc_wrappers)} then, "
            f"{_globs(current)} now): its sites were fingerprinted again with the current list from the "
            "frames it keeps, but a site may still show as new or fixed only because the list changed; "
            f"update the baseline (`memgate baseline update --suite {baseline.suite}`) to record the new "
            "list")


def _globs(globs: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(glob) for glob in globs) + "]" if globs else "none"


def can_be_baseline(record: SuiteRecord) -> bool:
    """Only a complete run that ended normally can be a baseline: a crashed or truncated run would
    record missing leaks as "fixed" and ratchet the gate open."""
    return record.status is SuiteStatus.OK and not record.incomplete_reasons


def unusable_for_baseline(suites: Iterable[SuiteRecord]) -> list[SuiteRecord]:
    """The suites whose run cannot become a baseline (see ``can_be_baseline``)."""
    return [suite for suite in suites if not can_be_baseline(suite)]


def with_memory_errors(suites: Iterable[SuiteRecord]) -> list[SuiteRecord]:
    """The suites whose run found memory errors: a baseline made from them would make those errors
    known, and let them pass from then on (leaks are different: a known leak is the ratchet's start)."""
    return [suite for suite in suites if suite.errors]


def first_error_site(record: SuiteRecord) -> ErrorSite:
    """The error site a message names: the first the tool reported."""
    sites = group_errors(record.errors[:1], wrappers=AllocWrappers(record.alloc_wrappers))
    return next(iter(sites.values()))


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
