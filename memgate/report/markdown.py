"""The PR/MR comment: a hidden marker, the verdict first, then only what changed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memgate import __version__
from memgate.comparison import Comparison, MetricRow, SiteRow, SuiteComparison, TestResult
from memgate.report.common import (
    changes_summary,
    clean,
    format_delta,
    format_figure,
    headline,
    heap_growth_text,
    moved_text,
    site_growth,
    site_size,
    site_title,
    status_word,
    suites_in_order,
)
from memgate.report.trend import trend_sections
from memgate.thresholds import Verdict

if TYPE_CHECKING:
    from memgate.baselines.history import BaselineHistory

MARKER = "<!-- memgate:report -->"
DEFAULT_MAX_CHARS = 60_000  # GitHub refuses bodies over 65,536 characters; leave room for a wrapper
MIN_MAX_CHARS = 2_000
#: New sites shown per suite (each in its own <details>); the full report keeps every one.
MAX_SITES = 50
#: Changed tests whose rows are shown per suite; unchanged tests are one line, whatever their count.
MAX_TESTS = 30

EMOJI: dict[Verdict, str] = {
    Verdict.PASS: "✅",
    Verdict.WARN: "⚠️",
    Verdict.FAIL: "❌",
    Verdict.IMPROVED: "📉",
    Verdict.NEW: "🆕",
}
TITLE = {
    "fail": "❌ memgate: the gate failed",
    "incomplete": "⏳ memgate: incomplete",
    "warn": "⚠️ memgate: passed with warnings",
    "pass": "✅ memgate: passed",
}

# --- escaping --------------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")
_MENTION = re.compile(r"@(?=[\w-])")  # @user, @org/team: a zero-width space after @ breaks the mention
_ISSUE_REF = re.compile(r"#(?=\d)")  # #123 would link (and notify) an issue
_AUTOLINK = re.compile(r"(?i)(://|www\.)")
# Links, code spans and table pipes stay inert even for a renderer that parses Markdown in HTML.
_HTML_ENTITIES = {ord(char): f"&#{ord(char)};" for char in "\\`[]()|!"}
_HTML_ENTITIES.update({ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"})


# Every string a tool or a user provided (function names, paths, suite names, notes) is escaped for its
# context, so that no @mention, issue reference, raw HTML or broken table can come through.
def escape_text(text: str, limit: int = 300) -> str:
    """A tool-provided string as inert Markdown inline text (headings, lists, table cells)."""
    text = clean(text, limit)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _break_links(_MARKDOWN_SPECIAL.sub(r"\\\1", text))


def escape_html(text: str, limit: int = 300) -> str:
    """A tool-provided string inside our own HTML (``<summary>``). Markdown is not parsed there by
    CommonMark, but its characters become entities anyway, in case a renderer does."""
    return _break_links(clean(text, limit)).translate(_HTML_ENTITIES)


def break_mentions(text: str) -> str:
    """@user and @org/team stay as text instead of notifying anyone."""
    return _MENTION.sub("@\u200b", text)


def _break_links(text: str) -> str:
    text = break_mentions(text)
    text = _ISSUE_REF.sub("#\u200b", text)
    return _AUTOLINK.sub(lambda match: match[1][0] + "\u200b" + match[1][1:], text)


def code_block(lines: Sequence[str]) -> str:
    """A fenced block (nothing in it is interpreted); the fence is longer than any backtick run inside.
    Mentions are broken here too: a forge that links them in code would notify someone."""
    body = [_MENTION.sub("@\u200b", clean(line)) for line in lines]
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([fence + "text", *body, fence])


# --- rendering -------------------------------------------------------------------------------------


# Unchanged metrics are collapsed into a ``<details>``; every new leak or error gets its own ``<details>``
# with kind, size and top frames. The body is kept under ``max_chars`` by dropping whole sections from the
# end (never cutting one in half), with a pointer to the full report.
def render_markdown(
    comparison: Comparison,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    full_report: str | None = None,
    notes: Sequence[str] = (),
    max_sites: int = MAX_SITES,
    history: BaselineHistory | None = None,
) -> str:
    """The comment body. ``full_report`` (a URL or a description of where the full report is) is
    pointed at when the body had to be shortened; ``notes`` are lines the caller adds under the
    verdict (e.g. that the PR edits baselines); ``history``, the target branch's baselines over time,
    adds a chart for each of the few metrics that changed most urgently (last: the findings come
    first when the comment must be shortened)."""
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}")
    head = f"{MARKER}\n## {TITLE[comparison.outcome]}"
    sections = [escape_text(headline(comparison), limit=2000)]
    sections += [f"> {escape_text(note, limit=1000)}" for note in notes]
    sections.append(_overview(comparison))
    for suite in suites_in_order(comparison):
        sections.extend(_suite_sections(suite, max_sites))
    if comparison.unmatched_baselines:
        names = ", ".join(escape_text(name, 100) for name in comparison.unmatched_baselines[:50])
        sections.append(f"Baselines not compared (their suites did not run): {names}")
    sections += trend_sections(comparison, history, escape=escape_text)
    return _fit(head, sections, max_chars, full_report)


def _overview(comparison: Comparison, max_rows: int = 200) -> str:
    lines = ["| suite | tool | status | verdict | changes |", "|---|---|---|---|---|"]
    ordered = suites_in_order(comparison)  # failing first, so that a long list still shows them
    for suite in ordered[:max_rows]:
        new = " (new)" if suite.is_new else ""
        lines.append(f"| {escape_text(suite.suite, 100)}{new} | {escape_text(suite.tool, 50)} | "
                     f"{_status(suite)} | {_verdict(suite.verdict)} | {changes_summary(suite)} |")
    if len(ordered) > max_rows:
        lines.append(f"\n… and {len(ordered) - max_rows:,} more suites (see the full report)")
    return "\n".join(lines)


def _status(suite: SuiteComparison) -> str:
    """"ok", or "ok, nondeterministic over 5 runs" when repeated runs disagreed on exact figures."""
    if suite.nondeterministic:
        return f"{status_word(suite)}, 🎲 nondeterministic over {suite.runs} runs"
    return status_word(suite)


def _suite_sections(suite: SuiteComparison, max_sites: int) -> list[str]:
    new_suite = " (new: no baseline yet)" if suite.is_new else ""
    random = " (🎲 nondeterministic)" if suite.nondeterministic else ""
    first = [f"### {EMOJI[suite.verdict]} {escape_text(suite.suite, 100)}{new_suite}{random}"]
    if suite.notes:
        first.append("\n".join(f"- {escape_text(note, limit=1000)}" for note in suite.notes))
    changed = [row for row in suite.rows if row.changed]
    unchanged = [row for row in suite.rows if not row.changed]
    if changed:
        first.append(_metric_table(changed))
        causes = _cause_lines(changed)
        if causes:
            first.append("Caused by:\n" + "\n".join(causes))
        if suite.heap_growth:
            first.append("The allocation stacks whose bytes grew most:\n" + "\n".join(
                f"- {escape_text(heap_growth_text(item), limit=500)}" for item in suite.heap_growth))
    elif suite.rows:
        first.append("No suite total changed." if suite.test_rows else "No metric changed.")
    sections = ["\n\n".join(first)]
    if unchanged:
        sections.append(_details(f"{len(unchanged)} unchanged metric{'s' if len(unchanged) != 1 else ''}",
                                 _metric_table(unchanged)))
    tests = _tests_section(suite)
    if tests:
        sections.append(tests)
    new = suite.sites_with("new")
    sections.extend(_new_site(site) for site in new[:max_sites])
    if len(new) > max_sites:
        sections.append(f"… and {len(new) - max_sites:,} more new sites in this suite (see the full report).")
    grown = suite.sites_with("grown")
    sections.extend(_grown_site(site) for site in grown[:max_sites])
    if len(grown) > max_sites:
        sections.append(f"… and {len(grown) - max_sites:,} more grown sites in this suite "
                        "(see the full report).")
    fixed = suite.sites_with("fixed")
    if fixed:
        sections.append(_fixed_sites(fixed, max_sites))
    known = suite.sites_with("known")
    if known:
        sections.append(f"{len(known):,} known leak or error site{'s' if len(known) != 1 else ''}, "
                        "no larger than in the baseline.")
    return sections


def _cause_lines(rows: Sequence[MetricRow], shown: frozenset[str] = frozenset()) -> list[str]:
    """"- `errors` ❌ fail: grown ...", with " of test X" after the metric for a test's row; causes in
    ``shown`` (the suite's, which name the test already) are left out."""
    return [f"- `{row.metric}`{' of ' + escape_text(row.test, 200) if row.test else ''} "
            f"{_verdict(row.verdict)}: {escape_text(cause, limit=1000)}"
            for row in rows for cause in row.causes if cause not in shown]


def _tests_section(suite: SuiteComparison) -> str:
    """The changed tests' rows (new ones marked), then one line for all unchanged tests, one for the
    gone ones: a suite of 300 unchanged tests is two lines, not 300 rows."""
    results = suite.per_test()
    changed = [test for test in results if test.changed]
    parts: list[str] = []
    if changed:
        parts.append(_test_table(changed[:MAX_TESTS]))
        shown = frozenset(cause for row in suite.rows for cause in row.causes)
        causes = _cause_lines([row for test in changed[:MAX_TESTS] for row in test.rows], shown)
        if causes:
            parts.append("Caused by:\n" + "\n".join(causes))
        if len(changed) > MAX_TESTS:
            parts.append(f"… and {len(changed) - MAX_TESTS:,} more changed tests (see the full report).")
    unchanged = len(results) - len(changed)
    if unchanged:
        parts.append(f"{EMOJI[Verdict.PASS]} {unchanged:,} unchanged test{'s' if unchanged != 1 else ''}.")
    if suite.gone_tests:
        gone = len(suite.gone_tests)
        names = ", ".join(escape_text(name, 100) for name in suite.gone_tests[:MAX_TESTS])
        more = f" and {gone - MAX_TESTS:,} more" if gone > MAX_TESTS else ""
        parts.append(f"{gone:,} gone test{'s' if gone != 1 else ''} (in the baseline, not in this run; "
                     f"not a failure): {names}{more}")
    return "\n\n".join(parts)


def _test_table(tests: Sequence[TestResult]) -> str:
    lines = ["| test | metric | baseline | current | delta | verdict | limit |",
             "|---|---|--:|--:|--:|---|---|"]
    for test in tests:
        name = escape_text(test.test, 200) + (" (new)" if test.new else "")
        for index, row in enumerate(test.rows):
            lines.append(f"| {name if index == 0 else ''} {_metric_cells(row)}")
    return "\n".join(lines)


def _metric_cells(row: MetricRow) -> str:
    """"| `metric` | baseline | current | delta | verdict | limit |"."""
    before, now = format_figure(row.metric, row.baseline), format_figure(row.metric, row.current)
    verdict = _verdict(row.verdict) + (" (noise)" if row.within_noise else "")
    return (f"| `{row.metric}` | {before} | {now} | {format_delta(row)} | {verdict} | "
            f"{escape_text(row.limit, 100) or '-'} |")


def _metric_table(rows: Sequence[MetricRow]) -> str:
    lines = ["| metric | baseline | current | delta | verdict | limit |", "|---|--:|--:|--:|---|---|"]
    lines += [_metric_cells(row) for row in rows]
    return "\n".join(lines)


def _new_site(site: SiteRow) -> str:
    description = f" · {escape_html(site.description, 150)}" if site.description else ""
    summary = (f"{EMOJI[site.verdict]} new {escape_html(site_title(site), 100)} · {site_size(site)}"
               f"{description} · <code>{escape_html(site.site, 200)}</code>{_test_of(site)}")
    return _site_details(summary, site)


def _grown_site(site: SiteRow) -> str:
    summary = (f"{EMOJI[site.verdict]} grown {escape_html(site_title(site), 100)} · "
               f"{site_growth(site)}{moved_text(site)} · "  # memgate's own figures and kind names
               f"<code>{escape_html(site.site, 200)}</code>{_test_of(site)}")
    return _site_details(summary, site)


def _test_of(site: SiteRow) -> str:
    """" · test <code>Pool.Grow</code>" when the site's test is known."""
    return f" · test <code>{escape_html(site.test, 200)}</code>" if site.test else ""


def _site_details(summary: str, site: SiteRow) -> str:
    frames = [frame.label() for frame in site.frames] or ["(no stack)"]
    for related in site.related:  # where the block was freed, allocated: under the error's own stack
        frames += ["", f"{related.description}:", *(f"  {frame.label()}" for frame in related.stack)]
    return _details(summary, code_block(frames), html_summary=True)


def _fixed_sites(sites: Sequence[SiteRow], max_sites: int) -> str:
    lines = [f"- {EMOJI[Verdict.IMPROVED]} fixed {escape_text(site_title(site), 100)} · {site_size(site)} · "
             f"{escape_text(site.site, 200)}" for site in sites[:max_sites]]
    if len(sites) > max_sites:
        lines.append(f"- … and {len(sites) - max_sites:,} more fixed sites")
    return "\n".join(lines)


def _details(summary: str, body: str, *, html_summary: bool = False) -> str:
    # The blank lines matter: without them GitHub and GitLab do not render Markdown inside <details>.
    title = summary if html_summary else escape_html(summary)
    return f"<details><summary>{title}</summary>\n\n{body}\n\n</details>"


def _verdict(verdict: Verdict) -> str:
    return f"{EMOJI[verdict]} {verdict.value}"


# --- size cap --------------------------------------------------------------------------------------


def _fit(head: str, sections: Sequence[str], max_chars: int, full_report: str | None) -> str:
    """Whole sections in order while they fit, then one line saying how many were left out and where
    the full report is. Each step keeps room for that line, so the result never exceeds max_chars."""
    footer = f"<sub>memgate {__version__}</sub>"
    body = [head]
    used = len(head) + 2 + len(footer) + 1
    for index, section in enumerate(sections):
        after = len(sections) - index - 1
        reserve = len(_cut_notice(after, full_report)) + 2 if after else 0
        if used + len(section) + 2 + reserve > max_chars:
            body.append(_cut_notice(len(sections) - index, full_report))
            break
        body.append(section)
        used += len(section) + 2
    body.append(footer)
    return "\n\n".join(body) + "\n"


def _cut_notice(left_out: int, full_report: str | None) -> str:
    where = "in the JSON report (`memgate check --json`) and the job's artifacts"
    if full_report and re.fullmatch(r"https?://[^\s<>()\[\]`]{1,500}", full_report):
        where = f"in [the full report]({full_report})"
    elif full_report:
        where = f"in {escape_text(full_report, 200)}"
    plural = "s are" if left_out != 1 else " is"
    return f"✂️ This comment was shortened to fit: {left_out:,} more section{plural} {where}."
