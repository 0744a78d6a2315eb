"""memgate's standard output and error, for people and pipes: a reader that goes away neither passes nor
fails a gate."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class _ReaderMayLeave:
    """A text stream that stops writing, quietly, once its reader has gone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._leave()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._leave()

    def _leave(self) -> None:
        """What is still buffered goes to /dev/null, so that Python's own flush at exit does not
        raise the BrokenPipeError again."""
        self._gone = True
        try:
            descriptor = self._stream.fileno()
        except (OSError, ValueError):  # not a file (a test's capture): nothing is buffered below
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, descriptor)
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# When the reader goes away (``memgate check | head``, ``memgate parse ... 2>&1 | head``), what is left to
# print is dropped and the command runs to its end: reports written, comment posted, and the exit code is
# the verdict's. A closed pipe neither passes nor fails a gate.
@contextmanager
def readers_may_leave() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` that outlive their readers, inside."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ReaderMayLeave(stdout), _ReaderMayLeave(stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr
