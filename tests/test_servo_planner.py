"""The trajectory planner on its own (servo/planner.py): no bus, no emulator, one servo-table's
limits, and time passed in by the test. The driver tests check the same behaviour through the wire;
these pin the arithmetic: velocity limit, timed arrival, the servo-lag lead and its unwinding, the
now-lead feedback gain, the per-cycle step limit, the limits, the watchdog and the lead resets."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from emo_core.servo import DriverConfig, ServoTable
from emo_core.servo.identify import simulate_lag
from emo_core.servo.planner import Motion, TrajectoryPlanner

DT = 0.01
T0 = 100.0


def make(table: ServoTable, **settings) -> TrajectoryPlanner:
    config = dataclasses.replace(DriverConfig(), **settings)
    config.validate()
    planner = TrajectoryPlanner(table.min_ticks, table.max_ticks, table.home_ticks, table.max_velocity, config)
    planner.hold(table.home_ticks)
    planner.start(T0)
    return planner


def cycle(planner: TrajectoryPlanner, now: float, present: np.ndarray | None = None) -> np.ndarray:
    """One control cycle as the driver runs it: plan, compute the goals, 'write' them."""
    planner.plan(now, planner.goal if present is None else present)
    goal = planner.goals()
    planner.sent(goal)
    return goal


def target_ticks(table: ServoTable, row: int, norm: float) -> np.ndarray:
    ticks = table.home_ticks.astype(np.float64).copy()
    ticks[row] = table.servos[row].to_ticks(norm)
    return ticks


def only(table: ServoTable, row: int) -> np.ndarray:
    mask = np.zeros(len(table), bool)
    mask[row] = True
    return mask


def test_untimed_moves_are_velocity_limited_and_arrive(table) -> None:
    p = make(table, servo_lag_s=0.2, watchdog_timeout_s=0.0)       # 0: no watchdog
    jaw = table.index("jaw")
    p.set_targets(only(table, jaw), target_ticks(table, jaw, 0.9), None, T0)
    vmax = table.max_velocity[jaw]
    setpoints = []
    for k in range(1, 400):
        goal = cycle(p, T0 + k * DT)
        setpoints.append(p.setpoint[jaw])
        assert goal[jaw] == np.rint(p.setpoint[jaw]), "an untimed move has no lead"
    steps = np.abs(np.diff([table.home_ticks[jaw]] + setpoints))
    assert steps.max() <= vmax * DT + 1e-9
    assert steps.max() == pytest.approx(vmax * DT), "at max velocity, not slower"
    assert setpoints[-1] == pytest.approx(target_ticks(table, jaw, 0.9)[jaw])
    assert p.settled(np.rint(p.setpoint), np.zeros(len(table), bool), 0)


def test_timed_move_leads_by_servo_lag_times_velocity_and_the_face_arrives(table) -> None:
    lag = 0.2
    p = make(table, servo_lag_s=lag, watchdog_timeout_s=0.0)
    jaw = table.index("jaw")
    target = target_ticks(table, jaw, 0.8)
    arrive = T0 + 0.6
    p.set_targets(only(table, jaw), target, arrive, T0)
    # Each cycle plans the speed that lands the setpoint at arrive_at from the cycle's own time, so
    # the ramp is constant and ends one cycle early: distance / (0.6 s - dt).
    speed = abs(target[jaw] - table.home_ticks[jaw]) / (0.6 - DT)
    times, goals = [T0], [float(p.goal[jaw])]
    for k in range(1, 150):
        goal = cycle(p, T0 + k * DT)
        times.append(T0 + k * DT)
        goals.append(float(goal[jaw]))
        if k == 20:        # mid-move: constant speed, lead = lag x velocity (well inside the unwind bound)
            assert abs(p.setpoint[jaw] - (table.home_ticks[jaw] + np.sign(target[jaw] - table.home_ticks[jaw])
                                         * speed * k * DT)) < 1e-6
            assert abs(p.lead[jaw]) == pytest.approx(lag * speed, rel=1e-9)
    # A first-order plant with that time constant, driven by these goals, is at 95 % by arrive_at.
    face = simulate_lag(np.array(times), np.array(goals), float(table.home_ticks[jaw]), np.array([lag]))[0]
    share = (face - table.home_ticks[jaw]) / (target[jaw] - table.home_ticks[jaw])
    assert share[int(round(0.6 / DT))] >= 0.93
    assert share.max() <= 1.0 + 2 / abs(target[jaw] - table.home_ticks[jaw]), "no overshoot"
    assert goals[-1] == target[jaw] and p.lead[jaw] == 0.0, "the lead is gone once arrived"


def test_a_planned_arrival_unwinds_its_lead_before_arrive_at(table) -> None:
    factor = 3.0
    p = make(table, servo_lag_s=0.5, lead_step_factor=factor)
    jaw = table.index("jaw")
    vmax = table.max_velocity[jaw]
    arrive = T0 + 0.3
    p.set_targets(only(table, jaw), target_ticks(table, jaw, 0.9), arrive, T0)
    for k in range(1, 60):
        now = T0 + k * DT
        cycle(p, now)
        time_left = arrive - now
        if time_left > DT:
            assert abs(p.lead[jaw]) <= (factor - 1.0) * vmax * (time_left - DT) + 1.0


def test_now_lead_gain_feeds_back_on_the_present_position(table) -> None:
    gain = 1.5
    p = make(table, servo_lag_s=0.2, now_lead_gain=gain)
    jaw = table.index("jaw")
    target = target_ticks(table, jaw, 0.55)
    present = table.home_ticks.astype(np.int64).copy()
    p.set_targets(only(table, jaw), target, T0 + DT, T0)        # due now: this very cycle
    cycle(p, T0 + DT, present)
    setpoint = p.setpoint[jaw]
    assert setpoint == pytest.approx(target[jaw]) or abs(setpoint - present[jaw]) == pytest.approx(
        table.max_velocity[jaw] * DT)
    assert p.lead[jaw] == pytest.approx(gain * (setpoint - present[jaw]), abs=1e-6)
    # Without the gain the same command gets the velocity lead: lag / dt x the step, capped by the band.
    q = make(table, servo_lag_s=0.2, now_lead_gain=0.0)
    q.set_targets(only(table, jaw), target, T0 + DT, T0)
    cycle(q, T0 + DT, present)
    band = q.settings.lead_step_factor * table.max_velocity[jaw] * DT
    assert abs(q.lead[jaw]) == pytest.approx(min(0.2 / DT * abs(q.setpoint[jaw] - present[jaw]),
                                                 band - abs(q.setpoint[jaw] - present[jaw])), abs=1e-6)
    assert abs(p.lead[jaw]) < abs(q.lead[jaw]), "the feedback lead moves goals less"


def test_goals_never_step_more_than_the_band_nor_leave_the_limits(table) -> None:
    factor = 4.0
    p = make(table, servo_lag_s=0.3, lead_step_factor=factor)
    rng = np.random.default_rng(7)
    n = len(table)
    band = factor * table.max_velocity * DT
    now = T0
    last = p.goal.copy()
    for k in range(1500):
        before = now
        if k % 7 == 0:            # reversals, due-now and late stamps, untimed commands
            ticks = table.min_ticks + rng.uniform(-0.2, 1.2, n) * (table.max_ticks - table.min_ticks)
            arrive = None if rng.random() < 0.3 else now + rng.uniform(-0.5, 1.0)
            p.set_targets(rng.random(n) < 0.7, ticks, arrive, now)
        now += DT * rng.uniform(0.5, 3.0)
        goal = cycle(p, now, np.rint(p.setpoint).astype(np.int64))
        assert (goal >= table.min_ticks).all() and (goal <= table.max_ticks).all()
        assert (p.setpoint >= table.min_ticks).all() and (p.setpoint <= table.max_ticks).all()
        dt = min(now - before, p.settings.max_dt_s)          # dt as the planner counts it
        assert (np.abs(goal - last) <= band / DT * dt + 1.0).all(), "step limit (plus rounding)"
        last = goal


def test_the_watchdog_eases_home_at_home_speed_and_drops_the_lead(table) -> None:
    p = make(table, servo_lag_s=0.2, watchdog_timeout_s=0.5, home_speed_scale=0.5)
    jaw = table.index("jaw")
    p.set_targets(only(table, jaw), target_ticks(table, jaw, 0.9), T0 + 0.3, T0)
    for k in range(1, 80):                 # up to arrive_at + timeout: still tracking
        now = T0 + k * DT
        cycle(p, now)
        assert p.motion is Motion.TRACKING
    now = T0 + 0.81
    before = p.setpoint[jaw]
    cycle(p, now)
    assert p.motion is Motion.WATCHDOG and p.watchdog
    assert (p.current_target == table.home_ticks).all()
    assert abs(p.setpoint[jaw] - before) == pytest.approx(0.5 * table.max_velocity[jaw] * 2 * DT)
    assert p.lead[jaw] == 0.0 and p.goal[jaw] == np.rint(p.setpoint[jaw]), "home has no lead"
    p.go_home(None, 1.0)
    assert p.motion is Motion.WATCHDOG, "a running watchdog keeps its speed until the next command"
    p.set_targets(only(table, jaw), target_ticks(table, jaw, 0.4), None, now)
    assert p.motion is Motion.TRACKING and not p.watchdog


def test_home_runs_at_its_speed_scale_without_the_watchdog(table) -> None:
    p = make(table, watchdog_timeout_s=0.4)
    jaw = table.index("jaw")
    p.set_targets(only(table, jaw), target_ticks(table, jaw, 0.9), None, T0)
    for k in range(1, 30):
        cycle(p, T0 + k * DT)
    p.go_home(None, 0.25)
    assert p.motion is Motion.HOMING
    before = p.setpoint[jaw]
    for k in range(30, 130):           # far past the watchdog timeout: homing switched it off
        cycle(p, T0 + k * DT)
        assert p.motion is Motion.HOMING
    assert abs(p.setpoint[jaw] - before) == pytest.approx(min(abs(before - table.home_ticks[jaw]),
                                                              0.25 * table.max_velocity[jaw] * 100 * DT))


def _mid_timed_move(table: ServoTable) -> tuple[TrajectoryPlanner, int]:
    p = make(table, servo_lag_s=0.3)
    jaw = table.index("jaw")
    p.set_targets(only(table, jaw), target_ticks(table, jaw, 0.9), T0 + 1.0, T0)
    for k in range(1, 30):
        cycle(p, T0 + k * DT)
    assert abs(p.lead[jaw]) > 5, "mid-move, the timed goal leads its setpoint"
    return p, jaw


def test_an_untimed_command_mid_move_drops_the_previous_moves_lead(table) -> None:
    """The lead belongs to the timed move that built it: the next (untimed) move starts without it."""
    p, jaw = _mid_timed_move(table)
    p.set_targets(only(table, jaw), target_ticks(table, jaw, 0.2), None, T0 + 0.3)
    for k in range(30, 40):
        goal = cycle(p, T0 + k * DT)
        if k > 31:        # the step limit may spread the drop of a large lead over a cycle or two
            assert p.lead[jaw] == 0.0 and goal[jaw] == np.rint(p.setpoint[jaw])


def test_hold_and_resync_start_from_the_present_without_a_lead(table) -> None:
    p, jaw = _mid_timed_move(table)
    present = np.rint(p.setpoint).astype(np.int64) - 3
    q, _ = _mid_timed_move(table)
    p.hold(present)
    assert (p.goals() == np.clip(present, table.min_ticks, table.max_ticks)).all()
    assert (p.target == p.setpoint).all() and np.isnan(p.arrive_at).all()
    q.resync([jaw], present)
    assert q.goals()[jaw] == present[jaw] and q.lead[jaw] == 0.0
    assert q.target[jaw] == target_ticks(table, jaw, 0.9)[jaw], "resync keeps the target"
