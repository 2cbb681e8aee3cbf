"""Human expression sequence dataset: per video, metric landmarks + fps + subject + label + truth.

One format for every source of human videos -- synthetic people (``emo sim sequences``), real
videos through the extractor (``emo landmarks``), MMI-style collections -- so the anticipation
stage reads them all the same way.

On disk: ONE ``.npz`` file (read with ``allow_pickle=False``; no pickled objects anywhere), written
atomically (temp file in the same directory, then ``os.replace``). Frames of all videos are
concatenated; ``offsets`` (n + 1,) delimit video i as ``frames[offsets[i]:offsets[i+1]]``.

==================  ======================  =============================================
key                 dtype / shape           meaning
==================  ======================  =============================================
format              <U (scalar)             ``"emo.human_sequences"``
schema_version      int64 (scalar)          ``SCHEMA_VERSION``; newer files are refused
landmark_order      int64 (113,)            MediaPipe index of each landmark (``MP_INDICES``)
space               int64 (scalar)          ``schema.Space`` of the landmarks (METRIC)
offsets             int64 (n + 1,)          video boundaries in the frame arrays
landmarks           float32 (N, 113, 3)     all frames; NaN only where ``detected`` is False
intensity           float32 (N,)            ground-truth expression intensity in [0, 1]; NaN = unknown
detected            bool (N,)               a face was found in that frame
fps                 float64 (n,)            frames per second of each video
subject, label,     <U (n,)                 fixed-width unicode strings
video_id
onset_frame,        int64 (n,)              ground truth; -1 = none (distractor) or unknown
apex_frame
extra_<name>        float32 (N, ...)        optional per-frame arrays (e.g. AU tracks)
meta                <U (scalar)             JSON text: how the dataset was made
==================  ======================  =============================================
"""
from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import InputError, SchemaError
from ..schema import MP_INDICES, N_LANDMARKS, Space

LOG = logging.getLogger(__name__)

FORMAT = "emo.human_sequences"
SCHEMA_VERSION = 1
_REQUIRED = ("format", "schema_version", "landmark_order", "space", "offsets", "landmarks", "intensity",
             "detected", "fps", "subject", "label", "video_id", "onset_frame", "apex_frame", "meta")


def _frame_index(value: int | None) -> int:
    """A ground-truth frame index as a plain int (numpy ints too); None (not known) becomes -1."""
    return -1 if value is None else int(value)


@dataclass
class HumanSequence:
    """One video of one person, in the extractor's metric space.

    ``onset_frame``/``apex_frame`` are -1 when there is no expression (distractors) or it is not
    known; ``intensity`` is NaN where not known (real videos). ``extras`` holds optional per-frame
    float arrays (first dimension T), e.g. the generator's AU tracks.
    """

    landmarks: np.ndarray
    fps: float
    subject: str
    label: str
    onset_frame: int = -1
    apex_frame: int = -1
    intensity: np.ndarray | None = None
    video_id: str = ""
    detected: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32)
        lm = self.landmarks
        where = f"sequence {self.video_id or self.subject + '/' + self.label!s}"
        if lm.ndim != 3 or lm.shape[1:] != (N_LANDMARKS, 3) or lm.shape[0] < 1:
            raise SchemaError(f"{where}: landmarks must be (T, {N_LANDMARKS}, 3), got {lm.shape}")
        t = lm.shape[0]
        self.detected = (np.ones(t, bool) if self.detected is None
                         else np.asarray(self.detected, dtype=bool).reshape(-1))
        if self.detected.shape != (t,):
            raise SchemaError(f"{where}: detected must have {t} values, got {self.detected.shape}")
        if not np.all(np.isfinite(lm[self.detected])):
            raise SchemaError(f"{where}: landmarks contain NaN or inf in frames with a face")
        self.intensity = (np.full(t, np.nan, np.float32) if self.intensity is None
                          else np.asarray(self.intensity, dtype=np.float32).reshape(-1))
        if self.intensity.shape != (t,):
            raise SchemaError(f"{where}: intensity must have {t} values, got {self.intensity.shape}")
        known = self.intensity[np.isfinite(self.intensity)]
        if known.size and (known.min() < 0.0 or known.max() > 1.0):
            raise SchemaError(f"{where}: intensity must be in [0, 1]")
        self.fps = float(self.fps)
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise SchemaError(f"{where}: fps must be positive, got {self.fps}")
        self.subject, self.label, self.video_id = str(self.subject), str(self.label), str(self.video_id)
        # -1 means "none"; None (from untyped callers, e.g. JSON) and numpy integers are normalized.
        self.onset_frame = _frame_index(self.onset_frame)
        self.apex_frame = _frame_index(self.apex_frame)
        for name in ("onset_frame", "apex_frame"):
            value = getattr(self, name)
            if not -1 <= value < t:
                raise SchemaError(f"{where}: {name} {value} outside [-1, {t})")
        if self.onset_frame >= 0 and self.apex_frame >= 0 and self.apex_frame < self.onset_frame:
            raise SchemaError(f"{where}: apex frame {self.apex_frame} before onset frame {self.onset_frame}")
        extras = {}
        for key, value in self.extras.items():
            arr = np.asarray(value, dtype=np.float32)
            if arr.ndim < 1 or arr.shape[0] != t or not key.isidentifier():
                raise SchemaError(f"{where}: extra {key!r} must be a per-frame array of length {t}")
            extras[key] = arr
        self.extras = extras

    def __len__(self) -> int:
        return int(self.landmarks.shape[0])

    @property
    def n_frames(self) -> int:
        return len(self)

    @property
    def has_expression(self) -> bool:
        return self.apex_frame >= 0

    @property
    def duration_s(self) -> float:
        return len(self) / self.fps


class HumanSequenceDataset(Sequence[HumanSequence]):
    """An ordered collection of :class:`HumanSequence` with ``save``/``load`` (one .npz file)."""

    def __init__(self, sequences: Iterable[HumanSequence] = (), meta: dict | None = None) -> None:
        self.sequences: list[HumanSequence] = list(sequences)
        self.meta: dict = dict(meta or {})
        for i, seq in enumerate(self.sequences):
            if not isinstance(seq, HumanSequence):
                raise InputError(f"item {i} is not a HumanSequence")
            if not seq.video_id:
                seq.video_id = f"v{i:05d}"

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return HumanSequenceDataset(self.sequences[index], self.meta)
        return self.sequences[index]

    def __iter__(self) -> Iterator[HumanSequence]:
        return iter(self.sequences)

    @property
    def subjects(self) -> list[str]:
        """Distinct subjects in first-seen order."""
        return list(dict.fromkeys(s.subject for s in self.sequences))

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(s.label for s in self.sequences))

    @property
    def n_frames(self) -> int:
        return sum(len(s) for s in self.sequences)

    def filter(self, labels: Iterable[str] | None = None, subjects: Iterable[str] | None = None,
               expressions_only: bool = False) -> "HumanSequenceDataset":
        keep_l = None if labels is None else set(labels)
        keep_s = None if subjects is None else set(subjects)
        return HumanSequenceDataset(
            [s for s in self.sequences
             if (keep_l is None or s.label in keep_l) and (keep_s is None or s.subject in keep_s)
             and (not expressions_only or s.has_expression)], self.meta)

    def split_per_subject(self, train_fraction: float = 0.8, seed: int = 0
                          ) -> tuple["HumanSequenceDataset", "HumanSequenceDataset"]:
        """The paper's split: within each subject, ``train_fraction`` of the videos train."""
        rng = np.random.default_rng(seed)
        train, test = [], []
        for subject in self.subjects:
            idx = [i for i, s in enumerate(self.sequences) if s.subject == subject]
            order = rng.permutation(idx)
            n_train = int(round(train_fraction * len(idx)))
            train += sorted(order[:n_train].tolist())
            test += sorted(order[n_train:].tolist())
        return (HumanSequenceDataset([self.sequences[i] for i in sorted(train)], self.meta),
                HumanSequenceDataset([self.sequences[i] for i in sorted(test)], self.meta))

    # ------------------------------------------------------------------ file format
    def to_arrays(self) -> dict[str, np.ndarray]:
        if not self.sequences:
            raise InputError("cannot save an empty human sequence dataset")
        seqs = self.sequences
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT),
            "schema_version": np.array(SCHEMA_VERSION, dtype=np.int64),
            "landmark_order": MP_INDICES.astype(np.int64),
            "space": np.array(int(Space.METRIC), dtype=np.int64),
            "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            "landmarks": np.concatenate([s.landmarks for s in seqs]).astype(np.float32),
            "intensity": np.concatenate([s.intensity for s in seqs]).astype(np.float32),
            "detected": np.concatenate([s.detected for s in seqs]).astype(bool),
            "fps": np.array([s.fps for s in seqs], dtype=np.float64),
            "subject": np.array([s.subject for s in seqs], dtype=str),
            "label": np.array([s.label for s in seqs], dtype=str),
            "video_id": np.array([s.video_id for s in seqs], dtype=str),
            "onset_frame": np.array([s.onset_frame for s in seqs], dtype=np.int64),
            "apex_frame": np.array([s.apex_frame for s in seqs], dtype=np.int64),
            "meta": np.array(json.dumps(self.meta, sort_keys=True)),
        }
        for key in sorted({k for s in seqs for k in s.extras}):
            shapes = {s.extras[key].shape[1:] for s in seqs if key in s.extras}
            if len(shapes) != 1:
                raise SchemaError(f"extra {key!r} has different per-frame shapes across videos: {shapes}")
            shape = shapes.pop()
            arrays[f"extra_{key}"] = np.concatenate([
                s.extras[key] if key in s.extras else np.full((len(s),) + shape, np.nan, np.float32)
                for s in seqs]).astype(np.float32)
        return arrays

    def save(self, path: str | Path, compress: bool = True) -> Path:
        """Write the dataset to one .npz file, atomically."""
        arrays = self.to_arrays()
        saver = np.savez_compressed if compress else np.savez
        path = atomic_write(path, lambda handle: saver(handle, **arrays))
        LOG.info("saved %d sequences (%d frames) to %s", len(self), self.n_frames, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "HumanSequenceDataset":
        """Read and validate a dataset file; SchemaError/InputError say what is wrong."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"human sequence dataset not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
            raise InputError(f"{path} is not a readable human sequence dataset (.npz): {exc}") from None
        return cls.from_arrays(arrays, str(path))

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray], where: str = "dataset") -> "HumanSequenceDataset":
        missing = [k for k in _REQUIRED if k not in a]
        if missing:
            raise SchemaError(f"{where}: not a human sequence dataset (missing {', '.join(missing)})")
        if str(a["format"]) != FORMAT:
            raise SchemaError(f"{where}: format is {str(a['format'])!r}, expected {FORMAT!r}")
        version = int(a["schema_version"])
        if version != SCHEMA_VERSION:
            raise SchemaError(f"{where}: schema version {version}, this code reads version {SCHEMA_VERSION}")
        if not np.array_equal(a["landmark_order"], MP_INDICES):
            raise SchemaError(f"{where}: landmark order differs from the 113-point schema")
        if int(a["space"]) != int(Space.METRIC):
            raise SchemaError(f"{where}: landmarks are in space {int(a['space'])}, expected METRIC")
        offsets = a["offsets"].astype(np.int64)
        n = len(offsets) - 1
        total = int(a["landmarks"].shape[0])
        if (n < 1 or offsets[0] != 0 or offsets[-1] != total or np.any(np.diff(offsets) < 1)):
            raise SchemaError(f"{where}: frame offsets are inconsistent with {total} frames")
        for key in ("fps", "subject", "label", "video_id", "onset_frame", "apex_frame"):
            if a[key].shape != (n,):
                raise SchemaError(f"{where}: {key} has shape {a[key].shape}, expected ({n},)")
        for key in ("intensity", "detected"):
            if a[key].shape != (total,):
                raise SchemaError(f"{where}: {key} has shape {a[key].shape}, expected ({total},)")
        extras = {k[len("extra_"):]: v for k, v in a.items() if k.startswith("extra_")}
        for key, value in extras.items():
            if value.shape[:1] != (total,):
                raise SchemaError(f"{where}: extra {key!r} has {value.shape[0]} frames, expected {total}")
        try:
            meta = json.loads(str(a["meta"]))
        except ValueError as exc:
            raise SchemaError(f"{where}: meta is not JSON: {exc}") from None
        seqs = []
        for i in range(n):
            lo, hi = int(offsets[i]), int(offsets[i + 1])
            seqs.append(_sequence_or_error(where, lambda: HumanSequence(
                landmarks=a["landmarks"][lo:hi], fps=float(a["fps"][i]), subject=str(a["subject"][i]),
                label=str(a["label"][i]), onset_frame=int(a["onset_frame"][i]),
                apex_frame=int(a["apex_frame"][i]), intensity=a["intensity"][lo:hi],
                video_id=str(a["video_id"][i]), detected=a["detected"][lo:hi],
                extras={k: v[lo:hi] for k, v in extras.items()})))
        return cls(seqs, meta)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **self.to_arrays())
        return buffer.getvalue()


def _sequence_or_error(where: str, make) -> HumanSequence:
    try:
        return make()
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from None
