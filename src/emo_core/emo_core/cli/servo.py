"""``emo servo ...``: the servo bus emulator and bench tools for the 26-servo head.

* ``emo servo emulate --link PATH`` -- a Protocol 2.0 bus emulator on a pty, reachable at PATH;
* ``emo servo ping --port PORT`` -- which servos of the table answer, with which model;
* ``emo servo set --port PORT name=value ...`` -- move commands or servos, and keep holding;
* ``emo servo home --port PORT`` -- ease to the home pose, then release torque (``--hold`` keeps it);
* ``emo servo monitor --port PORT`` -- a refreshing table of positions, current, temperature, errors;
* ``emo servo lag --port PORT --servo NAME`` -- step one servo and fit the servo lag model
  (``driver.servo_lag_s``) to how its present position followed the goals.

The long-running driver (ROS node, pipeline) is what homes and releases on shutdown; ``set`` is a
bench tool and deliberately leaves the servos holding the pose it set -- unless it is interrupted
mid-move. Ctrl-C, SIGTERM and SIGHUP stop every command that holds torque the same way: ease home,
torque off, exit 128 + the signal (``emo_core.signals``).
"""
from __future__ import annotations

import argparse
import json
import os
import logging
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..signals import STOP_SIGNALS, Stopped
from ..servo.driver import DriverConfig, ServoDriver, ServoState
from ..servo.emulator import BusEmulator
from ..servo.models import MODEL_BY_NUMBER, describe_hardware_error
from ..servo.table import CHANNEL_NAMES, ServoTable
from ._args import integer, number

LOG = logging.getLogger(__name__)


def _table(args: argparse.Namespace) -> ServoTable:
    return ServoTable.load(args.config)


def _driver(args: argparse.Namespace, table: ServoTable, **overrides: object) -> ServoDriver:
    config = DriverConfig.from_mapping(table.driver, baudrate=args.baud or table.baudrate,
                                       latency_timer_ms=args.latency_timer, **overrides)
    return ServoDriver(table, args.port, config)


# -- emulate ------------------------------------------------------------------------------------
def _emulate(args: argparse.Namespace) -> int:
    table = _table(args)
    link = Path(args.link)
    if link.exists() and not link.is_symlink():
        raise InputError(f"--link {link}: exists and is not a symlink; refusing to replace it")
    if link.is_symlink() and link.exists():
        # It leads to a live pty: a running emulator's link (or someone's terminal). Taking it over
        # would silently cut that emulator's clients off; a stale link (its pty gone) is replaced.
        raise InputError(f"--link {link}: already leads to the live pty {os.readlink(link)} "
                         "(another emulator running?); stop it or choose another link")
    if not link.parent.is_dir():
        raise InputError(f"--link {link}: directory {link.parent} does not exist")
    stop = threading.Event()
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and `kill -INT` should still stop us.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    emulator = BusEmulator.from_table(table, link=link, baudrate=args.baud or table.baudrate,
                                      timing=args.timing, seed=args.seed)
    emulator.set_fault_rates(drop=args.drop_rate, corrupt=args.corrupt_rate)
    try:
        with emulator:
            print(f"emulating {len(table)} servos on {emulator.device} (link {link}); "
                  f"bus timing {'on' if args.timing else 'off'}; Ctrl-C to stop", flush=True)
            while not stop.wait(0.2):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"emulator stopped after {emulator.stats.instructions} instructions", flush=True)
    return 0


# -- ping ---------------------------------------------------------------------------------------
def _ping(args: argparse.Namespace) -> int:
    table = _table(args)
    driver = _driver(args, table)
    bus = driver.bus
    bus.open()
    try:
        found = bus.broadcast_ping() if args.all else bus.scan(table.ids)
    finally:
        bus.close()
    print(f"{'id':>3}  {'name':<24} {'table model':<12} {'found':<16}")
    missing = 0
    for spec in table.servos:
        number = found.get(spec.id)
        if number is None:
            status, missing = "missing", missing + 1
        else:
            model = MODEL_BY_NUMBER.get(number)
            status = model.name if model else f"model {number}"
            if number != spec.model.model_number:
                status += " (MISMATCH)"
                missing += 1
        print(f"{spec.id:>3}  {spec.name:<24} {spec.model.name:<12} {status:<16}")
    for dxl_id in sorted(set(found) - set(table.ids)):
        model = MODEL_BY_NUMBER.get(found[dxl_id])
        print(f"{dxl_id:>3}  {'(not in table)':<24} {'':<12} {model.name if model else found[dxl_id]}")
    print(f"{len(table) - missing}/{len(table)} servos answer on {args.port}")
    return 0 if missing == 0 else 1


# -- set / home ---------------------------------------------------------------------------------
def _parse_assignments(items: list[str], table: ServoTable) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"expected name=value, got {item!r}")
        if name not in CHANNEL_NAMES and name not in table.names:
            raise InputError(f"unknown command or servo {name!r}; commands: {', '.join(CHANNEL_NAMES)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise InputError(f"{name}: {value!r} is not a number") from None
    return out


def _set(args: argparse.Namespace) -> int:
    table = _table(args)
    targets = _parse_assignments(args.assignments, table)
    norm, mask = table.resolve(targets)            # NaN, inf, unknown names: refused before the bus
    outside = [f"{k}={v:g}" for k, v in targets.items() if not 0.0 <= v <= 1.0]
    if outside:
        raise InputError(f"values must be within [0, 1]: {', '.join(outside)}")
    driver = _driver(args, table, watchdog_timeout_s=0, out_of_range="reject")
    driver.open()
    try:
        driver.activate()
        driver.command(targets)
        state = driver.wait_until_settled(args.timeout)
    except BaseException:
        driver.shutdown()         # interrupted or failed mid-move: ease home, release torque
        raise
    driver.close()                # done: no homing, no release -- the bench pose stays held
    _print_moved(state, table, targets)
    return 0 if state.connected and not state.fault else 1


def _print_moved(state: ServoState, table: ServoTable, targets: dict[str, float]) -> None:
    names: set[str] = set()
    for key in targets:
        names.update(table.names[i] for i in table.followers(key)) if key in CHANNEL_NAMES else names.add(key)
    for i, name in enumerate(table.names):
        if name in names:
            print(f"{name:<24} goal {int(state.goal_ticks[i]):>5}  present {int(state.position_ticks[i]):>5}  "
                  f"({state.position_norm[i]:.3f})")
    if state.fault:
        print(f"fault: {state.fault}")


def _home(args: argparse.Namespace) -> int:
    table = _table(args)
    driver = _driver(args, table, watchdog_timeout_s=0, shutdown_timeout_s=args.timeout)
    driver.open()
    try:
        driver.activate()
        if args.hold:
            driver.home()
            state = driver.wait_until_settled(args.timeout)
        else:
            driver.deactivate()
            state = driver.state()
    except BaseException:
        driver.shutdown()
        raise
    driver.close()
    at_home = abs(state.position_ticks - table.home_ticks).max()
    print(f"home pose reached within {int(at_home)} ticks; torque {'held' if args.hold else 'released'}")
    return 0


# -- lag ----------------------------------------------------------------------------------------
def _lag(args: argparse.Namespace) -> int:
    from ..servo.identify import fit_first_order_lag, record_step

    table = _table(args)
    if args.servo not in table.names:
        raise InputError(f"--servo {args.servo!r}: not a servo of the table; known: {', '.join(table.names)}")
    if not 0.0 < args.step <= 0.5 or args.repeats < 1 or not 0.2 <= args.seconds <= 10.0:
        raise InputError("need 0 < --step <= 0.5, --repeats >= 1 and 0.2 <= --seconds <= 10")
    row = table.index(args.servo)
    # No lead while identifying (untimed commands get none anyway); no watchdog between moves.
    driver = _driver(args, table, watchdog_timeout_s=0, servo_lag_s=0.0)
    driver.open()
    fits = []
    try:
        driver.activate()
        for _ in range(args.repeats):
            rec = record_step(driver, row, args.step, args.seconds, period_s=driver.config.control_period_s)
            fits.append(fit_first_order_lag(rec.times, rec.goal, rec.present))
    finally:
        driver.shutdown()          # ease home, release torque
    taus = [f.tau_s for f in fits]
    result = {"servo": args.servo, "tau_s": round(float(np.median(taus)), 4), "taus_s": [round(t, 4) for t in taus],
              "rmse_ticks": [round(f.rmse_ticks, 2) for f in fits], "moved_ticks": [round(f.moved_ticks, 1) for f in fits],
              "servo_lag_s_configured": table.driver.get("servo_lag_s")}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.servo}: first-order time constant {result['tau_s']:.3f} s "
              f"(repeats {', '.join(f'{t:.3f}' for t in taus)}; model residual "
              f"{', '.join(f'{f.rmse_ticks:.1f}' for f in fits)} ticks). "
              f"servos.yaml driver.servo_lag_s is {result['servo_lag_s_configured']}.")
    return 0


# -- monitor ------------------------------------------------------------------------------------
def _monitor(args: argparse.Namespace) -> int:
    table = _table(args)
    driver = _driver(args, table)
    driver.open(configure=False)
    interactive = sys.stdout.isatty() and not args.count
    try:
        n = 0
        while not args.count or n < args.count:
            if n:
                time.sleep(args.interval)
            state = driver.read_state()
            if interactive:
                print("\033[H\033[J", end="")
            print(format_state(state), flush=True)
            n += 1
    except KeyboardInterrupt as exc:
        if isinstance(exc, Stopped):
            raise                 # SIGTERM/SIGHUP: exit 128 + signal; Ctrl-C is the monitor's normal end
    finally:
        driver.close()
    return 0


def format_state(state: ServoState) -> str:
    """A fixed-width table of one state: position, normalized, current, temperature, errors."""
    lines = [f"{'id':>3} {'name':<24} {'ticks':>6} {'norm':>6} {'rad':>7} {'amps':>6} {'degC':>5}  errors"]
    for i, name in enumerate(state.names):
        errors = ", ".join(describe_hardware_error(int(state.hardware_error[i]))) or "-"
        lines.append(f"{state.ids[i]:>3} {name:<24} {int(state.position_ticks[i]):>6} "
                     f"{state.position_norm[i]:>6.3f} {state.position_rad[i]:>7.3f} "
                     f"{state.current_a[i]:>6.3f} {state.temperature_c[i]:>5.0f}  {errors}")
    if state.fault:
        lines.append(f"fault: {state.fault}")
    return "\n".join(lines)


# -- registration -------------------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser, port: bool = True) -> None:
    if port:
        parser.add_argument("--port", required=True, help="serial port of the servo bus (or an emulator link)")
        parser.add_argument("--latency-timer", type=number(0, 255), default=None, metavar="MS",
                            help="USB adapter latency timer assumed in timeouts (default from servos.yaml)")
    parser.add_argument("--config", default=None, help="servo table (default: the configured servos.yaml)")
    parser.add_argument("--baud", type=integer(9600, 4_500_000), default=None, help="baud rate (default from servos.yaml)")


def register(registry) -> None:
    registry.group("servo", "Dynamixel servo bus: emulator and bench tools")

    p = registry.command("servo emulate", "run a Protocol 2.0 servo bus emulator on a pty", _emulate)
    p.add_argument("--link", required=True, help="symlink to create for the pty (the port to open)")
    p.add_argument("--timing", action="store_true", help="deliver packets at the speed of the baud rate")
    p.add_argument("--drop-rate", type=number(0, 1), default=0.0, help="probability of dropping a status packet")
    p.add_argument("--corrupt-rate", type=number(0, 1), default=0.0, help="probability of corrupting one")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=0, help="seed of the fault injection")
    _common(p, port=False)

    p = registry.command("servo ping", "list which servos of the table answer, with their model", _ping)
    p.add_argument("--all", action="store_true", help="broadcast ping: also find servos not in the table")
    _common(p)

    p = registry.command("servo set", "move commands or servos (name=value in [0, 1]) and keep holding",
                         _set, description="Move the named commands (e.g. jaw_open, gaze_yaw) or servos "
                         "(e.g. brow_inner_left) to normalized positions in [0, 1], velocity-limited, "
                         "and leave them holding there.")
    p.add_argument("assignments", nargs="+", metavar="NAME=VALUE")
    p.add_argument("--timeout", type=number(0, 600, low_open=True), default=5.0, help="seconds to wait for the move")
    _common(p)

    p = registry.command("servo home", "ease to the home pose, then release torque", _home)
    p.add_argument("--hold", action="store_true", help="keep torque on at home")
    p.add_argument("--timeout", type=number(0, 600, low_open=True), default=5.0, help="seconds to wait for the move")
    _common(p)

    p = registry.command("servo lag", "step one servo and fit the servo lag model (driver.servo_lag_s)", _lag,
                         description="Command one servo a small step away and back, record goal and "
                         "present position every control cycle, and fit the first-order time constant "
                         "that maps one onto the other: the value for driver.servo_lag_s (docs/servo.md). "
                         "Eases home and releases torque at the end.")
    p.add_argument("--servo", default="jaw", help="servo name from servos.yaml (default: jaw)")
    p.add_argument("--step", type=number(0, 0.5, low_open=True), default=0.1, help="step size as a fraction of the servo's range")
    p.add_argument("--seconds", type=number(0.2, 10), default=1.5, help="recording after each move (s)")
    p.add_argument("--repeats", type=integer(1, 100), default=3, help="steps to fit (the median is reported)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _common(p)

    p = registry.command("servo monitor", "print present positions, current, temperature and errors", _monitor)
    p.add_argument("--interval", type=number(0, 3600), default=0.5, help="seconds between refreshes")
    p.add_argument("--count", type=integer(0, 1_000_000_000), default=0, help="stop after N refreshes (default: until Ctrl-C)")
    _common(p)
