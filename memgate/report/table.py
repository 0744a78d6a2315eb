"""The terminal report: one table of metrics, then the new leak and error sites with their frames,
then the verdict line. Every tool-provided string is cleaned (no escape sequence reaches the terminal)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memgate.report.common import (
    VERDICT_WORD,
    clean,
    format_delta,
    format_figure,
    gone_tests_text,
    headline,
    heap_growth_text,
    in_test,
    moved_text,
    site_growth,
    site_size,
    site_title,
    status_word,
    suites_in_order,
)
from memgate.thresholds import Verdict

# The comparison (and its baseline models) only in annotations, tabulate only when a table is printed:
# ``memgate run`` prints its table without either, and pays neither import.
if TYPE_CHECKING:
    from memgate.comparison import Comparison, MetricRow, SiteRow, SuiteComparison
    from memgate.records import Report

#: New sites listed per suite; the JSON and Markdown reports keep the rest.
MAX_SITES = 20
#: Changed tests whose rows are listed per suite; the unchanged ones are one line, whatever their count.
MAX_TESTS = 20
HEADERS = ("suite", "metric", "baseline", "current", "delta", "verdict")


def render_table(comparison: Comparison, *, max_sites: int = MAX_SITES) -> str:
    sections = [_metrics_table(comparison)]
    causes = _cause_lines(comparison)
    if causes:
        sections.append("Why:\n" + "\n".join(causes))
    new_sites = _site_lines(comparison, "new", max_sites)
    if new_sites:
        sections.append("New leak and error sites:\n" + "\n".join(new_sites))
    heap = [f"  {clean(suite.suite)}: {clean(heap_growth_text(item), limit=1000)}"
            for suite in suites_in_order(comparison) for item in suite.heap_growth]
    if heap:
        sections.append("Heap growth, the allocation stacks whose bytes grew most:\n" + "\n".join(heap))
    grown = _site_lines(comparison, "grown", max_sites)
    if grown:
        sections.append("Grown (known sites with more than their baseline):\n" + "\n".join(grown))
    fixed = _site_lines(comparison, "fixed", max_sites, frames=False)
    if fixed:
        sections.append("Fixed:\n" + "\n".join(fixed))
    notes = _notes(comparison)
    if notes:
        sections.append("Notes:\n" + "\n".join(notes))
    sections.append(verdict_line(comparison))
    return "\n\n".join(sections)


def verdict_line(comparison: Comparison) -> str:
    return f"memgate: {comparison.outcome.upper()}: {clean(headline(comparison), limit=2000)}"


def _metrics_table(comparison: Comparison) -> str:
    rows: list[list[str]] = []
    for suite in suites_in_order(comparison):
        first = len(rows)
        rows.extend(_status_rows(suite))
        rows.extend(_metric_line(row) for row in suite.rows)
        rows.extend(_test_lines(suite))
        if len(rows) == first:
            rows.append(["", "(no figures)", "-", "-", "-", VERDICT_WORD[suite.verdict]])
        rows[first][0] = clean(suite.suite) + ("" if suite.has_baseline else " (new)")
        if suite.nondeterministic:
            rows[first][0] += " (nondeterministic)"
    if not rows:
        return "no suites were compared"
    from tabulate import tabulate

    return tabulate(rows, headers=HEADERS, tablefmt="simple", disable_numparse=True)


def _metric_line(row: MetricRow) -> list[str]:
    return ["", row.metric, format_figure(row.metric, row.baseline), format_figure(row.metric, row.current),
            format_delta(row), _verdict_word(row)]


def _test_lines(suite: SuiteComparison) -> list[list[str]]:
    """The rows of each changed test (at most ``MAX_TESTS``) under the suite's, the test named in the
    first column; the unchanged tests as one line with their count."""
    results = suite.per_test()
    changed = [test for test in results if test.changed]
    lines: list[list[str]] = []
    for test in changed[:MAX_TESTS]:
        first = len(lines)
        lines.extend(_metric_line(row) for row in test.rows)
        # tabulate strips leading spaces: the word "test" tells a test's rows from another suite's.
        lines[first][0] = f"test {clean(test.test, limit=100)}" + (" (new)" if test.new else "")
    if len(changed) > MAX_TESTS:
        more = len(changed) - MAX_TESTS
        lines.append([f"{more:,} more changed test{'s' if more != 1 else ''} (see the JSON report)", "",
                      "", "", "", ""])
    unchanged = len(results) - len(changed)
    if unchanged:
        lines.append([f"{unchanged:,} unchanged test{'s' if unchanged != 1 else ''}", "", "", "", "",
                      VERDICT_WORD[Verdict.PASS]])
    return lines


def _verdict_word(row: MetricRow) -> str:
    """"pass (noise)" when the change is inside the metric's noise floor."""
    return VERDICT_WORD[row.verdict] + (" (noise)" if row.within_noise else "")


def _status_rows(suite: SuiteComparison) -> list[list[str]]:
    """A suite that did not end normally says so in the table itself, not only in a note."""
    if not suite.incomplete and not suite.status.fails_gate:
        return []
    verdict = VERDICT_WORD[Verdict.FAIL] if suite.status.fails_gate else "INCOMPLETE"
    return [["", "status", "ok", status_word(suite), "-", verdict]]


def _cause_lines(comparison: Comparison) -> list[str]:
    """Each site whose growth made metrics fail or warn, with those metrics (a leak's bytes and blocks
    on one line)."""
    lines: list[str] = []
    for suite in suites_in_order(comparison):
        metrics: dict[tuple[str, str, str], list[str]] = {}
        for row in (*suite.rows, *suite.test_rows):
            for cause in row.causes:
                where = f"{suite.suite}{in_test(row.test)}"
                metrics.setdefault((where, cause, VERDICT_WORD[row.verdict]), []).append(row.metric)
        lines += [f"  {clean(where)}: {', '.join(names)} {verdict}: {clean(cause, limit=1000)}"
                  for (where, cause, verdict), names in metrics.items()]
    return lines


def _site_lines(comparison: Comparison, status: str, max_sites: int, *, frames: bool = True) -> list[str]:
    lines: list[str] = []
    for suite in suites_in_order(comparison):
        sites = [site for site in suite.sites if site.status == status]
        for site in sites[:max_sites]:
            lines.append(_site_line(suite.suite, site))
            if frames:
                lines.extend(f"        {clean(frame.label())}" for frame in site.frames)
                for related in site.related:  # where the block was freed, allocated
                    lines.append(f"      {clean(related.description)}:")
                    lines.extend(f"        {clean(frame.label())}" for frame in related.stack)
        if len(sites) > max_sites:
            lines.append(f"  {clean(suite.suite)}: {len(sites) - max_sites:,} more (see the JSON report)")
    return lines


def _site_line(suite: str, site: SiteRow) -> str:
    description = f" ({clean(site.description)})" if site.description else ""
    size = site_growth(site) if site.status == "grown" else site_size(site)
    return (f"  {VERDICT_WORD[site.verdict]:<8} {clean(suite)}: {clean(site_title(site))}, {size}"
            f"{description} at {clean(site.site)}{clean(in_test(site.test))}{moved_text(site)}")


def _notes(comparison: Comparison) -> list[str]:
    lines = [f"  {clean(suite.suite)}: {clean(note, limit=2000)}" for suite in suites_in_order(comparison)
             for note in (*suite.notes, *_gone_note(suite))]
    if comparison.unmatched_baselines:
        names = ", ".join(clean(name) for name in comparison.unmatched_baselines)
        lines.append(f"  baselines not compared (their suites did not run): {names}")
    return lines


def _gone_note(suite: SuiteComparison) -> list[str]:
    return [gone_tests_text(suite)] if suite.gone_tests else []


def render_suites(report: Report) -> str:
    """What ``memgate run`` prints: every suite's figures, without a comparison."""
    rows: list[list[str]] = []
    for suite in report.suites:
        status = suite.status.value + (f" ({clean(suite.status_detail)})" if suite.status_detail else "")
        if suite.runs:
            status += f", {len(suite.runs)} runs"
        if suite.nondeterministic:
            varied = ", ".join(spread.metric for spread in suite.nondeterministic)
            status += f", nondeterministic: {varied}"
        head = [clean(suite.name), clean(suite.tool), status]
        if not suite.metrics:
            rows.append([*head, "(no figures)", "-"])
        for index, (metric, value) in enumerate(suite.metrics.items()):
            rows.append([*(head if index == 0 else ["", "", ""]), metric, format_figure(metric, value)])
    if not rows:
        return "no suites were run"
    from tabulate import tabulate

    return tabulate(rows, headers=("suite", "tool", "status", "metric", "value"), tablefmt="simple",
                    disable_numparse=True)
