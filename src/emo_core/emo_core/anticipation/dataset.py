"""Predictor dataset builder (Emo paper, Methods "Predictive model training").

Per expression video, the offline peak activation (``peak.py``) gives a peak frame ``p`` and a
target frame ``m``. The builder keeps

* the 9 input frames ``p-4 .. p+4`` (4 before the peak, the peak, 4 after), and
* the 4 label frames ``m .. m+3`` (the target face and the 3 frames after it),

as ``(9, 113, 2)`` and ``(4, 113, 2)`` arrays in metric space. Training pairs are drawn with the
paper's augmentation: 4 of the 9 input frames, in temporal order (C(9,4) = 126 choices), and one of
the 4 label frames. Evaluation uses the deterministic pair the live system sees: the 4 frames that
end at the peak activation (``p-3 .. p``) and the target face ``m``; the last input frame is the
mimicry baseline.

Windows that run off a video's ends are completed by repeating the edge frame (counted in
``BuildReport.clamped``): a person who holds the apex to the end of a clip simply keeps it.

Splits: 80/20 *within each participant's videos* (the paper's 756/214 split of 970 videos from 45
participants), and 5-fold cross-validation by video and by participant.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import InputError
from .peak import PeakConfig, peak_activation

LOG = logging.getLogger(__name__)

N_INPUT = 4            # frames the predictor sees
N_BEFORE = 4           # frames before the peak in the 9-frame window
N_WINDOW = 9           # p-4 .. p+4
N_LABEL = 4            # m .. m+3
#: All ordered 4-frame choices from the 9-frame window (the paper's input augmentation).
COMBINATIONS: np.ndarray = np.array(list(itertools.combinations(range(N_WINDOW), N_INPUT)), dtype=np.int64)
#: The evaluation input: the four frames ending at the peak activation (window slots 1..4).
EVAL_SLOTS: np.ndarray = np.arange(N_BEFORE - N_INPUT + 1, N_BEFORE + 1)
#: Labels that are not expressions (no apex); they feed the detector's false-trigger tests only.
DISTRACTOR_LABELS: frozenset[str] = frozenset({"blink", "talking", "head_turn", "neutral"})


class SequenceLike(Protocol):
    """What the builder needs from one video (``people.HumanSequence`` satisfies it)."""

    landmarks: np.ndarray   # (T, 113, 2|3) metric
    fps: float
    subject: str
    label: str


def is_expression(seq: SequenceLike) -> bool:
    """True for a video with an expression (distractor-only footage has no target face)."""
    apex = getattr(seq, "apex_frame", 0)
    return str(seq.label) not in DISTRACTOR_LABELS and (apex is None or int(apex) >= 0)


@dataclass
class PeakWindows:
    """One row per expression video: its input window, label window and bookkeeping."""

    inputs: np.ndarray        # (N, 9, 113, 2) float32
    labels: np.ndarray        # (N, 4, 113, 2) float32
    rest: np.ndarray          # (N, 113, 2) float32 resting face (first 5 frames)
    peak_frame: np.ndarray    # (N,) int
    target_frame: np.ndarray  # (N,) int
    arrival_frame: np.ndarray  # (N,) int: 95 % of the target distance reached (peak.arrival_frame)
    fps: np.ndarray           # (N,) float
    subject: np.ndarray       # (N,) str
    label: np.ndarray         # (N,) str
    video: np.ndarray         # (N,) int index of the video in its source dataset
    #: (N, 9, 113, 2) float32: 9 still frames before the expression's onset (the frames just before
    #: ``onset_frame`` where the sequence has one, else the first 9): "a still face stays still"
    #: pairs for the identity-free predictor (``sample_pairs(still_fraction=...)``). None: unknown.
    still: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, index: np.ndarray | Sequence[int]) -> "PeakWindows":
        idx = np.asarray(index, dtype=np.int64)
        # Any: the fields are arrays of different dtypes, and ``still`` may be None (kept None).
        fields: dict[str, Any] = {name: (None if getattr(self, name) is None else getattr(self, name)[idx])
                                  for name in self.__dataclass_fields__}
        return PeakWindows(**fields)

    def fingerprint(self) -> str:
        """Short content hash of the windows (model cards record what they were trained on)."""
        digest = hashlib.sha256()
        for arr in (self.inputs, self.labels, self.peak_frame, self.target_frame):
            digest.update(np.ascontiguousarray(arr).tobytes())
        digest.update("\n".join(map(str, self.subject)).encode())
        return digest.hexdigest()[:16]

    def time_to_target(self, slots: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Seconds from input window slot ``slots`` (n,) to the arrival at the target face of each
        row (of ``rows``, default all): the time-to-apex label."""
        rows = np.arange(len(self)) if rows is None else rows
        last_frame = self.peak_frame[rows] - N_BEFORE + slots
        return ((self.arrival_frame[rows] - last_frame) / self.fps[rows]).astype(np.float32)


@dataclass
class BuildReport:
    """What the builder did with each video."""

    used: int = 0
    skipped_distractors: int = 0
    skipped_invalid: list[str] = field(default_factory=list)
    clamped: int = 0


def _take(frames: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, bool]:
    clipped = np.clip(index, 0, len(frames) - 1)
    return frames[clipped], bool(np.any(clipped != index))


def build_windows(sequences: Iterable[SequenceLike], config: PeakConfig | None = None
                  ) -> tuple[PeakWindows, BuildReport]:
    """Peak windows of every expression video; distractors and unusable videos are skipped."""
    config = config or PeakConfig()
    report = BuildReport()
    rows: dict[str, list] = {name: [] for name in PeakWindows.__dataclass_fields__}
    for i, seq in enumerate(sequences):
        if not is_expression(seq):
            report.skipped_distractors += 1
            continue
        try:
            found = peak_activation(seq.landmarks, config)
        except InputError as exc:
            report.skipped_invalid.append(f"video {i} ({seq.subject}/{seq.label}): {exc}")
            continue
        xy = np.asarray(seq.landmarks, dtype=np.float32)[..., :2]
        p, m = found.peak_frame, found.target_frame
        window, c1 = _take(xy, np.arange(p - N_BEFORE, p + N_WINDOW - N_BEFORE))
        labels, c2 = _take(xy, np.arange(m, m + N_LABEL))
        report.clamped += int(c1 or c2)
        onset = getattr(seq, "onset_frame", None)
        onset = int(onset) if onset is not None and int(onset) >= 0 else N_WINDOW
        still_end = max(min(onset, p - N_BEFORE), 1)      # never into the input window
        still, _ = _take(xy, np.arange(still_end - N_WINDOW, still_end))
        for name, value in (("inputs", window), ("labels", labels), ("rest", found.rest), ("still", still),
                            ("peak_frame", p), ("target_frame", m), ("arrival_frame", found.arrival_frame),
                            ("fps", float(seq.fps)),
                            ("subject", str(seq.subject)), ("label", str(seq.label)), ("video", i)):
            rows[name].append(value)
        report.used += 1
    if not report.used:
        raise InputError("no expression video with a usable peak activation in the dataset")
    for msg in report.skipped_invalid:
        LOG.warning("skipped %s", msg)
    windows = PeakWindows(
        inputs=np.stack(rows["inputs"]).astype(np.float32),
        labels=np.stack(rows["labels"]).astype(np.float32),
        rest=np.stack(rows["rest"]).astype(np.float32),
        peak_frame=np.array(rows["peak_frame"], dtype=np.int64),
        target_frame=np.array(rows["target_frame"], dtype=np.int64),
        arrival_frame=np.array(rows["arrival_frame"], dtype=np.int64),
        fps=np.array(rows["fps"], dtype=np.float64),
        subject=np.array(rows["subject"], dtype=str),
        label=np.array(rows["label"], dtype=str),
        video=np.array(rows["video"], dtype=np.int64),
        still=np.stack(rows["still"]).astype(np.float32),
    )
    return windows, report


@dataclass
class Pairs:
    """Model-ready pairs: 4 input frames, one label face, the time to the target face, the rest face."""

    x: np.ndarray              # (n, 4, 113, 2) float32
    y: np.ndarray              # (n, 113, 2) float32
    time_to_apex: np.ndarray   # (n,) float32 seconds from the last input frame to the arrival at the target
    row: np.ndarray            # (n,) int row of PeakWindows each pair came from
    rest: np.ndarray           # (n, 113, 2) float32 resting face of the video
    #: (n,) bool: the 4 input frames are consecutive, as the live detector hands them over. Only
    #: such pairs carry the face's *speed*, so only they teach the time-to-apex head.
    timed: np.ndarray | None = None
    #: (n,) bool: a still pair (pre-onset frames -> a still frame); it has no time-to-apex label.
    still: np.ndarray | None = None


#: Indices (into COMBINATIONS) of the 6 runs of 4 consecutive frames.
CONSECUTIVE: np.ndarray = np.flatnonzero(np.all(np.diff(COMBINATIONS, axis=1) == 1, axis=1))


def sample_pairs(windows: PeakWindows, n: int, rng: np.random.Generator,
                 consecutive_fraction: float = 0.0, still_fraction: float = 0.0) -> Pairs:
    """``n`` augmented training pairs: 4 ordered frames of the 9, one of the 4 label frames.

    The paper's augmentation draws any 4 of the 9 frames (126 choices), so the gaps between input
    frames vary and the model cannot read the face's speed from them; ``consecutive_fraction`` of
    the pairs are drawn from the 6 consecutive runs instead (the live detector's windows).
    """
    row = rng.integers(0, len(windows), size=n)
    pick = rng.integers(0, len(COMBINATIONS), size=n)
    if consecutive_fraction > 0:     # (no extra draws otherwise: the default keeps the paper's stream)
        runs = rng.random(n) < consecutive_fraction
        pick[runs] = CONSECUTIVE[rng.integers(0, len(CONSECUTIVE), size=int(runs.sum()))]
    combo = COMBINATIONS[pick]
    label_slot = rng.integers(0, N_LABEL, size=n)
    x = windows.inputs[row[:, None], combo]
    y = windows.labels[row, label_slot]
    tta = windows.time_to_target(combo[:, -1], row)
    still = np.zeros(n, bool)
    if still_fraction > 0:            # (no extra draws otherwise)
        if windows.still is None:
            raise InputError("still pairs need PeakWindows.still (build_windows fills it)")
        still = rng.random(n) < still_fraction
        k = int(still.sum())
        x[still] = windows.still[row[still][:, None], combo[still]]
        y[still] = windows.still[row[still], rng.integers(0, N_WINDOW, size=k)]
    return Pairs(x=x, y=y, time_to_apex=tta, row=row, rest=windows.rest[row], timed=np.isin(pick, CONSECUTIVE),
                 still=still)


def eval_pairs(windows: PeakWindows) -> Pairs:
    """The deterministic evaluation pair of each row: frames p-3..p -> target face m."""
    x = windows.inputs[:, EVAL_SLOTS]
    y = windows.labels[:, 0]
    slots = np.full(len(windows), EVAL_SLOTS[-1])
    return Pairs(x=x, y=y, time_to_apex=windows.time_to_target(slots), row=np.arange(len(windows)),
                 rest=windows.rest, timed=np.ones(len(windows), bool), still=np.zeros(len(windows), bool))


# ----------------------------------------------------------------------------------------- splits

def split_per_participant(subjects: Sequence[str] | np.ndarray, train_fraction: float = 0.8,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The paper's split: each participant's videos go 80/20 to train/test.

    A participant's test share is ``ceil((1 - train_fraction) * n)`` videos (so every participant
    with two or more videos is tested; one-video participants train only). Returns index arrays.
    """
    if not 0.0 < train_fraction < 1.0:
        raise InputError("train_fraction must be in (0, 1)")
    subjects = np.asarray(subjects, dtype=str)
    rng = np.random.default_rng(seed)
    train: list[int] = []
    test: list[int] = []
    for subject in np.unique(subjects):
        idx = rng.permutation(np.flatnonzero(subjects == subject))
        n_test = 0 if len(idx) < 2 else int(np.ceil((1.0 - train_fraction) * len(idx) - 1e-9))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def kfold_by_video(n_videos: int, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold cross-validation over videos (a participant may appear in train and test)."""
    if not 2 <= k <= n_videos:
        raise InputError(f"k must be in [2, {n_videos}] for {n_videos} videos")
    folds = np.array_split(np.random.default_rng(seed).permutation(n_videos), k)
    return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), np.sort(f)) for i, f in enumerate(folds)]


def kfold_by_participant(subjects: Sequence[str] | np.ndarray, k: int = 5,
                         seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold cross-validation over participants: no participant is in both train and test."""
    subjects = np.asarray(subjects, dtype=str)
    unique = np.unique(subjects)
    if not 2 <= k <= len(unique):
        raise InputError(f"k must be in [2, {len(unique)}] for {len(unique)} participants")
    groups = np.array_split(np.random.default_rng(seed).permutation(unique), k)
    out = []
    for group in groups:
        test_mask = np.isin(subjects, group)
        out.append((np.flatnonzero(~test_mask), np.flatnonzero(test_mask)))
    return out


def load_sequences(path: str) -> list:
    """The sequences of a human sequence dataset file (``emo sim sequences`` / ``emo dataset mmi``)."""
    from ..datasets.human import HumanSequenceDataset

    return list(HumanSequenceDataset.load(path))
