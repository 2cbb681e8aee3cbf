"""Causal (online) peak-activation detector for live use.

The offline algorithm (``peak.py``) needs the whole video; a robot needs to know *now*, from past
frames only, that an expression has started. This detector:

* **calibrates a resting face** from the first frames of the stream (median, robust to a blink),
  then keeps a **rolling neutral**: the median of recent quiet frames (low score, little
  displacement), so slow drift (posture, lighting, the extractor's bias) does not build up;
* scores every frame with a small learned **rising-edge scorer** (``scorer.py``) on the frame's
  displacement from the neutral and its motion over the last 0.1 s, in the pose-normalized metric
  space. The scorer was trained to say "expression rising" on the first movements of expressions
  and "no" on blinks, talking, head turns and a fidgeting neutral face, so those are rejected by
  their pattern (which landmarks move, which way), not by a magnitude threshold that expressions'
  early, tiny motions could never clear;
* **fires on the rising edge** when the score stays above ``on_probability`` for
  ``confirm_frames`` frames in a row (one frame of noise does not fire);
* **re-arms with hysteresis** only once the face is back at rest: its displacement from the
  neutral (lips and brows) below ``off_factor`` x the noise level for ``rearm_frames`` frames. The
  noise level is the median displacement of quiet frames (floored by ``noise_floor``).

Every :class:`PeakEvent` carries the last 4 frames (the predictor's input), their stamps and the
neutral face (the predictor's and the retargeting's resting face). Time comes only from the stamps
it is given (core classes never read the wall clock).
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from ..events import ACTIVE, PeakEvent
from ..schema import N_LANDMARKS, Face, canonical_position
from .scorer import ExpressionScorer, displacement, frame_features

LOG = logging.getLogger(__name__)



@dataclass(frozen=True)
class DetectorConfig:
    """Parameters (``config/anticipation.yaml``, section ``detector``); distances in metric units."""

    calibration_frames: int = 8          # frames of the initial resting face (median)
    neutral_window: int = 60             # quiet frames kept for the rolling neutral (median)
    neutral_update_every: int = 10       # recompute the neutral every N quiet frames
    on_probability: float = 0.95         # fire when the scorer says "rising" above this ...
    confirm_frames: int = 2              # ... for this many frames in a row
    quiet_probability: float = 0.3       # a frame below this score (and near rest) is "quiet"
    noise_floor: float = 0.003           # minimum noise level of the rest displacement
    noise_window: int = 60               # quiet frames used to estimate the noise level
    off_factor: float = 2.5              # "back at rest": displacement < off_factor * noise ...
    rearm_frames: int = 6                # ... for N frames in a row re-arms the detector
    #: A rising edge is motion: fire only when lips/brows moved at least ``min_motion`` x the
    #: noise level over the scorer's longest lag. A face that sits displaced but still (a residual
    #: expression after a smile, the tracker settling) is no onset; such a face near rest is also
    #: learned into the rolling neutral, whatever the scorer says. 0 disables both.
    min_motion: float = 1.0
    max_gap_s: float = 0.25              # a longer gap between frames restarts the frame history
    #: Re-arm when the face settles anywhere, not only back at rest: after a firing, once the
    #: lips/brows moved less than ``settle_motion`` x the noise level for ``settle_frames`` frames
    #: in a row, the detector re-arms and scores the next onset against the face it settled on (an
    #: *anchor*), so a transition from one expression to the next is a rising edge like one from
    #: rest. Real people go from a smile to a laugh without a neutral face in between. 0 frames: off
    #: (re-arm only at rest).
    settle_motion: float = 1.0
    settle_frames: int = 8
    #: Re-arm at the latest this long after a firing (seconds), against the face of that moment
    #: (an anchor, as for a settled face). A real tracker's face rarely looks "still" by the noise
    #: level's yardstick, so without it a detector that fired once could stay disarmed through the
    #: next expressions. 0: off (re-arm only at rest or where the face settles).
    rearm_timeout_s: float = 0.0
    history: int = 4                     # frames in the window handed to the predictor
    #: Frames over which the gates' lips/brows motion is measured (the ``min_motion`` and settle gates).
    motion_lag: int = 3
    #: The gates' yardstick. 0: the rest-displacement noise level (``noise``). N > 0: the person's
    #: own stillness, the ``motion_quantile`` of their lips/brows motion over the last N frames
    #: (floored by ``noise_floor``). Real trackers wander slowly around a still face (their
    #: displacement from the calibrated rest is several times their frame-to-frame jitter), so a
    #: noise level learned from 8 calibration frames is far too small for them and no face ever
    #: looks "still" or "at rest"; the motion quantile is scale-free and needs no calibration.
    motion_window: int = 0
    motion_quantile: float = 0.3
    #: Head-motion rule: no firing while the head turns faster than this (deg/s, measured over
    #: ``head_lag`` frames from :attr:`Face.head_rotation`; raw points carry no rotation, so the
    #: rule is inactive for them). The pose normalizer does not cancel all of a real head turn's
    #: effect on the 2-D landmarks. 0: off.
    max_head_speed: float = 0.0
    head_lag: int = 5
    #: Rest and noise from still frames. 0: the noise level is the median displacement of the
    #: calibration and quiet frames (on a real tracker those are nearly identical frames, so the
    #: noise comes out several times too small and the face never looks "at rest"). N > 0: over the
    #: last N *still* frames (lips/brows motion over ``motion_lag`` below ``still_factor`` x the
    #: median motion of the last N frames, i.e. the tracker's own jitter), the rest face is their
    #: median and the noise level their median displacement from it: the slow wander of a still
    #: face, whatever the tracker. ``rest_from_still`` also makes that median the neutral while the
    #: detector is armed at rest.
    rest_window: int = 0
    still_factor: float = 1.0
    rest_from_still: bool = False
    #: Talking rule: no firing while the lip aperture (inner lip centres) swung up and down at least
    #: ``talk_swings`` times by more than ``talk_amplitude`` (metric units) over the last
    #: ``talk_window`` frames. Speech opens and closes the mouth several times a second; an
    #: expression opens it once. 0 frames: off.
    talk_window: int = 0
    talk_amplitude: float = 0.04
    talk_swings: int = 2
    #: Scale-free swing size: the swing must also exceed ``talk_relative`` x the median
    #: frame-to-frame aperture change of the last 150 frames (a jittery tracker's mouth "swings"
    #: every frame). 0: absolute ``talk_amplitude`` only.
    talk_relative: float = 0.0

    def __post_init__(self) -> None:
        if min(self.calibration_frames, self.confirm_frames, self.history, self.rearm_frames) < 1:
            raise ConfigError("detector: calibration_frames, confirm_frames, history and rearm_frames must be >= 1")
        if not 0.0 < self.quiet_probability < self.on_probability < 1.0:
            raise ConfigError("detector: need 0 < quiet_probability < on_probability < 1")
        if self.noise_floor <= 0 or self.off_factor <= 0:
            raise ConfigError("detector: noise_floor and off_factor must be > 0")
        if self.max_head_speed < 0 or self.head_lag < 1:
            raise ConfigError("detector: need max_head_speed >= 0 and head_lag >= 1")
        if self.motion_lag < 1 or self.motion_window < 0 or not 0.0 < self.motion_quantile < 1.0:
            raise ConfigError("detector: need motion_lag >= 1, motion_window >= 0, 0 < motion_quantile < 1")
        if self.rest_window < 0 or self.still_factor <= 0:
            raise ConfigError("detector: need rest_window >= 0 and still_factor > 0")
        if self.talk_window < 0 or self.talk_amplitude <= 0 or self.talk_swings < 1 or self.talk_relative < 0:
            raise ConfigError("detector: need talk_window >= 0, talk_amplitude > 0 and talk_swings >= 1")
        if self.min_motion < 0 or self.settle_motion < 0 or self.settle_frames < 0 or not self.rearm_timeout_s >= 0:
            raise ConfigError("detector: min_motion, settle_motion, settle_frames and rearm_timeout_s must be >= 0")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "DetectorConfig":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown detector parameter(s): {', '.join(sorted(unknown))}")
        defaults = cls()
        return cls(**{k: _cast(type(getattr(defaults, k)), v) for k, v in values.items()})


def _cast(kind: type, value: Any) -> Any:
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"detector: expected true/false, got {value!r}")
    return kind(value)


class DetectorState(str, Enum):
    CALIBRATING = "calibrating"
    ARMED = "armed"
    FIRED = "fired"


class PeakActivationDetector:
    """Feed it frames in order with :meth:`update`; it returns a :class:`PeakEvent` when it fires.

    ``scorer``: the learned rising-edge scorer; ``None`` loads the one shipped with the default
    predictor (``emo_core/data/predictor``).
    """

    def __init__(self, config: DetectorConfig | None = None, scorer: ExpressionScorer | None = None) -> None:
        self.config = config or DetectorConfig()
        self.scorer = scorer if scorer is not None else ExpressionScorer.load(None)
        if self.scorer.spec.calibration_frames != self.config.calibration_frames:
            LOG.debug("detector calibrates on %d frames, scorer was trained with %d",
                      self.config.calibration_frames, self.scorer.spec.calibration_frames)
        spec = self.scorer.spec
        self._need = max(self.config.history, spec.history, spec.smooth_frames + self.config.motion_lag)
        self.reset()

    def reset(self) -> None:
        """Forget everything (new person, new stream): calibrate again."""
        c = self.config
        self.state = DetectorState.CALIBRATING
        self.rest: np.ndarray | None = None
        self._calibration: list[np.ndarray] = []
        self._neutral: deque[np.ndarray] = deque(maxlen=c.neutral_window)
        self._quiet_count = 0
        self._quiet_activity: deque[float] = deque(maxlen=c.noise_window)
        self._xy: deque[np.ndarray] = deque(maxlen=self._need)
        self._stamps: deque[float] = deque(maxlen=self._need)
        self._run = 0
        self._below = 0
        self._since_fire = 0                     # frames scored since the last firing
        self._fired_at = 0.0                     # stamp of the last firing
        self._index = -1
        self._rest_version = 0
        self._appended = 0                       # frames appended to the history so far
        self._d_cache: dict[tuple[int, int], np.ndarray] = {}
        self.noise = c.noise_floor
        self.rest_noise = c.noise_floor          # "at rest" yardstick (the still-frame wander with rest_window)
        self.still_rest: np.ndarray | None = None
        self._motions: deque[float] = deque(maxlen=max(c.motion_window, 1))
        self.motion_noise = c.noise_floor
        self._rotations: deque[tuple[float, np.ndarray]] = deque(maxlen=c.head_lag + 1)
        self.head_speed = 0.0                    # deg/s over head_lag frames (0 without rotations)
        self.last_probability = 0.0
        self.last_scored_frame = -1             # index of the last frame the scorer saw (-1: none yet)
        self.last_activity = 0.0
        self.last_motion = 0.0
        self._anchor: np.ndarray | None = None   # the settled face onsets are scored against (None: the neutral)
        self._settled = 0
        self._still: deque[np.ndarray] = deque(maxlen=max(c.rest_window, 1))
        self._all_motion: deque[float] = deque(maxlen=max(c.rest_window, 1))
        self._still_count = 0
        self._still_motion: deque[float] = deque(maxlen=max(c.rest_window, 1))
        self.still_jitter = c.noise_floor        # median motion of the still frames (the gates' yardstick)
        self.jitter = c.noise_floor              # median lips/brows motion (rest_window > 0)
        self._aperture: deque[float] = deque(maxlen=max(c.talk_window, 1))
        self.talking = False
        self._aperture_steps: deque[float] = deque(maxlen=150)
        self._aperture_jitter = 0.0

    # ------------------------------------------------------------------------------ stepping
    def update(self, face: Face | np.ndarray, stamp: float | None = None) -> PeakEvent | None:
        """Process one frame (a Face, or (113, 2|3) metric points with ``stamp``)."""
        xy, stamp = self._points(face, stamp)
        self._index += 1
        if xy is None:
            return None
        self._track_head(face, stamp)
        if self._stamps and stamp - self._stamps[-1] > self.config.max_gap_s:
            self._xy.clear()
            self._stamps.clear()
            self._d_cache.clear()
            self._run = 0
        if self.state is DetectorState.CALIBRATING:
            self._calibrate(xy)
            return None
        self._xy.append(xy)
        self._stamps.append(stamp)
        self._appended += 1
        if self.config.talk_window:
            self._track_talking(xy)
        if len(self._xy) < self._need:
            return None
        probability, activity, motion = self._score()
        if self.config.rest_window:
            self._track_still(motion)
        if self._anchor is not None:
            # Scored against the anchor; "at rest" is always judged against the neutral.
            assert self.rest is not None, "scored before calibration"
            activity = _activity(displacement(self._smoothed(0), self.rest))
        self.last_probability = probability
        self.last_scored_frame = self._index
        self.last_activity = activity / self.noise
        self.last_motion = motion / self.noise
        c = self.config
        if c.motion_window:
            self._motions.append(motion)
            if self._appended % 5 == 0 or len(self._motions) < 5:
                self.motion_noise = max(c.noise_floor, float(np.quantile(self._motions, c.motion_quantile)))
        gate = self.motion_noise if c.motion_window else (self.still_jitter if c.rest_window else self.noise)
        if self.state is DetectorState.FIRED:
            self._since_fire += 1
            self._maybe_rearm(activity, motion, gate, stamp)
            return None
        if self._anchor is not None and activity < c.off_factor * self.rest_noise:
            self._set_anchor(None)           # back at rest: score against the neutral again
        still = c.min_motion > 0 and motion < c.min_motion * gate
        if (probability < c.quiet_probability or still) and activity < c.off_factor * self.rest_noise:
            self._learn_neutral(xy, activity)
        turning = c.max_head_speed > 0 and self.head_speed > c.max_head_speed
        blocked = turning or self.talking
        self._run = self._run + 1 if (probability > c.on_probability and not still and not blocked) else 0
        if self._run < self.config.confirm_frames:
            return None
        return self._fire(stamp, probability)

    def _track_head(self, face: Face | np.ndarray, stamp: float) -> None:
        rot = getattr(face, "head_rotation", None) if isinstance(face, Face) else None
        if rot is None or not np.all(np.isfinite(rot)):
            self._rotations.clear()
            self.head_speed = 0.0
            return
        self._rotations.append((stamp, np.asarray(rot, np.float64)))
        if len(self._rotations) < 2:
            self.head_speed = 0.0
            return
        (t0, r0), (t1, r1) = self._rotations[0], self._rotations[-1]
        cos = np.clip((np.trace(r1 @ r0.T) - 1.0) / 2.0, -1.0, 1.0)
        self.head_speed = float(np.degrees(np.arccos(cos)) / max(t1 - t0, 1e-6))

    def _track_talking(self, xy: np.ndarray) -> None:
        """Lip-aperture swings over the last ``talk_window`` frames (a zigzag with hysteresis)."""
        c = self.config
        aperture = float(np.linalg.norm(xy[_LIP_TOP] - xy[_LIP_BOTTOM]))
        amplitude = c.talk_amplitude
        if c.talk_relative > 0:
            if self._aperture:
                self._aperture_steps.append(abs(aperture - self._aperture[-1]))
            if self._appended % 5 == 0 or len(self._aperture_steps) < 5:
                self._aperture_jitter = float(np.median(self._aperture_steps)) if self._aperture_steps else 0.0
            amplitude = max(amplitude, c.talk_relative * self._aperture_jitter)
        self._aperture.append(aperture)
        self.talking = swings(self._aperture, amplitude) >= c.talk_swings

    def _track_still(self, motion: float) -> None:
        """Rest face and noise level from the still frames of the last ``rest_window`` frames."""
        c = self.config
        self._all_motion.append(motion)
        if self._appended % 5 == 0 or len(self._all_motion) < 5:
            self.jitter = max(c.noise_floor, float(np.median(self._all_motion)))
        if motion >= c.still_factor * self.jitter:
            return
        self._still_motion.append(motion)
        self._still.append(self._smoothed(0))
        self._still_count += 1
        if self._still_count % c.neutral_update_every or len(self._still) < max(c.rest_window // 4, 2):
            return
        stack = np.stack(self._still)
        center = np.median(stack, axis=0).astype(np.float32)
        spread = float(np.median([_activity(displacement(f, center)) for f in stack]))
        self.still_rest = center
        self.rest_noise = max(c.noise_floor, spread)
        self.still_jitter = max(c.noise_floor, float(np.median(self._still_motion)))
        if c.rest_from_still and self.state is DetectorState.ARMED and self._anchor is None:
            self.rest = center
            self._rest_version += 1

    def window_event(self, stamp: float) -> PeakEvent | None:
        """The newest window as a :class:`PeakEvent` (no state change): what the predictor would see
        if the detector fired now. The pipeline re-predicts with it while an expression unfolds."""
        n = self.config.history
        if self.rest is None or len(self._xy) < n:
            return None
        return PeakEvent(stamp=float(stamp), frame_index=self._index, window=np.stack(list(self._xy)[-n:]),
                         window_stamps=np.array(list(self._stamps)[-n:]), rest=self.rest.copy(),
                         activation=self.last_probability)

    def refresh_event(self, stamp: float, every: int, min_motion: float) -> PeakEvent | None:
        """After a firing, while the expression still unfolds: on every ``every``-th frame since the
        firing on which the lips/brows still move (``last_motion >= min_motion``), the newest window
        (:meth:`window_event`). The ROS graph's predictor re-predicts on these; the in-process
        pipeline asks :meth:`window_event` itself while it holds a prediction. Call after
        :meth:`update` on the same frame."""
        if (self.state is not DetectorState.FIRED or every <= 0 or self._since_fire == 0
                or self._since_fire % every or self.last_motion < min_motion):
            return None
        return self.window_event(stamp)

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

    def _calibrate(self, xy: np.ndarray) -> None:
        self._calibration.append(xy)
        if len(self._calibration) < self.config.calibration_frames:
            return
        stack = np.stack(self._calibration)
        self.rest = np.median(stack, axis=0).astype(np.float32)
        self._neutral.extend(stack)
        # Calibration frames are single frames (noisier than the 2-frame mean the scorer uses):
        # a conservative first noise level, replaced as quiet frames come in.
        self._quiet_activity.extend(_activity(displacement(f, self.rest)) for f in stack)
        self._update_noise()
        self.state = DetectorState.ARMED
        LOG.debug("calibrated on %d frames, noise %.5f", len(stack), self.noise)

    def _score(self) -> tuple[float, float, float]:
        spec = self.scorer.spec
        d_now = self._displacement(0)
        d_past = [self._displacement(lag) for lag in spec.lags]
        pts = spec.points
        feats = frame_features(d_now[pts], [d[pts] for d in d_past], spec.static)
        return (float(self.scorer.probability(feats)[0]), _activity(d_now),
                _activity(d_now - self._displacement(self.config.motion_lag)))

    def _smoothed(self, lag: int) -> np.ndarray:
        """The scorer's smoothed frame ``lag`` frames ago (mean of its ``smooth_frames``)."""
        k, n = self.scorer.spec.smooth_frames, len(self._xy)
        end = n - lag
        if k == 1:
            return self._xy[end - 1]
        total = self._xy[end - k]            # k >= 1 (ScorerSpec checks it); summed oldest first
        for i in range(end - k + 1, end):
            total = total + self._xy[i]
        return total * (1.0 / k)

    def _set_anchor(self, face: np.ndarray | None) -> None:
        self._anchor = None if face is None else np.asarray(face, np.float32).copy()
        self._rest_version += 1              # cached displacements were from the old reference

    def _displacement(self, lag: int) -> np.ndarray:
        """Displacement from the reference (the neutral, or the anchor the face settled on) of the
        smoothed frame ``lag`` frames ago (cached per frame)."""
        key = (self._appended - lag, self._rest_version)
        hit = self._d_cache.get(key)
        if hit is not None:
            return hit
        smoothed = self._smoothed(lag)
        reference = self.rest if self._anchor is None else self._anchor
        assert reference is not None, "scored before calibration"
        d = displacement(smoothed, reference)
        self._d_cache[key] = d
        if len(self._d_cache) > 4 * self._need:
            for old in sorted(self._d_cache)[:len(self._d_cache) - 2 * self._need]:
                del self._d_cache[old]
        return d

    def _update_noise(self) -> None:
        if self._quiet_activity:
            self.noise = max(self.config.noise_floor, float(np.median(self._quiet_activity)))
        if self.still_rest is None:
            self.rest_noise = self.noise         # until the still-frame estimate takes over

    def _learn_neutral(self, xy: np.ndarray, activity: float) -> None:
        self._neutral.append(xy)
        self._quiet_activity.append(activity)
        self._quiet_count += 1
        if self._quiet_count % self.config.neutral_update_every == 0:
            self.rest = np.median(np.stack(self._neutral), axis=0).astype(np.float32)
            self._rest_version += 1
            self._update_noise()

    def _fire(self, stamp: float, probability: float) -> PeakEvent:
        self.state = DetectorState.FIRED
        self._below = self._settled = 0
        self._run = 0
        self._since_fire = 0
        self._fired_at = stamp
        n = self.config.history
        # Firing needs the ARMED state, which calibration (setting ``rest``) entered.
        assert self.rest is not None, "fired before calibration"
        return PeakEvent(stamp=stamp, frame_index=self._index,
                         window=np.stack(list(self._xy)[-n:]),
                         window_stamps=np.array(list(self._stamps)[-n:]),
                         rest=self.rest.copy(), activation=probability)

    def _maybe_rearm(self, activity: float, motion: float, gate: float, stamp: float) -> None:
        c = self.config
        self._below = self._below + 1 if activity < c.off_factor * self.rest_noise else 0
        self._settled = self._settled + 1 if motion < c.settle_motion * gate else 0
        if self._below >= c.rearm_frames:
            self._set_anchor(None)
        elif c.settle_frames and self._settled >= c.settle_frames:
            self._set_anchor(self._smoothed(0))
            LOG.debug("face settled away from rest: re-armed against it")
        elif c.rearm_timeout_s > 0 and stamp - self._fired_at >= c.rearm_timeout_s:
            self._set_anchor(self._smoothed(0))
            LOG.debug("re-armed %.2f s after the firing, against the present face", stamp - self._fired_at)
        else:
            return
        self.state = DetectorState.ARMED
        self._below = self._settled = 0
        self._run = 0


_LIP_TOP, _LIP_BOTTOM = canonical_position(13), canonical_position(14)   # inner lip centres


def swings(values: Iterable[float], amplitude: float) -> int:
    """Reversals of direction by more than ``amplitude`` in ``values`` (zigzag with hysteresis)."""
    it = iter(values)
    lo = hi = next(it, 0.0)
    direction = 0                                # +1 rising, -1 falling, 0 not yet known
    count = 0
    for x in it:
        if direction >= 0:
            if x > hi:
                hi = x
            elif hi - x > amplitude:
                count += direction > 0
                direction, lo = -1, x
                continue
        if direction <= 0:
            if x < lo:
                lo = x
            elif x - lo > amplitude:
                count += direction < 0
                direction, hi = 1, x
    return count


def _activity(d: np.ndarray) -> float:
    """RMS displacement of the lips and brows (the regions every expression moves)."""
    sel = d[ACTIVE].ravel()
    # Mean over points of |d|^2 as one dot product (runs twice per frame: keep it to one call).
    return float(np.sqrt(np.dot(sel, sel) / len(ACTIVE)))
