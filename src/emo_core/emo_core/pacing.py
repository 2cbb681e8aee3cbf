"""Pacing helpers the node shells share: a rate gate in message time and waiting/retrying against
a deadline. Clock and sleep are injected (``time.monotonic`` / ``time.sleep`` by default), so tests
run them on a ``ManualClock``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .errors import EmoError

T = TypeVar("T")


class RateGate:
    """Lets an event through at most ``rate_hz`` times per second of message time (0: never)."""

    def __init__(self, rate_hz: float) -> None:
        self.period = 1.0 / rate_hz if rate_hz > 0 else None
        self._last: float | None = None

    def __call__(self, t: float) -> bool:
        if self.period is None:
            return False
        if self._last is not None and 0.0 <= t - self._last < self.period - 1e-6:
            return False
        self._last = t
        return True


def retry(attempt: Callable[[], T], timeout_s: float, interval_s: float, *,
          monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> T:
    """``attempt()`` until it returns without an EmoError, every ``interval_s``; the last EmoError once
    ``timeout_s`` have passed (a port that does not exist yet: a USB adapter, an emulator starting)."""
    deadline = monotonic() + timeout_s
    while True:
        try:
            return attempt()
        except EmoError:
            if monotonic() >= deadline:
                raise
            sleep(interval_s)


def wait_until(ready: Callable[[], bool], timeout_s: float, interval_s: float, *,
               check: Callable[[], None] | None = None, monotonic: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> bool:
    """Poll ``ready()`` every ``interval_s``; False once ``timeout_s`` have passed without it.
    ``check()`` runs between polls (it raises to stop waiting, e.g. on shutdown)."""
    deadline = monotonic() + timeout_s
    while not ready():
        if monotonic() > deadline:
            return False
        if check is not None:
            check()
        sleep(interval_s)
    return True
