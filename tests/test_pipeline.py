"""The in-process coexpression pipeline, the sim robot and the synchrony measurement.

The pipeline's decisions (mirror, predict and hold, release, calm before calibration) are tested
on constructed landmark sequences with small stand-ins whose behaviour is known exactly (a
threshold detector, a predictor and an inverse map); the sim robot is the real driver + emulator
(pty) + twin on a ManualClock; the shipped models and the real detector run end to end in
tests/test_demo.py.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest

from emo_core.anticipation.detector import PeakEvent
from emo_core.anticipation.predictor import Prediction
from emo_core.anticipation.retarget import Retargeter
from emo_core.errors import ConfigError, InputError
from emo_core.people import load_template
from emo_core.pipeline import (STAGES, CoexpressionPipeline, FaceCommand, Mode, PipelineConfig, SimConfig, SimRobot,
                               Source, crossing_time, face_from_points, human_episode, robot_intensity, summarize)
from emo_core.pipeline.synchrony import expression_mask
from emo_core.schema import COMMAND_NAMES, REGIONS, Face
from emo_core.twin import DigitalTwin

FPS = 30.0
TTA = 0.5                      # the stand-in predictor's time to apex (s)
LIPS = REGIONS["lips"]


@pytest.fixture(scope="module")
def twin() -> DigitalTwin:
    return DigitalTwin(seed=0)


@pytest.fixture(scope="module")
def retargeter(twin) -> Retargeter:
    return Retargeter.from_twin(twin)


class ThresholdDetector:
    """Stand-in detector: calibrates on the median of the first frames, fires once when the lips
    have risen by ``threshold``; its ``rest`` follows the live face (a rolling neutral at its worst)."""

    calibration_frames = 8
    last_motion = float("inf")      # the face always counts as moving (re-predictions not gated)

    def __init__(self, threshold: float = 0.02) -> None:
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        self.rest = None
        self.fired = False
        self._frames: list[tuple[np.ndarray, float]] = []

    def update(self, face: Face, stamp: float) -> PeakEvent | None:
        xy = face.metric[:, :2].copy()
        self._frames.append((xy, stamp))
        if len(self._frames) < self.calibration_frames:
            return None
        if self.rest is None:
            self.rest = np.median([f for f, _ in self._frames], axis=0)
            return None
        rest, self.rest = self.rest, 0.9 * self.rest + 0.1 * xy
        if self.fired or float(np.mean(rest[LIPS, 1] - xy[LIPS, 1])) < self.threshold:
            return None
        self.fired = True
        window = self._frames[-4:]
        return PeakEvent(stamp=stamp, frame_index=len(self._frames) - 1, window=np.stack([f for f, _ in window]),
                         window_stamps=np.array([t for _, t in window]), rest=rest.copy(), activation=1.0)

    def window_event(self, stamp: float) -> PeakEvent | None:
        return None                 # no newest window: nothing to re-predict on


@dataclass
class _Prediction:
    target: np.ndarray
    time_to_apex: float
    confidence: float = 1.0


class StandInPredictor:
    """Predicts the last window frame pushed ``gain`` x further along its motion from rest."""

    def __init__(self, gain: float = 2.0) -> None:
        self.gain = gain
        self.calls = 0

    def predict_event(self, event) -> _Prediction:
        self.calls += 1
        target = event.window[-1] + self.gain * (event.window[-1] - event.rest)
        return _Prediction(target.astype(np.float32), TTA)


class StandInInverse:
    """Commands from the mean vertical lip displacement: calm + gain * displacement (clipped)."""

    def __init__(self, twin: DigitalTwin) -> None:
        self.rest = twin.rest_face()
        self.calm = twin.calm_commands()

    def predict(self, robot: np.ndarray) -> np.ndarray:
        lift = float(np.mean(self.rest[LIPS, 1] - robot[LIPS, 1]))
        out = self.calm.copy()
        out[COMMAND_NAMES.index("mouth_corner_up")] += 4.0 * lift
        return np.clip(out, 0.0, 1.0)


def smile_sequence(seconds: float = 3.0, onset: float = 1.0, rise: float = 0.8, amplitude: float = 0.12,
                   noise: float = 0.0015, seed: int = 0) -> tuple[np.ndarray, int, int]:
    """Template face at rest, then the lips rising smoothly (a cosine ramp), then held.
    Returns (T, 113, 2) landmarks, onset frame, apex frame."""
    rng = np.random.default_rng(seed)
    base = load_template().landmarks[:, :2].astype(np.float32)
    t = np.arange(int(seconds * FPS)) / FPS
    level = np.clip((t - onset) / rise, 0.0, 1.0)
    level = 0.5 - 0.5 * np.cos(np.pi * level)
    frames = np.repeat(base[None], len(t), axis=0)
    frames[:, LIPS, 1] -= amplitude * level[:, None]
    frames += rng.normal(0, noise, frames.shape).astype(np.float32)
    return frames, int(round(onset * FPS)), int(round((onset + rise) * FPS))


#: The timed hold (the predicted face itself, due at the predicted apex) with naive mirroring: most
#: decision tests below are about it; the default lead by progress has tests of its own.
TIMED = {"lead_fraction": 0.0, "lead_mirroring": False}


def make_pipeline(mode: Mode, twin, retargeter, timer=None, gain: float = 2.0,
                  overtake: bool = True, **overrides) -> CoexpressionPipeline:
    kwargs = {"timer": timer} if timer is not None else {}
    config = PipelineConfig(mode=mode, release_when_overtaken=overtake, **{**TIMED, **overrides})
    return CoexpressionPipeline(StandInPredictor(gain), StandInInverse(twin), retargeter, twin.calm_commands(),
                                config=config, detector=ThresholdDetector(), **kwargs)


def run_frames(pipeline: CoexpressionPipeline, frames: np.ndarray):
    return [pipeline.process_face(face_from_points(f, i / FPS)) for i, f in enumerate(frames)]


def test_coexpression_fires_and_commands_the_predicted_apex_in_the_future(twin, retargeter) -> None:
    frames, onset, apex = smile_sequence()
    pipeline = make_pipeline(Mode.COEXPRESSION, twin, retargeter, overtake=False)
    results = run_frames(pipeline, frames)
    fired = [r for r in results if r.event is not None]
    assert len(fired) == 1, "one expression, one peak activation"
    fire = fired[0]
    assert onset < fire.event.frame_index < apex, "fires on the rising edge, before the apex"
    cmd = fire.command
    assert cmd.source is Source.PREDICTED and cmd.execute_at == pytest.approx(fire.stamp + TTA)
    assert cmd.execute_at > fire.stamp
    assert cmd.names == COMMAND_NAMES and cmd.positions.shape == (11,)
    # Held (same command, same stamp and execute_at) until execute_at, then live mirroring again.
    for r in results[fire.event.frame_index:]:
        if r.stamp <= cmd.execute_at:
            assert r.command is cmd and r.predicted_target is not None
        else:
            assert r.command.source is Source.MIMIC and r.command.execute_at is None
            assert r.command.stamp == r.stamp
    # The stand-in predicts beyond the current face: the held command smiles more than the live one.
    k = COMMAND_NAMES.index("mouth_corner_up")
    assert cmd.positions[k] > results[fire.event.frame_index - 1].command.positions[k]


@pytest.mark.parametrize("gain, released_early", [(0.0, True), (20.0, False)])
def test_a_prediction_the_person_overtakes_is_released_early(twin, retargeter, gain, released_early) -> None:
    frames, _, _ = smile_sequence()
    pipeline = make_pipeline(Mode.COEXPRESSION, twin, retargeter, gain=gain)
    results = run_frames(pipeline, frames)
    fire = next(r for r in results if r.event is not None)
    execute_at = fire.stamp + fire.time_to_apex
    during = [r for r in results if fire.stamp < r.stamp <= execute_at]
    mirrored = [r.command.source is Source.MIMIC for r in during]
    # gain 0 predicts the face at firing: the rising face passes it within a frame or two and the
    # robot follows the person; a far-reaching prediction is held until its execute_at.
    assert any(mirrored) is released_early
    if released_early:
        assert mirrored[-1] and mirrored.index(True) <= 3


def test_a_person_ahead_of_the_plan_makes_the_robot_hurry_not_mirror(twin, retargeter) -> None:
    """Ahead of the planned motion but short of the predicted face: the prediction stays, with
    execute_at moved to now (the driver's fastest, lag-led approach); without hurrying, mirroring."""
    frames, _, _ = smile_sequence(rise=0.3)       # a fast smile: it outruns a constant-speed plan
    for hurry in (True, False):
        config = PipelineConfig(mode=Mode.COEXPRESSION, hurry_when_overtaken=hurry, **TIMED)
        pipeline = CoexpressionPipeline(StandInPredictor(6.0), StandInInverse(twin), retargeter,
                                        twin.calm_commands(), config=config, detector=ThresholdDetector())
        results = run_frames(pipeline, frames)
        fire = next(r for r in results if r.event is not None)
        during = [r for r in results if fire.stamp < r.stamp <= fire.stamp + fire.time_to_apex]
        if hurry:
            hurried = [r for r in during if r.command.source is Source.PREDICTED and r.command.execute_at < fire.stamp + fire.time_to_apex]
            assert hurried, "the prediction was hurried"
            assert hurried[0].command.execute_at == pytest.approx(hurried[0].stamp)
            assert np.array_equal(hurried[0].command.positions, fire.command.positions), "same face, sooner"
            i = results.index(hurried[0])
            assert results[i + 1].command.source is Source.PREDICTED, "held on (not one frame and back)"
        else:
            assert any(r.command.source is Source.MIMIC for r in during)


def test_lead_mirroring_times_coexpression_mirroring_but_never_mimicry(twin, retargeter) -> None:
    frames, _, _ = smile_sequence()
    for mode in (Mode.COEXPRESSION, Mode.MIMICRY):
        config = PipelineConfig(mode=mode, lead_mirroring=True)
        pipeline = CoexpressionPipeline(StandInPredictor(2.0), StandInInverse(twin), retargeter,
                                        twin.calm_commands(), config=config, detector=ThresholdDetector())
        mirrored = [r.command for r in run_frames(pipeline, frames)
                    if r.command is not None and r.command.source is Source.MIMIC and r.calibrated]
        assert mirrored
        if mode is Mode.COEXPRESSION:
            assert all(c.execute_at == c.stamp for c in mirrored), "arrive as soon as possible, lag-led"
        else:
            assert all(c.execute_at is None for c in mirrored), "the baseline stays naive"


def test_by_default_the_robot_leads_the_person_toward_the_prediction(twin, retargeter) -> None:
    """Held prediction, default config: each frame the live face moved half the remaining way to
    the predicted face, sent to arrive now (lag-led), until the person gets past the prediction."""
    frames, _, _ = smile_sequence()
    config = PipelineConfig(mode=Mode.COEXPRESSION)
    assert config.lead_fraction == 0.5 and config.lead_mirroring
    pipeline = CoexpressionPipeline(StandInPredictor(2.0), StandInInverse(twin), retargeter, twin.calm_commands(),
                                    config=config, detector=ThresholdDetector())
    results = run_frames(pipeline, frames)
    fire = next(r for r in results if r.event is not None)
    led = [r for r in results if r.stamp >= fire.stamp and r.predicted_target is not None]
    assert led and led[0] is fire, "leading starts on the firing frame"
    k = COMMAND_NAMES.index("mouth_corner_up")
    for r in led:
        live = retargeter(r.face.metric[:, :2], pipeline.rest)
        np.testing.assert_allclose(r.robot_target, live + 0.5 * (r.predicted_target - live), atol=1e-5)
        assert r.command.source is Source.PREDICTED and r.command.execute_at == r.stamp
        assert r.command.stamp == r.stamp, "a fresh command every frame, not one held command"
        mirrored, predicted = (StandInInverse(twin).predict(f)[k] for f in (live, r.predicted_target))
        if mirrored <= predicted:      # until the person passes the prediction (then it is released)
            assert r.command.positions[k] >= mirrored - 1e-6, "ahead of the person, never behind"
    assert led[0].command.positions[k] > results[results.index(fire) - 1].command.positions[k]
    after = [r for r in results if r.stamp > led[-1].stamp]
    assert after and all(r.command.source is Source.MIMIC and r.predicted_target is None for r in after)


def test_leading_without_release_keeps_leading_until_the_predicted_apex(twin, retargeter) -> None:
    """release_when_overtaken off: no early release, but still the lead by progress (not a held face)."""
    frames, _, _ = smile_sequence()
    config = PipelineConfig(mode=Mode.COEXPRESSION, release_when_overtaken=False)
    pipeline = CoexpressionPipeline(StandInPredictor(0.0), StandInInverse(twin), retargeter, twin.calm_commands(),
                                    config=config, detector=ThresholdDetector())
    results = run_frames(pipeline, frames)
    fire = next(r for r in results if r.event is not None)
    during = [r for r in results if fire.stamp <= r.stamp <= fire.stamp + TTA]
    assert all(r.command.source is Source.PREDICTED and r.command.stamp == r.stamp for r in during)
    assert len({r.command.positions.tobytes() for r in during}) > 1, "follows the person, not one face"


def test_without_anticipation_coexpression_is_lag_led_mirroring(twin, retargeter) -> None:
    """The ablation: the detector runs, the predictor is never called, every command arrives now."""
    frames, _, _ = smile_sequence()
    predictor = StandInPredictor(2.0)
    pipeline = CoexpressionPipeline(predictor, StandInInverse(twin), retargeter, twin.calm_commands(),
                                    config=PipelineConfig(mode=Mode.COEXPRESSION, anticipate=False),
                                    detector=ThresholdDetector())
    results = run_frames(pipeline, frames)
    assert any(r.event is not None for r in results), "the detector still fires"
    assert predictor.calls == 0
    mirrored = [r.command for r in results if r.calibrated and r.command is not None]
    assert mirrored and all(c.source is Source.MIMIC and c.execute_at == c.stamp for c in mirrored)


class WindowDetector(ThresholdDetector):
    """ThresholdDetector that can also hand over its newest window (as the real detector does)."""

    def window_event(self, stamp: float) -> PeakEvent | None:
        if self.rest is None or len(self._frames) < 4:
            return None
        window = self._frames[-4:]
        return PeakEvent(stamp=stamp, frame_index=len(self._frames) - 1, window=np.stack([f for f, _ in window]),
                         window_stamps=np.array([t for _, t in window]), rest=self.rest.copy(), activation=1.0)


@pytest.mark.parametrize("every", [3, 0])
def test_a_held_prediction_is_refreshed_while_the_expression_unfolds(twin, retargeter, every) -> None:
    frames, _, _ = smile_sequence(rise=1.2)
    config = PipelineConfig(mode=Mode.COEXPRESSION, repredict_every=every, **TIMED)
    predictor = StandInPredictor(1.0)
    pipeline = CoexpressionPipeline(predictor, StandInInverse(twin), retargeter, twin.calm_commands(),
                                    config=config, detector=WindowDetector())
    results = run_frames(pipeline, frames)
    fire = next(r for r in results if r.event is not None)
    held = [r.command for r in results if r.stamp > fire.stamp and r.command.source is Source.PREDICTED]
    assert held, "the prediction is held"
    if every:
        # Every 3rd held frame: the newest window, a new target and execute_at = now + time to apex.
        assert predictor.calls > 1
        refreshed = [c for c in held if c.execute_at != fire.command.execute_at]
        assert refreshed and all(c.stamp == fire.stamp for c in held), "still the same firing"
        k = COMMAND_NAMES.index("mouth_corner_up")
        assert refreshed[-1].positions[k] > fire.command.positions[k], "the rising face, predicted further"
        assert refreshed[-1].execute_at > fire.command.execute_at
    else:
        assert predictor.calls == 1
        assert all(np.array_equal(c.positions, fire.command.positions) for c in held), "the first prediction only"


def test_a_prediction_no_expression_follows_is_abandoned(twin, retargeter) -> None:
    """A twitch at rest fires the detector; the face goes back to rest, so the robot does too."""
    frames, _, _ = smile_sequence(seconds=2.0, amplitude=0.0)
    twitch = np.array([0.0, 0.015, 0.03, 0.015, 0.0])
    frames[30:35, LIPS, 1] -= twitch[:, None]
    pipeline = make_pipeline(Mode.COEXPRESSION, twin, retargeter, gain=3.0)
    results = run_frames(pipeline, frames)
    fire = next(r for r in results if r.event is not None)
    assert fire.command.source is Source.PREDICTED
    i = results.index(fire)
    assert all(r.command is fire.command for r in results[i:i + 3]), "held at first"
    abandon = pipeline.config.abandon_after_s + pipeline.config.overtake_frames / FPS
    after = [r for r in results if fire.stamp + abandon + 0.04 <= r.stamp < fire.stamp + TTA]
    assert after and all(r.command.source is Source.MIMIC for r in after), "released before execute_at"


def test_mimicry_mirrors_every_frame_and_never_predicts(twin, retargeter) -> None:
    frames, _, apex = smile_sequence()
    pipeline = make_pipeline(Mode.MIMICRY, twin, retargeter)
    results = run_frames(pipeline, frames)
    assert pipeline.predictor.calls == 0
    assert any(r.event is not None for r in results), "the detector still runs (it gives the rest face)"
    commands = [r.command for r in results]
    assert all(c is not None and c.source is Source.MIMIC and c.execute_at is None for c in commands)
    assert [c.stamp for c in commands] == [r.stamp for r in results]
    k = COMMAND_NAMES.index("mouth_corner_up")
    assert commands[apex + 5].positions[k] > commands[5].positions[k] + 0.2, "the smile is mirrored"


def test_calm_face_until_calibrated_and_no_command_without_a_face(twin, retargeter) -> None:
    frames, _, _ = smile_sequence(seconds=1.0)
    pipeline = make_pipeline(Mode.COEXPRESSION, twin, retargeter)
    n_cal = pipeline.detector.calibration_frames
    results = run_frames(pipeline, frames[:n_cal - 1])
    assert all(not r.calibrated and r.robot_target is None for r in results)
    assert all(np.allclose(r.command.positions, twin.calm_commands()) for r in results)
    missing = pipeline.process_face(Face.missing(stamp=1.0))
    assert missing.command is None and missing.face.detected is False
    nan = pipeline.process_face(np.full((113, 2), np.nan, np.float32), stamp=1.1)
    assert nan.command is None
    with pytest.raises(InputError):
        pipeline.process_face(np.zeros((50, 2), np.float32), stamp=1.2)
    with pytest.raises(ConfigError):
        pipeline.process_frame(np.zeros((8, 8, 3), np.uint8), 0.0)   # no extractor given


def test_mirror_rest_is_the_calibrated_face_not_the_rolling_neutral(twin, retargeter) -> None:
    frames, _, _ = smile_sequence(seconds=6.0, onset=1.0, rise=2.5, amplitude=0.06)
    pipeline = make_pipeline(Mode.MIMICRY, twin, retargeter)
    run_frames(pipeline, frames[:12])
    calibrated = pipeline.rest.copy()
    run_frames(pipeline, frames[12:])
    assert not np.allclose(pipeline.detector.rest, calibrated, atol=0.01), "the stand-in's neutral drifted"
    assert np.array_equal(pipeline.rest, calibrated)
    with pytest.raises(ConfigError):
        PipelineConfig(mirror_rest="sometimes")
    with pytest.raises(ConfigError):
        PipelineConfig(mode="telepathy")
    with pytest.raises(ConfigError, match="lead_fraction"):
        PipelineConfig(lead_fraction=1.5)


def test_latency_is_recorded_per_stage_with_the_injected_timer(twin, retargeter) -> None:
    ticks = itertools.count()
    pipeline = make_pipeline(Mode.COEXPRESSION, twin, retargeter, timer=lambda: next(ticks) * 1e-3)
    frames, _, _ = smile_sequence()
    run_frames(pipeline, frames)
    summary = pipeline.latency.summary_ms()
    assert {"detect", "predict", "retarget", "inverse", "end_to_end"} <= set(summary) <= set(STAGES)
    assert summary["predict"]["n"] == 1 and summary["end_to_end"]["n"] == len(frames)
    for stage in summary.values():
        assert stage["p50"] >= 1.0 and stage["p99"] >= stage["p50"]      # each timed span >= one tick
    assert summary["end_to_end"]["p50"] > summary["detect"]["p50"]


# ------------------------------------------------------------------------------------ sim robot

SMILE = 0.8


def _command(positions, stamp, execute_at=None, source=Source.MIMIC) -> FaceCommand:
    return FaceCommand(COMMAND_NAMES, np.asarray(positions, np.float32), stamp, execute_at, source)


def _drive(robot: SimRobot, twin) -> np.ndarray:
    """Calm stream for 0.3 s, then a timed smile (execute_at 0.9 s), streamed at 30 fps until 1.4 s.

    The smile stays clear of the servo limits: a goal cannot lead the setpoint past a limit, so a
    move that ends at one arrives up to a time constant late."""
    calm = twin.calm_commands()
    smile = calm.copy()
    smile[COMMAND_NAMES.index("mouth_corner_up")] = SMILE
    for i in range(int(1.4 * FPS)):
        t = i / FPS
        cmd = _command(calm, t) if t < 0.3 else _command(smile, 0.3, execute_at=0.9, source=Source.PREDICTED)
        robot.submit(cmd)
        robot.advance_to(t)
    return robot.trace().commands


def test_sim_robot_is_deterministic_and_arrives_on_time(twin) -> None:
    config = SimConfig(input_latency_s=0.0)
    with SimRobot(twin, config=config) as robot:
        first = _drive(robot, twin)
        times = robot.trace().times
        assert robot.faults == []
        assert robot.face().shape == (113, 2)
    with SimRobot(twin, config=config) as robot:
        second = _drive(robot, twin)
    assert np.array_equal(first, second), "one ManualClock: the same commands give the same motion"
    k = COMMAND_NAMES.index("mouth_corner_up")
    calm = twin.calm_commands()[k]
    # Timed: a constant-speed approach whose goals lead the plant's lag, so the *face* gets there at
    # execute_at (95 % of the way at ~95 % of the time), not at once and not a lag later.
    halfway = first[np.searchsorted(times, 0.6), k]
    assert calm + 0.3 * (SMILE - calm) < halfway < calm + 0.7 * (SMILE - calm)
    arrived = times[np.argmax(first[:, k] >= calm + 0.95 * (SMILE - calm))]
    assert 0.9 - 0.05 <= arrived <= 0.9 + 0.03
    assert first[:, k].max() <= SMILE + 0.01, "no overshoot"


def test_sim_robot_faces_start_calm_and_follow_an_untimed_command_at_full_speed(twin) -> None:
    # An ideal plant (no response lag): an untimed command moves at the servo's full speed.
    with SimRobot(twin, config=SimConfig(input_latency_s=0.05, response_time_s=0.0)) as robot:
        robot.advance_to(0.1)
        assert np.allclose(robot.faces()[-1], twin.rest_face(), atol=2e-3), "powered up at the calm face"
        target = twin.calm_commands()
        target[COMMAND_NAMES.index("jaw_open")] = 0.6
        jaw = COMMAND_NAMES.index("jaw_open")
        robot.submit(_command(target, 0.1))          # delivered at 0.15 s (input latency)
        robot.advance_to(0.15)
        assert robot.trace().commands[-1][jaw] < 0.02
        robot.advance_to(0.6)
        assert robot.trace().commands[-1][jaw] == pytest.approx(0.6, abs=0.01), "at full speed: 0.36 s"
        # Commands stop: the driver's watchdog eases the face home after its timeout.
        robot.advance_to(2.5)
        assert robot.trace().commands[-1][jaw] < 0.1
        robot.settle(0.6)
        assert len(robot.trace().times) == 0
        robot.advance_to(robot.now() + 0.05)
        assert np.allclose(robot.trace().commands[-1], twin.calm_commands(), atol=0.01)



def test_with_the_plant_lag_an_untimed_command_arrives_late(twin) -> None:
    """The default plant (servos.yaml emulator.response_time_s): a "now" command -- all mimicry ever
    sends -- reaches 95 % of the move about three time constants after it left at full speed."""
    jaw = COMMAND_NAMES.index("jaw_open")
    arrivals = {}
    for tau in (0.0, None):
        with SimRobot(twin, config=SimConfig(input_latency_s=0.0, response_time_s=tau)) as robot:
            robot.advance_to(0.1)
            target = twin.calm_commands()
            start = float(robot.trace().commands[-1][jaw])
            target[jaw] = 0.6
            for t in np.arange(0.1, 1.6, 0.05):      # a live stream (the watchdog stays quiet)
                robot.submit(_command(target, float(t)))
                robot.advance_to(float(t))
            trace = robot.trace()
            lag = robot.table.emulator["response_time_s"]
        reached = trace.commands[:, jaw] >= start + 0.95 * (0.6 - start)
        assert reached.any()
        arrivals[tau] = trace.times[np.argmax(reached)]
    assert arrivals[None] - arrivals[0.0] >= 1.5 * lag

# ------------------------------------------------------------------------------------ synchrony

def test_crossing_time_interpolates_the_95_percent_point() -> None:
    t = np.arange(0, 2.0, 0.1)
    ramp = np.clip(t - 0.5, 0, 1.0)                     # 0 until 0.5 s, 1 from 1.5 s
    assert crossing_time(t, ramp) == pytest.approx(1.45)
    assert crossing_time(t, ramp, fraction=0.5) == pytest.approx(1.0)
    assert crossing_time(t, ramp, start=0.0, end=1.0) == pytest.approx(0.5 + 0.95 * 0.5)
    assert crossing_time(t, np.zeros_like(t)) is None
    assert crossing_time(t[:1], ramp[:1]) is None


def test_human_episode_window_and_apex_from_ground_truth() -> None:
    fps = 30.0
    t = np.arange(150) / fps
    intensity = np.interp(t, [0, 1.0, 1.8, 2.4, 3.0, 5.0], [0, 0, 1.0, 0.8, 0.0, 0.0])
    ep = human_episode(intensity, fps, onset_frame=30)
    assert ep.human_apex == pytest.approx(1.0 + 0.95 * 0.8, abs=1e-6)
    assert ep.start == pytest.approx(0.5) and ep.onset == pytest.approx(1.0)
    relaxed = 2.4 + 0.6 * (0.8 - 0.3) / 0.8             # below 30 % of the peak
    assert relaxed + 0.5 - 0.04 < ep.end < relaxed + 0.5 + 0.04
    assert human_episode(np.zeros(50), fps, 10) is None
    assert human_episode(intensity, fps, -1) is None


def test_robot_intensity_projects_on_the_reference_and_ignores_the_eyes(twin) -> None:
    rest = twin.rest_face()
    reference = rest.copy()
    reference[LIPS, 1] -= 0.1
    half = rest + 0.5 * (reference - rest)
    blink = rest.copy()
    blink[~expression_mask(), 1] += 0.2                  # eyelids only
    frown = rest - (reference - rest)
    values = robot_intensity(np.stack([rest, half, reference, blink, frown]), rest, reference)
    assert values == pytest.approx([0.0, 0.5, 1.0, 0.0, 0.0], abs=1e-6)
    # Measured from a biased neutral face (an inverse model's offset), the same motion counts the same.
    bias = np.zeros_like(rest)
    bias[LIPS, 0] += 0.01
    biased = robot_intensity(np.stack([rest, half, reference]) + bias, rest, reference, baseline=rest + bias)
    assert biased == pytest.approx([0.0, 0.5, 1.0], abs=1e-6)


def test_smoothing_is_centred_and_removes_single_spikes() -> None:
    from emo_core.pipeline.synchrony import smooth

    t = np.arange(0, 2.0, 0.01)
    ramp = np.clip(t - 0.5, 0, 1.0)
    assert crossing_time(t, smooth(t, ramp)) == pytest.approx(crossing_time(t, ramp), abs=0.006)
    spiky = ramp.copy()
    spiky[80] += 1.0                                   # one noise spike early in the rise
    assert crossing_time(t, spiky) == pytest.approx(0.8, abs=0.011)       # raw: the spike sets the max
    assert crossing_time(t, smooth(t, spiky)) > 1.4                       # smoothed: the real apex


def test_summary_reports_median_median_abs_and_count() -> None:
    assert summarize([0.05, -0.02, 0.01, None]) == {"median": 10.0, "median_abs": 20.0, "n": 3}
    assert summarize([]) == {"median": None, "median_abs": None, "n": 0}


class ConfidentPredictor(StandInPredictor):
    """The stand-in with a fixed calibrated confidence."""

    def __init__(self, confidence: float) -> None:
        super().__init__(gain=2.0)
        self.confidence = confidence

    def predict_event(self, event):
        p = super().predict_event(event)
        return Prediction(p.target, p.time_to_apex, confidence=self.confidence)


@pytest.mark.parametrize("confidence", [1.0, 0.5, 0.0])
def test_the_held_face_falls_back_to_mimicry_as_confidence_falls(twin, retargeter, confidence) -> None:
    """Held = the face at the firing + confidence x (predicted - that face); 0 holds mimicry's face."""
    frames, _, _ = smile_sequence()
    pipeline = CoexpressionPipeline(ConfidentPredictor(confidence), StandInInverse(twin), retargeter,
                                    twin.calm_commands(), config=PipelineConfig(mode=Mode.COEXPRESSION, **TIMED),
                                    detector=ThresholdDetector())
    fire = next(r for r in run_frames(pipeline, frames) if r.event is not None)
    now = fire.event.window[-1]
    predicted = now + 2.0 * (now - fire.event.rest)
    expected = retargeter(now + confidence * (predicted - now), pipeline.rest)
    np.testing.assert_allclose(fire.predicted_target, expected, atol=1e-5)
    off = CoexpressionPipeline(ConfidentPredictor(confidence), StandInInverse(twin), retargeter, twin.calm_commands(),
                               config=PipelineConfig(mode=Mode.COEXPRESSION, confidence_blend=False, **TIMED),
                               detector=ThresholdDetector())
    fire_off = next(r for r in run_frames(off, frames) if r.event is not None)
    np.testing.assert_allclose(fire_off.predicted_target, retargeter(predicted, off.rest), atol=1e-5)


def test_filter_lead_commands_the_smoothed_face_ahead_now(twin, retargeter) -> None:
    """lag_lead 'filter': coexpression commands the One Euro filtered face extrapolated one lag ahead,
    executed now (no driver lead), ahead of the raw face in the rise; the lead needs the filter."""
    from emo_core.perception.filter import OneEuroConfig

    frames, onset, apex = smile_sequence(noise=0.004)
    cfg = dict(mode=Mode.COEXPRESSION, anticipate=False, smoothing=OneEuroConfig(), lag_lead="filter")
    coex = CoexpressionPipeline(StandInPredictor(), StandInInverse(twin), retargeter, twin.calm_commands(),
                                config=PipelineConfig(**cfg), detector=ThresholdDetector())
    mimic = make_pipeline(Mode.MIMICRY, twin, retargeter)
    k = COMMAND_NAMES.index("mouth_corner_up")
    c = np.array([r.command.positions[k] for r in run_frames(coex, frames)])
    m = np.array([r.command.positions[k] for r in run_frames(mimic, frames)])
    assert all(r.command.execute_at is None for r in run_frames(coex, frames)[10:])
    mid = (onset + apex) // 2
    assert c[mid] > m[mid] + 0.01                         # ahead of the raw face in the rise
    # At rest the extrapolated lead passes about as much landmark noise on as raw mirroring does
    # (the driver's own lead of a command due now multiplies each step by servo_lag / cycle = 20).
    still = slice(12, onset - 2)
    assert np.diff(c[still], 2).std() < 1.5 * np.diff(m[still], 2).std()
    with pytest.raises(ConfigError):
        PipelineConfig(lag_lead="filter")


def test_slope_lead_commands_the_face_ahead_by_its_averaged_velocity(twin, retargeter) -> None:
    """lag_lead 'slope': the raw face plus lag_lead_s x its least-squares velocity, executed now;
    ahead of mimicry in the rise, and far quieter at rest than the driver's lead of each frame's step."""
    frames, onset, apex = smile_sequence(noise=0.004)
    cfg = dict(mode=Mode.COEXPRESSION, anticipate=False, lag_lead="slope", lag_lead_frames=8)
    coex = CoexpressionPipeline(StandInPredictor(), StandInInverse(twin), retargeter, twin.calm_commands(),
                                config=PipelineConfig(**cfg), detector=ThresholdDetector())
    mimic = make_pipeline(Mode.MIMICRY, twin, retargeter)
    k = COMMAND_NAMES.index("mouth_corner_up")
    results = run_frames(coex, frames)
    c = np.array([r.command.positions[k] for r in results])
    m = np.array([r.command.positions[k] for r in run_frames(mimic, frames)])
    assert all(r.command.execute_at is None for r in results[10:])
    mid = (onset + apex) // 2
    assert c[mid] > m[mid] + 0.01
    still = slice(12, onset - 2)
    assert np.diff(c[still], 2).std() < 1.5 * np.diff(m[still], 2).std()
    with pytest.raises(ConfigError):
        PipelineConfig(lag_lead="slope", lag_lead_frames=1)
