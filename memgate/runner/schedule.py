"""Which suites run at once: at most ``--jobs`` of them, and no more than memory allows."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from memgate.errors import UsageError
from memgate.interrupt import StopRequest
from memgate.tools import get_tool

MiB = 1024**2
#: The resident memory assumed for a test process run natively (the tools' multiples apply to it).
NATIVE_RSS_GUESS = 128 * MiB
#: How often the scheduler looks at a stop request while suites run.
_POLL_SECONDS = 0.2

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes the running suites may reserve at once (None: no limit), and each tool's reservation:
    its appetite, or when ``weights`` is given, the bytes it says (``NATIVE_RSS_GUESS`` for a tool
    it leaves out).

    Memory tools multiply what a test needs: memcheck about 6 times the program's resident memory,
    DHAT about 5 times, heaptrack about 100 MiB more per process. Two memcheck suites started together
    on a small CI runner can push it into swap or the OOM killer, which is slower (or worse) than
    running them one after the other. So each suite reserves its tool's expected memory
    (``tool_weight``: the tool's ``memory_appetite`` applied to ``NATIVE_RSS_GUESS``) from a budget,
    the memory available when the run starts (``MemAvailable`` of /proc/meminfo)."""

    total: int | None
    weights: Mapping[str, int] | None = None

    @classmethod
    def from_system(cls, meminfo: Path = Path("/proc/meminfo")) -> MemoryBudget:
        """The memory available now; no limit where it cannot be read (not Linux)."""
        return cls(total=mem_available(meminfo))

    def weight(self, tool: str) -> int:
        if self.weights is not None:
            return self.weights.get(tool, NATIVE_RSS_GUESS)
        return tool_weight(tool)


def tool_weight(tool: str) -> int:
    """The bytes a suite under ``tool`` reserves; ``NATIVE_RSS_GUESS`` for a tool not known."""
    try:
        appetite = get_tool(tool).memory_appetite
    except UsageError:
        return NATIVE_RSS_GUESS
    return appetite.bytes_for(NATIVE_RSS_GUESS)


def mem_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """``MemAvailable`` in bytes (the kernel's estimate of what can be used without swapping)."""
    try:
        with meminfo.open(encoding="ascii", errors="replace") as lines:
            for line in lines:
                name, _, value = line.partition(":")
                if name == "MemAvailable":
                    number, _, unit = value.strip().partition(" ")
                    return int(number) * (1024 if unit.lower() == "kb" else 1)
    except (OSError, ValueError):
        return None
    return None


def run_scheduled(
    items: Sequence[Item],
    run: Callable[[Item], Result],
    *,
    jobs: int,
    budget: MemoryBudget,
    tool_of: Callable[[Item], str],
    stop: StopRequest,
    not_started: Callable[[Item], Result],
) -> list[Result]:
    """``run`` each item in a thread, ``jobs`` at a time within ``budget``; after ``stop`` is
    requested, the items not started yet get ``not_started(item)`` instead.

    An item whose reservation does not fit waits until running items release theirs; an item always
    starts when nothing else runs, however large its reservation, and items start in the order given
    (a large one is never overtaken for ever). The results come back in item order, whatever order
    they finished in, so that a report does not depend on timing."""
    results: dict[int, Result] = {}
    pending = deque(enumerate(items))
    running: dict[int, int] = {}  # item index -> bytes reserved
    finished: queue.SimpleQueue[_Finished[Result]] = queue.SimpleQueue()
    threads: list[threading.Thread] = []
    try:
        while pending or running:
            reserved = sum(running.values())
            while pending and not stop.requested and len(running) < max(1, jobs):
                index, item = pending[0]
                need = budget.weight(tool_of(item))
                if running and budget.total is not None and reserved + need > budget.total:
                    break  # wait for memory: a running suite will release some
                pending.popleft()
                reserved += need
                running[index] = need
                threads.append(_start(run, index, item, finished))
            if stop.requested:
                results.update((index, not_started(item)) for index, item in pending)
                pending.clear()
            if running:
                try:
                    done = finished.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    continue
                index, result, error = done
                del running[index]
                if error is not None:
                    raise error
                results[index] = result  # type: ignore[assignment]  # set when run returned
    finally:  # as a pool's shutdown: no suite's thread outlives the run, even one cut short
        for thread in threads:
            thread.join()
    return [results[index] for index in range(len(items))]


# A thread per suite rather than concurrent.futures' pool: its import (and logging's, which it pulls)
# cost every run more than the few lines below.
#: What a suite's thread ended with: the item's index, and its result or the exception ``run`` raised.
_Finished = tuple[int, Result | None, BaseException | None]


def _start(run: Callable[[Item], Result], index: int, item: Item,
           finished: queue.SimpleQueue[_Finished[Result]]) -> threading.Thread:
    def target() -> None:
        try:
            outcome: _Finished[Result] = (index, run(item), None)
        except BaseException as error:  # noqa: BLE001 - handed to the scheduler, raised there
            outcome = (index, None, error)
        finished.put(outcome)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
