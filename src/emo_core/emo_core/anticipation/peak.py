"""Offline peak activation, exactly as the Emo paper builds its predictor dataset (Methods).

For one video of landmarks:

1. resting face = mean landmarks of the first 5 frames;
2. per frame, the Euclidean distance between the frame's landmarks (113x2, flattened) and the
   resting face -- the paper's "distance to the resting face" curve (its Fig. 8A);
3. smooth the curve with a Savitzky-Golay filter;
4. the **target face** is the frame of maximum smoothed distance;
5. the **peak activation** is the frame of maximum second derivative (acceleration) of the
   smoothed curve.

Choices the paper leaves open (documented in docs/anticipation.md):

* Savitzky-Golay window 15 frames, polynomial order 3 (``scipy.signal.savgol_filter``,
  ``mode="interp"``): 0.5 s at 30 fps (0.6 s at MMI's 25 fps). On synthetic people with
  MediaPipe-like noise, windows of 9/15/21 frames put the peak activation before any movement in
  23/15/9 % of videos; 15 keeps fast onsets (0.2 s) visible while averaging out most frame jitter.
  For a centred window, orders 2 and 3 give the same smoothing kernel.
* ``eye_weight``: weight of the 32 eye landmarks in the distance (1 = the paper, every landmark
  counts). A blink moves the eyelids as far as a whole expression moves the mouth, so with the
  paper's distance 20 % of synthetic videos got a blink as their "target face"; with the eyes left
  out (``eye_weight: 0`` in ``config/anticipation.yaml``, the project's choice) 1-2 % do. The
  algorithm is otherwise unchanged.
* The second derivative is taken numerically (``np.gradient`` twice, central differences) on the
  smoothed curve, i.e. "the second derivative of the processed curve".
* The acceleration maximum is searched in frames ``[rest_frames, target]`` (``peak_before_target``).
  Videos such as MMI's run onset -> apex -> offset, and the offset's landing on the resting face is
  also a positive-acceleration bump; the paper's Fig. 8 shows only rising curves, where both
  readings agree. Set ``peak_before_target=False`` for the literal global maximum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..schema import REGIONS

EYES = np.concatenate([REGIONS["left_eye"], REGIONS["right_eye"]])


@dataclass(frozen=True)
class PeakConfig:
    """Parameters of the offline peak-activation algorithm."""

    rest_frames: int = 5          # paper: resting face = mean of the first five frames
    savgol_window: int = 15       # odd, frames
    savgol_polyorder: int = 3
    peak_before_target: bool = True
    eye_weight: float = 1.0       # 1 = the paper's distance over all 113 landmarks

    def __post_init__(self) -> None:
        if self.rest_frames < 1:
            raise InputError("rest_frames must be >= 1")
        if self.savgol_window < 3 or self.savgol_window % 2 == 0:
            raise InputError("savgol_window must be an odd number >= 3")
        if not 0 <= self.savgol_polyorder < self.savgol_window:
            raise InputError("savgol_polyorder must be in [0, savgol_window)")
        if not 0.0 <= self.eye_weight <= 1.0:
            raise InputError("eye_weight must be in [0, 1]")


@dataclass(frozen=True)
class PeakResult:
    """What the offline algorithm finds in one video."""

    rest: np.ndarray          # (113, D) resting face
    distance: np.ndarray      # (T,) raw distance to the resting face
    smoothed: np.ndarray      # (T,) Savitzky-Golay smoothed distance
    acceleration: np.ndarray  # (T,) second derivative of the smoothed curve (per frame^2)
    target_frame: int         # argmax of the smoothed distance
    peak_frame: int           # argmax of the acceleration (the peak activation)
    #: First frame from the peak activation on where the smoothed distance reaches 95 % of its
    #: maximum: when the face *gets there*. The argmax sits anywhere on the apex plateau (noise
    #: decides), so this, not the target frame, is what the time-to-apex head learns and what the
    #: robot's arrival (and the synchrony measure, pipeline/synchrony.py) is about.
    arrival_frame: int = -1


#: Fraction of the maximum smoothed distance that counts as "arrived" (pipeline/synchrony.py uses it too).
ARRIVAL_FRACTION = 0.95


def arrival_frame(smoothed: np.ndarray, peak: int, target: int) -> int:
    """First frame in [peak, target] whose smoothed distance is >= 95 % of the target's."""
    level = ARRIVAL_FRACTION * float(smoothed[target])
    span = np.asarray(smoothed[peak:target + 1])
    hits = np.flatnonzero(span >= level)
    return peak + int(hits[0]) if hits.size else target


def resting_face(landmarks: np.ndarray, rest_frames: int = 5) -> np.ndarray:
    """Mean landmarks of the first ``rest_frames`` frames of a (T, 113, D) sequence."""
    return landmarks[:rest_frames].mean(axis=0)


def distance_curve(landmarks: np.ndarray, rest: np.ndarray, eye_weight: float = 1.0) -> np.ndarray:
    """Euclidean distance of each frame's landmarks (113 x D, flattened) to the resting face.

    ``eye_weight`` scales the squared displacement of the eye landmarks (1: plain Euclidean).
    """
    diff = landmarks - rest[None]
    sq = np.einsum("tij,tij->ti", diff, diff, dtype=np.float64)
    if eye_weight != 1.0:
        sq[:, EYES] *= eye_weight
    return np.sqrt(sq.sum(axis=1))


def _check(landmarks: np.ndarray, config: PeakConfig) -> np.ndarray:
    arr = np.asarray(landmarks)
    if arr.ndim != 3 or arr.shape[1] != 113 or arr.shape[2] not in (2, 3):
        raise InputError(f"landmark sequence must be (T, 113, 2|3), got {arr.shape}")
    if len(arr) < max(config.savgol_window, config.rest_frames + 2):
        raise InputError(f"sequence of {len(arr)} frames is too short for peak activation "
                         f"(needs >= {max(config.savgol_window, config.rest_frames + 2)})")
    if not np.all(np.isfinite(arr)):
        raise InputError("landmark sequence contains NaN or inf")
    return arr[..., :2].astype(np.float64)


def peak_activation(landmarks: np.ndarray, config: PeakConfig | None = None) -> PeakResult:
    """Run the paper's offline algorithm on a (T, 113, 2|3) landmark sequence (x, y are used)."""
    # Imported here, not at the top: scipy.signal pulls in most of scipy (~70 MB of memory), and the
    # live pipeline (demo, nodes) imports this module but never runs the offline algorithm.
    from scipy.signal import savgol_filter

    config = config or PeakConfig()
    xy = _check(landmarks, config)
    rest = resting_face(xy, config.rest_frames)
    distance = distance_curve(xy, rest, config.eye_weight)
    smoothed = savgol_filter(distance, config.savgol_window, config.savgol_polyorder, mode="interp")
    acceleration = np.gradient(np.gradient(smoothed))
    target = int(np.argmax(smoothed))
    if config.peak_before_target:
        # Search after the resting frames and up to the target; a target inside the resting
        # frames (no expression) degenerates to the target itself.
        lo = min(config.rest_frames, target)
        peak = lo + int(np.argmax(acceleration[lo:target + 1]))
    else:
        peak = int(np.argmax(acceleration))
    return PeakResult(rest=rest.astype(np.float32), distance=distance, smoothed=smoothed,
                      acceleration=acceleration, target_frame=target, peak_frame=peak,
                      arrival_frame=arrival_frame(smoothed, peak, target))
