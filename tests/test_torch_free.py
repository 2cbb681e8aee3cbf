"""Inference without PyTorch: the runtime install (no [train] extra) runs every model from its
safetensors file in numpy. Where torch is installed, the numpy paths are held to the torch modules
on held-out inputs; where it is not, the torch-only tests skip and the rest still run."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from emo_core.anticipation.predictor import ExpressionPredictor, state_shapes
from emo_core.anticipation.scorer import ExpressionScorer, sequence_features
from emo_core.errors import SchemaError
from emo_core.modeldir import seal
from emo_core.people.generator import generate
from emo_core.selfmodel.inverse import InverseModel, default_model_dir
from emo_core.selfmodel.model import ArchConfig
from emo_core.selfmodel.model import state_shapes as inverse_state_shapes
from emo_core.twin import DigitalTwin

#: Held-out synthetic people: the demo's held-out seed (the shipped models were trained on seed 1).
HELD_OUT_SEED = 8101
TOLERANCE = 1e-5


def _run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


# ------------------------------------------------------------------------------ without torch

def test_demo_path_never_imports_torch(tmp_path: Path) -> None:
    """The whole coexpression loop (emo demo, one mode) leaves no torch in sys.modules."""
    out = tmp_path / "demo"
    code = (
        "import sys\n"
        "from emo_core.cli import main\n"
        f"code = main(['demo', '--synthetic', '0', '--mode', 'coexpression', '--out', {str(out)!r}, '--quiet'])\n"
        "heavy = sorted(m for m in ('torch', 'jax', 'sympy') if m in sys.modules)\n"
        "print('EXIT', code, 'HEAVY', ','.join(heavy) or '-')\n"
    )
    result = _run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "EXIT 0 HEAVY -" in result.stdout, result.stdout[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["modes"] == ["coexpression"] and report["input"]["frames"] > 0


def test_models_run_and_train_says_how_to_get_torch_when_torch_is_missing(tmp_path: Path) -> None:
    """With torch unimportable: the shipped models load and predict; ``emo train ...`` is one line, exit 2."""
    code = (
        "import sys\n"
        "class NoTorch:                   # import torch -> ModuleNotFoundError, as in the runtime install\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "import numpy as np\n"
        "from emo_core.anticipation.predictor import ExpressionPredictor\n"
        "from emo_core.anticipation.scorer import ExpressionScorer\n"
        "from emo_core.selfmodel.inverse import InverseModel\n"
        "from emo_core.cli import main\n"
        "p = ExpressionPredictor.load()\n"
        "face = p.random_faces[0]\n"
        "pred = p.predict(np.stack([face] * 4), face)\n"
        "cmd = InverseModel.load().predict(pred.target)\n"
        "s = ExpressionScorer.load()\n"
        "prob = s.probability(np.zeros((1, s.spec.n_features), np.float32))\n"
        "print('OK', pred.target.shape, cmd.shape, prob.shape)\n"
        "codes = [main(['train', 'predictor', '--data', 'x.npz', '--out', 'm']),\n"
        "         main(['train', 'inverse', '--data', 'x.npz', '--out', 'm'])]\n"
        "print('CODES', codes)\n"
    )
    result = _run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK (113, 2) (11,) (1,)" in result.stdout and "CODES [2, 2]" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in result.stderr
    for line, what in zip(lines, ("emo train predictor", "emo train inverse")):
        assert line.startswith(f"emo: error: {what} needs PyTorch") and "src/emo_core[train]" in line
    assert not (tmp_path / "m").exists()


def test_benchmark_modules_import_no_torch_and_bench_skips_torch_parts_without_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Discovering the benchmark parts imports no torch; without torch, ``emo bench`` leaves the
    parts measured against torch references out (with a note) instead of failing."""
    code = ("import sys\nfrom emo_core.benchmarks import parts\nfound = parts()\n"
            "print(sorted(n for n, m in found.items() if getattr(m, 'NEEDS_TORCH', False)), 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['anticipation', 'inverse'] False"

    import emo_core.cli.bench as bench
    from emo_core.benchmarks import parts
    from emo_core.cli import main

    torch_parts = {name: module for name, module in parts().items() if getattr(module, "NEEDS_TORCH", False)}
    monkeypatch.setattr(bench, "parts", lambda: torch_parts)
    monkeypatch.setattr(bench, "torch_available", lambda: False)
    assert main(["bench", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parts"] == {} and set(report["skipped"]) == {"anticipation", "inverse"}


def test_predictor_weights_that_do_not_fit_the_card_are_refused(tmp_path: Path) -> None:
    """The numpy loader checks every tensor's name and shape against the card (no torch needed)."""
    directory = tmp_path / "predictor"
    shutil.copytree(_predictor_dir(), directory)
    tensors = load_file(str(directory / "model.safetensors"))
    tensors["fc2.bias"] = tensors["fc2.bias"][:-1].copy()
    del tensors["x_std"]
    save_file(tensors, str(directory / "model.safetensors"))
    # Re-sealed, so the checksums pass and the shape check is what refuses it.
    seal(directory, ["card.json", "detector.json"])
    with pytest.raises(SchemaError, match=r"missing x_std.*fc2\.bias is \(\d+,\), expected"):
        ExpressionPredictor.load(directory)


def test_inverse_weights_that_do_not_fit_the_card_are_refused(tmp_path: Path) -> None:
    directory = tmp_path / "inverse"
    shutil.copytree(default_model_dir(), directory)
    tensors = load_file(str(directory / "model.safetensors"))
    tensors["lower.3.weight"] = tensors["lower.3.weight"][:, :-1].copy()
    save_file(tensors, str(directory / "model.safetensors"))
    card = json.loads((directory / "card.json").read_text())
    card["weights"]["sha256"] = hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()
    (directory / "card.json").write_text(json.dumps(card))
    seal(directory, ["card.json"])                # checksums pass: the shape check refuses it
    with pytest.raises(SchemaError, match="lower.3.weight is"):
        InverseModel.load(directory)


def _predictor_dir() -> Path:
    from emo_core.anticipation.predictor import default_model_dir as predictor_dir

    return predictor_dir()


# ------------------------------------------------------------------ numpy == torch (held out)

@pytest.fixture(scope="module")
def held_out() -> list:
    """Synthetic people the shipped models never saw (3 people x 4 videos, distractors included)."""
    return list(generate(3, 4, seed=HELD_OUT_SEED, distractor_fraction=0.25))


def _windows(sequences: list) -> tuple[np.ndarray, np.ndarray]:
    """Every 4-frame window (every 3rd start) of each sequence, with its resting face."""
    frames, rests = [], []
    for seq in sequences:
        xy = np.asarray(seq.landmarks, np.float32)[..., :2]
        rest = np.median(xy[:5], axis=0)
        for start in range(0, len(xy) - 4, 3):
            frames.append(xy[start:start + 4])
            rests.append(rest)
    return np.stack(frames), np.stack(rests)


def test_predictor_numpy_matches_torch_on_held_out_people(held_out: list) -> None:
    pytest.importorskip("torch")
    predictor = ExpressionPredictor.load()
    x, rest = _windows(held_out)
    target, tta, conf = predictor.predict_batch(x, rest, with_confidence=True)
    ref_target, ref_tta = predictor.predict_torch(x, rest)
    assert len(x) > 200
    assert np.abs(target - ref_target).max() <= TOLERANCE
    assert np.abs(tta - ref_tta).max() <= TOLERANCE
    assert np.abs(conf - predictor.confidence_torch(x, rest)).max() <= TOLERANCE
    # The single-sample path (what the pipeline calls) is the same numbers.
    one = predictor.predict(x[7], rest[7])
    assert np.abs(one.target - ref_target[7]).max() <= TOLERANCE


def test_scorer_numpy_matches_torch_on_held_out_people(held_out: list) -> None:
    pytest.importorskip("torch")
    scorer = ExpressionScorer.load()
    spec = scorer.spec
    feats = np.concatenate([
        sequence_features(np.asarray(s.landmarks, np.float32)[..., :2],
                          np.median(np.asarray(s.landmarks, np.float32)[:spec.calibration_frames, :, :2], axis=0),
                          spec) for s in held_out])
    logit = scorer.logit(feats)
    ref = scorer.logit_torch(feats)
    assert len(feats) > 500 and logit.std() > 0.5       # the inputs span firing and quiet frames
    assert np.abs(logit - ref).max() <= TOLERANCE


def test_inverse_numpy_matches_torch_on_held_out_faces() -> None:
    pytest.importorskip("torch")
    model = InverseModel.load()
    rng = np.random.default_rng(HELD_OUT_SEED)
    faces = DigitalTwin(seed=0).forward(rng.uniform(0.0, 1.0, (500, 11))).astype(np.float32)
    assert np.abs(model.predict(faces) - model.predict_torch(faces)).max() <= TOLERANCE
    assert np.abs(model.predict(faces[3]) - model.predict_torch(faces[3])).max() <= TOLERANCE


@pytest.mark.parametrize("architecture", [
    {"name": "paper"}, {"name": "delta", "hidden": 32},
    {"name": "relative", "hidden": 16, "ood_components": 4, "conf_knots": 5}])
def test_predictor_state_shapes_are_the_torch_modules(architecture: dict) -> None:
    pytest.importorskip("torch")
    from emo_core.anticipation.predictor_torch import build_module

    module = build_module(architecture)
    assert state_shapes(architecture) == {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("arch", [ArchConfig.paper(), ArchConfig(), ArchConfig(batch_norm=False, hidden=(32,))])
def test_inverse_state_shapes_are_the_torch_modules(arch: ArchConfig) -> None:
    pytest.importorskip("torch")
    from emo_core.selfmodel.net import InverseNet

    net = InverseNet(arch)
    assert inverse_state_shapes(arch) == {k: tuple(v.shape) for k, v in net.state_dict().items()}


def test_training_restores_torchs_threads_and_random_state() -> None:
    """torch's thread count and global RNG are process-wide: a training run sets them (threads,
    seed) and gives them back, so a benchmark or a second run in the same process is unaffected."""
    torch = pytest.importorskip("torch")
    from emo_core.anticipation.scorer import ScorerSpec, train_scorer
    from emo_core.optional import torch_session

    torch.set_num_threads(2)
    torch.manual_seed(1234)
    before = torch.get_rng_state().clone()
    with pytest.raises(RuntimeError):
        with torch_session(torch, threads=1, seed=0):
            assert torch.get_num_threads() == 1
            raise RuntimeError("a run that fails half way")
    assert torch.get_num_threads() == 2 and torch.equal(torch.get_rng_state(), before)
    sequences = generate(2, 2, seed=5, distractor_fraction=0.5)
    first = train_scorer(sequences, ScorerSpec(hidden=4), epochs=1, seed=3, threads=1)
    assert torch.get_num_threads() == 2 and torch.equal(torch.get_rng_state(), before)
    second = train_scorer(sequences, ScorerSpec(hidden=4), epochs=1, seed=3, threads=1)
    np.testing.assert_array_equal(first.w1, second.w1)          # seeded: the same model again
