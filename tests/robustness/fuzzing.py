"""Mutated real tool outputs for every parser, and the property they must keep: whatever the bytes,
``parse`` gives clean records (``ProcessRecord``s, possibly incomplete) or raises a ``MemgateError``
with a one-line message; never another exception.

Shared by tests/robustness/test_fuzz_parsers.py (a few examples per parser, in every test run) and
bench/fuzz.py (the same properties for minutes per parser).

A case is one saved real output of tests/data (with the files that go with it, such as memcheck's
xtree report beside its XML); one of its files is mutated by a list of operations:

- ``flip``: one byte changed; ``cut``: the file ends there; ``junk``: random bytes inserted;
- ``line``: a line inserted, random text or a real line from another output of the same tool (the
  right words in the wrong place); ``drop`` / ``repeat``: a line removed or written twice;
- ``number``: a run of digits replaced by 0, a number of 21 or 5,000 digits, a negative one or nothing.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from memgate.errors import MemgateError
from memgate.records import ProcessRecord
from memgate.tools import get_tool

DATA = Path(__file__).resolve().parent.parent / "data"
NUMBERS = (b"0", b"-1", b"-4096", b"18446744073709551617", b"99999999999999999999999999999999", b"",
           b"1.5", b"0x10", b"\xd9\xa3",  # ARABIC-INDIC DIGIT THREE, which int() accepts
           b"9" * 21, b"9" * 5000)  # longer than any count; int() refuses more than 4,300 digits
_LINES_KEPT = 400  # real lines per target offered to the ``line`` operation


@dataclass(frozen=True)
class Case:
    """A saved output: its files by name, and which one is mutated."""

    name: str
    files: dict[str, bytes]
    target: str


@dataclass(frozen=True)
class Target:
    """One parser, fed the cases of one kind of output."""

    name: str
    tool: str
    cases: tuple[Case, ...]
    real_lines: tuple[bytes, ...] = field(default=(), repr=False)


def _zstd_text(path: Path) -> bytes:
    zstd = shutil.which("zstd")
    if zstd is None:
        raise RuntimeError("zstd is needed to read the saved heaptrack traces")
    return subprocess.run([zstd, "-dcq", str(path)], capture_output=True, check=True).stdout


def _cases(paths: Sequence[Path], *, companions: Callable[[Path], list[Path]] = lambda _: [],
           rename: Callable[[Path], str] = lambda path: path.name,
           read: Callable[[Path], bytes] = Path.read_bytes) -> tuple[Case, ...]:
    cases = []
    for path in sorted(paths):
        files = {rename(path): read(path)}
        files.update({other.name: other.read_bytes() for other in companions(path)})
        cases.append(Case(name=f"{path.parent.name}/{path.name}", files=files, target=rename(path)))
    return tuple(cases)


def _xtree_of(xml: Path) -> list[Path]:
    return sorted(xml.parent.glob(xml.name.replace(".xml", ".xtmemory.kcg")))


def _with_lines(target: Target) -> Target:
    lines: list[bytes] = []
    for case in target.cases:
        lines += [line for line in case.files[case.target].splitlines() if line.strip()]
    step = max(1, len(lines) // _LINES_KEPT)
    return Target(target.name, target.tool, target.cases, tuple(lines[::step]))


def _targets() -> dict[str, Target]:
    valgrind = DATA / "memcheck"
    xmls = [path for path in valgrind.glob("*/*.xml")]
    with_xtree = [path for path in xmls if _xtree_of(path)]
    asan_logs = list((DATA / "asan").glob("*.log"))
    targets = [
        Target("asan", "asan", _cases(asan_logs)),
        Target("lsan", "lsan", _cases(asan_logs)),
        Target("valgrind-xml", "memcheck", _cases(xmls, companions=_xtree_of)),
        Target("valgrind-xtree", "memcheck", tuple(
            Case(f"{xml.parent.name}/xtree", {xml.name: xml.read_bytes(), _xtree_of(xml)[0].name:
                                             _xtree_of(xml)[0].read_bytes()}, _xtree_of(xml)[0].name)
            for xml in sorted(with_xtree))),
        Target("valgrind-text", "memcheck", _cases(
            [path for path in valgrind.glob("text-*/*.log")] + list(valgrind.glob("text-*/stderr.log")))),
        Target("dhat", "dhat", _cases(list((DATA / "dhat").rglob("*.json")))),
        Target("massif", "massif", _cases(
            [path for path in (DATA / "massif").rglob("*")
             if path.is_file() and not path.name.endswith(".log")])),
        Target("memusage", "memusage", _cases(list((DATA / "memusage").rglob("*.stderr")))),
        # heaptrack's traces as the text zstd decompresses them to (a mutated .zst is mostly a zstd
        # error), and as the compressed files themselves
        Target("heaptrack", "heaptrack", _cases(
            list((DATA / "heaptrack").glob("*.zst")), rename=lambda path: f"heaptrack.{path.stem}.txt",
            read=_zstd_text)),
        Target("go", "go", _cases([path for path in (DATA / "go").iterdir() if path.is_file()])),
        Target("heaptrack-zst", "heaptrack", _cases(list((DATA / "heaptrack").glob("*.zst")))),
        Target("heaptrack-gz", "heaptrack", _cases(
            list((DATA / "heaptrack").glob("*.zst")), rename=lambda path: f"heaptrack.{path.stem}.gz",
            read=lambda path: gzip.compress(_zstd_text(path), mtime=0))),
    ]
    return {target.name: _with_lines(target) for target in targets}


TARGETS = _targets()


# --------------------------------------------------------------------------------------------------
# Mutations

Operation = tuple[str, int, bytes]  # kind, where (0 to 65535: a fraction of the file), what


def operations(real_lines: Sequence[bytes]) -> st.SearchStrategy[list[Operation]]:
    where = st.integers(min_value=0, max_value=0xFFFF)
    payload = st.one_of(
        st.binary(min_size=1, max_size=64),
        st.text(max_size=80).map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.sampled_from(list(real_lines) or [b"x"]),
        st.sampled_from([b"<", b"</error>", b"<error>", b"&", b"&#0;", b"]]>", b"{", b"}", b"\"", b",",
                         b"\x00", b"\xff\xfe", b"\r", b"\n\n", b"==1==", b"    #0 0x1 in f a.c:1",
                         b"=" * 65]),
    )
    one = st.one_of(
        st.tuples(st.just("flip"), where, st.binary(min_size=1, max_size=1)),
        st.tuples(st.just("cut"), where, st.just(b"")),
        st.tuples(st.just("junk"), where, payload),
        st.tuples(st.just("line"), where, payload),
        st.tuples(st.just("drop"), where, st.just(b"")),
        st.tuples(st.just("repeat"), where, st.just(b"")),
        st.tuples(st.just("number"), where, st.sampled_from(NUMBERS)),
    )
    return st.lists(one, min_size=1, max_size=4)


def _at(data: bytes, where: int) -> int:
    return len(data) * where // 0x10000


def _line_bounds(data: bytes, offset: int) -> tuple[int, int]:
    start = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    return start, len(data) if end < 0 else end + 1


def _number(data: bytes, where: int, replacement: bytes) -> bytes:
    runs: list[tuple[int, int]] = []
    start = -1
    for index, byte in enumerate(data):
        if 48 <= byte <= 57:
            if start < 0:
                start = index
        elif start >= 0:
            runs.append((start, index))
            start = -1
    if start >= 0:
        runs.append((start, len(data)))
    if not runs:
        return data
    begin, end = runs[len(runs) * where // 0x10000]
    return data[:begin] + replacement + data[end:]


def mutate(data: bytes, ops: Sequence[Operation]) -> bytes:
    for kind, where, what in ops:
        offset = _at(data, where)
        if kind == "flip" and data:
            offset = min(offset, len(data) - 1)
            data = data[:offset] + bytes([data[offset] ^ (what[0] or 0xFF)]) + data[offset + 1:]
        elif kind == "cut":
            data = data[:offset]
        elif kind == "junk":
            data = data[:offset] + what + data[offset:]
        elif kind == "line":
            start, _ = _line_bounds(data, offset)
            data = data[:start] + what.rstrip(b"\n") + b"\n" + data[start:]
        elif kind in ("drop", "repeat") and data:
            start, end = _line_bounds(data, min(offset, len(data) - 1))
            line = data[start:end]
            data = data[:start] + (line * 2 if kind == "repeat" else b"") + data[end:]
        elif kind == "number":
            data = _number(data, where, what)
    return data


# --------------------------------------------------------------------------------------------------
# The property


def check_parse(target: Target, case: Case, data: bytes, folder: Path) -> str:
    """Write ``case`` with its target file replaced by ``data`` and parse it: "records" or "error"
    when the property holds, an AssertionError (or the parser's own exception) when it does not."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    paths = []
    for name, content in case.files.items():
        path = folder / name
        path.write_bytes(data if name == case.target else content)
        paths.append(path)
    try:
        records = get_tool(target.tool).parse(paths)
    except MemgateError as error:
        line = error.one_line()
        assert "\n" not in line and "\r" not in line, f"a message of several lines: {line!r}"
        return "error"
    assert isinstance(records, list) and records, records
    for record in records:
        assert isinstance(record, ProcessRecord), record
        record.model_dump_json()  # valid Unicode everywhere: the report can be written
        assert all(type(value) is int and value >= 0 for value in record.metrics.values()), record.metrics
        assert all(leak.bytes >= 0 and leak.blocks >= 0 for leak in record.leaks), record.leaks
        assert all(error.count >= 1 for error in record.errors), record.errors
        assert record.complete or record.incomplete_reason
        assert "\n" not in (record.incomplete_reason or ""), "memgate prints the reason on one line"
    return "records"
