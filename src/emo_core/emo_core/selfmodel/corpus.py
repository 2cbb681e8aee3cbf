"""Babbling data as training material: deterministic splits and the upper/lower recombination.

The paper babbles the upper face (eyes, brows) and the lower face (mouth, jaw) separately, 1000
samples each, split 800/200, and augments by pairing any upper half with any lower half: the
landmarks ``[0:52]`` and the first 4 commands come from an upper-only sample, the landmarks
``[52:113]`` and the last 7 commands from a lower-only sample (up to 1,000,000 combinations).
Full-mode samples (all 11 commands moving) are used as they are. Upper-only or lower-only data
without a partner dataset is used as it is too (the other half then sits at the calm face).

Split: in each dataset a seeded permutation puts ``test_fraction`` of the samples in the held-out
test set (never seen in training or model selection), ``val_fraction`` in the validation set
(early stopping, variant choice) and the rest in training -- with the defaults 0.2 / 0.1 the
paper's 800/200 becomes 700/100/200.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets.babbling import BabblingArrays, BabblingDataset
from ..errors import InputError
from ..schema import LOWER, N_COMMANDS, N_LANDMARKS, UPPER, UPPER_COMMANDS
from .sampling import MODES

LOG = logging.getLogger(__name__)
N_IN = N_LANDMARKS * 2
_N_UP = len(UPPER_COMMANDS)
PARTS = ("train", "val", "test")


def find_datasets(paths: list[str | Path]) -> list[BabblingDataset]:
    """Open babbling datasets: each path is a dataset or a folder of datasets (one level)."""
    found: list[BabblingDataset] = []
    for raw in paths:
        path = Path(raw)
        if BabblingDataset.is_dataset(path):
            found.append(BabblingDataset.open(path))
        elif path.is_dir():
            subs = sorted(p for p in path.iterdir() if BabblingDataset.is_dataset(p))
            if not subs:
                raise InputError(f"{path} holds no babbling dataset (no meta/info.json in it or its subfolders)")
            found.extend(BabblingDataset.open(p) for p in subs)
        else:
            raise InputError(f"{path}: no such babbling dataset")
    robots = {d.info["robot"].get("config_hash") for d in found}
    if len(robots) > 1:
        raise InputError(f"datasets come from different robots (config hashes {sorted(map(str, robots))})")
    empty = [str(d.root) for d in found if d.n_samples == 0]
    if empty:
        raise InputError(f"empty babbling dataset(s): {', '.join(empty)}")
    return found


def split_rows(n: int, seed: int, key: int, test_fraction: float, val_fraction: float
               ) -> dict[str, np.ndarray]:
    """Deterministic train/val/test row indices for a dataset of ``n`` samples."""
    perm = np.random.default_rng([seed, key, n]).permutation(n)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    return {"test": np.sort(perm[:n_test]), "val": np.sort(perm[n_test:n_test + n_val]),
            "train": np.sort(perm[n_test + n_val:])}


@dataclass
class HalfPool:
    """The samples of one split part, grouped by babbling mode; draws recombined faces."""

    upper: BabblingArrays | None
    lower: BabblingArrays | None
    full: BabblingArrays | None

    def halves(self) -> tuple[BabblingArrays, BabblingArrays] | None:
        """(upper, lower) when both are there and non-empty (the samples recombine), else None."""
        if self.upper is not None and self.lower is not None and len(self.upper) > 0 and len(self.lower) > 0:
            return self.upper, self.lower
        return None

    @property
    def recombines(self) -> bool:
        return self.halves() is not None

    def as_is(self) -> BabblingArrays:
        parts = [self.full] if self.full is not None else []
        if not self.recombines:
            parts += [p for p in (self.upper, self.lower) if p is not None]
        return BabblingArrays.concatenate([p for p in parts if p is not None and len(p)])

    @property
    def n_pairs(self) -> int:
        halves = self.halves()
        combos = len(halves[0]) * len(halves[1]) if halves is not None else 0
        return combos + len(self.as_is())

    def combine(self, up_rows: np.ndarray, lo_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Recombined faces: landmarks (n, 113, 2) and commands (n, 11)."""
        halves = self.halves()
        if halves is None:
            raise ValueError("this part has no upper and lower samples to recombine")
        upper, lower = halves
        lm = np.empty((len(up_rows), N_LANDMARKS, 2), np.float32)
        lm[:, UPPER] = upper.landmarks[up_rows, UPPER]
        lm[:, LOWER] = lower.landmarks[lo_rows, LOWER]
        cmd = np.empty((len(up_rows), N_COMMANDS), np.float32)
        cmd[:, :_N_UP] = upper.commands[up_rows, :_N_UP]
        cmd[:, _N_UP:] = lower.commands[lo_rows, _N_UP:]
        return lm, cmd

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random training faces: recombined pairs, plus as-is samples in proportion to
        their share of the raw samples (so a few full-mode samples are not drowned by 10^6 pairs)."""
        as_is = self.as_is()
        halves = self.halves()
        if halves is None:
            rows = rng.integers(0, len(as_is), n)
            return as_is.landmarks[rows], as_is.commands[rows]
        n_up, n_lo = len(halves[0]), len(halves[1])
        n_raw = n_up + n_lo
        n_as_is = int(rng.binomial(n, len(as_is) / (n_raw + len(as_is)))) if len(as_is) else 0
        lm, cmd = self.combine(rng.integers(0, n_up, n - n_as_is), rng.integers(0, n_lo, n - n_as_is))
        if n_as_is:
            rows = rng.integers(0, len(as_is), n_as_is)
            lm, cmd = np.concatenate([lm, as_is.landmarks[rows]]), np.concatenate([cmd, as_is.commands[rows]])
        return lm, cmd

    def enumerate(self, max_pairs: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """All recombined pairs (every upper with every lower) plus the as-is samples; a seeded
        random subset of the pairs when there are more than ``max_pairs``."""
        as_is = self.as_is()
        lms, cmds = [as_is.landmarks], [as_is.commands]
        halves = self.halves()
        if halves is not None:
            nu, nl = len(halves[0]), len(halves[1])
            flat = np.arange(nu * nl)
            budget = None if max_pairs is None else max(0, max_pairs - len(as_is))
            if budget is not None and flat.size > budget:
                flat = np.sort(np.random.default_rng([seed, 7]).choice(flat, budget, replace=False))
            lm, cmd = self.combine(flat // nl, flat % nl)
            lms.append(lm)
            cmds.append(cmd)
        return np.concatenate(lms), np.concatenate(cmds)


@dataclass
class Corpus:
    """Datasets split into train / val / test pools."""

    datasets: list[BabblingDataset]
    parts: dict[str, HalfPool]
    split: dict[str, float | int]

    @classmethod
    def build(cls, datasets: list[BabblingDataset], seed: int = 0, test_fraction: float = 0.2,
              val_fraction: float = 0.1) -> "Corpus":
        if not (0 < test_fraction < 1 and 0 <= val_fraction < 1 and test_fraction + val_fraction < 1):
            raise InputError("need 0 < test_fraction, 0 <= val_fraction and test + val < 1")
        grouped: dict[str, dict[str, list[BabblingArrays]]] = {p: {m: [] for m in MODES} for p in PARTS}
        for dataset in datasets:
            arrays = dataset.arrays()
            # Keyed by the dataset's own mode and seed, so the split does not depend on argument order.
            key = zlib.crc32(f"{dataset.mode}:{dataset.info['seed']}".encode())
            rows = split_rows(len(arrays), seed, key, test_fraction, val_fraction)
            for part in PARTS:
                grouped[part][dataset.mode].append(arrays.subset(rows[part]))
        parts = {part: HalfPool(**{m: (BabblingArrays.concatenate(v) if v else None)
                                  for m, v in grouped[part].items()}) for part in PARTS}
        split = {"seed": seed, "test_fraction": test_fraction, "val_fraction": val_fraction}
        return cls(datasets=datasets, parts=parts, split=split)

    def describe(self) -> list[dict]:
        """Per-dataset record for the model card (path, mode, samples, fingerprint)."""
        return [{"path": str(d.root), "mode": d.mode, "n": d.n_samples, "seed": d.info["seed"],
                 "fingerprint": d.fingerprint()} for d in self.datasets]

    @property
    def robot(self) -> dict:
        return self.datasets[0].info["robot"]

    def fingerprint(self) -> str:
        return "+".join(d.fingerprint() for d in self.datasets)
