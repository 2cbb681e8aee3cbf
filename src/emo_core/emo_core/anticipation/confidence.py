"""Using a prediction's confidence: hold it only as far as it is trusted (no torch: the controller
and the ROS nodes import this)."""
from __future__ import annotations

import numpy as np


def blend_toward(now: np.ndarray, target: np.ndarray, confidence: float) -> np.ndarray:
    """``now + c * (target - now)`` with c = confidence clipped to [0, 1] (float32, x/y only): the
    face a consumer holds for a prediction it trusts by ``confidence`` (1: the prediction itself,
    0: mimicry's face ``now``)."""
    now = np.asarray(now, np.float32)[..., :2]
    c = np.float32(min(max(float(confidence), 0.0), 1.0))
    return now + c * (np.asarray(target, np.float32) - now)
