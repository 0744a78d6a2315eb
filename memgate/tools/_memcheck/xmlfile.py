"""memcheck's XML (protocols 4 to 6), streamed: elements are handled as they close and dropped.

lxml's pull parser is used when lxml is importable (``tag`` filtering keeps Python out of the inner
loop), else the standard library's. Both are fed in chunks by this module, so a syntax error while
feeding (garbage in the file) is told apart from one at the end of the input (a file cut short: the
valgrind process was killed before it wrote ``</valgrindoutput>``).

What the XML does not say, and how it is handled:

- Protocol 4 (Valgrind < 3.26) has no heap or leak summary: ``alloc_calls`` come from the xtree file
  memgate asks for beside it, and the leak records are checked against it by the caller.
- An ``<error>`` stands for ``<count>`` occurrences given at the end in ``<errorcounts>``, matched by
  ``<unique>``; leak records are never in ``<errorcounts>``.
- A leak search run by the program (``VALGRIND_DO_LEAK_CHECK``) or by gdbserver before exit prints
  loss records too; only the search that follows ``<state>FINISHED</state>`` (the one at exit) counts.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from memgate.errors import ParseError
from memgate.metrics import LeakKind
from memgate.tools._memcheck.model import (
    XML_LEAK_KINDS,
    Amount,
    HeapUsage,
    MemcheckOutput,
    RawFrame,
    StackCache,
)
from memgate.tools._memcheck.options import leak_options

PROTOCOLS = (4, 5, 6)
CHUNK_BYTES = 1 << 20

# Elements handled when they close: the children of <valgrindoutput>, and the <pair>s of
# <errorcounts>/<suppcounts> (one by one: a long run has a very long <errorcounts>).
TOP_LEVEL = frozenset({
    "protocolversion", "protocoltool", "preamble", "pid", "ppid", "tool", "args", "status", "error",
    "fatal_signal", "errorcounts", "suppcounts", "error_summary", "heap_summary", "leak_summary",
    "all_heap_blocks_freed", "clientmsg", "logfilequalifier", "usercomment",
})
_PAIR_PARENTS = frozenset({"errorcounts", "suppcounts"})
_ROOT = "valgrindoutput"
# what the parsers say when a second document starts inside or after the first
_SEVERAL_DOCUMENTS = ("declaration", "extra content", "junk after document element")

_OWN_BYTES = re.compile(
    r"^\s*(?P<total>[\d,]+)(?: \([+-][\d,]+\))? \((?P<direct>[\d,]+)(?: \([+-][\d,]+\))? direct, "
    r"(?P<indirect>[\d,]+)(?: \([+-][\d,]+\))? indirect\) bytes"
)
_SUMMARY_KINDS: dict[str, LeakKind] = {
    "definitely_lost": "definite",
    "indirectly_lost": "indirect",
    "possibly_lost": "possible",
    "still_reachable": "reachable",
}


class Element(Protocol):
    """What this module uses of an element; lxml's and the standard library's both fit."""

    tag: Any
    text: str | None

    def find(self, path: str) -> Any: ...
    def findtext(self, path: str, default: str = ...) -> Any: ...
    def findall(self, path: str) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...


class BrokenXml(Exception):
    """A syntax error; ``at_end`` when the input ended too early (a truncated file)."""

    def __init__(self, message: str, *, at_end: bool) -> None:
        super().__init__(message)
        self.at_end = at_end


# A stream of (element, parent tag) for top-level elements and <pair>s, oldest first.
Stream = Iterator[tuple[Element, str]]


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def lxml_available() -> bool:
    try:
        import lxml.etree  # noqa: F401
    except ImportError:
        return False
    return True


def stream_lxml(path: Path) -> Stream:
    from lxml import etree

    parser = etree.XMLPullParser(
        events=("end",), tag=[*TOP_LEVEL, "pair", _ROOT], resolve_entities=False, no_network=True,
        huge_tree=True, remove_comments=True, remove_pis=True,
    )

    def drain() -> Stream:
        for _event, element in parser.read_events():
            parent = element.getparent()
            if parent is None:
                yield element, ""
                continue
            grandparent = parent.getparent()
            top_level = grandparent is None
            counted_pair = element.tag == "pair" and parent.tag in _PAIR_PARENTS and not top_level \
                and grandparent.getparent() is None
            if not (top_level or counted_pair):
                continue  # nested deeper: read as part of its top-level element
            yield element, parent.tag
            # Handled: empty it and drop the siblings before it. Not the ones after it: their events
            # may be queued still.
            element.clear()
            while element.getprevious() is not None:
                del parent[0]

    for chunk in _chunks(path):
        try:
            parser.feed(chunk)
        except etree.XMLSyntaxError as error:
            raise BrokenXml(str(error), at_end=False) from None
        yield from drain()
    try:
        parser.close()
    except etree.XMLSyntaxError as error:
        yield from drain()
        raise BrokenXml(str(error), at_end=True) from None
    yield from drain()


def stream_stdlib(path: Path) -> Stream:
    import xml.etree.ElementTree as ElementTree

    parser: Any = ElementTree.XMLPullParser(events=("start", "end"))
    open_elements: list[Any] = []  # the root and its open child (deeper ones are not needed)
    depth = 0

    def drain() -> Stream:
        nonlocal depth
        for event, element in parser.read_events():
            if event == "start":
                if depth < 2:
                    open_elements.append(element)
                depth += 1
                continue
            depth -= 1
            if depth < 2:
                open_elements.pop()
            if depth == 1:
                yield element, open_elements[0].tag
                del open_elements[0][:]
            elif depth == 2 and element.tag == "pair" and open_elements[1].tag in _PAIR_PARENTS:
                yield element, open_elements[1].tag
                del open_elements[1][:]
            elif depth == 0:
                yield element, ""

    for chunk in _chunks(path):
        try:
            parser.feed(chunk)
        except ElementTree.ParseError as error:
            raise BrokenXml(str(error), at_end=False) from None
        yield from drain()
    try:
        parser.close()
    except ElementTree.ParseError as error:
        yield from drain()
        raise BrokenXml(str(error), at_end=True) from None
    yield from drain()


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip().replace(",", "")
    try:
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None


def _frame(element: Element) -> RawFrame:
    parts: dict[str, str | None] = {}
    for child in element:
        parts[child.tag] = child.text
    line = parts.get("line")
    return (_text(parts.get("fn")), _text(parts.get("file")), _int(line) if line else None,
            _text(parts.get("obj")), _text(parts.get("ip")))


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def stack_of(element: Element) -> tuple[RawFrame, ...]:
    """The first <stack> of an error or fatal signal: where it happened (later ones are auxiliary)."""
    stack = element.find("stack")
    if stack is None:
        return ()
    return tuple(_frame(frame) for frame in stack if frame.tag == "frame")


class _Uniques:
    """``<unique>`` of each non-leak error -> its site in the tally, until <errorcounts> gives counts.

    valgrind numbers errors 0, 1, 2...: an array holds a long run in 8 bytes an error."""

    _UNSET, _COUNTED = -1, -2

    def __init__(self) -> None:
        self._sites: list[tuple[str, str]] = []
        self._index: dict[tuple[str, str], int] = {}
        self._by_unique = array("q")
        self._sparse: dict[int, int] = {}

    def remember(self, unique: int, key: tuple[str, str]) -> None:
        site = self._index.setdefault(key, len(self._sites))
        if site == len(self._sites):
            self._sites.append(key)
        if 0 <= unique < len(self._by_unique) + (1 << 20):
            if unique >= len(self._by_unique):
                self._by_unique.extend([self._UNSET] * (unique + 1 - len(self._by_unique)))
            self._by_unique[unique] = site
        else:
            self._sparse[unique] = site

    def take(self, unique: int) -> tuple[str, str] | None:
        """The site of ``unique`` (once: a counted error is not counted again)."""
        if 0 <= unique < len(self._by_unique):
            site = self._by_unique[unique]
            self._by_unique[unique] = self._COUNTED
        else:
            site = self._sparse.pop(unique, self._UNSET)
        return self._sites[site] if site >= 0 else None

    def uncounted(self) -> Iterator[tuple[str, str]]:
        for site in self._by_unique:
            if site >= 0:
                yield self._sites[site]
        for site in self._sparse.values():
            yield self._sites[site]


class XmlReader:
    """Turns the element stream of one file into a ``MemcheckOutput``."""

    def __init__(self, path: Path, cache: StackCache | None = None) -> None:
        self.output = MemcheckOutput(path=path, format="xml", cache=cache or StackCache())
        self._uniques = _Uniques()
        self._counts_seen = False
        self._protocol: int | None = None
        self._truncated = False
        self._handlers: dict[str, Callable[[Element], None]] = {
            "protocolversion": self._protocolversion,
            "protocoltool": self._protocoltool,
            "preamble": self._preamble,
            "pid": self._pid,
            "args": self._args,
            "status": self._status,
            "error": self._error,
            "fatal_signal": self._fatal_signal,
            "errorcounts": self._errorcounts,
            "heap_summary": self._heap_summary,
            "leak_summary": self._leak_summary,
            "all_heap_blocks_freed": self._all_freed,
        }

    def read(self, stream: Stream) -> MemcheckOutput:
        path = self.output.path
        try:
            for element, parent in stream:
                if parent == _ROOT:
                    handler = self._handlers.get(element.tag)
                    if handler is not None:
                        handler(element)
                elif parent == "errorcounts":
                    self._count_pair(element)
                elif parent == "suppcounts":
                    self._suppression_pair(element)
                elif parent == "":
                    self._root_closed(element)
                else:
                    raise self._foreign(f"<{parent}>")
        except BrokenXml as error:
            self._broken(error)
        except OSError as error:
            raise ParseError(f"cannot read {path}: {error.strerror or error}", path=path) from None
        self._finish()
        return self.output

    # -- the document --------------------------------------------------------------------------

    def _foreign(self, root: str) -> ParseError:
        return ParseError(f"XML whose root is {root}, not Valgrind's <valgrindoutput>", path=self.output.path,
                          hint="give memgate the file valgrind wrote with --xml=yes --xml-file=")

    def _root_closed(self, element: Element) -> None:
        if element.tag != _ROOT:
            raise self._foreign(f"<{element.tag}>")
        self.output.finished = True

    def _broken(self, error: BrokenXml) -> None:
        path = self.output.path
        if not error.at_end:
            hint = "check that the file is the XML valgrind wrote, whole and alone"
            if any(sign in str(error).lower() for sign in _SEVERAL_DOCUMENTS):
                hint = ("several processes wrote into this one file: give --xml-file a %p, and do not "
                        "give --log-file a %p too (Valgrind then reopens only the log in forked children)")
            raise ParseError(f"broken Valgrind XML: {error}", path=path, hint=hint)
        if self._protocol is None:
            raise ParseError(f"not Valgrind XML output ({error})", path=path,
                             hint="give memgate the file valgrind wrote with --xml=yes --xml-file=")
        self._truncated = True
        self.output.note(
            f"{path.name} ends before </valgrindoutput>: valgrind was probably killed (SIGKILL, a "
            "timeout or out of memory) before it finished, so leaks were not searched and error "
            "counts are partial"
        )

    def _finish(self) -> None:
        if self._protocol is None:
            raise ParseError("XML without Valgrind's <protocolversion>: not memcheck output",
                             path=self.output.path,
                             hint="give memgate the file valgrind wrote with --xml=yes --xml-file=")
        if not self.output.finished and not self._truncated:
            raise self._foreign("not <valgrindoutput>")
        for key in self._uniques.uncounted():
            # No <errorcounts> entry (a cut file): the error happened at least once.
            self.output.errors.count(key, 1)
        self.output.errors_known = self._counts_seen and self.output.finished

    # -- header ----------------------------------------------------------------------------------

    def _protocolversion(self, element: Element) -> None:
        version = _int(element.text)
        if version not in PROTOCOLS:
            raise ParseError(
                f"Valgrind XML protocol {element.text!r} is not supported (memgate reads {PROTOCOLS[0]} "
                f"to {PROTOCOLS[-1]})", path=self.output.path,
                hint="run a Valgrind from 3.5 on, or tell the memgate maintainers about this version",
            )
        self._protocol = version

    def _protocoltool(self, element: Element) -> None:
        tool = (element.text or "").strip()
        if tool != "memcheck":
            raise ParseError(f"Valgrind XML of the {tool or 'unknown'} tool, not memcheck",
                             path=self.output.path, hint="run valgrind --tool=memcheck")

    def _preamble(self, element: Element) -> None:
        for line in element.findall("line"):
            text = line.text or ""
            if text.startswith("Command: "):
                self.output.command = text.removeprefix("Command: ").strip()

    def _pid(self, element: Element) -> None:
        self.output.pid = _int(element.text)

    def _args(self, element: Element) -> None:
        arguments = [(arg.text or "").strip() for arg in element.findall("vargv/arg")]
        self.output.leak_check, self.output.shown_kinds = leak_options(arguments)

    def _status(self, element: Element) -> None:
        if (element.findtext("state") or "").strip() == "FINISHED":
            # Loss records before this come from leak searches during the run, not the one at exit.
            self.output.restart_leaks()

    # -- findings --------------------------------------------------------------------------------

    def _error(self, element: Element) -> None:
        kind = (element.findtext("kind") or "").strip()
        leak_kind = XML_LEAK_KINDS.get(kind)
        if leak_kind is not None:
            self._leak(leak_kind, element)
            return
        what = element.findtext("what")
        if what is None:
            what = element.findtext("xwhat/text")
        description = " ".join((what or "").split())
        key = self.output.errors.key(kind or "Unknown", description, stack_of(element))
        unique = _int(element.findtext("unique"))
        if unique is None:
            self.output.errors.count(key, 1)
        else:
            self._uniques.remember(unique, key)

    def _leak(self, kind: LeakKind, element: Element) -> None:
        leaked = _int(element.findtext("xwhat/leakedbytes"))
        blocks = _int(element.findtext("xwhat/leakedblocks"))
        if leaked is None or blocks is None:
            self.output.note("a loss record without <leakedbytes>/<leakedblocks>")
            return
        own = leaked
        split = _OWN_BYTES.match(element.findtext("xwhat/text") or "")
        if split:
            direct, indirect = _int(split["direct"]), _int(split["indirect"])
            if direct is not None and indirect is not None:
                own = direct
                if direct + indirect != leaked:
                    self.output.note(f"a loss record's text and <leakedbytes> ({leaked}) disagree")
        self.output.leaks.add(kind, own, blocks, stack_of(element))

    def _count_pair(self, element: Element) -> None:
        count, unique = _int(element.findtext("count")), _int(element.findtext("unique"))
        if count is None or unique is None:
            return
        key = self._uniques.take(unique)
        if key is not None:
            self.output.errors.count(key, count)

    def _suppression_pair(self, element: Element) -> None:
        if (_int(element.findtext("count")) or 0) > 0:
            self.output.suppressions_used = True

    def _errorcounts(self, element: Element) -> None:
        self._counts_seen = True

    def _fatal_signal(self, element: Element) -> None:
        name = _text(element.findtext("signame"))
        number = _text(element.findtext("signo"))
        self.output.fatal_signal = name or (f"signal {number}" if number else "fatal signal")

    # -- protocol 6 summaries --------------------------------------------------------------------

    def _heap_summary(self, element: Element) -> None:
        in_use = (_int(element.findtext("memory_in_use_at_exit/bytes")),
                  _int(element.findtext("memory_in_use_at_exit/blocks")))
        allocs = _int(element.findtext("total_heap_usage/allocs"))
        allocated = _int(element.findtext("total_heap_usage/bytes_allocated"))
        if in_use[0] is None or in_use[1] is None or allocs is None or allocated is None:
            self.output.note("an incomplete <heap_summary>")
            return
        self.output.heap = HeapUsage(in_use_bytes=in_use[0], in_use_blocks=in_use[1], allocs=allocs,
                                     bytes_allocated=allocated, source="<heap_summary>")

    def _leak_summary(self, element: Element) -> None:
        summary: dict[LeakKind, Amount] = {}
        for tag, kind in _SUMMARY_KINDS.items():
            amount = _amount(element.find(tag))
            if amount is None:
                self.output.note(f"<leak_summary> without <{tag}>")
                return
            summary[kind] = amount
        self.output.leak_summary = summary
        self.output.suppressed_leaks = _amount(element.find("suppressed"))

    def _all_freed(self, element: Element) -> None:
        if (element.text or "").strip() == "true" and self.output.leak_summary is None:
            self.output.leak_summary = {kind: Amount() for kind in _SUMMARY_KINDS.values()}


def _amount(element: Element | None) -> Amount | None:
    if element is None:
        return None
    size = _int(element.findtext("bytes"))
    blocks = _int(element.findtext("in_blocks"))
    if blocks is None:
        blocks = _int(element.findtext("blocks"))
    return Amount(size, blocks) if size is not None and blocks is not None else None


def read_xml(path: Path, *, cache: StackCache | None = None, use_lxml: bool | None = None) -> MemcheckOutput:
    """Read one memcheck XML file. ``ParseError`` for input that is not memcheck XML; a file cut
    short gives an output with a problem noted (incomplete), never an error."""
    if use_lxml is None:
        use_lxml = lxml_available()
    stream = stream_lxml(path) if use_lxml else stream_stdlib(path)
    return XmlReader(path, cache).read(stream)
