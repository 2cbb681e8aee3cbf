"""Clocks injected into the core stages.

Core classes never read the wall clock themselves: they receive a clock, so a test can step time by
hand, the pipeline can use a monotonic clock, and a ROS node can pass its own (sim-time aware) clock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """Anything with ``now()`` returning seconds as a float."""

    def now(self) -> float: ...


class MonotonicClock:
    """Real time from ``time.monotonic`` (the default outside tests)."""

    def now(self) -> float:
        return time.monotonic()


@dataclass
class ManualClock:
    """A clock that only moves when told to; for deterministic tests."""

    t: float = 0.0

    def now(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        if dt < 0:
            raise ValueError("a clock cannot go backwards")
        self.t += dt
