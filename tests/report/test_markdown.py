from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recordkit import error, leak, suite

from memgate.baselines.model import Baseline
from memgate.comparison import Comparison, compare
from memgate.metrics import MetricName
from memgate.records import Frame, Leak, SuiteRecord, SuiteStatus
from memgate.report.markdown import (
    DEFAULT_MAX_CHARS,
    MARKER,
    code_block,
    escape_html,
    escape_text,
    render_markdown,
)
from memgate.thresholds import Verdict

from .conftest import RealRun, line_in

HEAP: dict[MetricName, int] = {"heap_peak_bytes": 1_000_000, "alloc_calls": 200}
OUR_TAGS = re.compile(r"</?(details|summary|code|sub)>|<!-- memgate:report -->")
FENCE = re.compile(r"^(`{3,})text\n.*?^\1$", re.MULTILINE | re.DOTALL)


def compared(current: SuiteRecord, before: SuiteRecord | None) -> Comparison:
    return compare([current], {current.name: Baseline.from_suite(before) if before else None})


def outside_code(markdown: str) -> str:
    return FENCE.sub("", markdown)


def table_cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line)[1:-1]


def test_unchanged_run_is_short_and_collapsed() -> None:
    record = suite(leaks=[leak("definite", 16, 1, "leak_small", "main")], metrics=HEAP)
    text = render_markdown(compared(record, record))

    assert text.splitlines()[:2] == [MARKER, "## ✅ memgate: passed"]
    assert "1 suite compared, no regression" in text
    assert "No metric changed." in text
    assert "<details><summary>11 unchanged metrics</summary>\n\n| metric |" in text
    assert "1 known leak or error site, no larger than in the baseline." in text
    assert "new definite leak" not in text
    assert text.endswith("<sub>memgate 0.1.0</sub>\n")


def test_new_leak_site_shows_kind_size_and_frames() -> None:
    before = suite(leaks=[leak("definite", 16, 1, "old_site", "main")])
    after = suite(leaks=[leak("definite", 16, 1, "new_site", "main")])
    text = render_markdown(compared(after, before))

    assert text.splitlines()[1] == "## ❌ memgate: the gate failed"
    assert text.splitlines()[3] == "1 of 1 suite failed: unit"
    assert (
        "<details><summary>❌ new definite leak · 16 B in 1 block · "
        "<code>new_site &lt; main</code></summary>\n"
        "\n"
        "```text\n"
        "new_site (prog.c:10)\n"
        "main (prog.c:11)\n"
        "```\n"
        "\n"
        "</details>"
    ) in text
    assert "- 📉 fixed definite leak · 16 B in 1 block · old\\_site &lt; main" in text
    assert "| unit | memcheck | ok | ❌ fail | 1 new leak site, 1 fixed site |" in text
    assert "No metric changed." in text  # equal totals: only the site fails


def test_changed_metrics_are_a_table_and_the_others_are_collapsed() -> None:
    before = suite(metrics=HEAP)
    after = suite(metrics={**HEAP, "heap_peak_bytes": 1_070_000})
    text = render_markdown(compared(after, before))

    assert text.splitlines()[1] == "## ⚠️ memgate: passed with warnings"
    changed = text.index("| `heap_peak_bytes` | 976.56 KiB | 1.02 MiB | +68.36 KiB (+7.0%) | ⚠️ warn | "
                         "warn 5% / fail 10% |")
    collapsed = text.index("<details><summary>10 unchanged metrics</summary>")
    assert changed < collapsed
    assert text.count("`heap_peak_bytes`") == 1


def test_new_error_and_incomplete_and_new_suite_titles() -> None:
    failing = compared(suite(errors=[error("InvalidRead", "invalid_read", "main", count=2,
                                           description="Invalid read of size 4")]), None)
    text = render_markdown(failing)
    assert ("❌ new InvalidRead error · 2 occurrences · Invalid read of size 4 · "
            "<code>invalid_read &lt; main</code>") in text
    assert "### ❌ unit (new: no baseline yet)" in text

    truncated = suite(metrics=HEAP, status=SuiteStatus.INCOMPLETE, complete=False)
    incomplete = compared(truncated, suite(metrics=HEAP))
    text = render_markdown(incomplete)
    assert text.splitlines()[1] == "## ⏳ memgate: incomplete"
    assert "figures are missing or truncated for unit: no verdict on them" in text
    assert "- incomplete figures: log truncated" in text


HOSTILE = ["<script>alert(1)</script>", "@octocat", "a|b", "x`y````z", "@org/team", "#42", "&#64;user",
           "[link](https://evil.example)", "<img src=x onerror=alert(1)>", "line\nbreak | here",
           "\x1b[31mred"]


def hostile_record(name: str = "unit") -> SuiteRecord:
    leaks = [leak("definite", 16, 1, function, "main") for function in HOSTILE]
    errors = [error("heap-use-after-free", function, description=f"READ of {function}")
              for function in HOSTILE]
    return suite(name, leaks=leaks, errors=errors)


def test_tool_strings_are_escaped() -> None:
    before = suite("@admins|<b>", leaks=[leak("definite", 1, 1, "<i>fixed</i>|@x", "main")])
    after = hostile_record("@admins|<b>")
    text = render_markdown(compared(after, before), notes=["@reviewer edited <baselines/>"])

    assert "<script" not in outside_code(text)
    assert "<img" not in outside_code(text)
    assert not OUR_TAGS.sub("", outside_code(text)).count("<")
    assert not re.search(r"@\w", text), "a mention got through"
    without_entities = re.sub(r"&#\d+;", "", outside_code(text))
    assert not re.search(r"#\d", without_entities), "an issue reference got through"
    outside = outside_code(text)
    assert "&#64;" not in outside.replace("&amp;#64;", "")  # an entity would decode to a mention
    assert "https://evil" not in outside and "](" not in outside
    assert "\x1b" not in text
    # Every table row has its six columns: no pipe from a tool string splits a cell.
    for line in text.splitlines():
        if line.startswith("| ") and "suite | tool" not in line:
            assert len(table_cells(line)) in (5, 6), line
    overview = [line for line in text.splitlines() if line.startswith("| @")]
    assert overview == ["| @\u200badmins\\|&lt;b&gt; | memcheck | ok | ❌ fail | 11 new leak sites, "
                        "11 new error sites, 1 fixed site, 3 metrics changed |"]
    assert "> @\u200breviewer edited &lt;baselines/&gt;" in text
    # Frames keep their text inside code blocks, where nothing is interpreted.
    assert "<script>alert(1)</script> (prog.c:10)\n" in text
    assert "\n`````text\nx`y````z (prog.c:10)\nmain (prog.c:11)\n`````\n" in text


def test_escapers() -> None:
    assert escape_text("a|b <c> @d #1 *e* _f_ [g](h)") == (
        "a\\|b &lt;c&gt; @\u200bd \\#\u200b1 \\*e\\* \\_f\\_ \\[g\\]\\(h\\)")
    assert escape_text("see https://x.example and www.y.example") == (
        "see https:\u200b//x.example and w\u200bww.y.example")
    assert escape_html('<a href="x">@me</a> & co') == "&lt;a href=\"x\"&gt;@\u200bme&lt;/a&gt; &amp; co"
    assert escape_html("[l](u) *b* a|b #1") == "&#91;l&#93;&#40;u&#41; *b* a&#124;b #\u200b1"
    assert escape_text("\u202eevil\u202c\r\n") == "\ufffdevil\ufffd\ufffd\ufffd"
    assert escape_text("x" * 400) == "x" * 299 + "\u2026"
    assert code_block(["a```b", "@user"]) == "````text\na```b\n@\u200buser\n````"


@settings(max_examples=200, deadline=None)
@given(function=st.text(max_size=60), suite_name=st.text(min_size=1, max_size=30))
def test_any_tool_string_stays_inert(function: str, suite_name: str) -> None:
    frames = (Frame(function=function, file="p.c", line=3),)
    hostile = Leak(kind="definite", bytes=8, blocks=1, stack=frames, fingerprint="f" * 16, site=function)
    record = suite(suite_name, leaks=[hostile])
    text = render_markdown(compare([record], {}))

    outside = outside_code(text)
    assert not OUR_TAGS.sub("", outside).count("<")
    assert not re.search(r"@\w", text)
    for line in outside.splitlines():
        if line.startswith("| ") and "suite | tool" not in line and "metric | baseline" not in line:
            assert len(table_cells(line)) in (5, 6), line
    assert text.count("<details>") == text.count("</details>")


def many_new_sites(count: int) -> SuiteRecord:
    leaks = [leak("definite", 16 + i, 1, f"leak_site_{i:05d}_" + "x" * 100, "helper_" + "y" * 100, "main")
             for i in range(count)]
    return suite(leaks=leaks)


@pytest.mark.parametrize("max_chars", [2_000, 5_000, 20_000, DEFAULT_MAX_CHARS])
def test_size_cap_keeps_whole_sections_and_points_to_the_full_report(max_chars: int) -> None:
    comparison = compare([many_new_sites(3_000)], {})
    text = render_markdown(comparison, max_chars=max_chars, max_sites=10_000,
                           full_report="https://ci.example/job/1/artifacts")

    assert len(text) <= max_chars
    assert text.startswith(MARKER + "\n## ❌ memgate: the gate failed")
    assert re.search(r"✂️ This comment was shortened to fit: [\d,]+ more sections are in "
                     r"\[the full report\]\(https://ci\.example/job/1/artifacts\)\.", text)
    assert text.count("<details>") == text.count("</details>")
    assert text.count("```text") * 2 == text.count("```")
    assert text.endswith("<sub>memgate 0.1.0</sub>\n")


def test_size_cap_default_is_under_the_forge_limit_and_lists_are_capped() -> None:
    text = render_markdown(compare([many_new_sites(3_000)], {}))
    assert len(text) <= DEFAULT_MAX_CHARS
    assert text.count("<summary>❌ new definite leak") == 50
    assert "… and 2,950 more new sites in this suite (see the full report)." in text
    assert "shortened" not in text


def test_cut_notice_without_a_url_is_escaped() -> None:
    text = render_markdown(compare([many_new_sites(500)], {}), max_chars=3_000, max_sites=500,
                           full_report="the artifacts of job @ci <42>")
    assert "in the artifacts of job @\u200bci &lt;42&gt;." in text
    assert len(text) <= 3_000


def test_max_chars_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2000"):
        render_markdown(Comparison(verdict=Verdict.PASS), max_chars=500)


def test_an_errors_details_show_where_its_block_was_freed_and_allocated(real_free_errors: RealRun) -> None:
    text = render_markdown(real_free_errors.comparison)
    freed, allocated = line_in("use_after_free", "free(a);"), line_in("use_after_free", "malloc(")
    details = next(part for part in text.split("<details>") if "new heap-use-after-free error" in part)
    body = details.splitlines()
    free_at = body.index("freed by thread T0 here:")
    assert body[free_at + 1].startswith("  use_after_free (")
    assert body[free_at + 1].endswith(f"memprog.c:{freed})")
    alloc_at = body.index("previously allocated by thread T0 here:")
    assert body[alloc_at + 1].endswith(f"memprog.c:{allocated})")
    assert body.index("```text") < free_at < alloc_at  # inside the code block, under the error's own stack
    memcheck = next(part for part in text.split("<details>") if "new InvalidRead error" in part)
    assert "Block was alloc'd at:" in memcheck and "free'd:" in memcheck
