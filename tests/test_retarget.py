"""Human -> robot retargeting (paper eq. 1-2)."""
from __future__ import annotations

import numpy as np
import pytest

from emo_core.anticipation.retarget import RetargetConfig, Retargeter
from emo_core.errors import ConfigError, InputError


@pytest.fixture()
def simple() -> Retargeter:
    rest = np.full((113, 2), 0.5, np.float32)
    return Retargeter(rest, np.full((113, 2), -0.1, np.float32), np.full((113, 2), 0.2, np.float32))


def test_rest_maps_to_rest_and_small_motion_scales_by_k(simple: Retargeter):
    human_rest = np.random.default_rng(0).normal(size=(113, 2)).astype(np.float32)
    np.testing.assert_allclose(simple(human_rest, human_rest), simple.robot_rest)
    d = np.random.default_rng(1).uniform(-0.09, 0.19, size=(113, 2)).astype(np.float32)
    np.testing.assert_allclose(simple(human_rest + d, human_rest), 0.5 + 0.9 * d, atol=1e-6)


def test_large_motion_is_clipped_to_the_robot_range(simple: Retargeter):
    rest = np.zeros((113, 2), np.float32)
    big = np.where(np.arange(226).reshape(113, 2) % 2 == 0, 1.0, -1.0).astype(np.float32)
    paper = simple(big, rest)
    np.testing.assert_allclose(paper[:, 0], 0.5 + 0.9 * 0.2, atol=1e-6)     # K * min(R_max - R_s, d)
    np.testing.assert_allclose(paper[:, 1], 0.5 - 0.9 * 0.1, atol=1e-6)     # K * max(R_min - R_s, d)
    design = Retargeter(simple.robot_rest, simple.low, simple.high, RetargetConfig(scale_before_clip=True))
    np.testing.assert_allclose(design(big, rest)[:, 0], 0.7, atol=1e-6)      # clip(K * d) reaches R_max


def test_batches_and_3d_points(simple: Retargeter):
    batch = np.random.default_rng(2).normal(scale=0.05, size=(7, 113, 3)).astype(np.float32)
    out = simple(batch, np.zeros((113, 3), np.float32))
    assert out.shape == (7, 113, 2)
    np.testing.assert_allclose(out[3], simple(batch[3], np.zeros((113, 2))), atol=1e-7)


def test_bounds_from_a_babbling_set():
    rng = np.random.default_rng(3)
    rest = rng.normal(size=(113, 2)).astype(np.float32)
    babble = rest + rng.uniform(-0.3, 0.4, size=(500, 113, 2)).astype(np.float32)
    r = Retargeter.from_babbling(babble, rest)
    np.testing.assert_allclose(r.low, (babble - rest).min(0), atol=1e-6)
    np.testing.assert_allclose(r.high, (babble - rest).max(0), atol=1e-6)


def test_twin_rest_face_and_bounds():
    from emo_core.twin import DigitalTwin

    twin = DigitalTwin(seed=0)
    r = Retargeter.from_twin(twin)
    np.testing.assert_allclose(r.robot_rest, twin.rest_face(), atol=1e-6)
    low, high = twin.motion_bounds()
    human = np.random.default_rng(4).normal(scale=1.0, size=(113, 2)).astype(np.float32)
    robot = r(human, np.zeros((113, 2)))
    assert np.all(robot >= r.robot_rest + 0.9 * low - 1e-5) and np.all(robot <= r.robot_rest + 0.9 * high + 1e-5)


def test_bad_inputs_are_refused(simple: Retargeter):
    with pytest.raises(InputError):
        simple(np.zeros((112, 2)), np.zeros((113, 2)))
    with pytest.raises(InputError):
        Retargeter(np.zeros((113, 2)), np.ones((113, 2)), np.zeros((113, 2)))
    with pytest.raises(ConfigError):
        RetargetConfig(k=0.0)
    with pytest.raises(ConfigError):
        RetargetConfig.from_dict({"gain": 1.0})
