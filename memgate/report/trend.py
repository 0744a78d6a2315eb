"""The trend in the comment: for the metrics this change moved (failing and warning first, a few at
most), a Mermaid ``xychart-beta`` line of the metric over the last baseline commits of the target
branch with this change's value as the last point, and the same figures as a table for readers that
do not render Mermaid."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from memgate.metrics import MetricName, is_bytes
from memgate.report.common import suites_in_order
from memgate.thresholds import Verdict

if TYPE_CHECKING:
    from memgate.baselines.history import BaselineHistory, HistoryPoint
    from memgate.comparison import Comparison, MetricRow

#: Charts in one comment: the comment stays small and the findings stay on top.
MAX_CHARTS = 3
#: Baseline commits a chart needs besides this change: one point is no trend.
MIN_HISTORY = 2
THIS_CHANGE = "this change"
_BINARY_UNITS = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
_SHORT = 7
# Mermaid has no escape that every renderer honours inside a quoted label: anything else is replaced.
_NOT_IN_LABEL = re.compile(r"[^A-Za-z0-9 ._:/+-]")


def trend_sections(comparison: Comparison, history: BaselineHistory | None,
                   escape: Callable[[str, int], str]) -> list[str]:
    """The trend's sections for the comment: none when no metric changed or there is no history; its
    notes alone (why there is no chart, e.g. a shallow clone) when no metric has enough history.
    ``escape`` makes a note inert Markdown (the comment's own escaping)."""
    rows = changed_rows(comparison)
    if not rows or history is None:
        return []
    charts: list[str] = []
    for row in rows:
        series = history.series(row.suite, row.metric)
        if len(series) >= MIN_HISTORY and row.current is not None and len(charts) < MAX_CHARTS:
            charts.append(render_chart(row.suite, row.metric, series, row.current))
    notes = [f"> {escape(note, 1000)}" for note in history.notes]
    if not charts and not notes:
        return []
    ref = history.ref[:12] if re.fullmatch(r"[0-9a-f]{40,64}", history.ref) else history.ref
    intro = (f"### 📈 Trend on {label(ref, 100)}\n\nEach chart: the metric at the last baseline commits of "
             f"{label(ref, 100)} (at most {history.limit}, oldest first), then this change.")
    if not charts:
        intro += " No chart: too little history."
    return ["\n\n".join([intro, *notes]), *charts]


def changed_rows(comparison: Comparison) -> list[MetricRow]:
    """The metric rows that changed, failing first, then warning, then the rest (suites in report order)."""
    rank = {Verdict.FAIL: 0, Verdict.WARN: 1}
    rows = [row for suite in suites_in_order(comparison) for row in suite.rows if row.changed]
    return sorted(rows, key=lambda row: rank.get(row.verdict, 2))


def render_chart(suite: str, metric: MetricName, series: Sequence[HistoryPoint], current: int) -> str:
    """One metric's chart (``xychart-beta``) and, collapsed under it, its table."""
    values = [point.value for point in series] + [current]
    unit, divisor = chart_unit(metric, values)
    shown = [_scaled(value, divisor) for value in values]
    commits = [point.commit[:_SHORT] for point in series]
    x_labels = ", ".join(f'"{label(text, 20)}"' for text in [*commits, THIS_CHANGE])
    chart = "\n".join([
        "```mermaid",
        "xychart-beta",
        f'  title "{label(suite, 60)}: {metric}"',
        f"  x-axis [{x_labels}]",
        f'  y-axis "{unit}"',
        f"  line [{', '.join(shown)}]",
        "```",
    ])
    dates = [point.date[:10] for point in series] + [""]
    table = [f"| commit | date | {metric} ({unit}) |", "|---|---|--:|"]
    table += [f"| {label(commit, 20)} | {label(date, 20)} | {value} |"
              for commit, date, value in zip([*commits, THIS_CHANGE], dates, shown, strict=True)]
    return (f"{chart}\n\n<details><summary>{label(suite, 60)}: {metric}, as a table</summary>\n\n"
            + "\n".join(table) + "\n\n</details>")


def chart_unit(metric: MetricName, values: Sequence[int]) -> tuple[str, int]:
    """One unit for the whole chart, so that its points compare: bytes in the largest binary unit the
    largest value reaches, counts as they are."""
    if not is_bytes(metric):
        return ("ns" if metric.endswith("_ns") else "count"), 1
    largest = max((abs(value) for value in values), default=0)
    for unit, size in _BINARY_UNITS:
        if largest >= size:
            return unit, size
    return "B", 1


def _scaled(value: int, divisor: int) -> str:
    return str(value) if divisor == 1 else f"{value / divisor:.2f}"


def label(text: str, limit: int) -> str:
    """Text from git or the user as inert chart and table text: letters, digits and a few signs."""
    return _NOT_IN_LABEL.sub("_", text)[:limit]
