"""The interface every memory tool implements: how to run a command under it, how to parse its
output, and what memory it costs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from memgate.fingerprint import NO_WRAPPERS, AllocWrappers
from memgate.metrics import MetricName
from memgate.proc import Outcome
from memgate.records import ProcessRecord
from memgate.suppressions import SuppressionFile

#: How the files memgate itself writes into a suite's log folder begin (a tool's own notes for
#: ``collect``, such as the effective sanitizer options): the runner, which knows no tool by name,
#: tells them from what the tool or the program printed by this prefix.
OWN_FILE_PREFIX = "memgate-"


@dataclass(frozen=True)
class Launch:
    """The command line and environment that run a suite under a tool."""

    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class ToolOptions:
    """Per-suite settings that reach the tool: extra tool arguments, the user's environment, and the
    project's allocator wrappers (skipped like ``malloc`` when the parsers fingerprint a site)."""

    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    alloc_wrappers: AllocWrappers = NO_WRAPPERS
    #: The suite's suppression files of this tool's format (memcheck, asan, lsan).
    suppressions: tuple[SuppressionFile, ...] = ()


#: The options of ``collect`` and ``parse`` when none are given.
DEFAULT_OPTIONS = ToolOptions()


@dataclass(frozen=True)
class Appetite:
    """The memory a suite run under a tool is expected to use: a multiple of what the test program
    needs run natively, plus a fixed cost of the tool's own."""

    multiple: float
    fixed_bytes: int = 0

    def bytes_for(self, native_bytes: int) -> int:
        return int(self.multiple * native_bytes) + self.fixed_bytes


# A tool is a module-level object satisfying ``Tool``; the registry of ``memgate.tools`` lists them. The
# runner calls ``version()`` (raises ``ToolError`` with an install hint when the tool is missing), then
# ``launch()`` to wrap the suite's command, runs it, then ``collect()`` on the log folder. ``memgate parse``
# calls ``parse()`` on files a user produced by hand. The scheduler reserves each suite's
# ``memory_appetite``.
class Tool(Protocol):
    name: str
    #: The metrics this tool really measures (others stay absent, never 0).
    metrics: frozenset[MetricName]
    #: What a suite under this tool is expected to use, reserved by the scheduler.
    memory_appetite: Appetite

    def version(self) -> str:
        """The tool's version; raises ``ToolError`` saying how to install it when it is missing."""
        ...

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        """Wrap ``command`` so the tool writes one output file per process under ``logdir``."""
        ...

    def collect(self, logdir: Path, outcome: Outcome,
                options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        """Parse what a run left in ``logdir`` (the ``options`` of its launch). Missing or truncated output
        gives an incomplete record (``complete=False`` with a reason), never an empty, passing one."""
        ...

    def parse(self, paths: Sequence[Path], options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        """Parse existing output files, one process each; raises ``ParseError`` for unusable input."""
        ...
