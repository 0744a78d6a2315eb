"""Rewrite the saved memcheck outputs of this folder from real runs (python tests/data/memcheck/regenerate.py
[CASE...]).

Each case builds a program of tests/programs with gcc (-g -O0, as the tests' fixture does), runs it
under Valgrind and keeps what Valgrind wrote in ``<case>/``: for ``launch`` cases, the files of
memgate's own command line (``MEMCHECK.launch``: one XML and one xtree report per process); for
the others, the command line of the case (what a user who ran valgrind by hand gives ``memgate
parse``). The outputs were made with Valgrind 3.19.0, gcc 12.2 and glibc 2.36 on Debian 12; the
expectations in tests/tools/test_memcheck.py are the programs' known truth, so regenerated outputs
must still meet them.

Two cases are derived, not run, and say so in their name: ``protocol6-*`` rewrite a 3.19 XML as
Valgrind 3.26+ writes it (protocol 6: ``<heap_summary>``, ``<leak_summary>``, ``<error_summary>``,
after docs/internals/xml-output-protocol6.txt), with the figures of the same run's xtree report.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
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

from memgate.tools.base import ToolOptions  # noqa: E402
from memgate.tools.memcheck import MEMCHECK  # noqa: E402

LEAKS = ["leak_small", "leak_many", "leak_tree", "leak_possible", "leak_reachable"]
ERRORS = ["invalid_read", "invalid_write", "use_after_free", "double_free"]
KINDS = ["repeat_read=5", "uninit_cond", "syscall_param", "overlap", "fishy", "client_check", "free_stack"]


@dataclass(frozen=True)
class Case:
    source: str
    arguments: list[str]
    valgrind: list[str] | None = None  # None: memgate's launch; else this command line, %d = the case folder
    stderr_to: str | None = None  # keep the run's stderr (and stdout) in this file
    kill_after: float | None = None  # seconds, then this signal
    kill_with: int = signal.SIGKILL
    strip: bool = False  # strip the binary: frames with only an object and an address


TEXT = ["valgrind", "--leak-check=full", "--show-leak-kinds=all", "--log-file=%d/memcheck.%p.log"]
USER_XML = ["valgrind", "--xml=yes", "--xml-file=%d/memcheck.%p.xml"]
STDERR_FORK = ["valgrind", "--leak-check=full", "--trace-children=yes"]

CASES: dict[str, Case] = {
    "leaks": Case("memprog.c", LEAKS),
    "errors": Case("memprog.c", ERRORS),
    "kinds": Case("vgextra.c", KINDS),
    "fork": Case("memprog.c", ["fork_child_leak"]),
    "crash": Case("memprog.c", ["leak_small", "crash"]),
    "killed": Case("memprog.c", ["invalid_read", "leak_small", "hang"], kill_after=4.0),
    "terminated": Case("memprog.c", ["leak_small", "hang"], kill_after=4.0, kill_with=signal.SIGTERM),
    "mismatch": Case("mismatch.cpp", []),
    "leak-twice": Case("vgextra.c", ["leak_twice", "leak_chain"]),
    "stripped": Case("memprog.c", ["leak_small", "invalid_read"], strip=True),
    "clean": Case("memprog.c", ["churn=1000"]),
    "deep": Case("vgextra.c", ["deep=40"]),
    # what users run by hand
    "user-default-kinds": Case("memprog.c", [*LEAKS, "invalid_read"], [*USER_XML, "--leak-check=full"]),
    "user-fork-log-bug": Case("memprog.c", ["leak_small", "fork_child_leak"],
                              [*USER_XML, "--log-file=%d/vg.%p.log", "--leak-check=full",
                               "--trace-children=yes"]),
    "text-leaks-errors": Case("memprog.c", [*LEAKS, *ERRORS], TEXT),
    "text-kinds-recap": Case("vgextra.c", [*KINDS, "leak_twice", "leak_chain"], [*TEXT, "-s"]),
    "text-kinds-no-recap": Case("vgextra.c", ["repeat_read=5", "overlap", "leak_chain"], TEXT),
    "text-one-context": Case("vgextra.c", ["repeat_read=7", "leak_chain"], TEXT),
    "text-summary-only": Case("memprog.c", [*LEAKS, "invalid_read"], ["valgrind"], stderr_to="stderr.log"),
    "text-stderr-fork": Case("memprog.c", ["leak_small", "fork_child_leak", "invalid_write"],
                             STDERR_FORK, stderr_to="stderr.log"),
    "text-crash": Case("memprog.c", ["leak_small", "crash"], TEXT),
    "text-killed": Case("memprog.c", ["invalid_read", "hang"], TEXT, kill_after=4.0),
    "text-clean": Case("memprog.c", ["churn=1000"], TEXT),
}


def build(source: str, out: Path, strip: bool) -> Path:
    compiler = "g++" if source.endswith(".cpp") else "gcc"
    (out / "bin").mkdir(exist_ok=True)
    binary = out / "bin" / f"{Path(source).stem}{'-stripped' if strip else ''}"
    if not binary.exists():
        subprocess.run([compiler, "-g", "-O0", "-fno-omit-frame-pointer", "-o", str(binary),
                        str(PROGRAMS / source)], check=True, capture_output=True)
        if strip:
            subprocess.run(["strip", str(binary)], check=True)
    return binary


def run_case(name: str, work: Path) -> None:
    case = CASES[name]
    binary = build(case.source, work, case.strip)
    folder = work / name
    folder.mkdir()
    command = [str(binary), *case.arguments]
    if case.valgrind is None:
        argv = MEMCHECK.launch(command, folder, ToolOptions()).argv
    else:
        argv = [part.replace("%d", str(folder)) for part in case.valgrind] + command
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=folder)
    if case.kill_after is not None:
        time.sleep(case.kill_after)
        process.send_signal(case.kill_with)
    output, _ = process.communicate()
    if case.stderr_to:
        (folder / case.stderr_to).write_bytes(output)
    target = HERE / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folder, target)


def _xtree_totals(folder: Path) -> list[int]:
    (xtree,) = folder.glob("*.xtmemory.kcg")
    line = next(line for line in xtree.read_text().splitlines() if line.startswith("totals:"))
    words = line.split()[1:]
    return [0] * 6 if words == ["(null)"] else [int(word) for word in words]


def _protocol6(source: str, name: str, errors: int, contexts: int) -> None:
    """Rewrite ``source``'s XML as protocol 6, with the figures of its own xtree report."""
    folder = HERE / source
    (xml,) = folder.glob("*.xml")
    text = xml.read_text()
    in_use_bytes, in_use_blocks, allocated, allocs, _freed, frees = _xtree_totals(folder)
    kinds = {"definitely_lost": "Leak_DefinitelyLost", "indirectly_lost": "Leak_IndirectlyLost",
             "possibly_lost": "Leak_PossiblyLost", "still_reachable": "Leak_StillReachable"}
    totals = {tag: [0, 0] for tag in kinds}
    for error in re.findall(r"<error>.*?</error>", text, re.S):
        for tag, kind in kinds.items():
            if f"<kind>{kind}</kind>" in error:
                match = re.search(r"<text>([\d,]+)(?: \(([\d,]+) direct)?", error)
                assert match is not None
                own = match[2] or match[1]
                totals[tag][0] += int(own.replace(",", ""))
                totals[tag][1] += int(re.findall(r"<leakedblocks>(\d+)<", error)[0])
    heap = (f"<heap_summary>\n  <memory_in_use_at_exit>\n    <bytes>{in_use_bytes}</bytes>\n"
            f"    <blocks>{in_use_blocks}</blocks>\n  </memory_in_use_at_exit>\n  <total_heap_usage>\n"
            f"    <allocs>{allocs}</allocs>\n    <frees>{frees}</frees>\n"
            f"    <bytes_allocated>{allocated}</bytes_allocated>\n  </total_heap_usage>\n</heap_summary>\n\n"
            f"<all_heap_blocks_freed>{'true' if in_use_blocks == 0 else 'false'}</all_heap_blocks_freed>\n\n")
    leak = "".join(f"  <{tag}>\n    <bytes>{size}</bytes>\n    <in_blocks>{blocks}</in_blocks>\n  </{tag}>\n"
                   for tag, (size, blocks) in totals.items())
    leak = f"<leak_summary>\n{leak}  <suppressed>\n    <bytes>0</bytes>\n    <in_blocks>0</in_blocks>\n" \
           "  </suppressed>\n</leak_summary>\n\n"
    summary = (f"<error_summary>\n  <errors>{errors}</errors>\n"
               f"  <error_contexts>{contexts}</error_contexts>\n  <suppressed>0</suppressed>\n"
               "  <suppressed_contexts>0</suppressed_contexts>\n</error_summary>\n\n")
    text = text.replace("<protocolversion>4</protocolversion>", "<protocolversion>6</protocolversion>")
    finished = re.search(r"<status>\s*<state>FINISHED</state>.*?</status>\n\n", text, re.S)
    assert finished is not None
    text = text[: finished.end()] + heap + text[finished.end():]
    if in_use_blocks:
        counts = text.index("<errorcounts>")
        text = text[:counts] + leak + text[counts:]
    text = text.replace("</valgrindoutput>", summary + "</valgrindoutput>")
    target = HERE / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    (target / xml.name).write_text(text)


DERIVED = {
    # name: (source case, ERROR SUMMARY errors, contexts): leak records count as errors there
    "protocol6-leaks": ("leaks", 4, 4),
    "protocol6-clean": ("clean", 0, 0),
}


def main() -> None:
    names = sys.argv[1:] or [*CASES, *DERIVED]
    with tempfile.TemporaryDirectory() as temporary:
        for name in names:
            if name in CASES:
                run_case(name, Path(temporary))
                print(f"wrote {name}/")
    for name in names:
        if name in DERIVED:
            _protocol6(*DERIVED[name][:1], name, *DERIVED[name][1:])
            print(f"derived {name}/ from {DERIVED[name][0]}/")


if __name__ == "__main__":
    os.environ.pop("VALGRIND_OPTS", None)
    main()
