"""Leak and error sites: the records of a suite grouped by fingerprint, with their sizes summed.

A site is what baselines keep and what comparisons match: one fingerprint, one kind, the bytes and
blocks (leaks) or occurrences (errors) of every record that shares it, and a few readable frames.
Grouping is one pass over the records with a dict, so 100,000 records cost well under a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from memgate.fingerprint import is_runtime_frame
from memgate.metrics import LeakKind
from memgate.records import Frame, Leak, MemError, Record

#: Frames kept per site for reports and baselines: enough to recognise the place, few enough to read.
TOP_FRAMES = 5


class LeakSite(Record):
    fingerprint: str
    kind: LeakKind
    bytes: int
    blocks: int
    site: str
    frames: tuple[Frame, ...] = ()


class ErrorSite(Record):
    fingerprint: str
    kind: str
    count: int
    site: str
    frames: tuple[Frame, ...] = ()
    #: The tool's description of one occurrence (reports only; baselines leave it out).
    description: str | None = None


#: (kind, fingerprint): a fingerprint already encodes its kind; keying by both is belt and braces.
SiteKey = tuple[str, str]


def top_frames(stack: Sequence[Frame]) -> tuple[Frame, ...]:
    """The first frames of the project's own code, without addresses when a name or file says more
    (addresses change with every build and would make every baseline diff noisy)."""
    own = [frame for frame in stack if not is_runtime_frame(frame)] or list(stack)
    return tuple(_without_address(frame) for frame in own[:TOP_FRAMES])


def _without_address(frame: Frame) -> Frame:
    if frame.address is not None and (frame.function or frame.file):
        return frame.model_copy(update={"address": None})
    return frame


def _stack_order(stack: Sequence[Frame]) -> tuple[str, ...]:
    """Which of several stacks of one site represents it: the smallest, so that the choice does not
    depend on the order processes finished in."""
    return tuple(frame.label() for frame in stack)


def group_leaks(leaks: Iterable[Leak]) -> dict[SiteKey, LeakSite]:
    sizes: dict[SiteKey, list[int]] = {}
    representative: dict[SiteKey, Leak] = {}
    for leak in leaks:
        key = (leak.kind, leak.fingerprint)
        size = sizes.get(key)
        if size is None:
            sizes[key] = [leak.bytes, leak.blocks]
            representative[key] = leak
            continue
        size[0] += leak.bytes
        size[1] += leak.blocks
        if _stack_order(leak.stack) < _stack_order(representative[key].stack):
            representative[key] = leak
    return {
        key: LeakSite(
            fingerprint=leak.fingerprint,
            kind=leak.kind,
            bytes=sizes[key][0],
            blocks=sizes[key][1],
            site=leak.site,
            frames=top_frames(leak.stack),
        )
        for key, leak in representative.items()
    }


def group_errors(errors: Iterable[MemError]) -> dict[SiteKey, ErrorSite]:
    counts: dict[SiteKey, int] = {}
    representative: dict[SiteKey, MemError] = {}
    for error in errors:
        key = (error.kind, error.fingerprint)
        if key not in counts:
            counts[key] = error.count
            representative[key] = error
            continue
        counts[key] += error.count
        if _stack_order(error.stack) < _stack_order(representative[key].stack):
            representative[key] = error
    return {
        key: ErrorSite(
            fingerprint=error.fingerprint,
            kind=error.kind,
            count=counts[key],
            site=error.site,
            frames=top_frames(error.stack),
            description=error.description or None,
        )
        for key, error in representative.items()
    }
