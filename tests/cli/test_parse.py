"""``memgate parse``: output a user produced by running the tool by hand, parsed to exact figures."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from memgate.cli import main
from tests.conftest import BuildProgram

LEAKS = ("leak_small", "leak_many", "leak_tree", "leak_possible", "leak_reachable")
#: memprog.c's known truth for the five leak scenarios (see the comments there)
MEMCHECK_TRUTH = {
    "leak_definite_bytes": 348, "leak_definite_blocks": 5,
    "leak_indirect_bytes": 64, "leak_indirect_blocks": 1,
    "leak_possible_bytes": 48, "leak_possible_blocks": 1,
    "leak_reachable_bytes": 128, "leak_reachable_blocks": 1,
    "errors": 0,
}
SANITIZER_TRUTH = {key: MEMCHECK_TRUTH[key] for key in (
    "leak_definite_bytes", "leak_definite_blocks", "leak_indirect_bytes", "leak_indirect_blocks", "errors")}


def parse(tool: str, *files: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object], str]:
    code = main(["parse", "--tool", tool, *map(str, files)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else {}, captured.err


def test_memcheck_xml_and_text_written_by_hand(tmp_path: Path, build_program: BuildProgram,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    binary = build_program("memprog.c")
    xml, text = tmp_path / "run.xml", tmp_path / "run.log"
    subprocess.run(["valgrind", "--leak-check=full", "--show-leak-kinds=all", "--xml=yes",
                    f"--xml-file={xml}", str(binary), *LEAKS], check=True, capture_output=True)
    subprocess.run(["valgrind", "--leak-check=full", "--show-leak-kinds=all", f"--log-file={text}",
                    str(binary), *LEAKS, "invalid_read"], check=True, capture_output=True)

    code, record, _ = parse("valgrind", xml, capsys=capsys)
    assert code == 0
    assert {k: record["metrics"][k] for k in MEMCHECK_TRUTH} == MEMCHECK_TRUTH  # type: ignore[index]

    code, record, _ = parse("valgrind", text, capsys=capsys)
    assert code == 0
    metrics = record["metrics"]
    assert {k: metrics[k] for k in MEMCHECK_TRUTH} == {**MEMCHECK_TRUTH, "errors": 1}  # type: ignore[index]


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("sanitizer", ["address", "leak"])
def test_sanitizer_logs_written_by_hand(tmp_path: Path, build_program: BuildProgram, compiler: str,
                                        sanitizer: str, capsys: pytest.CaptureFixture[str]) -> None:
    binary = build_program("memprog.c", compiler=compiler, flags=(f"-fsanitize={sanitizer}",))
    variable = "ASAN_OPTIONS" if sanitizer == "address" else "LSAN_OPTIONS"
    env = {**os.environ, variable: f"log_path={tmp_path}/san"}
    subprocess.run([str(binary), *LEAKS], env=env, capture_output=True)
    logs = sorted(tmp_path.glob("san.*"))
    assert len(logs) == 1

    code, record, _ = parse("asan" if sanitizer == "address" else "lsan", *logs, capsys=capsys)
    assert code == 0
    assert {k: record["metrics"][k] for k in SANITIZER_TRUTH} == SANITIZER_TRUTH  # type: ignore[index]
    assert "leak_possible_bytes" not in record["metrics"], "LSan does not measure it: absent, not 0"  # type: ignore[operator]


def test_truncated_xml_is_exit_3_with_a_reason(tmp_path: Path, build_program: BuildProgram,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    binary = build_program("memprog.c")
    xml = tmp_path / "run.xml"
    subprocess.run(["valgrind", "--leak-check=full", "--xml=yes", f"--xml-file={xml}", str(binary),
                    "invalid_read", *LEAKS], check=True, capture_output=True)
    data = xml.read_bytes()
    xml.write_bytes(data[: data.index(b"<errorcounts>")])  # what a SIGKILLed valgrind leaves

    code, record, err = parse("valgrind", xml, capsys=capsys)
    assert code == 3
    assert record["status"] == "incomplete"
    assert err.startswith("memgate: error: the output is incomplete") and "killed" in err
    assert err.count("\n") == 1


def test_garbage_is_exit_3_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.xml"
    junk.write_bytes(b"\x00\xffnot valgrind at all\n" * 10)
    code, _, err = parse("valgrind", junk, capsys=capsys)
    assert code == 3
    assert str(junk) in err and err.count("\n") == 1
