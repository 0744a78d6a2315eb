"""The registry of tools (memgate/tools/__init__.py): every tool under its own name, and memcheck's
older name ``valgrind`` accepted wherever a tool is named: a config, ``memgate parse --tool``, and the
baselines and reports that older memgate wrote (real saved memcheck output of tests/data/memcheck)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memgate.cli import main
from memgate.config import load_config
from memgate.records import Report, SuiteRecord, combine_processes
from memgate.runner.schedule import NATIVE_RSS_GUESS
from memgate.tools import TOOL_NAMES, canonical_tool_name, get_tool

XML = Path(__file__).parent.parent / "data" / "memcheck" / "leaks" / "memcheck.32639.xml"


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_every_tool_is_registered_under_its_own_name_with_its_appetite(name: str) -> None:
    tool = get_tool(name)
    assert tool.name == name
    assert tool.memory_appetite.bytes_for(NATIVE_RSS_GUESS) >= NATIVE_RSS_GUESS


def test_valgrind_is_memchecks_other_name() -> None:
    assert canonical_tool_name("valgrind") == "memcheck"
    assert canonical_tool_name("memcheck") == "memcheck"
    assert canonical_tool_name("a-future-tool") == "a-future-tool"  # left for its reader to refuse
    assert get_tool("valgrind") is get_tool("memcheck")
    assert "valgrind" not in TOOL_NAMES


def test_a_config_may_say_valgrind(tmp_path: Path) -> None:
    path = tmp_path / "memgate.toml"
    path.write_text('[[suite]]\nname = "unit"\ncommand = ["true"]\ntool = "valgrind"\n')
    assert load_config(path).suites[0].tool == "memcheck"


def parsed(tool: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["parse", "--tool", tool, str(XML)]) == 0
    record: dict[str, object] = json.loads(capsys.readouterr().out)
    return record


def test_memgate_parse_takes_tool_valgrind(capsys: pytest.CaptureFixture[str]) -> None:
    record = parsed("valgrind", capsys)
    assert record["tool"] == "memcheck"
    assert record == parsed("memcheck", capsys)


def memcheck_run() -> SuiteRecord:
    processes = tuple(get_tool("memcheck").parse([XML]))
    return SuiteRecord(name="unit", tool="memcheck", processes=processes,
                       metrics=combine_processes(processes))


def write_report(path: Path, suite: SuiteRecord, tool: str) -> Path:
    report = Report(memgate_version="0.1.0", created_at="2024-01-01T00:00:00Z", suites=(suite,))
    data = json.loads(report.model_dump_json())
    data["suites"][0]["tool"] = tool  # as older memgate wrote it
    path.write_text(json.dumps(data))
    return path


def test_an_old_report_that_says_valgrind_reads_as_memcheck(tmp_path: Path) -> None:
    path = write_report(tmp_path / "old.json", memcheck_run(), "valgrind")
    assert Report.model_validate_json(path.read_text()).suites[0].tool == "memcheck"


def compared(baseline: Path, current: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["compare", str(baseline), str(current)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_an_old_baseline_that_says_valgrind_compares_with_a_memcheck_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a baseline file (figures only: its leak sites are new, exit 1) and as a whole report: the
    same comparison as with "memcheck", never the refusal of a baseline made with another tool."""
    run = memcheck_run()
    current = write_report(tmp_path / "current.json", run, "memcheck")
    for spelling in ("valgrind", "memcheck"):
        folder = tmp_path / spelling
        folder.mkdir()
        (folder / "unit.json").write_text(json.dumps({
            "schema_version": 1, "suite": "unit", "tool": spelling, "tool_version": "valgrind-3.19.0",
            "metrics": run.metrics}))
        write_report(folder / "report.json", run, spelling)
    for name in ("unit.json", "report.json"):
        old = compared(tmp_path / "valgrind" / name, current, capsys)
        assert old == compared(tmp_path / "memcheck" / name, current, capsys)
        assert old[0] in (0, 1) and "made with" not in old[1]
