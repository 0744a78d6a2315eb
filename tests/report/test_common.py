"""The helpers every CI report shares (``memgate.report.common``): repo_relative and source_location, the
one place every report takes its paths from, and the one-line text cleaning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memgate.records import Frame, Leak, MemError, ProcessRecord, SuiteRecord
from memgate.report.common import (
    SourceLocation,
    finding_id,
    repo_relative,
    source_location,
    with_repo_relative_frames,
)

from .conftest import MEMPROG_PATH, REPO_ROOT


@pytest.mark.parametrize(("path", "expected"), [
    (str(REPO_ROOT / MEMPROG_PATH), MEMPROG_PATH),  # absolute, as gcc records a path it was given
    (f"{REPO_ROOT}/./tests/../tests/programs/memprog.c", MEMPROG_PATH),
    (str(REPO_ROOT / "generated" / "gone.c"), "generated/gone.c"),  # inside: kept even if not there now
    (MEMPROG_PATH, MEMPROG_PATH),  # relative to the root, where builds usually run
    (f"./{MEMPROG_PATH}", MEMPROG_PATH),
    (f"../{MEMPROG_PATH}", MEMPROG_PATH),  # from a build folder inside the repository
    (f"../../build/../{MEMPROG_PATH}", MEMPROG_PATH),
    ("memprog.c", None),  # relative to some other folder: names no file of the repository
    ("tests/programs", None),  # a folder, not a file
    ("/usr/include/c++/12/bits/new_allocator.h", None),
    (str(REPO_ROOT), None),
    (str(REPO_ROOT) + "-other/a.c", None),  # a sibling folder whose name starts the same
    ("..", None), (".", None), ("", None), (None, None), ("<unknown>", None), ("??", None),
    (f"{REPO_ROOT}/a\nb.c", None), (f"{REPO_ROOT}/\udcff.c", None),  # no report could carry these
])
def test_repo_relative(path: str | None, expected: str | None) -> None:
    assert repo_relative(path, REPO_ROOT) == expected
    assert repo_relative(path, str(REPO_ROOT)) == expected


def test_symlinked_root_and_relative_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout reached through a symlink: paths recorded either way are inside."""
    link = tmp_path / "checkout"
    link.symlink_to(REPO_ROOT, target_is_directory=True)
    assert repo_relative(str(REPO_ROOT / MEMPROG_PATH), link) == MEMPROG_PATH
    assert repo_relative(str(link / MEMPROG_PATH), REPO_ROOT) == MEMPROG_PATH
    monkeypatch.chdir(REPO_ROOT / "tests")
    assert repo_relative(str(REPO_ROOT / MEMPROG_PATH), "..") == MEMPROG_PATH
    assert os.getcwd() == str(REPO_ROOT / "tests")


def test_source_location_is_the_first_frame_in_the_repository() -> None:
    frames = (Frame(function="operator new", file="/usr/include/c++/12/new", line=3),
              Frame(function="make", file=MEMPROG_PATH, line=0),
              Frame(function="main", file=MEMPROG_PATH, line=9))
    assert source_location(frames, REPO_ROOT) == SourceLocation(MEMPROG_PATH, None)  # line 0: unknown
    assert source_location(frames[2:], REPO_ROOT) == SourceLocation(MEMPROG_PATH, 9)
    assert source_location(frames[:1], REPO_ROOT) is None
    assert source_location((), REPO_ROOT) is None


def test_finding_ids_are_stable_and_separate_their_parts() -> None:
    assert finding_id("site", "unit", "leak") == finding_id("site", "unit", "leak")
    assert finding_id("site", "unit", "leak") != finding_id("site", "unitleak")
    assert finding_id("a\udcff") == finding_id("a\udcff")  # undecodable bytes kept by a parser still hash
    # Pinned: a change here makes every finding "new" to GitLab and GitHub once.
    assert finding_id("site", "unit", "leak", "definite", "0123456789abcdef") == (
        "d111e6f12d4ea7414c4fc6b54b8beb1633c3c391f7e8e839e69fb75f292ae204")


def test_clean_makes_one_printable_line_of_tool_text() -> None:
    from memgate.report.common import MAX_TEXT, clean

    assert clean("leak in make_node") == "leak in make_node"
    assert clean("a\nb\x1b[31mc") == "a\ufffdb\ufffd[31mc"  # no new line, no terminal escape
    assert clean("abc\u202edef") == "abc\ufffddef"  # a bidi override would reorder what a reviewer reads
    long = clean("x" * (MAX_TEXT + 50))
    assert len(long) == MAX_TEXT and long.endswith("\u2026")
    assert clean("abcdef", limit=4) == "abc\u2026"


def test_frames_under_the_root_become_relative_and_the_rest_stay_as_given(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.c").write_text("int main(void) { return 0; }\n")
    inside = Frame(function="f", file=f"{tmp_path}/src/a.c", line=3, object=f"{tmp_path}/build/prog")
    outside = Frame(function="malloc", file="/usr/include/stdlib.h", object="/lib/libc.so.6")
    relative = Frame(function="g", file="./src/a.c", line=4)
    leak = Leak(kind="definite", bytes=8, blocks=1, stack=(outside, inside, relative), fingerprint="0" * 16,
                site="f")
    error = MemError(kind="InvalidRead", stack=(inside,), fingerprint="1" * 16, site="f")
    record = SuiteRecord(name="unit", tool="memcheck",
                         processes=(ProcessRecord(leaks=(leak,), errors=(error,)),))

    rewritten = with_repo_relative_frames(record, tmp_path)
    process = rewritten.processes[0]
    assert [(frame.file, frame.object) for frame in process.leaks[0].stack] == [
        ("/usr/include/stdlib.h", "/lib/libc.so.6"), ("src/a.c", "build/prog"), ("src/a.c", None)]
    assert process.errors[0].stack[0] is process.leaks[0].stack[1]  # one shared Frame, rewritten once
    assert process.leaks[0].stack[0] is outside
    untouched = record.model_copy(update={"processes": (ProcessRecord(leaks=(leak.model_copy(
        update={"stack": (outside,)}),)),)})
    assert with_repo_relative_frames(untouched, tmp_path) is untouched  # nothing to change: no copy
