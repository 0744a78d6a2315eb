"""SIGINT and SIGTERM during a run: stop every suite, keep what was measured, say so."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set from a signal handler, read by the threads that run the suites."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._forced = threading.Event()
        self.signal: signal.Signals | None = None

    def request(self, signum: int) -> None:
        """Ask every suite to stop; a second request asks them to stop at once."""
        if self._requested.is_set():
            self._forced.set()
            return
        self.signal = signal.Signals(signum)
        self._requested.set()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    @property
    def forced(self) -> bool:
        return self._forced.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking up early (True) when a stop is requested."""
        return self._requested.wait(timeout)

    def reason(self) -> str:
        """"interrupted by SIGTERM": how the report describes a suite this request cut short."""
        name = self.signal.name if self.signal is not None else "a stop request"
        return f"interrupted by {name}"

    def exit_code(self) -> int:
        """``128 + N``, the shell's status for a command ended by signal N (130, 143)."""
        return 128 + int(self.signal if self.signal is not None else signal.SIGINT)


# While the suites run, ``stop_signals()`` replaces the handlers of SIGINT (Ctrl-C) and SIGTERM (a CI job
# cancelled, ``timeout``, ``kill``) with one that only records the request. The suites' commands run in
# process groups of their own, so the signal does not reach them: each running suite stops its whole group
# (SIGTERM, then SIGKILL after a grace period: ``memgate.proc``), queued suites do not start, and the run
# ends with a report in which those suites are incomplete ("interrupted by SIGTERM"). The command then exits
# ``128 + N``: 130 for SIGINT, 143 for SIGTERM, as a shell would. A second signal skips the grace period
# (SIGKILL at once).
@contextmanager
def stop_signals(stop: StopRequest | None = None) -> Iterator[StopRequest]:
    """SIGINT and SIGTERM set ``stop`` instead of ending memgate, inside the ``with`` block. Signal
    handlers can only be set from the main thread; elsewhere (memgate used as a library) the
    handlers stay as they are and the request can still be made by calling ``stop.request()``."""
    stop = stop or StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.request(signum)

    # A signal ignored on purpose stays ignored (a shell starts background jobs with SIGINT ignored).
    caught = [sig for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, handler) for sig in caught}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
