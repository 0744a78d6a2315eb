"""``alloc_wrappers``: the project's allocator wrappers are skipped like ``malloc`` when a site is
fingerprinted, named and located. A real C program (tests/programs/wrappers.c) leaks through one
wrapper chain (xstrdup -> xmemdup -> xmalloc) from two callers, run under real ASan, LSan and memcheck."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from memgate.baselines.files import read_report
from memgate.baselines.model import Baseline
from memgate.comparison import compare_suite
from memgate.config import parse_config
from memgate.errors import ConfigError
from memgate.fingerprint import AllocWrappers, is_runtime_frame, site_of
from memgate.records import Frame, SuiteRecord
from tests.conftest import PROGRAMS
from tests.robustness.clikit import memgate, suite_config

TOOLS = ("asan", "lsan", "memcheck")
WRAPPERS = 'alloc_wrappers = ["xmalloc", "x*dup"]'
MERGED = "xmalloc < xmemdup < xstrdup"
BY_CALLER = {"leak_in_parser < main": (7, 1), "leak_in_logger < main": (21, 1)}


def marked_line(mark: str, program: str = "wrappers.c") -> int:
    """The line of ``/* site: <mark> */`` in ``program`` (of tests/programs)."""
    lines = (PROGRAMS / program).read_text().splitlines()
    (line,) = [number for number, text in enumerate(lines, 1) if f"/* site: {mark} */" in text]
    return line


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A project folder with src/wrappers.c built into ./wrappers (with ASan for asan), so that frame
    paths are under the project, as in a real checkout."""
    tool: str = request.node.callspec.params["tool"]
    if tool == "memcheck" and shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    (tmp_path / "src").mkdir()
    shutil.copy(PROGRAMS / "wrappers.c", tmp_path / "src" / "wrappers.c")
    flags = {"asan": ["-fsanitize=address"], "lsan": ["-fsanitize=leak"]}.get(tool, [])
    subprocess.run(["gcc", "-g", "-O0", "-fno-omit-frame-pointer", *flags, "-o", "wrappers",
                    "src/wrappers.c"], cwd=tmp_path, check=True)
    return tmp_path


def run_suite(capsys: pytest.CaptureFixture[str], project: Path, tool: str, top: str = "") -> SuiteRecord:
    config = suite_config(project, [str(project / "wrappers"), "leaks"], tool, top=top)
    run = memgate(capsys, "run", "--config", config, "--jobs", "1", "--json", project / "report.json")
    assert run.code == 0, run.err
    (suite,) = read_report(project / "report.json").suites
    return suite


def definite_sites(record: SuiteRecord) -> dict[str, tuple[int, int]]:
    sites: dict[str, tuple[int, int]] = {}
    for leak in record.leaks:
        assert leak.kind == "definite", leak
        sizes = sites.get(leak.site, (0, 0))
        sites[leak.site] = (sizes[0] + leak.bytes, sizes[1] + leak.blocks)
    return sites


@pytest.mark.parametrize("tool", TOOLS)
def test_without_alloc_wrappers_two_leaks_through_one_wrapper_are_one_site(
    tool: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = run_suite(capsys, project, tool)
    assert definite_sites(record) == {MERGED: (28, 2)}
    assert record.alloc_wrappers == ()


@pytest.mark.parametrize("tool", TOOLS)
def test_alloc_wrappers_name_and_locate_each_leak_by_its_caller(
    tool: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = suite_config(project, [str(project / "wrappers"), "leaks"], tool, top=WRAPPERS)
    run = memgate(capsys, "check", "--config", config, "--jobs", "1", "--json", project / "report.json",
                  "--sarif", project / "out.sarif", "--codequality", project / "cq.json")
    assert run.code == 1, run.err  # two new definite leaks
    (suite,) = read_report(project / "report.json").suites
    assert definite_sites(suite) == BY_CALLER
    assert suite.alloc_wrappers == ("x*dup", "xmalloc")

    callers = {marked_line("leak_in_parser"), marked_line("leak_in_logger")}
    (sarif_run,) = json.loads((project / "out.sarif").read_text())["runs"]
    places = {(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
               result["locations"][0]["physicalLocation"]["region"]["startLine"])
              for result in sarif_run["results"]}
    assert places == {("src/wrappers.c", line) for line in callers}
    issues = json.loads((project / "cq.json").read_text())
    leaks = [issue for issue in issues if "new definite leak" in issue["description"]]
    assert sorted((issue["location"]["path"], issue["location"]["lines"]["begin"]) for issue in leaks) == \
        sorted(("src/wrappers.c", line) for line in callers)


@pytest.mark.parametrize("tool", TOOLS)
def test_memgate_parse_takes_the_wrappers_as_options(
    tool: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_suite(capsys, project, tool)
    folder = project / ".memgate" / "artifacts" / "unit"
    logs = sorted(folder.glob(f"{tool}.*"))
    assert logs
    plain = memgate(capsys, "parse", "--tool", tool, *logs)
    assert plain.code == 0, plain.err
    assert definite_sites(SuiteRecord.model_validate_json(plain.out)) == {MERGED: (28, 2)}
    wrapped = memgate(capsys, "parse", "--tool", tool, "--alloc-wrapper", "xmalloc",
                      "--alloc-wrapper", "x*dup", *logs)
    assert wrapped.code == 0, wrapped.err
    record = SuiteRecord.model_validate_json(wrapped.out)
    assert definite_sites(record) == BY_CALLER
    assert record.alloc_wrappers == ("x*dup", "xmalloc")


def test_parse_refuses_a_glob_that_matches_every_function(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    log = tmp_path / "asan.1"
    log.write_text("")
    run = memgate(capsys, "parse", "--tool", "asan", "--alloc-wrapper", "*", log)
    run.one_error(2, "--alloc-wrapper", "'*' would match every function")


@pytest.mark.parametrize("tool", TOOLS)
def test_a_baseline_made_with_another_list_is_compared_by_the_current_rule_with_a_note(
    tool: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    without = run_suite(capsys, project, tool)
    wrapped = run_suite(capsys, project, tool, top=WRAPPERS)
    old, new = Baseline.from_suite(without), Baseline.from_suite(wrapped)
    assert "alloc_wrappers" not in json.loads(old.to_json())  # baselines of projects without any: as before
    assert json.loads(new.to_json())["alloc_wrappers"] == ["x*dup", "xmalloc"]
    assert Baseline.model_validate_json(new.to_json()).alloc_wrappers == ("x*dup", "xmalloc")

    def compared(record: SuiteRecord, baseline: Baseline) -> tuple[dict[str, str], tuple[str, ...]]:
        comparison = compare_suite(record, baseline, thresholds={}, fail_on_new_leak_kinds=("definite",),
                                   fail_on_new_errors=True)
        return {site.site: site.status for site in comparison.sites}, comparison.notes

    # Same list: no note, every site known.
    assert compared(wrapped, new) == ({site: "known" for site in BY_CALLER}, ())
    # The list was added: the merged baseline site, fingerprinted again from the frames it kept, is the
    # caller its stack names; the other leak was merged into it when the baseline was made, and is new.
    statuses, notes = compared(wrapped, old)
    (kept,) = old.leaks
    caller = f"{kept.frames[3].function} < main"
    assert [frame.function for frame in kept.frames[:3]] == ["xmalloc", "xmemdup", "xstrdup"]
    assert statuses == {site: "known" if site == caller else "new" for site in BY_CALLER}
    (note,) = [note for note in notes if "alloc_wrappers changed" in note]
    assert 'none then, ["x*dup", "xmalloc"] now' in note and "may still show as new or fixed" in note
    assert "memgate baseline update --suite unit" in note
    # The list was removed: the baseline's frames no longer hold the wrappers; the note says why.
    statuses, notes = compared(without, new)
    assert statuses[MERGED] == "new"
    assert any('["x*dup", "xmalloc"] then, none now' in note for note in notes)


@pytest.mark.parametrize("tool", ["asan"])
def test_check_says_the_list_changed_since_the_baseline(
    tool: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = suite_config(project, [str(project / "wrappers"), "leaks"], tool)
    assert memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1").code == 0
    config = suite_config(project, [str(project / "wrappers"), "leaks"], tool, top=WRAPPERS)
    run = memgate(capsys, "check", "--config", config, "--jobs", "1")
    assert run.code == 1, run.err  # leak_in_parser's leak is new to the baseline's rule
    assert "alloc_wrappers changed since the baseline" in run.out


def test_globs_match_the_function_name_without_parameters_or_clone_suffix() -> None:
    wrappers = AllocWrappers.of(["pool_alloc", "x*alloc", "pool_alloc"])
    assert wrappers.globs == ("pool_alloc", "x*alloc")
    for name in ("pool_alloc(unsigned long)", "xmalloc", "xcalloc.constprop.0", "xrealloc"):
        assert is_runtime_frame(Frame(function=name), wrappers), name
    for name in ("pool_alloc_stats", "my_xmalloc", "Xmalloc", "xmalloc_usable_size"):
        assert not is_runtime_frame(Frame(function=name), wrappers), name
    stack = [Frame(function="malloc"), Frame(function="xmalloc"), Frame(function="load", file="a.c", line=3),
             Frame(function="main")]
    assert site_of(stack) == "xmalloc < load < main"
    assert site_of(stack, wrappers) == "load < main"
    # A stack of wrappers only keeps its first frames, as one of allocators only does.
    assert site_of(stack[:2], wrappers) == "malloc < xmalloc"


def test_config_adds_a_suites_wrappers_to_the_top_level_ones_and_refuses_match_all(tmp_path: Path) -> None:
    text = ('alloc_wrappers = ["xmalloc"]\n[[suite]]\nname = "a"\ncommand = ["x"]\ntool = "asan"\n'
            'alloc_wrappers = ["g_*alloc", "xmalloc"]\n'
            '[[suite]]\nname = "b"\ncommand = ["x"]\ntool = "asan"\n')
    config = parse_config(text, tmp_path / "memgate.toml")
    assert config.alloc_wrappers_for(config.suite("a")) == ("g_*alloc", "xmalloc")
    assert config.alloc_wrappers_for(config.suite("b")) == ("xmalloc",)
    with pytest.raises(ConfigError, match=r"suite\[0\]\.alloc_wrappers: '\*\?' would match every function"):
        parse_config('[[suite]]\nname = "a"\ncommand = ["x"]\ntool = "asan"\nalloc_wrappers = ["*?"]\n',
                     tmp_path / "memgate.toml")
