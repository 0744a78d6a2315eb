"""What the heap profilers that record allocation stacks (DHAT, massif, heaptrack) share: their stacks
made into ``HeapSite`` records, fingerprinted, named and located as leaks are, the project's allocator
wrappers skipped like ``malloc``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from memgate.fingerprint import NO_WRAPPERS, AllocWrappers, fingerprint, site_of
from memgate.records import HEAP_SITES_KEPT, Frame, HeapSite
from memgate.sites import top_frames


@dataclass(frozen=True)
class HeapStack:
    """One allocation stack as a profiler gives it, innermost frame first, with its figures: bytes
    (allocated, or live at the peak for massif), blocks allocated (None: not counted) and bytes live
    at the heap's peak."""

    frames: tuple[Frame, ...]
    bytes: int
    blocks: int | None
    peak_bytes: int | None


@dataclass
class _SiteSum:
    # The frames its record shows: of the stack that allocated most (the first of equals), whatever
    # order the profile lists its stacks in.
    stack: tuple[Frame, ...]
    stack_bytes: int
    bytes: int
    blocks: int | None
    peak_bytes: int | None

    def add(self, other: HeapStack) -> None:
        if other.bytes > self.stack_bytes:
            self.stack, self.stack_bytes = other.frames, other.bytes
        self.bytes += other.bytes
        self.blocks = _sum_known(self.blocks, other.blocks)
        self.peak_bytes = _sum_known(self.peak_bytes, other.peak_bytes)


def _sum_known(first: int | None, second: int | None) -> int | None:
    return None if first is None or second is None else first + second


def heap_sites(stacks: Iterable[HeapStack], wrappers: AllocWrappers = NO_WRAPPERS) -> tuple[HeapSite, ...]:
    """The stacks as sites: stacks that name one site (the same first frames of the project's code,
    ``wrappers`` skipped) summed, the ``HEAP_SITES_KEPT`` that allocated most bytes kept. Summed by
    name first, so only the few kept become records (a compiler run has 25,000 DHAT stacks)."""
    by_site: dict[str, _SiteSum] = {}
    for stack in stacks:
        site = site_of(stack.frames, wrappers)
        summed = by_site.get(site)
        if summed is None:
            by_site[site] = _SiteSum(stack.frames, stack.bytes, stack.bytes, stack.blocks, stack.peak_bytes)
        else:
            summed.add(stack)
    kept = sorted(by_site.items(), key=lambda item: (-item[1].bytes, item[0]))[:HEAP_SITES_KEPT]
    return tuple(HeapSite(fingerprint=fingerprint("heap", summed.stack, site, wrappers), site=site,
                          frames=top_frames(summed.stack, wrappers), bytes=summed.bytes,
                          blocks=summed.blocks, peak_bytes=summed.peak_bytes)
                 for site, summed in kept)


def refingerprinted(sites: Iterable[HeapSite], wrappers: AllocWrappers) -> tuple[HeapSite, ...]:
    """Sites (of a baseline) named and fingerprinted again with ``wrappers`` from the frames each
    keeps, by the rule of ``heap_sites``; sites that become one are summed."""
    stacks = (HeapStack(site.frames, site.bytes, site.blocks, site.peak_bytes) for site in sites)
    return heap_sites(stacks, wrappers)
