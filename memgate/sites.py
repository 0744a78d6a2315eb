"""Leak and error sites: the records of a suite grouped by fingerprint, with their sizes summed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from memgate.fingerprint import NO_WRAPPERS, AllocWrappers, is_runtime_frame
from memgate.metrics import LeakKind
from memgate.records import Frame, Leak, MemError, Record, RelatedStack

#: Frames kept per site for reports and baselines: enough to recognise the place, few enough to read.
TOP_FRAMES = 5


# A site is what baselines keep and what comparisons match: one fingerprint, one kind, the bytes and blocks
# (leaks) or occurrences (errors) of every record that shares it, and a few readable frames.
class LeakSite(Record):
    fingerprint: str
    kind: LeakKind
    bytes: int
    blocks: int
    site: str
    frames: tuple[Frame, ...] = ()
    #: The test of the record that represents the site (reports only; baselines leave it out).
    test: str | None = None


class ErrorSite(Record):
    fingerprint: str
    kind: str
    count: int
    site: str
    frames: tuple[Frame, ...] = ()
    #: The tool's description of one occurrence (reports only; baselines leave it out).
    description: str | None = None
    #: Where the block was freed or allocated, each a few frames (reports only, like description).
    related: tuple[RelatedStack, ...] | None = None
    #: The test of the record that represents the site (reports only; baselines leave it out).
    test: str | None = None


#: (kind, fingerprint): a fingerprint already encodes its kind; keying by both is belt and braces.
SiteKey = tuple[str, str]


def top_frames(stack: Sequence[Frame], wrappers: AllocWrappers = NO_WRAPPERS) -> tuple[Frame, ...]:
    """The first frames of the project's own code (``wrappers`` skipped too), without addresses when a
    name or file says more (addresses change with every build and would make every baseline diff noisy)."""
    own = [frame for frame in stack if not is_runtime_frame(frame, wrappers)] or list(stack)
    return tuple(_without_address(frame) for frame in own[:TOP_FRAMES])


def _without_address(frame: Frame) -> Frame:
    if frame.address is not None and (frame.function or frame.file):
        return Frame(function=frame.function, file=frame.file, line=frame.line, object=frame.object)
    return frame


StackOrder = tuple[tuple[str, str, int, str], ...]


def _stack_order(stack: Sequence[Frame]) -> StackOrder:
    """Which of several stacks of one site represents it: the smallest, so that the choice does not
    depend on the order processes finished in."""
    return tuple((f.function or "", f.file or "", f.line or 0, f.object or "") for f in stack)


_Record = TypeVar("_Record", Leak, MemError)


# Grouping is one pass over the records with a dict, so 100,000 records cost well under a second.
class _Group(Generic[_Record]):
    """One site being summed: its totals and the record that represents it."""

    __slots__ = ("first", "second", "record", "order")

    def __init__(self, first: int, second: int, record: _Record) -> None:
        self.first = first  # bytes, or occurrences
        self.second = second  # blocks
        self.record: _Record = record
        self.order: StackOrder | None = None  # computed only once the site is seen twice

    def consider(self, record: _Record) -> None:
        if record.stack is self.record.stack:
            return
        if self.order is None:
            self.order = _stack_order(self.record.stack)
        order = _stack_order(record.stack)
        if order < self.order:
            self.record, self.order = record, order


def group_leaks(leaks: Iterable[Leak], wrappers: AllocWrappers = NO_WRAPPERS, *,
                tests: bool = True) -> dict[SiteKey, LeakSite]:
    """``wrappers``: those the records were fingerprinted with (``SuiteRecord.alloc_wrappers``);
    ``tests=False`` leaves the sites' tests out (baselines: a site is the same whichever test reached
    it)."""
    groups: dict[SiteKey, _Group[Leak]] = {}
    for leak in leaks:
        key = (leak.kind, leak.fingerprint)
        group = groups.get(key)
        if group is None:
            groups[key] = _Group(leak.bytes, leak.blocks, leak)
        else:
            group.first += leak.bytes
            group.second += leak.blocks
            group.consider(leak)
    return {
        key: LeakSite(
            fingerprint=group.record.fingerprint, kind=group.record.kind, bytes=group.first,
            blocks=group.second, site=group.record.site, frames=top_frames(group.record.stack, wrappers),
            test=group.record.test if tests else None,
        )
        for key, group in groups.items()
    }


def group_errors(errors: Iterable[MemError], *, descriptions: bool = True,
                 wrappers: AllocWrappers = NO_WRAPPERS) -> dict[SiteKey, ErrorSite]:
    """``descriptions=False`` leaves them, the related stacks and the test out (baselines:
    descriptions can carry addresses, and none of them is part of a site's identity); ``wrappers``
    as for ``group_leaks``."""
    groups: dict[SiteKey, _Group[MemError]] = {}
    for error in errors:
        key = (error.kind, error.fingerprint)
        group = groups.get(key)
        if group is None:
            groups[key] = _Group(error.count, 0, error)
        else:
            group.first += error.count
            group.consider(error)
    return {
        key: ErrorSite(
            fingerprint=group.record.fingerprint, kind=group.record.kind, count=group.first,
            site=group.record.site, frames=top_frames(group.record.stack, wrappers),
            description=(group.record.description or None) if descriptions else None,
            related=_top_related(group.record.related) if descriptions else None,
            test=group.record.test if descriptions else None,
        )
        for key, group in groups.items()
    }


def _top_related(related: Sequence[RelatedStack]) -> tuple[RelatedStack, ...] | None:
    return tuple(RelatedStack(description=stack.description, stack=top_frames(stack.stack))
                 for stack in related) or None
