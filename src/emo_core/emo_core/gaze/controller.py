"""GazeController: eyes and neck that find the face in the eye camera and keep looking at it.

Per camera frame, from where the face is in the image (:func:`~emo_core.gaze.geometry.face_centre`
of the very Face the expression pipeline uses, so with several people both follow the same one)
and the joint angles the frame was taken at, the controller works out the face's direction in the
base frame and sets gaze and neck targets the way people move their eyes and head:

* **Saccade** -- when the face is more than ``dead_band_deg`` away from the *fixation* (the
  base-frame direction the eyes hold, or are on their way to), the fixation jumps to it; a
  20-degree jump cannot be done by the next command's arrival, so the servo driver moves the eyes
  at their full speed with its lag lead. Inside the dead band the fixation stays put, so landmark
  noise does not make the eyes hunt. (Comparing with the fixation, not with where the camera points
  now, is what keeps a saccade in flight from being re-triggered frame after frame.)
* **Pursuit** -- the face's angular velocity (an exponential average of successive directions,
  up to ``pursuit_max_deg_s``: faster is a jump, not motion to pursue) carries the fixation along
  between frames and is extrapolated over ``latency_s`` (the frame is that old when its command
  reaches the servos), so a walking person is followed, not stepped after.
* **Neck** -- a critically damped second-order reference (time constant ``neck_tau_s``, at most
  ``neck_speed_fraction`` of the neck servos' speed limits) follows the fixation slowly; the eyes
  counter-rotate by exactly the neck's reference (:func:`eye_angles_for`), so the face stays
  fixated while the head turns and the eyes drift back toward centre. Large gaze shifts use the
  head at once, as people's do (eye-only shifts stay under ~15-20 deg): the neck reference is never
  more than ``eye_comfort_deg`` from the fixation, so for a 20-degree jump the neck starts at its
  full speed with the eyes, which saves the eyes the last degrees of their range, where the driver
  has no room left for its lag lead and the eye would crawl in at the plant's time constant.
  For the same reason a saccade is *timed*: due when the driver's lead (``servo_lag_s`` x speed)
  still fits between the eye's target and its limit, so the eye follows its setpoint exactly
  and lands then, instead of a clipped lead and a slow exponential finish; later frames keep
  that arrival time until it has passed, and their face positions are not used until
  ``saccade_settle_s`` after it (saccadic suppression: a landmark tracker lags a view in fast motion). Gaze and neck commands are
  due ``lead_s`` after the frame (the next command's arrival), so the driver moves them smoothly
  between frames. (Commands due *now* would make the driver's lag lead a one-cycle spike of 20x
  each frame's step: the counter-rotating eyes were thrown back by it in the first version.)
* **Face lost** -- everything holds for ``lost_hold_s``, then the fixation returns to the centre
  (the neck at its own slow pace); once there the controller stops commanding (the servo driver
  holds, and its watchdog takes over if nothing else is sent).

Limits: the eyes stay ``limit_margin_deg`` inside their range, the neck reference inside its range
and speed, all from ``config/servos.yaml`` through :class:`~emo_core.gaze.geometry.GazeJoints`.
The neck's roll stays level (no eye rotation could counter a roll).

No ROS, no clock: media time comes from the frame stamps.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError, InputError
from ..schema import Face
from .geometry import EyeCamera, GazeJoints, JOINTS, Pose, eye_angles_for, face_centre

LOG = logging.getLogger(__name__)


class GazePhase(str, Enum):
    IDLE = "idle"            # no face yet (or back at centre after losing it): nothing commanded
    SACCADE = "saccade"      # the fixation jumped this frame
    FIXATE = "fixate"        # on the face (inside the dead band, or pursuing)
    HOLD = "hold"            # face lost, holding
    RETURN = "return"        # face lost for long, going back to centre


@dataclass(frozen=True)
class GazeConfig:
    #: Re-fixate (saccade) when the face is this far (deg) from the camera's axis.
    dead_band_deg: float = 1.0
    #: Neck reference: critically damped, time constant (s); 80 % of a step after 3 time constants.
    neck_tau_s: float = 0.3
    #: The neck reference moves at most this fraction of the neck servos' max_velocity.
    neck_speed_fraction: float = 0.8
    #: The neck only re-targets when the fixation moved this far (deg) from its goal (no creeping).
    neck_dead_band_deg: float = 1.0
    #: The neck reference stays within this (deg) of the fixation: larger shifts turn the head at once.
    eye_comfort_deg: float = 8.0
    #: Keep the eyes this far (deg) inside their servo limits.
    limit_margin_deg: float = 1.0
    #: Pursuit: weight of each new face velocity sample in its exponential average (0: no pursuit).
    pursuit_gain: float = 0.2
    #: Face velocities below this (deg/s) are noise, not motion ...
    pursuit_min_deg_s: float = 3.0
    #: ... and above this a jump (a saccade's business), not motion to pursue.
    pursuit_max_deg_s: float = 80.0
    #: Frame exposure -> command at the servos (s): what the pursuit extrapolates over.
    latency_s: float = 1.0 / 30.0
    #: Gaze/neck commands are due this long after their frame (the next command's arrival).
    lead_s: float = 2.0 / 30.0
    #: Face positions are not used until this long (s) after a saccade's planned landing.
    saccade_settle_s: float = 0.1
    #: The servo driver's lag model (servos.yaml driver.servo_lag_s): times saccades (see above).
    servo_lag_s: float = 0.2
    #: Face lost: hold this long (s), then return to centre.
    lost_hold_s: float = 1.0
    #: Back at centre within this (deg): stop commanding.
    centre_tolerance_deg: float = 0.3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"gaze: {f.name} must be a finite number >= 0, got {value!r}")
        if self.neck_tau_s <= 0:
            raise ConfigError("gaze: neck_tau_s must be > 0")
        if not 0 < self.neck_speed_fraction <= 1:
            raise ConfigError(f"gaze: neck_speed_fraction must be in (0, 1], got {self.neck_speed_fraction}")
        if self.pursuit_gain > 1:
            raise ConfigError(f"gaze: pursuit_gain must be in [0, 1], got {self.pursuit_gain}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "GazeConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values or {}) - names)
        if unknown:
            raise ConfigError(f"unknown gaze setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**{k: float(v) for k, v in (values or {}).items()})


@dataclass(frozen=True)
class GazeCommand:
    """What the controller asks of the gaze and neck servos for one frame."""

    stamp: float                   # the camera frame it derives from
    execute_at: float              # when the servos should be there
    pose: Pose                     # joint angles (deg)
    positions: np.ndarray          # (5,) normalized, JOINTS order, within [0, 1]
    names: tuple[str, ...] = JOINTS


@dataclass(frozen=True)
class GazeState:
    """The controller's view after a frame (the ``gaze/state`` topic, the demo's overlay)."""

    stamp: float
    phase: GazePhase
    face_centre: tuple[float, float] | None     # normalized image position, None without a face
    error_deg: float | None                     # face direction vs the camera axis at the frame
    face_direction: tuple[float, float] | None  # base-frame (yaw, pitch) of the face
    fixation: tuple[float, float]               # where the eyes hold (base frame)
    pose: Pose                                  # commanded joint angles


class GazeController:
    """Frame by frame: ``update(face, stamp, pose_at_frame) -> GazeCommand | None`` (see module doc)."""

    def __init__(self, joints: GazeJoints | None = None, camera: EyeCamera | None = None,
                 config: GazeConfig | None = None) -> None:
        self.joints = joints or GazeJoints()
        self.camera = camera or EyeCamera()
        self.config = config or GazeConfig()
        ny, npitch = self.joints["neck_yaw"], self.joints["neck_pitch"]
        frac = self.config.neck_speed_fraction
        self._neck_speed = np.array([ny.max_speed_deg_s, npitch.max_speed_deg_s]) * frac
        self.reset()

    def reset(self) -> None:
        self._fixation = np.zeros(2)               # (yaw, pitch) the eyes hold, base frame
        self._neck_goal = np.zeros(2)
        self._neck = np.zeros(2)                   # neck reference (yaw, pitch) and its velocity
        self._neck_v = np.zeros(2)
        self._velocity = np.zeros(2)               # face angular velocity estimate (deg/s)
        self._last_dir: np.ndarray | None = None
        self._last_stamp: float | None = None
        self._seen_at: float | None = None
        self._active = False
        self._arrive_at = -math.inf              # a saccade in flight lands then
        self._neck_moved = False                 # this frame's neck step is done (by a saccade)
        self.state: GazeState | None = None

    # ------------------------------------------------------------------------------ stepping
    def update(self, face: Face | None, stamp: float, pose: Pose | None = None) -> GazeCommand | None:
        """One frame: ``face`` (None or undetected: no face), its stamp, and the joint angles the
        frame was taken at (None: the controller's own last command, i.e. open loop)."""
        if not math.isfinite(stamp):
            raise InputError(f"gaze: frame stamp {stamp} is not finite")
        self._neck_moved = False
        dt = 0.0 if self._last_stamp is None else min(max(stamp - self._last_stamp, 0.0), 0.2)
        self._last_stamp = stamp
        at_frame = pose if pose is not None else self._commanded()
        centre = face_centre(face) if face is not None else None
        if centre is not None and not (-0.5 <= centre[0] <= 1.5 and -0.5 <= centre[1] <= 1.5):
            centre = None                          # a landmark fit far outside the image: no face
        error = face_dir = None
        if centre is not None:
            phase, error, face_dir = self._track(centre, at_frame, stamp, dt)
        else:
            phase = self._lost(stamp)
        if phase is GazePhase.IDLE:
            self.state = GazeState(stamp, phase, centre, error, face_dir, tuple(self._fixation), self._commanded())
            return None
        if not self._neck_moved:
            self._move_neck(dt)
        self._neck_moved = False
        command = self._command(stamp)
        self.state = GazeState(stamp, phase, centre, error, face_dir, tuple(self._fixation), command.pose)
        return command

    def _track(self, centre: tuple[float, float], at_frame: Pose, stamp: float,
               dt: float) -> tuple[GazePhase, float, tuple[float, float]]:
        cfg = self.config
        face_dir = np.array(self.camera.direction_of(centre[0], centre[1], at_frame))
        axis = np.array(at_frame.looking_at())
        error = float(np.hypot(*(face_dir - axis)))
        if self._last_dir is not None and dt > 0 and self._seen_at is not None and stamp - self._seen_at < 0.2:
            sample = (face_dir - self._last_dir) / dt
            if float(np.hypot(*sample)) > cfg.pursuit_max_deg_s:
                self._velocity[:] = 0.0
            else:
                self._velocity += cfg.pursuit_gain * (sample - self._velocity)
        else:
            self._velocity[:] = 0.0
        self._last_dir = face_dir
        self._seen_at = stamp
        self._active = True
        if stamp < self._arrive_at + cfg.saccade_settle_s - 1e-9:
            # Saccadic suppression: while the eyes are in flight, and for a moment after, the
            # landmark tracker lags the image's motion (measured in emo demo --moving: MediaPipe put
            # the face 3-6 deg behind where it was for 3-5 frames, and re-fixating on that overshot
            # by 20-30 %); hold the saccade's goal.
            self._velocity[:] = 0.0
            return GazePhase.SACCADE, error, (float(face_dir[0]), float(face_dir[1]))
        pursuit = self._velocity if float(np.hypot(*self._velocity)) >= cfg.pursuit_min_deg_s else np.zeros(2)
        if float(np.hypot(*(face_dir - self._fixation))) > cfg.dead_band_deg:
            before = self._commanded()
            self._fixation = face_dir + pursuit * cfg.latency_s
            phase = GazePhase.SACCADE
            self._time_saccade(before, stamp, dt)
        else:
            self._fixation = self._fixation + pursuit * dt
            phase = GazePhase.FIXATE
        self._fixation = self._reachable(self._fixation)
        if float(np.hypot(*(self._fixation - self._neck_goal))) > cfg.neck_dead_band_deg:
            self._neck_goal = self._neck_limits(self._fixation)
        return phase, error, (float(face_dir[0]), float(face_dir[1]))

    def _time_saccade(self, before: Pose, stamp: float, dt: float) -> None:
        """Arrival time of the saccade just decided: the lead ``servo_lag_s x amplitude / duration``
        must fit between the eye's target and its limit (see the module docstring)."""
        cfg = self.config
        self._fixation = self._reachable(self._fixation)
        if float(np.hypot(*(self._fixation - self._neck_goal))) > cfg.neck_dead_band_deg:
            self._neck_goal = self._neck_limits(self._fixation)
        self._move_neck(dt)                      # this frame's neck, comfort clamp included
        after = self._commanded()
        duration = cfg.lead_s - cfg.latency_s
        for name, a, b in (("gaze_yaw", before.eye_yaw, after.eye_yaw), ("gaze_pitch", before.eye_pitch, after.eye_pitch)):
            spec = self.joints[name]
            room = (spec.hi_deg - b) if b >= a else (b - spec.lo_deg)
            duration = max(duration, cfg.servo_lag_s * abs(b - a) / max(room, 1e-3))
        # ... and the neck's share of the shift within the neck's speed limit.
        neck_shift = np.abs(np.array([after.neck_yaw - before.neck_yaw, after.neck_pitch - before.neck_pitch]))
        duration = max(duration, float(np.max(neck_shift / self._neck_speed)))
        self._arrive_at = stamp + cfg.latency_s + min(duration, 0.5)
        self._neck_moved = True

    def _lost(self, stamp: float) -> GazePhase:
        cfg = self.config
        self._last_dir = None
        self._velocity[:] = 0.0
        if not self._active:
            return GazePhase.IDLE
        if self._seen_at is not None and stamp - self._seen_at < cfg.lost_hold_s:
            return GazePhase.HOLD
        self._fixation = np.zeros(2)
        self._neck_goal = np.zeros(2)
        if (float(np.hypot(*self._neck)) < cfg.centre_tolerance_deg
                and float(np.hypot(*self._neck_v)) < cfg.centre_tolerance_deg):
            self._active = False                   # back at centre: stop commanding
            self._neck[:] = 0.0
            self._neck_v[:] = 0.0
            return GazePhase.IDLE
        return GazePhase.RETURN

    # ------------------------------------------------------------------------------ motion
    def _move_neck(self, dt: float) -> None:
        """Critically damped reference toward the neck goal, speed-limited (semi-implicit Euler in
        steps of at most 5 ms, so a slow frame rate changes nothing)."""
        w = 1.0 / self.config.neck_tau_s
        n = max(1, int(math.ceil(dt / 0.005))) if dt > 0 else 0
        h = dt / n if n else 0.0
        for _ in range(n):
            acc = w * w * (self._neck_goal - self._neck) - 2.0 * w * self._neck_v
            self._neck_v = np.clip(self._neck_v + h * acc, -self._neck_speed, self._neck_speed)
            self._neck = self._neck_limits(self._neck + h * self._neck_v)
        # The head joins a large gaze shift at once (the driver moves it at the servos' max speed).
        offset = self._fixation - self._neck
        far = float(np.hypot(*offset))
        comfort = self.config.eye_comfort_deg
        if far > comfort:
            self._neck = self._neck_limits(self._neck + offset * (1.0 - comfort / far))

    def _neck_limits(self, yaw_pitch: np.ndarray) -> np.ndarray:
        j = self.joints
        return np.array([j.clip("neck_yaw", float(yaw_pitch[0])), j.clip("neck_pitch", float(yaw_pitch[1]))])

    def _reachable(self, target: np.ndarray) -> np.ndarray:
        """A fixation the eyes and neck together can reach (the sum of their ranges)."""
        j, m = self.joints, self.config.limit_margin_deg
        lo = np.array([j["neck_yaw"].lo_deg + j["gaze_yaw"].lo_deg + m, j["neck_pitch"].lo_deg + j["gaze_pitch"].lo_deg + m])
        hi = np.array([j["neck_yaw"].hi_deg + j["gaze_yaw"].hi_deg - m, j["neck_pitch"].hi_deg + j["gaze_pitch"].hi_deg - m])
        return np.clip(target, lo, hi)

    def _neck_pose(self) -> Pose:
        return Pose(neck_yaw=float(self._neck[0]), neck_pitch=float(self._neck[1]))

    def _commanded(self) -> Pose:
        neck = self._neck_pose()
        eye_yaw, eye_pitch = eye_angles_for((float(self._fixation[0]), float(self._fixation[1])), neck)
        m, j = self.config.limit_margin_deg, self.joints
        return Pose(eye_yaw=j.clip("gaze_yaw", eye_yaw, m), eye_pitch=j.clip("gaze_pitch", eye_pitch, m),
                    neck_roll=0.0, neck_pitch=neck.neck_pitch, neck_yaw=neck.neck_yaw)

    def _command(self, stamp: float) -> GazeCommand:
        pose = self._commanded()
        due = max(stamp + self.config.lead_s, self._arrive_at)
        return GazeCommand(stamp, due, pose, self.joints.to_norm(pose).astype(np.float32))

    @property
    def fixation(self) -> tuple[float, float]:
        return float(self._fixation[0]), float(self._fixation[1])

    @property
    def neck(self) -> tuple[float, float]:
        """The neck reference (yaw, pitch) in degrees."""
        return float(self._neck[0]), float(self._neck[1])
