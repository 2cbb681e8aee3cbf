"""The predictor's torch modules: what ``emo train predictor`` trains (needs the [train] extra).

Inference never builds them: :class:`~emo_core.anticipation.predictor.ExpressionPredictor` runs the
weights from the safetensors file in numpy (``NumpyForward``), and builds these modules only for
training and for the torch reference paths (``predict_torch``, ``confidence_torch``) that the
tests compare the numpy path with. Architectures and file format: see ``predictor.py``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError, SchemaError
from ..schema import N_LANDMARKS
from .shapes import (ARCHITECTURES, FEAT_DIM, IN_DIM, OUT_DIM, PAPER_WIDTHS, RELATIVE_FEATURES,
                     rest_scale_np)

def rest_scale_torch(rest: torch.Tensor) -> torch.Tensor:
    """:func:`rest_scale_np` in torch: (B, 113, 2) -> (B,)."""
    c = rest - rest.mean(dim=1, keepdim=True)
    return (c * c).sum(dim=2).mean(dim=1).sqrt()


class PaperPredictor(nn.Module):
    """The paper's reference: 8 FC layers, tanh on the first six, skip from layer 4 to layer 6."""

    def __init__(self, widths: tuple[int, ...] = PAPER_WIDTHS) -> None:
        super().__init__()
        if len(widths) != 7 or widths[3] != widths[5]:
            raise SchemaError("paper predictor needs 7 hidden widths with layer 4 == layer 6")
        dims = (IN_DIM, *widths, OUT_DIM)
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor, rest: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 4, 113, 2) -> (B, 113, 2); the paper's model does not use the resting face."""
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
    """Improved variant: the resting face as context, motion features, displacement output.

    Features: the 4 frames minus the resting face (where the face has moved so far, and how fast)
    and the resting face itself (whose geometry shapes how an expression displaces it), each
    standardized with training statistics. Output: the target as the mean of the 4 input frames
    (a less noisy "now" than the last frame alone) plus a displacement in one global scale, and
    the standardized time to the apex. Trained with an L1 loss: the metric is an MAE.
    """

    # Declared so the type checker sees the register_buffer() tensors as tensors: nn.Module's
    # __getattr__ is typed ``Tensor | Module``. Annotations only; the buffers are still registered.
    x_mean: torch.Tensor
    x_std: torch.Tensor
    y_mean: torch.Tensor
    y_scale: torch.Tensor
    t_stats: torch.Tensor

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.hidden = hidden
        self.fc1 = nn.Linear(FEAT_DIM, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, OUT_DIM + 1)
        self.register_buffer("x_mean", torch.zeros(FEAT_DIM))
        self.register_buffer("x_std", torch.ones(FEAT_DIM))
        self.register_buffer("y_mean", torch.zeros(OUT_DIM))
        self.register_buffer("y_scale", torch.ones(1))
        self.register_buffer("t_stats", torch.tensor([0.0, 1.0]))

    @staticmethod
    def features(x: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        """(B, 4, 113, 2) + (B, 113, 2) -> (B, 1130): frames minus rest, then the rest face."""
        return torch.cat([(x - rest[:, None]).reshape(len(x), -1), rest.reshape(len(x), -1)], dim=1)

    def raw(self, x: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        """Network output in standardized units: (B, 227) = displacement (226) + time (1)."""
        z = (self.features(x, rest) - self.x_mean) / self.x_std
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(z)))))

    def decode(self, x: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        base = x.mean(dim=1).reshape(len(x), -1)
        target = base + raw[:, :OUT_DIM] * self.y_scale + self.y_mean
        tta = raw[:, OUT_DIM] * self.t_stats[1] + self.t_stats[0]
        return target.reshape(len(x), N_LANDMARKS, 2), tta

    def target_and_time(self, x: torch.Tensor, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 4, 113, 2) + (B, 113, 2) -> target faces (B, 113, 2) and time to apex (B,) as trained."""
        return self.decode(x, self.raw(x, rest))

    def forward(self, x: torch.Tensor, rest: torch.Tensor | None = None) -> torch.Tensor:
        if rest is None:
            raise InputError("the delta predictor needs the resting face")
        return self.target_and_time(x, rest)[0]

    def set_normalization(self, x: np.ndarray, rest: np.ndarray, y: np.ndarray, tta: np.ndarray) -> None:
        """Standardization statistics from training pairs (x (n,4,113,2), rest, y (n,113,2), tta (n,))."""
        with torch.no_grad():
            feats = self.features(torch.from_numpy(np.ascontiguousarray(x, np.float32)),
                                  torch.from_numpy(np.ascontiguousarray(rest, np.float32))).numpy()
            disp = (y.reshape(len(y), -1) - x.mean(axis=1).reshape(len(x), -1)).astype(np.float64)
            std = feats.std(axis=0)
            # Floor each feature's scale at 10 % of its group's median so still points are not blown up.
            for lo, hi in ((0, IN_DIM), (IN_DIM, FEAT_DIM)):
                std[lo:hi] = np.maximum(std[lo:hi], 0.1 * float(np.median(std[lo:hi])) + 1e-8)
            self.x_mean.copy_(torch.from_numpy(feats.mean(0)))
            self.x_std.copy_(torch.from_numpy(std.astype(np.float32)))
            self.y_mean.copy_(torch.from_numpy(disp.mean(0).astype(np.float32)))
            self.y_scale.fill_(max(float((disp - disp.mean(0)).std()), 1e-6))
            self.t_stats.copy_(torch.tensor([float(tta.mean()), max(float(tta.std()), 1e-3)]))


class RelativePredictor(DeltaPredictor):
    """Identity-free variant: sees each face only relative to the person's own resting face and size.

    Features: ``(frames - rest) / s`` (904), ``s`` = :func:`rest_scale_np` of the resting face; the
    absolute rest face (identity) is no input, so a new person's neutral is the same input as any
    training person's neutral. Output: the mean of the 4 frames plus ``s`` x a displacement, and
    the time to apex. The displacement head is *anchored at zero motion*: it outputs
    ``net(z) - net(z_still)`` with ``z_still`` the standardized all-zero feature vector, so frames
    equal to the resting face predict exactly the resting face (training also mixes in still
    pairs from each video's pre-onset frames, so jitter around the rest stays near zero).

    Confidence (:class:`OodConfidence` buffers): how typical the standardized features are of the
    training pairs -- a Mahalanobis distance in the top ``ood_components`` principal components
    plus the residual outside them -- mapped to a blend weight by a monotone table calibrated on
    held-out pairs (``train.calibrate_confidence``).
    """

    # The buffers below, declared for the type checker (see DeltaPredictor).
    ood_basis: torch.Tensor
    ood_var: torch.Tensor
    ood_resid: torch.Tensor
    conf_score: torch.Tensor
    conf_value: torch.Tensor

    def __init__(self, hidden: int = 64, ood_components: int = 16, conf_knots: int = 12) -> None:
        nn.Module.__init__(self)
        self.hidden = hidden
        self.ood_components = ood_components
        self.conf_knots = conf_knots
        self.fc1 = nn.Linear(IN_DIM, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, OUT_DIM + 1)
        self.register_buffer("x_mean", torch.zeros(IN_DIM))
        self.register_buffer("x_std", torch.ones(IN_DIM))
        self.register_buffer("y_mean", torch.zeros(OUT_DIM))     # stays 0: no motion -> no displacement
        self.register_buffer("y_scale", torch.ones(1))
        self.register_buffer("t_stats", torch.tensor([0.0, 1.0]))
        # Distance from the training distribution, in the standardized feature space.
        self.register_buffer("ood_basis", torch.zeros(IN_DIM, ood_components))   # orthonormal columns
        self.register_buffer("ood_var", torch.ones(ood_components))              # variance along each
        self.register_buffer("ood_resid", torch.ones(1))                         # mean residual |z|^2
        # Calibration table: score knots (increasing) -> confidence (non-increasing), linear between.
        self.register_buffer("conf_score", torch.linspace(0.0, 1.0, conf_knots))
        self.register_buffer("conf_value", torch.ones(conf_knots))

    @staticmethod
    def features(x: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        """(B, 4, 113, 2) + (B, 113, 2) -> (B, 904): (frames - rest) / rest scale."""
        s = rest_scale_torch(rest).clamp_min(1e-6)
        return (x - rest[:, None]).reshape(len(x), -1) / s[:, None]

    def _net(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(z)))))

    def raw(self, x: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        z = (self.features(x, rest) - self.x_mean) / self.x_std
        out = self._net(z)
        still = self._net((-self.x_mean / self.x_std)[None])          # the zero-motion input
        anchor = torch.cat([still[:, :OUT_DIM], torch.zeros_like(still[:, OUT_DIM:])], dim=1)
        return out - anchor

    def target_and_time(self, x: torch.Tensor, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.raw(x, rest)
        s = rest_scale_torch(rest).clamp_min(1e-6)
        base = x.mean(dim=1).reshape(len(x), -1)
        target = base + (raw[:, :OUT_DIM] * self.y_scale + self.y_mean) * s[:, None]
        tta = raw[:, OUT_DIM] * self.t_stats[1] + self.t_stats[0]
        return target.reshape(len(x), N_LANDMARKS, 2), tta

    def decode(self, x: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise InputError("the relative predictor decodes with the rest face: use target_and_time")

    def ood_score(self, x: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        """(B,) distance from the training pairs (about 1 on them): see :meth:`OodConfidence`."""
        z = (self.features(x, rest) - self.x_mean) / self.x_std
        proj = z @ self.ood_basis
        resid = (z * z).sum(dim=1) - (proj * proj).sum(dim=1)
        return 0.5 * ((proj * proj / self.ood_var).mean(dim=1) + resid.clamp_min(0) / self.ood_resid[0])

    def confidence(self, score: torch.Tensor | np.ndarray) -> np.ndarray:
        """Calibrated confidence in [0, 1] for OOD scores (the card's table, linear between knots)."""
        sc = np.asarray(score.detach().numpy() if isinstance(score, torch.Tensor) else score, np.float64)
        return np.interp(sc, self.conf_score.numpy().astype(np.float64),
                         self.conf_value.numpy().astype(np.float64)).astype(np.float32)

    def set_normalization(self, x: np.ndarray, rest: np.ndarray, y: np.ndarray, tta: np.ndarray) -> None:
        """Standardization and OOD statistics from training pairs (in the identity-free features)."""
        with torch.no_grad():
            xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
            rt = torch.from_numpy(np.ascontiguousarray(rest, np.float32))
            feats = self.features(xt, rt).numpy().astype(np.float64)
            s = rest_scale_np(rest).astype(np.float64)
            disp = (y.reshape(len(y), -1) - x.mean(axis=1).reshape(len(x), -1)) / s[:, None]
            std = feats.std(axis=0)
            std = np.maximum(std, 0.1 * float(np.median(std)) + 1e-8)
            self.x_mean.copy_(torch.from_numpy(feats.mean(0).astype(np.float32)))
            self.x_std.copy_(torch.from_numpy(std.astype(np.float32)))
            self.y_mean.zero_()
            self.y_scale.fill_(max(float(np.abs(disp).mean() * np.sqrt(np.pi / 2)), 1e-6))
            self.t_stats.copy_(torch.tensor([float(tta.mean()), max(float(tta.std()), 1e-3)]))
            z = (feats - feats.mean(0)) / std
            _, sing, vt = np.linalg.svd(z[:min(len(z), 8192)], full_matrices=False)
            k = self.ood_components
            basis = vt[:k].T
            proj = z @ basis
            var = np.maximum(proj.var(axis=0), 1e-8)
            resid = np.maximum((z * z).sum(1) - (proj * proj).sum(1), 0.0).mean()
            self.ood_basis.copy_(torch.from_numpy(basis.astype(np.float32)))
            self.ood_var.copy_(torch.from_numpy(var.astype(np.float32)))
            self.ood_resid.fill_(max(float(resid), 1e-6))

    def set_calibration(self, score: np.ndarray, value: np.ndarray) -> None:
        if len(score) != self.conf_knots or len(value) != self.conf_knots:
            raise InputError(f"calibration needs {self.conf_knots} knots")
        with torch.no_grad():
            self.conf_score.copy_(torch.from_numpy(np.asarray(score, np.float32)))
            self.conf_value.copy_(torch.from_numpy(np.clip(np.asarray(value, np.float32), 0.0, 1.0)))


def build_module(architecture: dict[str, Any]) -> nn.Module:
    """A fresh module from a card's ``architecture`` entry."""
    kind = architecture.get("name")
    if kind == "paper":
        return PaperPredictor(tuple(architecture.get("widths", PAPER_WIDTHS)))
    if kind == "delta":
        return DeltaPredictor(int(architecture.get("hidden", 256)))
    if kind == "relative":
        return RelativePredictor(int(architecture.get("hidden", 64)), int(architecture.get("ood_components", 16)),
                                 int(architecture.get("conf_knots", 12)))
    raise SchemaError(f"unknown predictor architecture {kind!r} (known: {', '.join(ARCHITECTURES)})")


def architecture_of(module: nn.Module) -> dict[str, Any]:
    if isinstance(module, PaperPredictor):
        widths = [layer.out_features for layer in module.fc[:-1]]
        return {"name": "paper", "widths": widths, "activations": "tanh x6, skip 4->6",
                "outputs": ["target"]}
    if isinstance(module, RelativePredictor):
        return {"name": "relative", "hidden": module.hidden, "activations": "relu x2",
                "inputs": [RELATIVE_FEATURES], "outputs": ["target", "time_to_apex", "confidence"],
                "ood_components": module.ood_components, "conf_knots": module.conf_knots,
                "still_anchor": "displacement = net(z) - net(z at frames == rest)"}
    if isinstance(module, DeltaPredictor):
        return {"name": "delta", "hidden": module.hidden, "activations": "relu x2",
                "inputs": ["frames - rest", "rest"], "outputs": ["target", "time_to_apex"]}
    raise SchemaError(f"not a predictor module: {type(module).__name__}")
