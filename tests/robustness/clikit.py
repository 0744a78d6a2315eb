"""The real CLI run in-process, and what a user sees of it: the exit code and the one error line."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from memgate.cli import main

ERROR_PREFIX = "memgate: error: "


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith(ERROR_PREFIX)]

    def assert_clean(self) -> None:
        """No traceback, no internal error (exit 4): whatever went wrong was a sentence."""
        for stream in (self.out, self.err):
            assert "Traceback" not in stream, stream
            assert "internal error" not in stream, stream
        assert self.code != 4

    def one_error(self, code: int, *words: str) -> str:
        """Exactly one ``memgate: error:`` line, with ``words`` in it, and exit ``code``."""
        self.assert_clean()
        assert self.code == code, (self.code, self.err)
        assert len(self.error_lines) == 1, self.err
        line = self.error_lines[0]
        for word in words:
            assert word in line, (word, line)
        return line


def memgate(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> CliRun:
    """``memgate ARGV...`` through ``memgate.cli.main``, with what it printed."""
    capsys.readouterr()
    code = main([str(argument) for argument in argv])
    captured = capsys.readouterr()
    return CliRun(code, captured.out, captured.err)


def toml_string(value: str | Path) -> str:
    """A TOML basic string for any path or text (JSON's escapes are TOML's)."""
    return json.dumps(str(value))


def suite_config(
    folder: Path,
    command: list[str],
    tool: str,
    *,
    name: str = "unit",
    timeout: str = "60s",
    top: str = "",
    suite: str = "",
) -> Path:
    """``folder/memgate.toml`` with one suite; ``top`` and ``suite`` add raw TOML lines."""
    arguments = ", ".join(toml_string(argument) for argument in command)
    path = folder / "memgate.toml"
    path.write_text(f"{top}\n[[suite]]\nname = {toml_string(name)}\ncommand = [{arguments}]\n"
                    f"tool = {toml_string(tool)}\ntimeout = {toml_string(timeout)}\n{suite}\n")
    return path


def tree_snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: to show that nothing was overwritten."""
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text))
