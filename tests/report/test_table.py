from __future__ import annotations

from recordkit import error, leak, suite

from memgate.baselines.model import Baseline
from memgate.comparison import compare
from memgate.metrics import MetricName
from memgate.records import Report, SuiteStatus
from memgate.report.table import render_suites, render_table, verdict_line

from .conftest import RealRun, line_in

HEAP: dict[MetricName, int] = {"heap_peak_bytes": 1_000_000, "alloc_calls": 200}


def test_table_rows_sites_and_verdict() -> None:
    before = suite(leaks=[leak("definite", 16, 1, "old_site", "main")], metrics=HEAP)
    after = suite(leaks=[leak("definite", 16, 1, "new_site", "main")],
                  errors=[error("InvalidRead", "invalid_read", "main", description="Invalid read of size 4")],
                  metrics={**HEAP, "heap_peak_bytes": 1_070_000})
    crashed = suite("crashy", metrics={"heap_peak_bytes": 10}, status=SuiteStatus.CRASHED,
                    status_detail="SIGSEGV").model_copy(update={"metrics": {"heap_peak_bytes": 10}})
    text = render_table(compare([after, crashed], {"unit": Baseline.from_suite(before)}))

    assert text == "\n".join([
        "suite         metric                 baseline    current    delta               verdict",
        "------------  ---------------------  ----------  ---------  ------------------  ---------",
        "unit          leak_definite_bytes    16 B        16 B       0 B                 pass",
        "              leak_definite_blocks   1           1          0                   pass",
        "              leak_indirect_bytes    0 B         0 B        0 B                 pass",
        "              leak_indirect_blocks   0           0          0                   pass",
        "              leak_possible_bytes    0 B         0 B        0 B                 pass",
        "              leak_possible_blocks   0           0          0                   pass",
        "              leak_reachable_bytes   0 B         0 B        0 B                 pass",
        "              leak_reachable_blocks  0           0          0                   pass",
        "              errors                 0           1          +1                  FAIL",
        "              heap_peak_bytes        976.56 KiB  1.02 MiB   +68.36 KiB (+7.0%)  WARN",
        "              alloc_calls            200         200        0                   pass",
        "crashy (new)  status                 ok          crashed    -                   FAIL",
        "              heap_peak_bytes        -           10 B       -                   new",
        "",
        "Why:",
        "  unit: errors FAIL: new InvalidRead error at invalid_read < main: 1 occurrence",
        "",
        "New leak and error sites:",
        "  FAIL     unit: definite leak, 16 B in 1 block at new_site < main",
        "        new_site (prog.c:10)",
        "        main (prog.c:11)",
        "  FAIL     unit: InvalidRead error, 1 occurrence (Invalid read of size 4) at invalid_read < main",
        "        invalid_read (prog.c:10)",
        "        main (prog.c:11)",
        "",
        "Fixed:",
        "  improved unit: definite leak, 16 B in 1 block at old_site < main",
        "",
        "Notes:",
        "  crashy: the suite crashed: SIGSEGV",
        "  crashy: no baseline yet: this suite is new (relative thresholds do not apply)",
        "",
        "memgate: FAIL: 2 of 2 suites failed: unit, crashy",
    ])


def test_verdict_lines() -> None:
    record = suite(metrics=HEAP)
    baseline = {"unit": Baseline.from_suite(record)}
    assert verdict_line(compare([record], baseline)) == "memgate: PASS: 1 suite compared, no regression"
    warned = suite(metrics={**HEAP, "alloc_calls": 300})
    assert verdict_line(compare([warned], baseline)) == "memgate: WARN: 1 of 1 suite with warnings: unit"
    truncated = suite(metrics=HEAP, status=SuiteStatus.INCOMPLETE, complete=False)
    text = render_table(compare([truncated], baseline))
    assert text.endswith("memgate: INCOMPLETE: figures are missing or truncated for unit: no verdict on them")
    assert "\nunit     status                 ok          incomplete  -        INCOMPLETE\n" in text
    assert "  unit: incomplete figures: log truncated" in text
    assert verdict_line(compare([], {})) == "memgate: PASS: no suites were compared"


def test_terminal_escape_sequences_and_long_lists_are_cut() -> None:
    leaks = [leak("definite", 8, 1, f"site_{i:02d}\x1b[2J", "main") for i in range(25)]
    text = render_table(compare([suite("evil\x1b]0;title\x07", leaks=leaks)], {}))
    assert "\x1b" not in text and "\x07" not in text
    assert "site_00\ufffd[2J (prog.c:10)" in text
    assert "evil\ufffd]0;title\ufffd: 5 more (see the JSON report)" in text
    assert text.count("FAIL     evil") == 20


def test_render_suites_for_run() -> None:
    report = Report(memgate_version="0.1.0", created_at="now", suites=(
        suite("unit", errors=[error("InvalidRead", "r", "main")], metrics=HEAP).model_copy(
            update={"metrics": {"errors": 1, "heap_peak_bytes": 2048}}),
        suite("broken", status=SuiteStatus.INCOMPLETE, status_detail="valgrind not found").model_copy(
            update={"metrics": {}}),
    ))
    assert render_suites(report) == "\n".join([
        "suite    tool      status                           metric           value",
        "-------  --------  -------------------------------  ---------------  --------",
        "unit     memcheck  ok                               errors           1",
        "                                                    heap_peak_bytes  2.00 KiB",
        "broken   memcheck  incomplete (valgrind not found)  (no figures)     -",
    ])


def test_an_error_shows_where_its_block_was_freed_and_allocated(real_free_errors: RealRun) -> None:
    text = render_table(real_free_errors.comparison)
    freed, allocated = line_in("use_after_free", "free(a);"), line_in("use_after_free", "malloc(")
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if "uaf-asan: heap-use-after-free error" in line)
    block = lines[start:start + 12]
    free_at = block.index("      freed by thread T0 here:")
    assert block[free_at + 1].startswith("        use_after_free (") and block[free_at + 1].endswith(
        f"memprog.c:{freed})")
    alloc_at = block.index("      previously allocated by thread T0 here:")
    assert block[alloc_at + 1].endswith(f"memprog.c:{allocated})")
    assert free_at < alloc_at
    memcheck = next(index for index, line in enumerate(lines) if "uaf-memcheck: InvalidRead error" in line)
    assert any(line.startswith("      Block was alloc'd at:") for line in lines[memcheck:memcheck + 12])


def test_suites_are_listed_failing_first_then_warned_then_passed_in_table_and_comment() -> None:
    from memgate.report.markdown import render_markdown

    names = ("passes", "warns", "fails", "passes-too")
    before = {name: suite(name, metrics=HEAP) for name in names}
    now = [suite("passes", metrics=HEAP), suite("warns", metrics={**HEAP, "heap_peak_bytes": 1_060_000}),
           suite("fails", leaks=[leak("definite", 8, 1, "oops", "main")], metrics=HEAP),
           suite("passes-too", metrics=HEAP)]
    comparison = compare(now, {name: Baseline.from_suite(record) for name, record in before.items()})
    table = render_table(comparison)
    first_column = [line.split()[0] for line in table.splitlines()[2:] if line and not line.startswith(" ")]
    assert first_column[:4] == ["fails", "warns", "passes", "passes-too"]

    markdown = render_markdown(comparison)
    overview = [line.split("|")[1].strip() for line in markdown.split("\n\n")[2].splitlines()[2:]]
    headings = [line.split()[-1] for line in markdown.splitlines() if line.startswith("### ")]
    assert overview == headings == ["fails", "warns", "passes", "passes-too"]
