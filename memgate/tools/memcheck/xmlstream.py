"""memcheck's XML as a stream of small items, one per element that matters, never a whole tree."""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgate.tools.memcheck.model import RawFrame, Stack
from memgate.units import count_of

CHUNK_BYTES = 1 << 18
ROOT = "valgrindoutput"
PAIR_PARENTS = frozenset({"errorcounts", "suppcounts"})


@dataclass(slots=True)
class XmlError:
    """An ``<error>``: what memgate needs of it."""

    kind: str | None = None
    unique: str | None = None
    what: str | None = None  # <what>, or <xwhat><text> (loss records)
    leaked_bytes: str | None = None
    leaked_blocks: str | None = None
    stack: Stack = ()  # the first <stack>: where it happened
    # the <stack>s after it, each with the <auxwhat> (or <xauxwhat><text>) before it: "Address ...
    # is 8 bytes inside a block of size 40 free'd" and where, "Block was alloc'd at" and where
    related: Iterable[tuple[str, Iterable[RawFrame]]] = ()


class ErrorRun(list[XmlError]):
    """The ``<error>``s of a run read in one go: one item for them all."""


class PairRun(list[tuple[str, str, str]]):
    """The ``<pair>``s of a run in the usual shape, read in one go: (``<count>``, the tag of the
    other child, ``unique`` or ``name``, and its text)."""


@dataclass(slots=True)
class XmlElement:
    """Any other element: its own text and the text of everything below it, by path."""

    tag: str
    text: str = ""
    leaves: list[tuple[str, str]] = field(default_factory=list)

    def first(self, path: str) -> str | None:
        for leaf, text in self.leaves:
            if leaf == path:
                return text
        return None

    def every(self, path: str) -> list[str]:
        return [text for leaf, text in self.leaves if leaf == path]


# An item is ``(parent tag, XmlError | XmlElement | ErrorRun | PairRun)``: the top-level ``<error>``s,
# every other top-level element, and the ``<pair>``s of ``<errorcounts>``/``<suppcounts>`` (a long run
# has a very long ``<errorcounts>``), those two a run at a time when they have the usual shape. The
# root itself comes last, with parent tag "".
Item = tuple[str, "XmlError | XmlElement | ErrorRun | PairRun"]


class BrokenXml(Exception):
    """A syntax error; ``at_end`` when the input ended too early (a truncated file)."""

    def __init__(self, message: str, *, at_end: bool) -> None:
        super().__init__(message)
        self.at_end = at_end


# Both are fed the file in chunks, so that a syntax error while feeding (garbage in the file) is told
# apart from one at the end of the input (a file cut short: valgrind was killed before it wrote
# ``</valgrindoutput>``).
def _chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes as valid UTF-8. valgrind copies file and function names into its XML byte
    for byte, so a source path in Latin-1 ("caf\\xe9.c") makes the file ill-formed for an XML
    parser; such bytes become U+FFFD, as in every other record. ASCII reads pass untouched."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            pending, _ = decoder.getstate()
            yield chunk if chunk.isascii() and not pending else decoder.decode(chunk).encode("utf-8")
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail.encode("utf-8")


def _source(directory: str | None, file: str | None) -> str | None:
    """``<dir>/<file>``: the source file as the compiler named it."""
    if not file:
        return None
    return f"{directory}/{file}" if directory else file


def _raw_frame(fields: dict[str, str]) -> RawFrame:
    line = fields.get("line")
    number = count_of(line) if line and line.isdecimal() else None
    return (fields.get("fn") or None, _source(fields.get("dir"), fields.get("file")), number,
            fields.get("obj") or None, fields.get("ip") or None)


# --------------------------------------------------------------------------------------------------
# Reading an <error> from its text


# The usual shape of an <error> (memcheck's order of children), read with regular expressions: much
# cheaper than an element object per child. Any other shape is parsed as XML.
_HEAD = re.compile(
    r"\s*<error>\s*<unique>([^<]*)</unique>\s*<tid>[^<]*</tid>\s*(?:<threadname>[^<]*</threadname>\s*)?"
    r"<kind>([^<]*)</kind>\s*(?:<what>([^<]*)</what>|<xwhat>\s*<text>([^<]*)</text>\s*"
    r"<leakedbytes>([^<]*)</leakedbytes>\s*<leakedblocks>([^<]*)</leakedblocks>\s*</xwhat>)"
)
_FRAME = re.compile(
    r"<frame>\s*<ip>([^<]*)</ip>\s*(?:<obj>([^<]*)</obj>\s*)?(?:<fn>([^<]*)</fn>\s*)?(?:<dir>([^<]*)</dir>\s*)?"
    r"(?:<file>([^<]*)</file>\s*)?(?:<line>(\d*)</line>\s*)?</frame>"
)


# XML's five entities and its character references; nothing else (the parser refuses any other
# "&" in the file). Not html.unescape: HTML reads "&#x80;" as "\u20ac", XML as U+0080.
_REFERENCE = re.compile(r"&(?:(amp|lt|gt|quot|apos)|#x([0-9a-fA-F]+)|#([0-9]+));")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _referenced(match: re.Match[str]) -> str:
    name, hexadecimal, decimal = match.groups()
    if name:
        return _ENTITIES[name]
    return chr(int(hexadecimal, 16) if hexadecimal else int(decimal))


def _unescape(text: str) -> str:
    """The text an XML parser gives for ``text`` as written between tags."""
    if "&" not in text:
        return text
    return _REFERENCE.sub(_referenced, text)


def _unescape_some(text: str | None) -> str | None:
    return None if text is None else _unescape(text)


# The <ip> of a frame that has a function or a source file: a site does not depend on it (see
# model.Sites), and it is what differs between runs and call paths that are the same otherwise.
_SITE_FREE_IP = re.compile(
    r"<ip>[^<]*</ip>(?=\s*(?:<obj>[^<]*</obj>\s*)?(?:<fn>[^<]|(?:<dir>[^<]*</dir>\s*)?<file>[^<]))"
)


class FramesText:
    """The frames of a ``<stack>``, read from its text only as far as they are asked for."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __iter__(self) -> Iterator[RawFrame]:
        text, position = self.text, 0
        decode = "&" in text
        while (start := text.find("<frame>", position)) >= 0:
            match = _FRAME.match(text, start)
            if match is None:  # another shape: parse the rest as XML
                yield from self._parsed(start)
                return
            ip, obj, fn, directory, file, line = match.groups()
            if decode:
                fn, obj = _unescape(fn or ""), _unescape(obj or "")
                directory, file = _unescape(directory or ""), _unescape(file or "")
            number = count_of(line) if line else None
            yield (fn or None, _source(directory, file), number, obj or None, ip or None)
            position = match.end()

    def _parsed(self, start: int) -> Iterator[RawFrame]:
        stack = _fromstring(f"<stack>{self.text[start:]}</stack>")
        for frame in stack.iter("frame"):
            yield _raw_frame({part.tag: part.text or "" for part in frame})


# Every <ip> of a stack: what its frames that differ only in addresses differ in.
_IP = re.compile(r"<ip>[^<]*</ip>")


class StackText(FramesText):
    """An error's own stack: a site needs its first few frames, and the whole stack is kept once per
    site.

    ``ip_free`` is the text without its addresses, ``site_key`` without the addresses a site does
    not depend on (made only when asked for): stacks with equal keys have the same site, so the
    site is worked out once for all of them (``model.Sites``)."""

    __slots__ = ("weight", "ip_free", "_site_key")

    def __init__(self, text: str) -> None:
        self.text = text  # FramesText's, without a call: one stack an error
        self.weight = len(text)
        self.ip_free = _IP.sub("", text)
        self._site_key: str | None = None

    @property
    def site_key(self) -> str:
        if self._site_key is None:
            self._site_key = _SITE_FREE_IP.sub("", self.text)
        return self._site_key


# What may follow an error's first stack: the text of another stack, and that stack.
_RELATED = re.compile(r"<auxwhat>([^<]*)</auxwhat>|<xauxwhat>\s*<text>([^<]*)</text>|<stack>")


class RelatedText:
    """The stacks after an error's first one, read only when asked for: only the first error of a
    site keeps them."""

    __slots__ = ("text", "start")

    def __init__(self, text: str, start: int) -> None:
        self.text, self.start = text, start

    def __iter__(self) -> Iterator[tuple[str, Iterable[RawFrame]]]:
        return iter(_related_stacks(self.text, self.start) or ())


def _related_stacks(text: str, start: int) -> list[tuple[str, Iterable[RawFrame]]] | None:
    """The stacks after an error's first one (from ``start``), each with the text before it; None
    when a stack has no end (``_text_error`` has sent such an error to the XML parser)."""
    related: list[tuple[str, Iterable[RawFrame]]] = []
    title: str | None = None
    position = start
    while (match := _RELATED.search(text, position)) is not None:
        position = match.end()
        if match[0] != "<stack>":
            title = match[1] if match[1] is not None else match[2]
            continue
        end = text.find("</stack>", position)
        if end < 0:
            return None
        if title is not None:
            related.append((" ".join(_unescape(title).split()), FramesText(text[position:end])))
            title = None
        position = end + 8
    return related


def _text_error(text: str) -> XmlError | None:
    """An <error> from its XML text, or None when it has another shape."""
    head = _HEAD.match(text)
    if head is None:
        return None
    unique, kind, what, xwhat, leaked_bytes, leaked_blocks = head.groups()
    # a reference in the head only changes what it holds; an absent <what> stays absent: the loss
    # record's text is <xwhat>'s
    if text.find("&", 0, head.end()) >= 0:
        what, xwhat = _unescape_some(what), _unescape_some(xwhat)
    error = XmlError(kind=kind, unique=unique, what=what if what is not None else xwhat or "",
                     leaked_bytes=leaked_bytes or None, leaked_blocks=leaked_blocks or None)
    start = text.find("<stack>", head.end())
    if start >= 0:
        end = text.find("</stack>", start)
        if end < 0:
            return None
        error.stack = StackText(text[start + 7:end])
        if "auxwhat>" in text:
            # _related_stacks fails exactly when a "<stack>" follows the last "</stack>"
            if text.find("<stack>", text.rfind("</stack>")) >= 0:
                return None
            error.related = RelatedText(text, end + 8)
    return error


def _walk_error(element: Any) -> XmlError:
    error = XmlError()
    related: list[tuple[str, Iterable[RawFrame]]] = []
    error.related = related
    title: str | None = None
    first_stack = True
    for child in element:
        tag = child.tag
        if tag == "stack":
            frames = tuple(_raw_frame({part.tag: part.text for part in frame}) for frame in child)
            if first_stack:
                error.stack, first_stack, title = frames, False, None
            elif title is not None:
                related.append((" ".join(title.split()), frames))
                title = None
        elif tag == "auxwhat":
            title = child.text or ""
        elif tag == "xauxwhat":
            title = next((part.text or "" for part in child if part.tag == "text"), "")
        elif tag == "kind":
            error.kind = child.text
        elif tag == "unique":
            error.unique = child.text
        elif tag == "what":
            if error.what is None:
                error.what = child.text or ""
        elif tag == "xwhat":
            for part in child:
                if part.tag == "text":
                    error.what = part.text or ""
                elif part.tag == "leakedbytes":
                    error.leaked_bytes = part.text
                elif part.tag == "leakedblocks":
                    error.leaked_blocks = part.text
    return error


# --------------------------------------------------------------------------------------------------
# The scanner


def _leaves(element: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    for child in element:
        path = f"{prefix}{child.tag}"
        yield path, child.text or ""
        yield from _leaves(child, f"{path}/")


def _fromstring(text: str) -> Any:
    """An element from its text alone. The text was cut from the file by its tags, so in a file that
    is not memcheck's it may not be an element by itself (``<error>`` inside an ``<error>``, a
    ``<stack>`` in a ``<stack>``): broken XML, whatever expat says of the whole file later."""
    import xml.etree.ElementTree as ElementTree

    try:
        return ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise BrokenXml(f"an element that is not whole on its own: {error}", at_end=False) from None


def _parsed_element(text: str) -> XmlElement:
    """A small top-level element (or <pair>) from its XML text."""
    element = _fromstring(text)
    return XmlElement(element.tag, element.text or "", list(_leaves(element)))


def _parsed_error(text: str) -> XmlError:
    return _walk_error(_fromstring(text))


_PAIR = re.compile(r"<pair>\s*<count>(\d+)</count>\s*<(unique|name)>([^<]*)</\2>\s*</pair>", re.A)


def _pair(text: str) -> XmlElement:
    match = _PAIR.fullmatch(text)
    if match is None:
        return _parsed_element(text)
    return _pair_of(match[1], match[2], match[3])


def _pair_of(count: str, name: str, value: str) -> XmlElement:
    return XmlElement("pair", "", [("count", count), (name, _unescape(value))])


def _run_errors(text: str, exact_ends: bool = False) -> ErrorRun:
    """The <error>s of a run's text (elements and the blanks between them). Where every end tag is
    written ``</error>``, as memcheck does (``exact_ends``: the scan saw it), a split cuts them
    apart; else the general expression."""
    pieces = text.split("</error>")
    if exact_ends or text.count("</error") == len(pieces) - 1:
        pieces.pop()  # the blanks after the last one
        return ErrorRun([_text_error(piece) or _parsed_error(f"{piece.lstrip()}</error>")
                         for piece in pieces])
    return ErrorRun([_text_error(element) or _parsed_error(element)
                     for element in _ELEMENTS[b"error"].findall(text)])


def _run_pairs(text: str) -> PairRun | list[XmlElement]:
    """The <pair>s of a run's text: all read by one expression when they all have the usual shape."""
    pairs = _PAIR.findall(text)
    if len(pairs) == text.count("<pair"):
        if "&" in text:
            return PairRun([(count, name, _unescape(value)) for count, name, value in pairs])
        return PairRun(pairs)
    return [_pair(element) for element in _ELEMENTS[b"pair"].findall(text)]


# The end of a run of elements of a kind: an end tag that no element of the kind follows, blanks
# aside. The elements of a run's text; re.ASCII: "\s" is XML's blanks only, as in the bytes.
_RUN_END = {tag: re.compile(rb"</%s\s*>(?!\s*<%s[\s>])" % (tag, tag)) for tag in (b"error", b"pair")}
_END = {tag: re.compile(rb"</%s\s*>" % tag) for tag in (b"error", b"pair")}
_ELEMENTS = {tag: re.compile(r"<%s[\s>][^<]*(?:<(?!/%s\s*>)[^<]*)*</%s\s*>" % ((tag.decode(),) * 3), re.A)
             for tag in (b"error", b"pair")}
_STARTS = re.compile(rb"<(error|pair)[\s>]")


# ``_Scanner`` finds the ``<error>``s (and the ``<pair>``s of ``<errorcounts>``) in the bytes and reads
# them with regular expressions, while a C parser checks every byte of the file; no element objects
# at all. Two parsers can do the checking, with the same items as a result:
#
# - ``stream_lxml`` (the one memgate uses when lxml is installed): libxml2, through lxml, with nothing
#   built and no callbacks (``_LxmlChecker``); the faster of the two;
# - ``stream_expat``: the standard library's expat, whose element callbacks are turned off inside
#   the ``<error>``s.
#
# The tests hold both to a third reading, a whole-tree parse of the same file.
class _Scanner:
    """expat checks every byte of the file; memgate's own scan finds where each <error> (and each
    <pair> of <errorcounts>) starts and ends, and expat is fed those elements with its callbacks
    off, in C only. Their text is then read from the bytes with regular expressions
    (``_text_error``), or parsed on its own when it has another shape. The other top-level elements
    are few and small: expat's callbacks say where they start and end.

    Finding elements by their tags in the bytes is exact because expat refuses, as valgrind never
    writes them, comments, CDATA sections, processing instructions and DOCTYPEs: in what is left, a
    ``<`` always starts a tag. A start tag is only taken where expat's depth says an <error> (or a
    <pair>) can be; <error> has no <error> inside.

    Bytes are kept from the start of the element being read, no further back.
    """

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.items: list[Item] = []
        self.buffer = bytearray()
        self.base = 0  # file offset of buffer[0]
        self.fed = 0  # file offset up to which expat has the bytes
        self.depth = 0
        self.root = ""
        self.top = ""  # the open child of the root
        self.inside = ""  # "error" or "pair" while expat is fed one with its callbacks off
        self.span_start = -1  # file offset of the element being read, -1: none
        self._callbacks(True)

    def _callbacks(self, on: bool) -> None:
        self.parser.StartElementHandler = self.start if on else None
        self.parser.EndElementHandler = self.end if on else None

    def _parse_to(self, offset: int, final: bool = False) -> None:
        if offset > self.fed or final:
            with memoryview(self.buffer) as view:  # one copy, as bytes: what lxml's feed takes
                data = bytes(view[self.fed - self.base: offset - self.base])
            self.parser.Parse(data, final)
            self.fed = offset

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        while self._step():
            pass
        keep = min(self.fed, self.span_start) if self.span_start >= 0 else self.fed
        if keep > self.base:
            del self.buffer[: keep - self.base]
            self.base = keep

    def close(self) -> None:
        self._parse_to(self.base + len(self.buffer), final=True)

    def _safe_end(self) -> int:
        """Up to the last ``<``: a tag cut by the end of the chunk is fed whole, with the next one."""
        last = self.buffer.rfind(b"<", self.fed - self.base)
        return self.base + (last if last >= 0 else len(self.buffer))

    def _step(self) -> bool:
        """Feed expat up to the next boundary; False when the buffer holds no more of one."""
        if self.inside:
            return self._run_of_elements()
        start = _STARTS.search(self.buffer, self.fed - self.base)
        if start is None:
            self._parse_to(max(self.fed, self._safe_end()))
            return False
        self._parse_to(self.base + start.start())
        tag = start[1].decode()
        in_place = self.depth == 1 if tag == "error" else self.depth == 2 and self.top in PAIR_PARENTS
        if in_place:
            self.inside, self.span_start = tag, self.fed
            self._callbacks(False)
        else:  # not where memcheck puts one: let expat's callbacks see it
            self._parse_to(self.base + start.end())
        return True

    def _run_of_elements(self) -> bool:
        """The open element and those of its kind that follow it with only blanks between (a run of
        <error>s, the <pair>s of <errorcounts>), as far as the buffer holds them whole: expat gets
        them in one call, and their text is decoded once and cut into elements in one call."""
        tag = self.inside.encode()
        start = self.span_start - self.base
        run_end, exact_ends = self._run_end(tag, start)
        end = run_end.end() if run_end is not None else self._last_end(tag, start)
        if end < 0:  # not one whole element in the buffer yet
            self._parse_to(max(self.fed, self._safe_end()))
            return False
        self._parse_to(self.base + end)
        with memoryview(self.buffer) as view:
            text = str(view[start:end], "utf-8", errors="replace")
        if tag == b"error":
            self.items.append((self.root, _run_errors(text, exact_ends)))
        else:
            pairs = _run_pairs(text)
            top = self.top
            if isinstance(pairs, PairRun):
                self.items.append((top, pairs))
            else:
                self.items += [(top, pair) for pair in pairs]
        if run_end is None:  # the next one has begun but not ended in this buffer
            self.span_start = self.base + end
            return False
        self.inside, self.span_start = "", -1
        self._callbacks(True)
        return True

    def _run_end(self, tag: bytes, start: int) -> tuple[re.Match[bytes] | None, bool]:
        """``_RUN_END``'s first match from ``start``, and whether every end tag of the kind up to it
        (or up to the end of the buffer) is written exactly ``</tag>``. An <error> is long: its end
        tags are found by ``find`` and only they are matched, much cheaper than the expression's
        scan of every byte."""
        if tag != b"error":
            return _RUN_END[tag].search(self.buffer, start), False
        buffer, run_end, position, exact = self.buffer, _RUN_END[tag], start, True
        while (position := buffer.find(b"</error", position)) >= 0:
            exact = exact and buffer.startswith(b"</error>", position)
            match = run_end.match(buffer, position)
            if match is not None:
                return match, exact
            position += 7
        return None, exact

    def _last_end(self, tag: bytes, start: int) -> int:
        """Where the last whole element in the buffer ends, or -1."""
        end_tag, position = b"</" + tag, len(self.buffer)
        while (position := self.buffer.rfind(end_tag, start, position)) >= 0:
            end = _END[tag].match(self.buffer, position)
            if end is not None:
                return end.end()
        return -1

    # expat's callbacks, outside <error>s and <pair>s

    def start(self, tag: str, _attributes: Any) -> None:
        depth = self.depth = self.depth + 1
        if depth == 1:
            self.root = tag
        elif depth == 2:
            self.top = tag
            if tag not in PAIR_PARENTS:
                self.span_start = self.parser.CurrentByteIndex

    def end(self, tag: str) -> None:
        depth = self.depth
        self.depth = depth - 1
        if depth == 1:
            self.items.append(("", XmlElement(tag)))
        elif depth == 2:
            if tag in PAIR_PARENTS:
                self.items.append((self.root, XmlElement(tag)))
                return
            at = self.parser.CurrentByteIndex - self.base
            # the end tag's ">"; after an empty element (<tag/>), expat's index is already past it
            close = self.buffer.index(b">", at) + 1 if self.buffer.startswith(b"</", at) else at
            text = self.buffer[self.span_start - self.base: close].decode("utf-8", errors="replace")
            self.span_start = -1
            # an <error> seen here is one the scan did not take: an empty one, <error/>
            self.items.append((self.root, _parsed_error(text) if tag == "error" else _parsed_element(text)))


# --------------------------------------------------------------------------------------------------
# The checkers: expat (the standard library), libxml2 (lxml)


def _refuse(what: str) -> Any:
    def handler(*_arguments: Any) -> None:
        raise BrokenXml(f"{what}, which valgrind never writes", at_end=False)
    return handler


def _expat_parser() -> tuple[Any, type[Exception]]:
    from xml.parsers import expat

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse("a DOCTYPE declaration")
    parser.CommentHandler = _refuse("a comment")
    parser.StartCdataSectionHandler = _refuse("a CDATA section")
    parser.ProcessingInstructionHandler = _refuse("a processing instruction")
    return parser, expat.ExpatError


# A tag, exactly (libxml2 has checked that the bytes are well-formed): its name, and "/" for an end
# tag or an empty element. Attribute values may hold ">", so they are matched whole.
_TAG = re.compile(
    rb"<(/?)([^\s/>!?]+)(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*(/?)>"
)


class _Refusals:
    """lxml's parser target: nothing is built and nothing called but for what valgrind never writes."""

    def comment(self, _text: str) -> None:
        raise BrokenXml("a comment, which valgrind never writes", at_end=False)

    def pi(self, _target: str, _data: str | None = None) -> None:
        raise BrokenXml("a processing instruction, which valgrind never writes", at_end=False)

    def doctype(self, *_parts: str | None) -> None:
        raise BrokenXml("a DOCTYPE declaration, which valgrind never writes", at_end=False)

    def close(self) -> None:
        return None


_CDATA = b"<![CDATA["
_LONGEST_TAG = 1 << 20  # valgrind's tags have no attributes: a few bytes each


class _LxmlChecker:
    """libxml2 (through lxml) checks every byte, in C, without building anything (``_Refusals``).
    It stands in for expat in ``_Scanner``, which needs expat's element callbacks only between the
    ``<error>``s: there they come from a scan of the bytes for tags, exact because libxml2 refuses
    what is not well-formed and this checker refuses, as the expat reading does, comments, CDATA
    sections, processing instructions and DOCTYPEs: every ``<`` starts a tag."""

    def __init__(self) -> None:
        from lxml import etree

        self._parser = etree.XMLParser(target=_Refusals(), resolve_entities=False, no_network=True,
                                       huge_tree=True)
        self.StartElementHandler: Any = None
        self.EndElementHandler: Any = None
        self.CurrentByteIndex = 0
        self._fed = 0  # file offset of the next byte
        self._pending = b""  # a tag cut by the end of the bytes fed, scanned with the next ones
        self._tail = b""  # the last bytes fed: a CDATA opening cut by the end of a feed

    def Parse(self, data: bytes | bytearray, final: bool = False) -> None:  # noqa: N802 (expat's name)
        data = bytes(data)
        if _CDATA in self._tail + data[:len(_CDATA)] or _CDATA in data:
            raise BrokenXml("a CDATA section, which valgrind never writes", at_end=False)
        self._tail = (self._tail + data[-len(_CDATA):])[-len(_CDATA):]
        if data:
            self._parser.feed(data)
        if final:
            self._parser.close()
        if self.StartElementHandler is not None:
            self._callbacks(data)
        else:
            self._pending = b""
        self._fed += len(data)

    def _callbacks(self, data: bytes) -> None:
        text = self._pending + data
        base = self._fed - len(self._pending)
        position = 0
        while (start := text.find(b"<", position)) >= 0:
            tag = _TAG.match(text, start)
            if tag is None:
                if text.startswith(b"<?", start):  # the XML declaration (libxml2 refuses any other)
                    position = text.find(b">", start) + 1 or len(text)
                    continue
                break  # cut by the end of the bytes fed
            self.CurrentByteIndex = base + start
            closing, name_bytes, empty = tag.groups()
            name = name_bytes.decode("utf-8", errors="replace")
            if closing:
                self.EndElementHandler(name)
            else:
                self.StartElementHandler(name, {})
                if empty:
                    self.CurrentByteIndex = base + tag.end()  # past the element, as expat has it
                    self.EndElementHandler(name)
            position = tag.end()
        self._pending = text[start:] if start >= 0 else b""
        if len(self._pending) > _LONGEST_TAG:  # bounded memory, whatever libxml2 waits for
            raise BrokenXml(f"a tag that does not end within {_LONGEST_TAG:,} bytes", at_end=False)


_ROOT_END = f"</{ROOT}>".encode()


def _stream(path: Path, parser: Any, syntax_error: type[Exception]) -> Iterator[Item]:
    """The items of the file, the parser checking its bytes. A syntax error at the end of the input
    is a file cut short, unless the file ends with the root's end tag: then it is broken (both
    parsers wait for more bytes before they judge a ``<`` that no ``>`` follows yet)."""
    scanner = _Scanner(parser)
    tail = b""

    def drain() -> Iterator[Item]:
        items, scanner.items = scanner.items, []
        yield from items

    for chunk in _chunks(path):
        tail = (tail + chunk[-2 * len(_ROOT_END):])[-2 * len(_ROOT_END):]
        try:
            scanner.feed(chunk)
        except syntax_error as error:
            yield from drain()
            raise BrokenXml(str(error), at_end=False) from None
        yield from drain()
    try:
        scanner.close()
    except syntax_error as error:
        yield from drain()
        raise BrokenXml(str(error), at_end=not tail.rstrip().endswith(_ROOT_END)) from None
    yield from drain()


def stream_expat(path: Path) -> Iterator[Item]:
    return _stream(path, *_expat_parser())


@functools.cache
def lxml_available() -> bool:
    try:
        import lxml.etree  # noqa: F401
    except ImportError:
        return False
    return True


def stream_lxml(path: Path) -> Iterator[Item]:
    from lxml import etree

    return _stream(path, _LxmlChecker(), etree.XMLSyntaxError)
