"""Expression predictor: architectures, fast path, files and schema checks, training, evaluation."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

torch = pytest.importorskip("torch")   # training and the torch reference: the [train] extra

from emo_core.anticipation.dataset import build_windows, eval_pairs
from emo_core.anticipation.predictor import (
    CARD_FILE, DeltaPredictor, ExpressionPredictor, PaperPredictor, new_card,
)
from emo_core.anticipation.train import TrainConfig, mae, train_predictor
from emo_core.errors import InputError, SchemaError


@dataclass
class Seq:
    landmarks: np.ndarray
    fps: float
    subject: str
    label: str
    onset_frame: int
    apex_frame: int


def toy_people(subjects: int, videos: int, seed: int) -> list[Seq]:
    """Faces that rise along one of 4 expression directions with a smooth onset (learnable)."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(99).normal(scale=0.3, size=(113, 2))
    directions = np.random.default_rng(98).normal(scale=0.04, size=(4, 113, 2))
    out = []
    for s in range(subjects):
        face = base + rng.normal(scale=0.01, size=(113, 2))
        for _ in range(videos):
            e, onset = int(rng.integers(4)), int(rng.integers(12, 20))
            duration = int(rng.integers(12, 30))
            u = np.clip((np.arange(70) - onset) / duration, 0, 1)
            rise = u ** 3 * (10 - 15 * u + 6 * u ** 2)
            rise -= 0.004 * np.maximum(0, np.arange(70) - onset - duration)   # relax: unique apex
            frames = face + rise[:, None, None] * rng.uniform(0.8, 1.2) * directions[e]
            frames = frames + rng.normal(scale=1e-3, size=frames.shape)
            out.append(Seq(frames.astype(np.float32), 30.0, f"s{seed}-{s}", f"e{e}", onset, onset + duration))
    return out


@pytest.fixture(scope="module")
def trained() -> ExpressionPredictor:
    windows, _ = build_windows(toy_people(12, 8, seed=0))
    config = TrainConfig(hidden=64, epochs=10, pairs_per_epoch=4096, patience=10, progress=False)
    return train_predictor(windows, config).predictor


def test_paper_architecture_layers_and_skip():
    model = PaperPredictor()
    assert len(model.fc) == 8
    x = torch.randn(3, 4, 113, 2)
    assert model(x).shape == (3, 113, 2)
    # The skip: layer 6's pre-activation includes layer 4's output. Zeroing fc6 leaves tanh(h4).
    with torch.no_grad():
        model.fc[5].weight.zero_()
        model.fc[5].bias.zero_()
        h = x.reshape(3, -1)
        for layer in model.fc[:4]:
            h = torch.tanh(layer(h))
        h6 = torch.tanh(h)
        expected = model.fc[7](model.fc[6](h6)).reshape(3, 113, 2)
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize("module", [PaperPredictor(), DeltaPredictor(hidden=32)])
def test_fast_path_equals_torch(module, tmp_path):
    torch.manual_seed(0)
    if isinstance(module, DeltaPredictor):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(256, 4, 113, 2)).astype(np.float32)
        module.set_normalization(x, rng.normal(size=(256, 113, 2)).astype(np.float32),
                                 rng.normal(size=(256, 113, 2)).astype(np.float32),
                                 rng.uniform(0.1, 1.0, 256).astype(np.float32))
    card = new_card(module, time_to_apex_prior_s=0.4, time_to_apex_shrink=0.7)
    predictor = ExpressionPredictor(module, card)
    x = np.random.default_rng(1).normal(scale=0.3, size=(16, 4, 113, 2)).astype(np.float32)
    rest = np.random.default_rng(2).normal(scale=0.3, size=(16, 113, 2)).astype(np.float32)
    fast, fast_t = predictor.predict_batch(x, rest)
    ref, ref_t = predictor.predict_torch(x, rest)
    np.testing.assert_allclose(fast, ref, atol=2e-5)
    np.testing.assert_allclose(fast_t, ref_t, atol=2e-5)
    one = predictor.predict(x[3], rest[3])
    np.testing.assert_allclose(one.target, ref[3], atol=2e-5)
    assert one.time_to_apex == pytest.approx(float(ref_t[3]), abs=1e-4)


def test_training_beats_mimicry_on_held_out_subjects(trained: ExpressionPredictor):
    test, _ = build_windows(toy_people(4, 6, seed=1))
    pairs = eval_pairs(test)
    pred, tta = trained.predict_batch(pairs.x, pairs.rest)
    model_err, mimicry_err = mae(pred, pairs.y).mean(), mae(pairs.x[:, -1], pairs.y).mean()
    assert model_err < 0.8 * mimicry_err
    # In this toy world the early motion reveals the duration: the time head beats the prior.
    prior = trained.prior_tta
    assert np.abs(tta - pairs.time_to_apex).mean() < np.abs(pairs.time_to_apex - prior).mean()
    card = trained.card
    assert card["architecture"]["name"] == "delta" and card["data"]["subjects"] == 12
    assert card["metrics"]["val_mae"] < card["metrics"]["val_mimicry_mae"]


def test_save_load_round_trip_and_schema_refusal(trained: ExpressionPredictor, tmp_path):
    path = trained.save(tmp_path / "model")
    loaded = ExpressionPredictor.load(path)
    x = np.random.default_rng(2).normal(scale=0.3, size=(5, 4, 113, 2)).astype(np.float32)
    rest = x[:, 0]
    np.testing.assert_array_equal(loaded.predict_batch(x, rest)[0], trained.predict_batch(x, rest)[0])
    assert loaded.random_faces.shape == trained.random_faces.shape

    card = json.loads((path / CARD_FILE).read_text())
    card["input_schema"]["landmarks"] = 468
    (path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(SchemaError, match="input schema"):
        ExpressionPredictor.load(path)
    card["input_schema"]["landmarks"] = 113
    card["architecture"]["hidden"] = 32                     # card no longer matches the weights
    (path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(SchemaError, match="do not match"):
        ExpressionPredictor.load(path)
    (path / "model.safetensors").write_bytes(b"not safetensors")
    card["architecture"]["hidden"] = 64
    (path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(SchemaError):
        ExpressionPredictor.load(path)
    with pytest.raises(InputError):
        ExpressionPredictor.load(tmp_path / "nowhere")


def test_bad_inputs_are_refused(trained: ExpressionPredictor):
    rest = np.zeros((113, 2))
    with pytest.raises(InputError):
        trained.predict(np.zeros((3, 113, 2)), rest)
    bad = np.zeros((4, 113, 2))
    bad[2, 5, 0] = np.nan
    with pytest.raises(InputError):
        trained.predict(bad, rest)
    with pytest.raises(InputError, match="resting face"):
        trained.predict(np.zeros((4, 113, 2)))
    assert trained.predict(np.zeros((4, 113, 3)), np.zeros((113, 3))).target.shape == (113, 2)  # z ignored


@pytest.mark.parametrize("kind", ["delta", "relative"])
def test_fast_path_refuses_a_missing_rest_face(kind):
    """NumpyForward on its own (no ExpressionPredictor check in front): a clear InputError, not numpy's."""
    from emo_core.anticipation.predictor_torch import RelativePredictor

    module = DeltaPredictor(hidden=16) if kind == "delta" else RelativePredictor(hidden=16)
    fast = ExpressionPredictor(module, new_card(module)).fast
    x = np.zeros((1, 904), np.float32)
    with pytest.raises(InputError, match=f"the {kind} predictor needs the resting face"):
        fast(x, None)
    with pytest.raises(InputError, match=f"the {kind} predictor needs the resting face"):
        fast.forward3(x, None)
    target, tta, conf = fast.forward3(x, np.zeros((1, 226), np.float32))
    assert target.shape == (1, 226) and tta.shape == (1,) and conf.shape == (1,)


# ----------------------------------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def people_file(tmp_path_factory):
    from emo_core.people.generator import generate

    path = tmp_path_factory.mktemp("people") / "people.npz"
    generate(4, 8, seed=5, distractor_fraction=0.25).save(path)
    return path


def test_cli_train_then_eval_json(people_file, tmp_path, capsys):
    from emo_core.cli import main

    out = tmp_path / "model"
    assert main(["train", "predictor", "--data", str(people_file), "--out", str(out), "--epochs", "2",
                 "--pairs-per-epoch", "512", "--hidden", "32", "--detector-epochs", "1", "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "card.json", "detector.safetensors",
                                               "detector.json"}
    capsys.readouterr()
    assert main(["eval", "predictor", "--data", str(people_file), "--model", str(out), "--json",
                 "--plots", str(tmp_path / "plots")]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("model", "mimicry", "random"):
        assert result[key]["mae"] > 0
    assert set(result["confusion"]) >= {"tp", "fn", "fp", "tn", "accuracy", "ppv", "sensitivity", "fpr", "for"}
    assert result["confusion"]["tp"] + result["confusion"]["fn"] + result["confusion"]["fp"] \
        + result["confusion"]["tn"] == 11 * result["n"]
    assert result["time_to_apex"]["mae_ms"] >= 0
    assert set(result["detector"]) >= {"fired_before_half_onset", "false_triggers_per_minute"}
    assert result["n"] > 0 and (tmp_path / "plots" / "fig4b_predictor.png").stat().st_size > 0


def test_cli_errors_exit_2(people_file, tmp_path, capsys):
    from emo_core.cli import main

    assert main(["train", "predictor", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "m")]) == 2
    assert main(["eval", "predictor", "--data", str(people_file), "--model", str(tmp_path / "none")]) == 2
    assert "emo: error:" in capsys.readouterr().err
    assert main(["dataset", "peaks", "--data", str(people_file), "--index", "0"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["peak_frame"] <= row["target_frame"] or not row["expression"]
