"""The identity of a leak or error site (``memgate.fingerprint``): the project's own first frames,
normalised, so that rebuilding, moving lines or cloning a function keeps a known leak known."""

from __future__ import annotations

import pytest

from memgate.fingerprint import (
    FRAMES_IN_FINGERPRINT,
    fingerprint,
    frame_key,
    is_runtime_frame,
    normalise_function,
    site_frames,
    site_of,
)
from memgate.records import Frame

MALLOC = Frame(function="malloc", object="/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so",
               address="0x4848899")
STACK = (MALLOC, Frame(function="make_node(int)", file="list.c", line=12, address="0x109181"),
         Frame(function="build_list", file="list.c", line=30, address="0x1091c4"),
         Frame(function="main", file="main.c", line=8, address="0x109201"),
         Frame(function="__libc_start_main", object="/usr/lib/x86_64-linux-gnu/libc.so.6"))


def test_allocators_interceptors_and_libc_are_not_the_projects_code() -> None:
    assert is_runtime_frame(MALLOC)
    assert is_runtime_frame(Frame(function="__interceptor_malloc"))
    assert is_runtime_frame(Frame(function="operator new(unsigned long)"))
    assert is_runtime_frame(Frame(function="fopen", object="/lib/x86_64-linux-gnu/libc.so.6"))
    assert not is_runtime_frame(STACK[1])


def test_parameters_and_compiler_clone_suffixes_are_dropped() -> None:
    assert normalise_function("make_node(int, char*)") == "make_node"
    assert normalise_function("Tree::size() const") == "Tree::size"
    assert normalise_function("parse.constprop.0") == "parse"
    assert normalise_function("parse.cold") == "parse"


def test_a_frame_without_a_function_is_known_by_its_file_or_object() -> None:
    assert frame_key(Frame(file="/src/list.c", line=12)) == "list.c:12"
    assert frame_key(Frame(object="/opt/lib/libx.so", address="0x1f")) == "libx.so+0x1f"
    assert frame_key(Frame(address="0x1f")) == "0x1f"
    assert frame_key(Frame()) == "??"


def test_the_site_is_the_first_frames_of_the_project() -> None:
    assert [frame.function for frame in site_frames(STACK)] == ["make_node(int)", "build_list", "main"]
    assert len(site_frames(STACK)) == FRAMES_IN_FINGERPRINT
    assert site_of(STACK) == "make_node < build_list < main"
    assert site_frames((MALLOC,)) == [MALLOC]  # nothing of the project's: the first frames
    assert site_of(()) == "(no stack)"


def test_line_numbers_and_addresses_do_not_change_the_fingerprint() -> None:
    moved = tuple(frame.model_copy(update={"line": (frame.line or 0) + 40, "address": "0xdead"})
                  for frame in STACK)
    assert fingerprint("leak:definite", moved) == fingerprint("leak:definite", STACK)
    assert fingerprint("leak:definite", STACK, site_of(STACK)) == fingerprint("leak:definite", STACK)


def test_the_category_and_the_functions_do_change_it() -> None:
    assert fingerprint("leak:indirect", STACK) != fingerprint("leak:definite", STACK)
    renamed = (MALLOC, STACK[1].model_copy(update={"function": "make_leaf(int)"}), *STACK[2:])
    assert fingerprint("leak:definite", renamed) != fingerprint("leak:definite", STACK)

NAMES = {
    "foo(int, char*)": "foo",
    "foo.constprop.0": "foo",
    "main": "main",
    "(below main)": "",  # as it always was: fingerprints of existing baselines stay
    "operator new[](unsigned long)": "operator new[]",
    "(anonymous namespace)::Streamer::operator<<(std::string const&)":
        "(anonymous namespace)::Streamer::operator<<",
    "make_holder(std::string&)::{lambda()#1}::operator()() const":
        "make_holder(std::string&)::{lambda()#1}::operator()",
    "std::vector<int>::push_back(int&&) &&": "std::vector<int>::push_back",
    "Parser::parse(char const*&) const": "Parser::parse",
    "operator&": "operator&",
}


@pytest.mark.parametrize(("name", "normalised"), NAMES.items(), ids=list(NAMES))
def test_only_the_last_parameter_list_goes(name: str, normalised: str) -> None:
    assert normalise_function(name) == normalised
