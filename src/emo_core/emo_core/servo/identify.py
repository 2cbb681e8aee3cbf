"""Identify the servo lag model from a recorded move: the ``servo_lag_s`` of ``servos.yaml``.

The driver models a face servo as a first-order lag between the goal it writes and the position
the servo reports (position loop under load + the silicone skin it drags; docs/servo.md), and
leads timed goals by that time constant. :func:`fit_first_order_lag` finds the time constant that
best explains a recording of (cycle time, goal written, present read): it simulates
``x' = (goal - x) / tau`` through the *actual* goal sequence (a velocity-limited ramp as the driver
writes it, not an ideal step) and picks the tau with the least squared error. :func:`record_step`
makes such a recording on one servo with the real driver, so ``emo servo lag`` measures the head
itself (or the emulator, whose plant it should recover).

Alignment: :meth:`ServoDriver.step` reads present positions *before* it writes this cycle's goals,
so the present read at cycle k+1 is the result of the goal written at cycle k held over the
interval between them.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from .driver import ServoDriver

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class LagFit:
    """The fitted time constant and how well the model explains the recording."""

    tau_s: float            # first-order time constant (s); 0 = the servo follows within a cycle
    rmse_ticks: float       # residual of the model (ticks)
    moved_ticks: float      # largest |present - first present| in the recording
    samples: int


@dataclass
class StepRecording:
    """One servo's goal and present position per control cycle around a step."""

    times: np.ndarray       # (N,) seconds
    goal: np.ndarray        # (N,) ticks written at each cycle
    present: np.ndarray     # (N,) ticks read at each cycle (before that cycle's write)


def simulate_lag(times: np.ndarray, goal: np.ndarray, start: float, taus: np.ndarray) -> np.ndarray:
    """Predicted present positions (len(taus), N) of first-order lags driven by ``goal``."""
    taus = np.asarray(taus, np.float64)
    x = np.full(taus.shape, float(start))
    out = np.empty((len(taus), len(times)))
    out[:, 0] = x
    dts = np.diff(np.asarray(times, np.float64))
    with np.errstate(divide="ignore", over="ignore"):
        for k, dt in enumerate(dts):
            # Exact for a goal held over the interval; tau = 0 reaches the goal at once.
            alpha = np.where(taus > 0, -np.expm1(-dt / np.where(taus > 0, taus, 1.0)), 1.0)
            x = x + (goal[k] - x) * alpha
            out[:, k + 1] = x
    return out


def fit_first_order_lag(times: np.ndarray, goal: np.ndarray, present: np.ndarray,
                        max_tau_s: float = 1.0, resolution_s: float = 0.002) -> LagFit:
    """The time constant (grid search, ``resolution_s`` steps up to ``max_tau_s``) that best maps
    the goals onto the present positions."""
    t = np.asarray(times, np.float64)
    g = np.asarray(goal, np.float64)
    p = np.asarray(present, np.float64)
    if not (t.ndim == g.ndim == p.ndim == 1 and len(t) == len(g) == len(p)) or len(t) < 10:
        raise InputError("lag fit needs at least 10 samples of time, goal and present of equal length")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(g)) and np.all(np.isfinite(p))):
        raise InputError("lag fit: the recording contains NaN or inf")
    if np.any(np.diff(t) <= 0):
        raise InputError("lag fit: times must increase")
    moved = float(np.max(np.abs(p - p[0])))
    if moved < 3:
        raise InputError(f"the servo moved only {moved:.0f} ticks: nothing to fit (torque off, stuck, or no step?)")
    taus = np.arange(0.0, max_tau_s + resolution_s / 2, resolution_s)
    model = simulate_lag(t, g, p[0], taus)
    err = np.sqrt(np.mean((model - p[None]) ** 2, axis=1))
    best = int(np.argmin(err))
    return LagFit(tau_s=float(taus[best]), rmse_ticks=float(err[best]), moved_ticks=moved, samples=len(t))


def record_step(driver: ServoDriver, servo: int, step_norm: float, seconds: float, period_s: float = 0.01,
                sleep: Callable[[float], None] = time.sleep) -> StepRecording:
    """Hold servo row ``servo`` still, then command it ``step_norm`` (of its range) away and back,
    cycling the driver every ``period_s`` for ``seconds`` after each command. Everything else holds
    its present pose. The driver velocity-limits the goals as always (the fit uses them as written).
    Cycles are paced on the driver's own clock, so its stamps and the recording's length agree
    (and a test's fake clock, advanced by ``sleep``, drives the whole recording).
    """
    table = driver.table
    spec = table.servos[servo]
    settle = driver.wait_until_settled(2.0)
    start = float(settle.position_norm[servo])
    # Step toward the middle of the range, so the move never runs into a limit.
    away = start + (step_norm if start <= 0.5 else -step_norm)
    if not 0.0 <= away <= 1.0:
        raise InputError(f"--step {step_norm} does not fit in {spec.name}'s range from {start:.2f}")
    times: list[float] = []
    goal: list[float] = []
    present: list[float] = []
    for target in (away, start):
        driver.command({spec.name: target})
        clock = driver.clock               # the driver's clock: one time base for stamps and pacing
        end = clock.now() + seconds
        next_cycle = clock.now()
        while clock.now() < end:
            state = driver.step()
            if not state.connected:
                raise InputError(f"servo bus lost while recording: {state.fault or 'disconnected'}")
            times.append(state.stamp)
            goal.append(float(state.goal_ticks[servo]))
            present.append(float(state.position_ticks[servo]))
            next_cycle += period_s
            sleep(max(0.0, next_cycle - clock.now()))
    return StepRecording(np.asarray(times), np.asarray(goal), np.asarray(present))
