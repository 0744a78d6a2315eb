"""The one-line error: whatever text a tool or a file name brings, it prints as one harmless line."""

from __future__ import annotations

from pathlib import Path

import pytest

from memgate.cli import main
from memgate.config import load_config
from memgate.errors import ConfigError, MemgateError, ParseError, ToolError, printable
from memgate.tools import get_tool

HOSTILE = "red \x1b[31mtext\x1b[0m\rover\nnext\tcol"


def test_control_characters_become_visible_escapes() -> None:
    error = ToolError(HOSTILE, path=f"/tmp/{HOSTILE}.xml", hint="bell\x07 and NUL\x00")
    assert error.one_line() == (
        "red \\x1b[31mtext\\x1b[0m\\x0dover next col (/tmp/red \\x1b[31mtext\\x1b[0m\\x0dover next col.xml): "
        "bell\\x07 and NUL\\x00"
    )
    assert error.message == HOSTILE, "the message itself keeps the tool's text; only the line is cleaned"


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\r\nb", "a b"),
    ("a\x7fb", "a\\x7fb"),
    ("a\x9b31mb", "a\\x9b31mb"),  # C1 CSI: a one-byte ESC [ on some terminals
    ("a\x85b", "a\\x85b"),  # NEL, a line break to str.splitlines
    ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
    ("a\x0b\x0c\x1cb", "a\\x0b\\x0c\\x1cb"),
    ("déjà vu \u00a0 \u4e2d", "déjà vu \u00a0 \u4e2d"),  # printable text is left alone
])
def test_every_line_break_and_control_character(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert len(MemgateError(raw).one_line().splitlines()) == 1


def test_a_hostile_file_name_through_the_cli_is_one_escaped_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real file with ESC, CR and a newline in its name, refused by the real parser."""
    log = tmp_path / "log\x1b[31m\rred\n.out"
    log.write_bytes(b"\x00\x01 not a log\n")
    with pytest.raises(ParseError) as raised:
        get_tool("valgrind").parse([log])
    assert raised.value.path == str(log), "the parser keeps the real name; only the printed line escapes it"
    capsys.readouterr()
    assert main(["parse", "--tool", "valgrind", str(log)]) == 3
    err = capsys.readouterr().err
    shown = f"{tmp_path}/log\\x1b[31m\\x0dred .out"
    assert err == (f"memgate: error: a binary file, not Valgrind output ({shown}): give memgate"
                   " memcheck's XML (--xml-file), its log (--log-file) or its stderr\n")


def test_a_config_file_name_with_control_characters(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "memgate\x1b[2J\r\n.toml"  # CR LF: one line break, one space
    config.write_text('fail_on_new_errors = "yes"\n[[suite]]\nname = "a"\ncommand = ["x"]\ntool = "rusage"\n')
    capsys.readouterr()
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\r" not in err
    assert f"({tmp_path}/memgate\\x1b[2J .toml)" in err
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert raised.value.path == str(config)


def test_an_incomplete_log_with_a_hostile_name_through_parse(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """memgate parse's own "output is incomplete" line, for a real crashed LSan log."""
    source = Path(__file__).parent / "data" / "asan" / "clang-lsan-crash.log"
    log = tmp_path / "lsan\x1b[2J\r.log"
    log.write_bytes(source.read_bytes())
    capsys.readouterr()
    assert main(["parse", "--tool", "lsan", str(log)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("memgate: error: the output is incomplete (") and err.count("\n") == 1
    assert "lsan\\x1b[2J\\x0d.log" in err and "\x1b" not in err and "\r" not in err
