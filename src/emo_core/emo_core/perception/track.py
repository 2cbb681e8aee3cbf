"""Landmark tracks: per-frame landmarks of a whole video or image folder, saved as one .npz file.

Format (``emo landmarks VIDEO --out FILE.npz``), all plain arrays (load with allow_pickle=False):

=================  ===============  ===================================================
key                shape / dtype    meaning
=================  ===============  ===================================================
format_version     () int           TRACK_FORMAT_VERSION
points_metric      (T,113,3) f32    pose-normalized metric face (zeros where no face)
points_image       (T,113,2) f32    normalized image coordinates (zeros where no face)
detected           (T,) bool        a face was found in that frame
confidence         (T,) f32         detection confidence
stamps             (T,) f64         frame time, seconds of media time
fps                () f64           frames per second of the source
mp_indices         (113,) i64       MediaPipe index of each landmark (canonical order)
source             () str           where the frames came from
=================  ===============  ===================================================
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import atomic_save_npz
from ..errors import SchemaError
from ..schema import MP_INDICES, N_LANDMARKS
from .extractor import FaceLandmarkExtractor
from .sources import FrameSource

LOG = logging.getLogger(__name__)
TRACK_FORMAT_VERSION = 1


@dataclass
class LandmarkTrack:
    points_metric: np.ndarray
    points_image: np.ndarray
    detected: np.ndarray
    confidence: np.ndarray
    stamps: np.ndarray
    fps: float
    source: str = ""

    def __len__(self) -> int:
        return int(self.detected.size)

    def save(self, path: str | Path) -> Path:
        return atomic_save_npz(
            path, format_version=np.array(TRACK_FORMAT_VERSION), points_metric=self.points_metric,
            points_image=self.points_image, detected=self.detected, confidence=self.confidence,
            stamps=self.stamps, fps=np.array(self.fps, dtype=np.float64), mp_indices=MP_INDICES,
            source=np.array(self.source))

    @classmethod
    def load(cls, path: str | Path) -> "LandmarkTrack":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError) as exc:
            raise SchemaError(f"{path}: not a readable landmark track ({exc})") from None
        missing = {"format_version", "points_metric", "detected", "fps"} - arrays.keys()
        if missing:
            raise SchemaError(f"{path}: not a landmark track (missing {', '.join(sorted(missing))})")
        if int(arrays["format_version"]) != TRACK_FORMAT_VERSION:
            raise SchemaError(f"{path}: track format {int(arrays['format_version'])}, "
                              f"expected {TRACK_FORMAT_VERSION}")
        if not np.array_equal(arrays.get("mp_indices", MP_INDICES), MP_INDICES):
            raise SchemaError(f"{path}: landmark order differs from this version's schema")
        return cls(arrays["points_metric"], arrays["points_image"], arrays["detected"],
                   arrays["confidence"], arrays["stamps"], float(arrays["fps"]), str(arrays["source"]))


def extract_track(source: FrameSource, extractor: FaceLandmarkExtractor,
                  progress: bool = False) -> LandmarkTrack:
    """Run the extractor over every frame of a source."""
    metric, image, detected, confidence, stamps = [], [], [], [], []
    total = getattr(source, "frame_count", 0) or len(getattr(source, "files", [])) or None
    for frame in tqdm(source, total=total, disable=not progress, unit="frame", desc="landmarks"):
        face = extractor.process(frame.image, stamp=frame.stamp, camera=source.name)
        metric.append(face.metric)
        image.append(face.image)
        detected.append(face.detected)
        confidence.append(face.confidence)
        stamps.append(frame.stamp)
    n = len(detected)
    LOG.info("%s: %d frames, face in %d", source.name, n, int(np.sum(detected)))
    return LandmarkTrack(
        points_metric=np.array(metric, np.float32).reshape(n, N_LANDMARKS, 3),
        points_image=np.array(image, np.float32).reshape(n, N_LANDMARKS, 2),
        detected=np.array(detected, bool), confidence=np.array(confidence, np.float32),
        stamps=np.array(stamps, np.float64), fps=float(source.fps), source=source.name)
