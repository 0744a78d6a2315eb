"""``memgate baseline update`` refuses a run with memory errors (they would become known and pass from
then on) unless ``--allow-errors`` or MEMGATE_ALLOW_ERRORS is given; leaks stay allowed. Real ASan
and memcheck runs of tests/programs/memprog.c."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import PROGRAMS, BuildProgram
from tests.robustness.clikit import memgate, suite_config

# tool -> the kind its report gives memprog's invalid_read
ERROR_KIND = {"asan": "heap-buffer-overflow", "memcheck": "InvalidRead"}


def invalid_read_line() -> int:
    lines = (PROGRAMS / "memprog.c").read_text().splitlines()
    (line,) = [n for n, text in enumerate(lines, 1) if "int value = ((volatile int *)a)[10];" in text]
    return line


@pytest.fixture(params=list(ERROR_KIND))
def tool(request: pytest.FixtureRequest) -> str:
    if request.param == "memcheck" and shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    return str(request.param)


@pytest.fixture
def program(tool: str, build_program: BuildProgram) -> Path:
    """For ASan, built to go on after an error (else the first ends the run, which is incomplete and
    refused as such)."""
    flags = ("-fsanitize=address", "-fsanitize-recover=address") if tool == "asan" else ()
    return build_program("memprog.c", flags=flags)


def config_for(folder: Path, program: Path, tool: str, *scenarios: str) -> Path:
    go_on = 'env = { ASAN_OPTIONS = "halt_on_error=0" }' if tool == "asan" else ""
    return suite_config(folder, [str(program), *scenarios], tool, suite=go_on)


def test_a_run_with_a_memory_error_is_refused_naming_the_suite_and_the_first_error_site(
    tool: str, program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MEMGATE_ALLOW_ERRORS", raising=False)
    config = config_for(tmp_path, program, tool, "leak_small", "invalid_read")
    run = memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1")
    line = run.one_error(1, "suite 'unit' has memory errors (1 site; the first: "
                         f"{ERROR_KIND[tool]} at invalid_read < main (",
                         f"memprog.c:{invalid_read_line()})",
                         "pass --allow-errors (env MEMGATE_ALLOW_ERRORS=1)")
    assert "no baseline written" in run.err, line
    assert not (tmp_path / "baselines" / "unit.json").exists()

    allowed = memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1", "--allow-errors")
    assert allowed.code == 0, allowed.err
    baseline = json.loads((tmp_path / "baselines" / "unit.json").read_text())
    assert [error["kind"] for error in baseline["errors"]] == [ERROR_KIND[tool]]
    assert [leak["site"] for leak in baseline["leaks"]] == ["leak_small < main"]


def test_the_environment_variable_allows_errors_and_a_wrong_value_is_a_usage_error(
    tool: str, program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = config_for(tmp_path, program, tool, "invalid_read")
    monkeypatch.setenv("MEMGATE_ALLOW_ERRORS", "perhaps")
    memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1").one_error(
        2, "environment variable MEMGATE_ALLOW_ERRORS: 'perhaps' is neither on nor off",
        "set it to 1, true or yes (on), or 0, false or no (off)")
    monkeypatch.setenv("MEMGATE_ALLOW_ERRORS", "1")
    assert memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1").code == 0
    assert (tmp_path / "baselines" / "unit.json").is_file()


def test_leaks_alone_are_allowed(tool: str, program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMGATE_ALLOW_ERRORS", raising=False)
    config = config_for(tmp_path, program, tool, "leak_small")
    run = memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1")
    assert run.code == 0, run.err
    assert json.loads((tmp_path / "baselines" / "unit.json").read_text())["leaks"][0]["site"] == \
        "leak_small < main"
