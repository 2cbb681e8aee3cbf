"""Servo lag identification (servo/identify.py): the first-order fit on known recordings."""
from __future__ import annotations

import numpy as np
import pytest

from emo_core.errors import InputError
from emo_core.servo.identify import fit_first_order_lag, simulate_lag


def _recording(tau: float, noise: float = 0.0, seed: int = 0):
    """A velocity-limited ramp of 80 ticks and back (as the driver writes goals), 100 Hz, and the
    present positions of a first-order plant, rounded to ticks like a servo reports them."""
    t = np.arange(0.0, 2.4, 0.01) + np.random.default_rng(seed).uniform(0, 0.002, 240)   # jittered cycles
    goal = np.full(len(t), 2000.0)
    up = (t >= 0.1) & (t < 1.2)
    goal[up] = 2000.0 + np.minimum(80.0, (t[up] - 0.1) * 1000.0)
    goal[t >= 1.2] = 2080.0 - np.minimum(80.0, (t[t >= 1.2] - 1.2) * 1000.0)
    present = simulate_lag(t, goal, 2000.0, np.array([tau]))[0]
    present += np.random.default_rng(seed + 1).normal(0, noise, len(t))
    return t, goal, np.round(present)


@pytest.mark.parametrize("tau", [0.0, 0.05, 0.2, 0.45])
def test_fit_recovers_the_time_constant(tau):
    fit = fit_first_order_lag(*_recording(tau))
    assert fit.tau_s == pytest.approx(tau, abs=0.006)
    assert fit.rmse_ticks < 0.6 and fit.moved_ticks >= 60 and fit.samples == 240


def test_fit_tolerates_reading_noise():
    assert fit_first_order_lag(*_recording(0.15, noise=1.5)).tau_s == pytest.approx(0.15, abs=0.02)


def test_fit_refuses_recordings_it_cannot_explain():
    t, goal, present = _recording(0.1)
    with pytest.raises(InputError, match="moved only"):
        fit_first_order_lag(t, goal, np.full_like(present, 2000.0))
    with pytest.raises(InputError, match="equal length"):
        fit_first_order_lag(t, goal[:-1], present)
    with pytest.raises(InputError, match="NaN"):
        fit_first_order_lag(t, goal, np.where(t > 1, np.nan, present))
    with pytest.raises(InputError, match="increase"):
        fit_first_order_lag(t[::-1], goal, present)
