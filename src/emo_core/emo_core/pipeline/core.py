"""The in-process coexpression pipeline: one frame (or one face) in, one FaceCommand out.

Plumbing around :class:`~emo_core.pipeline.controller.CoexpressionController`: it chains the very
classes the ROS nodes wrap -- landmark extractor -> causal peak-activation detector -> expression
predictor -> the controller (retargeting, paper eq. 1-2, and the inverse self-model) -- and times
each stage. The controller decides which face the robot makes and when (mirror, lead toward a held
prediction, hold, hurry, release, abandon; see its module); this class runs the detector on each
face, hands the controller the detector's resting face, asks the predictor when the detector fires
(and when the controller wants a re-prediction, while the face still moves), and records the
per-stage durations.

No ROS and no wall clock: media time comes from the frame stamps; a ``timer`` callable (default
``time.perf_counter``) is injected only to measure how long each stage takes.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..anticipation.detector import DetectorConfig, PeakActivationDetector, PeakEvent
from ..commands import FaceCommand, Source
from ..errors import ConfigError, InputError
from ..schema import COMMAND_NAMES, N_LANDMARKS, Face, Space
from .controller import CoexpressionController, Hold, InverseModel, Mode, PipelineConfig, Retarget

LOG = logging.getLogger(__name__)

__all__ = ["COMMAND_NAMES", "STAGES", "CoexpressionPipeline", "Detector", "Extractor", "FaceCommand",
           "LatencyLog", "Mode", "PipelineConfig", "Predictor", "Source", "StepResult"]

#: Stages whose durations are recorded (seconds, by the injected timer).
STAGES = ("extract", "detect", "predict", "retarget", "inverse", "end_to_end")


class Detector(Protocol):
    """A causal peak-activation detector (``anticipation.detector.PeakActivationDetector``), one per
    person and stream: ``rest`` is None until it has calibrated; ``last_motion`` is the lips/brows
    motion of the last frame in noise units; ``window_event`` its newest window as an event."""

    rest: np.ndarray | None
    last_motion: float

    def update(self, face: Face, stamp: float) -> PeakEvent | None: ...

    def reset(self) -> None: ...

    def window_event(self, stamp: float) -> PeakEvent | None: ...


class Prediction(Protocol):
    """``anticipation.predictor.Prediction``: target (113, 2), time_to_apex (s), confidence."""

    target: np.ndarray
    time_to_apex: float
    confidence: float


class Predictor(Protocol):
    def predict_event(self, event: PeakEvent) -> Prediction: ...


class Extractor(Protocol):
    def process(self, rgb: np.ndarray, stamp: float, camera: str = "") -> Face: ...


@dataclass
class StepResult:
    """Everything one frame produced (for the demo's panels, logs and tests)."""

    stamp: float
    face: Face
    command: FaceCommand | None = None
    robot_target: np.ndarray | None = None     # (113, 2) robot-space face the command was made from
    event: PeakEvent | None = None             # the detector fired on this frame
    predicted_target: np.ndarray | None = None  # (113, 2) robot-space prediction while one is held
    time_to_apex: float | None = None          # of the prediction made on this frame
    calibrated: bool = False
    latency_s: dict[str, float] = field(default_factory=dict)


class LatencyLog:
    """Per-stage duration samples (seconds) of every processed frame."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {name: [] for name in STAGES}

    def add(self, durations: dict[str, float]) -> None:
        for name, value in durations.items():
            self.samples.setdefault(name, []).append(value)

    def summary_ms(self) -> dict[str, dict[str, float | int]]:
        """``{stage: {"p50", "p99", "mean", "n"}}`` in milliseconds (stages with samples only)."""
        out: dict[str, dict[str, float | int]] = {}
        for name, values in self.samples.items():
            if not values:
                continue
            arr = np.asarray(values, np.float64) * 1e3
            out[name] = {"p50": round(float(np.percentile(arr, 50)), 4),
                         "p99": round(float(np.percentile(arr, 99)), 4),
                         "mean": round(float(arr.mean()), 4), "n": int(arr.size)}
        return out


class StageClock:
    """Adds the durations of timed calls to the current frame's ``durations`` (by the injected timer)."""

    def __init__(self, timer: Callable[[], float]) -> None:
        self.timer = timer
        self.durations: dict[str, float] = {}

    def timed(self, stage: str, call: Callable[..., Any], *args: Any) -> Any:
        t = self.timer()
        out = call(*args)
        self.durations[stage] = self.durations.get(stage, 0.0) + self.timer() - t
        return out


class TimedRetarget:
    """A :class:`~emo_core.pipeline.controller.Retarget` whose calls count as the "retarget" stage."""

    def __init__(self, retarget: Retarget, clock: StageClock) -> None:
        self._retarget = retarget
        self._clock = clock

    @property
    def robot_rest(self) -> np.ndarray:
        return self._retarget.robot_rest

    def __call__(self, points: np.ndarray, rest: np.ndarray) -> np.ndarray:
        return self._clock.timed("retarget", self._retarget, points, rest)


class TimedInverse:
    """An :class:`~emo_core.pipeline.controller.InverseModel` whose calls count as the "inverse" stage."""

    def __init__(self, inverse: InverseModel, clock: StageClock) -> None:
        self._inverse = inverse
        self._clock = clock

    def predict(self, landmarks: np.ndarray) -> np.ndarray:
        return self._clock.timed("inverse", self._inverse.predict, landmarks)


class CoexpressionPipeline:
    """Frame -> FaceCommand, in one of the two modes (see ``controller``).

    ``detector`` defaults to a :class:`PeakActivationDetector` with ``detector_config``;
    ``predictor`` (only used in coexpression mode) and ``inverse`` are the models; ``extractor`` is
    only needed by :meth:`process_frame`. Models are shared freely between pipelines: they hold no
    per-stream state; the detector and the controller (per person and stream) are the pipeline's own.
    """

    def __init__(self, predictor: Predictor, inverse: InverseModel, retargeter: Retarget,
                 calm_commands: np.ndarray, *, config: PipelineConfig | None = None,
                 detector: Detector | None = None, detector_config: DetectorConfig | None = None,
                 extractor: Extractor | None = None, timer: Callable[[], float] = time.perf_counter) -> None:
        self.config = config or PipelineConfig()
        self.predictor = predictor
        self.inverse = inverse
        self.retarget = retargeter
        self.extractor = extractor
        self.detector: Detector = detector if detector is not None else PeakActivationDetector(detector_config)
        self._clock = StageClock(timer)
        self.controller = CoexpressionController(self.config, TimedRetarget(retargeter, self._clock),
                                                 TimedInverse(inverse, self._clock), calm_commands)
        self.latency = LatencyLog()
        self.events: list[PeakEvent] = []

    @property
    def mode(self) -> Mode:
        return self.config.mode

    @property
    def calm(self) -> np.ndarray:
        return self.controller.calm

    @property
    def rest(self) -> np.ndarray | None:
        """The human resting face retargeting uses (None until the detector has calibrated)."""
        return self.controller.rest

    def reset(self) -> None:
        """New person or stream: recalibrate, forget any held prediction (latencies are kept)."""
        self.detector.reset()
        self.events.clear()
        self.controller.reset()

    # ------------------------------------------------------------------------------- stepping
    def process_frame(self, rgb: np.ndarray, stamp: float, camera: str = "") -> StepResult:
        """One RGB camera frame (media time ``stamp``) -> StepResult; frame in to command out is timed."""
        if self.extractor is None:
            raise ConfigError("this pipeline has no landmark extractor (use process_face, or pass one)")
        t0 = self._clock.timer()
        face = self.extractor.process(rgb, stamp, camera)
        t1 = self._clock.timer()
        return self._step(face, float(stamp), t0, {"extract": t1 - t0})

    def process_face(self, face: Face | np.ndarray, stamp: float | None = None) -> StepResult:
        """The landmark stage onward: a Face (or (113, 2|3) metric points with ``stamp``)."""
        t0 = self._clock.timer()
        if not isinstance(face, Face):
            if stamp is None:
                raise InputError("process_face needs a stamp with raw landmarks")
            pts = np.asarray(face, np.float32)
            if pts.shape not in ((N_LANDMARKS, 2), (N_LANDMARKS, 3)):
                raise InputError(f"process_face expects (113, 2|3) landmarks, got {pts.shape}")
            metric = np.zeros((N_LANDMARKS, 3), np.float32)
            metric[:, :pts.shape[1]] = pts
            face = Face(detected=bool(np.all(np.isfinite(pts))), confidence=1.0, metric=metric,
                        stamp=float(stamp), space=Space.METRIC)
        return self._step(face, float(face.stamp if stamp is None else stamp), t0, {})

    def _step(self, face: Face, stamp: float, t0: float, durations: dict[str, float]) -> StepResult:
        clock = self._clock
        clock.durations = durations
        result = StepResult(stamp=stamp, face=face, latency_s=durations)
        event = clock.timed("detect", self.detector.update, face, stamp) if face.detected else None
        durations.setdefault("detect", 0.0)
        result.calibrated = self.detector.rest is not None
        if face.detected and np.all(np.isfinite(face.metric)):
            self.controller.observe_rest(self.detector.rest)
            if event is not None:
                self.events.append(event)
                result.event = event
                if self.config.anticipates:
                    result.time_to_apex = self.controller.predicted(self._predict(event))
            decision = self.controller.step(face.metric[:, :2], stamp, self._refresh)
            result.command, result.robot_target = decision.command, decision.robot_target
            result.predicted_target = self.controller.held_target
        durations["end_to_end"] = clock.timer() - t0
        self.latency.add(durations)
        return result

    def _predict(self, event: PeakEvent) -> Hold:
        """The predictor on a detector event, as the controller's Hold."""
        prediction = self._clock.timed("predict", self.predictor.predict_event, event)
        return Hold(target=prediction.target, time_to_apex=prediction.time_to_apex, stamp=event.stamp,
                    face=event.window[-1], confidence=float(prediction.confidence))

    def _refresh(self, stamp: float) -> Hold | None:
        """A re-prediction on the detector's newest window, while the face still moves (the
        controller asks every ``repredict_every`` held frames)."""
        if self.detector.last_motion < self.config.repredict_min_motion:
            return None
        event = self.detector.window_event(stamp)
        return None if event is None else self._predict(event)
