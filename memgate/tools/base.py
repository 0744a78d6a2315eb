"""The interface every memory tool implements: how to run a command under it, how to parse its output.

A tool is a module-level object satisfying ``Tool``; ``memgate.tools.TOOLS`` lists them. The runner
calls ``version()`` (raises ``ToolError`` with an install hint when the tool is missing), then
``launch()`` to wrap the suite's command, runs it, then ``collect()`` on the log folder. ``memgate
parse`` calls ``parse()`` on files a user produced by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from memgate.errors import ParseError
from memgate.metrics import MetricName
from memgate.records import ProcessRecord

#: The most digits a count in a tool's output has: 2**64 has 20. ``int()`` refuses more than 4,300
#: with a bare ValueError, and no tool wrote such a number: it is a broken or crafted file.
MAX_COUNT_DIGITS = 20


@dataclass(frozen=True)
class Launch:
    """The command line and environment that run a suite under a tool."""

    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    """How the wrapped command ended, as the runner saw it (``os.wait4``)."""

    exit_code: int | None  # None when killed by a signal
    signal: int | None = None
    timed_out: bool = False
    duration_seconds: float = 0.0
    rss_peak_bytes: int | None = None
    page_faults_minor: int | None = None
    page_faults_major: int | None = None
    user_seconds: float | None = None
    system_seconds: float | None = None


@dataclass(frozen=True)
class ToolOptions:
    """Per-suite settings that reach the tool: extra tool arguments and the user's environment."""

    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


class Tool(Protocol):
    name: str
    #: The metrics this tool really measures (others stay absent, never 0).
    metrics: frozenset[MetricName]

    def version(self) -> str:
        """The tool's version; raises ``ToolError`` saying how to install it when it is missing."""
        ...

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        """Wrap ``command`` so the tool writes one output file per process under ``logdir``."""
        ...

    def collect(self, logdir: Path, outcome: Outcome) -> list[ProcessRecord]:
        """Parse what a run left in ``logdir``. Missing or truncated output gives an incomplete record
        (``complete=False`` with a reason), never an empty, passing one."""
        ...

    def parse(self, paths: Sequence[Path]) -> list[ProcessRecord]:
        """Parse existing output files, one process each; raises ``ParseError`` for unusable input."""
        ...


class NumberTooLong(ParseError):
    """A number longer than any count a tool writes. The parser that meets it knows the file: it
    catches this and raises its own ``ParseError`` with the path and its hint (uncaught, it is still
    a clean error, without the file)."""

    def __init__(self, digits: str) -> None:
        super().__init__(f"a number of {len(digits):,} digits (a count has at most {MAX_COUNT_DIGITS})")


def count_of(digits: str) -> int:
    """A count (bytes, blocks, calls, a pid, a line number) that a tool printed in decimal, as
    ``int``; ``NumberTooLong`` when it is longer than any count, which ``int()`` may fail on."""
    if len(digits) > MAX_COUNT_DIGITS:
        raise NumberTooLong(digits)
    return int(digits)
