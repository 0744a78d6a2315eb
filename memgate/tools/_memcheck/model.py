"""What one memcheck output file says about one process, gathered while it streams by.

Leak and error records are aggregated as they arrive, by kind and fingerprint (the identity the gate
compares), so memory stays bounded by the number of distinct sites, not by the size of the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from memgate.fingerprint import fingerprint, site_of
from memgate.metrics import LEAK_KINDS, LeakKind
from memgate.records import Frame, Leak, MemError

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
_CACHE_LIMIT = 1 << 16


class StackCache:
    """Frames, sites and fingerprints already worked out: a run prints the same stacks again and
    again, and a pydantic ``Frame`` and a SHA-256 for each would dominate the parse. Bounded: emptied
    when full."""

    def __init__(self, limit: int = _CACHE_LIMIT) -> None:
        self.limit = limit
        self._frames: dict[RawFrame, Frame] = {}
        self._stacks: dict[tuple[RawFrame, ...], tuple[tuple[Frame, ...], str]] = {}
        self._fingerprints: dict[tuple[str, str], str] = {}

    def stack(self, raw: tuple[RawFrame, ...]) -> tuple[tuple[Frame, ...], str]:
        """The frames and the site of a stack."""
        known = self._stacks.get(raw)
        if known is None:
            frames = tuple(self._frame(frame) for frame in raw)
            known = (frames, site_of(frames))
            self._remember(self._stacks, raw, known)
        return known

    def fingerprint(self, category: str, frames: tuple[Frame, ...], site: str) -> str:
        key = (category, site)
        known = self._fingerprints.get(key)
        if known is None:
            known = fingerprint(category, frames)
            self._remember(self._fingerprints, key, known)
        return known

    def _frame(self, raw: RawFrame) -> Frame:
        frame = self._frames.get(raw)
        if frame is None:
            function, file, line, obj, address = raw
            frame = Frame(function=function, file=file, line=line, object=obj, address=address)
            self._remember(self._frames, raw, frame)
        return frame

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= self.limit:
            cache.clear()
        cache[key] = value


@dataclass
class _LeakSite:
    kind: LeakKind
    stack: tuple[Frame, ...]
    site: str
    amount: Amount = field(default_factory=Amount)


class LeakTally:
    """Loss records of the last leak search, merged by kind and fingerprint.

    ``bytes`` of a record are its OWN bytes: a definite record "96 (32 direct, 64 indirect) bytes"
    owns 32; its 64 indirect bytes are separate indirect records.
    """

    def __init__(self, cache: StackCache) -> None:
        self._cache = cache
        self._sites: dict[tuple[LeakKind, str], _LeakSite] = {}
        self.per_kind: dict[LeakKind, Amount] = {kind: Amount() for kind in LEAK_KINDS}
        self.records = 0

    def add(self, kind: LeakKind, own_bytes: int, blocks: int, raw: tuple[RawFrame, ...]) -> None:
        frames, site_text = self._cache.stack(raw)
        key = (kind, self._cache.fingerprint(f"leak:{kind}", frames, site_text))
        site = self._sites.get(key)
        if site is None:
            site = self._sites[key] = _LeakSite(kind, frames, site_text)
        site.amount.add(own_bytes, blocks)
        self.per_kind[kind].add(own_bytes, blocks)
        self.records += 1

    def leaks(self) -> tuple[Leak, ...]:
        return tuple(
            Leak(kind=site.kind, bytes=site.amount.bytes, blocks=site.amount.blocks, stack=site.stack,
                 fingerprint=key[1], site=site.site)
            for key, site in self._sites.items()
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
    count: int = 0


class ErrorTally:
    """Memory errors (leaks excluded) merged by kind and fingerprint, with their occurrence counts."""

    def __init__(self, cache: StackCache) -> None:
        self._cache = cache
        self._sites: dict[tuple[str, str], _ErrorSite] = {}

    def key(self, kind: str, description: str, raw: tuple[RawFrame, ...]) -> tuple[str, str]:
        """Register a site (count 0 so far) and return its key, for counts that come later."""
        frames, site_text = self._cache.stack(raw)
        key = (kind, self._cache.fingerprint(f"error:{kind}", frames, site_text))
        if key not in self._sites:
            self._sites[key] = _ErrorSite(kind, description, frames, site_text)
        return key

    def count(self, key: tuple[str, str], occurrences: int) -> None:
        self._sites[key].count += occurrences

    def add(self, kind: str, description: str, raw: tuple[RawFrame, ...], occurrences: int) -> None:
        self.count(self.key(kind, description, raw), occurrences)

    def total(self) -> int:
        return sum(site.count for site in self._sites.values())

    def contexts(self) -> int:
        return len(self._sites)

    def errors(self) -> tuple[MemError, ...]:
        return tuple(
            MemError(kind=site.kind, description=site.description, count=site.count, stack=site.stack,
                     fingerprint=key[1], site=site.site)
            for key, site in self._sites.items()
            if site.count > 0
        )


@dataclass
class MemcheckOutput:
    """One process as one file describes it. ``problems`` are reasons the figures are incomplete."""

    path: Path
    format: Literal["xml", "text", "xtree"]
    cache: StackCache = field(default_factory=StackCache, repr=False)
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
    errors_known: bool = False  # error occurrences are counted (not just seen)
    #: the exact number of error occurrences when the records cannot carry it (see textlog)
    errors_total: int | None = None
    fatal_signal: str | None = None
    finished: bool = False  # the output ran to its normal end
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.leaks = LeakTally(self.cache)
        self.errors = ErrorTally(self.cache)

    def restart_leaks(self) -> None:
        """A new leak search begins: the records of earlier ones do not count."""
        self.leaks = LeakTally(self.cache)

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)
