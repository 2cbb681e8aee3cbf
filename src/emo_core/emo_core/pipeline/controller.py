"""The coexpression controller: which face the robot should be making, and *when*, frame by frame.

A pure class: no detector, no predictor, no clock. It is given the live face of each frame
(:meth:`CoexpressionController.step`), the resting face to mirror against (:meth:`observe_rest`) and
the predictions others made (:meth:`predicted`; re-predictions through the ``refresh`` callback of
``step``). The in-process :class:`~emo_core.pipeline.core.CoexpressionPipeline` feeds it from its own
detector and predictor; the ROS ``inverse_model`` node from the ``face/rest``, ``face/prediction``
and ``face/prediction_refresh`` messages of the ``peak_activation`` and ``expression_predictor``
nodes. The same logic decides in both.

* ``mimicry`` (the paper's baseline): every frame, the live face retargeted to the robot and turned
  into commands, to be executed now;
* ``coexpression``: the same live mirroring while nothing happens, but timed with the servo lag
  model (``lead_mirroring``: every command asks the driver to arrive at its frame's stamp, so the
  driver leads the servos' lag); when a prediction comes (the detector fired), the predicted face
  is *held* until its predicted apex (``stamp + time_to_apex``), re-predicted while the face still
  moves, and while it is held the robot runs ahead of the person toward it: each frame it shows the
  live face moved ``lead_fraction`` of the remaining way to the predicted face (state ``LEAD``).
  ``lead_fraction: 0`` is the timed alternative (state ``TIMED``): hold the predicted face itself
  with ``execute_at = predicted apex`` and hurry there (state ``HURRY``: execute_at := now) if the
  person is ahead of that plan. Either way, a person past the predicted face releases the hold
  (``release_when_overtaken``), and so does a face that has hardly moved toward the prediction a
  quarter second after the firing (``abandon_after_s``: a false trigger).

A prediction with a calibrated confidence is held blended toward the face it was made on by that
confidence (``confidence_blend``). Coexpression may mirror a causal One Euro filtered face
(``smoothing``) and take its servo-lag lead from the filter's or a least-squares velocity
(``lag_lead``). Until there is a resting face the controller commands the calm face; a frame
without a face is not given to it (no command: the driver's watchdog eases the face home).

Why each default is what it is (the measurements behind them) is in docs/architecture.md
("The coexpression controller").
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

import numpy as np

from ..anticipation.confidence import blend_toward
from ..commands import FaceCommand, Source
from ..errors import ConfigError, InputError
from ..perception.filter import LinearSlope, OneEuroConfig, OneEuroFilter
from ..schema import COMMAND_NAMES, N_COMMANDS

LOG = logging.getLogger(__name__)


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


class State(str, Enum):
    """What the controller is doing (its :attr:`CoexpressionController.state` after each call)."""

    CALM = "calm"        # no resting face yet: the calm face
    MIRROR = "mirror"    # the live face (lag-led in coexpression)
    LEAD = "lead"        # a prediction held: the live face moved lead_fraction of the way to it
    TIMED = "timed"      # a prediction held as one command due at the predicted apex (lead_fraction 0)
    HURRY = "hurry"      # ... the person ahead of that plan: the same command, due now


class Retarget(Protocol):
    """Human face -> robot face (``anticipation.retarget.Retargeter``, paper eq. 1-2)."""

    @property
    def robot_rest(self) -> np.ndarray: ...

    # Positional-only: implementations name the two arrays as they like (Retargeter: human, human_rest).
    def __call__(self, points: np.ndarray, rest: np.ndarray, /) -> np.ndarray: ...


class InverseModel(Protocol):
    """Robot-space face (113, 2) -> the 11 motor commands (``selfmodel.inverse.InverseModel``)."""

    def predict(self, landmarks: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Hold:
    """A prediction to hold: made on the face ``face`` (113, 2) of ``stamp`` (the firing frame, or
    the newest frame of a re-prediction's window); the predicted ``target`` (113, 2) is due
    ``time_to_apex`` after ``stamp``. ``confidence`` in [0, 1] (1: models without one)."""

    target: np.ndarray
    time_to_apex: float
    stamp: float
    face: np.ndarray
    confidence: float = 1.0


#: ``step``'s source of re-predictions: given the frame's stamp, a fresh Hold, or None (none now).
Refresh = Callable[[float], "Hold | None"]


@dataclass(frozen=True)
class PipelineConfig:
    """The controller's settings (``config/pipeline.yaml``'s ``pipeline`` section; the measurements
    behind the defaults: docs/architecture.md, "The coexpression controller")."""

    mode: Mode = Mode.COEXPRESSION
    #: Bounds on the predicted time to apex: a wild prediction must not park the face for seconds.
    min_time_to_apex_s: float = 0.0
    max_time_to_apex_s: float = 2.0
    #: Keep the prediction this long after ``execute_at`` before mirroring the live face again.
    release_after_s: float = 0.0
    #: The human resting face retargeting measures displacements from: "calibrated" (the first one
    #: the detector calibrated) or "rolling" (its rolling neutral, which on noisy landmarks slowly
    #: absorbs a held expression: the mirrored face would relax while the person still smiles).
    mirror_rest: str = "calibrated"
    #: While a prediction is held, the robot runs ahead of the person: each frame it shows the live
    #: face moved this fraction of the remaining way to the predicted face (robot space), sent to
    #: arrive now (the driver's lag lead). 0: hold the predicted face itself, due at the predicted
    #: apex (execute_at), the driver planning the motion.
    lead_fraction: float = 0.5
    #: While a prediction is held, switch back to mirroring once the live face is further along
    #: the predicted expression than the predicted face (or, with ``lead_fraction: 0`` and no
    #: hurrying, than the robot's planned motion: constant speed from the firing to execute_at) by
    #: ``overtake_margin`` (robot-space face units along the predicted displacement) for
    #: ``overtake_frames`` frames in a row: a late or undershooting prediction must not hold the
    #: robot behind the person.
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
    #: While a prediction is held and its apex is still ahead, ask for a re-prediction (``step``'s
    #: ``refresh``) every ``repredict_every`` held frames and move the held target and execute_at to
    #: it: the time to apex is weakly observable at the firing and better later in the rise; every
    #: frame chases landmark noise. 0 disables. In the ROS graph ``peak_activation`` paces the
    #: re-predictions itself, so ``inverse_model`` takes each on the next held frame (1).
    repredict_every: int = 3
    #: ... and only while the face still moves: the detector's lips/brows motion over the scorer's
    #: lag (``last_motion``, in units of its noise level) at least this (the pipeline's gate; in the
    #: graph ``peak_activation``'s ``refresh_min_motion``). At the apex the re-predicted apex would
    #: keep moving ahead and hold the face after the person relaxes.
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
    #: Hold ``now + confidence x (predicted - now)`` (``now``: the face the prediction was made on)
    #: instead of the predicted face itself: as the predictor's calibrated confidence falls (a face
    #: unlike its training people), the held face falls back to mimicry.
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

    @property
    def anticipates(self) -> bool:
        """Whether predictions are used at all (coexpression with ``anticipate``)."""
        return self.mode is Mode.COEXPRESSION and self.anticipate


@dataclass
class _Held:
    """A held prediction: its robot-space target, the firing stamp, the predicted apex, where the
    robot started from and the target lie along the predicted displacement, the timed command
    (lead_fraction 0 only) and the frame counters of the release rules."""

    target: np.ndarray
    fired_at: float
    release_at: float
    target_along: float
    timed: FaceCommand | None
    start_along: float = 0.0
    ahead: int = 0
    still: int = 0
    past: int = 0
    frames: int = 0


@dataclass(frozen=True)
class Decision:
    """One frame's outcome: the command and the robot-space face it was made from (None: the calm
    face, before there is a resting face)."""

    command: FaceCommand
    robot_target: np.ndarray | None


class CoexpressionController:
    """Live face (+ predictions) -> FaceCommand, in one of the two modes (see the module docstring).

    ``retarget`` and ``inverse`` are stateless models (shared freely); the controller's own state is
    one person's stream: the resting face, the filter, the held prediction. Wrap the models to time
    them (``core.TimedRetarget``); the controller does not look at a clock.
    """

    def __init__(self, config: PipelineConfig, retarget: Retarget, inverse: InverseModel,
                 calm_commands: np.ndarray) -> None:
        self.config = config
        self.retarget = retarget
        self.inverse = inverse
        self.calm = np.asarray(calm_commands, np.float32).reshape(-1)
        if self.calm.shape != (N_COMMANDS,) or not np.all(np.isfinite(self.calm)):
            raise InputError(f"calm commands must be {N_COMMANDS} finite values")
        self._held: _Held | None = None
        self._rest: np.ndarray | None = None
        self.state = State.CALM
        self._filter, self._slope = self._smoothers(config)

    @property
    def mode(self) -> Mode:
        return self.config.mode

    @property
    def rest(self) -> np.ndarray | None:
        """The human resting face the controller mirrors against (None: none observed yet)."""
        return self._rest

    @property
    def held_target(self) -> np.ndarray | None:
        """The robot-space face of the held prediction (None: nothing held)."""
        return None if self._held is None else self._held.target

    @property
    def release_at(self) -> float | None:
        """The held prediction's predicted apex (None: nothing held)."""
        return None if self._held is None else self._held.release_at

    def reset(self) -> None:
        """New person or stream: forget the resting face, the filter and any held prediction."""
        self._release()
        self._rest = None
        self.state = State.CALM
        if self._filter is not None:
            self._filter.reset()
        if self._slope is not None:
            self._slope.reset()

    def reconfigure(self, config: PipelineConfig) -> None:
        """New settings for the running stream (the ROS node's ``ros2 param set``): the resting face
        and a held prediction are kept (released when predictions are no longer used); the filter
        and the slope restart only when their own settings change."""
        old, self.config = self.config, config
        if not config.anticipates and self._held is not None:
            self._release()
        filtering = ("mode", "smoothing", "lag_lead", "lag_lead_frames")
        if any(getattr(old, k) != getattr(config, k) for k in filtering):
            self._filter, self._slope = self._smoothers(config)

    @staticmethod
    def _smoothers(config: PipelineConfig) -> tuple[OneEuroFilter | None, LinearSlope | None]:
        """The One Euro filter (coexpression with ``smoothing``) and the slope (``lag_lead: slope``)."""
        smoothing = config.smoothing if config.mode is Mode.COEXPRESSION else None
        return (OneEuroFilter(smoothing) if smoothing is not None else None,
                LinearSlope(config.lag_lead_frames) if config.lag_lead == "slope" else None)

    def observe_rest(self, rest: np.ndarray | None) -> None:
        """The detector's current resting face: kept as the first one (``mirror_rest: calibrated``)
        or followed (``rolling``)."""
        if rest is not None and (self.config.mirror_rest == "rolling" or self._rest is None):
            self._rest = np.asarray(rest)[:, :2].copy()     # its own dtype: the retargeting sees the same numbers

    # -------------------------------------------------------------------------------- predictions
    def predicted(self, hold: Hold) -> float | None:
        """A new prediction (the detector fired): hold it. Returns the time to apex used (bounded),
        None when predictions are not used (mimicry, ``anticipate: false``) or there is no resting
        face to retarget against yet."""
        if not self.config.anticipates:
            return None
        rest = self._rest
        if rest is None:
            LOG.warning("prediction for %.3f s dropped: no resting face yet", hold.stamp)
            return None
        held, tta = self._take(hold, hold.stamp, rest, None)
        # Where the robot starts from: it was mirroring, so about where the face the prediction was
        # made on is.
        held.start_along = min(_along(self.retarget(hold.face, rest), held.target, self.retarget.robot_rest),
                               held.target_along)
        LOG.debug("peak activation at %.3f s: predicted apex in %.3f s", hold.stamp, tta)
        return tta

    def _take(self, hold: Hold, fired_at: float, rest: np.ndarray, previous: _Held | None) -> tuple[_Held, float]:
        """Hold ``hold``'s target (blended by confidence, retargeted), due ``hold.stamp + time to
        apex``; a re-prediction keeps the firing stamp ``fired_at`` and ``previous``'s counters and
        start. Only a timed hold turns it into a command here; leading by progress does so per frame.
        Returns the hold and the (bounded) time to apex."""
        cfg = self.config
        tta = float(np.clip(hold.time_to_apex, cfg.min_time_to_apex_s, cfg.max_time_to_apex_s))
        target = hold.target
        if cfg.confidence_blend and hold.confidence < 1.0:
            target = blend_toward(hold.face, target, hold.confidence)
        robot = self.retarget(target, rest)
        release_at = hold.stamp + tta    # the predicted apex; hurrying does not move it
        timed = None
        if cfg.lead_fraction <= 0:
            timed = FaceCommand(COMMAND_NAMES, self._inverse(robot), fired_at, release_at, Source.PREDICTED)
        held = previous if previous is not None else _Held(robot, fired_at, release_at, 0.0, timed)
        held.target, held.release_at, held.timed = robot, release_at, timed
        held.target_along = _along(robot, robot, self.retarget.robot_rest)
        self._held = held
        self.state = State.TIMED if timed is not None else State.LEAD
        return held, tta

    # ---------------------------------------------------------------------------------- stepping
    def step(self, live: np.ndarray, stamp: float, refresh: Refresh | None = None) -> Decision:
        """The command for one frame with a face (``live``: its (113, 2) metric points):
        a held prediction, the live face, or the calm face. ``refresh`` is asked for a re-prediction
        when one is due (``repredict_every``)."""
        cfg = self.config
        if self._held is not None and stamp > self._held.release_at + cfg.release_after_s:
            self._release()
        smoother = self._filter
        if smoother is not None:
            live = smoother(live, stamp).astype(np.float32)
        rest = self._rest
        if rest is None:
            # Nothing to mirror against yet; a face at rest maps to the calm face.
            self.state = State.CALM
            return Decision(FaceCommand(COMMAND_NAMES, self.calm.copy(), stamp, None, Source.MIMIC), None)
        if self._held is None:
            self.state = State.MIRROR
        if self._held is not None and self._held.timed is not None and not cfg.release_when_overtaken:
            return Decision(self._held.timed, self._held.target)
        coex_lead = self.mode is Mode.COEXPRESSION and cfg.lead_mirroring
        robot = self.retarget(live, rest)
        # The face to command: with the filter's lead, where the filtered face will be one servo lag
        # from now at its filtered velocity (the servos' lag is paid back without the driver
        # differentiating landmark noise); the person's progress is judged on the face itself.
        shown = robot
        if coex_lead and cfg.lag_lead == "filter" and smoother is not None and smoother.velocity is not None:
            shown = self.retarget(live + cfg.lag_lead_s * smoother.velocity.astype(np.float32), rest)
        elif coex_lead and self._slope is not None:
            velocity = self._slope(live, stamp).astype(np.float32)
            shown = self.retarget(live + cfg.lag_lead_s * velocity, rest)
        source = Source.MIMIC
        held = self._held
        if held is not None and (not cfg.release_when_overtaken
                                 or self._keep_holding(held, robot, stamp, rest, refresh)):
            if held.timed is not None:
                return Decision(held.timed, held.target)
            # Ahead of the person by a fixed share of what is left to the predicted face.
            shown = shown + cfg.lead_fraction * (held.target - shown)
            source = Source.PREDICTED
        arrive = stamp if (coex_lead and cfg.lag_lead == "driver") else None
        return Decision(FaceCommand(COMMAND_NAMES, self._inverse(shown), stamp, arrive, source), shown)

    def _keep_holding(self, held: _Held, robot: np.ndarray, stamp: float, rest: np.ndarray,
                      refresh: Refresh | None) -> bool:
        """False (and the prediction released) when the person is past the predicted face or, some
        time after the firing, has hardly moved toward it at all. In a timed hold, a person merely
        ahead of the planned motion makes the robot hurry (``hurry_when_overtaken``). (Past the
        predicted apex, :meth:`step` has released it already.)"""
        cfg = self.config
        along = _along(robot, held.target, self.retarget.robot_rest)
        timed = held.timed
        # The planned motion only exists for a timed hold; leading by progress has no plan to be behind.
        ahead = timed is not None and along > _planned(held, timed, stamp) + cfg.overtake_margin
        held.ahead = held.ahead + 1 if ahead else 0
        past = along > held.target_along + cfg.overtake_margin
        held.past = held.past + 1 if past else 0
        still = (cfg.abandon_after_s > 0 and stamp - held.fired_at >= cfg.abandon_after_s
                 and along - held.start_along < cfg.abandon_fraction * (held.target_along - held.start_along))
        held.still = held.still + 1 if still else 0
        n = cfg.overtake_frames
        if held.still >= n:
            LOG.debug("no expression followed the peak activation of %.3f s: mirroring", held.fired_at)
        elif held.past >= n or (held.ahead >= n and not cfg.hurry_when_overtaken):
            # The person is further along than the robot will be: follow them, never lag behind.
            LOG.debug("live face overtook the prediction at %.3f s: mirroring", stamp)
        else:
            if held.ahead >= n and timed is not None and timed.execute_at is not None and timed.execute_at > stamp:
                # Sooner than predicted: get there now (the driver's fastest, lag-led approach).
                LOG.debug("live face ahead of the planned motion at %.3f s: hurrying", stamp)
                held.timed = replace(timed, execute_at=stamp)
                self.state = State.HURRY
            held.frames += 1
            if (refresh is not None and cfg.repredict_every and held.frames % cfg.repredict_every == 0
                    and stamp < held.release_at):
                fresh = refresh(stamp)
                if fresh is not None:
                    _, tta = self._take(fresh, held.fired_at, rest, held)
                    LOG.debug("re-predicted at %.3f s: apex in %.3f s", stamp, tta)
            return True
        self._release()
        return False

    def _release(self) -> None:
        self._held = None
        self.state = State.CALM if self._rest is None else State.MIRROR

    def _inverse(self, robot: np.ndarray) -> np.ndarray:
        # The inverse model ends in a sigmoid; the clip only guards against a model that does not.
        out = np.asarray(self.inverse.predict(robot), np.float32).reshape(-1)
        if out.shape != (N_COMMANDS,):
            raise InputError(f"inverse model returned {out.shape}, expected ({N_COMMANDS},)")
        return np.clip(out, 0.0, 1.0)


def _along(robot: np.ndarray, target: np.ndarray, base: np.ndarray) -> float:
    """Displacement of a robot-space face from the robot's rest ``base`` along the held prediction's
    displacement ``target - base`` (face units)."""
    direction = (target - base).reshape(-1)
    norm = float(np.linalg.norm(direction))
    return float((robot - base).reshape(-1) @ direction) / norm if norm > 0 else np.inf


def _planned(held: _Held, timed: FaceCommand, stamp: float) -> float:
    """Where the robot's planned motion is along the prediction (constant speed from the firing to
    execute_at), in the same units as :func:`_along`."""
    span = (timed.execute_at if timed.execute_at is not None else timed.stamp) - timed.stamp
    frac = 1.0 if span <= 0 else float(np.clip((stamp - timed.stamp) / span, 0.0, 1.0))
    return held.start_along + (held.target_along - held.start_along) * frac
