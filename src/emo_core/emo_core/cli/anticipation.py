"""``emo train predictor``, ``emo eval predictor``, ``emo dataset peaks``, ``emo dataset mmi``."""
from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_json
from ..errors import InputError
from ..modeldir import ModelDirWriter
from ._args import integer, number
from ..optional import require_torch

LOG = logging.getLogger(__name__)


def _config(args: argparse.Namespace):
    from ..anticipation.config import load_anticipation_config

    return load_anticipation_config(getattr(args, "config", None))


def _clean(value: Any) -> Any:
    """JSON-safe: NaN -> null, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _train(args: argparse.Namespace) -> int:
    require_torch("emo train predictor")     # training is the one thing that needs the [train] extra
    from ..anticipation.dataset import build_windows, load_sequences
    from ..anticipation.train import TrainConfig, cross_validate, train_predictor

    if not 0.0 <= args.consecutive_fraction <= 1.0:
        raise InputError(f"--consecutive-fraction must be in [0, 1], got {args.consecutive_fraction}")
    if not (0.0 <= args.detector_wander <= 0.2):
        raise InputError(f"--detector-wander must be in [0, 0.2], got {args.detector_wander}")
    if args.detector_lags is not None and (min(args.detector_lags) < 1 or max(args.detector_lags) > 30):
        raise InputError("--detector-lags must be frame counts in [1, 30]")
    if args.still_fraction is not None and not 0.0 <= args.still_fraction < 1.0:
        raise InputError(f"--still-fraction must be in [0, 1), got {args.still_fraction}")
    config = _config(args)
    sequences = load_sequences(args.data)
    windows, report = build_windows(sequences, config.peak)
    LOG.info("%d expression videos (%d distractors skipped, %d windows clamped at an edge)",
             report.used, report.skipped_distractors, report.clamped)
    train_cfg = TrainConfig(architecture=args.arch, hidden=args.hidden, lr=args.lr,
                            batch_size=args.batch_size, epochs=args.epochs,
                            pairs_per_epoch=args.pairs_per_epoch, patience=args.patience,
                            consecutive_fraction=args.consecutive_fraction,
                            still_fraction=args.still_fraction,
                            seed=args.seed, threads=args.threads, progress=not args.quiet)
    out = Path(args.out)
    if args.cv:
        folds = cross_validate(windows, train_cfg, by=args.cv, k=args.folds)
        atomic_write_json(out / f"cv_{args.cv}.json", _clean(folds))
        print(json.dumps(_clean(folds["summary"])))
        return 0
    result = train_predictor(windows, train_cfg, extra_card={"source": {"file": Path(args.data).name,
                                                                        "command": "emo train predictor"}})
    scorer = None
    if not args.no_detector:
        from ..anticipation.scorer import ScorerSpec, train_scorer

        spec = ScorerSpec(calibration_frames=config.detector.calibration_frames)
        if args.detector_lags is not None:
            spec = replace(spec, lags=tuple(args.detector_lags))
        scorer = train_scorer(sequences, spec, epochs=args.detector_epochs, seed=args.seed,
                              threads=args.threads, progress=not args.quiet, wander=args.detector_wander)
        scorer.card["source"] = {"file": Path(args.data).name, "command": "emo train predictor"}
    _refuse_diverged(result.predictor.module, result.predictor.card.get("metrics", {}).get("val_mae"))
    # Predictor and scorer are one directory, written as a whole: an interrupted run or a re-train
    # over an old directory leaves the old set or the new one, never new weights beside an old detector.
    with ModelDirWriter(out) as writer:
        result.predictor.save(out, writer=writer)
        if scorer is not None:
            scorer.save(out, writer=writer)
    m = result.predictor.card["metrics"]
    print(f"saved {args.arch} predictor to {out}: validation MAE {m['val_mae']:.4f} "
          f"(mimicry {m['val_mimicry_mae']:.4f}), time-to-apex MAE {m['val_tta_mae_ms']:.0f} ms, "
          f"best epoch {m['best_epoch']}")
    if scorer is not None:
        print(f"saved the detector's rising-edge scorer to {out} ({scorer.card['frames']} frames)")
    return 0


def _refuse_diverged(module: Any, val_metric: Any) -> None:
    """A run whose loss blew up (too high a learning rate) leaves NaN weights: say so, save nothing."""
    finite = all(bool(t.isfinite().all()) for t in module.state_dict().values())
    if not finite or val_metric is None or not math.isfinite(float(val_metric)):
        raise InputError("training diverged (NaN or inf in the weights or the validation error); "
                         "nothing was saved -- lower --lr")


def _eval(args: argparse.Namespace) -> int:
    from ..anticipation.dataset import load_sequences
    from ..anticipation.evaluate import EvalConfig, evaluate, plot_errors
    from ..anticipation.predictor import ExpressionPredictor
    from ..anticipation.scorer import ExpressionScorer

    config = _config(args)
    predictor = ExpressionPredictor.load(args.model)
    sequences = load_sequences(args.data)
    inverse, twin = _robot(args)
    # The detector's scorer ships next to the predictor; a predictor-only directory
    # (--no-detector) is evaluated with the default scorer.
    has_scorer = args.model is None or (Path(args.model) / "detector.json").is_file()
    scorer = ExpressionScorer.load(args.model if has_scorer else None)
    result, errors = evaluate(sequences, predictor, inverse, twin,
                              EvalConfig(threshold=args.threshold, seed=args.seed, peak=config.peak,
                                         detector=config.detector, retarget=config.retarget), scorer)
    if args.plots:
        result["plots"] = [str(plot_errors(errors, Path(args.plots) / "fig4b_predictor.png"))]
    if args.json:
        print(json.dumps(_clean(result)))
    else:
        _print_summary(result)
    return 0


def _robot(args: argparse.Namespace) -> tuple[Any, Any]:
    """Inverse model + twin for the confusion matrix; (None, None) with --no-confusion."""
    if args.no_confusion:
        return None, None
    from ..selfmodel.inverse import InverseModel
    from ..twin import DigitalTwin

    return InverseModel.load(args.inverse), DigitalTwin(seed=args.seed)


def _print_summary(result: dict[str, Any]) -> None:
    print(f"n={result['n']} videos of {result['subjects']} held-out subjects")
    for name in ("model", "mimicry", "random"):
        print(f"  {name:<8} MAE {result[name]['mae']:.4f} (sem {result[name]['sem']:.4f})")
    print(f"  model / mimicry = {result['improvement_vs_mimicry']:.3f}")
    print(f"  time to apex MAE {result['time_to_apex']['mae_ms']:.0f} ms")
    if "confusion" in result:
        c = result["confusion"]
        print(f"  confusion: accuracy {c['accuracy']:.3f} (paper 0.722) ppv {c['ppv']:.3f} "
              f"sensitivity {c['sensitivity']:.3f} fpr {c['fpr']:.3f} for {c['for']:.3f}")
    d = result["detector"]
    print(f"  detector: fired before half onset {d['fired_before_half_onset']:.3f}, "
          f"false triggers/min {d['false_triggers_per_minute']:.2f}")


def _peaks(args: argparse.Namespace) -> int:
    from ..anticipation.dataset import is_expression, load_sequences
    from ..anticipation.peak import peak_activation

    config = _config(args)
    rows = []
    for i, seq in enumerate(load_sequences(args.data)):
        if args.index is not None and i != args.index:
            continue
        found = peak_activation(seq.landmarks, config.peak)
        rows.append({"index": i, "subject": str(seq.subject), "label": str(seq.label),
                     "frames": len(seq.landmarks), "fps": float(seq.fps),
                     "peak_frame": found.peak_frame, "target_frame": found.target_frame,
                     "arrival_frame": found.arrival_frame,
                     "onset_frame": int(getattr(seq, "onset_frame", -1)),
                     "apex_frame": int(getattr(seq, "apex_frame", -1)),
                     "expression": is_expression(seq)})
    if args.index is not None and not rows:
        raise InputError(f"no sequence {args.index} in {args.data}")
    for row in rows:
        print(json.dumps(row))
    return 0


def _mmi(args: argparse.Namespace) -> int:
    from ..anticipation.mmi import load_mmi

    dataset, report = load_mmi(args.videos, args.labels, fps=args.fps, max_missing=args.max_missing)
    dataset.save(args.out)
    print(f"wrote {len(dataset)} sequences to {args.out} ({len(report.skipped)} videos skipped)")
    for line in report.skipped:
        LOG.warning("skipped %s", line)
    return 0


def register(registry) -> None:
    registry.group("train", "train models")
    p = registry.command("train predictor", "train the expression predictor on human sequences", _train)
    p.add_argument("--data", required=True, help="human sequence dataset (.npz, emo sim sequences)")
    p.add_argument("--out", required=True, help="model directory to write (model.safetensors + card.json)")
    p.add_argument("--arch", choices=("delta", "paper", "relative"), default="delta",
                   help="delta: improved variant (default); paper: the paper's 8-layer reference; "
                        "relative: identity-free (faces relative to the person's rest face and size) "
                        "with a calibrated confidence")
    p.add_argument("--hidden", type=integer(1, 4096), default=64, help="hidden width of the delta model")
    p.add_argument("--lr", type=number(0, 1, low_open=True), default=None, help="learning rate (default: 1e-5 paper, 1e-3 delta)")
    p.add_argument("--batch-size", type=integer(1, 65536), default=128)
    p.add_argument("--epochs", type=integer(1, 10000), default=60)
    p.add_argument("--pairs-per-epoch", type=integer(1, 10_000_000), default=16384, help="augmented pairs drawn per epoch")
    p.add_argument("--patience", type=integer(1, 10000), default=12, help="early stopping patience (epochs)")
    p.add_argument("--consecutive-fraction", type=number(0, 1), default=0.0,
                   help="share of training pairs made of 4 consecutive frames (the live detector's "
                        "windows); only those train the time-to-apex head (default 0: the paper's augmentation)")
    p.add_argument("--still-fraction", type=number(0, 1), default=None,
                   help="share of still training pairs (pre-onset frames -> no motion); "
                        "default 0.1 for --arch relative, 0 otherwise")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)
    p.add_argument("--threads", type=integer(1, 256), default=1, help="torch CPU threads")
    p.add_argument("--cv", choices=("video", "participant"), default=None,
                   help="run k-fold cross-validation instead (writes cv_<by>.json into --out)")
    p.add_argument("--folds", type=integer(2, 100), default=5)
    p.add_argument("--no-detector", action="store_true", help="do not train the detector's scorer")
    p.add_argument("--detector-epochs", type=integer(1, 10000), default=15, help="epochs of the detector's scorer")
    p.add_argument("--detector-lags", type=integer(1, 30), nargs="+", default=None, metavar="FRAMES",
                   help="motion lags of the detector's scorer features (default: the scorer's)")
    p.add_argument("--detector-wander", type=number(0, 0.2), default=0.0,
                   help="train the scorer with slow tracker wander up to this RMS (metric units; real trackers' "
                        "landmarks wander around a still face, synthetic people's do not)")
    p.add_argument("--config", default=None, help="anticipation.yaml (default: the project's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    registry.group("eval", "evaluate models")
    p = registry.command("eval predictor", "predictor vs mimicry/random, Table 1 confusion, detector", _eval)
    p.add_argument("--data", required=True, help="held-out human sequence dataset (.npz)")
    p.add_argument("--model", default=None, help="predictor directory (default: the shipped model)")
    p.add_argument("--inverse", default=None, help="inverse model directory (default: the shipped model)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plots", default=None, help="directory for the Fig. 4B-style box plot")
    p.add_argument("--threshold", type=number(0, 1), default=0.25, help="command activation threshold")
    p.add_argument("--no-confusion", action="store_true", help="skip retarget + inverse model")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)
    p.add_argument("--config", default=None, help="anticipation.yaml (default: the project's)")

    registry.group("dataset", "inspect and convert datasets")
    p = registry.command("dataset peaks", "offline peak activation and target frame of each sequence", _peaks)
    p.add_argument("--data", required=True, help="human sequence dataset (.npz)")
    p.add_argument("--index", type=integer(0, None), default=None, help="only this sequence")
    p.add_argument("--config", default=None)
    p = registry.command("dataset mmi", "MMI-style videos + labels -> human sequence dataset (.npz)", _mmi)
    p.add_argument("--videos", required=True, help="directory of videos")
    p.add_argument("--labels", default=None, help="labels CSV/JSON (default: a .json beside each video)")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--fps", type=number(0, 1000, low_open=True), default=None, help="override the videos' frame rate")
    p.add_argument("--max-missing", type=number(0, 1), default=0.2, help="skip videos with more missed faces")
