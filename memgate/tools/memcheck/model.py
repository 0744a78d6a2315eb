"""What one memcheck output file says about one process, gathered while it streams by."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from memgate.fingerprint import (
    NO_WRAPPERS,
    AllocWrappers,
    fingerprint,
    frame_key,
    is_runtime_frame,
    site_of,
    site_of_known,
)
from memgate.metrics import LEAK_KINDS, LeakKind
from memgate.records import Frame, Leak, MemError, RelatedStack
from memgate.testnames import TEST_BODY, gtest_of_functions

LeakCheck = Literal["full", "summary", "no"]

# memcheck's leak kinds, as <kind> in the XML and as words in the text
XML_LEAK_KINDS: dict[str, LeakKind] = {
    "Leak_DefinitelyLost": "definite",
    "Leak_IndirectlyLost": "indirect",
    "Leak_PossiblyLost": "possible",
    "Leak_StillReachable": "reachable",
}
TEXT_LEAK_KINDS: dict[str, LeakKind] = {
    "definitely lost": "definite",
    "indirectly lost": "indirect",
    "possibly lost": "possible",
    "still reachable": "reachable",
}


@dataclass
class Amount:
    """Bytes in blocks."""

    bytes: int = 0
    blocks: int = 0

    def add(self, size: int, blocks: int) -> None:
        self.bytes += size
        self.blocks += blocks


@dataclass(frozen=True)
class HeapUsage:
    """memcheck's HEAP SUMMARY: what was live at exit and what was ever allocated."""

    in_use_bytes: int
    in_use_blocks: int
    allocs: int | None  # None: not recorded (``--xtree-memory=allocs`` has no totals)
    bytes_allocated: int | None
    source: str  # where the figures come from, for messages


# A frame as printed, before it becomes a ``Frame``: function, file, line, object, address.
RawFrame = tuple[str | None, str | None, int | None, str | None, str | None]


class LazyStack(Protocol):
    """Frames read only as far as they are asked for (``xmlstream.StackText``)."""

    weight: int  # characters it holds
    ip_free: str  # its text without any address: equal for stacks whose frames differ in addresses only

    @property
    def site_key(self) -> str:
        """Equal for stacks that have the same site (frames that differ only in addresses that the
        site does not depend on)."""

    def __iter__(self) -> Iterator[RawFrame]: ...


# A stack: its frames, or a source that reads them when asked.
Stack = tuple[RawFrame, ...] | LazyStack
_STACKS_WEIGHT = 1 << 22  # characters of stacks kept in the cache of sites (a few MB)
_FRAMES_KEPT = 1 << 16
_TESTS_KEPT = 1 << 12  # stacks whose test is known: those with a TestBody frame only


def to_frame(raw: RawFrame) -> Frame:
    function, file, line, obj, address = raw
    return Frame(function=function, file=file, line=line, object=obj, address=address)


# Leak and error records are aggregated as they arrive, by kind and fingerprint (the identity the gate
# compares), so memory stays bounded by the number of distinct sites, not by the size of the output.
class Sites:
    """The site of a stack (``memgate.fingerprint.site_of``) without a pydantic ``Frame`` per frame.

    A site depends on few parts of a frame: its function and object when it has a function, else its
    file and line, else its object and address. Frames that agree on those parts share one
    representative ``Frame``, so a run whose stacks differ only in addresses (most of them) costs
    a dictionary lookup per frame. Whole stacks seen before cost one lookup. Both caches are bounded.
    """

    def __init__(self, wrappers: AllocWrappers = NO_WRAPPERS) -> None:
        self.wrappers = wrappers  # the project's allocators, skipped like malloc
        self._frames: dict[RawFrame, tuple[bool, str]] = {}
        self._whole_frames: dict[RawFrame, Frame] = {}
        self._stacks: dict[tuple[RawFrame, ...] | str, str] = {}
        self._stacks_weight = 0
        self._tests: dict[str, str | None] = {}  # site_key of a stack with a TestBody frame -> its test
        self._identities: dict[str, tuple[str, str | None]] = {}  # ip_free -> site and test
        self._identities_weight = 0

    def identity(self, stack: Stack) -> tuple[str, str | None]:
        """The site and test of a stack. A read stack all of whose frames have a function or a file
        (most) depends on none of its addresses: it is then known by its text without any, which
        is cheaper to make than ``site_key`` (no address is told apart from another)."""
        if isinstance(stack, tuple):
            return self.site(stack), self.test(stack)
        known = self._identities.get(stack.ip_free)
        if known is None:
            known = (self.site(stack), self.test(stack))
            if all(function or file for function, file, *_ in stack):
                if self._identities_weight + stack.weight > _STACKS_WEIGHT:
                    self._identities.clear()
                    self._identities_weight = 0
                self._identities[stack.ip_free] = known
                self._identities_weight += stack.weight
        return known

    def site(self, stack: Stack) -> str:
        key = stack if isinstance(stack, tuple) else stack.site_key
        known = self._stacks.get(key)
        if known is None:
            known = self._site(stack)
            weight = 64 * len(stack) if isinstance(stack, tuple) else stack.weight
            if self._stacks_weight + weight > _STACKS_WEIGHT:
                self._stacks.clear()
                self._stacks_weight = 0
            self._stacks[key] = known
            self._stacks_weight += weight
        return known

    def test(self, stack: Stack) -> str | None:
        """The GoogleTest test whose ``TestBody`` is on the stack (``memgate.testnames``). A stack
        without the word anywhere costs one substring search; only the others are read whole."""
        if isinstance(stack, tuple):
            return gtest_of_functions(frame[0] for frame in stack)
        if TEST_BODY not in stack.site_key:
            return None
        if stack.site_key not in self._tests:
            if len(self._tests) >= _TESTS_KEPT:
                self._tests.clear()
            self._tests[stack.site_key] = gtest_of_functions(frame[0] for frame in stack)
        return self._tests[stack.site_key]

    def _site(self, stack: Stack) -> str:
        return site_of_known(map(self._known, stack))

    def _known(self, raw: RawFrame) -> tuple[bool, str]:
        function, file, line, obj, address = raw
        # only the parts of a frame its site depends on
        if function:
            part: RawFrame = (function, None, None, obj, None)
        elif file:
            part = (None, file, line, obj, None)
        else:
            part = (None, None, None, obj, address)
        known = self._frames.get(part)
        return known if known is not None else self._learn(part)

    def frame(self, raw: RawFrame) -> Frame:
        """One ``Frame`` object for equal frames: the sites of a run share most of theirs (malloc's,
        main's), and 100,000 sites would otherwise hold a pydantic object per frame each."""
        known = self._whole_frames.get(raw)
        if known is None:
            if len(self._whole_frames) >= _FRAMES_KEPT:
                self._whole_frames.clear()
            known = self._whole_frames[raw] = to_frame(raw)
        return known

    def _learn(self, part: RawFrame) -> tuple[bool, str]:
        frame = to_frame(part)
        known = (is_runtime_frame(frame, self.wrappers), frame_key(frame))
        if len(self._frames) >= _FRAMES_KEPT:
            self._frames.clear()
        self._frames[part] = known
        return known


def identify(category: str, stack: Stack, frame: Callable[[RawFrame], Frame] = to_frame,
             wrappers: AllocWrappers = NO_WRAPPERS) -> tuple[tuple[Frame, ...], str, str]:
    """The frames, site and fingerprint of a record, the way every memgate parser makes them."""
    frames = tuple(map(frame, stack))
    site = site_of(frames, wrappers)
    return frames, site, fingerprint(category, frames, site)


@dataclass
class _LeakSite:
    kind: LeakKind
    stack: tuple[Frame, ...]
    site: str
    fingerprint: str
    test: str | None
    amount: Amount = field(default_factory=Amount)


class LeakTally:
    """Loss records of the last leak search, merged by kind, site (so by fingerprint) and test:
    one helper leaking in two GoogleTest tests is two records, one for each test.

    ``bytes`` of a record are its OWN bytes: a definite record "96 (32 direct, 64 indirect) bytes"
    owns 32; its 64 indirect bytes are separate indirect records.
    """

    def __init__(self, sites: Sites) -> None:
        self._sites_of = sites
        self._sites: dict[tuple[LeakKind, str, str | None], _LeakSite] = {}
        self.per_kind: dict[LeakKind, Amount] = {kind: Amount() for kind in LEAK_KINDS}
        self.records = 0

    def add(self, kind: LeakKind, own_bytes: int, blocks: int, stack: Stack) -> None:
        site_text, test = self._sites_of.identity(stack)
        key = (kind, site_text, test)
        site = self._sites.get(key)
        if site is None:
            frames, site_text, print_ = identify(f"leak:{kind}", stack, self._sites_of.frame,
                                                     self._sites_of.wrappers)
            site = self._sites[key] = _LeakSite(kind, frames, site_text, print_, test)
        site.amount.add(own_bytes, blocks)
        self.per_kind[kind].add(own_bytes, blocks)
        self.records += 1

    def leaks(self) -> tuple[Leak, ...]:
        return tuple(
            Leak(kind=site.kind, bytes=site.amount.bytes, blocks=site.amount.blocks, stack=site.stack,
                 fingerprint=site.fingerprint, site=site.site, test=site.test)
            for site in self._sites.values()
        )

    def total(self) -> Amount:
        total = Amount()
        for amount in self.per_kind.values():
            total.add(amount.bytes, amount.blocks)
        return total


@dataclass
class _ErrorSite:
    kind: str
    description: str
    stack: tuple[Frame, ...]
    site: str
    fingerprint: str
    test: str | None
    related: tuple[RelatedStack, ...] = ()
    count: int = 0


ErrorKey = tuple[str, str, str | None]  # kind, site, test


class ErrorTally:
    """Memory errors (leaks excluded) merged by kind, site and test, with their occurrence counts."""

    def __init__(self, sites: Sites) -> None:
        self._sites_of = sites
        self._sites: dict[ErrorKey, _ErrorSite] = {}

    def key(self, kind: str, description: str, stack: Stack,
            related: Iterable[tuple[str, Iterable[RawFrame]]] = ()) -> ErrorKey:
        """Register a site (count 0 so far) and return its key, for counts that come later. The
        first error of a site gives its description and its related stacks (free, allocation)."""
        site, test = self._sites_of.identity(stack)
        key = (kind, site, test)
        if key not in self._sites:
            frames, site_text, print_ = identify(f"error:{kind}", stack, self._sites_of.frame,
                                                 self._sites_of.wrappers)
            others = tuple(RelatedStack(description=title, stack=tuple(map(self._sites_of.frame, other)))
                           for title, other in related)
            self._sites[key] = _ErrorSite(kind, " ".join(description.split()), frames, site_text, print_,
                                          test, others)
        return key

    def count(self, key: ErrorKey, occurrences: int) -> None:
        self._sites[key].count += occurrences

    def add(self, kind: str, description: str, stack: Stack, occurrences: int) -> None:
        self.count(self.key(kind, description, stack), occurrences)

    def total(self) -> int:
        return sum(site.count for site in self._sites.values())

    def errors(self) -> tuple[MemError, ...]:
        return tuple(
            MemError(kind=site.kind, description=site.description, count=site.count, stack=site.stack,
                     fingerprint=site.fingerprint, site=site.site, related=site.related, test=site.test)
            for site in self._sites.values()
            if site.count > 0
        )


@dataclass
class MemcheckOutput:
    """One process as one file describes it. ``problems`` are reasons the figures are incomplete."""

    path: Path
    format: Literal["xml", "text", "xtree"]
    sites: Sites = field(default_factory=Sites, repr=False)
    pid: int | None = None
    command: str | None = None
    leaks: LeakTally = field(init=False)
    errors: ErrorTally = field(init=False)
    #: memcheck's own per-kind totals (text LEAK SUMMARY, XML protocol 6 <leak_summary>)
    leak_summary: dict[LeakKind, Amount] | None = None
    suppressed_leaks: Amount | None = None
    heap: HeapUsage | None = None
    #: how the leak search ran and which kinds' records were printed (None: not known)
    leak_check: LeakCheck | None = None
    shown_kinds: frozenset[LeakKind] | None = None
    suppressions_used: bool = False
    #: <suppcounts>: each suppression memcheck used (by name) and how many errors and leaks it hid
    suppression_counts: list[tuple[str, int]] = field(default_factory=list)
    #: the exact number of error occurrences when the records cannot carry it (see textlog)
    errors_total: int | None = None
    fatal_signal: str | None = None
    finished: bool = False  # the output ran to its normal end
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.leaks = LeakTally(self.sites)
        self.errors = ErrorTally(self.sites)

    def restart_leaks(self) -> None:
        """A new leak search begins: the records of earlier ones do not count."""
        self.leaks = LeakTally(self.sites)

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)
