"""Expression predictor: 4 frames after the peak activation -> the target face (+ time to apex).

Two architectures share one file format and one inference API:

* ``paper`` -- the Emo paper's reference (Fig. 7B): 8 fully connected layers on the flattened
  4x113x2 input, tanh after the first six, a skip connection from layer 4 to layer 6, 226 outputs
  (absolute target landmarks). The paper gives no layer widths; we use
  904-1024-1024-512-512-512-512-256-226 (layer 4's output is added to layer 6's pre-activation,
  so both are 512 wide). It has no time-to-apex output; its cards carry the training set's mean
  time-to-apex, which the wrapper returns as a constant.
* ``delta`` -- our improved variant. It also takes the person's **resting face** (the detector
  calibrates one live; the dataset has the first five frames), because "how far has this face
  moved from *its* neutral" is what reveals an expression early, and identity differences swamp it
  otherwise. Features: the 4 frames minus the rest face, and the rest face, standardized with
  training statistics. It predicts a *displacement* from the mean of the 4 frames (so "no motion"
  is mimicry, the strong baseline, and the network learns only the remainder) in one global
  scale with an L1 loss (the metric is an MAE), and from the same trunk the time from the last
  input frame to the apex. Small (1130-256-256-227, ReLU) so the single-sample numpy path runs in
  tens of microseconds.

Files: ``model.safetensors`` (weights, normalization buffers, a bank of training target faces for
the random baseline) and ``card.json`` (architecture, input schema, data fingerprint, metrics).
Loading checks the card's schema against this code and refuses mismatches with a SchemaError; no
pickle is ever read.

Inference is numpy only (:class:`NumpyForward`, built from the weights file): torch is imported
only to train and for the torch reference path, whose modules live in ``predictor_torch.py``
(their names stay importable from here, e.g. ``from .predictor import DeltaPredictor``).
"""
from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file as load_numpy

from ..errors import InputError, SchemaError
from ..optional import require_torch
from ..resources import data_path
from ..schema import MP_INDICES, N_LANDMARKS
from .confidence import blend_toward
from .dataset import N_INPUT
from .shapes import (ARCHITECTURES, FEAT_DIM, IN_DIM, OUT_DIM, PAPER_WIDTHS, RELATIVE_FEATURES,  # noqa: F401
                     rest_scale_np)

LOG = logging.getLogger(__name__)

FORMAT = "emo-predictor"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
BANK_KEY = "baseline.random_faces"




def schema_signature(rest_face: bool = False, relative: bool = False) -> dict[str, Any]:
    """The input schema a model is tied to: frames, landmark order, dims, space, rest-face input.

    ``relative`` (identity-free models) adds ``rest_relative``; older cards have no such key and
    still match the signature they were written with.
    """
    order = hashlib.sha256(MP_INDICES.astype(np.int64).tobytes()).hexdigest()[:16]
    sig = {"frames": N_INPUT, "landmarks": N_LANDMARKS, "dims": 2, "space": "metric",
           "canonical_order_sha": order, "rest_face": rest_face}
    if relative:
        sig["rest_relative"] = RELATIVE_FEATURES
    return sig




def default_model_dir() -> Path:
    """The shipped default predictor (trained on synthetic people)."""
    return data_path("predictor")


#: The torch modules and helpers, importable from here as before; they live in predictor_torch.py
#: so that importing this module (inference) never imports torch.
_TORCH_NAMES = ("PaperPredictor", "DeltaPredictor", "RelativePredictor", "rest_scale_torch", "build_module",
                "architecture_of")


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        require_torch(f"the torch predictor module ({name})")
        from . import predictor_torch

        return getattr(predictor_torch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def state_shapes(architecture: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The tensors (name -> shape) a card's ``architecture`` has in its weights file, bank excluded.

    What the loader checks a weights file against without building the torch module (the tests
    check it equals the torch module's ``state_dict``).
    """
    kind = architecture.get("name")
    if kind == "paper":
        dims = (IN_DIM, *(int(w) for w in architecture.get("widths", PAPER_WIDTHS)), OUT_DIM)
        if len(dims) != 9:
            raise SchemaError("paper predictor needs 7 hidden widths")
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            shapes[f"fc.{i}.weight"], shapes[f"fc.{i}.bias"] = (b, a), (b,)
        return shapes
    if kind not in ("delta", "relative"):
        raise SchemaError(f"unknown predictor architecture {kind!r} (known: {', '.join(ARCHITECTURES)})")
    hidden = int(architecture.get("hidden", 256 if kind == "delta" else 64))
    n_in = FEAT_DIM if kind == "delta" else IN_DIM
    shapes = {"fc1.weight": (hidden, n_in), "fc1.bias": (hidden,), "fc2.weight": (hidden, hidden),
              "fc2.bias": (hidden,), "out.weight": (OUT_DIM + 1, hidden), "out.bias": (OUT_DIM + 1,),
              "x_mean": (n_in,), "x_std": (n_in,), "y_mean": (OUT_DIM,), "y_scale": (1,), "t_stats": (2,)}
    if kind == "relative":
        k, knots = int(architecture.get("ood_components", 16)), int(architecture.get("conf_knots", 12))
        shapes.update({"ood_basis": (IN_DIM, k), "ood_var": (k,), "ood_resid": (1,),
                       "conf_score": (knots,), "conf_value": (knots,)})
    return shapes


def check_state(state: dict[str, np.ndarray], architecture: dict[str, Any], where: str) -> None:
    """SchemaError unless ``state`` holds exactly the tensors of ``architecture`` (names and shapes)."""
    expected = state_shapes(architecture)
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if missing or extra or wrong:
        detail = "; ".join(part for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"unexpected {', '.join(extra)}" if extra else "",
            ", ".join(f"{k} is {tuple(state[k].shape)}, expected {expected[k]}" for k in wrong)) if part)
        raise SchemaError(f"predictor weights in {where} do not match their card: {detail}")


# ---------------------------------------------------------------------------- fast numpy path

class NumpyForward:
    """Single-sample (and batch) inference in plain numpy, equal to the torch module.

    Tiny inputs make torch's per-op dispatch dominate; numpy's matmul on contiguous float32
    weights is several times faster for one sample. ``tests/test_predictor.py`` checks equality.
    """

    def __init__(self, state: dict[str, np.ndarray], kind: str, prior_tta: float, shrink: float = 1.0) -> None:
        """``state``: the weights file's tensors (names as in the torch module's ``state_dict``)."""
        sd = {k: np.asarray(v, np.float32) for k, v in state.items()}
        self.kind = kind
        self.prior_tta = np.float32(prior_tta)
        if self.kind == "relative":
            self._init_relative(sd, prior_tta, shrink)
            return
        if self.kind == "paper":
            self.w = [np.ascontiguousarray(sd[f"fc.{i}.weight"].T) for i in range(8)]
            self.b = [sd[f"fc.{i}.bias"] for i in range(8)]
            return
        # Fold the input standardization into fc1 and the output scaling into ``out``. The features
        # are (frames - rest, rest); fc1 is linear, so it acts on [frames, rest] directly once the
        # frame blocks' sum is moved into the rest part: no feature copy, one matmul.
        inv = 1.0 / sd["x_std"]
        w1 = sd["fc1.weight"] * inv[None, :]                       # (H, 1130)
        frames_part = w1[:, :IN_DIM]
        rest_part = w1[:, IN_DIM:] - frames_part.reshape(len(w1), N_INPUT, OUT_DIM).sum(axis=1)
        self.w1 = np.ascontiguousarray(np.concatenate([frames_part, rest_part], axis=1).T)  # (1130, H)
        self.b1 = (sd["fc1.bias"] - w1 @ sd["x_mean"]).astype(np.float32)
        self.quarter = np.full((1, N_INPUT), 0.25, np.float32)      # mean of the 4 frames, as a matmul
        self.w2 = np.ascontiguousarray(sd["fc2.weight"].T)
        self.b2 = sd["fc2.bias"]
        scale = np.concatenate([np.repeat(sd["y_scale"], OUT_DIM), sd["t_stats"][1:2]])
        shift = np.concatenate([sd["y_mean"], sd["t_stats"][0:1]])
        w3 = sd["out.weight"] * scale[:, None]
        b3 = sd["out.bias"] * scale + shift
        # Time head shrunk toward the prior: tta = prior + shrink * (head - prior).
        w3[OUT_DIM] *= shrink
        b3[OUT_DIM] = shrink * b3[OUT_DIM] + (1.0 - shrink) * prior_tta
        self.w3 = np.ascontiguousarray(w3.T)
        self.b3 = b3.astype(np.float32)

    def _init_relative(self, sd: dict[str, np.ndarray], prior_tta: float, shrink: float) -> None:
        # Features z = ((frames - rest) / s - mean) / std. fc1 and the OOD projection are linear in
        # q = frames - rest, so both are one matrix on q and the per-sample 1/s scales the product:
        # one matmul for both. (q is formed first: fc1 on [frames, rest] would subtract two large
        # products of small standardized motions, losing float32 digits -- 2.7e-5 s on the time.)
        hidden = len(sd["fc1.bias"])
        inv = (1.0 / sd["x_std"]).astype(np.float64)
        mean = sd["x_mean"].astype(np.float64)
        w1 = sd["fc1.weight"].astype(np.float64) * inv[None, :]                    # (H, 904)
        basis = sd["ood_basis"].astype(np.float64)                                 # (904, k)
        wp = (basis * inv[:, None]).T                                              # (k, 904)
        rows = np.concatenate([w1, wp], axis=0)                                    # (H + k, 904)
        self.w1 = np.ascontiguousarray(rows.T.astype(np.float32))                 # (904, H + k)
        b1 = sd["fc1.bias"].astype(np.float64) - w1 @ mean
        bp = -(mean * inv) @ basis
        self.b1 = np.concatenate([b1, bp]).astype(np.float32)
        self.hidden = hidden
        self.quarter = np.full((1, N_INPUT), 0.25, np.float32)
        self.w2 = np.ascontiguousarray(sd["fc2.weight"].T)
        self.b2 = sd["fc2.bias"]
        # Zero-motion anchor (RelativePredictor.raw): subtract the network's output at z_still.
        still = _relu_mlp(sd, -mean * inv)
        b3 = sd["out.bias"].astype(np.float64).copy()
        b3[:OUT_DIM] -= still[:OUT_DIM]
        scale = np.concatenate([np.repeat(sd["y_scale"].astype(np.float64), OUT_DIM), sd["t_stats"][1:2]])
        shift = np.concatenate([sd["y_mean"].astype(np.float64), sd["t_stats"][0:1]])
        w3 = sd["out.weight"].astype(np.float64) * scale[:, None]
        b3 = b3 * scale + shift
        w3[OUT_DIM] *= shrink
        b3[OUT_DIM] = shrink * b3[OUT_DIM] + (1.0 - shrink) * prior_tta
        self.w3 = np.ascontiguousarray(w3.T.astype(np.float32))
        self.b3 = b3.astype(np.float32)
        # |z|^2 = |q|^2 / s^2 - 2 q.m / s + |m|^2 with q = (frames - rest) / std and m = mean / std.
        self.z_inv = inv.astype(np.float32)
        self.z_m = (mean * inv).astype(np.float32)
        self.z_mm = np.float32((mean * inv) @ (mean * inv))
        self.avg = np.zeros((OUT_DIM, 2), np.float32)              # centroid of a face, as a matmul
        self.avg[0::2, 0] = self.avg[1::2, 1] = 1.0 / N_LANDMARKS
        self.ood_inv_var = (1.0 / sd["ood_var"]).astype(np.float32)
        self.ood_inv_resid = np.float32(1.0 / float(sd["ood_resid"][0]))
        self.ood_w = (self.ood_inv_var / len(self.ood_inv_var)).astype(np.float32)   # mean_k p_k^2 / var_k
        self.ones_k = np.ones(len(self.ood_inv_var), np.float32)
        self.conf_score = sd["conf_score"].astype(np.float64)
        self.conf_value = sd["conf_value"].astype(np.float64)

    def _relative(self, x: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        centre = rest @ self.avg                                                         # (B, 2)
        s2 = np.einsum("ij,ij->i", rest, rest) * (1.0 / N_LANDMARKS) - np.einsum("ij,ij->i", centre, centre)
        inv_s = 1.0 / np.sqrt(np.maximum(s2, 1e-12))                                       # (B,) 1 / rest scale
        q = (x.reshape(len(x), N_INPUT, OUT_DIM) - rest[:, None]).reshape(len(x), IN_DIM)
        hall = q @ self.w1
        hall *= inv_s[:, None]
        hall += self.b1
        out = self._trunk(hall[:, :self.hidden])
        target = out[:, :OUT_DIM] * (1.0 / inv_s)[:, None] + self._mean_frame(x)
        # Confidence: OOD score of the standardized features, through the calibration table.
        proj = hall[:, self.hidden:]
        q *= self.z_inv
        zz = (np.einsum("ij,ij->i", q, q) * inv_s - 2.0 * (q @ self.z_m)) * inv_s + self.z_mm
        pp = proj * proj
        resid = np.maximum(zz - pp @ self.ones_k, 0.0)
        score = 0.5 * (pp @ self.ood_w + resid * self.ood_inv_resid)
        conf = np.interp(score, self.conf_score, self.conf_value).astype(np.float32)
        return target, out[:, OUT_DIM], conf

    def forward3(self, x: np.ndarray, rest: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like ``__call__`` plus the confidence (B,): 1 for architectures without one."""
        if self.kind == "relative":
            return self._relative(x, self._rest_of(rest))
        target, tta = self(x, rest)
        return target, tta, np.ones(len(x), np.float32)

    def __call__(self, x: np.ndarray, rest: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """x (B, 904) float32 frames (flattened, oldest first), rest (B, 226) -> (targets (B, 226), tta (B,))."""
        if self.kind == "relative":
            return self._relative(x, self._rest_of(rest))[:2]
        if self.kind == "paper":
            return self._paper(x), np.full(len(x), self.prior_tta, np.float32)
        h = np.concatenate((x, self._rest_of(rest)), axis=1) @ self.w1
        h += self.b1
        out = self._trunk(h)
        return out[:, :OUT_DIM] + self._mean_frame(x), out[:, OUT_DIM]

    def _rest_of(self, rest: np.ndarray | None) -> np.ndarray:
        """The rest face the delta/relative networks need: a clear error instead of numpy's on None."""
        if rest is None:
            raise InputError(f"the {self.kind} predictor needs the resting face")
        return rest

    def _trunk(self, h: np.ndarray) -> np.ndarray:
        """The delta/relative MLP after its first layer: ReLU, layer 2, ReLU, output (in place on ``h``)."""
        np.maximum(h, 0.0, out=h)
        h = h @ self.w2
        h += self.b2
        np.maximum(h, 0.0, out=h)
        out = h @ self.w3
        out += self.b3
        return out

    def _mean_frame(self, x: np.ndarray) -> np.ndarray:
        """(B, 226) mean of the 4 input frames: the output's "no motion" base."""
        return (self.quarter @ x.reshape(len(x), N_INPUT, OUT_DIM))[:, 0]

    def _paper(self, x: np.ndarray) -> np.ndarray:
        h = x
        h4: np.ndarray | None = None
        for i in range(6):
            z = h @ self.w[i] + self.b[i]
            if i == 5:
                assert h4 is not None, "set at i == 3, before the skip is added at i == 5"
                z += h4
            h = np.tanh(z)
            if i == 3:
                h4 = h
        return (h @ self.w[6] + self.b[6]) @ self.w[7] + self.b[7]


def _relu_mlp(sd: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    """The delta/relative network (fc1, ReLU, fc2, ReLU, out) on one standardized input, in float64."""
    h = np.maximum(sd["fc1.weight"].astype(np.float64) @ z + sd["fc1.bias"], 0.0)
    h = np.maximum(sd["fc2.weight"].astype(np.float64) @ h + sd["fc2.bias"], 0.0)
    return sd["out.weight"].astype(np.float64) @ h + sd["out.bias"]


# ---------------------------------------------------------------------------------- the wrapper

@dataclass(frozen=True)
class Prediction:
    """The predicted target face and the predicted time from the last input frame to the apex."""

    target: np.ndarray       # (113, 2) metric
    time_to_apex: float      # seconds, >= 0
    #: How far to trust ``target`` over mimicry, in [0, 1] (calibrated on held-out data; 1 for
    #: models without a confidence). A consumer can blend: ``now + confidence * (target - now)``.
    confidence: float = 1.0

    def blended(self, now: np.ndarray) -> np.ndarray:
        """``now + confidence * (target - now)``: toward mimicry (the face ``now``) as confidence falls."""
        return blend_toward(now, self.target, self.confidence)



class ExpressionPredictor:
    """What the pipeline and the ``expression_predictor`` node call.

    ``predict(frames, rest)`` takes the detector's 4-frame window (oldest first) and the resting
    face it calibrated (``PeakEvent.window`` / ``PeakEvent.rest``; :meth:`predict_event` does
    exactly that). The paper architecture ignores ``rest``; the delta model requires it.

    Built either from a trained torch ``module`` (training) or from the weights file's tensors
    (``state``, what :meth:`load` does): inference runs in numpy either way, and the torch module
    of a loaded model is built only when :attr:`module` is asked for (the torch reference path).
    """

    def __init__(self, module: Any | None, card: dict[str, Any], random_faces: np.ndarray | None = None,
                 state: dict[str, np.ndarray] | None = None) -> None:
        if module is not None:
            module.eval()
            state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
        elif state is None:
            raise InputError("ExpressionPredictor needs a torch module or the weights' tensors")
        self._module = module
        self._state = state
        self.card = card
        self.random_faces = (np.zeros((0, N_LANDMARKS, 2), np.float32) if random_faces is None
                             else np.asarray(random_faces, np.float32))
        self.prior_tta = float(card.get("time_to_apex_prior_s", 0.0))
        #: Calibrated on the validation split after training: 0 = the prior, 1 = the head as trained.
        self.tta_shrink = float(card.get("time_to_apex_shrink", 1.0))
        self.fast = NumpyForward(state, self.architecture, self.prior_tta, self.tta_shrink)

    @property
    def module(self) -> Any:
        """The torch module (built from the weights on first use; needs the [train] extra)."""
        if self._module is None:
            torch = require_torch("the torch predictor (reference path)")
            from .predictor_torch import build_module

            module = build_module(self.card["architecture"])
            module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self._state.items()},
                                   strict=True)
            self._module = module.eval()
        return self._module

    @property
    def architecture(self) -> str:
        return str(self.card["architecture"]["name"])

    @property
    def needs_rest(self) -> bool:
        return self.architecture in ("delta", "relative")

    # -- inference
    def predict(self, frames: np.ndarray, rest: np.ndarray | None = None) -> Prediction:
        """Four (113, 2|3) metric frames (oldest first) and the (113, 2|3) resting face -> Prediction."""
        x = _check_frames(frames, check_finite=False)
        r = self._check_rest(rest, 1, check_finite=False)
        # One sum per input instead of an elementwise isfinite: NaN/inf make the sum non-finite
        # (so would values beyond 1e38, which are no face either). This is the hot path.
        if not math.isfinite(float(x.sum()) + (0.0 if r is None else float(r.sum()))):
            raise InputError("predictor input (frames or rest face) contains NaN or inf")
        target, tta, conf = self.fast.forward3(x.reshape(1, IN_DIM), r)
        t = float(tta[0])
        return Prediction(target=target.reshape(N_LANDMARKS, 2), time_to_apex=t if t > 0.0 else 0.0,
                          confidence=float(conf[0]))

    def predict_event(self, event: Any) -> Prediction:
        """Prediction for a detector :class:`~emo_core.anticipation.detector.PeakEvent`."""
        return self.predict(event.window, event.rest)

    def predict_batch(self, frames: np.ndarray, rest: np.ndarray | None = None,
                      with_confidence: bool = False) -> tuple[np.ndarray, ...]:
        """(N, 4, 113, 2) frames + (N, 113, 2) rest faces -> (targets (N, 113, 2), time_to_apex (N,) s >= 0),
        plus the confidence (N,) in [0, 1] with ``with_confidence``."""
        x = np.asarray(frames, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (N_INPUT, N_LANDMARKS, 2):
            raise InputError(f"predictor batch must be (N, 4, 113, 2), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise InputError("predictor input contains NaN or inf")
        r = self._check_rest(rest, len(x))
        target, tta, conf = self.fast.forward3(np.ascontiguousarray(x.reshape(len(x), IN_DIM)), r)
        if with_confidence:
            return target.reshape(len(x), N_LANDMARKS, 2), np.maximum(tta, 0.0), conf
        return target.reshape(len(x), N_LANDMARKS, 2), np.maximum(tta, 0.0)

    def predict_torch(self, frames: np.ndarray, rest: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Same as :meth:`predict_batch` through the torch module (reference for the fast path)."""
        torch = require_torch("the torch reference path")
        from .predictor_torch import DeltaPredictor

        x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
        r = self._check_rest(rest, len(x))
        with torch.no_grad():
            if isinstance(self.module, DeltaPredictor):
                assert r is not None, "a delta predictor needs_rest, so _check_rest returned it"
                rt = torch.from_numpy(r.reshape(len(x), N_LANDMARKS, 2))
                target, tta_raw = self.module.target_and_time(x, rt)
                tta = self.prior_tta + self.tta_shrink * (tta_raw.numpy() - self.prior_tta)
                return target.numpy(), np.maximum(tta, 0.0)
            target = self.module(x).numpy()
        return target, np.full(len(target), max(self.prior_tta, 0.0), np.float32)

    def confidence_torch(self, frames: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """Confidence (N,) through the torch module (reference for the fast path); ones without one."""
        torch = require_torch("the torch reference path")
        from .predictor_torch import RelativePredictor

        if not isinstance(self.module, RelativePredictor):
            return np.ones(len(frames), np.float32)
        x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
        checked = self._check_rest(rest, len(x))
        assert checked is not None, "a relative predictor needs_rest, so _check_rest returned it"
        r = torch.from_numpy(checked.reshape(len(x), N_LANDMARKS, 2))
        with torch.no_grad():
            return self.module.confidence(self.module.ood_score(x, r))

    def _check_rest(self, rest: np.ndarray | None, n: int, check_finite: bool = True) -> np.ndarray | None:
        if not self.needs_rest:
            return None
        if rest is None:
            raise InputError("this predictor needs the resting face (PeakEvent.rest)")
        r = np.asarray(rest, dtype=np.float32)
        if r.shape[-1] == 3 and r.shape[-2:] == (N_LANDMARKS, 3):
            r = r[..., :2]
        if r.shape == (N_LANDMARKS, 2):
            r = r.reshape(1, OUT_DIM) if n == 1 else np.broadcast_to(r.reshape(1, OUT_DIM), (n, OUT_DIM))
        elif r.shape == (n, N_LANDMARKS, 2):
            r = r.reshape(n, OUT_DIM)
        else:
            raise InputError(f"rest face must be (113, 2) or ({n}, 113, 2), got {np.shape(rest)}")
        if check_finite and not np.isfinite(r).all():
            raise InputError("rest face contains NaN or inf")
        return r if r.flags.c_contiguous else np.ascontiguousarray(r)

    # -- files
    def save(self, directory: str | Path, writer: Any = None) -> Path:
        """Write the model directory as a whole (emo_core.modeldir): it replaces ``directory`` --
        an old detector scorer in it included -- unless ``writer`` (a ModelDirWriter) collects this
        model with others (the scorer) into one save."""
        torch = require_torch("saving a predictor")
        from safetensors.torch import save as to_bytes

        from ..modeldir import writing

        tensors = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        tensors[BANK_KEY] = torch.from_numpy(np.ascontiguousarray(self.random_faces))
        with writing(directory, writer) as w:
            w.add_file(WEIGHTS_FILE, to_bytes(tensors, metadata={"format": FORMAT}))
            w.add_card(CARD_FILE, self.card)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path | None = None) -> "ExpressionPredictor":
        """Load a model directory (``None``: the shipped default); SchemaError on any mismatch."""
        from ..modeldir import verify

        path = Path(directory) if directory is not None else default_model_dir()
        card = _read_card(path)
        verify(path, card, CARD_FILE)            # every file of the save, unmixed and undamaged
        try:
            tensors = load_numpy(str(path / WEIGHTS_FILE))
        except FileNotFoundError as exc:
            raise InputError(f"predictor weights missing: {path / WEIGHTS_FILE}") from exc
        except Exception as exc:  # safetensors raises its own error types on corrupt files
            raise SchemaError(f"cannot read predictor weights {path / WEIGHTS_FILE}: {exc}") from exc
        bank = tensors.pop(BANK_KEY, None)
        check_state(tensors, card["architecture"], str(path))
        return cls(None, card, bank, state=tensors)


def _read_card(path: Path) -> dict[str, Any]:
    from ..modeldir import read_card

    card_file = path / CARD_FILE
    card = read_card(path, CARD_FILE, "predictor model")
    if card.get("format") != FORMAT or card.get("format_version") != FORMAT_VERSION:
        raise SchemaError(f"{card_file}: not an {FORMAT} v{FORMAT_VERSION} model card")
    arch = card.get("architecture")
    if not isinstance(arch, dict):
        raise SchemaError(f"{card_file}: 'architecture' must be an object")
    name = arch.get("name")
    expected = schema_signature(rest_face=name in ("delta", "relative"), relative=name == "relative")
    if card.get("input_schema") != expected:
        raise SchemaError(f"{card_file}: input schema {card.get('input_schema')} does not match "
                          f"this code's {expected}")
    return card


def _check_frames(frames: np.ndarray, check_finite: bool = True) -> np.ndarray:
    x = np.asarray(frames, dtype=np.float32)
    if x.shape != (N_INPUT, N_LANDMARKS, 2):
        if x.shape != (N_INPUT, N_LANDMARKS, 3):
            raise InputError(f"predictor input must be (4, 113, 2|3), got {x.shape}")
        x = np.ascontiguousarray(x[..., :2])
    if check_finite and not np.isfinite(x).all():
        raise InputError("predictor input contains NaN or inf")
    return x


def new_card(module: Any, **extra: Any) -> dict[str, Any]:
    """A model card skeleton for torch ``module``; trainers fill data, training and metrics."""
    from .predictor_torch import DeltaPredictor, RelativePredictor, architecture_of

    card = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": architecture_of(module),
            "input_schema": schema_signature(rest_face=isinstance(module, DeltaPredictor),
                                             relative=isinstance(module, RelativePredictor))}
    card.update(extra)
    return card
