"""Suppression files read and matched in Python as Valgrind and LSan match them (what a request's own
suppressions would hide), and what each suppression hid accounted per file."""

from __future__ import annotations

from pathlib import Path

import pytest

from memgate.errors import ConfigError
from memgate.metrics import LeakKind
from memgate.records import Frame, Leak
from memgate.suppressions import SuppressionFile, account, read_file, would_hide

STACK = (Frame(function="malloc", object="/usr/lib/valgrind/vgpreload_memcheck.so"),
         Frame(function="xmalloc", file="/src/util.c", line=12, object="/app/libutil.so"),
         Frame(function="parse_config", file="/src/config.c", line=40, object="/app/prog"),
         Frame(function="main", file="/src/main.c", line=9, object="/app/prog"))


def leak(kind: LeakKind = "definite") -> Leak:
    return Leak(kind=kind, bytes=16, blocks=1, stack=STACK, fingerprint="f", site="parse_config < main")


def supp_file(tmp_path: Path, text: str, name: str = "x.supp") -> SuppressionFile:
    (tmp_path / name).write_text(text)
    return SuppressionFile(shown=name, path=tmp_path / name)


def valgrind(tmp_path: Path, *frames: str, kinds: str = "") -> bool:
    kinds_line = f"   match-leak-kinds: {kinds}\n" if kinds else ""
    text = "{\n   s\n   Memcheck:Leak\n" + kinds_line + "".join(f"   {f}\n" for f in frames) + "}\n"
    return bool(would_hide([supp_file(tmp_path, text)], "memcheck", [leak()]))


@pytest.mark.parametrize(("frames", "hides"), [
    (("fun:malloc", "fun:xmalloc", "fun:parse_config"), True),
    (("fun:malloc", "fun:parse_config"), False),  # frames match from the top, one by one
    (("fun:malloc", "...", "fun:parse_config"), True),  # "..." stands for any frames
    (("...", "fun:main"), True),
    (("fun:*alloc", "fun:x?alloc"), True),  # globs
    (("obj:*/vgpreload_memcheck.so", "obj:/app/lib*.so"), True),
    (("fun:malloc", "src:util.c:12"), True),
    (("fun:malloc", "src:util.c:13"), False),
    (("fun:malloc", "fun:xmalloc", "fun:parse_config", "fun:main", "fun:after_main"), False),
    ((), True),
])
def test_valgrind_frames_match_as_memcheck_matches_them(tmp_path: Path, frames: tuple[str, ...],
                                                        hides: bool) -> None:
    assert valgrind(tmp_path, *frames) is hides


def test_valgrind_match_leak_kinds_and_other_kinds(tmp_path: Path) -> None:
    assert valgrind(tmp_path, "fun:malloc", kinds="definite,possible")
    assert not valgrind(tmp_path, "fun:malloc", kinds="reachable")
    assert valgrind(tmp_path, "fun:malloc", kinds="all")
    addr = supp_file(tmp_path, "{\n  s\n  Memcheck:Addr4\n  fun:malloc\n}\n")
    assert would_hide([addr], "memcheck", [leak()]) == [], "an error suppression hides no leak"


@pytest.mark.parametrize(("pattern", "hides"), [
    ("parse_config", True), ("parse_", True), ("^parse_config$", True), ("^config", False),
    ("config.c", True), ("libutil", True), ("p*_config", True), ("^main$", True), ("nothing", False),
])
def test_lsan_patterns_match_a_function_file_or_module(tmp_path: Path, pattern: str, hides: bool) -> None:
    file = supp_file(tmp_path, f"# comment\nleak:{pattern}\ninterceptor_via_fun:other\n", "l.supp")
    assert bool(would_hide([file], "asan", [leak()])) is hides


def test_account_lists_every_suppression_of_the_files_with_what_it_hid(tmp_path: Path) -> None:
    file = supp_file(tmp_path, "leak:used\nleak:stale\n", "l.supp")
    uses = account([("used", 2, 32), ("used", 1, 16), ("glibc-default", 4, None)], [file])
    assert [(u.name, u.file, u.count, u.bytes, u.stale) for u in uses] == [
        ("used", "l.supp", 3, 48, False), ("stale", "l.supp", 0, 0, True),
        ("glibc-default", None, 4, None, False)]


@pytest.mark.parametrize(("text", "expected"), [
    ("{\n  name\n", "a { block has no closing }"),
    ("leak:x\nnot a suppression\n", "is neither a Valgrind { ... } block nor an LSan 'leak:pattern' line"),
    ("{\n  only-a-name\n}\n", "a block needs a name and a Tool:kind line"),
])
def test_a_broken_file_is_an_error_naming_it(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        read_file(supp_file(tmp_path, text, "bad.supp"))
    assert expected in raised.value.message and "bad.supp" in raised.value.message


def test_lsan_suppressions_used_table_is_read_from_a_log_and_program_output_is_not(tmp_path: Path) -> None:
    """The table LSan prints (here between a leak report and its SUMMARY, as it does), hand-written
    with a pattern of several words; a program line of the same shape outside the table is ignored."""
    from memgate.tools import get_tool
    from memgate.tools.base import ToolOptions

    log = tmp_path / "asan.4242"
    log.write_text(
        "      7         99 program output, not a table\n"
        "=================================================================\n"
        "==4242==ERROR: LeakSanitizer: detected memory leaks\n\n"
        "Direct leak of 300 byte(s) in 3 object(s) allocated from:\n"
        "    #0 0x7f in malloc (/lib/libasan.so.8+0xdb)\n"
        "    #1 0x55 in leak_many /src/memprog.c:29\n\n"
        "-----------------------------------------------------\n"
        "Suppressions used:\n"
        "  count      bytes template\n"
        "      2         32 leak_small\n"
        "      1          8 ^my lib*$\n"
        "-----------------------------------------------------\n\n"
        "SUMMARY: AddressSanitizer: 300 byte(s) leaked in 3 allocation(s).\n")
    (tmp_path / "l.supp").write_text("leak:leak_small\nleak:^my lib*$\nleak:stale_one\n")
    files = (SuppressionFile(shown="l.supp", path=tmp_path / "l.supp"),)
    [record] = get_tool("asan").parse([log], ToolOptions(suppressions=files))
    assert [(u.name, u.count, u.bytes) for u in record.suppressions] == [
        ("leak_small", 2, 32), ("^my lib*$", 1, 8), ("stale_one", 0, 0)]
    assert record.metrics["leak_definite_bytes"] == 300
