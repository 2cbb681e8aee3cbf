"""Inverse self-model: numpy fast path == torch, save/load round trip, schema refusals, a small
training run that beats nearest neighbour, the eval JSON contract, the CLI, the shipped model."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")   # training and the torch reference: the [train] extra

from emo_core.cli import main
from emo_core.errors import InputError, SchemaError
from emo_core.schema import COMMAND_NAMES
from emo_core.selfmodel.babbler import Babbler
from emo_core.selfmodel.constraints import ConstraintConfig, ConstraintFunction
from emo_core.selfmodel.evaluation import evaluate_inverse
from emo_core.selfmodel.inverse import InverseModel, default_model_dir
from emo_core.selfmodel.model import ArchConfig
from emo_core.selfmodel.net import InverseNet
from emo_core.selfmodel.robot import TwinRobot
from emo_core.selfmodel.training import TrainConfig, train_inverse
from emo_core.twin import DigitalTwin

EVAL_KEYS = ("model", "nearest_neighbour", "random_face", "random_commands")


def _random_net(arch: ArchConfig, seed: int = 0) -> InverseNet:
    """A net with non-trivial BatchNorm statistics and input normalization, as after training."""
    torch.manual_seed(seed)
    net = InverseNet(arch)
    gen = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            module.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            module.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    if arch.input_norm == "standardize":
        net.set_normalization(np.random.default_rng(seed).normal(0, 0.5, 226), np.full(226, 0.05))
    return net.eval()


def _faces(n: int, seed: int = 1) -> np.ndarray:
    twin = DigitalTwin(seed=seed)
    return twin.forward(np.random.default_rng(seed).uniform(0.05, 0.9, (n, 11)))


@pytest.fixture(scope="module")
def babble_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twin babbling, 150 upper-only + 150 lower-only samples (split 105/15/30 each)."""
    root = tmp_path_factory.mktemp("babble")
    twin = DigitalTwin()
    constraints = ConstraintFunction(ConstraintConfig.from_yaml())
    for mode in ("upper", "lower"):
        babbler = Babbler(TwinRobot(twin), constraints, mode=mode, seed=0)
        with babbler.open(root / mode, flush_every=150) as writer:
            babbler.run(writer, 150)
    return root


@pytest.fixture(scope="module")
def trained(babble_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = TrainConfig(arch="split", hidden=(64, 64), max_epochs=12, patience=12, steps_per_epoch=20, seed=0)
    model, results = train_inverse([babble_dir], cfg)
    assert set(results) == {"split"}
    out = tmp_path_factory.mktemp("model")
    model.save(out)
    return out


# -------------------------------------------------------------------------------------- fast path
@pytest.mark.parametrize("arch", [ArchConfig.paper(), ArchConfig(), ArchConfig(input_norm="standardize"),
                                  ArchConfig(hidden=(32,), batch_norm=False)], ids=lambda a: f"{a.name}-{a.input_norm}")
def test_fast_path_matches_torch(arch: ArchConfig) -> None:
    model = InverseModel(net=_random_net(arch))
    faces = _faces(64)
    fast = model.predict(faces)
    ref = model.predict_torch(faces)
    assert fast.shape == (64, 11) and fast.dtype == np.float32
    assert np.abs(fast - ref).max() < 1e-5
    assert np.abs(model.predict(faces[3]) - ref[3]).max() < 1e-5        # single sample: (113, 2) -> (11,)
    assert model.predict(faces[3]).shape == (11,)


def test_predict_rejects_bad_input() -> None:
    model = InverseModel(net=_random_net(ArchConfig()))
    with pytest.raises(SchemaError, match="113, 2"):
        model.predict(np.zeros((113, 3)))
    with pytest.raises(SchemaError, match="113, 2"):
        model.predict(np.zeros(226))
    bad = _faces(1)[0]
    bad[5, 1] = np.nan
    with pytest.raises(SchemaError, match="NaN"):
        model.predict(bad)


# -------------------------------------------------------------------------------------- save / load
def test_save_load_round_trip(tmp_path: Path) -> None:
    model = InverseModel(net=_random_net(ArchConfig.paper()), card={"metrics": {"val_l1": 0.5}})
    model.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"model.safetensors", "card.json"}
    loaded = InverseModel.load(tmp_path / "m")
    faces = _faces(16)
    assert np.array_equal(loaded.predict(faces), model.predict(faces))
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["architecture"]["name"] == "paper" and card["input"]["n"] == 113
    assert card["output"]["command_names"] == list(COMMAND_NAMES) and card["metrics"]["val_l1"] == 0.5


def _edit_card(model_dir: Path, edit) -> None:
    card = json.loads((model_dir / "card.json").read_text())
    edit(card)
    (model_dir / "card.json").write_text(json.dumps(card))


def test_load_refuses_mismatches(tmp_path: Path) -> None:
    good = tmp_path / "good"
    InverseModel(net=_random_net(ArchConfig())).save(good)

    def variant(name: str, edit) -> Path:
        target = tmp_path / name
        shutil.copytree(good, target)
        _edit_card(target, edit)
        return target

    cases = {
        "landmarks": (lambda c: c["input"].update(n=468), "expects landmarks"),
        "space": (lambda c: c["input"].update(space="image"), "expects landmarks"),
        "commands": (lambda c: c["output"].update(command_names=list(reversed(COMMAND_NAMES))), "outputs commands"),
        "arch": (lambda c: c["architecture"].update(hidden=[64, 64]), "does not fit"),
        "unknown": (lambda c: c["architecture"].update(name="transformer"), "unknown inverse-model architecture"),
        "version": (lambda c: c.update(version=99), "unsupported"),
    }
    for name, (edit, message) in cases.items():
        with pytest.raises(SchemaError, match=message):
            InverseModel.load(variant(name, edit))
    tampered = tmp_path / "tampered"
    shutil.copytree(good, tampered)
    raw = bytearray((tampered / "model.safetensors").read_bytes())
    raw[-10] ^= 0x55
    (tampered / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(SchemaError, match="checksum"):
        InverseModel.load(tampered)
    with pytest.raises(InputError, match="not an inverse model"):
        InverseModel.load(tmp_path / "nowhere")


# -------------------------------------------------------------------------------- training / eval
def test_small_training_run_beats_nearest_neighbour(trained: Path, babble_dir: Path) -> None:
    model = InverseModel.load(trained)
    card = model.card
    assert card["data"]["recombined"] and len(card["data"]["datasets"]) == 2
    assert card["training"]["seed"] == 0 and card["metrics"]["variants"]["split"]["epochs"] <= 12
    result = evaluate_inverse(model, [babble_dir], twin=DigitalTwin(noise_std=0.0))
    s = result.summary
    assert s["n"] == 30 * 30 and s["data_matches_model"]
    assert s["model"]["l1"] < s["nearest_neighbour"]["l1"] < s["random_face"]["l1"]
    assert s["nearest_neighbour"]["l1"] < s["random_commands"]["l1"]
    closed = s["closed_loop"]
    assert closed["model"]["landmark_mae"] < closed["nearest_neighbour"]["landmark_mae"]
    assert closed["true_commands"]["landmark_mae"] < closed["model"]["landmark_mae"]


def test_training_is_seeded(babble_dir: Path) -> None:
    cfg = TrainConfig(arch="split", max_epochs=2, steps_per_epoch=5, hidden=(32, 32))
    a, _ = train_inverse([babble_dir], cfg)
    b, _ = train_inverse([babble_dir], cfg)
    faces = _faces(8)
    assert np.array_equal(a.predict(faces), b.predict(faces))


def test_cli_train_and_eval(babble_dir: Path, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    plot = tmp_path / "box.png"
    assert main(["eval", "inverse", "--data", str(babble_dir), "--model", str(trained), "--json",
                 "--plot", str(plot)]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in EVAL_KEYS:
        assert isinstance(summary[key]["l1"], float)
    assert summary["n"] == 900 and plot.stat().st_size > 5000
    assert set(summary["closed_loop"]) >= {"model", "nearest_neighbour"}
    out = tmp_path / "m"
    assert main(["train", "inverse", "--data", str(babble_dir / "upper"), str(babble_dir / "lower"), "--out", str(out),
                 "--arch", "split", "--epochs", "1", "--hidden", "16", "-q"]) == 0
    assert "saved split model" in capsys.readouterr().out and (out / "card.json").is_file()
    # User errors: one line on stderr, exit 2.
    assert main(["train", "inverse", "--data", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert main(["eval", "inverse", "--data", str(babble_dir), "--model", str(tmp_path / "missing"), "--json"]) == 2
    bad = tmp_path / "bad"
    shutil.copytree(trained, bad)
    _edit_card(bad, lambda c: c["output"].update(command_names=["jaw_open"]))
    assert main(["eval", "inverse", "--data", str(babble_dir), "--model", str(bad), "--json", "--plot", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("emo: error:") == 3 and "outputs commands" in err


def test_corrupt_training_data_is_named(babble_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "upper"
    shutil.copytree(babble_dir / "upper", copy)
    chunk = copy / "data" / "chunk-000001.npz"
    chunk.write_bytes(chunk.read_bytes()[:-40])
    assert main(["train", "inverse", "--data", str(copy), "--out", str(tmp_path / "m")]) == 2
    assert "chunk-000001.npz" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- shipped model
def test_default_model_ships_and_inverts_the_twin() -> None:
    files = list(default_model_dir().iterdir())
    assert sum(p.stat().st_size for p in files) <= 5 * 1024 * 1024
    model = InverseModel.load()
    twin = DigitalTwin(noise_std=0.0)
    commands = ConstraintFunction(ConstraintConfig.from_yaml())
    rng = np.random.default_rng(42)
    targets = rng.uniform(0.1, 0.85, (200, 11))
    targets = targets[commands.feasible(targets)]
    predicted = model.predict(twin.forward(targets))
    assert np.abs(predicted - targets).mean() < 0.05
    calm = twin.calm_commands()
    assert np.abs(model.predict(twin.rest_face()) - calm).mean() < 0.05
