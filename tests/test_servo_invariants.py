"""Driver invariants that no command can break (docs/servo.md, "Invariants").

* an ``arrive_at`` beyond ``arrive_horizon_s`` is refused, so no command can switch the watchdog off;
* goals move at most ``lead_step_factor`` x max_velocity x dt per control cycle, lead included;
* ``state.torque_on`` is what the servos report, not what the driver intended;
* after a reboot, torque comes back only on a servo that is cool enough;
* 10,000 random commands -- timed, untimed, late, garbage -- never put a goal outside the limits or
  over the step limit (checked on every goal the emulated servos accepted).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from emo_core.clock import ManualClock
from emo_core.errors import InputError
from emo_core.servo import BusEmulator, DriverConfig, ServoDriver, ServoTable
from emo_core.servo.models import HW_OVERHEATING, HW_OVERLOAD

DT = 0.01


def make_driver(table, emulator, clock, **overrides) -> ServoDriver:
    config = DriverConfig.from_mapping(table.driver, **{"latency_timer_ms": 40.0, **overrides})
    driver = ServoDriver(table, emulator.port, config, clock=clock, sleep=clock.advance)
    driver.open()
    driver.activate()
    return driver


@pytest.fixture()
def driver(table, emulator, clock):
    drv = make_driver(table, emulator, clock)
    yield drv
    drv.shutdown()


def run(driver: ServoDriver, clock: ManualClock, seconds: float, command=None, arrive_at=None):
    state = None
    for _ in range(int(round(seconds / DT))):
        if command is not None:
            driver.command(command, arrive_at=arrive_at)
        clock.advance(DT)
        state = driver.step()
    return state


@pytest.mark.parametrize("offset_s", [1e6, 3600.0, 5.5, -5.5, -1e6])
def test_arrive_at_beyond_the_horizon_is_refused_and_the_watchdog_still_fires(table, clock, driver, offset_s) -> None:
    """A stamp on another clock base (wall time, ns) used to be accepted and push the watchdog's
    deadline to arrive_at + timeout: off for good. Now it is refused and changes nothing."""
    run(driver, clock, 0.2, command={"jaw_open": 0.5})
    before = driver.state().target_ticks.copy()
    with pytest.raises(InputError, match=r"arrive_horizon_s=5 s away .*nothing was sent"):
        driver.command({"jaw_open": 0.9}, arrive_at=clock.now() + offset_s)
    assert np.array_equal(driver.state().target_ticks, before)
    state = run(driver, clock, driver.config.watchdog_timeout_s + 0.05)
    assert state.watchdog, "the watchdog fires as if the refused command had never come"


def test_no_command_postpones_the_watchdog_beyond_horizon_plus_timeout(table, clock, driver) -> None:
    horizon, timeout = driver.config.arrive_horizon_s, driver.config.watchdog_timeout_s
    driver.command({"jaw_open": 0.7}, arrive_at=clock.now() + horizon)       # the furthest allowed
    state = run(driver, clock, horizon + timeout - 0.05)
    assert not state.watchdog
    state = run(driver, clock, 0.1)
    assert state.watchdog


@pytest.mark.parametrize("command, arrive_at, message", [
    ({"jaw_open": 0.5}, "soon", "arrive_at='soon' is not a number"),
    ({"jaw_open": 0.5}, [1.0], "arrive_at=[1.0] is not a number"),
    ({"jaw_open": 0.5}, 10 ** 400, "arrive_at is too large"),
    ({"jaw_open": 0.5}, float("nan"), "arrive_at=nan is not finite"),
    ({"jaw_open": 0.5}, True, "arrive_at=True is not a number"),
    ({"jaw_open": 10 ** 400}, None, "jaw_open is too large"),
    ({"jaw_open": "wide"}, None, "jaw_open='wide' is not a number"),
    (np.array([object()] * 11), None, "command values must be numbers"),
    ([10 ** 400] * 11, None, "command values must be numbers"),
    ([[0.5, 0.5], [0.5]], None, "command values must be numbers"),
    ("jaw_open", None, "got a string"),
    (b"\x00" * 11, None, "got a string"),
])
def test_garbage_commands_are_input_errors(table, clock, driver, command, arrive_at, message) -> None:
    goals = driver.state().goal_ticks.copy()
    with pytest.raises(InputError, match=re.escape(message)):
        driver.command(command, arrive_at=arrive_at)
    assert np.array_equal(driver.step().goal_ticks, goals)


def test_timed_reversals_respect_the_step_limit(table, emulator, clock) -> None:
    """The servo-lag lead made a jaw reversal a goal jump of hundreds of ticks in one cycle; goals
    now move at most lead_step_factor x max_velocity x dt per cycle, and still lead."""
    factor = 4.0
    drv = make_driver(table, emulator, clock, lead_step_factor=factor)
    try:
        jaw = table.servos[table.index("jaw")]
        for value in (0.9, 0.1, 0.9, 0.1):           # full reversals, each due 0.25 s later
            run(drv, clock, 0.25, command={"jaw_open": value}, arrive_at=clock.now() + 0.25)
        limit = factor * jaw.max_velocity * DT
        assert emulator.servo(jaw.id).max_goal_jump <= limit + 1
        # Unlimited, the same moves jump several times further (what the limit prevents).
        free = make_driver(table, emulator, clock, lead_step_factor=1000.0)
        emulator.servo(jaw.id).max_goal_jump = 0
        for value in (0.9, 0.1, 0.9, 0.1):
            run(free, clock, 0.25, command={"jaw_open": value}, arrive_at=clock.now() + 0.25)
        assert emulator.servo(jaw.id).max_goal_jump > 2 * limit
        free.close()
    finally:
        drv.shutdown()


def test_the_step_limit_keeps_arrival_and_avoids_overshoot(table, clock, tmp_path) -> None:
    """With a tight step limit the lead is unwound before arrive_at instead of dropped there: the face
    does not overshoot the target and still arrives close to on time."""
    tau = table.emulator["response_time_s"]
    jaw = table.servos[table.index("jaw")]
    with BusEmulator.from_table(table, link=tmp_path / "lagbus", clock=clock) as emu:
        drv = make_driver(table, emu, clock, servo_lag_s=tau, lead_step_factor=4.0)
        run(drv, clock, 0.3)
        t0 = clock.now()
        drv.command({"jaw_open": 0.8}, arrive_at=t0 + 0.6)
        times, present, goal = [], [], []
        while clock.now() < t0 + 1.0:
            clock.advance(DT)
            writes = emu.stats.sync_writes
            state = drv.step()
            emu.wait_for_sync_writes(writes)
            times.append(clock.now() - t0)
            present.append(int(state.position_ticks[table.index("jaw")]))
            goal.append(int(state.goal_ticks[table.index("jaw")]))
        drv.shutdown()
    present, goal, target = np.array(present), np.array(goal), jaw.to_ticks(0.8)
    assert np.abs(np.diff(goal)).max() <= 4.0 * jaw.max_velocity * DT + 1
    assert present.max() <= target + 2
    start = present[0]
    arrived = times[int(np.argmax(present - start >= 0.95 * (target - start)))]
    assert arrived <= 0.6 + 0.03


def test_torque_on_reflects_the_servos(table, emulator, clock, driver) -> None:
    state = run(driver, clock, 0.1, command={"jaw_open": 0.5})
    assert state.torque_on and state.torque.all()
    emulator.inject_hardware_error(26, HW_OVERLOAD)            # the servo releases its own torque
    state = run(driver, clock, 0.05, command={"jaw_open": 0.5})
    jaw = table.index("jaw")
    assert not state.torque[jaw] and state.torque[np.arange(len(table)) != jaw].all()
    assert not state.torque_on, "one servo went limp: the face is not holding"
    assert emulator.register(26, "Torque_Enable") == 0


def test_a_hot_servo_is_not_re_enabled_after_a_reboot(table, emulator, clock) -> None:
    drv = make_driver(table, emulator, clock, reboot_on_hardware_error=True)
    try:
        run(drv, clock, 0.1, command={"jaw_open": 0.5})
        emulator.inject_hardware_error(26, HW_OVERHEATING)      # 81 C: over the XM430's limit
        state = run(drv, clock, 0.1, command={"jaw_open": 0.5})
        assert emulator.register(26, "Hardware_Error_Status") == 0, "rebooted"
        assert emulator.register(26, "Torque_Enable") == 0, "but left released while hot"
        assert not state.torque_on and not state.torque[table.index("jaw")]
        emulator.set_temperature(26, 58.0)                       # cooled below 65 - 5 C
        state = run(drv, clock, 1.2, command={"jaw_open": 0.5})  # the next status poll sees it
        assert emulator.register(26, "Torque_Enable") == 1 and state.torque_on
    finally:
        drv.shutdown()


def test_overload_reboot_of_a_cool_servo_re_enables_at_once(table, emulator, clock) -> None:
    drv = make_driver(table, emulator, clock, reboot_on_hardware_error=True)
    try:
        run(drv, clock, 0.1, command={"jaw_open": 0.5})
        emulator.inject_hardware_error(26, HW_OVERLOAD)
        state = run(drv, clock, 0.1, command={"jaw_open": 0.5})
        assert emulator.register(26, "Torque_Enable") == 1 and state.torque_on
    finally:
        drv.shutdown()


def _random_command(rng: np.random.Generator, table: ServoTable, now: float, horizon: float):
    """One command of a random kind: most well-formed (timed or not, late or due), some garbage."""
    kind = rng.integers(10)
    arrive = None if rng.random() < 0.4 else float(now + rng.uniform(-1.0, horizon))
    if kind < 4:
        return rng.uniform(-0.5, 1.5, 11), arrive                          # 11 commands, some outside [0, 1]
    if kind < 6:
        return {str(rng.choice(table.names)): float(rng.uniform(0, 1))}, arrive
    if kind == 6:
        return rng.uniform(0, 1, 16), float(now + rng.choice([0.0, -0.5, 1e6, -1e6, horizon * 1.5]))
    if kind == 7:
        return {"jaw_open": float(rng.choice([0.0, 1.0]))}, float(now + rng.uniform(0.0, 0.05))  # reversals
    bad = [np.array([np.nan] * 11), [math.inf] * 11, {"jaw_open": "x"}, [10 ** 400] * 11, "soon",
           np.array([object()] * 11), {"nose": 0.5}, [0.5] * 7]
    return bad[int(rng.integers(len(bad)))], (arrive if rng.random() < 0.8 else "soon")


def test_ten_thousand_random_commands_never_break_limits_or_step_limit(table, emulator, clock) -> None:
    """Every goal the emulated servos accepted lies within the table limits, and no goal moved more
    than lead_step_factor x max_velocity x dt (dt as the driver counts it: capped at max_dt_s) in a
    cycle -- over 10,000 random commands with random cycle timing, including stalls and garbage."""
    factor = 4.0          # tighter than the default, so the limit binds often
    drv = make_driver(table, emulator, clock, lead_step_factor=factor)
    rng = np.random.default_rng(16)
    vmax = table.max_velocity.astype(np.float64)
    lo, hi = table.min_ticks, table.max_ticks
    refused = 0
    worst = 0.0
    last_goal = drv.state().goal_ticks.copy()
    try:
        for _ in range(10_000):
            command, arrive = _random_command(rng, table, clock.now(), drv.config.arrive_horizon_s)
            try:
                drv.command(command, arrive_at=arrive)
            except InputError:
                refused += 1
            dt = float(rng.choice([DT, DT, DT, 0.0, 0.003, 0.03, 0.2]))   # on time, doubled, late, stalled
            clock.advance(dt)
            goal = drv.step().goal_ticks
            assert np.all((goal >= lo) & (goal <= hi))
            allowed = factor * vmax * min(dt, drv.config.max_dt_s) + 1      # +1: goals are rounded to ticks
            worst = max(worst, float(np.max(np.abs(goal - last_goal) / allowed)))
            last_goal = goal.copy()
    finally:
        drv.shutdown()
    assert 0.9 <= worst <= 1.0, "the limit was reached (it binds) and never exceeded"
    for spec in table.servos:                      # what actually reached the servos agrees
        servo = emulator.servo(spec.id)
        assert spec.min <= servo.goal_min_seen and servo.goal_max_seen <= spec.max
    assert 1000 < refused < 6000, "the garbage was generated, and refused"
