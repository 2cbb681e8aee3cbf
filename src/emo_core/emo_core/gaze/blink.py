"""Blinker: spontaneous blinks with human statistics, composed with the expression's eyelid command.

Statistics (docs/gaze.md has the references):

* **Rate.** Spontaneous blinking at rest is 17 +- 13 blinks/min (Bentivoglio et al. 1997, 150
  healthy adults), 26 in conversation and 4.5 while reading; the default is the rest rate, 17/min.
* **Intervals.** Inter-blink intervals are irregular and right-skewed with a refractory minimum
  (Ponder & Kennedy 1927): here a refractory ``min_interval_s`` plus a gamma-distributed rest
  (shape ``interval_shape``) whose mean gives the rate.
* **Duration.** A spontaneous blink lasts 100-400 ms (Schiffman 2001): log-normal around
  ``duration_median_s`` (0.2 s), clipped to that range. The lid closes faster than it reopens (Evinger et al. 1991): the closing phase
  is ``closing_fraction`` (1/3) of the blink.

Both eyes blink together (one ``eyelid_upper`` command drives both upper lids; the upper lid alone
closes the eye in the twin, docs/twin.md). The blink closes the lid from wherever the expression
holds it: ``upper = expr + closure x (closed_upper - expr)``, never opening it further.

No blink at the robot's expression apex: a blink that falls due while ``suppress`` is set waits
until it is released (:class:`ApexGate` decides, from the expression commands).

Deterministic for a seed; no clock: the caller passes media time.
"""
from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError, InputError
from ..schema import COMMAND_NAMES

LOG = logging.getLogger(__name__)

UPPER_LID = COMMAND_NAMES.index("eyelid_upper")
LOWER_LID = COMMAND_NAMES.index("eyelid_lower")


@dataclass(frozen=True)
class BlinkConfig:
    rate_per_min: float = 17.0
    min_interval_s: float = 0.6
    interval_shape: float = 2.0
    duration_median_s: float = 0.2
    duration_sigma: float = 0.25           # log-normal sigma of the duration
    min_duration_s: float = 0.1
    max_duration_s: float = 0.4
    closing_fraction: float = 1.0 / 3.0
    closed_upper: float = 1.0              # eyelid_upper command of a closed eye
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"blink: {f.name} must be a finite number >= 0, got {value!r}")
        if not 0 < self.rate_per_min <= 120:
            raise ConfigError(f"blink: rate_per_min must be in (0, 120], got {self.rate_per_min}")
        if self.min_interval_s >= 60.0 / self.rate_per_min:
            raise ConfigError("blink: min_interval_s must be shorter than the mean interval (60 / rate_per_min)")
        if not 0 < self.min_duration_s <= self.duration_median_s <= self.max_duration_s:
            raise ConfigError("blink: need 0 < min_duration_s <= duration_median_s <= max_duration_s")
        if not 0 < self.closing_fraction < 1 or self.interval_shape <= 0:
            raise ConfigError("blink: closing_fraction must be in (0, 1) and interval_shape > 0")
        if self.closed_upper > 1:
            raise ConfigError(f"blink: closed_upper must be in [0, 1], got {self.closed_upper}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "BlinkConfig":
        names = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values or {}) - set(names))
        if unknown:
            raise ConfigError(f"unknown blink setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        # Any: each value is converted to its field's type (int seed, float otherwise) right here.
        parsed: dict[str, Any] = {k: (int(v) if k == "seed" else float(v)) for k, v in (values or {}).items()}
        return cls(**parsed)


@dataclass(frozen=True)
class Blink:
    start: float
    duration: float


class Blinker:
    """``closure = blinker.update(stamp, suppress)`` in [0, 1]; ``compose(commands, closure)``."""

    def __init__(self, config: BlinkConfig | None = None) -> None:
        self.config = config or BlinkConfig()
        self._rng = np.random.default_rng(self.config.seed)
        self.blinks: list[Blink] = []            # every blink started (for statistics)
        self._next_at: float | None = None
        self._current: Blink | None = None

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.config.seed)
        self.blinks.clear()
        self._next_at = None
        self._current = None

    def _interval(self) -> float:
        cfg = self.config
        mean_rest = 60.0 / cfg.rate_per_min - cfg.min_interval_s
        return cfg.min_interval_s + float(self._rng.gamma(cfg.interval_shape, mean_rest / cfg.interval_shape))

    def _duration(self) -> float:
        cfg = self.config
        d = cfg.duration_median_s * math.exp(cfg.duration_sigma * float(self._rng.standard_normal()))
        return float(np.clip(d, cfg.min_duration_s, cfg.max_duration_s))

    def update(self, stamp: float, suppress: bool = False) -> float:
        """The lid closure (0 open .. 1 closed) at media time ``stamp``; a due blink waits while
        ``suppress`` is set. Stamps must not go backwards."""
        if not math.isfinite(stamp):
            raise InputError(f"blink: stamp {stamp} is not finite")
        if self._next_at is None:
            self._next_at = stamp + self._interval()
        cur = self._current
        if cur is not None and stamp >= cur.start + cur.duration:
            self._current = cur = None
        if cur is None and stamp >= self._next_at and not suppress:
            cur = self._current = Blink(stamp, self._duration())
            self.blinks.append(cur)
            # The next interval counts from this blink's start (intervals are onset to onset).
            self._next_at = stamp + max(self._interval(), cur.duration)
        return 0.0 if cur is None else self._profile(stamp - cur.start, cur.duration)

    def _profile(self, t: float, duration: float) -> float:
        """Fast close (half a cosine over the closing phase), slower reopening."""
        closing = self.config.closing_fraction * duration
        if t < closing:
            return 0.5 - 0.5 * math.cos(math.pi * t / closing)
        return 0.5 + 0.5 * math.cos(math.pi * min(t - closing, duration - closing) / (duration - closing))

    def compose(self, commands: np.ndarray, closure: float) -> np.ndarray:
        """The expression's 11 commands with the blink applied to the upper lids (a copy; the
        input itself when there is no blink, so commands outside blinks are unchanged bit for bit)."""
        if closure <= 0.0:
            return commands
        out = np.array(commands, copy=True)
        expr = float(out[UPPER_LID])
        closed = self.config.closed_upper
        if closed > expr:
            out[UPPER_LID] = expr + float(closure) * (closed - expr)
        return out

    def rate_per_min(self, seconds: float) -> float:
        return 60.0 * len(self.blinks) / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class ApexGateConfig:
    #: The robot is at an expression apex while its expression (commands' distance from the calm
    #: face, eyelids left out) is at least this fraction of its maximum over ``window_s`` ...
    apex_fraction: float = 0.7
    window_s: float = 1.5
    #: ... and that maximum is an expression at all (command units, L2 over 9 commands).
    min_expression: float = 0.08


class ApexGate:
    """Suppresses blinks at the robot's expression apex: while a prediction is held (the robot is
    running toward a predicted apex) or while the commanded expression is near its recent peak."""

    def __init__(self, calm: np.ndarray, config: ApexGateConfig | None = None) -> None:
        self.config = config or ApexGateConfig()
        keep = [i for i in range(len(COMMAND_NAMES)) if i not in (UPPER_LID, LOWER_LID)]
        self._keep = np.array(keep)
        self._calm = np.asarray(calm, np.float64).reshape(-1)[self._keep]
        self._history: deque[tuple[float, float]] = deque()

    def reset(self) -> None:
        self._history.clear()

    def update(self, stamp: float, commands: np.ndarray | None, held: bool) -> bool:
        """True when a blink must not start now."""
        cfg = self.config
        if commands is not None:
            level = float(np.linalg.norm(np.asarray(commands, np.float64)[self._keep] - self._calm))
            self._history.append((stamp, level))
        while self._history and self._history[0][0] < stamp - cfg.window_s:
            self._history.popleft()
        if held:
            return True
        if not self._history:
            return False
        peak = max(v for _, v in self._history)
        return peak >= cfg.min_expression and self._history[-1][1] >= cfg.apex_fraction * peak
