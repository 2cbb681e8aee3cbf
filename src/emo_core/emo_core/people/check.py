"""Check a clip against its ground truth with the real extractor.

``emo bundled check-clips clip.mp4 [clip2.mp4 ...]`` runs Face Mesh (video mode) on each
clip, computes the paper's distance-to-rest curve (rest = mean of the first 5 frames, Savitzky-Golay
smoothing) and prints the recovered apex next to the true one from ``clip.json``. Frames near the
clip's blinks are left out of the search: a blink moves the landmarks more than a smile does.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..schema import canonical_position
from .clip import load_truth, truth_path

LOG = logging.getLogger(__name__)


def read_frames(path: str | Path) -> list[np.ndarray]:
    """All frames of a video file as RGB arrays."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f"cannot open video {path}")
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        cap.release()
    if not frames:
        raise InputError(f"no frames in {path}")
    return frames


def track(frames: list[np.ndarray], fps: float = 30.0) -> np.ndarray:
    """(T, 113, 3) metric landmarks from the real extractor in video mode; InputError if it loses the face."""
    from ..perception import ExtractorConfig, FaceLandmarkExtractor

    with FaceLandmarkExtractor(ExtractorConfig(max_faces=1)) as extractor:
        faces = [extractor.process(f, stamp=i / fps) for i, f in enumerate(frames)]
    missing = [i for i, f in enumerate(faces) if not f.detected]
    if missing:
        raise InputError(f"no face in {len(missing)} frame(s), first {missing[0]}")
    return np.array([f.metric for f in faces])


def distance_to_rest(metric: np.ndarray, window: int = 9, order: int = 2) -> np.ndarray:
    """The paper's curve: distance of the (x, y) landmarks to the first-5-frame rest, smoothed."""
    from scipy.signal import savgol_filter

    xy = metric[..., :2]
    dist = np.linalg.norm((xy - xy[:5].mean(axis=0)).reshape(len(xy), -1), axis=1)
    window = min(window, len(dist) if len(dist) % 2 else len(dist) - 1)  # odd, at most the length
    return savgol_filter(dist, window, order) if window > order else dist


def recovered_apex(metric: np.ndarray, blink_frames: Sequence[int] = (), margin: int = 8) -> int:
    """Frame of maximum smoothed distance to rest, ignoring ``margin`` frames around blinks."""
    curve = distance_to_rest(metric).copy()
    for b in blink_frames:
        curve[max(0, b - margin): b + margin + 1] = -np.inf
    return int(np.argmax(curve))


def check_clip(video: str | Path) -> dict:
    """Recovered vs true apex and the mouth-corner motion at the true apex."""
    truth = load_truth(truth_path(video))
    metric = track(read_frames(video), truth["fps"])
    apex = truth["apex_frame"]
    rest = metric[:5].mean(axis=0)
    corners = {side: np.round((metric[apex, canonical_position(v), :2] - rest[canonical_position(v), :2]).astype(float), 3).tolist()
               for side, v in (("right", 61), ("left", 291))}
    found = recovered_apex(metric, truth.get("blink_frames", []))
    return {"video": str(video), "expression": truth.get("expression"), "apex_frame": apex,
            "recovered_apex": found, "error_frames": found - apex, "corner_shift_at_apex": corners}
