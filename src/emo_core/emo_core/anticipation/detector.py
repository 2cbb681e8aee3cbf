"""Causal (online) peak-activation detector for live use.

The offline algorithm (``peak.py``) needs the whole video; a robot needs to know *now*, from past
frames only, that an expression has started. This detector:

* **calibrates a resting face** from the first frames of the stream (median, robust to a blink),
  then keeps a **rolling neutral**: the median of recent frames in which the face was quiet, so a
  slow drift (posture, lighting, the extractor's bias) does not accumulate into false triggers;
* measures **region-wise displacement** from the neutral (mouth = lips + jaw, brows, eyes), in the
  pose-normalized metric space (head rotation and translation are already removed). The eye region
  carries a small weight because blinks move the eyelids a lot and say nothing about the
  expression; the trigger requires evidence in the mouth or brows;
* tracks the noise floor of that activity while the face is at rest and sets its thresholds as a
  multiple of it (a floor keeps them sane on noiseless data);
* **fires on the rising edge**: activity above ``on`` x noise, rising for ``rise_frames`` frames
  in a row at a minimum rate, and the motion *coherent* (net displacement over the last frames close
  to the path length travelled): an expression's onset moves the landmarks one way, while talking
  makes the mouth go back and forth and a head turn leaves shape-less residual jitter;
* is **suppressed while talking**: the count of direction reversals of mouth motion over the last
  second (oscillation) above ``max_reversals`` blocks firing;
* **re-arms with hysteresis** once the activity has stayed below ``off`` x noise for ``rearm_frames``.

It keeps the last 4 frames (the predictor's input) and their stamps in every :class:`PeakEvent`.
Time comes only from the stamps it is given (core classes never read the wall clock).
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from ..schema import N_LANDMARKS, REGIONS, Face

LOG = logging.getLogger(__name__)

MOUTH = np.concatenate([REGIONS["lips"], REGIONS["jaw"]])
BROWS = np.concatenate([REGIONS["left_brow"], REGIONS["right_brow"]])
EYES = np.concatenate([REGIONS["left_eye"], REGIONS["right_eye"]])


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters (``config/anticipation.yaml``, section ``detector``); thresholds in metric units."""

    calibration_frames: int = 8          # frames of the initial resting face
    neutral_window: int = 60             # quiet frames kept for the rolling neutral (median)
    neutral_update_every: int = 10       # recompute the neutral every N quiet frames
    eye_weight: float = 0.15             # eyes' share of the activity (blinks)
    brow_weight: float = 1.0
    mouth_weight: float = 1.0
    noise_floor: float = 0.004           # minimum noise level (metric units)
    noise_window: int = 60               # quiet frames used to estimate the noise level
    on_factor: float = 4.0               # fire when activity > on_factor * noise ...
    rise_frames: int = 3                 # ... and it rose in each of the last N frames ...
    min_rise_rate: float = 0.02          # ... by at least this much per second on average ...
    min_coherence: float = 0.7           # ... with net/path displacement over those frames >= this
    off_factor: float = 2.5              # re-arm when activity < off_factor * noise ...
    rearm_frames: int = 6                # ... for N frames in a row
    oscillation_window_s: float = 1.0    # talking: mouth direction reversals in this window ...
    max_reversals: int = 3               # ... above this count block firing
    reversal_min_step: float = 0.004     # a reversal counts if the mouth moved at least this much
    max_gap_s: float = 0.25              # a longer gap between frames restarts the frame history
    history: int = 4                     # frames in the window handed to the predictor

    def __post_init__(self) -> None:
        if self.calibration_frames < 1 or self.rise_frames < 1 or self.history < 1:
            raise ConfigError("detector: calibration_frames, rise_frames and history must be >= 1")
        if self.off_factor >= self.on_factor:
            raise ConfigError("detector: off_factor must be below on_factor (hysteresis)")
        if self.noise_floor <= 0:
            raise ConfigError("detector: noise_floor must be > 0")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "DetectorConfig":
        values = dict(values or {})
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ConfigError(f"unknown detector parameter(s): {', '.join(sorted(unknown))}")
        defaults = cls()
        return cls(**{k: type(getattr(defaults, k))(v) for k, v in values.items()})


class DetectorState(str, Enum):
    CALIBRATING = "calibrating"
    ARMED = "armed"
    FIRED = "fired"


@dataclass(frozen=True)
class PeakEvent:
    """A detected peak activation: the predictor's input window and the context it came from."""

    stamp: float                 # stamp of the frame that fired (the window's last frame)
    frame_index: int             # index of that frame in the stream (frames given to update())
    window: np.ndarray           # (history, 113, 2) metric frames, oldest first
    window_stamps: np.ndarray    # (history,)
    rest: np.ndarray             # (113, 2) neutral face at the time of firing
    activation: float            # activity at firing, in noise units


@dataclass
class _Frame:
    xy: np.ndarray
    stamp: float
    activity: float
    mouth: np.ndarray = field(repr=False)


class PeakActivationDetector:
    """Feed it frames in order with :meth:`update`; it returns a :class:`PeakEvent` when it fires."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self._weights = self._point_weights()
        self.reset()

    def _point_weights(self) -> np.ndarray:
        w = np.zeros(N_LANDMARKS, np.float32)
        c = self.config
        # Each region contributes its mean squared displacement times its weight, so region
        # sizes (61 mouth points vs 20 brow points) do not decide the balance.
        for idx, weight in ((MOUTH, c.mouth_weight), (BROWS, c.brow_weight), (EYES, c.eye_weight)):
            w[idx] = weight / len(idx)
        return w

    def reset(self) -> None:
        """Forget everything (new person, new stream): calibrate again."""
        c = self.config
        self.state = DetectorState.CALIBRATING
        self.rest: np.ndarray | None = None
        self._calibration: list[np.ndarray] = []
        self._neutral: deque[np.ndarray] = deque(maxlen=c.neutral_window)
        self._quiet_count = 0
        self._quiet_activity: deque[float] = deque(maxlen=c.noise_window)
        self._frames: deque[_Frame] = deque(maxlen=max(c.history, c.rise_frames + 1))
        self._mouth_track: deque[tuple[float, np.ndarray]] = deque()
        self._below = 0
        self._index = -1
        self.noise = c.noise_floor
        self.last_activity = 0.0

    # ------------------------------------------------------------------------------ stepping
    def update(self, face: Face | np.ndarray, stamp: float | None = None) -> PeakEvent | None:
        """Process one frame (a Face, or (113, 2|3) metric points with ``stamp``)."""
        xy, stamp = self._points(face, stamp)
        self._index += 1
        if xy is None:
            return None
        if self._frames and stamp - self._frames[-1].stamp > self.config.max_gap_s:
            self._frames.clear()
            self._mouth_track.clear()
        if self.state is DetectorState.CALIBRATING:
            return self._calibrate(xy, stamp)
        activity = self._activity(xy)
        self.last_activity = activity / self.noise
        self._frames.append(_Frame(xy, stamp, activity, xy[MOUTH].copy()))
        self._track_mouth(xy, stamp)
        if self.state is DetectorState.FIRED:
            self._maybe_rearm(activity)
            return None
        self._learn_neutral(xy, activity)
        return self._maybe_fire(stamp)

    def _points(self, face: Face | np.ndarray, stamp: float | None) -> tuple[np.ndarray | None, float]:
        if isinstance(face, Face):
            stamp = face.stamp if stamp is None else stamp
            if not face.detected:
                return None, float(stamp)
            pts = face.metric
        else:
            pts = face
            if stamp is None:
                raise InputError("update() needs a stamp when given raw points")
        arr = np.asarray(pts, dtype=np.float32)
        if arr.shape not in ((N_LANDMARKS, 2), (N_LANDMARKS, 3)):
            raise InputError(f"detector expects (113, 2|3) points, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            LOG.debug("frame with NaN/inf landmarks skipped")
            return None, float(stamp)
        return arr[:, :2].copy(), float(stamp)

    def _calibrate(self, xy: np.ndarray, stamp: float) -> None:
        self._calibration.append(xy)
        if len(self._calibration) >= self.config.calibration_frames:
            stack = np.stack(self._calibration)
            self.rest = np.median(stack, axis=0).astype(np.float32)
            self._neutral.extend(stack)
            acts = [self._activity(f) for f in stack]
            self._quiet_activity.extend(acts)
            self._update_noise()
            self.state = DetectorState.ARMED
            self._frames.append(_Frame(xy, stamp, acts[-1], xy[MOUTH].copy()))
            LOG.debug("calibrated on %d frames, noise %.5f", len(stack), self.noise)
        return None

    def _activity(self, xy: np.ndarray) -> float:
        d = xy - self.rest
        return float(np.sqrt(np.dot(self._weights, np.einsum("ij,ij->i", d, d))))

    def _update_noise(self) -> None:
        if self._quiet_activity:
            # Activity at rest is a norm of noise: its median is a robust scale of the jitter.
            self.noise = max(self.config.noise_floor, float(np.median(self._quiet_activity)))

    def _learn_neutral(self, xy: np.ndarray, activity: float) -> None:
        c = self.config
        if activity > c.off_factor * self.noise:
            return
        self._neutral.append(xy)
        self._quiet_activity.append(activity)
        self._quiet_count += 1
        if self._quiet_count % c.neutral_update_every == 0:
            self.rest = np.median(np.stack(self._neutral), axis=0).astype(np.float32)
            self._update_noise()

    def _track_mouth(self, xy: np.ndarray, stamp: float) -> None:
        self._mouth_track.append((stamp, xy[MOUTH].copy()))
        horizon = stamp - self.config.oscillation_window_s
        while self._mouth_track and self._mouth_track[0][0] < horizon:
            self._mouth_track.popleft()

    def mouth_reversals(self) -> int:
        """Direction reversals of the mouth's motion in the oscillation window (talking)."""
        if len(self._mouth_track) < 3:
            return 0
        shapes = np.stack([m for _, m in self._mouth_track]).reshape(len(self._mouth_track), -1)
        # Project the mouth's motion on its main direction in the window: talking swings back
        # and forth along it (jaw opening/closing).
        centred = shapes - shapes.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        signal = centred @ vt[0] / np.sqrt(shapes.shape[1] / 2)
        return _count_reversals(signal, self.config.reversal_min_step)

    # ---------------------------------------------------------------------- firing and re-arming
    def _maybe_fire(self, stamp: float) -> PeakEvent | None:
        c = self.config
        frames = list(self._frames)
        if len(frames) < max(c.history, c.rise_frames + 1):
            return None
        recent = frames[-(c.rise_frames + 1):]
        acts = np.array([f.activity for f in recent])
        if acts[-1] <= c.on_factor * self.noise:
            return None
        if np.any(np.diff(acts) <= 0):
            return None
        dt = recent[-1].stamp - recent[0].stamp
        if dt <= 0 or (acts[-1] - acts[0]) / dt < c.min_rise_rate:
            return None
        if _coherence([f.xy for f in recent], self._weights) < c.min_coherence:
            return None
        if self.mouth_reversals() > c.max_reversals:
            return None
        self.state = DetectorState.FIRED
        self._below = 0
        window = frames[-c.history:]
        return PeakEvent(stamp=stamp, frame_index=self._index,
                         window=np.stack([f.xy for f in window]),
                         window_stamps=np.array([f.stamp for f in window]),
                         rest=self.rest.copy(), activation=float(acts[-1] / self.noise))

    def _maybe_rearm(self, activity: float) -> None:
        c = self.config
        self._below = self._below + 1 if activity < c.off_factor * self.noise else 0
        if self._below >= c.rearm_frames:
            self.state = DetectorState.ARMED
            self._below = 0


def _coherence(frames: list[np.ndarray], weights: np.ndarray) -> float:
    """Net displacement over path length (weighted): 1 for straight-line motion, ~0 for jitter."""
    steps = [np.sqrt(np.dot(weights, np.einsum("ij,ij->i", b - a, b - a))) for a, b in zip(frames[:-1], frames[1:])]
    d = frames[-1] - frames[0]
    net = np.sqrt(np.dot(weights, np.einsum("ij,ij->i", d, d)))
    path = float(np.sum(steps))
    return float(net / path) if path > 0 else 0.0


def _count_reversals(signal: np.ndarray, min_step: float) -> int:
    """Direction changes of ``signal`` (zig-zag with hysteresis: swings under ``min_step`` ignored)."""
    reversals, direction = 0, 0
    extreme = float(signal[0])
    for value in map(float, signal[1:]):
        if direction == 0:
            if abs(value - extreme) >= min_step:
                direction, extreme = (1 if value > extreme else -1), value
        elif direction * (value - extreme) > 0:
            extreme = value                      # still moving the same way: extend the swing
        elif abs(value - extreme) >= min_step:
            reversals += 1
            direction, extreme = -direction, value
    return reversals
