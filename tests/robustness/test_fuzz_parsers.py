"""Every parser on mutated real outputs (byte flips, cuts, junk, lines out of place, odd numbers):
clean records or a one-line MemgateError, never another exception. A few examples per parser here;
``python bench/fuzz.py --tool T --minutes M`` runs the same property for as long as asked."""

from __future__ import annotations

import gc
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memgate.errors import ParseError
from memgate.tools import TOOL_NAMES, get_tool

from .fuzzing import DATA, TARGETS, Operation, check_parse, mutate, operations

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_every_parsing_tool_is_fuzzed() -> None:
    parsing = set(TOOL_NAMES) - {"rusage"}  # rusage measures a live run; it parses nothing
    assert {target.tool for target in TARGETS.values()} == parsing
    assert all(target.cases for target in TARGETS.values())


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_unmutated_cases_parse(name: str, tmp_path: Path) -> None:
    target = TARGETS[name]
    for case in target.cases:
        check_parse(target, case, case.files[case.target], tmp_path)


@pytest.mark.parametrize("name", sorted(TARGETS))
@FAST
@given(data=st.data())
def test_mutated_outputs_give_records_or_a_clean_error(name: str, data: st.DataObject,
                                                       tmp_path: Path) -> None:
    target = TARGETS[name]
    case = data.draw(st.sampled_from(target.cases), label="case")
    ops: list[Operation] = data.draw(operations(target.real_lines), label="operations")
    check_parse(target, case, mutate(case.files[case.target], ops), tmp_path / "case")


@pytest.mark.parametrize(("ops", "expected"), [
    ([("cut", 0x8000, b"")], b"abcd"),
    ([("flip", 0, b"\x01")], b"`bcdefgh"),
    ([("junk", 0xFFFF, b"!")], b"abcdefg!h"),
    ([("line", 0x8000, b"new")], b"new\nabcdefgh"),
    ([("number", 0, b"-1")], b"abcdefgh"),
])
def test_mutations(ops: list[Operation], expected: bytes) -> None:
    assert mutate(b"abcdefgh", ops) == expected


def test_line_and_number_mutations() -> None:
    text = b"a 12\nb 345\nc 6\n"
    assert mutate(text, [("drop", 0x8000, b"")]) == b"a 12\nc 6\n"
    assert mutate(text, [("repeat", 0, b"")]) == b"a 12\na 12\nb 345\nc 6\n"
    assert mutate(text, [("number", 0x8000, b"-1")]) == b"a 12\nb -1\nc 6\n"
    assert mutate(text, [("line", 0xFFFF, b"z\n")]) == b"a 12\nb 345\nz\nc 6\n"


# --------------------------------------------------------------------------------------------------
# What fuzzing found, each as the smallest real output that showed it


def test_memusage_counts_that_cannot_be_are_a_parse_error(tmp_path: Path) -> None:
    """A malloc line with more failed calls than calls gave alloc_calls -8,391,899."""
    source = DATA / "memusage" / "run-peak-calls-fork" / "memusage.14441.stderr"
    text = source.read_bytes()
    path = tmp_path / source.name
    path.write_bytes(text.replace(b"         15        8391908              0",
                                  b" 0       15        8391908              0"))
    with pytest.raises(ParseError, match="counts 0 calls, fewer than its 8391908 failed calls") as raised:
        get_tool("memusage").parse([path])
    assert raised.value.path == str(path)


@pytest.mark.parametrize("tool", ["asan", "lsan"])
def test_two_sets_of_exit_statistics_without_a_process_prefix_are_a_parse_error(tool: str,
                                                                                 tmp_path: Path) -> None:
    """A clean log whose first line came twice gave no record at all: two sets of exit statistics
    say two processes, and no ==PID== line told them apart, so the split found none."""
    text = (DATA / "asan" / "gcc-asan-clean.log").read_bytes()
    path = tmp_path / "asan.log"
    path.write_bytes(b"AddressSanitizer exit stats:\n" + text)
    with pytest.raises(ParseError, match="several processes"):
        get_tool(tool).parse([path])


def test_a_heaptrack_free_without_its_allocation_is_a_parse_error(tmp_path: Path) -> None:
    """A trace with one "+" line gone gave heap_end_bytes -5,242,780."""
    (target,) = [case for case in TARGETS["heaptrack"].cases if "peak-calls" in case.name]
    lines = target.files[target.target].split(b"\n")
    first_allocation = next(index for index, line in enumerate(lines) if line.startswith(b"+ "))
    path = tmp_path / "heaptrack.txt"
    path.write_bytes(b"\n".join(lines[:first_allocation] + lines[first_allocation + 1:]))
    with pytest.raises(ParseError, match="when none is allocated"):
        get_tool("heaptrack").parse([path])


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")
def test_a_zst_file_that_is_no_trace_leaves_no_pipe_open(tmp_path: Path) -> None:
    """zstd's output pipe stayed open when the reader refused the text (a ResourceWarning, an error
    under filterwarnings = error)."""
    path = tmp_path / "heaptrack.zst"
    path.write_bytes(subprocess.run(["zstd", "-c"], input=b"this is no trace\n", capture_output=True,
                                    check=True).stdout)
    with pytest.raises(ParseError, match="does not start with a version line"):
        get_tool("heaptrack").parse([path])
    gc.collect()


def test_a_negative_dhat_figure_is_a_parse_error(tmp_path: Path) -> None:
    """A program point with "tbk": -4096 gave alloc_calls -4,072."""
    source = DATA / "dhat" / "threads.json"
    path = tmp_path / source.name
    text = source.read_bytes()
    path.write_bytes(re.sub(rb'"tbk":\d+', b'"tbk":-4096', text, count=1))
    assert path.read_bytes() != text
    with pytest.raises(ParseError, match="not integers of 0 or more"):
        get_tool("dhat").parse([path])


@pytest.mark.parametrize(("old", "new"), [(rb"^(i \S+) \S+", rb"\1 18446744073709551617"),
                                          (rb"^a [0-9a-f]+", rb"a -10")])
def test_heaptrack_numbers_out_of_range_are_a_parse_error(old: bytes, new: bytes, tmp_path: Path) -> None:
    """A number beyond 64 bits raised OverflowError out of the parser; a negative size made negative
    figures."""
    (target,) = [case for case in TARGETS["heaptrack"].cases if "peak-calls" in case.name]
    text = target.files[target.target]
    path = tmp_path / "heaptrack.txt"
    path.write_bytes(re.sub(old, new, text, count=1, flags=re.MULTILINE))
    assert path.read_bytes() != text
    with pytest.raises(ParseError, match="a line heaptrack does not write"):
        get_tool("heaptrack").parse([path])


def test_an_error_element_that_is_not_whole_on_its_own_is_a_parse_error(tmp_path: Path) -> None:
    """``<valgrindoutput><error>``: the scanner cut an <error> up to the first </error>, which held
    other elements; ElementTree's own ParseError came out of memgate (exit 4)."""
    source = DATA / "memcheck" / "kinds" / "memcheck.32701.xml"
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes().replace(b"<valgrindoutput>", b"<valgrindoutput><error>", 1))
    with pytest.raises(ParseError, match="broken Valgrind XML: an element that is not whole on its own"):
        get_tool("valgrind").parse([path])


@pytest.mark.parametrize("value", [b"-1", b"+5", b"1_000", b"\xd9\xa3", b"\x1e4"])
def test_a_massif_figure_that_is_not_digits_is_a_parse_error(value: bytes, tmp_path: Path) -> None:
    """mem_heap_B=-1 gave heap_peak_bytes -1 (int() takes signs, underscores and other digits)."""
    source = DATA / "massif" / "massif.out.4242"
    path = tmp_path / source.name
    path.write_bytes(re.sub(rb"mem_heap_B=\d+", b"mem_heap_B=" + value, source.read_bytes(), count=1))
    with pytest.raises(ParseError, match="mem_heap_B is not a number of 0 or more"):
        get_tool("massif").parse([path])


@pytest.mark.parametrize(("tool", "source", "old", "new"), [
    ("valgrind", "memcheck/fork/memcheck.32750.xml", b"<protocoltool>memcheck", b"<protocoltool>m\nemcheck"),
    ("dhat", "dhat/threads.json", b'"dhatFileVersion":2', b'"dhatFileVersion":"2\\n3"'),
    ("dhat", "dhat/threads.json", b'"mode":"heap"', b'"mode":"he\\r\\nap"'),
])
def test_text_from_the_file_keeps_the_message_on_one_line(tool: str, source: str, old: bytes, new: bytes,
                                                          tmp_path: Path) -> None:
    """A tool name with a line break in it made a message of two lines."""
    text = (DATA / source).read_bytes()
    assert old in text
    path = tmp_path / Path(source).name
    path.write_bytes(text.replace(old, new, 1))
    with pytest.raises(ParseError) as raised:
        get_tool(tool).parse([path])
    assert "\n" not in raised.value.one_line() and "\r" not in raised.value.one_line()


@pytest.mark.parametrize(("old", "new"), [
    (b"pid: 28991", b"pid: 28991\x1d"),  # str.strip() takes U+001D for blank, int() does not
    (b"totals: 24 1", b"totals: \xc2\xb2 1"),  # "²".isdigit() is true, int("²") fails
])
def test_xtree_figures_that_int_refuses_are_not_a_crash(old: bytes, new: bytes, tmp_path: Path) -> None:
    """Found by bench/fuzz.py: ValueError from int() on text str.isdigit() had let through."""
    from memgate.tools.memcheck.xtree import read_xtree

    source = DATA / "memcheck" / "deep" / "memcheck.28991.xtmemory.kcg"
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes().replace(old, new, 1))
    try:
        output = read_xtree(path)
    except ParseError as error:
        assert "do not match its events" in error.one_line()
    else:
        assert output.pid == 28991 and output.heap is not None and output.heap.in_use_bytes == 24


@pytest.mark.parametrize("use_lxml", [False, True], ids=["expat", "lxml"])
def test_a_frame_line_that_int_refuses_is_no_line(use_lxml: bool, tmp_path: Path) -> None:
    """``<line>²</line>`` in a frame of another shape than memcheck's: isdigit() is true for "²"."""
    from memgate.tools.memcheck.xmlfile import read_xml

    source = DATA / "memcheck" / "kinds" / "memcheck.32701.xml"
    path = tmp_path / source.name
    text = source.read_bytes().replace(b"<line>21</line>", "<line>\u00b2</line><x/>".encode(), 1)
    path.write_bytes(text)
    output = read_xml(path, use_lxml=use_lxml)
    assert output.finished and output.errors.total() > 0


def test_a_text_log_figure_of_commas_only_is_not_a_crash(tmp_path: Path) -> None:
    """Found by bench/fuzz.py: "total heap usage: , allocs" matched [\\d,]+ and int("") failed."""
    source = DATA / "memcheck" / "text-clean" / "memcheck.641.log"
    path = tmp_path / source.name
    text = source.read_bytes().replace(b"total heap usage: 1,000 allocs", b"total heap usage: , allocs")
    path.write_bytes(text)
    assert path.read_bytes() != source.read_bytes()
    (record,) = get_tool("valgrind").parse([path])
    assert record.metrics.get("alloc_calls") is None
