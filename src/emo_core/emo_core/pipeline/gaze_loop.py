"""Closed-loop gaze simulation: controller -> servo driver -> bus emulator -> joints -> eye camera.

:func:`run_closed_loop` plays a :class:`~emo_core.gaze.scene.PersonPath` at its frame rate against
a :class:`~emo_core.pipeline.sim.SimRobot` (the real ServoDriver through the real dynamixel_sdk to
the Protocol 2.0 emulator and its first-order plant, on a manual clock): every frame the eye camera
sees the person from the joint angles the servos are *at* (:class:`GeometricView`), the controller
turns that face into gaze/neck commands, and the robot receives them one camera latency later --
exactly as the expression commands travel. :func:`gaze_metrics` then measures, from the servos'
present positions at every control cycle:

* ``error_p50`` / ``error_p95``: distance of the face centre from the image centre at each frame,
  as a fraction of the image width, over the frames where the person moves;
* per jump: ``settle_ms`` (the face centre within ``on_face`` of the image centre and staying there
  for ``hold_s``), ``neck_share`` (1 - what the eyes still carry of the rotation ``neck_after_s``
  after the jump)
  and ``overshoot`` (how far the camera axis passes the new direction, fraction of the jump);
* ``max_speed_ratio`` (fastest present joint speed / its servo's max_velocity) and
  ``within_limits`` (every present position inside the servo limits).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from ..gaze.controller import GazeConfig, GazeController
from ..gaze.geometry import JOINTS, EyeCamera, GazeJoints, Pose, angles, direction
from ..gaze.scene import GeometricView, PersonPath
from ..gaze.stage import to_face_command
from .sim import SimConfig, SimRobot

LOG = logging.getLogger(__name__)


@dataclass
class LoopTrace:
    path: PersonPath
    camera: EyeCamera
    frame_error: np.ndarray                 # (frames,) face centre - image centre, fraction of width
    cycle_times: np.ndarray                 # (N,) s
    cycle_joints: np.ndarray                # (N, 5) present angles (deg), JOINTS order
    cycle_norm: np.ndarray                  # (N, 5) present normalized channels
    phases: list[str] = field(default_factory=list)


def frame_error(uv: np.ndarray, camera: EyeCamera) -> float:
    """Distance of an image point from the image centre, as a fraction of the image width."""
    return float(math.hypot(uv[0] - 0.5, (uv[1] - 0.5) * camera.height / camera.width))


def run_closed_loop(path: PersonPath, robot: SimRobot, *, controller: GazeController | None = None,
                    camera: EyeCamera | None = None, joints: GazeJoints | None = None,
                    view: GeometricView | None = None) -> LoopTrace:
    """Play ``path`` through the loop on a started ``robot``; returns the trace."""
    joints = joints or GazeJoints(robot.table)
    camera = camera or (controller.camera if controller is not None else EyeCamera())
    controller = controller or GazeController(joints, camera, GazeConfig(latency_s=robot.config.input_latency_s))
    view = view or GeometricView(camera)
    start = robot.now()
    robot.clear_trace()
    errors = np.full(len(path), np.nan)
    phases: list[str] = []
    for k, t in enumerate(path.times):
        robot.advance_to(start + t)
        present = robot.joints_now()
        pose = joints.from_norm(present) if present is not None else Pose()
        yaw, pitch = path.at(k)
        errors[k] = frame_error(view.centre(yaw, pitch, pose), camera)
        face = view.observe(yaw, pitch, float(path.head_yaw[k]), pose, start + t)
        command = controller.update(face, start + t, pose)
        phases.append(controller.state.phase.value if controller.state is not None else "")
        if command is not None:
            robot.submit(to_face_command(command))
    robot.advance_to(start + len(path) / path.fps)
    norm = robot.joints()
    deg = np.array([joints.from_norm(row).as_array() for row in norm]) if len(norm) else np.zeros((0, 5))
    times = np.asarray(robot.trace().times, np.float64) - start
    return LoopTrace(path, camera, errors, times, deg, norm, phases)


def _axis(row: np.ndarray) -> tuple[float, float]:
    return Pose.from_array(row).looking_at()


class JumpMetrics(TypedDict):
    """One jump's figures (:func:`jump_metrics`); None where not measured (settle, neck share: not
    reached; all three: no control cycle inside the window, or a zero-size jump)."""
    settle_ms: float | None
    neck_share: float | None
    overshoot: float | None
    jump_deg: float


def jump_metrics(trace: LoopTrace, jump: int, on_face: float = 0.03, hold_s: float = 0.1,
                 neck_after_s: float = 1.5, window_s: float = 2.0) -> JumpMetrics:
    """Settle time, neck share and overshoot after the jump at frame ``jump``."""
    path, cam = trace.path, trace.camera
    t0 = jump / path.fps
    before = path.at(max(jump - 1, 0))
    after = path.at(jump)
    size = float(np.hypot(after[0] - before[0], after[1] - before[1]))
    sel = (trace.cycle_times >= t0) & (trace.cycle_times <= t0 + window_s)
    times = trace.cycle_times[sel]
    rows = trace.cycle_joints[sel]
    if not len(times) or size <= 0:
        return {"settle_ms": None, "neck_share": None, "overshoot": None, "jump_deg": size}
    target = direction(*after)
    f = cam.focal_px
    err = []
    along = []
    unit = (np.array(after) - np.array(before)) / size
    for row in rows:
        pose = Pose.from_array(row)
        c = pose.camera_rotation().T @ target
        u, v = 0.5 + f * c[0] / c[2] / cam.width, 0.5 + f * c[1] / c[2] / cam.height
        err.append(frame_error(np.array([u, v]), cam))
        along.append(float((np.array(angles(pose.camera_rotation()[:, 2])) - np.array(before)) @ unit))
    err_arr = np.asarray(err)
    settle = None
    hold = int(round(hold_s / max(np.median(np.diff(times)) if len(times) > 1 else 0.01, 1e-3)))
    for i in range(len(err_arr)):
        if np.all(err_arr[i:i + hold + 1] <= on_face) and i + hold < len(err_arr):
            settle = (times[i] - t0) * 1e3
            break
    # The neck has taken over what the eyes no longer carry: 1 - the eyes' remaining angle along the
    # jump / the jump (for a jump from a settled pose, the neck's part of the turn; a person who
    # walked before the jump may have left the neck behind, which this does not count against it).
    i_neck = int(np.searchsorted(times, t0 + neck_after_s))
    neck = None
    if i_neck < len(rows):
        eyes = np.array([rows[i_neck][0], rows[i_neck][1]])
        neck = 1.0 - abs(float(eyes @ unit)) / size
    overshoot = max(0.0, (max(along) - size) / size)
    return {"settle_ms": None if settle is None else round(float(settle), 1),
            "neck_share": None if neck is None else round(neck, 4),
            "overshoot": round(float(overshoot), 4), "jump_deg": round(size, 3)}


def gaze_metrics(trace: LoopTrace, joints: GazeJoints, **jump_kw: Any) -> dict[str, Any]:
    moving = trace.path.moving()
    err = trace.frame_error[moving & np.isfinite(trace.frame_error)]
    jumps = [jump_metrics(trace, j, **jump_kw) for j in trace.path.jumps]
    speeds = []
    if len(trace.cycle_times) > 1:
        # Over 5 control cycles: one tick (0.088 deg) in one 10 ms cycle reads as 8.8 deg/s.
        k = min(5, len(trace.cycle_times) - 1)
        dt = (trace.cycle_times[k:] - trace.cycle_times[:-k])[:, None]
        v = np.abs(trace.cycle_joints[k:] - trace.cycle_joints[:-k]) / np.maximum(dt, 1e-9)
        limits = np.array([joints[n].max_speed_deg_s for n in JOINTS])
        speeds = (v / limits).max(axis=0)
    settles = [j["settle_ms"] for j in jumps if j["settle_ms"] is not None]
    shares = [j["neck_share"] for j in jumps if j["neck_share"] is not None]
    # A jump with no cycle in its window has no overshoot: skip it (max() over a None raised TypeError).
    overshoots = [j["overshoot"] for j in jumps if j["overshoot"] is not None]
    return {
        "error_p50": round(float(np.percentile(err, 50)), 4) if err.size else None,
        "error_p95": round(float(np.percentile(err, 95)), 4) if err.size else None,
        "moving_frames": int(err.size),
        "settle_ms": round(float(np.max(settles)), 1) if settles else None,
        "neck_share": round(float(np.min(shares)), 4) if shares else None,
        "overshoot": round(float(max(overshoots)), 4) if overshoots else None,
        "jumps": jumps,
        "max_speed_ratio": {n: round(float(s), 3) for n, s in zip(JOINTS, speeds)} if len(speeds) else {},
        "within_limits": bool(np.all((trace.cycle_norm >= -1e-6) & (trace.cycle_norm <= 1 + 1e-6))),
    }


def simulate(path: PersonPath, config: GazeConfig | None = None, sim: SimConfig | None = None,
             camera: EyeCamera | None = None, noise_px: float = 0.7, seed: int = 0) -> tuple[LoopTrace, dict[str, Any]]:
    """One closed-loop run on a fresh sim robot; returns the trace and :func:`gaze_metrics`."""
    sim = sim or SimConfig()
    camera = camera or EyeCamera()
    with SimRobot(config=sim) as robot:
        joints = GazeJoints(robot.table)
        cfg = config or GazeConfig(latency_s=sim.input_latency_s)
        controller = GazeController(joints, camera, cfg)
        trace = run_closed_loop(path, robot, controller=controller, camera=camera, joints=joints,
                                view=GeometricView(camera, noise_px=noise_px, seed=seed))
    return trace, gaze_metrics(trace, joints)
