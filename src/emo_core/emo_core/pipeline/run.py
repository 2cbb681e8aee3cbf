"""Running pipelines against simulated robots, and measuring synchrony on recordings.

:class:`ModeRunner` couples one pipeline (one mode) with one :class:`SimRobot`: every frame's
command is queued for the driver, and the robot's clock is advanced with the frames' media time.
:func:`evaluate_sequences` runs held-out synthetic people (already landmarks) through both modes
and reports the synchrony of each.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..schema import N_LANDMARKS, Face, Space
from .core import CoexpressionPipeline, Mode, StepResult
from .models import Stages
from .sim import SimConfig, SimRobot
from .synchrony import Episode, crossing_time, human_episode, robot_intensity, smooth, summarize

LOG = logging.getLogger(__name__)

#: Media time the robot keeps running after the last frame (a late robot still gets there);
#: shorter than the driver's watchdog timeout, so the face is not sent home during it.
TAIL_S = 0.4
#: In synthetic runs the robot starts this long before the episode window.
SIM_LEAD_S = 0.5
#: Frames whose median is the human resting face for the synchrony reference (as the detector).
REST_FRAMES = 8
#: The robot's baseline face: its mean over this long before the human onset.
BASELINE_S = 0.5


@dataclass
class ModeRun:
    """One mode's run over one recording (times in the recording's media time)."""

    mode: Mode
    stamps: list[float] = field(default_factory=list)
    positions: list[np.ndarray | None] = field(default_factory=list)     # per frame (11,) or None
    sources: list[str | None] = field(default_factory=list)
    targets: list[np.ndarray | None] = field(default_factory=list)       # per frame robot-space target
    held: list[bool] = field(default_factory=list)                       # a prediction was held
    fire_times: list[float] = field(default_factory=list)
    execute_at: list[float] = field(default_factory=list)
    robot_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    robot_commands: np.ndarray = field(default_factory=lambda: np.zeros((0, 11), np.float32))
    robot_goals: np.ndarray = field(default_factory=lambda: np.zeros((0, 11), np.float32))  # sent, lead included
    robot_faces: np.ndarray = field(default_factory=lambda: np.zeros((0, N_LANDMARKS, 2), np.float32))
    robot_apex: float | None = None
    offset_s: float | None = None
    intensity: np.ndarray | None = None                                   # robot intensity per robot time

    def robot_face_at(self, t: float) -> np.ndarray:
        """The robot's face at media time ``t`` (the last control cycle at or before it)."""
        if not len(self.robot_times):
            raise IndexError("no robot trace")
        i = int(np.searchsorted(self.robot_times, t + 1e-9, side="right")) - 1
        return self.robot_faces[max(i, 0)]


class ModeRunner:
    """Feeds one pipeline's commands to one sim robot in media time."""

    def __init__(self, pipeline: CoexpressionPipeline, robot: SimRobot, keep_frames: bool = True) -> None:
        self.pipeline = pipeline
        self.robot = robot
        self.keep_frames = keep_frames
        self.run = ModeRun(pipeline.mode)
        self._offset: float | None = None

    def feed(self, result: StepResult) -> None:
        if self._offset is None:
            # Map media time onto the robot's clock: the first frame is "now" on the robot.
            self._offset = self.robot.now() - result.stamp
        run = self.run
        if result.event is not None:
            run.fire_times.append(result.event.stamp)
            if result.time_to_apex is not None:
                run.execute_at.append(result.event.stamp + result.time_to_apex)
        if self.keep_frames:
            run.stamps.append(result.stamp)
            cmd = result.command
            run.positions.append(None if cmd is None else cmd.positions)
            run.sources.append(None if cmd is None else cmd.source.value)
            run.targets.append(result.robot_target)
            run.held.append(result.predicted_target is not None)
        if result.command is not None:
            self.robot.submit(result.command, offset=self._offset)
        self.robot.advance_to(result.stamp + self._offset)

    def finish(self, last_stamp: float, tail_s: float = TAIL_S) -> ModeRun:
        offset = self._offset or 0.0
        self.robot.advance_to(last_stamp + offset + tail_s)
        trace = self.robot.trace()
        self.run.robot_times = trace.times - offset
        self.run.robot_commands = trace.commands
        self.run.robot_goals = trace.goals if trace.goals is not None else trace.commands
        self.run.robot_faces = self.robot.faces()
        self.run.offset_s = offset
        return self.run


def human_rest(faces_xy: np.ndarray) -> np.ndarray:
    """The resting face the synchrony reference is measured from: median of the first frames."""
    finite = faces_xy[np.all(np.isfinite(faces_xy), axis=(1, 2))]
    return np.median(finite[:REST_FRAMES], axis=0).astype(np.float32)


@dataclass
class Reference:
    """The human side of one expression, measured the way the robot is measured."""

    face: np.ndarray            # (113, 2) the human apex face retargeted to the robot (eq. 1-2)
    times: np.ndarray           # (T,) frame times
    curve: np.ndarray           # (T,) the human's intensity, same projection and smoothing as the robot's
    apex: float | None          # 95 % crossing of ``curve`` within the episode
    truth_apex: float           # 95 % crossing of the ground-truth intensity (for the report)


def reference_robot_face(stages: Stages, faces_xy: np.ndarray, apex_frame: int) -> np.ndarray:
    """The human apex face (mean of the apex frame and its neighbours) retargeted to the robot."""
    lo, hi = max(0, apex_frame - 1), min(len(faces_xy), apex_frame + 2)
    window = faces_xy[lo:hi]
    window = window[np.all(np.isfinite(window), axis=(1, 2))]
    apex = window.mean(axis=0) if len(window) else faces_xy[apex_frame]
    return stages.retargeter(apex, human_rest(faces_xy))


def reference(stages: Stages, faces_xy: np.ndarray, fps: float, apex_frame: int, episode: Episode) -> Reference:
    """The human curve: every frame retargeted (no robot, no delay), projected and smoothed exactly
    as the robot's face is -- so the two apex times differ only by what the robot adds (latency,
    velocity limits, prediction) and not by which landmarks or which noise each curve sees."""
    face = reference_robot_face(stages, faces_xy, apex_frame)
    rest = human_rest(faces_xy)
    times = np.arange(len(faces_xy)) / fps
    ok = np.all(np.isfinite(faces_xy), axis=(1, 2))
    values = np.full(len(faces_xy), np.nan)
    if ok.any():
        robot_rest = stages.twin.rest_face()
        values[ok] = robot_intensity(stages.retargeter(faces_xy[ok], rest), robot_rest, face)
        values = np.interp(times, times[ok], values[ok])       # frames without a face
    curve = smooth(times, values)
    apex = crossing_time(times, curve, start=episode.start, end=episode.end)
    return Reference(face, times, curve, apex, episode.human_apex)


def measure(run: ModeRun, episode: Episode, stages: Stages, ref: Reference) -> float | None:
    """Set the run's robot intensity and apex; return robot apex - human apex (s) or None."""
    rest = stages.twin.rest_face()
    before = (run.robot_times >= episode.onset - BASELINE_S) & (run.robot_times <= episode.onset)
    baseline = run.robot_faces[before].mean(axis=0) if before.any() else rest
    run.intensity = smooth(run.robot_times, robot_intensity(run.robot_faces, rest, ref.face, baseline))
    run.robot_apex = crossing_time(run.robot_times, run.intensity, start=episode.start, end=episode.end)
    if run.robot_apex is None or ref.apex is None:
        return None
    return run.robot_apex - ref.apex


def face_from_points(points: np.ndarray, stamp: float) -> Face:
    """A metric Face from (113, 2|3) landmarks (synthetic people come as landmarks already)."""
    pts = np.asarray(points, np.float32)
    metric = np.zeros((N_LANDMARKS, 3), np.float32)
    metric[:, :pts.shape[1]] = pts
    return Face(detected=bool(np.all(np.isfinite(pts))), confidence=1.0, metric=metric, stamp=stamp,
                space=Space.METRIC)


@dataclass
class SequenceResult:
    video_id: str
    label: str
    human_apex: float | None
    offsets_s: dict[str, float | None]
    fired: dict[str, bool]
    reproduced: dict[str, float]   # peak robot intensity (1 = the retargeted human apex, fully shown)
    lead_s: float | None      # human apex - first detector firing (how early the robot knew)


def evaluate_sequences(stages: Stages, sequences: Iterable[Any], modes: Sequence[Mode | str],
                       sim_config: SimConfig | None = None,
                       progress: Callable[[int], None] | None = None) -> tuple[dict[str, dict], list[SequenceResult]]:
    """Synchrony of each mode over expression sequences (``HumanSequence``-like: landmarks, fps,
    onset_frame, apex_frame, intensity). One sim robot per mode, settled to calm between people."""
    parsed = [Mode.parse(m) for m in modes]
    robots = {m: SimRobot(stages.twin, config=sim_config) for m in parsed}
    results: list[SequenceResult] = []
    try:
        for robot in robots.values():
            robot.start()
        for seq in sequences:
            result = _evaluate_one(stages, seq, robots)
            if result is not None:
                results.append(result)
            if progress is not None:
                progress(1)
    finally:
        for robot in robots.values():
            robot.stop()
    summary = {m.value: summarize([r.offsets_s[m.value] for r in results]) for m in parsed}
    return summary, results


def _evaluate_one(stages: Stages, seq: Any, robots: dict[Mode, SimRobot]) -> SequenceResult | None:
    faces_xy = np.asarray(seq.landmarks, np.float32)[..., :2]
    episode = human_episode(np.asarray(seq.intensity), float(seq.fps), int(seq.onset_frame))
    if episode is None or int(seq.apex_frame) < 0:
        return None
    ref = reference(stages, faces_xy, float(seq.fps), int(seq.apex_frame), episode)
    offsets: dict[str, float | None] = {}
    fired: dict[str, bool] = {}
    reproduced: dict[str, float] = {}
    lead = None
    for mode, robot in robots.items():
        robot.settle()
        pipeline = stages.pipeline(mode)
        runner = ModeRunner(pipeline, robot, keep_frames=False)
        stamps = np.arange(len(faces_xy)) / float(seq.fps)
        # The detector sees every frame from the start (it calibrates on the rest face); the robot
        # only runs from shortly before the episode to its end (mirroring a face at rest before
        # that is the calm face it starts from), which halves the simulated time.
        sim_from, sim_to = episode.start - SIM_LEAD_S, episode.end
        last = 0.0
        for points, stamp in zip(np.asarray(seq.landmarks, np.float32), stamps):
            if stamp > sim_to:
                break
            result = pipeline.process_face(face_from_points(points, float(stamp)))
            if stamp >= sim_from:
                runner.feed(result)
                last = float(stamp)
        run = runner.finish(last)
        offsets[mode.value] = measure(run, episode, stages, ref)
        fired[mode.value] = bool(run.fire_times)
        inside = (run.robot_times >= episode.start) & (run.robot_times <= episode.end)
        intensity = run.intensity
        assert intensity is not None, "measure() sets the run's intensity"
        reproduced[mode.value] = float(intensity[inside].max()) if inside.any() else 0.0
        if mode is Mode.COEXPRESSION and run.fire_times:
            lead = (ref.apex if ref.apex is not None else episode.human_apex) - run.fire_times[0]
    return SequenceResult(str(getattr(seq, "video_id", "")), str(getattr(seq, "label", "")),
                          ref.apex, offsets, fired, reproduced, lead)
