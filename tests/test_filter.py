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


def test_linear_slope_is_exact_on_a_ramp_averages_noise_and_restarts_on_gaps():
    from emo_core.perception.filter import LinearSlope

    slope = LinearSlope(frames=8)
    ramp = [slope(np.full((3, 2), 2.0 * i / FPS), i / FPS) for i in range(12)]
    assert np.all(ramp[0] == 0.0)                                 # one sample: no velocity yet
    np.testing.assert_allclose(ramp[-1], 2.0, atol=1e-9)           # units per second, from the stamps
    # On a still noisy signal the slope over 8 samples is far quieter than the two-sample difference.
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=0.01, size=(400, 1))
    s8 = LinearSlope(frames=8)
    s2 = LinearSlope(frames=2)
    v8 = np.array([s8(x, i / FPS) for i, x in enumerate(noise)])[10:]
    v2 = np.array([s2(x, i / FPS) for i, x in enumerate(noise)])[10:]
    assert v8.std() < 0.2 * v2.std()
    # A gap longer than max_gap_s restarts it: the first sample after it has no velocity.
    assert np.all(slope(np.ones((3, 2)), 10.0) == 0.0)
    with pytest.raises(InputError):
        slope(np.full((3, 2), np.nan), 10.1)
    with pytest.raises(ConfigError):
        LinearSlope(frames=1)
