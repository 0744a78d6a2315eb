"""What every renderer shares: tool strings made safe to print, figures, labels and the verdict line."""

from __future__ import annotations

import re
import unicodedata

from memgate.compare import Comparison, MetricRow, SiteRow, SuiteComparison, Verdict
from memgate.metrics import MetricName, format_value

#: Longest tool-provided string shown (C++ template names run to kilobytes); reports keep the rest.
MAX_TEXT = 300

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """One printable line: control characters (a terminal escape sequence, a newline that would break
    a table) and invisible format characters (bidi overrides) become U+FFFD; long text is shortened."""
    text = _UNSAFE.sub("\ufffd", text)
    if not text.isascii():
        text = "".join("\ufffd" if unicodedata.category(char) in ("Cf", "Zl", "Zp", "Cs") else char
                       for char in text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def format_delta(row: MetricRow) -> str:
    if row.delta is None:
        return "-"
    sign = "+" if row.delta > 0 else ""
    figure = f"{sign}{format_value(row.metric, row.delta)}"
    if row.delta != 0 and row.delta_pct is not None:
        figure += f" ({row.delta_pct:+.1f}%)"
    return figure


def format_figure(metric: MetricName, value: int | None) -> str:
    return format_value(metric, value)


def site_size(site: SiteRow) -> str:
    """"16 B in 1 block" for a leak, "3 occurrences" for an error."""
    if site.category == "leak":
        blocks = site.blocks or 0
        return f"{format_value('leak_definite_bytes', site.bytes or 0)} in {blocks:,} block{_s(blocks)}"
    count = site.count or 0
    return f"{count:,} occurrence{_s(count)}"


def site_title(site: SiteRow) -> str:
    """"definite leak" or "InvalidRead error" (the kind is the tool's own name)."""
    return f"{site.kind} {site.category}"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def status_word(suite: SuiteComparison) -> str:
    return "incomplete" if suite.incomplete else suite.status.value


def headline(comparison: Comparison) -> str:
    """The verdict's reason in one sentence: what failed, what is missing, what warned."""
    total = len(comparison.suites)
    if not total:
        return "no suites were compared"
    if comparison.outcome == "fail":
        failed = [s.suite for s in comparison.suites if s.verdict is Verdict.FAIL]
        return f"{len(failed)} of {total} suite{_s(total)} failed: {_names(failed)}"
    if comparison.outcome == "incomplete":
        missing = [s.suite for s in comparison.suites if s.incomplete]
        return f"figures are missing or truncated for {_names(missing)}: no verdict on them"
    if comparison.outcome == "warn":
        warned = [s.suite for s in comparison.suites if s.verdict is Verdict.WARN]
        return f"{len(warned)} of {total} suite{_s(total)} with warnings: {_names(warned)}"
    return f"{total} suite{_s(total)} compared, no regression"


def _names(names: list[str], shown: int = 10) -> str:
    more = f" and {len(names) - shown:,} more" if len(names) > shown else ""
    return ", ".join(clean(name, limit=100) for name in names[:shown]) + more


def changes_summary(suite: SuiteComparison) -> str:
    """"1 new leak site, 2 metrics changed" (or "no change")."""
    parts = []
    new_leaks = sum(1 for s in suite.sites if s.status == "new" and s.category == "leak")
    new_errors = sum(1 for s in suite.sites if s.status == "new" and s.category == "error")
    fixed = sum(1 for s in suite.sites if s.status == "fixed")
    changed = sum(1 for r in suite.rows if r.changed)
    for count, what in ((new_leaks, "new leak site"), (new_errors, "new error site"), (fixed, "fixed site"),
                        (changed, "metric changed" if changed == 1 else "metrics changed")):
        if count:
            parts.append(f"{count:,} {what}{_s(count) if 'site' in what else ''}")
    return ", ".join(parts) or "no change"


VERDICT_WORD: dict[Verdict, str] = {
    Verdict.PASS: "pass",
    Verdict.WARN: "WARN",
    Verdict.FAIL: "FAIL",
    Verdict.IMPROVED: "improved",
    Verdict.NEW: "new",
}
