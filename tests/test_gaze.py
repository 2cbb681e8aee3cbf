"""Gaze controller, blinker and their closed-loop simulation (emo_core.gaze; docs/gaze.md)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from emo_core.errors import ConfigError, InputError
from emo_core.gaze import (ApexGate, BlinkConfig, Blinker, EyeCamera, GazeConfig, GazeController, GazeJoints,
                           GazePhase, GazeStage, Pose, face_centre)
from emo_core.gaze.geometry import eye_angles_for
from emo_core.pipeline.gaze_loop import gaze_metrics, simulate
from emo_core.gaze.scene import GeometricView, jump_path, walking_path
from emo_core.pipeline.core import COMMAND_NAMES, FaceCommand, Source
from emo_core.schema import Face

CAMERA = EyeCamera()


def _face_at(yaw: float, pitch: float, pose: Pose, stamp: float = 0.0, noise_px: float = 0.0) -> Face:
    return GeometricView(CAMERA, noise_px=noise_px).observe(yaw, pitch, 0.0, pose, stamp)


# ------------------------------------------------------------------------------------ geometry
def test_joints_come_from_the_servo_table():
    joints = GazeJoints()
    # servos.yaml: gaze yaw 1798..2298 ticks (500 ticks of 4096 per turn = 43.9 deg), home in the middle.
    assert joints["gaze_yaw"].span_deg == pytest.approx(500 * 360 / 4096)
    assert joints["gaze_yaw"].lo_deg == pytest.approx(-joints["gaze_yaw"].hi_deg)
    assert joints["neck_yaw"].max_speed_deg_s == pytest.approx(800 * 360 / 4096)
    pose = Pose(eye_yaw=5.0, eye_pitch=-3.0, neck_yaw=12.0, neck_pitch=4.0)
    assert np.allclose(joints.from_norm(joints.to_norm(pose)).as_array(), pose.as_array(), atol=1e-9)
    assert np.all(joints.to_norm(Pose(eye_yaw=400.0)) <= 1.0)          # clipped to the limits
    with pytest.raises(ConfigError):
        GazeJoints(signs={"gaze_roll": -1})


def test_face_centre_and_counter_rotation_geometry():
    face = _face_at(0.0, 0.0, Pose())
    u, v = face_centre(face)
    assert (u, v) == pytest.approx((0.5, 0.5), abs=0.01)
    # A face 10 deg to the right is seen from a pose looking there at the image centre again.
    neck = Pose(neck_yaw=6.0)
    eyes = eye_angles_for((10.0, 0.0), neck)
    pose = Pose(eye_yaw=eyes[0], eye_pitch=eyes[1], neck_yaw=6.0)
    assert pose.looking_at() == pytest.approx((10.0, 0.0), abs=1e-9)
    assert face_centre(_face_at(10.0, 0.0, pose)) == pytest.approx((0.5, 0.5), abs=0.01)
    assert face_centre(Face.missing()) is None


# ------------------------------------------------------------------------------------ controller
def test_dead_band_keeps_the_eyes_still_on_landmark_noise():
    ctl = GazeController(camera=CAMERA)
    rng = np.random.default_rng(0)
    poses = []
    for k in range(60):
        pose = Pose()
        # ~1 px of face-centre jitter at 640 px / 60 deg (MediaPipe's on a still face is below that)
        face = _face_at(0.1 * rng.standard_normal(), 0.1 * rng.standard_normal(), pose, k / 30)
        cmd = ctl.update(face, k / 30, pose)
        poses.append(cmd.pose.as_array())
    assert ctl.state.phase is GazePhase.FIXATE
    assert np.ptp(np.asarray(poses)[1:], axis=0).max() < 0.05     # no hunting


def test_saccade_then_neck_takes_over_and_eyes_counter_rotate():
    ctl = GazeController(camera=CAMERA)
    pose = Pose()
    cmd = ctl.update(_face_at(15.0, 0.0, pose), 0.0, pose)
    assert ctl.state.phase is GazePhase.SACCADE
    assert cmd.pose.looking_at()[0] == pytest.approx(15.0, abs=0.5)
    assert cmd.execute_at > 0.0                  # timed: the lag lead fits inside the eye range
    necks, axes = [], []
    for k in range(1, 60):                       # perfect servos: the pose is the last command
        pose = cmd.pose
        cmd = ctl.update(_face_at(15.0, 0.0, pose, k / 30), k / 30, pose)
        necks.append(cmd.pose.neck_yaw)
        axes.append(cmd.pose.looking_at()[0])
    assert np.all(np.diff(necks) >= -1e-9)        # the neck turns one way, slowly
    assert necks[-1] > 0.95 * 15.0 and abs(cmd.pose.eye_yaw) < 1.0
    assert np.allclose(axes, 15.0, atol=0.6)      # the face stays fixated while the head turns


def test_limits_and_speed_of_commands():
    joints = GazeJoints()
    ctl = GazeController(joints, CAMERA)
    pose = Pose()
    last = None
    for k in range(90):
        cmd = ctl.update(_face_at(70.0 if k < 45 else -70.0, 30.0, pose, k / 30), k / 30, pose)
        if cmd is None:                         # the face is out of view: nothing to do
            continue
        assert np.all((cmd.positions >= 0) & (cmd.positions <= 1))
        p = cmd.pose
        m = ctl.config.limit_margin_deg
        assert joints["gaze_yaw"].lo_deg + m - 1e-9 <= p.eye_yaw <= joints["gaze_yaw"].hi_deg - m + 1e-9
        assert joints["neck_yaw"].lo_deg - 1e-9 <= p.neck_yaw <= joints["neck_yaw"].hi_deg + 1e-9
        if last is not None:
            assert abs(p.neck_yaw - last.neck_yaw) <= joints["neck_yaw"].max_speed_deg_s / 30 + 1e-6 \
                or ctl.state.phase is GazePhase.SACCADE
        last = p
        pose = p


def test_face_lost_holds_then_returns_to_centre_then_stops():
    ctl = GazeController(camera=CAMERA, config=GazeConfig(lost_hold_s=0.5))
    pose = Pose()
    for k in range(45):
        cmd = ctl.update(_face_at(12.0, 4.0, pose, k / 30), k / 30, pose)
        pose = cmd.pose
    held = pose
    t = 45 / 30
    for k in range(14):                          # < 0.5 s: hold
        cmd = ctl.update(None, t + k / 30, pose)
        assert ctl.state.phase is GazePhase.HOLD
        # The eyes hold where they looked (the neck may finish its turn under them).
        assert cmd.pose.looking_at() == pytest.approx(held.looking_at(), abs=0.05)
    phases = []
    for k in range(14, 200):
        cmd = ctl.update(Face.missing(), t + k / 30, pose)
        phases.append(ctl.state.phase)
        if cmd is None:
            break
        pose = cmd.pose
    assert GazePhase.RETURN in phases and phases[-1] is GazePhase.IDLE
    assert np.allclose(pose.as_array(), 0.0, atol=0.5)
    with pytest.raises(InputError):
        ctl.update(None, float("nan"))


def test_gaze_config_validation():
    with pytest.raises(ConfigError):
        GazeConfig(dead_band_deg=-1)
    with pytest.raises(ConfigError):
        GazeConfig.from_mapping({"dead_band": 1.0})
    assert GazeConfig.from_mapping({"neck_tau_s": 0.4}).neck_tau_s == 0.4


# ------------------------------------------------------------------------------------ blinking
def _blink_stats(minutes: float, seed: int) -> tuple[float, np.ndarray]:
    blinker = Blinker(BlinkConfig(seed=seed))
    fps = 100.0
    closure = np.array([blinker.update(k / fps) for k in range(int(minutes * 60 * fps))])
    return blinker.rate_per_min(minutes * 60), closure


def test_blink_rate_and_duration_within_human_ranges_over_five_minutes():
    rate, closure = _blink_stats(5.0, seed=3)
    # Bentivoglio et al. 1997: 17 +- 13 blinks/min at rest; durations 100-400 ms (docs/gaze.md).
    assert 4.0 <= rate <= 30.0
    assert abs(rate - 17.0) < 5.0
    closed = closure > 0
    starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    ends = np.flatnonzero(~closed[1:] & closed[:-1]) + 1
    durations = (ends[:len(starts)] - starts[:len(ends)]) / 100.0
    assert len(durations) > 50
    assert durations.min() >= 0.09 and durations.max() <= 0.41
    assert closure.max() == pytest.approx(1.0, abs=0.05)


def test_blink_closes_the_upper_lid_from_the_expression_and_waits_at_the_apex():
    cfg = BlinkConfig(seed=1)
    blinker = Blinker(cfg)
    commands = np.linspace(0.1, 0.6, 11).astype(np.float32)
    assert blinker.compose(commands, 0.0) is commands          # unchanged, bit for bit
    closed = blinker.compose(commands, 1.0)
    assert closed[2] == pytest.approx(cfg.closed_upper) and np.array_equal(np.delete(closed, 2), np.delete(commands, 2))
    # Suppressed: no blink starts however long it is due; released: it starts.
    blinker = Blinker(cfg)
    assert all(blinker.update(k / 30, suppress=True) == 0.0 for k in range(600))
    assert any(blinker.update(20 + k / 30) > 0 for k in range(3))


def test_apex_gate_holds_blinks_near_an_expression_peak():
    calm = np.full(11, 0.3)
    gate = ApexGate(calm)
    assert not gate.update(0.0, calm, held=False)
    assert gate.update(0.1, calm, held=True)                   # a prediction is held
    smile = calm.copy()
    smile[8] = 0.9
    assert gate.update(0.2, smile, held=False)                 # at the peak
    assert not gate.update(3.0, calm, held=False)              # relaxed


def test_stage_sends_gaze_separately_and_leaves_expression_commands_alone():
    stage = GazeStage(np.full(11, 0.3), camera=CAMERA, blink=BlinkConfig(seed=0))
    expr = FaceCommand(COMMAND_NAMES, np.full(11, 0.4, np.float32), 0.0, 0.0, Source.MIMIC)
    step = stage.step(0.0, _face_at(8.0, 0.0, Pose()), expr, held=False, pose=Pose())
    assert step.expression is expr                              # no blink at t=0 (min interval)
    assert step.gaze.source is Source.GAZE and step.gaze.names == ("gaze_yaw", "gaze_pitch", "neck_roll",
                                                                   "neck_pitch", "neck_yaw")


# ------------------------------------------------------------------------------------ closed loop
def test_closed_loop_20_degree_jump_meets_the_targets():
    """Through the real driver, dynamixel_sdk and the bus emulator's plant (docs/gaze.md)."""
    _, m = simulate(jump_path(4.0, at_s=2.0, jump_deg=20.0, start_deg=-10.0))
    jump = m["jumps"][0]
    assert jump["settle_ms"] is not None and jump["settle_ms"] <= 250.0
    assert jump["neck_share"] >= 0.8
    assert jump["overshoot"] <= 0.10
    assert m["within_limits"]
    assert max(m["max_speed_ratio"].values()) <= 1.03          # 1 tick per 50 ms of quantization


def test_closed_loop_pitch_jump():
    # Pitch has less eye range (+-17.6 deg) and a slower neck (600 ticks/s); measured 180 ms for 15 deg.
    _, m = simulate(jump_path(4.0, at_s=2.0, jump_deg=15.0, start_deg=-5.0, axis="pitch"))
    jump = m["jumps"][0]
    assert jump["settle_ms"] is not None and jump["settle_ms"] <= 250.0 and jump["overshoot"] <= 0.10
    assert jump["neck_share"] >= 0.8


def test_gaze_metrics_skip_a_jump_with_no_overshoot():
    """A jump measured on no control cycle (zero size here; a jump at the very end of a demo clip
    likewise) has overshoot None: the pooled overshoot comes from the other jumps, not a TypeError."""
    trace, m = simulate(jump_path(3.0, at_s=1.0))
    still = replace(trace, path=replace(trace.path, jumps=(*trace.path.jumps, 10)))    # frame 10: no move
    pooled = gaze_metrics(still, GazeJoints())
    assert pooled["jumps"][-1]["overshoot"] is None and pooled["jumps"][-1]["jump_deg"] == 0.0
    assert pooled["overshoot"] == m["overshoot"] and m["overshoot"] is not None


def test_closed_loop_tracks_a_moving_person():
    _, m = simulate(walking_path(20.0, seed=1))
    assert m["moving_frames"] > 200
    assert m["error_p50"] <= 0.03 and m["error_p95"] <= 0.08
    assert m["within_limits"] and max(m["max_speed_ratio"].values()) <= 1.03


# ------------------------------------------------------------------------------------ twin drawing
def _dark_centroid(img: np.ndarray) -> np.ndarray:
    """Centroid (x, y) of the pupils' near-black pixels."""
    ys, xs = np.nonzero(img.max(axis=2) < 30)
    return np.array([xs.mean(), ys.mean()])


def test_twin_draws_the_gaze_and_the_neck_pose():
    from emo_core.twin import DigitalTwin, render_face

    face = DigitalTwin(seed=0).rest_face()
    home = render_face(face, (240, 240), gaze=(0.0, 0.0), head=(0.0, 0.0, 0.0))
    right = render_face(face, (240, 240), gaze=(20.0, 0.0), head=(0.0, 0.0, 0.0))
    down = render_face(face, (240, 240), gaze=(0.0, 15.0), head=(0.0, 0.0, 0.0))
    # Seen from the front: the robot looking to its right moves its pupils to the viewer's left.
    assert _dark_centroid(right)[0] < _dark_centroid(home)[0] - 2
    assert _dark_centroid(down)[1] > _dark_centroid(home)[1] + 1
    turned = render_face(face, (240, 240), gaze=(0.0, 0.0), head=(0.0, 0.0, 25.0))
    skin = lambda img: np.nonzero(np.all(np.abs(img.astype(int) - (168, 197, 226)) < 12, axis=2))[1].mean()
    assert skin(turned) < skin(home) - 5                      # the head turned to its right: face shifts left
    assert np.array_equal(render_face(face, (240, 240)), render_face(face, (240, 240)))
