"""Rewrite the saved sanitizer logs of this folder from real runs (python tests/data/asan/regenerate.py).

Each case builds a program of tests/programs with gcc or clang, runs it with the options memgate's
``asan``/``lsan`` tool sets (plus the case's own) and keeps the log the runtime wrote. The logs were
made with gcc 12.2 and clang 14.0.6 on Debian 12; the expectations in tests/tools/test_asan.py are
the programs' known truth, so a regenerated log must still meet them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PROGRAMS = ROOT / "tests" / "programs"
sys.path.insert(0, str(ROOT))

from memgate.tools.asan import ASAN, LSAN, SanitizerTool  # noqa: E402
from memgate.tools.base import ToolOptions  # noqa: E402

LEAKS = ["leak_small", "leak_many", "leak_tree", "leak_possible", "leak_reachable"]
RECOVER = ["leak_small", "invalid_read", "invalid_write", "use_after_free", "double_free", "stack_overflow",
           "leak_many"]

@dataclass(frozen=True)
class Case:
    source: str
    compiler: str
    flags: tuple[str, ...]
    tool: SanitizerTool
    arguments: list[str]
    user_options: str = ""
    capture_stderr: bool = False  # no log_path: what a user who ran `prog 2>&1 | tee` has
    wrapper: tuple[str, ...] = ()
    kill_after: float | None = None  # seconds, then SIGKILL (a timeout)


ASAN_FLAGS = ("-fsanitize=address",)
LSAN_FLAGS = ("-fsanitize=leak",)
RECOVER_FLAGS = ("-fsanitize=address", "-fsanitize-recover=address")

CASES: dict[str, Case] = {
    "gcc-asan-leaks": Case("memprog.c", "gcc", ASAN_FLAGS, ASAN, LEAKS),
    "clang-asan-leaks": Case("memprog.c", "clang", ASAN_FLAGS, ASAN, LEAKS),
    "gcc-lsan-leaks": Case("memprog.c", "gcc", LSAN_FLAGS, LSAN, LEAKS),
    "clang-lsan-leaks": Case("memprog.c", "clang", LSAN_FLAGS, LSAN, LEAKS),
    "gcc-asan-recover": Case("memprog.c", "gcc", RECOVER_FLAGS, ASAN, RECOVER, "halt_on_error=0"),
    "clang-asan-recover": Case("memprog.c", "clang", RECOVER_FLAGS, ASAN, RECOVER, "halt_on_error=0"),
    "clang-asan-symbolize0": Case("memprog.c", "clang", ASAN_FLAGS, ASAN, LEAKS, "symbolize=0"),
    "gcc-lsan-symbolize0": Case("memprog.c", "gcc", LSAN_FLAGS, LSAN, LEAKS, "symbolize=0"),
    "gcc-asan-crash": Case("memprog.c", "gcc", ASAN_FLAGS, ASAN, ["leak_small", "crash"]),
    "clang-lsan-crash": Case("memprog.c", "clang", LSAN_FLAGS, LSAN, ["leak_small", "crash"]),
    "gcc-asan-use-after-free": Case("memprog.c", "gcc", ASAN_FLAGS, ASAN, ["use_after_free"]),
    "clang-asan-stack-buffer-overflow": Case("memprog.c", "clang", ASAN_FLAGS, ASAN, ["stack_overflow"]),
    "clang-asan-double-free": Case("memprog.c", "clang", ASAN_FLAGS, ASAN, ["double_free"]),
    "gcc-asan-clean": Case("memprog.c", "gcc", ASAN_FLAGS, ASAN, ["churn=1000"]),
    "clang-lsan-clean": Case("memprog.c", "clang", LSAN_FLAGS, LSAN, ["clean"]),
    "gcc-lsan-ptrace": Case("memprog.c", "gcc", LSAN_FLAGS, LSAN, ["leak_small"],
                            wrapper=("strace", "-f", "-o", "/dev/null")),
    "clang-lsan-killed": Case("memprog.c", "clang", LSAN_FLAGS, LSAN, ["hang"], kill_after=1.0),
    "clang-asan-mismatch": Case("mismatch.cpp", "clang", ASAN_FLAGS, ASAN, []),
    "gcc-asan-mismatch-stderr": Case("mismatch.cpp", "gcc", ASAN_FLAGS, ASAN, [], capture_stderr=True),
    "gcc-asan-bad-free": Case("asan_extra.c", "gcc", ASAN_FLAGS, ASAN, ["bad_free"]),
    "clang-asan-size-too-big": Case("asan_extra.c", "clang", ASAN_FLAGS, ASAN, ["size_too_big"]),
    "gcc-asan-calloc-overflow": Case("asan_extra.c", "gcc", ASAN_FLAGS, ASAN, ["calloc_overflow"]),
    "clang-asan-global-overflow": Case("asan_extra.c", "clang", ASAN_FLAGS, ASAN, ["global_overflow"]),
    "clang-asan-memcpy-overlap": Case("asan_extra.c", "clang", ASAN_FLAGS, ASAN, ["memcpy_overlap"]),
    "gcc-asan-fpe": Case("asan_extra.c", "gcc", ASAN_FLAGS, ASAN, ["divide_by_zero"]),
    "gcc-asan-stack-overflow": Case("asan_extra.c", "gcc", ASAN_FLAGS, ASAN, ["recurse"]),
    "gcc-lsan-thread-leak": Case("asan_extra.c", "gcc", LSAN_FLAGS, LSAN, ["thread_leak"]),
    "gcc-asan-recheck": Case("asan_extra.c", "gcc", ASAN_FLAGS, ASAN, ["recheck"]),
    "clang-lsan-max-leaks": Case("asan_extra.c", "clang", LSAN_FLAGS, LSAN, ["leak_sites=5"], "max_leaks=2"),
}


def build(source: str, compiler: str, flags: tuple[str, ...], out: Path) -> Path:
    if source.endswith(".cpp"):
        compiler = {"gcc": "g++", "clang": "clang++"}[compiler]
    binary = out / f"{Path(source).stem}-{compiler}-{'-'.join(flag.strip('-') for flag in flags)}"
    if not binary.exists():
        command = [compiler, "-g", "-O0", "-fno-omit-frame-pointer", "-pthread", *flags]
        subprocess.run([*command, "-o", str(binary), str(PROGRAMS / source)], check=True, capture_output=True)
    return binary


def run_case(name: str, work: Path) -> None:
    case = CASES[name]
    tool = case.tool
    binary = build(case.source, case.compiler, case.flags, work)
    logdir = work / name
    logdir.mkdir()
    launch = tool.launch([*case.wrapper, str(binary), *case.arguments], logdir,
                         ToolOptions(env={tool.variable: case.user_options}))
    env = {**os.environ, **launch.env}
    if case.capture_stderr:
        env = {**os.environ, tool.variable: env[tool.variable].rsplit(":log_path=", 1)[0]}
    process = subprocess.Popen(launch.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if case.kill_after is not None:
        time.sleep(case.kill_after)
        process.kill()
    output, _ = process.communicate()
    if case.capture_stderr:
        (HERE / f"{name}.log").write_bytes(output)
        return
    logs = sorted(logdir.glob(f"{tool.name}.*"))
    if len(logs) != 1:
        raise SystemExit(f"{name}: expected one log, found {[log.name for log in logs]}")
    shutil.copyfile(logs[0], HERE / f"{name}.log")


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        for name in sys.argv[1:] or CASES:
            run_case(name, Path(temporary))
            print(f"wrote {name}.log")


if __name__ == "__main__":
    main()
