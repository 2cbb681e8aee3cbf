"""The driver's trajectory planner: targets in, one goal per servo per control cycle out.

Pure arithmetic on tick arrays -- no bus, no clock of its own (every call gets ``now``), no
logging of bus state -- so it is tested on its own (tests/test_servo_planner.py) and the
:class:`~emo_core.servo.driver.ServoDriver` only feeds it present positions and writes what it plans.

Each cycle (:meth:`TrajectoryPlanner.plan`) every servo's *setpoint* moves toward its target no
faster than its ``max_velocity`` -- and, when the command carried ``arrive_at``, at the speed that
lands it then, with goals leading the setpoint by ``servo_lag_s`` x its velocity (the servo lag
model: present follows goal as a first-order lag), so the *face* arrives at the apex, not just the
goal. Commands due now are led by feedback on the present position instead when
``now_lead_gain`` > 0. Whatever the lead asks, a goal moves at most ``lead_step_factor`` x
``max_velocity`` x dt per cycle, and goals and setpoints never leave the servo limits.

When commands stop for ``watchdog_timeout_s`` (counted from the later of the command and its
``arrive_at``) the planner eases the face home: :attr:`Motion.WATCHDOG`.
"""
from __future__ import annotations

import enum
import logging
import math
from typing import Protocol

import numpy as np

LOG = logging.getLogger(__name__)


class PlanSettings(Protocol):
    """The planner's part of the driver settings (:class:`~emo_core.servo.driver.DriverConfig`
    has them all; it is read on every call, so a setting changed at run time applies at once)."""

    servo_lag_s: float
    now_lead_gain: float
    max_dt_s: float
    lead_step_factor: float
    home_speed_scale: float
    watchdog_timeout_s: float


class Motion(enum.Enum):
    """What the targets are: the commanded pose, home on request, or home because commands stopped."""

    TRACKING = "tracking"
    HOMING = "homing"          # home() asked: at its speed scale, the watchdog off
    WATCHDOG = "watchdog"      # no command within watchdog_timeout_s: home at home_speed_scale


class TrajectoryPlanner:
    """Setpoints, servo-lag lead and goals of one bus (arrays in servo-table order, in ticks)."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, home: np.ndarray, max_velocity: np.ndarray,
                 settings: PlanSettings) -> None:
        self.lo = np.asarray(lo, np.float64)
        self.hi = np.asarray(hi, np.float64)
        self.home_ticks = np.asarray(home, np.float64)
        self.vmax = np.asarray(max_velocity, np.float64)
        self.settings = settings
        n = len(self.lo)
        self.setpoint = self.home_ticks.copy()
        self.lead = np.zeros(n)                   # goal - setpoint on timed moves (servo lag model)
        self.target = self.home_ticks.copy()
        self.arrive_at = np.full(n, np.nan)
        self.goal = np.rint(self.home_ticks).astype(np.int64)    # the last goal written
        self.motion = Motion.TRACKING
        self.home_speed_scale = settings.home_speed_scale
        self.watchdog_deadline = math.inf
        self.last_step_t: float | None = None

    # -- what the caller asks -----------------------------------------------------------------
    @property
    def watchdog(self) -> bool:
        return self.motion is Motion.WATCHDOG

    @property
    def watchdog_timeout(self) -> float:
        timeout = self.settings.watchdog_timeout_s
        return timeout if timeout > 0 else math.inf

    @property
    def current_target(self) -> np.ndarray:
        """Where the setpoints are heading now (home while the watchdog runs)."""
        return self.home_ticks if self.watchdog else self.target

    def set_targets(self, mask: np.ndarray, ticks: np.ndarray, arrive: float | None, now: float) -> None:
        """New targets for the servos in ``mask`` (clamped to the limits), due at ``arrive`` (clock
        seconds; None: at max velocity). Releases the watchdog and any homing."""
        self.target[mask] = np.clip(ticks[mask], self.lo[mask], self.hi[mask])
        self.arrive_at[mask] = np.nan if arrive is None else arrive
        # "Commands stopped" counts from the later of now and the planned arrival.
        self.watchdog_deadline = max(now, arrive if arrive is not None else now) + self.watchdog_timeout
        if self.watchdog:
            LOG.info("commands resumed: watchdog released")
        self.motion = Motion.TRACKING

    def go_home(self, arrive: float | None, scale: float) -> None:
        """Target the home pose at ``scale`` x max_velocity (or by ``arrive``); the watchdog is
        off meanwhile (it would send the face where it is already going). A running watchdog
        stays in charge (its own speed) until the next command."""
        self.home_speed_scale = scale
        self.target = self.home_ticks.copy()
        self.arrive_at[:] = np.nan if arrive is None else arrive
        if not self.watchdog:
            self.motion = Motion.HOMING
        self.watchdog_deadline = math.inf

    def start(self, now: float) -> None:
        """Torque just went on: the watchdog clock and the step clock start now."""
        self.watchdog_deadline = now + self.watchdog_timeout
        self.last_step_t = now
        self.motion = Motion.TRACKING

    def hold(self, present: np.ndarray) -> None:
        """Setpoints, goals and targets := present positions (clamped), so torque-on never jumps."""
        held = np.clip(np.asarray(present, np.float64), self.lo, self.hi)
        self.setpoint = held.copy()
        self.goal = np.rint(held).astype(np.int64)      # the step limit counts from here
        self.lead[:] = 0.0
        self.target = held.copy()
        self.arrive_at[:] = np.nan
        if self.motion is Motion.HOMING:
            self.motion = Motion.TRACKING

    def restore_targets(self, target: np.ndarray, arrive_at: np.ndarray, now: float) -> None:
        """After :meth:`hold` on a reconnect: carry on toward the targets held before it."""
        self.target, self.arrive_at = target, arrive_at
        self.last_step_t = now

    def resync(self, rows: list[int] | np.ndarray, present: np.ndarray) -> None:
        """Servos in ``rows`` came back (answering again, rebooted, cooled): their setpoints and
        goals start from where they are, with no lead; their targets stay."""
        self.setpoint[rows] = np.clip(np.asarray(present, np.float64)[rows], self.lo[rows], self.hi[rows])
        self.lead[rows] = 0.0
        self.goal[rows] = np.rint(self.setpoint[rows]).astype(np.int64)

    def goals(self) -> np.ndarray:
        """This cycle's goal positions (int ticks, within the limits). Call :meth:`sent` once written."""
        return np.rint(np.clip(self.setpoint + self.lead, self.lo, self.hi)).astype(np.int64)

    def sent(self, goal: np.ndarray) -> None:
        self.goal = goal

    # -- one control cycle --------------------------------------------------------------------
    def plan(self, now: float, present: np.ndarray) -> None:
        """Move setpoints toward targets within the velocity limits (and on time for arrive_at),
        and set each goal's lead; ``present`` (ticks) feeds the now-lead feedback."""
        s = self.settings
        last = self.last_step_t if self.last_step_t is not None else now
        dt = min(max(now - last, 0.0), s.max_dt_s)
        self.last_step_t = now
        if not self.watchdog and now > self.watchdog_deadline:
            self.motion = Motion.WATCHDOG
            LOG.warning("no servo command for %.2f s: easing to home", self.watchdog_timeout)
        watchdog = self.watchdog
        homing = self.motion is not Motion.TRACKING
        target = self.current_target
        scale = s.home_speed_scale if watchdog else self.home_speed_scale
        vmax = self.vmax * (scale if homing else 1.0)
        remaining = target - self.setpoint
        speed = vmax
        timed = ~np.isnan(self.arrive_at) & ~np.bool_(watchdog)
        time_left = self.arrive_at - now
        if timed.any():
            # Constant speed that lands the setpoint at arrive_at ...
            planned = np.abs(remaining) / np.maximum(time_left, 1e-9)
            speed = np.where(timed & (time_left > dt), np.minimum(planned, self.vmax), vmax)
        step = np.clip(remaining, -speed * dt, speed * dt)
        self.setpoint = np.clip(self.setpoint + step, self.lo, self.hi)
        self.lead[:] = 0.0                     # a lead lives only as long as the timed move it serves
        if timed.any() and s.servo_lag_s > 0 and dt > 0:
            self.lead = self._lag_lead(step, dt, timed, time_left, now, present)
        # Whatever the lead asks (a reversal, the watchdog dropping it, a due-now feedback kick), the
        # goal itself moves at most lead_step_factor x max_velocity x dt this cycle.
        band = s.lead_step_factor * self.vmax * dt
        goal = np.clip(np.clip(self.setpoint + self.lead, self.lo, self.hi), self.goal - band, self.goal + band)
        self.lead = goal - self.setpoint

    def _lag_lead(self, step: np.ndarray, dt: float, timed: np.ndarray, time_left: np.ndarray, now: float,
                  present: np.ndarray) -> np.ndarray:
        """Goals that lead the setpoint by lag x its velocity: a first-order plant
        x' = (goal - x) / lag driven by setpoint + lag * setpoint' follows the setpoint exactly (the
        velocity feedforward of a position loop), so the face -- not just the goal -- arrives on
        time and moves at the setpoint's speed, within max_velocity. Goals may pass the target by
        the lead while the face approaches it; they never leave the servo limits."""
        s = self.settings
        lead = step / dt * s.servo_lag_s
        # A planned arrival unwinds its lead by arrive_at at the step limit's spare rate, rather
        # than dropping it in one cycle there (the goal would stay past the target and the face
        # overshoot): |lead| <= (lead_step_factor - 1) x max_velocity x the time left.
        planned_arrival = timed & (time_left > dt)
        unwind = (s.lead_step_factor - 1.0) * self.vmax * np.maximum(time_left - dt, 0.0)
        lead = np.where(planned_arrival, np.clip(lead, -unwind, unwind), lead)
        if s.now_lead_gain > 0:
            # Due now (or late): no setpoint velocity to lead -- the setpoint jumps -- so feedback
            # on the present position instead (DriverConfig.now_lead_gain says why).
            due = timed & (self.arrive_at - now <= dt)
            lead = np.where(due, s.now_lead_gain * (self.setpoint - present), lead)
        return np.where(timed, np.clip(self.setpoint + lead, self.lo, self.hi) - self.setpoint, 0.0)

    # -- progress -----------------------------------------------------------------------------
    def settled(self, present: np.ndarray, ignore: np.ndarray, tolerance: int) -> bool:
        """Setpoints at their targets and present positions within ``tolerance`` ticks of them,
        for every servo not in ``ignore`` (stale readings, hardware errors)."""
        target = self.current_target
        ok = (np.abs(self.setpoint - target) < 0.5) & (np.abs(present - np.rint(target)) <= tolerance)
        return bool(np.all(ok | ignore))

    def worst(self, present: np.ndarray) -> tuple[int, int]:
        """(row, rounded target) of the servo furthest from its target."""
        target = np.rint(self.current_target)
        i = int(np.argmax(np.abs(present - target)))
        return i, int(target[i])


__all__ = ["Motion", "PlanSettings", "TrajectoryPlanner"]
