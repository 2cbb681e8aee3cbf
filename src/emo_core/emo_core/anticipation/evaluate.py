"""Evaluation of the anticipation stage (``emo eval predictor``), like the paper's Fig. 4B and Table 1.

On a dataset of held-out subjects:

* ``model`` / ``mimicry`` / ``random``: MAE over the 113x2 target landmarks (metric units) of
  the deterministic evaluation pair of each expression video (frames p-3..p -> target face m).
  Mimicry = the peak-activation frame (the last input frame) used as the prediction. Random = a
  target face drawn at random from the model's *training* set (a bank of training target faces
  stored with the model; the paper drew from its robot babbling set, which lives in another space).
* ``confusion``: Table 1's command confusion matrix. Predicted and true target faces are retargeted
  to the robot (eq. 1-2, the twin's rest face and motion bounds, the video's resting face as the
  human rest) and turned into 11 commands by the inverse model; a command is "activated" when it
  differs from the calm face's command by more than 0.25.
* ``time_to_apex``: MAE (ms) of the predicted time from the last input frame to the target face.
* ``detector``: the causal detector run frame by frame on every sequence: on expression videos the
  fraction whose first firing at/after the expression's first movement comes before
  onset + 0.5 (apex - onset); on distractor-only videos (blink, talking, head turn, neutral) the
  firings per minute of footage.
* ``online``: what the live system gets -- the predictor applied to the detector's window at its
  first firing, against the target face, and the lead time from that firing to the apex.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..schema import N_COMMANDS
from .dataset import build_windows, eval_pairs, is_expression
from .detector import DetectorConfig, PeakActivationDetector
from .peak import PeakConfig
from .predictor import ExpressionPredictor
from .retarget import RetargetConfig, Retargeter
from .scorer import ExpressionScorer, expression_start


def mae(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-sample mean absolute error over the 113x2 landmarks (here, not in train.py: evaluating
    needs no torch)."""
    return np.abs(pred.reshape(len(pred), -1) - target.reshape(len(target), -1)).mean(axis=1)


LOG = logging.getLogger(__name__)

PAPER_TABLE1 = {"accuracy": 0.722, "ppv": 0.805, "sensitivity": 0.795, "fpr": 0.446, "for": 0.462}


@dataclass
class EvalConfig:
    threshold: float = 0.25          # paper: |command - calm command| > 0.25 means "activated"
    seed: int = 0
    peak: PeakConfig = field(default_factory=PeakConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    retarget: RetargetConfig = field(default_factory=RetargetConfig)


def _stats(errors: np.ndarray) -> dict[str, float]:
    n = max(len(errors), 1)
    sd = float(errors.std(ddof=1)) if len(errors) > 1 else 0.0
    return {"mae": float(errors.mean()), "sd": sd, "sem": sd / np.sqrt(n), "median": float(np.median(errors))}


def confusion_matrix(pred_cmd: np.ndarray, true_cmd: np.ndarray, calm: np.ndarray,
                     threshold: float = 0.25) -> dict[str, Any]:
    """Table 1: activation (|command - calm| > threshold) of predicted vs target commands."""
    pred_on = np.abs(pred_cmd - calm) > threshold
    true_on = np.abs(true_cmd - calm) > threshold
    tp = int(np.sum(pred_on & true_on))
    fn = int(np.sum(~pred_on & true_on))
    fp = int(np.sum(pred_on & ~true_on))
    tn = int(np.sum(~pred_on & ~true_on))

    def ratio(a: int, b: int) -> float:
        return float(a / b) if b else float("nan")

    return {"tp": tp, "fn": fn, "fp": fp, "tn": tn, "accuracy": ratio(tp + tn, tp + tn + fp + fn),
            "ppv": ratio(tp, tp + fp), "sensitivity": ratio(tp, tp + fn), "fpr": ratio(fp, fp + tn),
            "for": ratio(fn, fn + tn), "n_commands": tp + fn + fp + tn,
            "paper": PAPER_TABLE1}


def _stamps(seq: Any) -> np.ndarray:
    return np.arange(len(seq.landmarks)) / float(seq.fps)


@dataclass
class DetectorRun:
    firings: list[int]                # frame indices
    events: list[Any]


def run_detector(seq: Any, config: DetectorConfig, scorer: ExpressionScorer | None = None) -> DetectorRun:
    """Feed one sequence to a fresh detector, frame by frame, with stamps i / fps."""
    detector = PeakActivationDetector(config, scorer)
    firings, events = [], []
    for i, (frame, stamp) in enumerate(zip(seq.landmarks, _stamps(seq))):
        event = detector.update(frame, float(stamp))
        if event is not None:
            firings.append(i)
            events.append(event)
    return DetectorRun(firings, events)


def detector_metrics(sequences: Sequence[Any], config: DetectorConfig,
                     predictor: ExpressionPredictor | None = None,
                     scorer: ExpressionScorer | None = None) -> dict[str, Any]:
    """Early-firing rate on expressions, false triggers per minute on distractor-only footage.

    An expression counts as detected early when the detector's first firing at or after the
    expression's first movement (ground-truth intensity >= 3 % of its peak; the labelled onset
    when intensity is unknown) comes no later than onset + 0.5 (apex - onset). Firings before the
    first movement are counted in ``pre_onset_firings``.
    """
    scorer = scorer if scorer is not None else ExpressionScorer.load(None)
    early, fired, lead_s, pre_onset = [], [], [], 0
    online_model, online_mimic = [], []
    distractor_firings, distractor_frames, distractor_s = 0, 0, 0.0
    by_label: dict[str, int] = {}
    for seq in sequences:
        run = run_detector(seq, config, scorer)
        if not is_expression(seq):
            distractor_firings += len(run.firings)
            by_label[str(seq.label)] = by_label.get(str(seq.label), 0) + len(run.firings)
            distractor_frames += len(seq.landmarks)
            distractor_s += len(seq.landmarks) / float(seq.fps)
            continue
        onset, apex = int(seq.onset_frame), int(seq.apex_frame)
        start = expression_start(seq)
        pre_onset += sum(f < start for f in run.firings)
        after = [(f, e) for f, e in zip(run.firings, run.events) if f >= start]
        deadline = onset + 0.5 * (apex - onset)
        fired.append(bool(after))
        early.append(bool(after) and after[0][0] <= deadline)
        if after:
            frame, event = after[0]
            lead_s.append((apex - frame) / float(seq.fps))
            if predictor is not None:
                target = np.asarray(seq.landmarks[apex], np.float32)[:, :2]
                pred = predictor.predict_event(event)
                online_model.append(float(np.abs(pred.target - target).mean()))
                online_mimic.append(float(np.abs(event.window[-1] - target).mean()))
    minutes = distractor_s / 60.0
    out: dict[str, Any] = {
        "fired_before_half_onset": float(np.mean(early)) if early else float("nan"),
        "false_triggers_per_minute": float(distractor_firings / minutes) if minutes else float("nan"),
        "fired_after_onset": float(np.mean(fired)) if fired else float("nan"),
        "pre_onset_firings": int(pre_onset),
        "expressions": len(early),
        "distractor_minutes": round(minutes, 3),
        "distractor_firings": int(distractor_firings),
        "distractor_firings_by_label": by_label,
        "median_lead_ms": float(np.median(lead_s) * 1e3) if lead_s else float("nan"),
    }
    if predictor is not None and online_model:
        out["online"] = {"model_mae": float(np.mean(online_model)),
                         "mimicry_mae": float(np.mean(online_mimic)), "n": len(online_model)}
    return out


def evaluate(sequences: Sequence[Any], predictor: ExpressionPredictor, inverse: Any | None,
             twin: Any | None, config: EvalConfig | None = None,
             scorer: ExpressionScorer | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The eval JSON object and the per-sample errors (for plots)."""
    config = config or EvalConfig()
    windows, report = build_windows(sequences, config.peak)
    pairs = eval_pairs(windows)
    pred, tta = predictor.predict_batch(pairs.x, pairs.rest)
    errors = {"model": mae(pred, pairs.y), "mimicry": mae(pairs.x[:, -1], pairs.y)}
    rng = np.random.default_rng(config.seed)
    if len(predictor.random_faces):
        picks = predictor.random_faces[rng.integers(0, len(predictor.random_faces), len(pairs.y))]
        errors["random"] = mae(picks, pairs.y)
    else:
        raise InputError("the predictor has no bank of training faces for the random baseline")
    result: dict[str, Any] = {name: _stats(err) for name, err in errors.items()}
    result["model"]["architecture"] = predictor.architecture
    result["improvement_vs_mimicry"] = float(errors["model"].mean() / errors["mimicry"].mean())
    true_tta = np.maximum(pairs.time_to_apex, 0.0)
    result["time_to_apex"] = {"mae_ms": float(np.abs(tta - true_tta).mean() * 1e3),
                              "true_mean_ms": float(true_tta.mean() * 1e3),
                              "constant_baseline_mae_ms": float(np.abs(predictor.prior_tta - true_tta).mean() * 1e3)}
    if inverse is not None and twin is not None:
        retarget = Retargeter.from_twin(twin, config.retarget)
        # Each video's own resting face is the human rest (H_s) of eq. 1-2.
        pred_cmd = inverse.predict(np.stack([retarget(p, r) for p, r in zip(pred, windows.rest)]))
        true_cmd = inverse.predict(np.stack([retarget(y, r) for y, r in zip(pairs.y, windows.rest)]))
        result["confusion"] = confusion_matrix(np.asarray(pred_cmd).reshape(-1, N_COMMANDS),
                                               np.asarray(true_cmd).reshape(-1, N_COMMANDS),
                                               np.asarray(twin.calm_commands()), config.threshold)
    result["detector"] = detector_metrics(sequences, config.detector, predictor, scorer)
    result["n"] = int(len(windows))
    result["skipped_videos"] = len(report.skipped_invalid)
    result["subjects"] = int(len(np.unique(windows.subject)))
    return result, errors


def plot_errors(errors: dict[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """Box plot of per-sample landmark MAE for model / mimicry / random, like the paper's Fig. 4B."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("model", "mimicry", "random") if n in errors]
    fig, ax = plt.subplots(figsize=(4.5, 4.0), dpi=120)
    ax.boxplot([errors[n] for n in names], showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), ["ours" if n == "model" else n for n in names])
    for i, n in enumerate(names, start=1):
        mean = float(errors[n].mean())
        sem = float(errors[n].std(ddof=1) / np.sqrt(len(errors[n]))) if len(errors[n]) > 1 else 0.0
        ax.errorbar(i, mean, yerr=1.96 * sem, fmt="o", color="tab:red", capsize=4)
    ax.set_ylabel("landmark MAE (metric units)")
    ax.set_title(title or f"predictor vs baselines (n={len(errors[names[0]])})")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
