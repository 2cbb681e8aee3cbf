"""Learned rising-edge scorer of the causal peak-activation detector.

Why learned: on synthetic people with MediaPipe-like noise, hand-made magnitude features could not
separate an expression's first 0.1-0.4 s from talking, head turns and blinks -- at the moment the
detector must fire (before half the onset), the median expression has moved only ~3x the rest
noise, while talking and head turns reach 3-7x (see docs/anticipation.md). What separates them is
the *pattern*: which landmarks move, in which direction, and how. A tiny MLP learns that pattern.

Features of frame ``t`` (all causal):

* ``d_t``: the mean of frames t-1 and t (halves the frame jitter) minus the neutral face, with the
  median displacement over the 113 points removed (the coherent jitter of the pose normalization
  moves every point together; an expression moves a minority of them), on the 92 landmarks off
  the jaw contour (``drop_jaw``: a head turn makes the far-side contour slide -- MediaPipe tracks a
  silhouette there -- and with the contour in, head turns caused 90 % of the false triggers; the
  lips still show every jaw drop);
* ``d_t - d_{t-l}`` for each lag ``l`` in ``spec.lags``: the motion over the last l frames.

``[d_t, motions]`` -> standardize -> 64 tanh -> 1 logit: "an expression is rising now".
Training frames: positives from the expression's first movement (ground-truth intensity >= 3 % of
its peak, or the labelled onset) to its apex; negatives are distractor videos (blink, talking,
head turn, neutral) and the rest frames before an expression. Frames after the apex are left out
(the detector is disarmed then).

Inference is numpy (standardization folded into the first layer): ~10 us per frame; torch is
imported only to train (and for the torch reference path the tests compare with).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, SchemaError
from ..optional import require_torch, torch_session
from ..resources import data_path
from ..schema import N_LANDMARKS, REGIONS

LOG = logging.getLogger(__name__)

NON_JAW = np.setdiff1d(np.arange(N_LANDMARKS), REGIONS["jaw"])
FORMAT = "emo-detector-scorer"
FORMAT_VERSION = 1
WEIGHTS_FILE = "detector.safetensors"
CARD_FILE = "detector.json"


@dataclass(frozen=True)
class ScorerSpec:
    """Feature and network shape (stored in the card; changing them needs retraining)."""

    smooth_frames: int = 2
    lags: tuple[int, ...] = (3,)
    hidden: int = 64
    calibration_frames: int = 8
    drop_jaw: bool = True           # leave the jaw contour out of the features (head turns slide it)
    #: Include ``d_t`` (the displacement from the neutral) in the features. False: motion only
    #: (``d_t - d_{t-l}``), which sees the neutral only through the median point removal.
    static: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "lags", tuple(int(v) for v in self.lags))
        if self.smooth_frames < 1 or not self.lags or min(self.lags) < 1 or self.hidden < 1:
            raise SchemaError(f"invalid detector scorer spec {self}")

    @property
    def history(self) -> int:
        """Raw frames the features of one frame need."""
        return self.smooth_frames + max(self.lags)

    @property
    def points(self) -> np.ndarray:
        """Canonical landmarks the features use."""
        return NON_JAW if self.drop_jaw else np.arange(N_LANDMARKS)

    @property
    def n_features(self) -> int:
        return 2 * len(self.points) * (int(self.static) + len(self.lags))


def displacement(smoothed: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(..., 113, 2) smoothed points minus the neutral, with the median point displacement removed."""
    d = smoothed - neutral
    n = d.shape[-2]
    if n % 2:   # odd count (113): the median is one order statistic; partition is ~5x cheaper
        median = np.take(np.partition(d, n // 2, axis=-2), [n // 2], axis=-2)
    else:
        median = np.median(d, axis=-2, keepdims=True)
    return d - median


def sequence_features(xy: np.ndarray, neutral: np.ndarray, spec: ScorerSpec) -> np.ndarray:
    """Features (T, F) of a whole (T, 113, 2) sequence, exactly as the online detector computes them."""
    k = spec.smooth_frames
    padded = np.concatenate([np.repeat(xy[:1], k - 1, axis=0), xy], axis=0)
    smoothed = np.stack([padded[i:i + len(xy)] for i in range(k)]).mean(axis=0)
    d = displacement(smoothed, neutral)[:, spec.points]
    blocks = [d.reshape(len(d), -1)] if spec.static else []
    for lag in spec.lags:
        past = np.concatenate([np.repeat(d[:1], lag, axis=0), d[:-lag]], axis=0)
        blocks.append((d - past).reshape(len(d), -1))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def frame_features(d_now: np.ndarray, d_past: list[np.ndarray], static: bool = True) -> np.ndarray:
    """Online features (1, F) from the current displacement and those ``lags`` frames ago."""
    head = [d_now.reshape(-1)] if static else []
    return np.concatenate(head + [(d_now - p).reshape(-1) for p in d_past])[None]


class ExpressionScorer:
    """Numpy MLP: features (N, 452) -> probability that an expression is rising."""

    def __init__(self, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: float,
                 spec: ScorerSpec, card: dict[str, Any] | None = None) -> None:
        if w1.shape != (spec.n_features, spec.hidden) or b1.shape != (spec.hidden,) or w2.shape != (spec.hidden,):
            raise SchemaError(f"detector scorer weights do not match its spec ({spec.hidden} hidden units)")
        self.w1 = np.ascontiguousarray(w1, np.float32)
        self.b1 = np.asarray(b1, np.float32)
        self.w2 = np.asarray(w2, np.float32)
        self.b2 = np.float32(b2)
        self.spec = spec
        self.card = card or {}

    def logit(self, features: np.ndarray) -> np.ndarray:
        return np.tanh(features @ self.w1 + self.b1) @ self.w2 + self.b2

    def probability(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(features)))

    def logit_torch(self, features: np.ndarray) -> np.ndarray:
        """:meth:`logit` through torch's Linear -> Tanh -> Linear (the trained module's layers) on
        the same weights: the reference the tests hold the numpy path to ([train] extra)."""
        torch = require_torch("the torch reference path of the detector scorer")
        net = torch.nn.Sequential(torch.nn.Linear(self.spec.n_features, self.spec.hidden), torch.nn.Tanh(),
                                  torch.nn.Linear(self.spec.hidden, 1))
        with torch.no_grad():
            net[0].weight.copy_(torch.from_numpy(self.w1.T.copy()))
            net[0].bias.copy_(torch.from_numpy(self.b1))
            net[2].weight.copy_(torch.from_numpy(self.w2[None].copy()))
            net[2].bias.fill_(float(self.b2))
            return net(torch.from_numpy(np.ascontiguousarray(features, np.float32)))[:, 0].numpy()

    # -- files
    def save(self, directory: str | Path, writer: Any = None) -> Path:
        """Write the scorer as a whole model directory (emo_core.modeldir), or add it to ``writer``
        (a ModelDirWriter) so it is saved together with its predictor."""
        from safetensors.numpy import save as to_bytes

        from ..modeldir import MANIFEST_KEY, writing

        weights = to_bytes({"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": np.array([self.b2], np.float32)},
                           metadata={"format": FORMAT})
        card = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": asdict(self.spec),
                "landmarks": N_LANDMARKS} | {k: v for k, v in self.card.items()
                                             if k not in ("format", "format_version", "spec", "landmarks",
                                                          MANIFEST_KEY)}
        with writing(directory, writer) as w:
            w.add_file(WEIGHTS_FILE, weights)
            w.add_card(CARD_FILE, card)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path | None = None) -> "ExpressionScorer":
        """Load from a model directory (``None``: the shipped default next to the predictor)."""
        from safetensors.numpy import load_file

        from ..modeldir import read_card, verify

        path = Path(directory) if directory is not None else data_path("predictor")
        card_file = path / CARD_FILE
        card = read_card(path, CARD_FILE, "detector scorer")
        if card.get("format") != FORMAT or card.get("format_version") != FORMAT_VERSION \
                or card.get("landmarks") != N_LANDMARKS:
            raise SchemaError(f"{card_file}: not an {FORMAT} v{FORMAT_VERSION} card for 113 landmarks")
        verify(path, card, CARD_FILE)
        try:
            if not isinstance(card.get("spec"), dict):
                raise TypeError("'spec' is not an object")
            spec = ScorerSpec(**card["spec"])
            t = load_file(str(path / WEIGHTS_FILE))
            return cls(t["w1"], t["b1"], t["w2"], float(t["b2"][0]), spec, card)
        except FileNotFoundError as exc:
            raise InputError(f"detector scorer weights missing: {path / WEIGHTS_FILE}") from exc
        except (KeyError, TypeError) as exc:
            raise SchemaError(f"detector scorer in {path} is malformed: {exc}") from exc
        except SchemaError:
            raise
        except Exception as exc:  # safetensors' own error types on corrupt files
            raise SchemaError(f"cannot read {path / WEIGHTS_FILE}: {exc}") from exc


# ------------------------------------------------------------------------------------ training

def frame_labels(seq: Any, spec: ScorerSpec) -> tuple[np.ndarray, np.ndarray]:
    """(labels, weights) per frame: 1 from the expression's first movement to its apex."""
    n = len(seq.landmarks)
    y = np.zeros(n, np.float32)
    w = np.ones(n, np.float32)
    w[:spec.calibration_frames] = 0.0
    apex = int(getattr(seq, "apex_frame", -1))
    if apex >= 0:
        start = expression_start(seq)
        y[start:apex + 1] = 1.0
        w[apex + 1:] = 0.0
    return y, w


def expression_start(seq: Any, fraction: float = 0.03) -> int:
    """First frame of visible movement: ground-truth intensity >= ``fraction`` of its peak (or onset)."""
    onset = int(seq.onset_frame)
    intensity = np.asarray(getattr(seq, "intensity", None) if getattr(seq, "intensity", None) is not None
                           else np.full(len(seq.landmarks), np.nan))
    if not np.all(np.isfinite(intensity)) or intensity.max() <= 0:
        return onset
    return min(int(np.argmax(intensity >= fraction * intensity.max())), onset)


def add_wander(xy: np.ndarray, rms: float, frames: float, rng: np.random.Generator) -> np.ndarray:
    """(T, 113, 2) landmarks plus a slow, spatially smooth random deformation of RMS ``rms``.

    Each of 6 random smooth displacement fields over the face (Gaussian bumps around random
    landmarks) is driven by low-pass noise with time constant ``frames``; the first frames are
    not spared, so the calibrated rest is off too.
    """
    t, n = xy.shape[:2]
    out = xy.astype(np.float32).copy()
    if rms <= 0 or t < 2:
        return out
    centre = xy[0]
    scale = float(np.linalg.norm(centre - centre.mean(0), axis=1).mean())
    field = np.zeros((t, n, 2), np.float32)
    alpha = 1.0 / max(frames, 1.0)
    for _ in range(6):
        c = centre[rng.integers(n)]
        w = np.exp(-np.sum((centre - c) ** 2, axis=1) / (2 * (0.5 * scale) ** 2))[:, None]
        direction = rng.normal(size=2)
        direction /= np.linalg.norm(direction) + 1e-9
        drive = rng.normal(size=t)
        z = np.empty(t)
        acc = rng.normal() * np.sqrt(alpha / (2 - alpha))
        for i in range(t):
            acc = (1 - alpha) * acc + alpha * drive[i]
            z[i] = acc
        z /= np.sqrt(alpha / (2 - alpha))                   # unit stationary variance
        field += (z[:, None, None] * w[None] * direction[None, None]).astype(np.float32)
    d = field - np.median(field, axis=1, keepdims=True)
    cur = float(np.sqrt(np.mean(d ** 2)) ) + 1e-12
    return out + field * (rms / cur)


def train_scorer(sequences: Sequence[Any], spec: ScorerSpec | None = None, *, epochs: int = 15,
                 seed: int = 0, threads: int = 1, progress: bool = False,
                 distractor_weight: float = 1.0, wander: float = 0.0,
                 wander_s: float = 1.0) -> ExpressionScorer:
    """Fit the scorer on sequences with ground truth (synthetic people): weighted BCE, Adam.

    ``wander`` > 0 adds to each sequence a slow random deformation (:func:`add_wander`, RMS drawn
    up to ``wander`` metric units, time scale ``wander_s``): real trackers' landmarks wander
    around a still face by several times their frame jitter, which synthetic people do not do.
    """
    torch = require_torch("training the detector scorer")
    spec = spec or ScorerSpec()
    feats, labels, weights = [], [], []
    aug = np.random.default_rng(seed + 7919)
    for seq in sequences:
        xy = np.asarray(seq.landmarks, np.float32)[..., :2]
        if len(xy) <= spec.calibration_frames + spec.history:
            continue
        if wander > 0:
            xy = add_wander(xy, aug.uniform(0.0, wander), wander_s * float(getattr(seq, "fps", 30.0)), aug)
        neutral = np.median(xy[:spec.calibration_frames], axis=0)
        y, w = frame_labels(seq, spec)
        if int(getattr(seq, "apex_frame", -1)) < 0:
            w = w * distractor_weight      # distractor-only footage: where false triggers come from
        keep = w > 0
        feats.append(sequence_features(xy, neutral, spec)[keep])
        labels.append(y[keep])
        weights.append(w[keep])
    if not feats:
        raise InputError("no sequence long enough to train the detector scorer")
    x = np.concatenate(feats)
    y = np.concatenate(labels)
    if y.min() == y.max():
        raise InputError("detector scorer needs both expression and non-expression frames")
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    with torch_session(torch, threads, seed):
        return _fit(torch, (x - mean) / std, mean, std, y, np.concatenate(weights), spec, epochs, seed, progress)


def _fit(torch: Any, z: np.ndarray, mean: np.ndarray, std: np.ndarray, y: np.ndarray, weights: np.ndarray,
         spec: ScorerSpec, epochs: int, seed: int, progress: bool) -> ExpressionScorer:
    """The MLP on standardized features ``z`` (weighted BCE, Adam), folded back to raw features."""
    from torch import nn
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    # The two layers kept as names (typed nn.Linear) to read the weights back; net[i] is a bare Module.
    first, last = nn.Linear(spec.n_features, spec.hidden), nn.Linear(spec.hidden, 1)
    net = nn.Sequential(first, nn.Tanh(), last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    xt = torch.from_numpy(z.astype(np.float32))
    yt = torch.from_numpy(y)
    pos_weight = torch.tensor(float((1 - y).sum() / max(y.sum(), 1.0)))
    wt = torch.from_numpy(weights.astype(np.float32))
    for _ in tqdm(range(epochs), desc="train detector", disable=not progress, unit="epoch", leave=False):
        order = torch.from_numpy(rng.permutation(len(xt)))
        for start in range(0, len(order), 512):
            b = order[start:start + 512]
            loss = nn.functional.binary_cross_entropy_with_logits(net(xt[b])[:, 0], yt[b], weight=wt[b],
                                                                  pos_weight=pos_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    w1 = first.weight.detach().numpy().T / std[:, None]
    b1 = first.bias.detach().numpy() - mean @ w1
    LOG.info("detector scorer trained on %d frames (%.0f %% rising)", len(y), 100 * y.mean())
    return ExpressionScorer(w1.astype(np.float32), b1.astype(np.float32), last.weight.detach().numpy()[0],
                            float(last.bias.detach().numpy()[0]), spec,
                            {"frames": int(len(y)), "positive_fraction": float(y.mean()), "epochs": epochs,
                             "seed": seed})
