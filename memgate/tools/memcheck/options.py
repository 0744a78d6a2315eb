"""The memcheck options that decide what its output contains, read back from the command line it
records (``<args><vargv>`` in the XML): was there a leak search, and which kinds' records it printed."""

from __future__ import annotations

from collections.abc import Iterable

from memgate.metrics import LEAK_KINDS, LeakKind
from memgate.tools.memcheck.model import LeakCheck

DEFAULT_SHOWN: frozenset[LeakKind] = frozenset({"definite", "possible"})
_LEAK_CHECK: dict[str, LeakCheck] = {"no": "no", "summary": "summary", "yes": "full", "full": "full"}


def _kinds(value: str) -> frozenset[LeakKind] | None:
    """``--show-leak-kinds``: ``all``, ``none`` or a comma-separated list."""
    if value == "all":
        return frozenset(LEAK_KINDS)
    if value == "none":
        return frozenset()
    kinds: set[LeakKind] = set()
    for word in value.split(","):
        matched = [kind for kind in LEAK_KINDS if kind == word.strip()]
        if not matched:
            return None  # valgrind would have refused it; leave the default
        kinds.update(matched)
    return frozenset(kinds)


def _yes(value: str) -> bool:
    return value == "yes"


def leak_options(arguments: Iterable[str], *, xml: bool) -> tuple[LeakCheck, frozenset[LeakKind]]:
    """(leak check mode, kinds whose records are shown), applying the options in order as memcheck
    does: the last one wins, and the old ``--show-reachable`` / ``--show-possibly-lost`` edit the set.

    With ``--xml=yes`` memcheck always searches in full, whatever ``--leak-check`` says
    (``mc_post_clo_init``; Valgrind 3.19 still prints every loss record with ``--leak-check=no``)."""
    mode: LeakCheck = "summary"
    shown = DEFAULT_SHOWN
    for argument in arguments:
        name, _, value = argument.partition("=")
        if name == "--leak-check" and value in _LEAK_CHECK:
            mode = _LEAK_CHECK[value]
        elif name == "--show-leak-kinds":
            kinds = _kinds(value)
            shown = shown if kinds is None else kinds
        elif name == "--show-reachable":
            shown = frozenset(LEAK_KINDS) if _yes(value) else shown - {"reachable"}
        elif name == "--show-possibly-lost":
            shown = shown | {"possible"} if _yes(value) else shown - {"possible"}
    return ("full" if xml else mode), shown
