"""Counts that tools print in decimal, read once and bounded: ``count_of``, and ``counts_read``
around a reader of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from memgate.errors import ParseError

#: The most digits a count in a tool's output has: 2**64 has 20. ``int()`` refuses more than 4,300
#: with a bare ValueError, and no tool wrote such a number: it is a broken or crafted file.
MAX_COUNT_DIGITS = 20


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


@contextmanager
def counts_read(path: Path, *, not_a: str, hint: str) -> Iterator[None]:
    """Around a reader of ``path``: a ``NumberTooLong`` it raises becomes the reader's own
    ``ParseError``, "<not_a>: it holds a number of N digits ...", with the file and ``hint``."""
    try:
        yield
    except NumberTooLong as error:
        raise ParseError(f"{not_a}: it holds {error.message}", path=path, hint=hint) from None
