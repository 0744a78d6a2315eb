"""Pausing Python's cyclic garbage collector while memgate builds many records."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_pauses = 0  # pauses under way
_enabled_before = True  # whether the collector was on when the first of them began
_lock = threading.Lock()


# Parsing a log and comparing reports build many small objects and no reference cycles. Each time enough
# have been built, the cyclic collector walks every live object again and finds nothing to free: 60% of the
# parse time on a log of 68,000 distinct leak sites (bench/bench_asan_parse.py), half the time of a
# 100,000-record comparison (bench/bench_compare.py). Reference counting still frees everything as soon as
# it is dropped.
@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector is off inside; suites parsed in parallel threads share the pause, and the
    collector is back on when the last of them is done (if it was on before the first)."""
    global _pauses, _enabled_before
    with _lock:
        if _pauses == 0:
            _enabled_before = gc.isenabled()
        _pauses += 1
        gc.disable()
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _enabled_before:
                gc.enable()

