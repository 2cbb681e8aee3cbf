"""Training of the expression predictor (``emo train predictor``).

Each epoch draws fresh augmented pairs (the paper's 4-of-9 input frames, 1-of-4 label frames) from
the training windows, so the model sees new combinations every epoch; validation uses the
deterministic evaluation pairs (frames p-3..p -> target m) of the held-out 20 % of each
participant's videos. Early stopping keeps the weights of the best validation MAE.

Everything random is seeded (numpy Generator + ``torch.manual_seed``); torch runs on the CPU with
a configurable thread count (1 by default: on the shared 2-core machines two threads spin
against other jobs and ran 9x slower per step).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..errors import InputError
from ..optional import torch_session
from .dataset import PeakWindows, eval_pairs, sample_pairs, split_per_participant
from .evaluate import mae
from .predictor import (DeltaPredictor, ExpressionPredictor, PaperPredictor, RelativePredictor, new_card,
                        rest_scale_torch)

LOG = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters; the ``paper`` defaults are the paper's (Adam, lr 1e-5, batch 128, MSE)."""

    architecture: str = "delta"
    hidden: int = 64
    lr: float | None = None          # None: 1e-5 for paper, 1e-3 for delta
    batch_size: int = 128
    epochs: int = 60
    pairs_per_epoch: int = 16384
    patience: int = 12               # epochs without validation improvement before stopping
    weight_decay: float = 1e-4       # delta only (the paper uses plain Adam)
    time_weight: float = 0.25        # weight of the time-to-apex loss (delta only)
    #: Share of training pairs whose 4 input frames are consecutive (the live detector's windows);
    #: only those train the time head (dataset.sample_pairs). 0 = the paper's augmentation only.
    consecutive_fraction: float = 0.0
    #: Share of training pairs that are still (pre-onset frames -> a still frame): a still face
    #: must predict no motion. None: 0.1 for the ``relative`` architecture, 0 otherwise.
    still_fraction: float | None = None
    #: ``relative`` only: principal components of the OOD score and knots of the confidence table.
    ood_components: int = 16
    conf_knots: int = 12
    train_fraction: float = 0.8
    seed: int = 0
    threads: int = 1                 # >1 thrashes on busy 2-core machines (measured 9x slower)
    bank_size: int = 256             # training target faces kept for the random baseline
    progress: bool = True

    def still_share(self) -> float:
        if self.still_fraction is not None:
            return self.still_fraction
        return 0.1 if self.architecture == "relative" else 0.0

    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-5 if self.architecture == "paper" else 1e-3


@dataclass
class TrainResult:
    predictor: ExpressionPredictor
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0


def _make_module(config: TrainConfig) -> nn.Module:
    if config.architecture == "paper":
        return PaperPredictor()
    if config.architecture == "delta":
        return DeltaPredictor(config.hidden)
    if config.architecture == "relative":
        return RelativePredictor(config.hidden, config.ood_components, config.conf_knots)
    raise InputError(f"unknown architecture {config.architecture!r} (paper, delta or relative)")


def _loss(module: nn.Module, x: torch.Tensor, rest: torch.Tensor, y: torch.Tensor, t: torch.Tensor,
          config: TrainConfig, timed: torch.Tensor | None = None,
          still: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(module, DeltaPredictor):
        # L1 on the landmarks (in units of the displacement scale) and on the standardized time:
        # both metrics are MAEs, and L1 keeps a few very slow expressions from dominating. With
        # consecutive pairs in the mix, only they train the time head (the others hide the speed).
        target, tta = module.target_and_time(x, rest)
        time_err = (tta - t).abs() / module.t_stats[1]
        keep = None
        if timed is not None and config.consecutive_fraction > 0:
            keep = timed
        if still is not None and bool(still.any()):       # still pairs have no time label
            keep = ~still if keep is None else keep & ~still
        if keep is not None:
            time_err = time_err[keep]
        time_term = time_err.mean() if time_err.numel() else time_err.sum()
        err = (target - y).abs()
        if isinstance(module, RelativePredictor):         # in units of each face's size
            err = err / rest_scale_torch(rest).clamp_min(1e-6)[:, None, None]
        return err.mean() / module.y_scale[0] + config.time_weight * time_term
    return nn.functional.mse_loss(module(x), y)      # the paper: MSE on the landmarks


def _validate(predictor: ExpressionPredictor, windows: PeakWindows) -> dict[str, float]:
    pairs = eval_pairs(windows)
    pred, tta = predictor.predict_torch(pairs.x, pairs.rest)
    return {"val_mae": float(mae(pred, pairs.y).mean()),
            "val_mimicry_mae": float(mae(pairs.x[:, -1], pairs.y).mean()),
            "val_tta_mae_ms": float(np.abs(tta - np.maximum(pairs.time_to_apex, 0)).mean() * 1e3)}


def _calibrate_time(module: nn.Module, card: dict[str, Any], bank: np.ndarray, val: PeakWindows) -> float:
    """Shrink of the time head toward the training median, chosen on the validation split.

    At the peak activation a face has moved only a few percent of the way, so the time left to the
    apex is weakly observable and a free head can do worse than the median; the shrink makes the
    estimate at least as good as the prior on held-out videos of the training subjects.
    """
    pairs = eval_pairs(val)
    true = np.maximum(pairs.time_to_apex, 0.0)
    head = ExpressionPredictor(module, card | {"time_to_apex_shrink": 1.0}, bank).predict_torch(pairs.x, pairs.rest)[1]
    prior = float(card["time_to_apex_prior_s"])
    grid = np.linspace(0.0, 1.0, 11)
    errors = [np.abs(np.maximum(prior + a * (head - prior), 0.0) - true).mean() for a in grid]
    choice = float(grid[int(np.argmin(errors))])
    LOG.info("time-to-apex shrink %.1f (validation MAE %.0f ms; prior %.0f ms, head %.0f ms)",
             choice, min(errors) * 1e3, errors[0] * 1e3, errors[-1] * 1e3)
    return choice


#: Perturbation levels of the confidence calibration, in units of the per-frame landmark noise.
CALIBRATION_LEVELS = (0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)


def _non_increasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-increasing fit (pool adjacent violators)."""
    blocks: list[tuple[float, float, int]] = []    # (value, weight, count)
    for v, w in zip(values, weights):
        blocks.append((float(v), float(w), 1))
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append(((v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2))
    return np.concatenate([np.full(n, v) for v, _, n in blocks])


def calibrate_confidence(predictor: ExpressionPredictor, val: PeakWindows, rng: np.random.Generator,
                         pairs_per_level: int = 1024) -> dict[str, Any]:
    """Fit the table OOD score -> confidence on held-out pairs (the validation split's videos).

    1. Held-out pairs (augmented 4-of-9 inputs and the deterministic evaluation pairs) at graded
       distances from the training distribution: each copy's input frames get landmark noise of
       ``level`` x the per-frame noise (iid per frame, half of it) and a shared offset of every
       point (the other half: a resting face that does not match, a face shape training never
       saw), levels ``CALIBRATION_LEVELS``. The label is untouched.
    2. Each pair's OOD score (``RelativePredictor.ood_score``); the pairs are binned by score
       (``conf_knots`` quantile bins).
    3. Per bin, the blend weight c in [0, 1] (grid 0.02) minimizing the MAE of
       ``mimicry + c * (prediction - mimicry)`` against the label (mimicry = the last input frame).
    4. Made non-increasing in the score (running minimum from the lowest bin), knots at the bins'
       median scores, the last knot pushed to confidence 0 at twice the largest score seen, so
       anything farther out falls back to mimicry. Linear between knots.
    """
    module = predictor.module
    if not isinstance(module, RelativePredictor):
        raise InputError("confidence calibration is for the relative predictor")
    still = val.still if val.still is not None else val.inputs
    frame_noise = float(np.abs(np.diff(still, axis=1)).mean() * np.sqrt(np.pi / 2) / np.sqrt(2))
    xs, rs, ys = [], [], []
    base_eval = eval_pairs(val)
    for level in CALIBRATION_LEVELS:
        pairs = sample_pairs(val, pairs_per_level, rng)
        x = np.concatenate([pairs.x, base_eval.x]).astype(np.float32)
        y = np.concatenate([pairs.y, base_eval.y])
        r = np.concatenate([pairs.rest, base_eval.rest])
        if level > 0:
            sd = level * frame_noise / np.sqrt(2)
            x = x + rng.normal(0, sd, x.shape).astype(np.float32) \
                + rng.normal(0, sd, (len(x), 1) + x.shape[2:]).astype(np.float32)
        xs.append(x)
        rs.append(r)
        ys.append(y)
    x, r, y = np.concatenate(xs), np.concatenate(rs), np.concatenate(ys)
    pred = predictor.predict_torch(x, r)[0]
    with torch.no_grad():
        score = module.ood_score(torch.from_numpy(x), torch.from_numpy(r)).numpy().astype(np.float64)
    mim = x[:, -1]
    k = module.conf_knots
    edges = np.quantile(score, np.linspace(0, 1, k + 1))
    grid = np.linspace(0.0, 1.0, 51)
    knots, values, counts = [], [], []
    for i in range(k):
        sel = (score >= edges[i]) & (score <= edges[i + 1]) if i == k - 1 else (score >= edges[i]) & (score < edges[i + 1])
        if not sel.any():
            sel = np.argsort(np.abs(score - 0.5 * (edges[i] + edges[i + 1])))[:1]
        d = (pred[sel] - mim[sel]).reshape(int(np.sum(sel) if sel.dtype == bool else len(sel)), -1)
        e = (y[sel] - mim[sel]).reshape(len(d), -1)
        errs = np.array([np.abs(c * d - e).mean() for c in grid])
        knots.append(float(np.median(score[sel])))
        # Ties (a prediction equal to mimicry) go to the largest weight: nothing is lost by it.
        values.append(float(grid[np.flatnonzero(errs <= errs.min() * (1 + 1e-6) + 1e-12)[-1]]))
        counts.append(int(len(d)))
    table_values = _non_increasing(np.array(values), np.array(counts, np.float64))
    table_knots = np.maximum.accumulate(np.array(knots)) + np.arange(k) * 1e-6
    table_knots[-1] = max(table_knots[-1], 2.0 * float(score.max()))
    table_values[-1] = 0.0
    module.set_calibration(table_knots, table_values)
    LOG.info("confidence table: %s", ", ".join(f"{a:.2f}->{b:.2f}" for a, b in zip(table_knots, table_values)))
    return {"method": "ood-distance table (train.calibrate_confidence)",
            "score": "0.5 * (mean_k proj_k^2 / var_k + residual^2 / mean residual^2), standardized identity-free features",
            "calibration_data": f"validation split ({len(val)} videos of the training subjects), "
                                f"{pairs_per_level} augmented + {len(base_eval.x)} evaluation pairs per level",
            "perturbation_levels_x_frame_noise": list(CALIBRATION_LEVELS), "frame_noise": frame_noise,
            "knots": [float(v) for v in table_knots], "values": [float(v) for v in table_values],
            "bin_counts": counts}


def train_predictor(windows: PeakWindows, config: TrainConfig | None = None,
                    extra_card: dict[str, Any] | None = None) -> TrainResult:
    """Train on ``windows`` (split 80/20 per participant for validation); returns the best model.
    torch's thread count and global random state are restored afterwards."""
    config = config or TrainConfig()
    with torch_session(torch, config.threads, config.seed):
        return _train_predictor(windows, config, extra_card)


def _train_predictor(windows: PeakWindows, config: TrainConfig, extra_card: dict[str, Any] | None) -> TrainResult:
    rng = np.random.default_rng(config.seed)
    train_idx, val_idx = split_per_participant(windows.subject, config.train_fraction, config.seed)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise InputError("need at least one participant with 2+ expression videos to split 80/20")
    train, val = windows.subset(train_idx), windows.subset(val_idx)
    module = _make_module(config)
    stats = sample_pairs(train, max(4096, config.pairs_per_epoch), rng)
    if isinstance(module, DeltaPredictor):
        module.set_normalization(stats.x, stats.rest, stats.y, stats.time_to_apex)
    bank = train.labels[rng.permutation(len(train))[:config.bank_size], 0]
    card = new_card(module, time_to_apex_prior_s=float(np.median(np.maximum(stats.time_to_apex, 0))),
                    fps=float(np.median(windows.fps)), training=asdict(config) | {"lr": config.learning_rate()},
                    data={"fingerprint": windows.fingerprint(), "videos": len(windows),
                          "subjects": int(len(np.unique(windows.subject))),
                          "train_videos": len(train), "val_videos": len(val)})
    card.update(extra_card or {})
    decay = config.weight_decay if config.architecture == "delta" else 0.0
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.learning_rate(), weight_decay=decay) \
        if decay else torch.optim.Adam(module.parameters(), lr=config.learning_rate())
    best: tuple[float, int, dict[str, torch.Tensor]] = (np.inf, -1, {})
    history: list[dict[str, float]] = []
    bar = tqdm(range(config.epochs), desc=f"train {config.architecture}", disable=not config.progress,
               unit="epoch", leave=False)
    for epoch in bar:
        module.train()
        pairs = sample_pairs(train, config.pairs_per_epoch, rng, config.consecutive_fraction, config.still_share())
        order = rng.permutation(len(pairs.x))
        x_all, r_all, y_all, t_all, m_all, s_all = (torch.from_numpy(np.ascontiguousarray(a)) for a in
                                                    (pairs.x, pairs.rest, pairs.y, pairs.time_to_apex,
                                                     pairs.timed, pairs.still))
        losses = []
        for start in range(0, len(order), config.batch_size):
            batch = torch.from_numpy(order[start:start + config.batch_size])
            loss = _loss(module, x_all[batch], r_all[batch], y_all[batch], t_all[batch], config, m_all[batch],
                         s_all[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        module.eval()
        metrics = {"epoch": epoch, "loss": float(np.mean(losses))} | _validate(
            ExpressionPredictor(module, card, bank), val)
        history.append(metrics)
        bar.set_postfix(loss=f"{metrics['loss']:.4f}", val=f"{metrics['val_mae']:.4f}",
                        mimic=f"{metrics['val_mimicry_mae']:.4f}")
        LOG.info("epoch %d loss %.5f val_mae %.5f (mimicry %.5f)", epoch, metrics["loss"],
                 metrics["val_mae"], metrics["val_mimicry_mae"])
        if metrics["val_mae"] < best[0]:
            best = (metrics["val_mae"], epoch, {k: v.detach().clone() for k, v in module.state_dict().items()})
        elif epoch - best[1] >= config.patience:
            LOG.info("early stop at epoch %d (best %d)", epoch, best[1])
            break
    bar.close()
    module.load_state_dict(best[2])
    module.eval()
    if isinstance(module, DeltaPredictor):
        card["time_to_apex_shrink"] = _calibrate_time(module, card, bank, val)
    if isinstance(module, RelativePredictor):
        card["confidence"] = calibrate_confidence(ExpressionPredictor(module, card, bank), val,
                                                  np.random.default_rng(config.seed + 1))
    final = history[best[1]] | _validate(ExpressionPredictor(module, card, bank), val)
    card["metrics"] = {k: final[k] for k in ("val_mae", "val_mimicry_mae", "val_tta_mae_ms")}
    card["metrics"]["best_epoch"] = best[1]
    card["metrics"]["epochs_run"] = len(history)
    return TrainResult(predictor=ExpressionPredictor(module, card, bank), history=history, best_epoch=best[1])


def cross_validate(windows: PeakWindows, config: TrainConfig, by: str = "participant",
                   k: int = 5) -> dict[str, Any]:
    """k-fold cross-validation (the paper's supplementary tests): by video or by participant.

    Each fold trains on the other folds (with its own 80/20 per-participant early-stopping split)
    and reports model and mimicry MAE on the held-out fold's evaluation pairs.
    """
    from .dataset import kfold_by_participant, kfold_by_video

    if by == "participant":
        folds = kfold_by_participant(windows.subject, k, config.seed)
    elif by == "video":
        folds = kfold_by_video(len(windows), k, config.seed)
    else:
        raise InputError(f"cross-validation is by 'video' or 'participant', not {by!r}")
    rows = []
    for i, (train_idx, test_idx) in enumerate(folds):
        LOG.info("fold %d/%d: %d train, %d test videos", i + 1, k, len(train_idx), len(test_idx))
        result = train_predictor(windows.subset(train_idx), config)
        pairs = eval_pairs(windows.subset(test_idx))
        pred, _ = result.predictor.predict_batch(pairs.x, pairs.rest)
        rows.append({"fold": i, "test_videos": int(len(test_idx)),
                     "model_mae": float(mae(pred, pairs.y).mean()),
                     "mimicry_mae": float(mae(pairs.x[:, -1], pairs.y).mean())})
    model = np.array([r["model_mae"] for r in rows])
    mimic = np.array([r["mimicry_mae"] for r in rows])
    return {"by": by, "k": k, "folds": rows,
            "summary": {"by": by, "k": k, "model_mae": float(model.mean()), "model_sd": float(model.std()),
                        "mimicry_mae": float(mimic.mean()), "ratio": float(model.mean() / mimic.mean())}}
