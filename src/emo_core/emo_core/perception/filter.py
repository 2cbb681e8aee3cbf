"""A causal landmark filter for real time: the One Euro filter (Casiez, Roussel & Vogel, CHI 2012).

A first-order low-pass whose cutoff rises with the signal's speed: a still face is smoothed hard
(landmark jitter is what a still face shows), a moving one lightly (little lag where it matters).
Per sample, with ``Te`` the time since the last sample:

    alpha(fc) = 1 / (1 + 1 / (2 pi fc Te))
    dx  = (x - x_prev) / Te,            dx_hat = dx_hat + alpha(d_cutoff) (dx - dx_hat)
    fc  = min_cutoff + beta |dx_hat|,   x_hat  = x_hat  + alpha(fc) (x - x_hat)

One cutoff serves the whole face: ``|dx_hat|`` is the RMS speed over the points (face units per
second), so all landmarks are filtered alike and an expression's shape is not distorted by some
points lagging more than others. ``velocity`` is the filtered derivative ``dx_hat``: the
controller's servo-lag lead extrapolates the filtered face with it, instead of differentiating raw
landmark noise. The derivative is taken between raw samples (the paper differentiates against the
previous *filtered* value, which overestimates a steady motion by the filter's own lag; a lead
built on it would overshoot). Times come from the samples' stamps; a gap longer than
``max_gap_s`` restarts it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError


@dataclass(frozen=True)
class OneEuroConfig:
    """Parameters (``config/anticipation.yaml``, section ``filter``)."""

    min_cutoff_hz: float = 1.0      # cutoff of a still face
    beta: float = 4.0               # cutoff gain per face unit / s of speed
    #: Cutoff of the derivative estimate. Low, because the servo-lag lead multiplies the velocity by
    #: ~0.2 s: at 5 Hz the lead passed more landmark noise to the goals than the raw face had.
    d_cutoff_hz: float = 1.0
    max_gap_s: float = 0.25         # a longer gap between samples restarts the filter

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise ConfigError(f"filter: {f.name} must be a finite number, got {v!r}")
        if self.min_cutoff_hz <= 0 or self.d_cutoff_hz <= 0 or self.max_gap_s <= 0:
            raise ConfigError("filter: min_cutoff_hz, d_cutoff_hz and max_gap_s must be > 0")
        if self.beta < 0:
            raise ConfigError("filter: beta must be >= 0")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "OneEuroConfig":
        values = dict(values or {})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown filter parameter(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**{k: float(v) for k, v in values.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"filter: {exc}") from None


def _alpha(cutoff_hz: float, dt: float) -> float:
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff_hz * dt))


class OneEuroFilter:
    """``f(points, stamp) -> filtered points`` for arrays of any fixed shape (e.g. (113, 2))."""

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self.config = config or OneEuroConfig()
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._raw: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0
        self.speed = 0.0

    @property
    def value(self) -> np.ndarray | None:
        return None if self._x is None else self._x.copy()

    @property
    def velocity(self) -> np.ndarray | None:
        """The filtered derivative (units per second), zero on the first sample."""
        return None if self._dx is None else self._dx.copy()

    def __call__(self, x: np.ndarray, stamp: float) -> np.ndarray:
        arr = np.asarray(x, np.float64)
        if not np.all(np.isfinite(arr)) or not math.isfinite(stamp):
            raise InputError("filter input must be finite")
        c = self.config
        dt = stamp - self._t
        # reset() and the restart below set _x, _raw and _dx together; checking all three narrows them.
        if (self._x is None or self._raw is None or self._dx is None or self._x.shape != arr.shape
                or dt <= 0 or dt > c.max_gap_s):
            self._x, self._raw, self._dx, self._t = arr.copy(), arr.copy(), np.zeros_like(arr), float(stamp)
            self.speed = 0.0
            return arr.copy()
        raw_dx = (arr - self._raw) / dt
        self._raw = arr.copy()
        self._dx += _alpha(c.d_cutoff_hz, dt) * (raw_dx - self._dx)
        self.speed = float(np.sqrt(np.mean(self._dx.reshape(-1, arr.shape[-1]) ** 2, axis=0).sum()))
        cutoff = c.min_cutoff_hz + c.beta * self.speed
        self._x += _alpha(cutoff, dt) * (arr - self._x)
        self._t = float(stamp)
        return self._x.copy()


class LinearSlope:
    """Causal velocity of a signal: the least-squares slope over its last ``frames`` samples
    (units per second, from the samples' stamps). The servo-lag lead multiplies a velocity by
    ~0.2 s; a two-sample difference passes each frame's landmark noise to the goals amplified
    ~6x at 30 fps, a slope over N samples averages it down (its noise falls as N^-1.5) at the
    cost of estimating the velocity of ~N/2 frames ago. The position is left as it is.
    A gap longer than ``max_gap_s`` restarts it."""

    def __init__(self, frames: int = 8, max_gap_s: float = 0.25) -> None:
        if frames < 2:
            raise ConfigError(f"slope: need at least 2 frames, got {frames}")
        if not (math.isfinite(max_gap_s) and max_gap_s > 0):
            raise ConfigError("slope: max_gap_s must be > 0")
        self.frames = int(frames)
        self.max_gap_s = float(max_gap_s)
        self.reset()

    def reset(self) -> None:
        self._t: list[float] = []
        self._x: list[np.ndarray] = []

    def __call__(self, x: np.ndarray, stamp: float) -> np.ndarray:
        """Add a sample; the slope over the samples kept (zeros until there are two)."""
        arr = np.asarray(x, np.float64)
        if not np.all(np.isfinite(arr)) or not math.isfinite(stamp):
            raise InputError("slope input must be finite")
        if self._t and (stamp - self._t[-1] <= 0 or stamp - self._t[-1] > self.max_gap_s
                        or self._x[-1].shape != arr.shape):
            self.reset()
        self._t.append(float(stamp))
        self._x.append(arr.copy())
        if len(self._t) > self.frames:
            del self._t[0], self._x[0]
        if len(self._t) < 2:
            return np.zeros_like(arr)
        t = np.asarray(self._t)
        w = t - t.mean()
        w /= float(np.dot(w, w))
        return np.tensordot(w, np.stack(self._x), axes=1)
