"""Gaze and blinking in ``emo demo``: one :class:`~emo_core.gaze.GazeStage` per mode's sim robot.

* On a plain video the view cannot follow the eyes (the video was filmed by a fixed camera): the
  controller is told the camera is at home, so the robot looks where the face is in the video
  (open loop), and blinks; ``report.json``'s ``gaze`` then has no tracking figures.
* With ``--moving`` the video is the person only: each frame is placed in a wider scene along a
  :func:`~emo_core.gaze.scene.walking_path` (with 20-degree jumps) and the first mode's robot's
  eye camera *renders* its view from the servos' present gaze and neck angles
  (:class:`~emo_core.gaze.scene.SceneRenderer`); the landmark extractor -- and so the expression
  pipeline too -- sees that view. Closed loop: where the robot looks decides what it sees. The
  video is looped to ``seconds``. The other mode's robot gets the same face (and its own gaze
  commands from it, open loop).

Gaze commands go to the same sim robot (driver) as the expression commands, as separate
FaceCommands naming the gaze/neck channels; the blink is composed into the expression command.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from ..gaze import BlinkConfig, EyeCamera, GazeConfig, GazeJoints, GazeStage, Pose, face_centre
from .gaze_loop import LoopTrace, frame_error, gaze_metrics
from ..gaze.scene import PersonPath, SceneRenderer, walking_path
from .core import Mode, StepResult
from .run import ModeRunner

LOG = logging.getLogger(__name__)

RED, WHITE, GREEN = (230, 60, 60), (255, 255, 255), (60, 220, 120)


@dataclass(frozen=True)
class GazeDemoConfig:
    enabled: bool = True
    moving: bool = False
    seconds: float = 20.0              # --moving: the person video is looped to this length
    seed: int = 0                      # the walking path and the blinks
    jump_every_s: float = 6.0          # --moving: a 20-degree jump of the person this often
    camera: EyeCamera = field(default_factory=lambda: EyeCamera(640, 480, 60.0))
    gaze: GazeConfig | None = None
    blink: BlinkConfig | None = None


class GazeDemo:
    """Per frame: :meth:`view` (what the eye camera sees), then :meth:`step` per mode."""

    def __init__(self, config: GazeDemoConfig, runners: dict[Mode, ModeRunner], calm: np.ndarray, fps: float,
                 input_latency_s: float) -> None:
        self.config = config
        self.runners = runners
        self.primary = next(iter(runners))
        table = runners[self.primary].robot.table
        self.joints = GazeJoints(table)
        gaze = config.gaze or GazeConfig(latency_s=input_latency_s)
        blink = config.blink or BlinkConfig(seed=config.seed)
        self.stages = {m: GazeStage(calm, joints=self.joints, camera=config.camera, gaze=gaze, blink=blink)
                       for m in runners}
        self.path: PersonPath | None = None
        self.renderer: SceneRenderer | None = None
        if config.moving:
            self.path = walking_path(config.seconds, fps, seed=config.seed, jump_every_s=config.jump_every_s)
            self.renderer = SceneRenderer(config.camera, seed=config.seed)
        self._offsets: dict[Mode, float] = {}
        # Where the face sits in the person video is unknown until the extractor has seen it: the
        # first face found fixes the (yaw, pitch) offset that puts the *face* on the walking path.
        self._face_offset: np.ndarray | None = None
        self.errors: list[float] = []          # per frame, from the face the extractor found (nan: none)
        self.step_s: list[float] = []
        self.frames = 0
        self._index = 0

    @property
    def frame_limit(self) -> int | None:
        return None if self.path is None else len(self.path)

    def _pose(self, mode: Mode, stamp: float) -> Pose:
        """The mode robot's present gaze/neck angles at the frame's time (the robot is advanced to it)."""
        robot = self.runners[mode].robot
        offset = self._offsets.setdefault(mode, robot.now() - stamp)
        robot.advance_to(stamp + offset)
        present = robot.joints_now()
        return Pose() if present is None else self.joints.from_norm(present)

    def view(self, index: int, rgb: np.ndarray, stamp: float) -> np.ndarray:
        """The eye camera's view of frame ``index``: the frame itself, or (moving) its rendering."""
        if self.path is None or self.renderer is None:
            return rgb
        yaw, pitch = np.asarray(self.path.at(min(index, len(self.path) - 1))) - self._offset()
        self._index = index
        return self.renderer.render(rgb, float(yaw), float(pitch), self._pose(self.primary, stamp))

    def _offset(self) -> np.ndarray:
        return np.zeros(2) if self._face_offset is None else self._face_offset

    def _locate_face(self, result: StepResult, pose: Pose) -> None:
        centre = face_centre(result.face)
        if self.path is None or self._face_offset is not None or centre is None:
            return
        seen = np.asarray(self.config.camera.direction_of(centre[0], centre[1], pose))
        self._face_offset = seen - np.asarray(self.path.at(min(self._index, len(self.path) - 1)))
        LOG.info("moving person: the face sits %.1f / %.1f deg (yaw / pitch) off the video's centre",
                 *self._face_offset)

    def step(self, mode: Mode, result: StepResult) -> StepResult:
        """Gaze + blink for one mode's frame result: sends the gaze command to the mode's robot and
        returns the result with the blink composed into its expression command."""
        t0 = time.perf_counter()
        stage = self.stages[mode]
        # Moving: every mode sees the face through the first mode's eye camera, at its present pose
        # (closed loop for that robot). A plain video was filmed by a fixed camera: at home.
        pose = self._pose(self.primary, result.stamp) if self.path is not None else Pose()
        if mode is self.primary:
            self._locate_face(result, pose)
        out = stage.step(result.stamp, result.face, result.command, held=result.predicted_target is not None,
                         pose=pose)
        if out.gaze is not None:
            self.runners[mode].robot.submit(out.gaze, offset=self._offsets.setdefault(
                mode, self.runners[mode].robot.now() - result.stamp))
        if mode is self.primary:
            self.step_s.append(time.perf_counter() - t0)
            centre = face_centre(result.face)
            cam = self.config.camera
            self.errors.append(np.nan if centre is None else frame_error(np.asarray(centre), cam))
            self.frames += 1
        return result if out.expression is result.command else replace(result, command=out.expression)

    def annotate(self, rgb: np.ndarray, result: StepResult) -> np.ndarray:
        """The eye-camera view with the image centre (white cross) and the face centre (red dot)."""
        img = np.ascontiguousarray(rgb).copy()
        h, w = img.shape[:2]
        t = max(1, int(round(w / 320)))
        cv2.drawMarker(img, (w // 2, h // 2), WHITE, cv2.MARKER_CROSS, 12 * t, t, cv2.LINE_AA)
        centre = face_centre(result.face)
        if centre is not None:
            c = (int(round(centre[0] * w)), int(round(centre[1] * h)))
            cv2.circle(img, c, 4 * t, RED, -1, cv2.LINE_AA)
            cv2.line(img, (w // 2, h // 2), c, RED, t, cv2.LINE_AA)
        state = self.stages[self.primary].state
        if state is not None:
            label = f"gaze {state.phase.value}" + (f"  err {state.error_deg:4.1f} deg" if state.error_deg is not None else "")
            cv2.putText(img, label, (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * t, GREEN, t, cv2.LINE_AA)
        return img

    def robot_pose(self, mode: Mode) -> Pose:
        present = self.runners[mode].robot.joints_now()
        return Pose() if present is None else self.joints.from_norm(present)

    # ------------------------------------------------------------------------------ report
    def report(self, runs: dict[Mode, Any], seconds: float) -> dict[str, Any]:
        """The ``gaze`` block of report.json (keys: a contract, docs/gaze.md)."""
        blinker = self.stages[self.primary].blinker
        blinks = round(blinker.rate_per_min(seconds), 2) if seconds > 0 else None
        out: dict[str, Any] = {"error_p50": None, "error_p95": None, "settle_ms": None, "neck_share": None,
                               "blinks_per_min": blinks}
        robot = self.runners[self.primary].robot
        norm = robot.joints()
        if self.path is not None and len(norm):
            offset = self._offsets.get(self.primary, 0.0)
            times = np.asarray(robot.trace().times, np.float64) - offset
            deg = np.array([self.joints.from_norm(row).as_array() for row in norm])
            n = min(len(self.errors), len(self.path))
            path = replace(self.path, yaw=self.path.yaw[:n], pitch=self.path.pitch[:n],
                           head_yaw=self.path.head_yaw[:n], jumps=tuple(j for j in self.path.jumps if j < n))
            trace = LoopTrace(path, self.config.camera, np.asarray(self.errors[:n]), times, deg, norm)
            m = gaze_metrics(trace, self.joints)
            out.update(error_p50=m["error_p50"], error_p95=m["error_p95"], settle_ms=m["settle_ms"],
                       neck_share=m["neck_share"])
            out["detail"] = {"moving_frames": m["moving_frames"],
                             "frames_without_face": int(np.isnan(trace.frame_error).sum()),
                             "jumps": m["jumps"], "overshoot": m["overshoot"],
                             "max_speed_ratio": m["max_speed_ratio"], "within_limits": m["within_limits"],
                             "blinks": len(blinker.blinks),
                             "blink_durations_ms": [round(b.duration * 1e3, 1) for b in blinker.blinks],
                             "gaze_step_ms": _p(self.step_s)}
            out["note"] = ("closed loop: the eye camera's view rendered from the servos' present gaze/neck angles; "
                           "error = face centre (extractor) vs image centre, fraction of the image width, frames "
                           "where the person moves; settle_ms / neck_share: worst over the 20-degree jumps "
                           "(face within 0.03 of the centre for 100 ms; neck_share = 1 - the eyes' remaining part of the turn 1.5 s after)")
        else:
            out["detail"] = {"blinks": len(blinker.blinks),
                             "blink_durations_ms": [round(b.duration * 1e3, 1) for b in blinker.blinks],
                             "gaze_step_ms": _p(self.step_s)}
            out["note"] = ("open loop (a plain video cannot follow the eyes): tracking figures need --moving; "
                           "blinks counted over the run")
        return out


def _p(samples: list[float]) -> dict[str, float] | None:
    if not samples:
        return None
    arr = np.asarray(samples) * 1e3
    return {"p50": round(float(np.percentile(arr, 50)), 4), "p99": round(float(np.percentile(arr, 99)), 4)}
