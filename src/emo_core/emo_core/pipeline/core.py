"""The in-process coexpression pipeline: one frame (or one face) in, one FaceCommand out.

It chains the very classes the ROS nodes wrap -- extractor -> causal peak-activation detector ->
expression predictor -> retargeting (paper eq. 1-2) -> inverse self-model -- and decides, per
frame, which face the robot should be making and *when*:

* ``mimicry`` (the paper's baseline): every frame, the live face retargeted to the robot and turned
  into commands, to be executed now;
* ``coexpression``: the same live mirroring while nothing happens, but timed with the servo lag
  model (``lead_mirroring``: every command asks the driver to arrive at its frame's stamp, so the
  driver leads the servos' lag); when the detector fires, the predictor's target face is *held*
  until its predicted apex (``stamp + time_to_apex``), re-predicted while the face still moves,
  and while it is held the robot runs ahead of the person toward it: each frame it shows the live
  face moved ``lead_fraction`` of the remaining way to the predicted face (0.5: half way), so it
  is ahead all through the rise and meets the person at the predicted face. Tied to the person's
  progress, not to the predicted apex time, which the predictor knows only roughly.
  ``lead_fraction: 0`` is the timed alternative: hold the predicted face itself with
  ``execute_at = predicted apex`` (the driver plans the motion to arrive then) and hurry there
  (``hurry_when_overtaken``: execute_at := now) if the person is ahead of that plan.
  Either way, if the live face gets past the predicted face, mirroring resumes
  (``release_when_overtaken``): an undershooting prediction must not hold the robot behind the
  person; and if a quarter second after the firing the face has hardly moved toward the
  prediction, it was a false trigger and mirroring resumes too (``abandon_after_s``), so the robot
  does not keep making a face at nobody.

A prediction with a calibrated confidence (the identity-free predictor's) is held blended toward
the face the detector fired on by that confidence (``confidence_blend``): a face unlike the
predictor's training people falls back toward mimicry. Coexpression may mirror a causal One Euro
filtered face (``smoothing``) and take its servo-lag lead from the filter's velocity instead of the
driver (``lag_lead: filter``); both are off by default (docs/realfaces.md has the trade-off).

Until the detector has calibrated the person's resting face there is nothing to mirror against,
so the pipeline commands the calm face. Mirroring and the predicted target are both retargeted
against the resting face the detector *calibrated* (``mirror_rest: calibrated``), not its rolling
neutral: the rolling neutral is there to keep the detector's thresholds honest, and on noisy
landmarks it slowly absorbs a held expression, which would make the mirrored robot face relax
while the person is still smiling. ``mirror_rest: rolling`` follows the rolling neutral instead. A frame without a face produces no command (the servo
driver keeps its target; its watchdog eases the face home if faces stay away).

No ROS and no wall clock: media time comes from the frame stamps; a ``timer`` callable (default
``time.perf_counter``) is injected only to measure how long each stage takes.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np

from ..anticipation.detector import DetectorConfig, PeakActivationDetector, PeakEvent
from ..anticipation.confidence import blend_toward
from ..anticipation.retarget import Retargeter
from ..errors import ConfigError, InputError
from ..perception.filter import LinearSlope, OneEuroConfig, OneEuroFilter
from ..schema import COMMAND_NAMES, N_COMMANDS, N_LANDMARKS, Face, Space

LOG = logging.getLogger(__name__)

#: Stages whose durations are recorded (seconds, by the injected timer).
STAGES = ("extract", "detect", "predict", "retarget", "inverse", "end_to_end")


class Mode(str, Enum):
    COEXPRESSION = "coexpression"
    MIMICRY = "mimicry"

    @classmethod
    def parse(cls, value: "str | Mode") -> "Mode":
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"unknown pipeline mode {value!r}; known: "
                              f"{', '.join(m.value for m in cls)}") from None


class Source(str, Enum):
    """FaceCommand.source, the same enum as ``msg/FaceCommand.msg``."""

    PREDICTED = "predicted"
    MIMIC = "mimic"
    BABBLE = "babble"
    MANUAL = "manual"
    GAZE = "gaze"            # eyes and neck (emo_core.gaze), never the 11 expression commands


@dataclass(frozen=True)
class FaceCommand:
    """What the pipeline sends to the servo driver (the fields of ``msg/FaceCommand.msg``).

    ``stamp`` is the stamp of the camera frame the command derives from (a held prediction keeps
    the stamp of the frame the detector fired on); ``execute_at`` is when the face should arrive
    there (the predicted apex), ``None`` for "now".
    """

    names: tuple[str, ...]
    positions: np.ndarray            # (11,) float32 in [0, 1]
    stamp: float
    execute_at: float | None
    source: Source

    def arrive_at(self) -> float | None:
        """The driver's ``arrive_at`` argument."""
        return self.execute_at


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


@dataclass(frozen=True)
class PipelineConfig:
    mode: Mode = Mode.COEXPRESSION
    #: Bounds on the predicted time to apex: a wild prediction must not park the face for seconds.
    min_time_to_apex_s: float = 0.0
    max_time_to_apex_s: float = 2.0
    #: Keep the prediction this long after ``execute_at`` before mirroring the live face again.
    release_after_s: float = 0.0
    #: The human resting face retargeting measures displacements from: "calibrated" or "rolling".
    mirror_rest: str = "calibrated"
    #: While a prediction is held, the robot runs ahead of the person: each frame it shows the live
    #: face moved this fraction of the remaining way to the predicted face (robot space), sent to
    #: arrive now (the driver's lag lead). 0: hold the predicted face itself, due at the predicted
    #: apex (execute_at), the driver planning the motion. Measured on 60 synthetic people (seed
    #: 555, not the demo's), median robot - human apex / median |.|: 0.5 -> +65 / 72 ms; 0.3 -> 68 / 73;
    #: 0.7 -> 61 / 75; the timed hold (0) -> +69 / 110 ms (its time to apex is only slightly better
    #: than a constant); no prediction at all (``anticipate: false``) -> +74 / 78 ms.
    lead_fraction: float = 0.5
    #: While a prediction is held, switch back to mirroring once the live face is further along
    #: the predicted expression than the predicted face (or, with ``lead_fraction: 0`` and no
    #: hurrying, than the robot's planned motion: constant speed from the firing to execute_at) by
    #: ``overtake_margin`` (robot-space face units along the predicted displacement) for
    #: ``overtake_frames`` frames in a row: a late or undershooting prediction must not hold the
    #: robot behind the person. Releasing at once (margin 0, two frames) measured best with lag-led
    #: mirroring to fall back on (+65 / 72 ms vs +65 / 75 with 0.05).
    release_when_overtaken: bool = True
    overtake_margin: float = 0.0
    overtake_frames: int = 2
    #: ... and once ``abandon_after_s`` have passed since the firing, switch back to mirroring when
    #: the live face has still not covered ``abandon_fraction`` of the way to the prediction (for
    #: ``overtake_frames`` frames in a row): a false trigger (a blink, a twitch at rest) must not
    #: keep the robot making a face at nobody. 0 disables it.
    abandon_after_s: float = 0.25
    abandon_fraction: float = 0.2
    #: Overtaken but not yet past the predicted face: "hurry" (execute_at := now, the driver moves
    #: at full speed with its lag lead) instead of mirroring. The person is heading where the
    #: prediction said, only sooner; mirroring would put the robot's lag back in. False: mirror.
    hurry_when_overtaken: bool = True
    #: Coexpression's commands ask the driver to arrive "at the frame's stamp", i.e. as soon as it
    #: can with its servo lag lead: the timing half of coexpression (the paper's mimicry baseline
    #: never leads). False: only timed holds (``lead_fraction: 0``) use the lag model.
    lead_mirroring: bool = True
    #: False: coexpression without the predictor (the detector still runs; nothing is held): an
    #: ablation that shows what the lag-led mirroring alone gives (``emo demo --no-anticipation``).
    anticipate: bool = True
    #: While a prediction is held and its apex is still ahead, run the predictor again on the
    #: detector's newest 4-frame window every ``repredict_every`` frames and move the held target
    #: and execute_at to the new prediction: the time to apex is weakly observable at the firing
    #: and better later in the rise (median |robot - human apex| on 40 / 60 synthetic people:
    #: 250 -> 168 ms, 282 -> 203 ms; every frame chases landmark noise: worse). 0 disables. Needs a
    #: detector with ``window_event`` (the in-process one; in the ROS graph the remote stand-in hands
    #: over the re-predictions ``peak_activation`` and ``expression_predictor`` make).
    repredict_every: int = 3
    #: ... but only while the face is still moving: the detector's lips/brows motion over the
    #: scorer's lag (``last_motion``, in units of its noise level) at least this. At the apex the
    #: re-predicted apex would keep moving ahead and hold the face after the person relaxes (the
    #: scorer's own "rising" score stays high on a held smile on real tracks, so it is no gate).
    #: Landmark noise alone reads 0.8-1.5 on a still face and 2-4 on a rising one, so 2.0: with
    #: 1.0 the predictor kept re-predicting on the plateau and pushed the held face past the apex.
    repredict_min_motion: float = 2.0
    #: Coexpression mirrors the live face through a causal One Euro filter (``perception.filter``;
    #: None: raw landmarks). Mimicry, the paper's baseline, always mirrors the raw landmarks.
    smoothing: OneEuroConfig | None = None
    #: Where the servo-lag lead of lag-led commands comes from: "driver" (every command asks to
    #: arrive at its frame's stamp; the driver leads its setpoint's velocity, which differentiates
    #: each frame's step, landmark noise included) or "filter" (the controller commands the
    #: filtered face extrapolated ``lag_lead_s`` ahead along its filtered velocity, executed now;
    #: needs ``smoothing``) or "slope" (the face itself plus ``lag_lead_s`` x its least-squares
    #: velocity over the last ``lag_lead_frames`` frames, executed now: the position is not delayed,
    #: only the velocity is averaged). ``lag_lead_s`` should be the driver's ``servo_lag_s``.
    lag_lead: str = "driver"
    lag_lead_s: float = 0.2
    lag_lead_frames: int = 8
    #: Hold ``now + confidence x (predicted - now)`` (``now``: the face the detector fired on) instead
    #: of the predicted face itself: as the predictor's calibrated confidence falls (a face unlike
    #: its training people), the held face falls back to mimicry. Models without a confidence give 1.
    confidence_blend: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode.parse(self.mode))
        if isinstance(self.smoothing, dict):
            object.__setattr__(self, "smoothing", OneEuroConfig.from_dict(self.smoothing))
        if self.lag_lead not in ("driver", "filter", "slope"):
            raise ConfigError(f"pipeline: lag_lead must be 'driver', 'filter' or 'slope', got {self.lag_lead!r}")
        if not 2 <= self.lag_lead_frames <= 60:
            raise ConfigError(f"pipeline: lag_lead_frames must be in [2, 60], got {self.lag_lead_frames}")
        if self.lag_lead == "filter" and self.smoothing is None:
            raise ConfigError("pipeline: lag_lead 'filter' needs smoothing (a One Euro filter config)")
        if not 0.0 <= self.lag_lead_s <= 2.0:
            raise ConfigError(f"pipeline: lag_lead_s must be in [0, 2] s, got {self.lag_lead_s}")
        if self.mirror_rest not in ("calibrated", "rolling"):
            raise ConfigError(f"pipeline: mirror_rest must be 'calibrated' or 'rolling', got {self.mirror_rest!r}")
        if not 0.0 <= self.min_time_to_apex_s <= self.max_time_to_apex_s:
            raise ConfigError("pipeline: need 0 <= min_time_to_apex_s <= max_time_to_apex_s")
        if not 0.0 <= self.lead_fraction <= 1.0:
            raise ConfigError(f"pipeline: lead_fraction must be in [0, 1], got {self.lead_fraction}")
        if min(self.release_after_s, self.overtake_margin, self.abandon_after_s, self.abandon_fraction,
               self.repredict_every) < 0 or self.overtake_frames < 1:
            raise ConfigError("pipeline: release_after_s, overtake_margin, repredict_every and the abandon "
                              "settings must be >= 0, overtake_frames >= 1")


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


class CoexpressionPipeline:
    """Frame -> FaceCommand, in one of the two modes (see the module docstring).

    ``detector`` defaults to a :class:`PeakActivationDetector` with ``detector_config``; ``predictor`` needs ``predict_event(event) -> Prediction`` (only used in coexpression mode),
    ``inverse`` ``predict((113, 2)) -> (11,)``; ``extractor`` (``process(rgb, stamp) -> Face``) is
    only needed by :meth:`process_frame`. Models are shared freely between pipelines: they hold no
    per-stream state; the detector (per person and stream) is the pipeline's own.
    """

    def __init__(self, predictor: Any, inverse: Any, retargeter: Retargeter, calm_commands: np.ndarray,
                 *, config: PipelineConfig | None = None, detector: Any = None,
                 detector_config: DetectorConfig | None = None, extractor: Any = None,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.config = config or PipelineConfig()
        self.predictor = predictor
        self.inverse = inverse
        self.retarget = retargeter
        self.extractor = extractor
        # One detector per stream (it calibrates on this person); anything with update(face, stamp)
        # -> PeakEvent | None, reset() and rest will do (tests script one).
        self.detector = detector if detector is not None else PeakActivationDetector(detector_config)
        self.calm = np.asarray(calm_commands, np.float32).reshape(-1)
        if self.calm.shape != (N_COMMANDS,) or not np.all(np.isfinite(self.calm)):
            raise InputError(f"calm commands must be {N_COMMANDS} finite values")
        self._timer = timer
        self.latency = LatencyLog()
        self.events: list[PeakEvent] = []
        # A held prediction: its robot-space target (None: nothing held), the firing stamp, the
        # predicted apex; with lead_fraction 0 also the timed command (the predicted face itself).
        self._held_target: np.ndarray | None = None
        self._fired_at = self._release_at = 0.0
        self._timed: FaceCommand | None = None
        self._start_along = self._target_along = 0.0
        self._ahead = self._still = self._past = 0
        self._held_frames = 0
        self._rest: np.ndarray | None = None
        smoothing = self.config.smoothing if self.config.mode is Mode.COEXPRESSION else None
        self._filter = OneEuroFilter(smoothing) if smoothing is not None else None
        self._slope = LinearSlope(self.config.lag_lead_frames) if self.config.lag_lead == "slope" else None

    @property
    def mode(self) -> Mode:
        return self.config.mode

    def reset(self) -> None:
        """New person or stream: recalibrate, forget any held prediction (latencies are kept)."""
        self.detector.reset()
        self.events.clear()
        self._release()
        self._rest = None
        if self._filter is not None:
            self._filter.reset()
        if self._slope is not None:
            self._slope.reset()

    @property
    def rest(self) -> np.ndarray | None:
        """The human resting face retargeting uses (None until the detector has calibrated)."""
        if self.config.mirror_rest == "rolling" or self._rest is None:
            self._rest = None if self.detector.rest is None else self.detector.rest.copy()
        return self._rest

    # ------------------------------------------------------------------------------- stepping
    def process_frame(self, rgb: np.ndarray, stamp: float, camera: str = "") -> StepResult:
        """One RGB camera frame (media time ``stamp``) -> StepResult; frame in to command out is timed."""
        if self.extractor is None:
            raise ConfigError("this pipeline has no landmark extractor (use process_face, or pass one)")
        t0 = self._timer()
        face = self.extractor.process(rgb, stamp, camera)
        t1 = self._timer()
        return self._step(face, float(stamp), t0, {"extract": t1 - t0})

    def process_face(self, face: Face | np.ndarray, stamp: float | None = None) -> StepResult:
        """The landmark stage onward: a Face (or (113, 2|3) metric points with ``stamp``)."""
        t0 = self._timer()
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
        timer = self._timer
        result = StepResult(stamp=stamp, face=face, latency_s=durations)
        t = timer()
        event = self.detector.update(face, stamp) if face.detected else None
        durations["detect"] = timer() - t
        result.calibrated = self.detector.rest is not None
        if face.detected and np.all(np.isfinite(face.metric)):
            if event is not None:
                self.events.append(event)
                result.event = event
                if self.mode is Mode.COEXPRESSION and self.config.anticipate:
                    self._predict(event, result, durations)
            result.command, result.robot_target = self._decide(face, stamp, durations)
            result.predicted_target = self._held_target
        durations["end_to_end"] = timer() - t0
        self.latency.add(durations)
        return result

    def _predict(self, event: PeakEvent, result: StepResult, durations: dict[str, float]) -> None:
        tta = self._hold(event, event.stamp, durations)
        # Where the robot starts from: it was mirroring, so about where the live face is now.
        start = self._along(self.retarget(event.window[-1], self.rest if self.rest is not None else event.rest))
        self._start_along = min(start, self._target_along)
        self._ahead = self._still = self._past = 0
        self._held_frames = 0
        result.time_to_apex = tta
        LOG.debug("peak activation at %.3f s: predicted apex in %.3f s", event.stamp, tta)

    def _hold(self, event: PeakEvent, fired_at: float, durations: dict[str, float]) -> float:
        """Predict from ``event``'s window and hold that target face, due ``event.stamp + time to
        apex`` (the firing stamp ``fired_at`` stays the hold's). Only a timed hold turns it into
        commands here; leading by progress does so per frame. Returns the time to apex."""
        timer = self._timer
        t = timer()
        prediction = self.predictor.predict_event(event)
        durations["predict"] = durations.get("predict", 0.0) + timer() - t
        tta = float(np.clip(prediction.time_to_apex, self.config.min_time_to_apex_s, self.config.max_time_to_apex_s))
        target = prediction.target
        confidence = getattr(prediction, "confidence", 1.0)     # the ROS stand-in's fields carry it too
        if self.config.confidence_blend and confidence < 1.0:
            target = blend_toward(event.window[-1], target, confidence)
        t = timer()
        robot = self.retarget(target, self.rest if self.rest is not None else event.rest)
        durations["retarget"] = durations.get("retarget", 0.0) + timer() - t
        self._held_target = robot
        self._fired_at = fired_at
        self._release_at = event.stamp + tta     # the predicted apex; hurrying does not move it
        self._target_along = self._along(robot)
        if self.config.lead_fraction <= 0:
            t = timer()
            positions = self._inverse(robot)
            durations["inverse"] = durations.get("inverse", 0.0) + timer() - t
            self._timed = FaceCommand(COMMAND_NAMES, positions, fired_at, self._release_at, Source.PREDICTED)
        return tta

    def _decide(self, face: Face, stamp: float, durations: dict[str, float]) -> tuple[FaceCommand, np.ndarray | None]:
        """The command for this frame: a held prediction, the live face, or the calm face."""
        if self._held_target is not None and stamp > self._release_at + self.config.release_after_s:
            self._release()
        live = face.metric[:, :2]
        if self._filter is not None:
            live = self._filter(live, stamp).astype(np.float32)
        rest = self.rest
        if rest is None:
            # Not calibrated yet: nothing to mirror against; a face at rest maps to the calm face.
            return FaceCommand(COMMAND_NAMES, self.calm.copy(), stamp, None, Source.MIMIC), None
        cfg = self.config
        if self._timed is not None and not cfg.release_when_overtaken:
            return self._timed, self._held_target
        timer = self._timer
        coex_lead = self.mode is Mode.COEXPRESSION and cfg.lead_mirroring
        t = timer()
        robot = self.retarget(live, rest)
        # The face to command: with the filter's lead, where the filtered face will be one servo lag
        # from now at its filtered velocity (the servos' lag is paid back without the driver
        # differentiating landmark noise); the person's progress is judged on the face itself.
        shown = robot
        if coex_lead and cfg.lag_lead == "filter" and self._filter is not None:
            shown = self.retarget(live + cfg.lag_lead_s * self._filter.velocity.astype(np.float32), rest)
        elif coex_lead and self._slope is not None:
            velocity = self._slope(live, stamp).astype(np.float32)
            shown = self.retarget(live + cfg.lag_lead_s * velocity, rest)
        durations["retarget"] = durations.get("retarget", 0.0) + timer() - t
        source = Source.MIMIC
        if self._held_target is not None and (not cfg.release_when_overtaken
                                              or self._keep_holding(robot, stamp, durations)):
            if self._timed is not None:
                return self._timed, self._held_target
            # Ahead of the person by a fixed share of what is left to the predicted face.
            shown = shown + cfg.lead_fraction * (self._held_target - shown)
            source = Source.PREDICTED
        t = timer()
        positions = self._inverse(shown)
        durations["inverse"] = durations.get("inverse", 0.0) + timer() - t
        arrive = stamp if (coex_lead and cfg.lag_lead == "driver") else None
        return FaceCommand(COMMAND_NAMES, positions, stamp, arrive, source), shown

    def _keep_holding(self, robot: np.ndarray, stamp: float, durations: dict[str, float]) -> bool:
        """False (and the prediction released) when the person is past the predicted face or, some
        time after the firing, has hardly moved toward it at all. In a timed hold, a person merely
        ahead of the planned motion makes the robot hurry (``hurry_when_overtaken``). (Past the predicted apex,
        :meth:`_decide` has released it already.)"""
        cfg = self.config
        timed = self._timed
        along = self._along(robot)
        # The planned motion only exists for a timed hold; leading by progress has no plan to be behind.
        ahead = timed is not None and along > self._planned(stamp) + cfg.overtake_margin
        self._ahead = self._ahead + 1 if ahead else 0
        past = along > self._target_along + cfg.overtake_margin
        self._past = self._past + 1 if past else 0
        still = (cfg.abandon_after_s > 0 and stamp - self._fired_at >= cfg.abandon_after_s
                 and along - self._start_along < cfg.abandon_fraction * (self._target_along - self._start_along))
        self._still = self._still + 1 if still else 0
        n = cfg.overtake_frames
        if self._still >= n:
            LOG.debug("no expression followed the peak activation of %.3f s: mirroring", self._fired_at)
        elif self._past >= n or (self._ahead >= n and not cfg.hurry_when_overtaken):
            # The person is further along than the robot will be: follow them, never lag behind.
            LOG.debug("live face overtook the prediction at %.3f s: mirroring", stamp)
        else:
            if self._ahead >= n and timed.execute_at > stamp:
                # Sooner than predicted: get there now (the driver's fastest, lag-led approach).
                LOG.debug("live face ahead of the planned motion at %.3f s: hurrying", stamp)
                self._timed = replace(timed, execute_at=stamp)
            self._held_frames += 1
            if cfg.repredict_every and self._held_frames % cfg.repredict_every == 0 and stamp < self._release_at:
                self._repredict(stamp, durations)
            return True
        self._release()
        return False

    def _repredict(self, stamp: float, durations: dict[str, float]) -> None:
        """The predictor on the detector's newest window, while the face still moves: a fresh target
        face and time to apex for the held prediction (its firing stamp and start stay)."""
        if getattr(self.detector, "last_motion", np.inf) < self.config.repredict_min_motion:
            return
        window = getattr(self.detector, "window_event", None)
        event = window(stamp) if window is not None else None
        if event is None:
            return
        tta = self._hold(event, self._fired_at, durations)
        LOG.debug("re-predicted at %.3f s: apex in %.3f s", stamp, tta)

    def _along(self, robot: np.ndarray) -> float:
        """Displacement of a robot-space face from the robot's rest along the held prediction's
        displacement (face units)."""
        base = self.retarget.robot_rest
        direction = (self._held_target - base).reshape(-1)
        norm = float(np.linalg.norm(direction))
        return float((robot - base).reshape(-1) @ direction) / norm if norm > 0 else np.inf

    def _planned(self, stamp: float) -> float:
        """Where the robot's planned motion is along the prediction (constant speed from the firing
        to execute_at), in the same units as :meth:`_along`."""
        timed = self._timed
        span = timed.execute_at - timed.stamp
        frac = 1.0 if span <= 0 else float(np.clip((stamp - timed.stamp) / span, 0.0, 1.0))
        return self._start_along + (self._target_along - self._start_along) * frac

    def _release(self) -> None:
        self._held_target = None
        self._timed = None

    def _inverse(self, robot: np.ndarray) -> np.ndarray:
        # The inverse model ends in a sigmoid; the clip only guards against a model that does not.
        out = np.asarray(self.inverse.predict(robot), np.float32).reshape(-1)
        if out.shape != (N_COMMANDS,):
            raise InputError(f"inverse model returned {out.shape}, expected ({N_COMMANDS},)")
        return np.clip(out, 0.0, 1.0)
