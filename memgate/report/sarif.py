"""SARIF 2.1.0 for GitHub code scanning: the NEW leak and error sites, one result each."""

from __future__ import annotations

import json
import os
import re
from typing import Literal, TypedDict
from urllib.parse import quote

from memgate import __version__
from memgate.comparison import Comparison, SiteRow, SuiteComparison
from memgate.metrics import LOST_LEAK_KINDS
from memgate.report.common import (
    DEFAULT_FALLBACK_PATH,
    SourceLocation,
    clean,
    frame_text,
    repo_relative,
    site_id,
    site_summary,
    source_location,
)
from memgate.thresholds import Verdict

Root = str | os.PathLike[str]
Level = Literal["error", "warning", "note"]

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
#: The tool's home page shown by code scanning. TODO(lead): the project's real URL once it has one.
INFORMATION_URI = "https://pypi.org/project/memgate/"
MAX_RESULTS = 25_000  # GitHub: results per run
MAX_THREAD_FLOW_LOCATIONS = 1_000  # GitHub keeps this many per result
MAX_DESCRIPTION = 1_024  # GitHub: shortDescription and fullDescription


# --- the SARIF shapes used (the subset of the 2.1.0 schema that memgate writes) ---------------------


class _Text(TypedDict):
    text: str


class _ArtifactLocation(TypedDict):
    uri: str


class _Region(TypedDict):
    startLine: int


class _PhysicalLocation(TypedDict):
    artifactLocation: _ArtifactLocation
    region: _Region


class _Location(TypedDict, total=False):
    id: int
    physicalLocation: _PhysicalLocation
    message: _Text


class _ThreadFlowLocation(TypedDict):
    location: _Location


class _ThreadFlow(TypedDict):
    locations: list[_ThreadFlowLocation]


class _CodeFlow(TypedDict):
    threadFlows: list[_ThreadFlow]


class _Result(TypedDict, total=False):
    ruleId: str
    ruleIndex: int
    level: Level
    message: _Text
    locations: list[_Location]
    relatedLocations: list[_Location]
    partialFingerprints: dict[str, str]
    codeFlows: list[_CodeFlow]
    properties: dict[str, str | int]


class _Configuration(TypedDict):
    level: Level


class _Rule(TypedDict):
    id: str
    shortDescription: _Text
    fullDescription: _Text
    help: _Text
    defaultConfiguration: _Configuration
    properties: dict[str, list[str]]


class _Notification(TypedDict):
    level: Level
    message: _Text


class _Invocation(TypedDict, total=False):
    executionSuccessful: bool
    toolExecutionNotifications: list[_Notification]


# --- rendering -------------------------------------------------------------------------------------


# - A result is located at the site's first frame in the repository (repo-relative ``uri``,
#   ``region.startLine``); its stack, frames in the repository only (others never match a file), is in
#   ``codeFlows[0].threadFlows[0].locations``. A site with no frame in the repository is placed at line
#   1 of ``fallback_path`` (the config file), because GitHub refuses results without a location; its
#   message says so.
# - ``level`` is ``error`` for a site that fails the gate, ``warning`` for a new site of a kind that is
#   not gated. Known and fixed sites, and metrics, are not code-scanning alerts (the PR comment and the
#   other reports carry them); an empty run closes the alerts of earlier uploads, as it should.
# - Rules are one per category and kind present (``memgate/leak/definite``,
#   ``memgate/error/heap-buffer-overflow``), with the descriptions and help GitHub requires.
# - ``partialFingerprints.primaryLocationLineHash`` is set by memgate (GitHub computes one from the
#   line's text only when it is missing): the suite, kind and memgate's site fingerprint, which ignore
#   line numbers, so an alert survives unrelated edits above it.
# - GitHub's limits are kept: at most ``max_results`` results (25,000 per run; failing ones first, the
#   rest counted in a notification), 1,000 thread-flow locations, descriptions of 1,024 characters.
# - A suite that crashed, timed out or has incomplete figures is a tool execution notification.
def render_sarif(comparison: Comparison, repo_root: Root, *, fallback_path: str = DEFAULT_FALLBACK_PATH,
                 max_results: int = MAX_RESULTS) -> str:
    """The SARIF log as JSON text (one run). ``fallback_path`` (absolute, or relative to the
    repository root) is where results without a frame in the repository are placed."""
    fallback = SourceLocation(repo_relative(fallback_path, repo_root) or DEFAULT_FALLBACK_PATH, 1)
    sites = sorted((site for suite in comparison.suites for site in suite.sites if _is_finding(site)),
                   key=lambda site: -site.verdict.severity)  # stable: compare's order within a level
    kept, left_out = sites[:max_results], len(sites) - min(len(sites), max_results)
    rule_ids = sorted({_rule_id(site) for site in kept})
    rule_index = {rule_id: index for index, rule_id in enumerate(rule_ids)}
    first_site = {_rule_id(site): site for site in reversed(kept)}
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "memgate",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_rule(first_site[rule_id]) for rule_id in rule_ids],
            }},
            "invocations": [_invocation(comparison, left_out)],
            "results": [_result(site, rule_index[_rule_id(site)], repo_root, fallback) for site in kept],
        }],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _is_finding(site: SiteRow) -> bool:
    """New sites, and grown ones whose growth made their metric fail or warn."""
    return site.status == "new" or (site.status == "grown" and bool(site.verdict.severity))


def _rule_id(site: SiteRow) -> str:
    kind = _RULE_UNSAFE.sub("_", site.kind)[:100]
    return f"memgate/{site.category}/{kind}"


_RULE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _rule(site: SiteRow) -> _Rule:
    kind = clean(site.kind, limit=100)
    if site.category == "leak":
        short = f"New or grown {kind} memory leak"
        meaning = _LEAK_MEANING.get(site.kind, "leaked")
        full = (f"Memory allocated at this stack was {meaning} when the program exited, and this site "
                "is not in the suite's memgate baseline, or leaks more than it did there.")
        tags = ["memory", "leak"]
        level: Level = "error" if site.kind in LOST_LEAK_KINDS else "warning"
    else:
        short = f"New or more frequent memory error: {kind}"
        full = (f"The memory tool reported a {kind} error at this stack, and this site is not in the "
                "suite's memgate baseline, or occurs more often than there. Memory errors can corrupt "
                "data or crash the program.")
        tags = ["memory", "memory-error"]
        level = "error"
    return {
        "id": _rule_id(site),
        "shortDescription": {"text": short[:MAX_DESCRIPTION]},
        "fullDescription": {"text": full[:MAX_DESCRIPTION]},
        "help": {"text": _HELP},
        "defaultConfiguration": {"level": level},
        "properties": {"tags": tags},
    }


_LEAK_MEANING = {
    "definite": "definitely lost (no pointer to it was left)",
    "indirect": "lost through other lost blocks",
    "possible": "possibly lost (only pointers into its middle were left)",
    "reachable": "still reachable but never freed",
}

_HELP = (
    "memgate ran the suite under a memory tool and found this leak or error at a stack that its "
    "baseline (baselines/<suite>.json) does not list. Fix it: free the memory, or correct the invalid "
    "access, at the frames shown. If it is expected, accept it into the baseline with "
    "`memgate baseline update` on the default branch; a pull request cannot change its own baseline."
)


def _result(site: SiteRow, rule_index: int, repo_root: Root, fallback: SourceLocation) -> _Result:
    location = source_location(site.frames, repo_root)
    message = f"{site_summary(site)} (suite {clean(site.suite, limit=100)})"
    if location is None:
        message += ". No frame of its stack is in the repository: it is shown at the memgate config."
    result: _Result = {
        "ruleId": _rule_id(site),
        "ruleIndex": rule_index,
        "level": "error" if site.verdict is Verdict.FAIL else "warning",
        "message": {"text": message},
        "locations": [{"physicalLocation": _physical(location or fallback)}],
        "partialFingerprints": {"primaryLocationLineHash": site_id(site)[:32]},
        "properties": _site_properties(site),
    }
    flow = _thread_flow(site, repo_root)
    if flow:
        result["codeFlows"] = [{"threadFlows": [{"locations": flow}]}]
    related = _related_locations(site, repo_root)
    if related:
        result["relatedLocations"] = related
    return result


def _related_locations(site: SiteRow, repo_root: Root) -> list[_Location]:
    """An error's other stacks (where the block was freed, allocated), each at its first frame in
    the repository; a stack with no frame there has no place to be shown."""
    related: list[_Location] = []
    for stack in site.related:
        location = source_location(stack.stack, repo_root)
        frame = next((frame for frame in stack.stack if repo_relative(frame.file, repo_root)), None)
        if location is None or frame is None:
            continue
        text = f"{clean(stack.description, limit=300)}: {frame_text(frame, repo_root)}"
        related.append({"id": len(related), "physicalLocation": _physical(location),
                        "message": {"text": text}})
    return related


def _physical(location: SourceLocation) -> _PhysicalLocation:
    return {"artifactLocation": {"uri": quote(location.path, safe="/")},
            "region": {"startLine": location.line or 1}}


def _thread_flow(site: SiteRow, repo_root: Root) -> list[_ThreadFlowLocation]:
    """The stack, innermost first, frames in the repository only, numbered as memgate shows them."""
    flow: list[_ThreadFlowLocation] = []
    for index, frame in enumerate(site.frames):
        path = repo_relative(frame.file, repo_root)
        if path is None:
            continue
        line = frame.line if frame.line and frame.line > 0 else None
        flow.append({"location": {
            "physicalLocation": _physical(SourceLocation(path, line)),
            "message": {"text": f"#{index} {frame_text(frame, repo_root)}"},
        }})
    return flow[:MAX_THREAD_FLOW_LOCATIONS]


def _site_properties(site: SiteRow) -> dict[str, str | int]:
    properties: dict[str, str | int] = {"suite": clean(site.suite), "kind": clean(site.kind),
                                        "fingerprint": clean(site.fingerprint), "status": site.status}
    if site.test:
        properties["test"] = clean(site.test)
    for name, value in (("bytes", site.bytes), ("blocks", site.blocks), ("count", site.count)):
        if value is not None:
            properties[name] = value
    return properties


def _invocation(comparison: Comparison, left_out: int) -> _Invocation:
    notifications = [note for suite in comparison.suites for note in _suite_notifications(suite)]
    if left_out:
        text = f"{left_out:,} more new sites are not included (GitHub's limit per run): see the JSON report"
        notifications.append({"level": "warning", "message": {"text": text}})
    invocation: _Invocation = {"executionSuccessful": not comparison.incomplete and not any(
        suite.status.fails_gate for suite in comparison.suites)}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation


def _suite_notifications(suite: SuiteComparison) -> list[_Notification]:
    name = clean(suite.suite, limit=100)
    detail = f": {clean(suite.status_detail)}" if suite.status_detail else ""
    if suite.status.fails_gate:
        return [{"level": "error", "message": {"text": f"suite {name} {suite.status.value}{detail}"}}]
    if suite.incomplete:
        return [{"level": "warning", "message": {"text": f"suite {name}: incomplete figures{detail}"}}]
    return []
