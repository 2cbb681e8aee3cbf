"""Rising-edge scorer: feature layouts (static / motion-only) and the training wander augmentation."""
from __future__ import annotations

import numpy as np
import pytest

from emo_core.anticipation.detector import DetectorConfig, PeakActivationDetector
from emo_core.anticipation.scorer import ExpressionScorer, ScorerSpec, add_wander, sequence_features


def _xy(t: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(scale=0.3, size=(113, 2)).astype(np.float32)
    return base + rng.normal(scale=0.004, size=(t, 113, 2)).astype(np.float32)


def test_motion_only_features_barely_depend_on_the_neutral():
    """Motion-only features see the neutral only through the median point removal: a neutral off
    by a whole-face shift changes nothing, one off by a person-sized deformation changes them far
    less than it changes the static block."""
    spec = ScorerSpec(lags=(3, 6), static=False)
    xy = _xy()
    n0 = np.median(xy[:8], axis=0)
    a = sequence_features(xy, n0, spec)
    assert a.shape == (40, spec.n_features) == (40, 2 * 92 * 2)
    np.testing.assert_allclose(a, sequence_features(xy, n0 + np.float32(0.03), spec), atol=1e-5)
    off = n0 + 0.02 * np.random.default_rng(1).normal(size=(113, 2)).astype(np.float32)
    static = ScorerSpec(lags=(3, 6))
    ds = np.abs(sequence_features(xy, off, static) - sequence_features(xy, n0, static))[:, :184].mean()
    dm = np.abs(sequence_features(xy, off, spec) - a).mean()
    assert dm < 0.1 * ds
    static = ScorerSpec(lags=(3, 6))
    assert static.n_features == 2 * 92 * 3


@pytest.mark.parametrize("spec", [ScorerSpec(lags=(3, 6), hidden=8), ScorerSpec(lags=(3, 6, 10), hidden=8, static=False)])
def test_online_features_equal_offline_for_new_layouts(spec):
    rng = np.random.default_rng(2)
    scorer = ExpressionScorer(rng.normal(scale=0.1, size=(spec.n_features, spec.hidden)).astype(np.float32),
                              np.zeros(spec.hidden, np.float32), rng.normal(size=spec.hidden).astype(np.float32),
                              0.0, spec)
    xy = _xy(60)
    det = PeakActivationDetector(DetectorConfig(neutral_update_every=10_000, rearm_frames=10_000,
                                                on_probability=0.999999, quiet_probability=1e-6), scorer)
    online = []
    for i, frame in enumerate(xy):
        det.update(frame, i / 30.0)
        online.append(det.last_probability)
    offline = scorer.probability(sequence_features(xy, np.median(xy[:8], axis=0), spec))
    start = 8 + det._need
    np.testing.assert_allclose(online[start:], offline[start:], atol=1e-5)


def test_wander_is_slow_smooth_and_of_the_asked_size():
    xy = _xy(300)
    out = add_wander(xy, 0.02, 30.0, np.random.default_rng(3))
    d = out - xy
    d = d - np.median(d, axis=1, keepdims=True)
    assert np.sqrt(np.mean(d ** 2)) == pytest.approx(0.02, rel=1e-3)
    step = np.sqrt(np.mean(np.diff(d, axis=0) ** 2))
    assert step < 0.35 * 0.02, "frame-to-frame change must be much smaller than the wander itself"
    np.testing.assert_array_equal(add_wander(xy, 0.0, 30.0, np.random.default_rng(3)), xy)


def test_old_cards_load_as_static(tmp_path):
    spec = ScorerSpec(hidden=4)
    s = ExpressionScorer(np.zeros((spec.n_features, 4), np.float32), np.zeros(4, np.float32),
                         np.zeros(4, np.float32), 0.0, spec)
    s.save(tmp_path)
    import json
    card = json.loads((tmp_path / "detector.json").read_text())
    del card["spec"]["static"]                        # a card written before the field existed
    (tmp_path / "detector.json").write_text(json.dumps(card))
    assert ExpressionScorer.load(tmp_path).spec.static is True
