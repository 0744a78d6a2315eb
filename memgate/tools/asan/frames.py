"""Frames and stacks of sanitizer reports: a frame line's text and its ``Frame``, and the
``FrameCache`` that works out each stack, leak record and error once per run."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from memgate.fingerprint import (
    NO_WRAPPERS,
    AllocWrappers,
    fingerprint,
    frame_key,
    is_runtime_frame,
    site_of_known,
)
from memgate.metrics import LeakKind
from memgate.records import Frame, Leak, MemError, RelatedStack
from memgate.testnames import TEST_BODY, gtest_of_stack
from memgate.units import count_of

_CACHE_LIMIT = 1 << 13  # frames (and stacks) remembered while parsing: a few MB at most
_RUNS_LIMIT, _RUN_CHARS = 1 << 8, 1 << 14  # runs of leak records remembered whole: 4 MB at most
_PRINTED_LIMIT = 1 << 8  # errors remembered as printed, pcs and all

_BUILD_ID = re.compile(r"\s+\(BuildId: [0-9a-fA-F]+\)$")
_MODULE = re.compile(r"(?P<object>[^()]*?)(?:\+(?P<offset>0x[0-9a-fA-F]+))?\)")  # after the "("


_FRAME_PREFIX = re.compile(r"#\d+ 0x[0-9a-fA-F]+ +")  # what frame_text drops, for a whole run of frames
# One record of a run, its pcs dropped: the header, then its frame lines.
_LEAK_RECORD = re.compile(r"(?P<kind>Direct|Indirect) leak of (?P<bytes>\d+) byte\(s\) in (?P<blocks>\d+) "
                          r"object\(s\) allocated from:\n?(?P<stack>.*)", re.DOTALL)


def frame_text(line: str) -> str | None:
    """A frame line without its number and pc: ``in function file:line`` or ``(object+0xoffset)``.
    The pc changes from run to run (ASLR) and adds nothing to the rest, so frames are known by this."""
    parts = line.split(None, 2)
    if len(parts) < 3 or not parts[0].startswith("#") or not parts[1].startswith("0x"):
        return None
    return parts[2].rstrip()


def parse_frame(line: str) -> Frame | None:
    """One ``    #N 0xPC in function file:line[:column]`` line, gcc or clang, or None."""
    text = frame_text(line)
    return None if text is None else frame_of(text)


def frame_of(text: str) -> Frame:
    """A frame from its text (``frame_text``). The module form ``(object+0xoffset)`` (no debug
    info, ``symbolize=0``) keeps the offset as ``address``: unlike the pc, it is the same in every run."""
    text = text.strip()
    if text.startswith("in "):
        text = text[3:].lstrip()
    if "(BuildId: " in text:
        text = _BUILD_ID.sub("", text)
    if text.endswith(")"):
        function, _, module = text.rpartition("(")
        where = _MODULE.fullmatch(module) if not function or function[-1].isspace() else None
        if where:
            return _new_frame({"function": function.rstrip() or None, "object": where["object"] or None,
                               "address": where["offset"]})
    function, source = _source_location(text)
    if source:
        file, line = source
        return _new_frame({"function": function.rstrip() or None, "file": file, "line": count_of(line)})
    return _new_frame({"function": text or None})


def _source_location(text: str) -> tuple[str, tuple[str, str] | None]:
    """``function file:line[:column]`` split into the function and the location's file and line. A space
    separates them, but a path may hold spaces too ("/home/me/my project/a.c": the folder's name would
    then end up in the function's, and in the fingerprint) and a C++ function name does ("operator
    delete(void*, unsigned long)"). A demangled name never holds " /", so an absolute path starts at
    the first one; a relative path is taken to have no space (ASan writes it as the compiler got it)."""
    absolute = text.find(" /") + 1 or (0 if text.startswith("/") else -1)  # where the path starts
    if absolute >= 0:
        source = _file_and_line(text[absolute:])
        if source:
            return text[:absolute], source
    function, _, location = text.rpartition(" ")
    return function, _file_and_line(location)


def _file_and_line(location: str) -> tuple[str, str] | None:
    """``file:line`` or ``file:line:column`` as the file and the line's digits, else None. Of the
    two readings of "a:1:2", the shorter file ("a", line 1) is the one; the file is never empty.
    (The regular expression ``(.+?):(\\d+)(?::\\d+)?`` says the same, one character at a time.)"""
    head, colon, last = location.rpartition(":")
    if not colon or not last.isdecimal() or "\n" in head:
        return None
    file, colon, line = head.rpartition(":")
    if colon and file and line.isdecimal():  # file:line:column
        return file, line
    return (head, last) if head else None


# Records are built by their models' validators, called with a dict: the validation of Frame(...)
# and Leak(...) without BaseModel.__init__ around it, a Python call per record.
_new_frame: Callable[[dict[str, Any]], Frame] = Frame.__pydantic_validator__.validate_python
_new_leak: Callable[[dict[str, Any]], Leak] = Leak.__pydantic_validator__.validate_python

_LEAK_CATEGORY: dict[LeakKind, str] = {"definite": "leak:definite", "indirect": "leak:indirect"}
_K = TypeVar("_K")
_V = TypeVar("_V")


class _Identity(NamedTuple):
    stack: tuple[Frame, ...]
    site: str
    fingerprint: str
    key: str  # the stack's frames without their pcs
    test: str | None  # the GoogleTest test whose TestBody is on the stack (memgate.testnames)


class FrameCache:
    """Frames, stacks and records already worked out, shared by the logs of one run: a process
    repeats its call sites, and a suite's processes print the same ones. Bounded: emptied when full.
    The records are frozen, so one object can stand for every identical record."""

    def __init__(self, limit: int = _CACHE_LIMIT, wrappers: AllocWrappers = NO_WRAPPERS) -> None:
        self.limit = limit
        self.wrappers = wrappers  # the project's allocators, skipped like malloc
        # frame text -> its Frame, and what its site needs of it (is_runtime_frame, frame_key)
        self._frames: dict[str, tuple[Frame, tuple[bool, str]]] = {}
        self._identities: dict[tuple[str, str], _Identity] = {}
        self._leaks: dict[str, Leak] = {}
        self._runs: dict[str, tuple[Leak, ...]] = {}
        self._errors: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], MemError] = {}
        self._printed_errors: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], MemError] = {}

    def identify(self, category: str, frames: str) -> _Identity:
        """The stack, site and fingerprint of a record in ``category`` ("leak:definite", ...) whose
        stack is ``frames``, its frame lines as printed."""
        return self._identity(category, _FRAME_PREFIX.sub("", frames))

    def _identity(self, category: str, key: str) -> _Identity:
        """``identify`` for frame lines already without their numbers and pcs."""
        known = self._identities.get((category, key))
        if known is None:
            frames = [self._frame(line) for line in key.split("\n") if line and not line.isspace()]
            stack = tuple([frame for frame, _ in frames])
            site = site_of_known([for_site for _, for_site in frames])
            test = gtest_of_stack(stack) if TEST_BODY in key else None  # most stacks: one search
            known = _Identity(stack, site, fingerprint(category, stack, site), key, test)
            self._remember(self._identities, (category, key), known)
        return known

    def leaks(self, records: str) -> Sequence[Leak]:
        """The records of a run of "Direct"/"Indirect" leak records as printed (each its header line
        and frame lines, blank lines between them). The run's pcs are dropped at once; a short run
        seen before (a suite's processes print the same leaks) is one lookup, and so is a record."""
        text = _FRAME_PREFIX.sub("", records)
        if len(text) > _RUN_CHARS:
            return self._records(text)
        leaks = self._runs.get(text)
        if leaks is None:
            leaks = tuple(self._records(text))
            self._remember(self._runs, text, leaks, _RUNS_LIMIT)
        return leaks

    def _records(self, text: str) -> list[Leak]:
        known = self._leaks
        return [known.get(record) or self._new_leak(record) for record in text.split("\n\n") if record]

    def _new_leak(self, text: str) -> Leak:
        record = _LEAK_RECORD.match(text.lstrip("\n"))
        assert record is not None, "_EVENT's leaks group holds leak records only"
        kind: LeakKind = "definite" if record["kind"] == "Direct" else "indirect"
        identity = self._identity(_LEAK_CATEGORY[kind], record["stack"])
        leak = _new_leak({"kind": kind, "bytes": count_of(record["bytes"]),
                                "blocks": count_of(record["blocks"]), "stack": identity.stack,
                                "fingerprint": identity.fingerprint, "site": identity.site,
                                "test": identity.test})
        self._remember(self._leaks, text, leak)
        return leak

    def error(self, kind: str, description: str, frames: str,
              related: tuple[tuple[str, str], ...] = ()) -> MemError:
        """An error from its access stack's frame lines and its related stacks' (line, frame lines).
        One printed again as it was (a process repeats an error at the same pcs) is one lookup."""
        printed = (kind, description, frames, related)
        error = self._printed_errors.get(printed)
        if error is None:
            error = self._new_error(kind, description, frames, related)
            self._remember(self._printed_errors, printed, error, _PRINTED_LIMIT)
        return error

    def _new_error(self, kind: str, description: str, frames: str,
                   related: tuple[tuple[str, str], ...]) -> MemError:
        identity = self.identify(f"error:{kind}", frames)
        others = tuple((title, self.identify("related", lines)) for title, lines in related)
        key = (kind, description, identity.key, tuple((title, other.key) for title, other in others))
        error = self._errors.get(key)
        if error is None:
            error = MemError(kind=kind, description=description, count=1, stack=identity.stack,
                             fingerprint=identity.fingerprint, site=identity.site, test=identity.test,
                             related=tuple(RelatedStack(description=title, stack=other.stack)
                                           for title, other in others))
            self._remember(self._errors, key, error)
        return error

    def _remember(self, cache: dict[_K, _V], key: _K, value: _V, limit: int | None = None) -> None:
        if len(cache) >= (limit or self.limit):
            cache.clear()
        cache[key] = value

    def _frame(self, text: str) -> tuple[Frame, tuple[bool, str]]:
        known = self._frames.get(text)
        if known is None:
            frame = frame_of(text)
            known = (frame, (is_runtime_frame(frame, self.wrappers), frame_key(frame)))
            if len(self._frames) >= self.limit:
                self._frames.clear()
            self._frames[text] = known
        return known
