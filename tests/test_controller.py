"""The coexpression controller on its own (``pipeline.controller``): no detector, no predictor, no
clock -- live faces, a resting face and predictions in, commands and an explicit state out."""
from __future__ import annotations

import numpy as np
import pytest

from emo_core.anticipation.retarget import Retargeter
from emo_core.commands import Source
from emo_core.errors import ConfigError
from emo_core.pipeline.controller import CoexpressionController, Hold, Mode, PipelineConfig, State
from emo_core.schema import N_LANDMARKS, REGIONS
from emo_core.twin import DigitalTwin

LIPS = REGIONS["lips"]
REST = np.zeros((N_LANDMARKS, 2), np.float32)


class Inverse:
    """Stand-in inverse model: every command = 0.5 + 5 x the mean lip height (clipped)."""

    def predict(self, landmarks: np.ndarray) -> np.ndarray:
        return np.clip(0.5 + 5 * np.full(11, float(np.mean(landmarks[LIPS, 1]))), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def retarget() -> Retargeter:
    return Retargeter.from_twin(DigitalTwin(seed=0, noise_std=0.0))


def smile(amount: float) -> np.ndarray:
    face = REST.copy()
    face[LIPS, 1] -= amount
    return face


def controller(retarget, **config) -> CoexpressionController:
    ctl = CoexpressionController(PipelineConfig(**config), retarget, Inverse(), np.full(11, 0.25, np.float32))
    return ctl


def hold(amount: float = 0.08, tta: float = 0.5, stamp: float = 1.0, face: float = 0.0, confidence: float = 1.0):
    return Hold(target=smile(amount), time_to_apex=tta, stamp=stamp, face=smile(face), confidence=confidence)


def test_calm_until_a_rest_then_mirror(retarget):
    ctl = controller(retarget)
    first = ctl.step(smile(0.02), 0.0)
    assert ctl.state is State.CALM and first.robot_target is None
    np.testing.assert_array_equal(first.command.positions, np.full(11, 0.25, np.float32))
    assert ctl.predicted(hold()) is None, "no rest: nothing to retarget a prediction against"
    ctl.observe_rest(REST)
    mirrored = ctl.step(smile(0.02), 0.033)
    assert ctl.state is State.MIRROR and mirrored.command.source is Source.MIMIC
    assert mirrored.command.execute_at == 0.033                      # lag-led: arrive at the frame's stamp
    np.testing.assert_allclose(mirrored.robot_target, retarget(smile(0.02), REST), atol=1e-6)


def test_calibrated_rest_is_kept_and_rolling_rest_followed(retarget):
    calibrated, rolling = controller(retarget), controller(retarget, mirror_rest="rolling")
    for ctl in (calibrated, rolling):
        ctl.observe_rest(REST)
        ctl.observe_rest(smile(0.01))
        ctl.observe_rest(None)                                       # no news keeps what it has
    np.testing.assert_array_equal(calibrated.rest, REST)
    np.testing.assert_array_equal(rolling.rest, smile(0.01))


def test_lead_by_progress_then_release_when_the_person_gets_past(retarget):
    ctl = controller(retarget, overtake_frames=1)
    ctl.observe_rest(REST)
    assert ctl.predicted(hold(amount=0.08, tta=0.5)) == 0.5
    led = ctl.step(smile(0.02), 1.033)
    assert ctl.state is State.LEAD and led.command.source is Source.PREDICTED
    live, target = retarget(smile(0.02), REST), retarget(smile(0.08), REST)
    np.testing.assert_allclose(led.robot_target, live + 0.5 * (target - live), atol=1e-6)
    past = ctl.step(smile(0.10), 1.066)                              # further along than the prediction
    assert ctl.state is State.MIRROR and past.command.source is Source.MIMIC and ctl.held_target is None


def test_a_prediction_is_released_after_its_apex(retarget):
    ctl = controller(retarget)
    ctl.observe_rest(REST)
    ctl.predicted(hold(tta=5.0))                                     # bounded by max_time_to_apex_s
    assert ctl.release_at == pytest.approx(1.0 + 2.0)
    ctl.step(smile(0.03), 2.9)
    assert ctl.state is State.LEAD
    ctl.step(smile(0.03), 3.01)
    assert ctl.state is State.MIRROR and ctl.release_at is None


def test_timed_hold_hurries_when_the_person_is_ahead_of_the_plan(retarget):
    ctl = controller(retarget, lead_fraction=0.0, overtake_frames=1)
    ctl.observe_rest(REST)
    ctl.predicted(hold(amount=0.08, tta=1.0))
    first = ctl.step(smile(0.0), 1.033)
    assert ctl.state is State.TIMED and first.command.execute_at == pytest.approx(2.0) and first.command.stamp == 1.0
    ahead = ctl.step(smile(0.06), 1.1)                               # far ahead of a 1 s constant-speed plan
    assert ctl.state is State.HURRY and ahead.command.execute_at == 1.1
    assert ahead.command.source is Source.PREDICTED


def test_a_false_trigger_is_abandoned(retarget):
    ctl = controller(retarget, abandon_after_s=0.25, overtake_frames=2)
    ctl.observe_rest(REST)
    ctl.predicted(hold(amount=0.08, tta=1.0))
    for k, t in enumerate((1.1, 1.2, 1.26)):
        ctl.step(smile(0.0), t)
        assert ctl.state is State.LEAD, f"frame {k}: too early to give up"
    ctl.step(smile(0.0), 1.3)                                        # 2nd still frame past 0.25 s
    assert ctl.state is State.MIRROR


def test_refresh_is_asked_every_n_held_frames_before_the_apex_only(retarget):
    ctl = controller(retarget, repredict_every=2)
    ctl.observe_rest(REST)
    ctl.predicted(hold(amount=0.08, tta=0.3))
    asked = []

    def refresh(stamp: float):
        asked.append(stamp)
        return hold(amount=0.06, tta=0.2, stamp=stamp, face=0.03) if len(asked) == 1 else None

    for t in (1.05, 1.1, 1.15, 1.2, 1.25, 1.28):
        ctl.step(smile(0.03), t, refresh)
    assert asked[0] == 1.1, "the 2nd held frame"
    np.testing.assert_allclose(ctl.held_target, retarget(smile(0.06), REST), atol=1e-6)
    assert ctl.release_at == pytest.approx(1.3)                      # the re-prediction's stamp + its time to apex
    assert all(t < 1.3 for t in asked)


def test_confidence_blends_toward_the_face_the_prediction_was_made_on(retarget):
    ctl = controller(retarget)
    ctl.observe_rest(REST)
    ctl.predicted(hold(amount=0.08, face=0.02, confidence=0.5))
    np.testing.assert_allclose(ctl.held_target, retarget(smile(0.05), REST), atol=1e-6)


def test_mimicry_and_no_anticipation_ignore_predictions(retarget):
    for config in ({"mode": Mode.MIMICRY}, {"anticipate": False}):
        ctl = controller(retarget, **config)
        ctl.observe_rest(REST)
        assert ctl.predicted(hold()) is None and ctl.held_target is None
    mimic = controller(retarget, mode="mimicry")
    mimic.observe_rest(REST)
    assert mimic.step(smile(0.02), 1.0).command.execute_at is None   # the paper's baseline never leads


def test_reconfigure_keeps_the_stream_and_releases_when_predictions_stop(retarget):
    ctl = controller(retarget)
    ctl.observe_rest(REST)
    ctl.predicted(hold())
    ctl.reconfigure(PipelineConfig(lead_fraction=0.3))
    assert ctl.held_target is not None and ctl.rest is not None and ctl.config.lead_fraction == 0.3
    ctl.reconfigure(PipelineConfig(anticipate=False))
    assert ctl.held_target is None and ctl.state is State.MIRROR
    with pytest.raises(ConfigError):
        PipelineConfig(min_time_to_apex_s=3.0)
