"""A clock for the forge clients' ``sleep`` and ``clock`` parameters: waiting takes no time."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeClock:
    """Injected as ``clock`` and ``sleep``: sleeping advances time instantly and is recorded."""

    now: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
