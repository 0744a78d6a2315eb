"""A tool's programs and environment: finding them on PATH, their versions, and the environment a
suite runs under a tool with."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from memgate.errors import ToolError
from memgate.tools.base import ToolOptions

_VERSION_TIMEOUT = 30.0


def require_program(name: str, install_hint: str) -> str:
    """The program's path on PATH; ``ToolError`` with the install hint when it is missing."""
    path = shutil.which(name)
    if path is None:
        raise ToolError(f"{name} is not installed (not found on PATH)", hint=install_hint)
    return path


def program_version(argv: Sequence[str], install_hint: str) -> str:
    """The first line a program prints for ``--version``."""
    require_program(argv[0], install_hint)
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=_VERSION_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ToolError(f"cannot run {' '.join(argv)}: {error}", hint=install_hint) from None
    lines = (result.stdout or result.stderr).strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ToolError(f"{' '.join(argv)} failed (exit {result.returncode})", hint=install_hint)
    return lines[0].strip()


def tool_env(options: ToolOptions, **variables: str) -> dict[str, str]:
    """The suite's environment with the tool's own variables on top."""
    return {**options.env, **variables}
