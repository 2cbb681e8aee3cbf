"""Held-out evaluation of the inverse model against the paper's baselines (Fig. 4A), plus closed loop.

Held-out set: the test split (20 % of every babbling dataset, the same seeded split the model was
trained with, read from its card), recombined the paper's way -- every held-out upper half with
every held-out lower half (200 x 200 = 40,000 faces for 2 x 1000 samples; a seeded subset above
``max_pairs``) -- plus held-out full-mode samples as they are.

Metric (paper): L1 of normalized commands, reported per face as the mean absolute difference over
the 11 commands (so it lies in [0, 1]) and averaged over faces. Baselines: ``random_commands``
(uniform in [0, 1]^11, unconstrained), ``random_face`` (the commands of a random non-held-out
face), ``nearest_neighbour`` (the commands of the non-held-out face closest in landmark space,
searched over every recombination: for recombined data the nearest pair is the nearest upper half
plus the nearest lower half, which is exact because squared distance splits over the halves).

Closed loop: the predicted commands are executed on the digital twin (noise off) and the resulting
face is compared with the target face (mean absolute error over the 113 x 2 coordinates). It needs
the twin the data came from (same config hash); otherwise it is reported as null with the reason.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.babbling import BabblingArrays
from ..errors import InputError
from ..schema import LOWER, N_COMMANDS, UPPER, UPPER_COMMANDS
from .corpus import Corpus, HalfPool, find_datasets
from .inverse import InverseModel

LOG = logging.getLogger(__name__)
_N_UP = len(UPPER_COMMANDS)
METHODS = ("model", "nearest_neighbour", "random_face", "random_commands")
LABELS = {"model": "inverse model", "nearest_neighbour": "nearest\nneighbour",
          "random_face": "random\nface", "random_commands": "random\ncommands",
          "true_commands": "true\ncommands"}


@dataclass
class EvalResult:
    """Per-face errors of every method, and the summary JSON."""

    l1: dict[str, np.ndarray]
    closed_loop: dict[str, np.ndarray] | None
    summary: dict[str, Any]


def _stats(values: np.ndarray, key: str) -> dict[str, float]:
    return {key: float(values.mean()), "median": float(np.median(values)), "std": float(values.std()),
            "sem": float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0}


def _merge(a: BabblingArrays | None, b: BabblingArrays | None) -> BabblingArrays | None:
    parts = [p for p in (a, b) if p is not None]
    return BabblingArrays.concatenate(parts) if parts else None


def reference_pool(corpus: Corpus) -> HalfPool:
    """Everything that is not held out (train + validation): what the baselines may look up."""
    train, val = corpus.parts["train"], corpus.parts["val"]
    return HalfPool(upper=_merge(train.upper, val.upper), lower=_merge(train.lower, val.lower),
                    full=_merge(train.full, val.full))


def _sq_dists_min(queries: np.ndarray, refs: np.ndarray, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Index and squared distance of the nearest row of ``refs`` for each query (brute force)."""
    q = queries.reshape(len(queries), -1).astype(np.float64)
    r = refs.reshape(len(refs), -1).astype(np.float64)
    r2 = np.einsum("ij,ij->i", r, r)
    best = np.empty(len(q), np.int64)
    dist = np.empty(len(q), np.float64)
    for start in range(0, len(q), batch):
        block = q[start:start + batch]
        d = r2[None, :] - 2.0 * block @ r.T + np.einsum("ij,ij->i", block, block)[:, None]
        best[start:start + batch] = np.argmin(d, axis=1)
        dist[start:start + batch] = d[np.arange(len(block)), best[start:start + batch]]
    return best, dist


def nearest_neighbour(pool: HalfPool, landmarks: np.ndarray) -> np.ndarray:
    """Commands of the nearest face among all recombinations and as-is samples of ``pool``."""
    n = len(landmarks)
    best_cmd = np.zeros((n, N_COMMANDS), np.float32)
    best_d = np.full(n, np.inf)
    halves = pool.halves()
    if halves is not None:
        upper, lower = halves
        iu, du = _sq_dists_min(landmarks[:, UPPER], upper.landmarks[:, UPPER])
        il, dl = _sq_dists_min(landmarks[:, LOWER], lower.landmarks[:, LOWER])
        best_cmd[:, :_N_UP] = upper.commands[iu, :_N_UP]
        best_cmd[:, _N_UP:] = lower.commands[il, _N_UP:]
        best_d = du + dl
    as_is = pool.as_is()
    if len(as_is):
        ia, da = _sq_dists_min(landmarks, as_is.landmarks)
        closer = da < best_d
        best_cmd[closer] = as_is.commands[ia[closer]]
    return best_cmd


def evaluate_inverse(model: InverseModel, data: list[str | Path], twin: Any | None = None,
                     max_pairs: int = 40000, seed: int = 0) -> EvalResult:
    """Evaluate ``model`` on the held-out split of ``data``; ``twin`` enables the closed loop."""
    datasets = find_datasets(data)
    split = model.card.get("data", {}).get("split", {})
    corpus = Corpus.build(datasets, int(split.get("seed", 0)), float(split.get("test_fraction", 0.2)),
                          float(split.get("val_fraction", 0.1)))
    matches = model.card.get("data", {}).get("fingerprint") == corpus.fingerprint()
    if not matches:
        LOG.warning("these datasets are not the ones the model was trained on: every split is new to it")
    landmarks, target = corpus.parts["test"].enumerate(max_pairs, seed=seed)
    if len(landmarks) == 0:
        raise InputError("the held-out split is empty: babble more samples")
    pool = reference_pool(corpus)
    rng = np.random.default_rng([seed, 4])
    _, random_face = pool.sample(rng, len(landmarks))
    predictions = {
        "model": model.predict(landmarks),
        "nearest_neighbour": nearest_neighbour(pool, landmarks),
        "random_face": random_face,
        "random_commands": rng.uniform(0.0, 1.0, (len(landmarks), N_COMMANDS)).astype(np.float32),
    }
    l1 = {k: np.abs(v - target).mean(axis=1) for k, v in predictions.items()}
    summary: dict[str, Any] = {"n": int(len(landmarks))}
    summary.update({k: _stats(l1[k], "l1") for k in METHODS})
    closed, why = _closed_loop(twin, corpus, predictions, target, landmarks)
    summary["closed_loop"] = ({k: _stats(v, "landmark_mae") for k, v in closed.items()}
                              if closed is not None else None)
    if closed is None:
        summary["closed_loop_skipped"] = why
    summary["data_matches_model"] = matches
    summary["model_architecture"] = model.arch.name
    summary["metric"] = "mean over faces of the mean |command error| over the 11 normalized commands"
    return EvalResult(l1=l1, closed_loop=closed, summary=summary)


def _closed_loop(twin: Any | None, corpus: Corpus, predictions: dict[str, np.ndarray], target: np.ndarray,
                 landmarks: np.ndarray) -> tuple[dict[str, np.ndarray] | None, str]:
    if twin is None:
        return None, "no digital twin given"
    from .robot import twin_config_hash  # local: keeps evaluation importable without the twin

    data_hash = corpus.robot.get("config_hash")
    if twin_config_hash(twin) != data_hash:
        return None, f"the data comes from robot {data_hash}, not this twin ({twin_config_hash(twin)})"
    errors: dict[str, np.ndarray] = {}
    for name, commands in {**predictions, "true_commands": target}.items():
        face = np.asarray(twin.forward(np.clip(commands, 0.0, 1.0), noise=False)).reshape(landmarks.shape)
        errors[name] = np.abs(face - landmarks).mean(axis=(1, 2))
    return errors, ""


def boxplot(result: EvalResult, path: str | Path) -> Path:
    """Fig. 4A-style boxplot of per-face command L1 (and closed-loop landmark error when present)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if result.closed_loop is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    ax.boxplot([result.l1[k] for k in METHODS], showfliers=False)
    ax.set_xticks(range(1, len(METHODS) + 1), [LABELS[k] for k in METHODS])
    ax.set_ylabel("L1 of normalized commands (mean over 11)")
    ax.set_title(f"Inverse model vs baselines (n = {result.summary['n']})")
    if result.closed_loop is not None:
        keys = [*METHODS, "true_commands"]
        ax2 = axes[0, 1]
        ax2.boxplot([result.closed_loop[k] for k in keys], showfliers=False)
        ax2.set_xticks(range(1, len(keys) + 1), [LABELS[k] for k in keys])
        ax2.set_ylabel("closed-loop landmark MAE (robot units)")
        ax2.set_title("Commands executed on the twin vs target face")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
