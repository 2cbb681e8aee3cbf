"""The One Euro landmark filter: smooths a still noisy face hard, follows a moving one with little
lag, estimates velocity, restarts on gaps, validates its parameters."""
from __future__ import annotations

import numpy as np
import pytest

from emo_core.errors import ConfigError, InputError
from emo_core.perception.filter import OneEuroConfig, OneEuroFilter

FPS = 30.0


def _run(f: OneEuroFilter, frames: np.ndarray) -> np.ndarray:
    return np.stack([f(x, i / FPS) for i, x in enumerate(frames)])


def test_still_noisy_face_is_smoothed():
    rng = np.random.default_rng(0)
    frames = 0.005 * rng.normal(size=(300, 113, 2))
    out = _run(OneEuroFilter(OneEuroConfig(min_cutoff_hz=1.0, beta=4.0, d_cutoff_hz=1.0)), frames)
    # Second differences (what a servo feels) shrink far more than the samples themselves.
    raw = np.diff(frames[30:], 2, axis=0).std()
    filt = np.diff(out[30:], 2, axis=0).std()
    assert filt < 0.2 * raw
    assert out[30:].std() < 0.5 * frames[30:].std()


def test_moving_face_is_followed_and_velocity_estimated():
    t = np.arange(120) / FPS
    speed = 0.6                                           # face units per second, a quick expression
    frames = np.zeros((120, 113, 2))
    frames[..., 1] = speed * t[:, None]
    f = OneEuroFilter(OneEuroConfig(min_cutoff_hz=1.0, beta=20.0, d_cutoff_hz=2.0))
    out = _run(f, frames)
    lag_s = (frames[-1, 0, 1] - out[-1, 0, 1]) / speed
    assert 0.0 < lag_s < 0.05
    np.testing.assert_allclose(f.velocity[..., 1], speed, rtol=0.05)
    assert f.speed == pytest.approx(speed, rel=0.05)
    # A higher beta follows a moving face more closely.
    slow = OneEuroFilter(OneEuroConfig(min_cutoff_hz=1.0, beta=0.0, d_cutoff_hz=2.0))
    assert (frames[-1, 0, 1] - _run(slow, frames)[-1, 0, 1]) / speed > 2 * lag_s


def test_gap_restarts_and_bad_input_is_refused():
    f = OneEuroFilter(OneEuroConfig(max_gap_s=0.2))
    f(np.zeros((3, 2)), 0.0)
    f(np.ones((3, 2)), 0.033)
    out = f(np.full((3, 2), 5.0), 1.0)                    # after a 1 s gap: no memory of the past
    np.testing.assert_array_equal(out, 5.0)
    np.testing.assert_array_equal(f.velocity, 0.0)
    with pytest.raises(InputError):
        f(np.array([[np.nan, 0.0]]), 1.1)
    for bad in ({"min_cutoff_hz": 0.0}, {"beta": -1.0}, {"d_cutoff_hz": float("nan")}):
        with pytest.raises(ConfigError):
            OneEuroConfig(**bad)
    with pytest.raises(ConfigError):
        OneEuroConfig.from_dict({"cutoff": 1.0})
