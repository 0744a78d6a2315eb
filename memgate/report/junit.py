"""JUnit XML for GitLab's ``artifacts:reports:junit`` and the GitHub test-report actions."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

from memgate.comparison import Comparison, MetricRow, SiteRow, SuiteComparison, TestResult
from memgate.records import SuiteStatus
from memgate.report.common import (
    VERDICT_WORD,
    clean,
    frame_text,
    gone_tests_text,
    metric_summary,
    site_size,
    site_summary,
    source_location,
    status_word,
)
from memgate.thresholds import Verdict

Root = str | os.PathLike[str]

#: Longest failure text kept (a stack of 5 frames is far less; notes can be long).
MAX_TEXT = 20_000
_XML_UNSAFE = re.compile("[\ufffe\uffff]")

_ERROR_TYPE = {
    SuiteStatus.CRASHED: "SuiteCrashed",
    SuiteStatus.TIMEOUT: "SuiteTimeout",
    SuiteStatus.FAILED: "SuiteFailed",
}


@dataclass
class _Counts:
    tests: int = 0
    failures: int = 0
    errors: int = 0

    def add(self, other: _Counts) -> None:
        self.tests += other.tests
        self.failures += other.failures
        self.errors += other.errors


@dataclass
class _Case:
    name: str
    file: str | None = None
    line: int | None = None
    #: ("failure" | "error", type, one-line message, text)
    outcome: tuple[str, str, str, str] | None = None
    output: list[str] = field(default_factory=list)


# Layout: ``<testsuites name="memgate">``, one ``<testsuite name="memgate.<suite>">`` per suite, and in
# it testcases of ``classname="memgate.<suite>"``:
#
# - ``run``: errors (``<error>``) when the suite crashed, timed out, failed, or its figures are
#   incomplete; its ``system-out`` holds the suite's notes;
# - one per metric row, named after the metric: a ``<failure type="MemoryRegression">`` when it
#   crossed a fail threshold;
# - one per leak or error site, named ``<category> <kind> at <site>``: a new site that fails the gate
#   is a ``<failure type="MemoryRegression">`` whose text is the stack;
# - one per test of a suite with per-test figures, named after the test: a ``<failure>`` with the
#   test's failing rows when one of them failed (``run``'s output lists the gone tests).
#
# Decisions:
#
# - A warning is not a failure (the gate passes) and not ``<skipped>`` (which says the check did not
#   run, and GitLab counts it so): the testcase passes with ``WARN: ...`` in its ``system-out``. With
#   ``fail_on_warn`` (the gate's ``--fail-on warn``) it is a ``<failure type="MemoryWarning">``, so the
#   report agrees with the exit code.
# - ``file`` and ``line`` are the first frame in the repository (GitLab reads ``file``; reporters such
#   as action-junit-report read both). Frames outside it are shown in the text, never as ``file``.
# - No ``time``: the comparison has no durations, and a made-up 0 would be worse than none.
def render_junit(comparison: Comparison, repo_root: Root, *, fail_on_warn: bool = False) -> str:
    """The JUnit XML document (UTF-8 declared; write it as UTF-8)."""
    root = ET.Element("testsuites", name="memgate")
    total = _Counts()
    for suite in comparison.suites:
        element, counts = _testsuite(suite, repo_root, fail_on_warn)
        root.append(element)
        total.add(counts)
    _set_counts(root, total)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _set_counts(element: ET.Element, counts: _Counts) -> None:
    element.set("tests", str(counts.tests))
    element.set("failures", str(counts.failures))
    element.set("errors", str(counts.errors))


def _testsuite(suite: SuiteComparison, repo_root: Root, fail_on_warn: bool) -> tuple[ET.Element, _Counts]:
    classname = _attribute(f"memgate.{suite.suite}")
    cases = [_run_case(suite)]
    cases += [_metric_case(row, fail_on_warn) for row in suite.rows]
    cases += _unique([_site_case(site, repo_root, fail_on_warn) for site in suite.sites], suite.sites)
    cases += _test_cases(suite.per_test(), {case.name for case in cases}, fail_on_warn)
    outcomes = [case.outcome[0] for case in cases if case.outcome is not None]
    counts = _Counts(tests=len(cases), failures=outcomes.count("failure"), errors=outcomes.count("error"))
    element = ET.Element("testsuite", name=classname)
    _set_counts(element, counts)
    element.set("skipped", "0")
    element.extend(_testcase(case, classname) for case in cases)
    return element, counts


def _testcase(case: _Case, classname: str) -> ET.Element:
    element = ET.Element("testcase", name=_attribute(case.name), classname=classname)
    if case.file is not None:
        element.set("file", _attribute(case.file))
        if case.line is not None:
            element.set("line", str(case.line))
    if case.outcome is not None:
        tag, kind, message, text = case.outcome
        child = ET.SubElement(element, tag, type=kind, message=_attribute(message))
        child.text = _text(text)
    if case.output:
        ET.SubElement(element, "system-out").text = _text("\n".join(case.output))
    return element


# --- the testcases -------------------------------------------------------------------------------


def _run_case(suite: SuiteComparison) -> _Case:
    """The suite's own testcase: an error when it did not end normally; its notes either way."""
    case = _Case("run")
    detail = suite.status_detail or ""
    all_notes = [*suite.notes, *([gone_tests_text(suite, shown=1000)] if suite.gone_tests else [])]
    notes = "\n".join(all_notes)
    if suite.status.fails_gate:
        message = f"the suite {suite.status.value}" + (f": {detail}" if detail else "")
        case.outcome = ("error", _ERROR_TYPE[suite.status], message, notes or message)
    elif suite.incomplete:
        message = f"incomplete figures: {detail or 'the tool output is missing or truncated'}"
        case.outcome = ("error", "IncompleteFigures", message, notes or message)
    else:
        case.output = [f"{suite.tool}: {status_word(suite)}", *all_notes]
    return case


def _metric_case(row: MetricRow, fail_on_warn: bool) -> _Case:
    case = _Case(row.metric)
    summary = metric_summary(row)
    if row.verdict is Verdict.FAIL:
        case.outcome = ("failure", "MemoryRegression", summary, summary)
    elif row.verdict is Verdict.WARN and fail_on_warn:
        case.outcome = ("failure", "MemoryWarning", summary, summary)
    else:
        case.output = [f"{VERDICT_WORD[row.verdict]}: {summary}"]
    return case


def _test_cases(tests: Iterable[TestResult], taken: set[str], fail_on_warn: bool) -> list[_Case]:
    """One testcase per test, named after it (" (test)" added if that name is a metric's or a
    site's); failing with the rows that failed (or warned, with ``fail_on_warn``)."""
    cases = []
    for test in tests:
        name = test.test if _attribute(test.test) not in taken else f"{test.test} (test)"
        case = _Case(name)
        failing = [row for row in test.rows
                   if row.verdict is Verdict.FAIL or (row.verdict is Verdict.WARN and fail_on_warn)]
        summaries = [metric_summary(row) for row in failing]
        lines = [f"{VERDICT_WORD[row.verdict]}: {metric_summary(row)}" for row in test.rows]
        if test.new:
            lines.insert(0, "new test: no baseline for it, only absolute limits apply")
        if failing:
            kind = "MemoryRegression" if test.verdict is Verdict.FAIL else "MemoryWarning"
            case.outcome = ("failure", kind, "; ".join(summaries), "\n".join(lines))
        else:
            case.output = lines
        cases.append(case)
    return cases


def _site_case(site: SiteRow, repo_root: Root, fail_on_warn: bool) -> _Case:
    location = source_location(site.frames, repo_root)
    case = _Case(f"{site.category} {site.kind} at {site.site}",
                 file=location.path if location else None, line=location.line if location else None)
    summary = site_summary(site)
    stack = [f"  at {frame_text(frame, repo_root)}" for frame in site.frames] or ["  (no stack)"]
    details = "\n".join([summary, *stack])
    if site.verdict is Verdict.FAIL:
        case.outcome = ("failure", "MemoryRegression", summary, details)
    elif site.verdict is Verdict.WARN and fail_on_warn:
        case.outcome = ("failure", "MemoryWarning", summary, details)
    else:
        case.output = [details, _site_note(site)]
    return case


def _site_note(site: SiteRow) -> str:
    """Why a site that is not a failure is not one."""
    if site.status == "known":
        before = site_size(site.model_copy(update={
            "bytes": site.baseline_bytes, "blocks": site.baseline_blocks, "count": site.baseline_count}))
        return f"in the baseline ({before}): accepted, it does not fail the gate"
    if site.status == "grown":
        return "grown since the baseline, within the limits of its metric"
    if site.status == "fixed":
        return "in the baseline and gone from this run: fixed"
    if site.category == "leak":
        return "not gated: this leak kind is not in fail_on_new_leak_kinds"
    return "not gated: fail_on_new_errors is off"


# Testcase names stay the same whatever the site's status (new, known, fixed), so GitLab, which
# compares the MR's report with the target branch's by suite, class and name, shows a leak that
# became new as "newly failed". Names are unique within a suite (GitLab keeps only the first of
# duplicates); a collision, possible only after shortening, gets the site's fingerprint appended.
def _unique(cases: list[_Case], sites: Iterable[SiteRow]) -> list[_Case]:
    """Site names are unique unless shortening made two equal: those get the fingerprint. ("run"
    and the metric names cannot collide with them: site names contain " at ".)"""
    seen: set[str] = set()
    for case, site in zip(cases, sites, strict=True):
        if _attribute(case.name) in seen:
            case.name = f"{clean(case.name, limit=900)} [{site.fingerprint}]"
        seen.add(_attribute(case.name))
    return cases


# --- XML-safe text ---------------------------------------------------------------------------------


def _attribute(text: str) -> str:
    """One line: GitLab shows names and messages on one line; newlines in attributes are lost."""
    return _XML_UNSAFE.sub("\ufffd", clean(text, limit=1000))


# Every string is made XML-safe: characters XML 1.0 forbids and terminal controls become U+FFFD.
def _text(text: str) -> str:
    lines = [_XML_UNSAFE.sub("\ufffd", clean(line, limit=2000)) for line in text.splitlines()]
    body = "\n".join(lines)
    return body if len(body) <= MAX_TEXT else body[: MAX_TEXT - 1] + "\u2026"
