"""Landmark stage vs the raw MediaPipe call it wraps, side by side on the same 640x480 frames.

The reference is the public ``mp.solutions.face_mesh.FaceMesh(...).process(rgb)`` with the same
settings (video mode, same number of faces): the call any user of MediaPipe would make. Our stage
adds input checks, the detection-score stream, reading the 113 + 26 anchor points and the pose
normalization. Both run in video (tracking) mode on a face that drifts a little every frame, and
their calls are interleaved so machine noise hits both equally.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..native import quiet_native_stderr
from ..perception.extractor import ExtractorConfig, FaceLandmarkExtractor
from .timing import BenchResult, interleaved, percentiles_ms

NAME = "landmarks"
SIZE = (640, 480)


def _frames(count: int) -> list[np.ndarray]:
    """A 640x480 camera-like stream: the astronaut's head drifting and rotating slightly."""
    from skimage import data

    head = cv2.resize(data.astronaut()[20:276, 110:366], (300, 300), interpolation=cv2.INTER_AREA)
    canvas = np.full((SIZE[1], SIZE[0], 3), 120, np.uint8)
    canvas[90:390, 170:470] = head
    frames = []
    for i in range(count):
        angle = 3.0 * np.sin(i / 15)
        # float64 already (asarray does not copy); cv2's stubs only say "integer or floating".
        matrix = np.asarray(cv2.getRotationMatrix2D((320, 240), angle, 1.0), np.float64)
        matrix[:, 2] += (6 * np.sin(i / 10), 4 * np.cos(i / 12))
        frames.append(cv2.warpAffine(canvas, matrix, SIZE, borderMode=cv2.BORDER_REPLICATE))
    return frames


def _compare(max_faces: int, frames: list[np.ndarray], repeats: int) -> dict:
    from mediapipe.python.solutions.face_mesh import FaceMesh

    with quiet_native_stderr():
        raw = FaceMesh(static_image_mode=False, max_num_faces=max_faces)
    stage = FaceLandmarkExtractor(ExtractorConfig(max_faces=max_faces))
    counter = {"raw": 0, "stage": 0}

    def run_raw() -> None:
        raw.process(frames[counter["raw"] % len(frames)])
        counter["raw"] += 1

    def run_stage() -> None:
        face = stage.process(frames[counter["stage"] % len(frames)])
        counter["stage"] += 1
        if not face.detected:
            raise RuntimeError("benchmark face lost: the figures would not be comparable")

    times = interleaved({"mediapipe": run_raw, "stage": run_stage}, repeats=repeats, warmup=20)
    raw.close()
    stage.close()
    mp_ms, stage_ms = percentiles_ms(times["mediapipe"]), percentiles_ms(times["stage"])
    return {
        "mediapipe_ms": mp_ms,
        "stage_ms": stage_ms,
        "stage_fps": 1e3 / stage_ms["mean"],
        "ratio": stage_ms["mean"] / mp_ms["mean"],
    }


def run(quick: bool = False) -> BenchResult:
    repeats = 60 if quick else 400
    frames = _frames(120)
    one = _compare(1, frames, repeats)
    two = _compare(2, frames, repeats)
    figures = {
        "frame_size": f"{SIZE[0]}x{SIZE[1]}",
        "max_faces_2.mediapipe_ms": two["mediapipe_ms"],
        "max_faces_2.stage_ms": two["stage_ms"],
        "max_faces_2.stage_fps": round(two["stage_fps"], 1),
        "max_faces_1.mediapipe_ms": one["mediapipe_ms"],
        "max_faces_1.stage_ms": one["stage_ms"],
        "max_faces_1.stage_fps": round(one["stage_fps"], 1),
    }
    ratios = {
        "landmarks_vs_mediapipe": round(two["ratio"], 3),
        "landmarks_vs_mediapipe_1face": round(one["ratio"], 3),
    }
    return BenchResult(figures=figures, ratios=ratios)
