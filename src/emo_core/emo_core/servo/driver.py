"""ServoDriver: normalized commands in, 26 safe goal positions out, present state back.

The driver owns the bus and is driven by its caller, one control cycle per :meth:`ServoDriver.step`
(a ROS timer, the in-process pipeline, or a CLI loop). Each cycle it

1. plans: every servo's *setpoint* moves toward its target no faster than the servo's
   ``max_velocity`` -- and, when the command carries ``arrive_at``, at the speed that lands it then,
   with goals leading the setpoint by ``servo_lag_s`` x its velocity (the servo lag model: present
   follows goal as a first-order lag), so the *face* arrives at the apex, not just the goal;
2. writes all goal positions with one Sync Write (clamped to the servo limits; never NaN);
3. reads current, velocity and position of all servos with one contiguous Sync Read;
4. now and then polls temperature and hardware-error status, and handles the alert bit.

Safety: commands are validated (NaN/inf rejected before anything is sent; out-of-range clamped or
rejected); setpoints never leave the limits, which are also written into the servos' own
Min/Max_Position_Limit; Profile_Velocity is set as a hardware speed backstop; a watchdog eases the
face home when commands stop; :meth:`shutdown` homes and releases torque (also on Ctrl-C, SIGTERM and
SIGHUP, via the context manager: see :mod:`emo_core.signals`); a lost port is reported and reopened
when it comes back.

Lifecycle (the ROS lifecycle node maps onto it): ``open()`` = configure, ``activate()`` = torque on,
``deactivate()`` = home + torque off, ``close()`` = release the port.
"""
from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..clock import Clock, MonotonicClock
from ..errors import ConfigError, InputError
from ..signals import signals_deferred, stop_on_signals
from .bus import ServoBus, ServoError, TransportError
from .models import (MODEL_BY_NUMBER, OPERATING_MODE_POSITION, STATUS_RETURN_ALL, Register,
                     describe_hardware_error)
from .planner import TrajectoryPlanner
from .table import ServoTable

LOG = logging.getLogger(__name__)

#: Registers read every cycle; they are adjacent in X-series tables (126..135), so one Sync Read.
CYCLE_REGISTERS = ("Present_Current", "Present_Velocity", "Present_Position")

#: Diagnostic levels (same values as diagnostic_msgs/DiagnosticStatus).
OK, WARN, ERROR, STALE = 0, 1, 2, 3


class Link(enum.Enum):
    """The driver's hold on its port."""

    CLOSED = "closed"          # never opened, or closed: step() leaves the port alone
    CONNECTED = "connected"    # every cycle talks to the servos
    LOST = "lost"              # opened, then lost: step() reopens it every reconnect_interval_s


@dataclass
class DriverConfig:
    """Safety and timing parameters (the ``driver:`` section of servos.yaml, or ROS parameters)."""

    baudrate: int = 1_000_000
    watchdog_timeout_s: float = 0.5
    home_speed_scale: float = 0.5
    out_of_range: str = "clamp"
    servo_lag_s: float = 0.2
    #: Commands due now (or already late) get no setpoint velocity to lead -- the setpoint jumps
    #: to them -- so the velocity lead becomes a one-cycle spike of servo_lag_s / control_period_s
    #: x each frame's step (landmark noise included). With a gain > 0 they are led by feedback on
    #: the present position instead: goal = setpoint + gain x (setpoint - present), the plant's
    #: time constant shrinking to servo_lag_s / (1 + gain) with goals that move only (1 + gain)
    #: times as much as the setpoint. 0: the velocity lead for every timed command.
    now_lead_gain: float = 0.0
    max_dt_s: float = 0.05
    #: A command's arrive_at more than this far from now (either way) is refused: a stamp on the
    #: wrong clock base (wall time vs monotonic, ns vs s) would otherwise plan a crawl for hours and
    #: push the watchdog's deadline (arrive_at + watchdog_timeout_s) past any use.
    arrive_horizon_s: float = 5.0
    #: Goals move at most lead_step_factor x max_velocity x dt per control cycle, lead included: the
    #: servo-lag lead needs goals faster than the setpoint while it builds up or reverses, but a
    #: reversal of the full lead in one cycle is a jump the servo would take at Profile_Velocity.
    lead_step_factor: float = 30.0
    profile_velocity_margin: float = 1.25
    latency_timer_ms: float = 16.0
    retries: int = 2
    reconnect_interval_s: float = 0.5
    max_failed_cycles: int = 3
    status_poll_interval_s: float = 1.0
    reboot_on_hardware_error: bool = False
    reboot_backoff_s: float = 1.0
    shutdown_timeout_s: float = 3.0
    #: Interrupted (Ctrl-C, SIGTERM, SIGHUP): ease home at full max_velocity for at most this long,
    #: then torque off -- a supervisor escalates to SIGKILL within seconds, and a face left torqued
    #: mid-move by a kill is worse than one released a little short of home.
    stop_timeout_s: float = 0.6
    home_tolerance_ticks: int = 8
    control_period_s: float = 0.01
    temperature_warn_c: float = 60.0
    #: After a reboot (reboot_on_hardware_error) torque comes back only below this temperature; a
    #: servo that rebooted hotter stays released until a status poll reads it 5 C cooler.
    reboot_max_temperature_c: float = 65.0
    blocking_read: bool = True

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> "DriverConfig":
        merged = {**dict(values or {}), **{k: v for k, v in overrides.items() if v is not None}}
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - set(names))
        if unknown:
            raise ConfigError(f"unknown driver setting(s) {', '.join(unknown)}; known: {', '.join(names)}")
        config = cls(**merged)
        config.validate()
        return config

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), f.default
            kind = bool if isinstance(default, bool) else (float if isinstance(default, float) else type(default))
            ok = isinstance(value, bool) if kind is bool else (
                isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else isinstance(value, kind))
            if not ok:
                raise ConfigError(f"driver {f.name} must be {kind.__name__}, got {value!r}")
        if not (math.isfinite(self.lead_step_factor) and self.lead_step_factor >= 1.0):
            raise ConfigError(f"driver lead_step_factor must be >= 1 (goals must keep up with the setpoint), "
                              f"got {self.lead_step_factor!r}")
        if self.out_of_range not in ("clamp", "reject"):
            raise ConfigError(f"driver out_of_range must be 'clamp' or 'reject', got {self.out_of_range!r}")
        for name, least in (("baudrate", 1), ("retries", 0), ("max_failed_cycles", 1), ("home_tolerance_ticks", 0)):
            if getattr(self, name) < least:
                raise ConfigError(f"driver {name} must be >= {least}, got {getattr(self, name)!r}")
        for name in ("home_speed_scale", "max_dt_s", "control_period_s", "shutdown_timeout_s", "stop_timeout_s",
                     "arrive_horizon_s", "reboot_max_temperature_c"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"driver {name} must be a positive number, got {value!r}")
        for name in ("watchdog_timeout_s", "servo_lag_s", "now_lead_gain", "profile_velocity_margin", "latency_timer_ms",
                     "reconnect_interval_s", "status_poll_interval_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ConfigError(f"driver {name} must be >= 0, got {value!r}")


@dataclass
class Diagnostic:
    """One diagnostic status (maps 1:1 onto diagnostic_msgs/DiagnosticStatus)."""

    level: int
    name: str
    message: str
    hardware_id: str = ""
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class ServoState:
    """What the servos did, as of one control cycle (arrays in servo-table order)."""

    stamp: float
    names: tuple[str, ...]
    ids: tuple[int, ...]
    position_ticks: np.ndarray
    position_rad: np.ndarray          # relative to the servo's centre tick (2048)
    position_norm: np.ndarray         # 0..1 between the servo's limits, inversion applied
    velocity_rad_s: np.ndarray
    current_a: np.ndarray
    temperature_c: np.ndarray
    goal_ticks: np.ndarray            # last goal sent
    target_ticks: np.ndarray          # where the planner is heading
    hardware_error: np.ndarray        # Hardware_Error_Status bits per servo
    stale: np.ndarray                 # True where this cycle brought no fresh reading
    commands: np.ndarray              # the 11 normalized commands the present positions express
    torque: np.ndarray                # Torque_Enable per servo as last read or written (a hardware
                                      # error, e.g. overload, releases a servo's torque by itself)
    connected: bool = True
    torque_on: bool = False           # active, connected and every answering servo holds torque
    watchdog: bool = False            # easing home because commands stopped
    fault: str = ""                   # the last problem, in one line ("" when healthy)
    cycle: int = 0
    bus: dict[str, int] = field(default_factory=dict)

    def hardware_errors(self) -> dict[str, list[str]]:
        """Servo name -> decoded hardware-error bits, for servos that report any."""
        return {n: describe_hardware_error(int(b)) for n, b in zip(self.names, self.hardware_error) if b}

    def diagnostics(self) -> list[Diagnostic]:
        """A bus-level status plus one per servo (level from hardware errors and temperature)."""
        bus_level = OK if self.connected and not self.fault else (WARN if self.connected else ERROR)
        out = [Diagnostic(bus_level, "servo bus", self.fault or ("ok" if self.connected else "disconnected"),
                          values={"connected": str(self.connected), "torque_on": str(self.torque_on),
                                  "watchdog": str(self.watchdog), "cycle": str(self.cycle),
                                  **{k: str(v) for k, v in self.bus.items()}})]
        for i, name in enumerate(self.names):
            errors = describe_hardware_error(int(self.hardware_error[i]))
            level = ERROR if errors else (STALE if self.stale[i] else OK)
            message = ("hardware error: " + ", ".join(errors)) if errors else ("stale" if self.stale[i] else "ok")
            out.append(Diagnostic(level, f"servo {name}", message, hardware_id=f"dxl id {self.ids[i]}", values={
                "position_ticks": str(int(self.position_ticks[i])), "goal_ticks": str(int(self.goal_ticks[i])),
                "current_a": f"{self.current_a[i]:.3f}", "temperature_c": f"{self.temperature_c[i]:.0f}"}))
        return out


class ServoDriver:
    """Drives the servos of a :class:`ServoTable` on one serial port (see module docstring)."""

    def __init__(self, table: ServoTable, port: str, config: DriverConfig | None = None, *,
                 clock: Clock | None = None, sleep: Callable[[float], None] | None = None,
                 bus: ServoBus | None = None) -> None:
        self.table = table
        self.config = config or DriverConfig.from_mapping(table.driver, baudrate=table.baudrate)
        self.config.validate()
        self.clock: Clock = clock or MonotonicClock()
        self._sleep = sleep or time.sleep
        self.bus = bus or ServoBus(port, self.config.baudrate, latency_timer_ms=self.config.latency_timer_ms,
                                   retries=self.config.retries, blocking_read=self.config.blocking_read)
        n = len(table)
        self._ids = list(table.ids)
        self._lo = table.min_ticks.astype(np.float64)
        self._hi = table.max_ticks.astype(np.float64)
        self._home = table.home_ticks.astype(np.float64)
        self._vmax = table.max_velocity
        models = [s.model for s in table.servos]
        self._center = np.array([m.center_ticks for m in models], np.float64)
        self._ticks_per_rad = np.array([m.ticks_per_rad for m in models], np.float64)
        self._current_unit = np.array([m.current_unit_a for m in models], np.float64)
        self._velocity_unit = np.array([m.velocity_unit_rpm * 2 * math.pi / 60 for m in models], np.float64)
        self._regs = self._shared_registers()
        # Hardware speed backstop written into each servo's Profile_Velocity.
        self._profile_units = {s.id: s.model.velocity_units(s.max_velocity * self.config.profile_velocity_margin)
                               for s in table.servos}
        self._block = self._cycle_block()
        self.planner = TrajectoryPlanner(self._lo, self._hi, self._home, self._vmax, self.config)
        self._present = self._home.astype(np.int64)
        self._velocity = np.zeros(n)
        self._current = np.zeros(n)
        self._temperature = np.full(n, np.nan)
        self._hw_error = np.zeros(n, np.int64)
        self._torque_state = np.zeros(n, bool)
        self._cooling: set[int] = set()          # rebooted too hot: torque stays off until it cools
        self._stale = np.ones(n, bool)
        self.link = Link.CLOSED
        self._configured = False                 # open(configure=True): we write the safety registers
        self._active = False                     # torque on (activate .. deactivate)
        self._missing: set[int] = set()          # servos that stopped answering mid-run
        self._next_probe_t = -math.inf
        self._next_poll_t = -math.inf
        self._next_reconnect_t = -math.inf
        self._last_reboot_t: dict[int, float] = {}
        self._failed_cycles = 0
        self._cycle = 0
        self._fault = ""
        self._signals: contextlib.ExitStack | None = None
        self.clamped = 0            # command values clamped into [0, 1] so far

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.link is Link.CONNECTED

    @property
    def active(self) -> bool:
        return self._active

    def open(self, configure: bool = True) -> ServoState:
        """Open the port, check every servo answers with the right model, and (if ``configure``)
        write the safety registers: Return_Delay_Time 0, position mode, position limits, Profile_Velocity.
        ``configure=False`` only reads (the monitor)."""
        self._configured = configure
        self._connect()              # CONNECTED: from now on a lost port is reopened by step()
        return self.state()

    def activate(self) -> None:
        """Torque on, holding the present pose; the watchdog clock starts now."""
        self._require_connected("activate")
        now = self.clock.now()
        self._read_cycle()
        self.planner.hold(self._present)
        self._send_goals()
        self._torque(True)
        self._active = True
        self.planner.start(now)
        LOG.info("servo torque on (%d servos)", len(self._ids))

    def deactivate(self, timeout_s: float | None = None, speed_scale: float | None = None) -> None:
        """Ease home (velocity-limited, at ``speed_scale`` x max_velocity, default home_speed_scale),
        then torque off. Torque goes off even if homing times out."""
        if not self._active:
            return
        try:
            if self.connected:
                self.home(speed_scale=speed_scale)
                self.wait_until_settled(timeout_s if timeout_s is not None else self.config.shutdown_timeout_s)
        finally:
            self._active = False
            self._release()

    def close(self) -> None:
        """Release the port without moving anything (torque stays as it is)."""
        self.bus.close()
        self.link = Link.CLOSED

    def shutdown(self, interrupted: bool | None = None) -> None:
        """Home, torque off, close. Safe to call twice. A Ctrl-C during homing skips to torque off;
        bus errors are logged, not raised (shutdown runs in ``finally`` blocks and ``__exit__``).

        ``interrupted`` (default: whether an interrupt -- Ctrl-C, SIGTERM, SIGHUP, see
        :mod:`emo_core.signals` -- is propagating): the homing is the quick one, full max_velocity for
        at most ``stop_timeout_s``. A ROS node stopped by a signal passes True."""
        if interrupted is None:
            interrupted = isinstance(sys.exc_info()[1], KeyboardInterrupt)
        try:
            if self._active:
                try:
                    if interrupted:
                        LOG.warning("interrupted: easing home for up to %.1f s, then torque off",
                                    self.config.stop_timeout_s)
                        self.deactivate(self.config.stop_timeout_s, speed_scale=1.0)
                    else:
                        self.deactivate()
                except KeyboardInterrupt:
                    LOG.warning("interrupted while homing: releasing torque now")
                    self._active = False
                    self._release()
                    raise
                except (TransportError, ServoError) as exc:
                    LOG.error("servo shutdown incomplete: %s", exc)
        finally:
            self.close()

    def __enter__(self) -> "ServoDriver":
        # SIGTERM/SIGHUP raise like Ctrl-C while the block runs, so __exit__ homes and releases.
        stack = contextlib.ExitStack()
        stack.enter_context(stop_on_signals())
        try:
            if self.link is Link.CLOSED:
                self.open()
        except BaseException:
            stack.close()
            raise
        self._signals = stack
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.shutdown()
        finally:
            if self._signals is not None:
                self._signals.close()
                self._signals = None

    # -- commands -----------------------------------------------------------------------------
    def command(self, positions: Mapping[str, float] | np.ndarray, arrive_at: float | None = None) -> None:
        """Set new targets: 11 commands, 16 channels (commands + gaze/neck), one value per servo, or
        a mapping of command/target/servo names to normalized values. ``arrive_at`` (clock seconds)
        asks the face to get there then; without it servos move at their max velocity.

        NaN/inf (anywhere in the command) raise InputError and change nothing. Values outside [0, 1]
        are clamped (counted in :attr:`clamped`) or, with ``out_of_range: reject``, raise InputError.
        An ``arrive_at`` more than ``arrive_horizon_s`` from now (a stamp on another clock base) is
        refused the same way, so no command can postpone the watchdog by more than that.
        """
        norm, mask = self.table.resolve(positions)
        now = self.clock.now()
        arrive = self._check_arrive_at(arrive_at, now)
        outside = mask & ((norm < 0.0) | (norm > 1.0))
        if outside.any():
            detail = ", ".join(f"{self.table.names[i]}={norm[i]:.3g}" for i in np.flatnonzero(outside)[:4])
            if self.config.out_of_range == "reject":
                raise InputError(f"command outside [0, 1] ({detail}); nothing was sent")
            self.clamped += int(outside.sum())
            LOG.debug("clamped command values into [0, 1]: %s", detail)
        ticks = self.table.norm_to_ticks(norm)        # clips to [0, 1], so within the limits
        self.planner.set_targets(mask, ticks, arrive, now)

    def home(self, arrive_at: float | None = None, speed_scale: float | None = None) -> None:
        """Target the home pose (at ``speed_scale`` x max_velocity, default home_speed_scale, unless
        ``arrive_at`` says otherwise; it is checked as in :meth:`command`)."""
        arrive = self._check_arrive_at(arrive_at, self.clock.now())
        scale = self.config.home_speed_scale if speed_scale is None else _number(speed_scale, "home speed_scale")
        if not 0.0 < scale <= 1.0:
            raise InputError(f"home speed_scale must be in (0, 1], got {speed_scale!r}")
        self.planner.go_home(arrive, scale)

    def _check_arrive_at(self, arrive_at: object, now: float) -> float | None:
        """``arrive_at`` as a float within ``arrive_horizon_s`` of now, or InputError."""
        if arrive_at is None:
            return None
        arrive = _number(arrive_at, "arrive_at")
        horizon = self.config.arrive_horizon_s
        if abs(arrive - now) > horizon:
            raise InputError(f"arrive_at={arrive:.6g} is {arrive - now:+.3g} s from now (clock {now:.6g}); "
                             f"more than arrive_horizon_s={horizon:g} s away -- another clock base? "
                             "nothing was sent")
        return arrive

    # -- the control cycle --------------------------------------------------------------------
    def step(self, now: float | None = None) -> ServoState:
        """One control cycle: plan, Sync Read the state, Sync Write the goals (when active), decode.

        The goals are planned before the read (planning is open-loop on setpoints) and decoding
        happens after the write, so between the last status packet and the next goal packet there
        is nothing but the SDK itself: the bus never waits for our Python. Transport problems never
        raise here: they show in the returned state (``connected``, ``fault``) and the port is
        reopened when it comes back.
        """
        now = self.clock.now() if now is None else float(now)
        if self.link is not Link.CONNECTED:
            if self.link is Link.LOST and now >= self._next_reconnect_t:
                self._reconnect(now)
            return self.state(now)
        try:
            if self._active:
                self.planner.plan(now, self._present)
            raw = self._read_block()
            if self._active:
                self._send_goals()
            self._decode_block(raw)
            if now >= self._next_poll_t:
                self._next_poll_t = now + self.config.status_poll_interval_s
                self._poll_status()
            self._handle_alerts(now)
            if self._missing and now >= self._next_probe_t:
                self._probe_missing(now)
            self._failed_cycles = 0
            self._update_fault()
        except TransportError as exc:
            self._on_transport_error(exc, now)
        except ServoError as exc:
            self._set_fault(str(exc))
        self._cycle += 1
        return self.state(now)

    def read_state(self) -> ServoState:
        """Read everything (cycle block, temperature, hardware errors) without writing anything."""
        self._require_connected("read state")
        self._read_cycle()
        self._poll_status()
        return self.state()

    def wait_until_settled(self, timeout_s: float, tolerance: int | None = None) -> ServoState:
        """Run control cycles (paced by the injected sleep) until the setpoints reached their targets
        and the present positions are within ``tolerance`` ticks of them, or ``timeout_s`` passes."""
        tolerance = self.config.home_tolerance_ticks if tolerance is None else tolerance
        deadline = self.clock.now() + timeout_s
        state = self.step()
        while self.clock.now() < deadline and self.connected:
            if self._settled(tolerance):
                return state
            self._sleep(self.config.control_period_s)
            state = self.step()
        if self.connected and not self._settled(tolerance):
            LOG.warning("servos did not settle within %.1f s (worst %s)", timeout_s, self._worst_error())
        return state

    def state(self, now: float | None = None) -> ServoState:
        """The latest state, without touching the bus."""
        present = self._present.astype(np.float64)
        return ServoState(
            stamp=self.clock.now() if now is None else now,
            names=self.table.names, ids=tuple(self._ids),
            position_ticks=self._present.copy(),
            position_rad=(present - self._center) / self._ticks_per_rad,
            position_norm=self.table.ticks_to_norm(present),
            velocity_rad_s=self._velocity.copy(),
            current_a=self._current.copy(),
            temperature_c=self._temperature.copy(),
            goal_ticks=self.planner.goal.copy(),
            target_ticks=np.rint(self.planner.current_target).astype(np.int64),
            hardware_error=self._hw_error.copy(),
            stale=self._stale.copy(),
            commands=self.table.ticks_to_commands(present),
            torque=self._torque_state.copy(),
            connected=self.connected, torque_on=self._torque_held(),
            watchdog=self.planner.watchdog, fault=self._fault, cycle=self._cycle,
            bus={**vars(self.bus.stats), "clamped": self.clamped})

    def _torque_held(self) -> bool:
        """Torque on as the servos report it: every answering servo, not just the driver's intent."""
        rows = [k for k, i in enumerate(self._ids) if i not in self._missing]
        return bool(self._active and self.connected and rows and self._torque_state[rows].all())

    # -- planning (servo/planner.py) -----------------------------------------------------------
    def _settled(self, tolerance: int) -> bool:
        return self.planner.settled(self._present, self._stale | (self._hw_error != 0), tolerance)

    def _worst_error(self) -> str:
        i, target = self.planner.worst(self._present)
        return f"{self.table.names[i]}: {int(self._present[i])} vs {target}"

    # -- bus work -----------------------------------------------------------------------------
    def _shared_registers(self) -> dict[str, Register]:
        """Registers by name, checked to sit at the same address in every model on the bus."""
        names = CYCLE_REGISTERS + ("Goal_Position", "Torque_Enable", "Present_Temperature",
                                   "Hardware_Error_Status", "Profile_Velocity", "Return_Delay_Time",
                                   "Operating_Mode", "Max_Position_Limit", "Min_Position_Limit",
                                   "Status_Return_Level", "Model_Number")
        regs: dict[str, Register] = {}
        for model in self.table.models().values():
            for name in names:
                reg = model.reg(name)
                if name in regs and (regs[name].address, regs[name].size) != (reg.address, reg.size):
                    raise ConfigError(f"{name} sits at different addresses in the models on this bus; "
                                      "one Sync Write/Read cannot serve them all")
                regs[name] = reg
        return regs

    def _cycle_block(self) -> tuple[int, int, dict[str, tuple[int, Register]]]:
        regs = [self._regs[n] for n in CYCLE_REGISTERS]
        start = min(r.address for r in regs)
        end = max(r.end for r in regs)
        if end - start > sum(r.size for r in regs) + 8:
            raise ConfigError("the per-cycle registers are not contiguous in this model's control table")
        return start, end - start, {r.name: (r.address - start, r) for r in regs}

    def _connect(self, require_all: bool = True) -> None:
        self.bus.open()
        try:
            self._verify_servos(require_all)
            if self._configured:
                self._configure_servos(self._present_ids())
            else:
                delays = self._read_register("Return_Delay_Time")
                self.bus.return_delay_us = 2.0 * max(delays.values())
            self._read_cycle()
            self._poll_status()
        except BaseException:
            self.bus.close()
            raise
        self.link = Link.CONNECTED
        self._failed_cycles = 0
        self._next_poll_t = self.clock.now() + self.config.status_poll_interval_s

    def _verify_servos(self, require_all: bool) -> None:
        """Ping every servo: all must answer with the table's model (at open), or at least one
        (on reconnect: the silent ones are marked missing and probed later)."""
        missing, wrong = [], []
        for spec in self.table.servos:
            try:
                number = self.bus.ping(spec.id)
            except TransportError as exc:
                if exc.port_lost:
                    raise
                missing.append(spec)
                continue
            if number != spec.model.model_number:
                found = MODEL_BY_NUMBER.get(number)
                wrong.append(f"{spec.name} (id {spec.id}) is model {number}"
                             f"{f' ({found.name})' if found else ''}, the table says {spec.model.name}")
        if wrong:
            raise ConfigError(f"servo model mismatch on {self.bus.port_name}: {'; '.join(wrong)}")
        if missing and (require_all or len(missing) == len(self.table)):
            raise TransportError(f"servo(s) not answering on {self.bus.port_name}: {self._describe(missing)}",
                                 port=self.bus.port_name, operation="ping", ids=[s.id for s in missing])
        self._missing = {s.id for s in missing}

    def _configure_servos(self, ids: list[int]) -> None:
        """Write what safety and bus timing need, touching EEPROM only where it differs."""
        r = self._regs
        lo = dict(zip(self._ids, self.table.min_ticks.tolist()))
        hi = dict(zip(self._ids, self.table.max_ticks.tolist()))
        want = {
            "Return_Delay_Time": {i: 0 for i in ids},             # answer at once: bus time
            "Operating_Mode": {i: OPERATING_MODE_POSITION for i in ids},
            "Min_Position_Limit": {i: lo[i] for i in ids},        # the servo's own hard limits
            "Max_Position_Limit": {i: hi[i] for i in ids},
        }
        torque = self._read_register("Torque_Enable", ids)
        for name, values in want.items():
            present = self._read_register(name, ids)
            for dxl_id, value in values.items():
                if present[dxl_id] == value:
                    continue
                if torque[dxl_id]:
                    # EEPROM is locked while torque is on; releasing one servo briefly is the only way.
                    self.bus.write(dxl_id, r["Torque_Enable"], 0)
                    torque[dxl_id] = 0
                self.bus.write(dxl_id, r[name], value)
        self.bus.return_delay_us = 0.0
        # Every instruction answered: reads and writes alike (retries and errors need the status).
        if any(v != STATUS_RETURN_ALL for v in self._read_register("Status_Return_Level", ids).values()):
            self.bus.sync_write(r["Status_Return_Level"], {i: STATUS_RETURN_ALL for i in ids})
        if self.config.profile_velocity_margin > 0:
            self.bus.sync_write(r["Profile_Velocity"], {i: self._profile_units[i] for i in ids})

    def _present_ids(self) -> list[int]:
        return [i for i in self._ids if i not in self._missing]

    def _read_register(self, name: str, ids: list[int] | None = None) -> dict[int, int]:
        """One Sync Read of a register; every id must answer."""
        reg = self._regs[name]
        data = self.bus.sync_read(reg.address, reg.size, ids if ids is not None else self._present_ids(), name)
        return {i: reg.decode(d) for i, d in data.items()}

    def _read_cycle(self) -> None:
        self._decode_block(self._read_block())

    def _read_block(self) -> dict[int, bytes]:
        """One contiguous Sync Read of current, velocity and position (10 bytes per servo).
        A servo that stops answering is marked missing (and probed later); the others go on."""
        start, size, _ = self._block
        ids = self._present_ids()
        if not ids:
            raise TransportError(f"no servo answers on {self.bus.port_name}", port=self.bus.port_name,
                                 operation="sync read")
        data = self.bus.sync_read(start, size, ids, f"{CYCLE_REGISTERS[0]}..{CYCLE_REGISTERS[-1]}",
                                  allow_missing=True)
        lost = [i for i in ids if i not in data]
        if lost:
            self._missing.update(lost)
            self._next_probe_t = self.clock.now() + self.config.reconnect_interval_s
            LOG.error("servo(s) stopped answering: %s", self._describe(self.table.by_id(i) for i in lost))
        return data

    def _decode_block(self, data: dict[int, bytes]) -> None:
        _, size, layout = self._block
        rows = [k for k, i in enumerate(self._ids) if i in data]
        self._stale[:] = True
        if not rows:
            return
        raw = np.frombuffer(b"".join(data[self._ids[k]] for k in rows), np.uint8).reshape(len(rows), size)
        offset, _ = layout["Present_Current"]
        self._current[rows] = raw[:, offset:offset + 2].copy().view("<i2")[:, 0] * self._current_unit[rows]
        offset, _ = layout["Present_Velocity"]
        self._velocity[rows] = raw[:, offset:offset + 4].copy().view("<i4")[:, 0] * self._velocity_unit[rows]
        offset, _ = layout["Present_Position"]
        self._present[rows] = raw[:, offset:offset + 4].copy().view("<i4")[:, 0]
        self._stale[rows] = False

    def _poll_status(self) -> None:
        ids = self._present_ids()
        temperature = self._read_register("Present_Temperature", ids)
        errors = self._read_register("Hardware_Error_Status", ids)
        torque = self._read_register("Torque_Enable", ids)
        for k, dxl_id in enumerate(self._ids):
            if dxl_id in temperature:
                self._temperature[k] = temperature[dxl_id]
                self._set_hw_error(k, errors[dxl_id])
                self._torque_state[k] = bool(torque[dxl_id])
        self._recheck_cooling()
        hot = [f"{self.table.names[k]} {t:.0f} C" for k, t in enumerate(self._temperature)
               if t >= self.config.temperature_warn_c]
        if hot:
            LOG.warning("servo temperature high: %s", ", ".join(hot))

    def _probe_missing(self, now: float) -> None:
        """Ping the servos that went silent; bring back the ones that answer (from where they are)."""
        self._next_probe_t = now + self.config.reconnect_interval_s
        back = []
        for dxl_id in sorted(self._missing):
            try:
                self.bus.ping(dxl_id, tries=1)
            except TransportError as exc:
                if exc.port_lost:
                    raise
                continue
            back.append(dxl_id)
        if not back:
            return
        if self._configured:
            self._configure_servos(back)
        self._missing.difference_update(back)
        rows = [self._ids.index(i) for i in back]
        self._read_cycle()
        self.planner.resync(rows, self._present)
        if self._active:
            self._send_goals()
            reg = self._regs["Torque_Enable"]
            for dxl_id in back:
                self.bus.write(dxl_id, reg, 1)
                self._torque_state[self._ids.index(dxl_id)] = True
        LOG.warning("servo(s) answering again: %s", self._describe(self.table.by_id(i) for i in back))

    def _handle_alerts(self, now: float) -> None:
        """A status packet with the alert bit: read that servo's Hardware_Error_Status, maybe reboot."""
        for dxl_id in sorted(self.bus.take_alerts()):
            k = self._ids.index(dxl_id)
            self._set_hw_error(k, self.bus.read(dxl_id, self._regs["Hardware_Error_Status"]))
            self._torque_state[k] = bool(self.bus.read(dxl_id, self._regs["Torque_Enable"]))
            if self._hw_error[k] and self.config.reboot_on_hardware_error:
                self._reboot(k, now)

    def _set_hw_error(self, k: int, bits: int) -> None:
        if bits and bits != self._hw_error[k]:
            LOG.error("servo %s (id %d): hardware error %s (0x%02x); the servo released its torque",
                      self.table.names[k], self._ids[k], ", ".join(describe_hardware_error(bits)), bits)
        elif not bits and self._hw_error[k]:
            LOG.info("servo %s (id %d): hardware error cleared", self.table.names[k], self._ids[k])
        self._hw_error[k] = bits

    def _reboot(self, k: int, now: float) -> None:
        dxl_id = self._ids[k]
        if now - self._last_reboot_t.get(dxl_id, -math.inf) < self.config.reboot_backoff_s:
            return
        self._last_reboot_t[dxl_id] = now
        LOG.warning("rebooting servo %s (id %d) to clear its hardware error", self.table.names[k], dxl_id)
        self.bus.reboot(dxl_id)
        self._sleep(0.05)                      # the servo boots before it answers again
        position = self.bus.read(dxl_id, self._regs["Present_Position"])
        self._present[k] = position
        self.planner.resync([k], self._present)
        self.bus.write(dxl_id, self._regs["Goal_Position"], int(self.planner.goal[k]))
        if self.config.profile_velocity_margin > 0:
            self.bus.write(dxl_id, self._regs["Profile_Velocity"], self._profile_units[dxl_id])
        self._torque_state[k] = False                  # a reboot always comes up with torque off
        self._set_hw_error(k, self.bus.read(dxl_id, self._regs["Hardware_Error_Status"]))
        # An overload or overheating reboot must not re-enable a servo that is still hot.
        self._temperature[k] = self.bus.read(dxl_id, self._regs["Present_Temperature"])
        if self._temperature[k] >= self.config.reboot_max_temperature_c:
            self._cooling.add(dxl_id)
            LOG.error("servo %s (id %d) rebooted at %.0f C (>= reboot_max_temperature_c %.0f C): torque stays "
                      "off until it cools", self.table.names[k], dxl_id, self._temperature[k],
                      self.config.reboot_max_temperature_c)
        elif self._active and not self._hw_error[k]:
            self.bus.write(dxl_id, self._regs["Torque_Enable"], 1)
            self._torque_state[k] = True

    def _recheck_cooling(self) -> None:
        """Re-enable servos held off after a hot reboot once they read 5 C below the limit."""
        for dxl_id in sorted(self._cooling):
            k = self._ids.index(dxl_id)
            if self._temperature[k] >= self.config.reboot_max_temperature_c - 5.0 or self._hw_error[k]:
                continue
            self._cooling.discard(dxl_id)
            if self._active:
                position = self.bus.read(dxl_id, self._regs["Present_Position"])
                self._present[k] = position
                self.planner.resync([k], self._present)
                self.bus.write(dxl_id, self._regs["Goal_Position"], int(self.planner.goal[k]))
                self.bus.write(dxl_id, self._regs["Torque_Enable"], 1)
                self._torque_state[k] = True
            LOG.warning("servo %s (id %d) cooled to %.0f C: torque back on", self.table.names[k], dxl_id,
                        self._temperature[k])

    def _send_goals(self) -> None:
        goal = self.planner.goals()
        reg = self._regs["Goal_Position"]
        self.bus.sync_write_raw(reg.address, reg.size,
                                {i: g.to_bytes(4, "little", signed=True) for i, g in zip(self._ids, goal.tolist())},
                                reg.name)
        self.planner.sent(goal)

    def _torque(self, on: bool) -> None:
        """Sync Write Torque_Enable, then read it back and insist servo by servo (release must hold)."""
        reg = self._regs["Torque_Enable"]
        value = int(on)
        ids = self._present_ids()
        self.bus.sync_write(reg, {i: value for i in ids})
        state = self._read_register("Torque_Enable", ids)
        for dxl_id in ids:
            k = self._ids.index(dxl_id)
            if state[dxl_id] != value and not (on and (self._hw_error[k] or dxl_id in self._cooling)):
                self.bus.write(dxl_id, reg, value)     # (a servo shut down by a hardware error stays off)
                state[dxl_id] = value
            self._torque_state[k] = bool(state[dxl_id])

    def _release(self) -> None:
        """Torque off on every servo we can reach; say loudly which ones we could not."""
        if not self.connected:
            LOG.error("servo port %s is gone: cannot release torque", self.bus.port_name)
            return
        with signals_deferred():           # a second Ctrl-C/SIGTERM must not cut the release short
            self._torque(False)
        if self._missing:
            LOG.error("torque not released on silent servo(s): %s",
                      self._describe(self.table.by_id(i) for i in self._missing))
        LOG.info("servos homed, torque off")

    # -- faults and reconnection ----------------------------------------------------------------
    def _on_transport_error(self, exc: TransportError | ServoError, now: float) -> None:
        """A failed cycle: the port is given up (LOST, reopened later) when it is gone or after
        max_failed_cycles in a row; otherwise the fault is only reported."""
        self._failed_cycles += 1
        port_lost = isinstance(exc, TransportError) and exc.port_lost
        if port_lost or self._failed_cycles >= self.config.max_failed_cycles:
            self.link = Link.LOST
            self.bus.close()
            self._stale[:] = True
            self._next_reconnect_t = now + self.config.reconnect_interval_s
            self._set_fault(f"{exc}; reconnecting every {self.config.reconnect_interval_s:g} s")
        else:
            self._set_fault(str(exc))

    def _reconnect(self, now: float) -> None:
        self._next_reconnect_t = now + self.config.reconnect_interval_s
        try:
            self._connect(require_all=False)
        except (TransportError, ServoError, ConfigError) as exc:
            LOG.debug("reconnect to %s failed: %s", self.bus.port_name, exc)
            return
        LOG.warning("servo port %s is back: reconnected", self.bus.port_name)
        self._fault = ""
        if self._active:
            # Resume from where the servos are now (they may have moved or rebooted meanwhile).
            target, arrive = self.planner.target.copy(), self.planner.arrive_at.copy()
            try:
                self.planner.hold(self._present)
                self._send_goals()
                self._torque(True)
            except (TransportError, ServoError) as exc:
                self._on_transport_error(exc, now)     # a ServoError stays one (its errors by id)
                return
            self.planner.restore_targets(target, arrive, now)

    def _set_fault(self, message: str) -> None:
        if message != self._fault:
            LOG.error("%s", message)
        self._fault = message

    def _update_fault(self) -> None:
        """After a good cycle the fault line lists what is still wrong (silent servos, hw errors)."""
        parts = []
        if self._missing:
            parts.append("servo(s) not answering: " + self._describe(self.table.by_id(i) for i in sorted(self._missing)))
        still = np.flatnonzero(self._hw_error)
        if still.size:
            parts.append("hardware error: " + "; ".join(
                f"{self.table.names[k]} (id {self._ids[k]}) {', '.join(describe_hardware_error(int(self._hw_error[k])))}"
                for k in still))
        message = "; ".join(parts)
        if self._fault and not message:
            LOG.info("servo bus healthy again")
        self._fault = message

    @staticmethod
    def _describe(specs) -> str:
        return ", ".join(f"{s.name} (id {s.id})" for s in specs)

    def _require_connected(self, what: str) -> None:
        if not self.connected:
            raise TransportError(f"cannot {what}: servo port {self.bus.port_name} is not connected",
                                 port=self.bus.port_name, operation=what, port_lost=True)


def _number(value: object, what: str) -> float:
    """A finite real number, or InputError (strings, None, arrays, 10**400, NaN, inf all refused)."""
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{what}={value!r} is not a number; nothing was sent")
    try:
        number = float(value)
    except OverflowError:
        raise InputError(f"{what} is too large to be a number of seconds; nothing was sent") from None
    if not math.isfinite(number):
        raise InputError(f"{what}={value} is not finite; nothing was sent")
    return number


def request_realtime(priority: int) -> str:
    """Run the calling thread under SCHED_FIFO at ``priority`` (Linux, where permitted), as a robot's
    control loop should: the driver blocks in select() between packets, so it cannot starve the
    machine, and the kernel wakes it the moment a status packet lands. Returns the policy in effect."""
    if priority <= 0 or not hasattr(os, "sched_setscheduler"):
        return "default"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError:
        return "default (SCHED_FIFO not permitted)"
    return f"SCHED_FIFO {priority}"


def release_realtime() -> None:
    """Back to ordinary scheduling for the calling thread."""
    if hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass


__all__ = ["DriverConfig", "Diagnostic", "Link", "ServoDriver", "ServoState", "release_realtime",
           "request_realtime"]
