"""memgate.files.write_atomically, and every writer of baselines and reports that goes through it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from recordkit import suite

from memgate.baselines.files import write_baseline
from memgate.baselines.model import Baseline
from memgate.errors import UsageError
from memgate.files import write_atomically, write_requested_file
from memgate.records import Report
from memgate.report.json import write_report


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test; the previous one comes back afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_umask(mask: int) -> None:
        os.umask(mask)

    yield set_umask
    os.umask(previous)


def write_a_baseline(folder: Path) -> Path:
    return write_baseline(folder, Baseline.from_suite(suite("unit")))


def write_a_json_report(folder: Path) -> Path:
    report = Report(memgate_version="0.1.0", created_at="2024-01-01T00:00:00Z", suites=(suite("unit"),))
    return write_report(folder / "report.json", report)


def write_markdown(folder: Path) -> Path:
    write_requested_file(folder / "comment.md", "# memgate\n", what="the Markdown")
    return folder / "comment.md"


def write_with_the_helper(folder: Path) -> Path:
    write_atomically(folder / "file.txt", "text\n")
    return folder / "file.txt"


WRITERS = [write_a_baseline, write_a_json_report, write_markdown, write_with_the_helper]


@pytest.mark.parametrize("writer", WRITERS, ids=lambda writer: writer.__name__)
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_users_umask_not_0600(tmp_path: Path, umask: Callable[[int], None],
                                            writer: Callable[[Path], Path], mask: int, mode: int) -> None:
    """The next CI step, an artifact upload as another user or a teammate must read them."""
    umask(mask)
    path = writer(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    path = writer(tmp_path)  # replacing an existing file too
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_text_is_utf8_and_bytes_are_kept(tmp_path: Path) -> None:
    write_atomically(tmp_path / "text", "décodé\n")
    assert (tmp_path / "text").read_bytes() == "décodé\n".encode()
    write_atomically(tmp_path / "bytes", b"\x00\xff\r\n")
    assert (tmp_path / "bytes").read_bytes() == b"\x00\xff\r\n"


def test_a_failed_write_leaves_what_was_there_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "file.txt"
    path.write_text("old\n")
    with pytest.raises(TypeError):  # fails while writing the temporary file
        write_atomically(path, 12)  # type: ignore[arg-type]
    assert path.read_text() == "old\n"
    folder = tmp_path / "folder"
    (folder / "inside").mkdir(parents=True)
    with pytest.raises(OSError):  # fails at the rename: a folder is in the way
        write_atomically(folder, "new\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "folder"]
    assert [p.name for p in folder.iterdir()] == ["inside"]


def test_a_link_is_replaced_not_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("untouched\n")
    link = tmp_path / "link.txt"
    link.symlink_to(elsewhere)
    write_atomically(link, "new\n")
    assert not link.is_symlink() and link.read_text() == "new\n"
    assert elsewhere.read_text() == "untouched\n"


def test_a_pipe_or_a_terminal_is_written_in_place(tmp_path: Path) -> None:
    """``--markdown /dev/stdout``: renaming over a device would replace it (as root, in /dev)."""
    link = tmp_path / "null"
    link.symlink_to(os.devnull)
    write_atomically(link, "gone\n")
    assert link.is_symlink()
    write_atomically(Path(os.devnull), "gone\n")
    assert stat.S_ISCHR(Path(os.devnull).stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]


def test_a_requested_file_gets_its_folders_and_a_bad_path_says_what_was_written(tmp_path: Path) -> None:

    target = tmp_path / "reports" / "deep" / "report.md"
    write_requested_file(target, "# memgate\n", what="the Markdown report")
    assert target.read_text(encoding="utf-8") == "# memgate\n"
    (tmp_path / "plain").write_text("a file, not a folder")  # mkdir of its "folder" fails
    with pytest.raises(UsageError, match="^cannot write the Markdown report: File exists$") as caught:
        write_requested_file(tmp_path / "plain" / "report.md", "x", what="the Markdown report")
    assert caught.value.hint == "choose a writable path"

def test_a_requested_file_makes_the_folder_and_says_when_it_cannot(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "report.md"
    write_requested_file(path, "text", what=str(path))
    assert path.read_text() == "text"
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot write") as raised:
        write_requested_file(tmp_path / "file" / "report.md", "text", what="the report")
    assert raised.value.hint == "choose a writable path"
