"""Identity-free ``relative`` predictor: invariances, still faces, confidence, fast path, files."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")   # training and the torch reference: the [train] extra

from emo_core.anticipation.dataset import build_windows, eval_pairs, sample_pairs
from emo_core.anticipation.predictor import (
    CARD_FILE, ExpressionPredictor, Prediction, RelativePredictor, new_card, rest_scale_np,
)
from emo_core.anticipation.train import TrainConfig, _non_increasing, mae, train_predictor
from emo_core.errors import SchemaError

from test_predictor import toy_people


def _random_relative(seed: int = 0) -> ExpressionPredictor:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    module = RelativePredictor(hidden=32, ood_components=8, conf_knots=5)
    rest = rng.normal(scale=0.3, size=(256, 113, 2)).astype(np.float32)
    x = rest[:, None] + rng.normal(scale=0.02, size=(256, 4, 113, 2)).astype(np.float32)
    y = rest + rng.normal(scale=0.05, size=(256, 113, 2)).astype(np.float32)
    module.set_normalization(x, rest, y, rng.uniform(0.1, 1.0, 256).astype(np.float32))
    with torch.no_grad():                      # non-trivial weights everywhere, incl. the output
        for p in module.parameters():
            p.normal_(0, 0.2)
    module.set_calibration(np.array([0.5, 1.0, 2.0, 5.0, 50.0]), np.array([1.0, 0.9, 0.5, 0.2, 0.0]))
    return ExpressionPredictor(module.eval(), new_card(module, time_to_apex_prior_s=0.3))


@pytest.fixture(scope="module")
def relative() -> ExpressionPredictor:
    return _random_relative()


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    rest = rng.normal(scale=0.3, size=(16, 113, 2)).astype(np.float32)
    x = rest[:, None] + rng.normal(scale=0.03, size=(16, 4, 113, 2)).astype(np.float32)
    return x, rest


def test_fast_path_equals_torch_including_confidence(relative, faces):
    x, rest = faces
    target, tta, conf = relative.predict_batch(x, rest, with_confidence=True)
    ref, ref_t = relative.predict_torch(x, rest)
    np.testing.assert_allclose(target, ref, rtol=1e-4, atol=5e-5)
    np.testing.assert_allclose(tta, ref_t, rtol=1e-4, atol=5e-5)
    np.testing.assert_allclose(conf, relative.confidence_torch(x, rest), atol=2e-5)
    assert np.all((conf >= 0) & (conf <= 1))
    one = relative.predict(x[3], rest[3])
    np.testing.assert_allclose(one.target, target[3], atol=2e-5)
    assert one.confidence == pytest.approx(float(conf[3]), abs=1e-5)
    # predict_batch keeps its two-value form for existing callers
    assert len(relative.predict_batch(x, rest)) == 2


def test_identity_free_translation_and_scale(relative, faces):
    """Same expression on a person placed / sized differently: same relative prediction."""
    x, rest = faces
    t0, tta0, c0 = relative.predict_batch(x, rest, with_confidence=True)
    shift = np.array([0.7, -0.4], np.float32)
    t1, tta1, c1 = relative.predict_batch(x + shift, rest + shift, with_confidence=True)
    np.testing.assert_allclose(t1, t0 + shift, atol=1e-4)
    np.testing.assert_allclose(tta1, tta0, atol=1e-4)
    np.testing.assert_allclose(c1, c0, atol=1e-4)
    k = np.float32(1.3)
    t2, tta2, c2 = relative.predict_batch(x * k, rest * k, with_confidence=True)
    np.testing.assert_allclose(t2, t0 * k, atol=1e-4)
    np.testing.assert_allclose(tta2, tta0, atol=1e-4)
    np.testing.assert_allclose(c2, c0, atol=1e-4)
    np.testing.assert_allclose(rest_scale_np(rest * k), rest_scale_np(rest) * k, rtol=1e-5)


def test_still_face_predicts_its_rest(relative, faces):
    """Frames equal to the resting face: the displacement head is anchored at exactly zero."""
    _, rest = faces
    still = np.repeat(rest[:, None], 4, axis=1)
    target, _ = relative.predict_batch(still, rest)
    np.testing.assert_allclose(target, rest, atol=2e-5)
    ref, _ = relative.predict_torch(still, rest)
    np.testing.assert_allclose(ref, rest, atol=2e-5)


def test_confidence_table_is_monotone_and_falls_far_out(relative, faces):
    x, rest = faces
    near = relative.predict_batch(x, rest, with_confidence=True)[2]
    far_x = rest[:, None] + np.random.default_rng(2).normal(scale=3.0, size=x.shape).astype(np.float32)
    far = relative.predict_batch(far_x, rest, with_confidence=True)[2]
    assert far.mean() < near.mean()
    np.testing.assert_allclose(far, 0.0, atol=1e-6)           # beyond the last knot: mimicry
    module = relative.module
    scores = np.linspace(0, 100, 200)
    assert np.all(np.diff(module.confidence(scores)) <= 1e-7)


def test_blended_prediction():
    now = np.zeros((113, 2), np.float32)
    pred = Prediction(target=np.ones((113, 2), np.float32), time_to_apex=0.2, confidence=0.25)
    np.testing.assert_allclose(pred.blended(now), 0.25)
    assert Prediction(target=now, time_to_apex=0.0).confidence == 1.0      # old callers


def test_non_increasing_fit():
    out = _non_increasing(np.array([1.0, 0.5, 0.8, 0.2, 0.3]), np.ones(5))
    assert np.all(np.diff(out) <= 0)
    np.testing.assert_allclose(out, [1.0, 0.65, 0.65, 0.25, 0.25])


def test_still_pairs_come_from_before_the_onset():
    windows, _ = build_windows(toy_people(3, 4, seed=5))
    assert windows.still is not None and windows.still.shape == (len(windows), 9, 113, 2)
    pairs = sample_pairs(windows, 512, np.random.default_rng(0), still_fraction=0.5)
    assert 150 < pairs.still.sum() < 360
    # toy faces do not move before the onset: still inputs are near the rest face, labels too
    assert mae(pairs.x[pairs.still, -1], pairs.rest[pairs.still]).max() < 5e-3
    assert mae(pairs.y[pairs.still], pairs.rest[pairs.still]).max() < 5e-3
    assert windows.subset([0, 1]).still.shape[0] == 2


@pytest.fixture(scope="module")
def trained_relative() -> ExpressionPredictor:
    windows, _ = build_windows(toy_people(12, 8, seed=0))
    config = TrainConfig(architecture="relative", hidden=64, epochs=10, pairs_per_epoch=4096, patience=10,
                         progress=False, ood_components=8, conf_knots=8)
    return train_predictor(windows, config).predictor


def test_training_beats_mimicry_and_calibrates(trained_relative, tmp_path):
    held, _ = build_windows(toy_people(4, 6, seed=7))      # new people
    pairs = eval_pairs(held)
    pred, tta, conf = trained_relative.predict_batch(pairs.x, pairs.rest, with_confidence=True)
    assert mae(pred, pairs.y).mean() < 0.8 * mae(pairs.x[:, -1], pairs.y).mean()
    card = trained_relative.card
    assert card["architecture"]["name"] == "relative"
    assert card["input_schema"]["rest_relative"] == "(frames - rest) / rest_scale"
    cal = card["confidence"]
    assert len(cal["knots"]) == 8 and np.all(np.diff(cal["knots"]) > 0)
    assert np.all(np.diff(cal["values"]) <= 1e-9) and cal["values"][-1] == 0.0
    assert 0.0 <= conf.min() and conf.max() <= 1.0
    # in distribution the model is trusted more than on the same faces with heavy landmark noise
    noisy = pairs.x + np.random.default_rng(3).normal(scale=0.05, size=pairs.x.shape).astype(np.float32)
    assert trained_relative.predict_batch(noisy, pairs.rest, with_confidence=True)[2].mean() < conf.mean()
    # round trip
    trained_relative.save(tmp_path)
    loaded = ExpressionPredictor.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict_batch(pairs.x, pairs.rest, with_confidence=True)[2], conf)


def test_schema_guards_and_old_models(trained_relative, tmp_path):
    trained_relative.save(tmp_path)
    card = json.loads((tmp_path / CARD_FILE).read_text())
    del card["input_schema"]["rest_relative"]
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(SchemaError):
        ExpressionPredictor.load(tmp_path)
    shipped = ExpressionPredictor.load(None)        # the shipped default is identity-free
    assert shipped.architecture == "relative" and shipped.card["input_schema"]["rest_relative"]
    rng = np.random.default_rng(0)
    rest = rng.normal(scale=0.3, size=(113, 2)).astype(np.float32)
    still = shipped.predict(np.repeat(rest[None], 4, axis=0), rest)
    np.testing.assert_allclose(still.target, rest, atol=1e-5)       # a face at rest stays at rest
    assert 0.0 <= still.confidence <= 1.0
