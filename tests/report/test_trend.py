"""The trend charts of the comment: the exact Mermaid text (no Mermaid parser offline), the metrics
charted (changed ones, failing first, a few at most), units and labels, and the degraded cases."""

from __future__ import annotations

from collections.abc import Mapping

from recordkit import suite

from memgate.baselines.history import BaselineCommit, BaselineHistory
from memgate.baselines.model import Baseline
from memgate.comparison import Comparison, compare
from memgate.metrics import MetricName
from memgate.report.markdown import render_markdown
from memgate.report.trend import MAX_CHARTS, chart_unit

SHAS = ["1111111aaaaa" + "0" * 28, "2222222bbbbb" + "0" * 28, "3333333ccccc" + "0" * 28]
DATES = ["2026-11-01T10:00:00+00:00", "2026-11-15T10:00:00+00:00", "2026-12-01T10:00:00+00:00"]


def history_of(figures: Mapping[str, list[Mapping[MetricName, int]]], ref: str = "main",
               notes: tuple[str, ...] = ()) -> BaselineHistory:
    """A history whose i-th commit holds the i-th figures of each suite."""
    count = max(len(series) for series in figures.values())
    commits = tuple(BaselineCommit(commit=SHAS[i], date=DATES[i], subject=f"baselines {i}",
                                   metrics={name: series[i] for name, series in figures.items()})
                    for i in range(count))
    return BaselineHistory(ref=ref, tip=SHAS[count - 1], limit=20, commits=commits, notes=notes)


def compared(before: Mapping[str, Mapping[MetricName, int]],
             now: Mapping[str, Mapping[MetricName, int]]) -> Comparison:
    return compare([suite(name, metrics=metrics) for name, metrics in now.items()],
                   {name: Baseline.from_suite(suite(name, metrics=metrics))
                    for name, metrics in before.items()})


def test_a_changed_metric_gets_its_chart_with_this_change_last() -> None:
    comparison = compared({"unit": {"heap_peak_bytes": 1_000_000, "alloc_calls": 200}},
                          {"unit": {"heap_peak_bytes": 1_100_000, "alloc_calls": 200}})
    history = history_of({"unit": [{"heap_peak_bytes": 900_000, "alloc_calls": 200},
                                   {"heap_peak_bytes": 950_000, "alloc_calls": 200},
                                   {"heap_peak_bytes": 1_000_000, "alloc_calls": 200}]})

    markdown = render_markdown(comparison, history=history)

    # Bytes in one unit for the whole chart (the largest value is over 1 MiB): 900,000 B is 0.86 MiB.
    assert """
### 📈 Trend on main

Each chart: the metric at the last baseline commits of main (at most 20, oldest first), then this change.

```mermaid
xychart-beta
  title "unit: heap_peak_bytes"
  x-axis ["1111111", "2222222", "3333333", "this change"]
  y-axis "MiB"
  line [0.86, 0.91, 0.95, 1.05]
```

<details><summary>unit: heap_peak_bytes, as a table</summary>

| commit | date | heap_peak_bytes (MiB) |
|---|---|--:|
| 1111111 | 2026-11-01 | 0.86 |
| 2222222 | 2026-11-15 | 0.91 |
| 3333333 | 2026-12-01 | 0.95 |
| this change |  | 1.05 |

</details>
""" in markdown
    assert markdown.count("xychart-beta") == 1  # alloc_calls did not change: no chart
    # The trend comes after the findings: it is the first to go when the comment must be shortened.
    assert markdown.index("### ❌ unit") < markdown.index("### 📈 Trend on main")


def test_no_chart_section_when_no_metric_changed() -> None:
    figures: dict[MetricName, int] = {"heap_peak_bytes": 1_000_000, "alloc_calls": 200}
    comparison = compared({"unit": figures}, {"unit": figures})
    history = history_of({"unit": [figures, figures, figures]}, notes=("a note about the history",))
    markdown = render_markdown(comparison, history=history)
    assert "Trend" not in markdown and "mermaid" not in markdown and "a note about" not in markdown
    assert markdown == render_markdown(comparison)


def test_failing_metrics_are_charted_first_and_at_most_a_few() -> None:
    names = ["a1", "b2", "c3", "d4", "e5"]
    before = {name: {"alloc_calls": 1000} for name in names} | {"z9": {"heap_peak_bytes": 1000}}
    now = {name: {"alloc_calls": 1001} for name in names} | {"z9": {"heap_peak_bytes": 5000}}  # z9 fails
    comparison = compared(before, now)
    history = history_of({name: [dict(figures), dict(figures)] for name, figures in before.items()})

    markdown = render_markdown(comparison, history=history)

    titles = [line.strip() for line in markdown.splitlines() if line.strip().startswith("title ")]
    assert len(titles) == MAX_CHARTS == 3
    assert titles == ['title "z9: heap_peak_bytes"', 'title "a1: alloc_calls"', 'title "b2: alloc_calls"']
    assert '  y-axis "count"\n  line [1000, 1000, 1001]' in markdown  # counts as they are
    assert '  y-axis "KiB"\n  line [0.98, 0.98, 4.88]' in markdown


def test_too_little_history_means_no_chart_and_the_note_says_why() -> None:
    comparison = compared({"unit": {"heap_peak_bytes": 1000}}, {"unit": {"heap_peak_bytes": 2000}})
    shallow = "this clone is shallow: fetch about 40 commits (git fetch --no-tags --depth=40 origin main)"
    history = history_of({"unit": [{"heap_peak_bytes": 1000}]}, notes=(shallow,))

    markdown = render_markdown(comparison, history=history)

    assert "xychart-beta" not in markdown
    assert ("then this change. No chart: too little history.\n\n"
            "> this clone is shallow: fetch about 40 commits \\(git fetch --no-tags --depth=40 origin "
            "main\\)") in markdown


def test_labels_from_git_cannot_break_out_of_the_chart() -> None:
    comparison = compared({"unit": {"heap_peak_bytes": 1000}}, {"unit": {"heap_peak_bytes": 2000}})
    figures: list[Mapping[MetricName, int]] = [{"heap_peak_bytes": 1000}, {"heap_peak_bytes": 1000}]
    history = history_of({"unit": figures}, ref='main"]\n```\n<img src=x>@team')
    markdown = render_markdown(comparison, history=history)
    assert "### 📈 Trend on main________img src_x__team" in markdown
    assert "<img" not in markdown and "@team" not in markdown
    assert markdown.count("```") == 2  # the chart's own fences only


def test_the_chart_unit_is_the_largest_the_values_reach() -> None:
    assert chart_unit("heap_peak_bytes", [10, 1000]) == ("B", 1)
    assert chart_unit("heap_peak_bytes", [10, 2048]) == ("KiB", 1024)
    assert chart_unit("rss_peak_bytes", [-3 * 1024**3, 0]) == ("GiB", 1024**3)
    assert chart_unit("gc_pause_total_ns", [5, 10**9]) == ("ns", 1)
    assert chart_unit("alloc_calls", [10**9]) == ("count", 1)
