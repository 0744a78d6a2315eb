"""Shared fixtures: C/C++ test programs compiled at test time, and a guard against network access."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PROGRAMS = Path(__file__).parent / "programs"

BuildProgram = Callable[..., Path]


@pytest.fixture(scope="session")
def build_program(tmp_path_factory: pytest.TempPathFactory) -> BuildProgram:
    """Compile ``tests/programs/<source>`` once per session and flag set; return the binary's path.

    ``build_program("memprog.c", compiler="clang", flags=("-fsanitize=address",))``
    ``libs`` come after the source (``("-lgtest", "-lgtest_main", "-pthread")``).
    Skips the test when the compiler is missing (clang is optional on a developer machine; .ci/run
    installs it).
    """
    out_dir = tmp_path_factory.mktemp("programs")
    built: dict[tuple[str, str, tuple[str, ...]], Path] = {}

    def build(source: str, *, compiler: str = "gcc", flags: tuple[str, ...] = (),
              libs: tuple[str, ...] = ()) -> Path:
        key = (source, compiler, (*flags, *libs))
        if key in built:
            return built[key]
        if source.endswith(".cpp"):
            compiler = {"gcc": "g++", "clang": "clang++"}.get(compiler, compiler)
        if shutil.which(compiler) is None:
            pytest.skip(f"{compiler} is not installed")
        stem = Path(source).stem
        binary = out_dir / f"{stem}-{compiler}-{len(built)}"
        command = [compiler, "-g", "-O0", "-fno-omit-frame-pointer", *flags, "-o", str(binary),
                   str(PROGRAMS / source), *libs]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise AssertionError(f"compile failed: {' '.join(command)}\n{result.stderr}")
        built[key] = binary
        return binary

    return build


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test may reach a host other than loopback."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise AssertionError(f"test tried to reach {host}: only loopback is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield
