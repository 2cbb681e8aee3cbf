"""Expression predictor: 4 frames after the peak activation -> the target face (+ time to apex).

Two architectures share one file format and one inference API:

* ``paper`` -- the Emo paper's reference (Fig. 7B): 8 fully connected layers on the flattened
  4x113x2 input, tanh after the first six, a skip connection from layer 4 to layer 6, 226 outputs
  (absolute target landmarks). The paper gives no layer widths; we use
  904-1024-1024-512-512-512-512-256-226 (layer 4's output is added to layer 6's pre-activation,
  so both are 512 wide). It has no time-to-apex output; its cards carry the training set's mean
  time-to-apex, which the wrapper returns as a constant.
* ``delta`` -- our improved variant: inputs are the last frame plus the three earlier frames
  *relative to the last one* (motion), each feature standardized with training statistics; the
  network predicts the standardized *displacement* from the last frame (so "no motion" is mimicry,
  the strong baseline, and the network only learns the remainder) and, from the same trunk, the
  standardized time from the last input frame to the apex. Small (904-256-256-227, ReLU) so the
  single-sample numpy path runs in tens of microseconds.

Files: ``model.safetensors`` (weights, normalization buffers, a bank of training target faces for
the random baseline) and ``card.json`` (architecture, input schema, data fingerprint, metrics).
Loading checks the card's schema against this code and refuses mismatches with a SchemaError; no
pickle is ever read.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import save_file
from torch import nn

from ..errors import InputError, SchemaError
from ..resources import data_path
from ..schema import MP_INDICES, N_LANDMARKS
from .dataset import N_INPUT

LOG = logging.getLogger(__name__)

FORMAT = "emo-predictor"
FORMAT_VERSION = 1
ARCHITECTURES = ("paper", "delta")
IN_DIM = N_INPUT * N_LANDMARKS * 2    # 904
OUT_DIM = N_LANDMARKS * 2             # 226
PAPER_WIDTHS = (1024, 1024, 512, 512, 512, 512, 256)
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
BANK_KEY = "baseline.random_faces"


def schema_signature() -> dict[str, Any]:
    """The input schema a model is tied to: frames, landmark order, dims, space."""
    order = hashlib.sha256(MP_INDICES.astype(np.int64).tobytes()).hexdigest()[:16]
    return {"frames": N_INPUT, "landmarks": N_LANDMARKS, "dims": 2, "space": "metric",
            "canonical_order_sha": order}


def default_model_dir() -> Path:
    """The shipped default predictor (trained on synthetic people)."""
    return data_path("predictor")


# --------------------------------------------------------------------------------- torch models

class PaperPredictor(nn.Module):
    """The paper's reference: 8 FC layers, tanh on the first six, skip from layer 4 to layer 6."""

    def __init__(self, widths: tuple[int, ...] = PAPER_WIDTHS) -> None:
        super().__init__()
        if len(widths) != 7 or widths[3] != widths[5]:
            raise SchemaError("paper predictor needs 7 hidden widths with layer 4 == layer 6")
        dims = (IN_DIM, *widths, OUT_DIM)
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(len(x), IN_DIM)
        h4 = None
        for i, layer in enumerate(self.fc[:6], start=1):
            z = layer(h)
            if i == 6:
                z = z + h4            # the skip connection between layers 4 and 6
            h = torch.tanh(z)
            if i == 4:
                h4 = h
        return self.fc[7](self.fc[6](h)).reshape(len(x), N_LANDMARKS, 2)


class DeltaPredictor(nn.Module):
    """Improved variant: standardized motion features -> standardized displacement + time to apex."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.hidden = hidden
        self.fc1 = nn.Linear(IN_DIM, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, OUT_DIM + 1)
        for name, size in (("x_mean", IN_DIM), ("x_std", IN_DIM), ("y_mean", OUT_DIM),
                           ("y_std", OUT_DIM), ("t_stats", 2)):
            self.register_buffer(name, torch.ones(size) if "std" in name or name == "t_stats"
                                 else torch.zeros(size))

    @staticmethod
    def features(x: torch.Tensor) -> torch.Tensor:
        """(B, 4, 113, 2) -> (B, 904): the last frame, then frames 0..2 minus the last frame."""
        last = x[:, -1]
        motion = x[:, :-1] - last[:, None]
        return torch.cat([last.reshape(len(x), -1), motion.reshape(len(x), -1)], dim=1)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Network output in standardized units: (B, 227) = displacement (226) + time (1)."""
        z = (self.features(x) - self.x_mean) / self.x_std
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(z)))))

    def decode(self, x: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        disp = raw[:, :OUT_DIM] * self.y_std + self.y_mean
        target = x[:, -1].reshape(len(x), -1) + disp
        tta = raw[:, OUT_DIM] * self.t_stats[1] + self.t_stats[0]
        return target.reshape(len(x), N_LANDMARKS, 2), tta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(x, self.raw(x))[0]

    def set_normalization(self, x: np.ndarray, y: np.ndarray, tta: np.ndarray) -> None:
        """Standardization statistics from training pairs (x (n,4,113,2), y (n,113,2), tta (n,))."""
        with torch.no_grad():
            xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            feats = self.features(xt).numpy()
            disp = (y.reshape(len(y), -1) - x[:, -1].reshape(len(x), -1)).astype(np.float64)
            self.x_mean.copy_(torch.from_numpy(feats.mean(0)))
            self.x_std.copy_(torch.from_numpy(_floored_std(feats, ((0, OUT_DIM), (OUT_DIM, IN_DIM)))))
            self.y_mean.copy_(torch.from_numpy(disp.mean(0).astype(np.float32)))
            self.y_std.copy_(torch.from_numpy(_floored_std(disp, ((0, OUT_DIM),))))
            self.t_stats.copy_(torch.tensor([float(tta.mean()), max(float(tta.std()), 1e-3)]))


def _floored_std(values: np.ndarray, groups: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Per-feature std, floored at 10 % of its group's median so still points are not blown up."""
    std = values.std(axis=0)
    for lo, hi in groups:
        std[lo:hi] = np.maximum(std[lo:hi], 0.1 * float(np.median(std[lo:hi])) + 1e-8)
    return std.astype(np.float32)


def build_module(architecture: dict[str, Any]) -> nn.Module:
    """A fresh module from a card's ``architecture`` entry."""
    kind = architecture.get("name")
    if kind == "paper":
        return PaperPredictor(tuple(architecture.get("widths", PAPER_WIDTHS)))
    if kind == "delta":
        return DeltaPredictor(int(architecture.get("hidden", 256)))
    raise SchemaError(f"unknown predictor architecture {kind!r} (known: {', '.join(ARCHITECTURES)})")


def architecture_of(module: nn.Module) -> dict[str, Any]:
    if isinstance(module, PaperPredictor):
        widths = [layer.out_features for layer in module.fc[:-1]]
        return {"name": "paper", "widths": widths, "activations": "tanh x6, skip 4->6",
                "outputs": ["target"]}
    if isinstance(module, DeltaPredictor):
        return {"name": "delta", "hidden": module.hidden, "activations": "relu x2",
                "outputs": ["target", "time_to_apex"]}
    raise SchemaError(f"not a predictor module: {type(module).__name__}")


# ---------------------------------------------------------------------------- fast numpy path

class NumpyForward:
    """Single-sample (and batch) inference in plain numpy, equal to the torch module.

    Tiny inputs make torch's per-op dispatch dominate; numpy's matmul on contiguous float32
    weights is several times faster for one sample. ``tests/test_predictor.py`` checks equality.
    """

    def __init__(self, module: nn.Module, mean_tta: float) -> None:
        sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in module.state_dict().items()}
        self.kind = architecture_of(module)["name"]
        self.mean_tta = np.float32(mean_tta)
        if self.kind == "paper":
            self.w = [np.ascontiguousarray(sd[f"fc.{i}.weight"].T) for i in range(8)]
            self.b = [sd[f"fc.{i}.bias"] for i in range(8)]
        else:
            # Fold the input standardization into fc1 and the output scaling into ``out``.
            inv = 1.0 / sd["x_std"]
            w1 = sd["fc1.weight"] * inv[None, :]
            self.w1 = np.ascontiguousarray(w1.T)
            self.b1 = sd["fc1.bias"] - w1 @ sd["x_mean"]
            self.w2 = np.ascontiguousarray(sd["fc2.weight"].T)
            self.b2 = sd["fc2.bias"]
            scale = np.concatenate([sd["y_std"], sd["t_stats"][1:2]])
            shift = np.concatenate([sd["y_mean"], sd["t_stats"][0:1]])
            self.w3 = np.ascontiguousarray((sd["out.weight"] * scale[:, None]).T)
            self.b3 = sd["out.bias"] * scale + shift

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (B, 904) float32 (frames flattened in order) -> (targets (B, 226), tta (B,))."""
        if self.kind == "paper":
            return self._paper(x), np.full(len(x), self.mean_tta, np.float32)
        last = x[:, IN_DIM - OUT_DIM:]
        feats = np.concatenate([last, (x[:, :IN_DIM - OUT_DIM].reshape(len(x), 3, OUT_DIM)
                                       - last[:, None]).reshape(len(x), -1)], axis=1)
        h = np.maximum(feats @ self.w1 + self.b1, 0.0)
        h = np.maximum(h @ self.w2 + self.b2, 0.0)
        out = h @ self.w3 + self.b3
        return last + out[:, :OUT_DIM], out[:, OUT_DIM]

    def _paper(self, x: np.ndarray) -> np.ndarray:
        h = x
        h4 = None
        for i in range(6):
            z = h @ self.w[i] + self.b[i]
            if i == 5:
                z += h4
            h = np.tanh(z)
            if i == 3:
                h4 = h
        return (h @ self.w[6] + self.b[6]) @ self.w[7] + self.b[7]


# ---------------------------------------------------------------------------------- the wrapper

@dataclass(frozen=True)
class Prediction:
    """The predicted target face and the predicted time from the last input frame to the apex."""

    target: np.ndarray       # (113, 2) metric
    time_to_apex: float      # seconds, >= 0


class ExpressionPredictor:
    """What the pipeline and the ``expression_predictor`` node call."""

    def __init__(self, module: nn.Module, card: dict[str, Any],
                 random_faces: np.ndarray | None = None) -> None:
        self.module = module.eval()
        self.card = card
        self.random_faces = (np.zeros((0, N_LANDMARKS, 2), np.float32) if random_faces is None
                             else np.asarray(random_faces, np.float32))
        self.mean_tta = float(card.get("time_to_apex_mean_s", 0.0))
        self.fast = NumpyForward(module, self.mean_tta)

    @property
    def architecture(self) -> str:
        return str(self.card["architecture"]["name"])

    # -- inference
    def predict(self, frames: np.ndarray) -> Prediction:
        """Four (113, 2|3) metric frames, oldest first -> :class:`Prediction` (numpy fast path)."""
        x = _check_frames(frames)
        target, tta = self.fast(x.reshape(1, IN_DIM))
        return Prediction(target=target.reshape(N_LANDMARKS, 2), time_to_apex=max(float(tta[0]), 0.0))

    def predict_batch(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4, 113, 2) -> (targets (N, 113, 2), time_to_apex (N,) s, clipped at 0)."""
        x = np.asarray(frames, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (N_INPUT, N_LANDMARKS, 2):
            raise InputError(f"predictor batch must be (N, 4, 113, 2), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise InputError("predictor input contains NaN or inf")
        target, tta = self.fast(x.reshape(len(x), IN_DIM))
        return target.reshape(len(x), N_LANDMARKS, 2), np.maximum(tta, 0.0)

    def predict_torch(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Same as :meth:`predict_batch` through the torch module (reference for the fast path)."""
        x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
        with torch.no_grad():
            if isinstance(self.module, DeltaPredictor):
                target, tta = self.module.decode(x, self.module.raw(x))
                return target.numpy(), np.maximum(tta.numpy(), 0.0)
            target = self.module(x).numpy()
        return target, np.full(len(target), max(self.mean_tta, 0.0), np.float32)

    # -- files
    def save(self, directory: str | Path) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        tensors[BANK_KEY] = torch.from_numpy(np.ascontiguousarray(self.random_faces))
        tmp = out / (WEIGHTS_FILE + ".tmp")
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
        tmp.replace(out / WEIGHTS_FILE)
        card_tmp = out / (CARD_FILE + ".tmp")
        card_tmp.write_text(json.dumps(self.card, indent=2, sort_keys=True) + "\n")
        card_tmp.replace(out / CARD_FILE)
        return out

    @classmethod
    def load(cls, directory: str | Path | None = None) -> "ExpressionPredictor":
        """Load a model directory (``None``: the shipped default); SchemaError on any mismatch."""
        path = Path(directory) if directory is not None else default_model_dir()
        card = _read_card(path)
        module = build_module(card["architecture"])
        try:
            tensors = load_numpy(str(path / WEIGHTS_FILE))
        except FileNotFoundError as exc:
            raise InputError(f"predictor weights missing: {path / WEIGHTS_FILE}") from exc
        except Exception as exc:  # safetensors raises its own error types on corrupt files
            raise SchemaError(f"cannot read predictor weights {path / WEIGHTS_FILE}: {exc}") from exc
        bank = tensors.pop(BANK_KEY, None)
        try:
            module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
        except RuntimeError as exc:
            raise SchemaError(f"predictor weights in {path} do not match their card: {exc}") from exc
        return cls(module, card, bank)


def _read_card(path: Path) -> dict[str, Any]:
    card_file = path / CARD_FILE
    if not card_file.is_file():
        raise InputError(f"no predictor model in {path} (missing {CARD_FILE})")
    try:
        card = json.loads(card_file.read_text())
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{card_file} is not valid JSON: {exc}") from exc
    if card.get("format") != FORMAT or int(card.get("format_version", -1)) != FORMAT_VERSION:
        raise SchemaError(f"{card_file}: not an {FORMAT} v{FORMAT_VERSION} model card")
    expected = schema_signature()
    if card.get("input_schema") != expected:
        raise SchemaError(f"{card_file}: input schema {card.get('input_schema')} does not match "
                          f"this code's {expected}")
    return card


def _check_frames(frames: np.ndarray) -> np.ndarray:
    x = np.asarray(frames, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] != N_INPUT or x.shape[1] != N_LANDMARKS or x.shape[2] not in (2, 3):
        raise InputError(f"predictor input must be (4, 113, 2|3), got {x.shape}")
    x = np.ascontiguousarray(x[..., :2])
    if not np.all(np.isfinite(x)):
        raise InputError("predictor input contains NaN or inf")
    return x


def new_card(module: nn.Module, **extra: Any) -> dict[str, Any]:
    """A model card skeleton for ``module``; trainers fill data, training and metrics."""
    card = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "architecture": architecture_of(module), "input_schema": schema_signature()}
    card.update(extra)
    return card
