"""Synchrony: when does the robot reach the apex, compared with the human?

The rule, applied the same way to the human and to the robot:

* **apex time** of an intensity curve = the first time it reaches 95 % of its maximum within the
  expression episode, linearly interpolated between samples. A plateau's argmax is decided by noise
  (and a robot holding a pose has a flat top), while the 95 % crossing is stable and is what an
  observer sees as "the face got there". Human and robot use the same rule, so neither is favoured.
* **human intensity** = the ground truth (clip JSON / synthetic sequence ``intensity``: the
  noise-free distance of the expression from rest, blinks and head motion excluded).
* **robot intensity** = the projection of the robot face's displacement from its rest face onto
  the direction of the *reference* robot expression (the human apex face retargeted to the robot,
  paper eq. 1-2), over the brows, lips and jaw: the eyes are left out, as in the project's offline
  peak activation (``peak.eye_weight: 0``), because a blink mirrored onto the eyelids is no
  expression (the human ground truth is blink-free by construction). Displacements are measured
  from the robot's own mean face in the half second before the human onset (a neutral person
  mirrored), so a constant bias of the inverse model does not count. Negative values are clipped.
  A mirroring robot passes the landmarks' frame-to-frame noise on, so its curve is smoothed with a
  centred 0.1 s moving average before the apex rule (centred: no time shift); otherwise a single
  noise spike sets the maximum and the "95 %" crossing lands on the spike.
* **episode window**: from ``before_s`` (0.5 s) before the human onset to ``after_s`` (0.5 s)
  after the human's expression has relaxed below ``release`` (30 %) of its peak (or the end of the
  recording): a late robot is still measured, the next expression (or a false trigger at rest) is not.

``synchrony_ms[mode] = {"median", "median_abs", "n"}`` of (robot apex - human apex) over expressions.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..anticipation.peak import ARRIVAL_FRACTION
from ..schema import N_LANDMARKS, REGIONS

#: The same 95 % the time-to-apex head is trained to (anticipation.peak.arrival_frame).
APEX_FRACTION = ARRIVAL_FRACTION
#: Centred moving-average window applied to the robot curve before the apex rule (seconds).
SMOOTH_S = 0.1


@dataclass(frozen=True)
class Episode:
    """The human side of one expression: its time window and apex (seconds, media time)."""

    start: float
    end: float
    human_apex: float
    onset: float


def crossing_time(times: np.ndarray, values: np.ndarray, fraction: float = APEX_FRACTION,
                  start: float = -np.inf, end: float = np.inf) -> float | None:
    """First time ``values`` reaches ``fraction`` x its maximum within [start, end] (interpolated).

    None when the window holds fewer than two samples or the curve never rises above 0.
    """
    t = np.asarray(times, np.float64)
    v = np.asarray(values, np.float64)
    inside = (t >= start) & (t <= end) & np.isfinite(v)
    if inside.sum() < 2:
        return None
    t, v = t[inside], v[inside]
    peak = float(v.max())
    if peak <= 0:
        return None
    level = fraction * peak
    i = int(np.argmax(v >= level))
    if i == 0:
        return float(t[0])
    # Linear interpolation between the last sample below the level and the first one at/above it.
    v0, v1 = v[i - 1], v[i]
    return float(t[i - 1] + (t[i] - t[i - 1]) * (level - v0) / max(v1 - v0, 1e-12))


def human_episode(intensity: np.ndarray, fps: float, onset_frame: int, *, before_s: float = 0.5,
                  after_s: float = 0.5, release: float = 0.3) -> Episode | None:
    """The episode window and human apex (95 % rule) of a ground-truth intensity curve."""
    x = np.asarray(intensity, np.float64)
    if x.size < 2 or not np.any(x > 0) or onset_frame < 0:
        return None
    times = np.arange(x.size) / fps
    apex = crossing_time(times, x)
    if apex is None:
        return None
    peak_i = int(np.argmax(x))
    after = np.flatnonzero(x[peak_i:] < release * x[peak_i])
    relaxed = times[peak_i + after[0]] if after.size else times[-1]
    onset = onset_frame / fps
    return Episode(start=max(0.0, onset - before_s), end=relaxed + after_s, human_apex=apex, onset=onset)


def expression_mask() -> np.ndarray:
    """(113,) True for the landmarks robot intensity is measured on: brows, lips, jaw (not eyes)."""
    mask = np.ones(N_LANDMARKS, bool)
    mask[np.concatenate([REGIONS["left_eye"], REGIONS["right_eye"]])] = False
    return mask


def robot_intensity(faces: np.ndarray, robot_rest: np.ndarray, reference: np.ndarray,
                    baseline: np.ndarray | None = None) -> np.ndarray:
    """(N,) projection of each robot face's displacement on the reference expression's direction.

    ``faces`` (N, 113, 2), ``robot_rest`` and ``reference`` (113, 2) robot-space landmarks: the
    direction is ``reference - robot_rest``. Displacements are measured from ``baseline`` (default
    ``robot_rest``): the robot's own face just before the expression, so a constant offset of the
    inverse model on a neutral face does not count. Eye landmarks are left out (module docstring).
    In the reference's units: 1.0 = the robot shows the reference expression's full displacement.
    """
    keep = expression_mask()
    direction = (np.asarray(reference, np.float64) - robot_rest)[keep].reshape(-1)
    norm2 = float(direction @ direction)
    if norm2 <= 0:
        return np.zeros(len(faces))
    origin = robot_rest if baseline is None else baseline
    disp = (np.asarray(faces, np.float64) - origin)[:, keep].reshape(len(faces), -1)
    return np.maximum(disp @ direction / norm2, 0.0)


def smooth(times: np.ndarray, values: np.ndarray, window_s: float = SMOOTH_S) -> np.ndarray:
    """Centred moving average over ``window_s`` (evenly sampled ``times``); edges use what exists."""
    v = np.asarray(values, np.float64)
    if len(v) < 3 or window_s <= 0:
        return v
    dt = float(np.median(np.diff(times)))
    k = int(round(window_s / dt)) if dt > 0 else 1
    if k < 2:
        return v
    kernel = np.ones(k)
    return np.convolve(v, kernel, mode="same") / np.convolve(np.ones_like(v), kernel, mode="same")


def summarize(offsets_s: Sequence[float | None]) -> dict[str, float | int | None]:
    """``{"median", "median_abs", "n"}`` in milliseconds of robot apex - human apex."""
    arr = np.asarray([o for o in offsets_s if o is not None and np.isfinite(o)], np.float64) * 1e3
    if arr.size == 0:
        return {"median": None, "median_abs": None, "n": 0}
    return {"median": round(float(np.median(arr)), 1), "median_abs": round(float(np.median(np.abs(arr))), 1),
            "n": int(arr.size)}
