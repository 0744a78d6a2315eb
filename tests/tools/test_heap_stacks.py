"""The heap profilers' allocation stacks (DHAT, massif, heaptrack) under ``alloc_wrappers``: a real C
program (tests/programs/heapwrappers.c) allocates through one wrapper chain (pool_alloc -> pool_take ->
xmalloc) from two callers, run under the real tools by ``memgate run``/``check``/``baseline update``.
The wrappers are skipped like ``malloc`` when a heap site is fingerprinted, named and located; a
baseline made with another list is compared by the current rule; heap growth names the stack."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from memgate.baselines.files import read_report
from memgate.records import HeapSite, SuiteRecord
from tests.conftest import PROGRAMS
from tests.robustness.clikit import memgate, suite_config
from tests.test_alloc_wrappers import marked_line as wrappers_marked_line

TOOLS = ("dhat", "massif", "heaptrack")
NEEDS = {"dhat": ("valgrind",), "massif": ("valgrind",), "heaptrack": ("heaptrack", "zstd")}
WRAPPERS = 'alloc_wrappers = ["xmalloc", "pool_*"]'
MERGED = "xmalloc < pool_take < pool_alloc"
SIZES = ("config=300000", "index=100000")
# site -> bytes, blocks (massif counts none), bytes live at the peak: every block is live at the peak
BY_CALLER = {"load_config < main": (300_000, 1, 300_000), "build_index < main": (100_000, 1, 100_000)}


def marked_line(mark: str) -> int:
    return wrappers_marked_line(mark, "heapwrappers.c")


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A project folder (the test's ``folder`` under tmp_path, if any) with src/heapwrappers.c built
    into ./heapwrappers (with the test's ``flags``), so that frame paths are under the project, as in a
    real checkout."""
    params = request.node.callspec.params
    missing = [name for name in NEEDS[params["tool"]] if shutil.which(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    folder = tmp_path / params.get("folder", "")
    (folder / "src").mkdir(parents=True)
    shutil.copy(PROGRAMS / "heapwrappers.c", folder / "src" / "heapwrappers.c")
    subprocess.run(["gcc", "-g", "-O0", "-fno-omit-frame-pointer", *params.get("flags", ()), "-o",
                    "heapwrappers", "src/heapwrappers.c"], cwd=folder, check=True)
    return folder


def configure(project: Path, tool: str, *sizes: str, suite: str = "") -> Path:
    return suite_config(project, [str(project / "heapwrappers"), *sizes], tool, suite=suite)


def heap_sites(record: SuiteRecord) -> dict[str, tuple[int, int | None, int | None]]:
    return {site.site: (site.bytes, site.blocks, site.peak_bytes) for site in record.heap_sites}


def expected(tool: str, sites: dict[str, tuple[int, int, int]]) -> dict[str, tuple[int, int | None, int]]:
    return {site: (total, None if tool == "massif" else blocks, peak) for site, (total, blocks, peak) in
            sites.items()}


# -DINLINE_POOL: pool_alloc is inlined into the callers, and read from the debug information (heaptrack's
# trace lists the frames inlined at an address after it, innermost first).
@pytest.mark.parametrize("flags", [(), ("-DINLINE_POOL",)], ids=["called", "inlined"])
@pytest.mark.parametrize("tool", TOOLS)
def test_without_wrappers_two_callers_are_one_site_and_parse_takes_the_wrappers(
    tool: str, flags: tuple[str, ...], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = configure(project, tool, *SIZES)
    run = memgate(capsys, "run", "--config", config, "--jobs", "1", "--json", project / "report.json")
    assert run.code == 0, run.err
    (suite,) = read_report(project / "report.json").suites
    assert heap_sites(suite) == expected(tool, {MERGED: (400_000, 2, 400_000)})

    outputs = sorted(path for path in (project / ".memgate" / "artifacts" / "unit").glob(f"{tool}.*")
                     if not path.name.endswith(".log"))
    assert outputs
    wrapped = memgate(capsys, "parse", "--tool", tool, "--alloc-wrapper", "xmalloc", "--alloc-wrapper",
                      "pool_*", *outputs)
    assert wrapped.code == 0, wrapped.err
    record = SuiteRecord.model_validate_json(wrapped.out)
    assert heap_sites(record) == expected(tool, BY_CALLER)
    assert record.alloc_wrappers == ("pool_*", "xmalloc")
    (config_site, _) = record.heap_sites
    assert (config_site.frames[0].function, config_site.frames[0].line) == ("load_config",
                                                                            marked_line("load_config"))


# A folder whose name holds " (": Valgrind's full paths are read whole (heaptrack cannot write into a
# folder with white space, a limit of its own: refused, see test_heaptrack).
@pytest.mark.parametrize(("tool", "folder"), [*((tool, "") for tool in TOOLS), ("dhat", "app (copy)"),
                                              ("massif", "app (copy)")])
def test_alloc_wrappers_name_and_locate_each_heap_site_by_its_caller(
    tool: str, folder: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = configure(project, tool, *SIZES, suite=WRAPPERS)  # the suite's own list
    run = memgate(capsys, "run", "--config", config, "--jobs", "1", "--json", project / "report.json")
    assert run.code == 0, run.err
    (suite,) = read_report(project / "report.json").suites
    assert heap_sites(suite) == expected(tool, BY_CALLER)
    assert suite.alloc_wrappers == ("pool_*", "xmalloc")
    for site in suite.heap_sites:
        caller = site.frames[0]
        assert (caller.function, caller.file, caller.line) == (
            site.site.split(" < ")[0], "src/heapwrappers.c", marked_line(site.site.split(" < ")[0]))
        assert [frame.function for frame in site.frames] == site.site.split(" < ")


def growth(report: Path) -> list[tuple[str, int, int | None, int | None]]:
    (suite,) = json.loads(report.read_text())["comparison"]["suites"]
    return [(item["site"], item["delta_bytes"], item["delta_blocks"], item["baseline_bytes"])
            for item in suite["heap_growth"]]


@pytest.mark.parametrize("tool", ["heaptrack"])
def test_heaptrack_heap_growth_names_the_stack_that_grew(
    tool: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = configure(project, tool, *SIZES, suite=WRAPPERS)
    assert memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1").code == 0
    baseline = json.loads((project / "baselines" / "unit.json").read_text())
    assert {site["site"]: (site["bytes"], site["blocks"], site["peak_bytes"])
            for site in baseline["heap_sites"]} == BY_CALLER

    # build_index allocates 50,000 bytes more: heap_peak_bytes +12.5%, over its 10% fail limit
    configure(project, tool, "config=300000", "index=150000", suite=WRAPPERS)
    check = memgate(capsys, "check", "--config", config, "--jobs", "1", "--json", project / "r.json")
    assert check.code == 1, check.err
    assert "unit: +48.83 KiB, +0 blocks at build_index < main (146.48 KiB, was 97.66 KiB)" in check.out
    assert growth(project / "r.json") == [("build_index < main", 50_000, 0, 100_000)]


@pytest.mark.parametrize("tool", ["dhat", "heaptrack"])
def test_a_baseline_made_without_the_wrappers_is_compared_by_the_current_rule(
    tool: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = configure(project, tool, *SIZES)
    assert memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1").code == 0
    baseline = json.loads((project / "baselines" / "unit.json").read_text())
    assert [site["site"] for site in baseline["heap_sites"]] == [MERGED]

    # With the wrappers, the baseline's one site, fingerprinted again from the frames it kept, is the
    # caller its stack names (load_config, the first one): the index's bytes are new, not the config's.
    configure(project, tool, "config=300000", "index=200000", suite=WRAPPERS)
    check = memgate(capsys, "check", "--config", config, "--jobs", "1", "--json", project / "r.json")
    assert check.code == 1, check.err  # heap_peak_bytes +25%
    assert "alloc_wrappers changed since the baseline" in check.out
    assert growth(project / "r.json") == [("build_index < main", 200_000, 1, None)]


def test_a_heap_site_of_wrappers_only_keeps_its_first_frames() -> None:
    from memgate.fingerprint import AllocWrappers
    from memgate.records import Frame
    from memgate.tools._heapsites import HeapStack, refingerprinted
    from memgate.tools._heapsites import heap_sites as sites_of

    stack = (Frame(function="xmalloc"), Frame(function="pool_take"),
             Frame(function="load", file="a.c", line=3), Frame(function="main"))
    wrappers = AllocWrappers.of(["xmalloc", "pool_*"])
    (plain,) = sites_of([HeapStack(stack, 10, 1, 10), HeapStack(stack, 5, 2, None)])
    assert (plain.site, plain.bytes, plain.blocks, plain.peak_bytes) == ("xmalloc < pool_take < load", 15, 3,
                                                                         None)
    (wrapped,) = refingerprinted([plain], wrappers)
    assert isinstance(wrapped, HeapSite)
    assert (wrapped.site, [frame.function for frame in wrapped.frames]) == ("load < main", ["load", "main"])
    (only_wrappers,) = sites_of([HeapStack(stack[:2], 1, 1, 1)], wrappers)
    assert only_wrappers.site == "xmalloc < pool_take"


def test_a_trace_of_many_stacks_keeps_the_100_that_allocated_most(tmp_path: Path) -> None:
    """A heaptrack trace written by hand (heaptrack's text format, as zstd gives it): 300 functions
    each allocate once from main (f<k>: k + 1 bytes), then the last 150 free theirs and g allocates
    less than they freed. Only the 100 largest stacks are kept; what each held at the peak (the moment
    before the frees) is kept through the frees that came after it."""
    if shutil.which("zstd") is None:
        pytest.skip("zstd not installed")
    from memgate.records import HEAP_SITES_KEPT
    from memgate.tools.heaptrack import HEAPTRACK

    lines = ["v 10400 3", "X ./prog", "s 6 ./prog", "s 4 main", "i 1000 1 2", "t 1 0"]
    for k in range(301):  # f0 ... f299, then g (k = 300)
        name = f"f{k}" if k < 300 else "g"
        lines += [f"s {len(name):x} {name}", f"i {0x2000 + k:x} 1 {3 + k:x}", f"t {2 + k:x} 1",
                  f"a {(k + 1 if k < 300 else 1000):x} {2 + k:x}"]
        if k == 300:
            lines += [f"- {freed:x}" for freed in range(150, 300)]
        lines.append(f"+ {k:x}")
    lines += ["# strings: 303", "# ips: 302"]
    trace = tmp_path / "heaptrack.txt"
    trace.write_text("\n".join(lines) + "\n")
    (record,) = HEAPTRACK.parse([trace])
    assert record.metrics["heap_peak_bytes"] == sum(range(1, 301))
    assert record.metrics["heap_end_bytes"] == sum(range(1, 151)) + 1000
    assert len(record.heap_sites) == HEAP_SITES_KEPT == 100
    kept = [(site.site, site.bytes, site.blocks, site.peak_bytes) for site in record.heap_sites]
    assert kept[:3] == [("g < main", 1000, 1, 0), ("f299 < main", 300, 1, 300), ("f298 < main", 299, 1, 299)]
    assert kept[-1] == ("f201 < main", 202, 1, 202)
