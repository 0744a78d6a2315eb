"""GitLab code quality (``artifacts:reports:codequality``): a JSON array of CodeClimate issues."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Literal, TypedDict

from memgate.comparison import Comparison, MetricRow, SiteRow, SuiteComparison
from memgate.report.common import (
    DEFAULT_FALLBACK_PATH,
    SourceLocation,
    clean,
    finding_id,
    metric_summary,
    repo_relative,
    site_id,
    site_summary,
    source_location,
)
from memgate.thresholds import Verdict

Severity = Literal["info", "minor", "major", "critical", "blocker"]
Root = str | os.PathLike[str]

#: CodeClimate fingerprints are 32 hex digits (an MD5 in its own engines); ours are SHA-256 cut there.
FINGERPRINT_LENGTH = 32


class _Lines(TypedDict):
    begin: int


class _Location(TypedDict):
    path: str
    lines: _Lines


class _Issue(TypedDict):
    type: Literal["issue"]
    check_name: str
    description: str
    categories: list[str]
    severity: Severity
    fingerprint: str
    location: _Location


# What is reported, and how severe (decisions):
#
# - new leak or error site that fails the gate: ``critical`` for a memory error (it can corrupt
#   memory or crash), ``major`` for a leak;
# - new site of a kind that is not gated (e.g. a possible leak): ``minor``;
# - known site (in the baseline, accepted): ``info``, so it stays visible in the full report while the
#   widget, comparing with the target branch, does not show it as new; fixed sites are gone from the
#   code, so they are not issues;
# - metric over its fail threshold: ``major``; over its warn threshold (or no longer measured):
#   ``minor``; a test's metric (per-test figures) likewise, as its own issue naming the test;
# - suite that crashed, timed out or failed: ``critical``; incomplete figures: ``major``.
#
# Location: a site is placed at its first frame in the repository. GitLab requires a location, so a
# site with no frame in the repository, a metric and a suite status are placed at line 1 of
# ``fallback_path`` (the memgate config file), and the description says why.
def render_codequality(comparison: Comparison, repo_root: Root, *,
                       fallback_path: str = DEFAULT_FALLBACK_PATH) -> str:
    """The report as JSON text (UTF-8, no BOM: write it with ``encoding="utf-8"``).

    ``fallback_path`` (absolute, or relative to the repository root) is where findings without a
    place in the repository go: pass the config file."""
    fallback = SourceLocation(repo_relative(fallback_path, repo_root) or DEFAULT_FALLBACK_PATH, 1)
    issues = [issue for suite in comparison.suites for issue in _suite_issues(suite, repo_root, fallback)]
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


def _suite_issues(suite: SuiteComparison, repo_root: Root, fallback: SourceLocation) -> Iterator[_Issue]:
    status = _status_issue(suite, fallback)
    if status is not None:
        yield status
    for row in (*suite.rows, *suite.test_rows):
        metric = _metric_issue(row, fallback)
        if metric is not None:
            yield metric
    for site in suite.sites:
        issue = _site_issue(site, repo_root, fallback)
        if issue is not None:
            yield issue


def _status_issue(suite: SuiteComparison, fallback: SourceLocation) -> _Issue | None:
    detail = f": {suite.status_detail}" if suite.status_detail else ""
    severity: Severity
    if suite.status.fails_gate:
        word, severity, text = suite.status.value, "critical", f"the suite {suite.status.value}{detail}"
    elif suite.incomplete:
        word, severity, text = "incomplete", "major", f"incomplete figures, no verdict{detail}"
    else:
        return None
    return _issue(f"memgate/suite/{word}", f"[{suite.suite}] {text}", severity,
                  finding_id("suite", suite.suite, word), fallback)


def _metric_issue(row: MetricRow, fallback: SourceLocation) -> _Issue | None:
    severity: Severity
    if row.verdict is Verdict.FAIL:
        severity, word = "major", "over its fail threshold"
    elif row.verdict is Verdict.WARN:
        severity, word = "minor", "over its warn threshold" if row.current is not None else "not measured"
    else:
        return None
    # A test's figure is its own finding (the suite's total keeps the identity it always had).
    identity = finding_id("metric", row.suite, row.metric, *((row.test,) if row.test is not None else ()))
    return _issue(f"memgate/metric/{row.metric}", f"[{row.suite}] {word}: {metric_summary(row)}", severity,
                  identity, fallback, category=_metric_category(row))


def _metric_category(row: MetricRow) -> str:
    """Leak and error counts are bugs; heap, RSS and call figures are performance."""
    return "Bug Risk" if row.metric.startswith("leak_") or row.metric == "errors" else "Performance"


def _site_issue(site: SiteRow, repo_root: Root, fallback: SourceLocation) -> _Issue | None:
    if site.status == "fixed":
        return None
    severity = _site_severity(site)
    location = source_location(site.frames, repo_root)
    where = "" if location else " (no frame of its stack is in the repository)"
    description = f"[{site.suite}] {site_summary(site)}{where}"
    return _issue(f"memgate/{site.category}/{site.kind}", description, severity, site_id(site),
                  location or fallback)


def _site_severity(site: SiteRow) -> Severity:
    if site.status == "known" or (site.status == "grown" and not site.verdict.severity):
        return "info"
    if site.verdict is Verdict.FAIL:
        return "critical" if site.category == "error" else "major"
    return "minor"


# GitLab needs ``description``, ``check_name``, ``fingerprint``, ``severity`` and ``location.path`` with
# ``location.lines.begin`` on every issue; ``type`` and ``categories`` are added for other CodeClimate
# readers. The MR widget compares the MR's issues with the target branch's by fingerprint, so a fingerprint
# depends only on what stays the same across runs: the suite and memgate's site fingerprint (no line
# numbers), the suite and metric name, or the suite and its status.
def _issue(check: str, description: str, severity: Severity, identity: str, location: SourceLocation,
           *, category: str = "Bug Risk") -> _Issue:
    return {
        "type": "issue",
        "check_name": clean(check, limit=200),
        "description": clean(description, limit=1000),
        "categories": [category],
        "severity": severity,
        "fingerprint": identity[:FINGERPRINT_LENGTH],
        "location": {"path": location.path, "lines": {"begin": location.line or 1}},
    }
