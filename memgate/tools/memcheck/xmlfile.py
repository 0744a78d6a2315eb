"""memcheck's XML (protocols 4 to 6), from the stream of items of ``xmlstream`` into a
``MemcheckOutput``: nothing is kept but the aggregated records and a few figures."""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

from memgate.errors import ParseError
from memgate.metrics import LeakKind
from memgate.tools.memcheck.model import (
    XML_LEAK_KINDS,
    Amount,
    ErrorKey,
    HeapUsage,
    MemcheckOutput,
    Sites,
)
from memgate.tools.memcheck.options import leak_options
from memgate.tools.memcheck.xmlstream import (
    ROOT,
    BrokenXml,
    ErrorRun,
    Item,
    PairRun,
    XmlElement,
    XmlError,
    lxml_available,
    stream_expat,
    stream_lxml,
)
from memgate.units import count_of, counts_read

PROTOCOLS = (4, 5, 6)

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
# what the parsers say when a second document starts inside or after the first
_SEVERAL_DOCUMENTS = ("declaration", "extra content", "junk after document element")
_HINT = "give memgate the file valgrind wrote with --xml=yes --xml-file="


def _int(text: str | None) -> int | None:
    """A decimal or 0x-hexadecimal number as memcheck writes them, or None."""
    if text is None:
        return None
    if text.isdecimal():
        return count_of(text)
    if text.startswith("0x"):  # <unique>, as memcheck writes it
        try:
            return int(text, 16)
        except ValueError:
            pass
    text = text.strip().replace(",", "")
    if text.isdecimal():
        return count_of(text)
    if text[:2].lower() == "0x":
        try:
            return int(text, 16)
        except ValueError:
            return None
    return None


class _Uniques:
    """``<unique>`` of each non-leak error -> its site in the tally, until <errorcounts> gives counts.

    valgrind numbers errors 0, 1, 2...: an array holds a long run in 4 bytes an error."""

    _UNSET, _COUNTED = -1, -2

    def __init__(self) -> None:
        self._sites: list[ErrorKey] = []
        self._index: dict[ErrorKey, int] = {}
        self._by_unique = array("i")
        self._sparse: dict[int, int] = {}

    def remember(self, unique: int, key: ErrorKey) -> None:
        site = self._index.setdefault(key, len(self._sites))
        if site == len(self._sites):
            self._sites.append(key)
        known = len(self._by_unique)
        if unique == known:  # the usual order
            self._by_unique.append(site)
        elif 0 <= unique < known + (1 << 20):
            if unique > known:
                self._by_unique.extend([self._UNSET] * (unique + 1 - len(self._by_unique)))
            self._by_unique[unique] = site
        else:
            self._sparse[unique] = site

    def take(self, unique: int) -> ErrorKey | None:
        """The site of ``unique`` (once: a counted error is not counted again)."""
        if 0 <= unique < len(self._by_unique):
            site = self._by_unique[unique]
            self._by_unique[unique] = self._COUNTED
        else:
            site = self._sparse.pop(unique, self._UNSET)
        return self._sites[site] if site >= 0 else None

    def uncounted(self) -> Iterator[ErrorKey]:
        for site in self._by_unique:
            if site >= 0:
                yield self._sites[site]
        for site in self._sparse.values():
            yield self._sites[site]


# What the XML does not say, and how it is handled:
#
# - Protocol 4 (Valgrind < 3.26) has no heap or leak summary: ``alloc_calls`` come from the xtree file
#   memgate asks for beside it, and the leak records are checked against it by the caller.
# - An ``<error>`` stands for ``<count>`` occurrences given at the end in ``<errorcounts>``, matched by
#   ``<unique>``; leak records are never in ``<errorcounts>``.
# - A leak search run by the program (``VALGRIND_DO_LEAK_CHECK``) or by gdbserver before exit prints
#   loss records too; only the search that follows ``<state>FINISHED</state>`` (the one at exit) counts.
class XmlReader:
    """Turns the item stream of one file into a ``MemcheckOutput``."""

    def __init__(self, path: Path, sites: Sites | None = None) -> None:
        self.output = MemcheckOutput(path=path, format="xml", sites=sites or Sites())
        self._uniques = _Uniques()
        self._counts_seen = False
        self._protocol: int | None = None
        self._truncated = False
        self._handlers: dict[str, Callable[[XmlElement], None]] = {
            "protocolversion": self._protocolversion,
            "protocoltool": self._protocoltool,
            "preamble": self._preamble,
            "pid": self._pid,
            "args": self._args,
            "status": self._status,
            "fatal_signal": self._fatal_signal,
            "errorcounts": self._errorcounts,
            "heap_summary": self._heap_summary,
            "leak_summary": self._leak_summary,
            "all_heap_blocks_freed": self._all_freed,
        }

    def read(self, stream: Iterator[Item]) -> MemcheckOutput:
        path = self.output.path
        try:
            for parent, item in stream:
                if isinstance(item, ErrorRun):
                    if parent != ROOT:
                        raise self._foreign(f"<{parent}>")
                    for error in item:
                        self._error(error)
                elif isinstance(item, PairRun):
                    self._pairs(parent, item)
                elif isinstance(item, XmlError):
                    if parent != ROOT:
                        raise self._foreign(f"<{parent}>")
                    self._error(item)
                elif parent == ROOT:
                    handler = self._handlers.get(item.tag)
                    if handler is not None:
                        handler(item)
                elif parent == "errorcounts":
                    self._count_pair(item)
                elif parent == "suppcounts":
                    self._suppression_pair(item)
                elif parent == "":
                    self._root_closed(item)
                else:
                    raise self._foreign(f"<{parent}>")
        except BrokenXml as error:
            self._broken(error)
        except OSError as error:
            raise ParseError(f"cannot read {path}: {error.strerror or error}", path=path) from None
        self._finish()
        return self.output

    # -- the document ----------------------------------------------------------------------------

    def _foreign(self, root: str) -> ParseError:
        return ParseError(f"XML whose root is {root}, not Valgrind's <valgrindoutput>", path=self.output.path,
                          hint=_HINT)

    def _root_closed(self, item: XmlElement) -> None:
        if item.tag != ROOT:
            raise self._foreign(f"<{item.tag}>")
        self.output.finished = True

    # A syntax error in the middle of the file is a ``ParseError`` (garbage, or several processes' XML in
    # one file); one at its end is a file cut short (valgrind killed before it wrote ``</valgrindoutput>``):
    # what came before is kept and the output is marked incomplete.
    def _broken(self, error: BrokenXml) -> None:
        path = self.output.path
        if not error.at_end:
            hint = "check that the file is the XML valgrind wrote, whole and alone"
            if any(sign in str(error).lower() for sign in _SEVERAL_DOCUMENTS):
                hint = ("several processes wrote into this one file: give --xml-file a %p, and do not "
                        "give --log-file a %p too (Valgrind then reopens only the log in forked children)")
            raise ParseError(f"broken Valgrind XML: {error}", path=path, hint=hint)
        if self._protocol is None:
            raise ParseError(f"not Valgrind XML output ({error})", path=path, hint=_HINT)
        self._truncated = True
        self.output.note(
            f"{path.name} ends before </valgrindoutput>: valgrind was probably killed (SIGKILL, a "
            "timeout or out of memory) before it finished, so leaks were not searched and error "
            "counts are partial"
        )

    def _finish(self) -> None:
        if self._protocol is None:
            raise ParseError("XML without Valgrind's <protocolversion>: not memcheck output",
                             path=self.output.path, hint=_HINT)
        if not self.output.finished and not self._truncated:
            raise self._foreign("not <valgrindoutput>")
        for key in self._uniques.uncounted():
            # No <errorcounts> entry (a cut file): the error happened at least once.
            self.output.errors.count(key, 1)
        if self.output.finished and not self._counts_seen:
            self.output.note("the XML has no <errorcounts>: how often each error happened is not known")

    # -- header ----------------------------------------------------------------------------------

    def _protocolversion(self, item: XmlElement) -> None:
        version = _int(item.text)
        if version not in PROTOCOLS:
            raise ParseError(
                f"Valgrind XML protocol {item.text.strip()!r} is not supported (memgate reads "
                f"{PROTOCOLS[0]} to {PROTOCOLS[-1]})", path=self.output.path,
                hint="run a Valgrind from 3.5 on, or tell the memgate maintainers about this version",
            )
        self._protocol = version

    def _protocoltool(self, item: XmlElement) -> None:
        tool = item.text.strip()
        if tool != "memcheck":
            raise ParseError(f"Valgrind XML of the {tool[:40] or 'unknown'} tool, not memcheck",
                             path=self.output.path, hint="run valgrind --tool=memcheck")

    def _preamble(self, item: XmlElement) -> None:
        for line in item.every("line"):
            if line.startswith("Command: "):
                self.output.command = line.removeprefix("Command: ").strip()

    def _pid(self, item: XmlElement) -> None:
        self.output.pid = _int(item.text)

    def _args(self, item: XmlElement) -> None:
        arguments = [argument.strip() for argument in item.every("vargv/arg")]
        self.output.leak_check, self.output.shown_kinds = leak_options(arguments, xml=True)

    def _status(self, item: XmlElement) -> None:
        if (item.first("state") or "").strip() == "FINISHED":
            # Loss records before this come from leak searches during the run, not the one at exit.
            self.output.restart_leaks()

    # -- findings --------------------------------------------------------------------------------

    def _error(self, error: XmlError) -> None:
        kind = (error.kind or "").strip()
        leak_kind = XML_LEAK_KINDS.get(kind)
        if leak_kind is not None:
            self._leak(leak_kind, error)
            return
        key = self.output.errors.key(kind or "Unknown", error.what or "", error.stack, error.related)
        unique = _int(error.unique)
        if unique is None:
            self.output.errors.count(key, 1)
        else:
            self._uniques.remember(unique, key)

    def _leak(self, kind: LeakKind, error: XmlError) -> None:
        leaked, blocks = _int(error.leaked_bytes), _int(error.leaked_blocks)
        if leaked is None or blocks is None:
            self.output.note("a loss record without <leakedbytes>/<leakedblocks>")
            return
        own = leaked
        split = _OWN_BYTES.match(error.what or "")
        if split:
            direct, indirect = _int(split["direct"]), _int(split["indirect"])
            if direct is not None and indirect is not None:
                own = direct
                if direct + indirect != leaked:
                    self.output.note(f"a loss record's text and <leakedbytes> ({leaked}) disagree")
        self.output.leaks.add(kind, own, blocks, error.stack)

    def _pairs(self, parent: str, pairs: PairRun) -> None:
        if parent == "errorcounts":
            for count, tag, text in pairs:
                self._counted(count, text if tag == "unique" else None)
        elif parent == "suppcounts":
            for count, tag, text in pairs:
                self._suppression(count, text if tag == "name" else None)
        else:
            raise self._foreign(f"<{parent}>")

    def _count_pair(self, item: XmlElement) -> None:
        self._counted(item.first("count"), item.first("unique"))

    def _counted(self, count_text: str | None, unique_text: str | None) -> None:
        count, unique = _int(count_text), _int(unique_text)
        if count is None or unique is None:
            return
        key = self._uniques.take(unique)
        if key is not None:
            self.output.errors.count(key, count)

    def _suppression_pair(self, item: XmlElement) -> None:
        self._suppression(item.first("count"), item.first("name"))

    def _suppression(self, count_text: str | None, name: str | None) -> None:
        count = _int(count_text) or 0
        if count > 0:
            self.output.suppressions_used = True
        if name is not None:
            self.output.suppression_counts.append((name.strip(), count))

    def _errorcounts(self, item: XmlElement) -> None:
        self._counts_seen = True

    def _fatal_signal(self, item: XmlElement) -> None:
        name = (item.first("signame") or "").strip()
        number = (item.first("signo") or "").strip()
        self.output.fatal_signal = name or (f"signal {number}" if number else "fatal signal")

    # -- protocol 6 summaries --------------------------------------------------------------------

    def _heap_summary(self, item: XmlElement) -> None:
        in_use_bytes = _int(item.first("memory_in_use_at_exit/bytes"))
        in_use_blocks = _int(item.first("memory_in_use_at_exit/blocks"))
        allocs = _int(item.first("total_heap_usage/allocs"))
        allocated = _int(item.first("total_heap_usage/bytes_allocated"))
        if in_use_bytes is None or in_use_blocks is None or allocs is None or allocated is None:
            self.output.note("an incomplete <heap_summary>")
            return
        self.output.heap = HeapUsage(in_use_bytes=in_use_bytes, in_use_blocks=in_use_blocks, allocs=allocs,
                                     bytes_allocated=allocated, source="<heap_summary>")

    def _leak_summary(self, item: XmlElement) -> None:
        summary: dict[LeakKind, Amount] = {}
        for tag, kind in _SUMMARY_KINDS.items():
            amount = _amount(item, tag)
            if amount is None:
                self.output.note(f"<leak_summary> without <{tag}>")
                return
            summary[kind] = amount
        self.output.leak_summary = summary
        self.output.suppressed_leaks = _amount(item, "suppressed")

    def _all_freed(self, item: XmlElement) -> None:
        if item.text.strip() == "true" and self.output.leak_summary is None:
            self.output.leak_summary = {kind: Amount() for kind in _SUMMARY_KINDS.values()}


def _amount(item: XmlElement, tag: str) -> Amount | None:
    size = _int(item.first(f"{tag}/bytes"))
    blocks = _int(item.first(f"{tag}/in_blocks"))
    if blocks is None:
        blocks = _int(item.first(f"{tag}/blocks"))
    return Amount(size, blocks) if size is not None and blocks is not None else None


def read_xml(path: Path, *, sites: Sites | None = None, use_lxml: bool | None = None) -> MemcheckOutput:
    """Read one memcheck XML file. ``ParseError`` for input that is not memcheck XML; a file cut
    short gives an output with a problem noted (incomplete), never an error.

    libxml2 (lxml) checks the bytes when lxml is installed, else the standard library's expat (see
    ``xmlstream``): the readings are the same, lxml's is faster (bench/bench_valgrind_parse.py).
    ``use_lxml`` chooses one."""
    if use_lxml is None:
        use_lxml = lxml_available()
    elif use_lxml and not lxml_available():
        raise ParseError("lxml is not installed", path=path, hint="pip install lxml")
    stream = stream_lxml(path) if use_lxml else stream_expat(path)
    with counts_read(path, not_a="not the XML valgrind writes", hint=_HINT):
        return XmlReader(path, sites).read(stream)
