"""SimRobot: the robot of ``emo demo`` -- servo driver -> bus emulator (pty) -> digital twin.

The real :class:`~emo_core.servo.ServoDriver` talks through the real ``dynamixel_sdk`` to the
:class:`~emo_core.servo.BusEmulator` on a pseudo-terminal, and the digital twin turns the 11
commands the servos *actually are at* (from their present positions) into the robot's face. The
driver, the emulator's mechanics and the command queue all run on one :class:`ManualClock` that
this class advances in media time, one control period at a time, so a run is reproducible: only
the bytes travel in real time. Bus timing (``bus_timing``) only changes how long a run takes on
the wall clock, never what the servos do in media time, so it is off by default.

The servos are the emulator's plant model (``servos.yaml`` ``emulator.response_time_s``: each servo
responds to its goal as a first-order lag, no faster than its profile velocity), and the driver
leads timed goals by its own lag model (``driver.servo_lag_s``), so a prediction's ``execute_at``
is when the *face* gets there; a mimicking robot, which only ever asks for "now", lags.

Commands reach the driver ``input_latency_s`` after the stamp of the frame they derive from: the
camera's exposure-to-host delay (a frame is stamped when it is exposed and arrives about a frame
later on a USB camera). The pipeline's own compute time (milliseconds, measured separately) is
not added, so the synchrony figures do not depend on how loaded the machine is.
"""
from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass

import numpy as np

from ..clock import ManualClock
from ..errors import ConfigError
from ..schema import COMMAND_NAMES, N_COMMANDS
from ..servo import BusEmulator, DriverConfig, ServoDriver, ServoTable
from ..servo.table import TARGET_NAMES
from ..twin import DigitalTwin
from .core import FaceCommand

LOG = logging.getLogger(__name__)

#: Longest wait (wall clock) for the emulator to apply a cycle's goals (a port that went away).
GOAL_WAIT_S = 1.0


@dataclass(frozen=True)
class SimConfig:
    control_period_s: float = 0.01        # the driver's control cycle (100 Hz, as on the robot)
    input_latency_s: float = 1.0 / 30.0   # frame exposure -> command at the driver (camera delay)
    bus_timing: bool = False              # emulate 1 Mbps byte timing (wall-clock only; see above)
    servo_lag_s: float | None = None      # override the driver's servo lag model (servos.yaml driver:)
    now_lead_gain: float | None = None    # override the driver's feedback lead of commands due now
    response_time_s: float | None = None  # override the plant's response time (servos.yaml emulator:)
    #: Generous read timeouts: on a loaded machine a late pty thread must not turn into retries.
    latency_timer_ms: float = 40.0

    def __post_init__(self) -> None:
        if not 0.001 <= self.control_period_s <= 0.1:
            raise ConfigError(f"sim control period must be in [0.001, 0.1] s, got {self.control_period_s}")
        if self.input_latency_s < 0:
            raise ConfigError("sim input latency must be >= 0")
        for name in ("servo_lag_s", "response_time_s"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 2.0:
                raise ConfigError(f"sim {name} must be in [0, 2] s, got {value}")


@dataclass
class RobotTrace:
    """What the robot did: per control cycle, the time, the 11 commands its servos were at and the
    11 commands its goal positions expressed (what was sent, servo-lag lead included)."""

    times: np.ndarray       # (N,) clock seconds
    commands: np.ndarray    # (N, 11)
    goals: np.ndarray | None = None    # (N, 11)


class SimRobot:
    """``with SimRobot() as robot: robot.submit(cmd, deliver_at); robot.advance_to(t); robot.face()``."""

    def __init__(self, twin: DigitalTwin | None = None, table: ServoTable | None = None,
                 config: SimConfig | None = None, start_time: float = 0.0) -> None:
        self.config = config or SimConfig()
        self.table = table or ServoTable.load()
        self.twin = twin or DigitalTwin(seed=0)
        self.clock = ManualClock(start_time)
        overrides = {"latency_timer_ms": self.config.latency_timer_ms,
                     "control_period_s": self.config.control_period_s}
        if self.config.servo_lag_s is not None:
            overrides["servo_lag_s"] = self.config.servo_lag_s
        if self.config.now_lead_gain is not None:
            overrides["now_lead_gain"] = self.config.now_lead_gain
        self.driver_config = DriverConfig.from_mapping(self.table.driver, baudrate=self.table.baudrate, **overrides)
        plant = {} if self.config.response_time_s is None else {"response_time_s": self.config.response_time_s}
        self.emulator = BusEmulator.from_table(self.table, self._calm_positions(), timing=self.config.bus_timing,
                                               clock=self.clock, baudrate=self.table.baudrate, **plant)
        self.driver: ServoDriver | None = None
        self._queue: list[tuple[float, int, FaceCommand]] = []
        self._order = itertools.count()
        self._times: list[float] = []
        self._commands: list[np.ndarray] = []
        self._goals: list[np.ndarray] = []
        self._joints: list[np.ndarray] = []     # present gaze/neck channels (TARGET_NAMES order)
        self.faults: list[str] = []

    def _calm_positions(self) -> dict[int, float]:
        """Servos power up at the twin's calm face (the table's home can differ from it), so a run
        starts from the face the pipeline commands before it has calibrated."""
        norm, mask = self.table.resolve(self.twin.calm_commands())
        ticks = self.table.norm_to_ticks(norm)
        return {s.id: float(round(ticks[i])) for i, s in enumerate(self.table.servos) if mask[i]}

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "SimRobot":
        self.emulator.start()
        try:
            self.driver = ServoDriver(self.table, self.emulator.port, self.driver_config, clock=self.clock,
                                      sleep=self.clock.advance)
            self.driver.open()
            self.driver.activate()
        except BaseException:
            self.emulator.stop()
            raise
        return self

    def stop(self) -> None:
        if self.driver is not None:
            self.driver.shutdown()        # eases home on the manual clock, torque off, port closed
            self.driver = None
        self.emulator.stop()

    def __enter__(self) -> "SimRobot":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- commands and time --------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    def submit(self, command: FaceCommand, deliver_at: float | None = None, offset: float = 0.0) -> None:
        """Queue a command for the driver at ``deliver_at`` (clock s; default: its stamp plus the
        input latency). ``offset`` maps the command's media-time stamps onto this clock."""
        when = (command.stamp + offset + self.config.input_latency_s) if deliver_at is None else deliver_at
        heapq.heappush(self._queue, (when, next(self._order), _shifted(command, offset)))

    def advance_to(self, t: float) -> None:
        """Run control cycles until the clock reaches ``t``, handing queued commands over on time."""
        driver = self._require_driver()
        period = self.config.control_period_s
        while self.clock.now() + period <= t + 1e-9:
            self.clock.advance(period)
            now = self.clock.now()
            while self._queue and self._queue[0][0] <= now + 1e-9:
                _, _, cmd = heapq.heappop(self._queue)
                # Expression commands carry the 11 commands; others (gaze, neck) name their channels.
                positions = cmd.positions if cmd.names == COMMAND_NAMES else dict(zip(cmd.names, map(float, cmd.positions)))
                driver.command(positions, arrive_at=cmd.execute_at)
            writes = self.emulator.stats.sync_writes
            state = driver.step(now)
            self._wait_for_goals(writes)
            if state.fault and (not self.faults or self.faults[-1] != state.fault):
                self.faults.append(state.fault)
                LOG.warning("sim robot: %s", state.fault)
            self._times.append(now)
            self._commands.append(state.commands.astype(np.float32))
            self._goals.append(self.table.ticks_to_commands(state.goal_ticks).astype(np.float32))
            self._joints.append(self.table.ticks_to_channels(state.position_ticks)[N_COMMANDS:].astype(np.float32))

    def _wait_for_goals(self, writes_before: int) -> None:
        """Wait until the emulator has applied this cycle's goal Sync Write (reproducible runs)."""
        if not self.emulator.wait_for_sync_writes(writes_before, GOAL_WAIT_S):
            LOG.debug("sim robot: the emulator did not apply a goal write within %.1f s", GOAL_WAIT_S)

    def settle(self, seconds: float = 0.5) -> None:
        """Ease to the calm face and wait, then forget the trace (between runs on one robot).

        The calm face is re-sent every cycle, as a live stream would: otherwise the driver's
        watchdog would ease to the servo table's home pose, which need not be the twin's calm face.
        """
        driver = self._require_driver()
        self._queue.clear()
        calm = self.twin.calm_commands()
        end = self.clock.now() + seconds
        while self.clock.now() + self.config.control_period_s <= end + 1e-9:
            driver.command(calm)
            self.advance_to(self.clock.now() + self.config.control_period_s)
        self.clear_trace()

    def clear_trace(self) -> None:
        self._times.clear()
        self._commands.clear()
        self._goals.clear()
        self._joints.clear()

    def joints(self) -> np.ndarray:
        """Present gaze/neck channels (N, 5) per recorded control cycle, normalized (TARGET_NAMES order)."""
        return np.asarray(self._joints, np.float32).reshape(-1, len(TARGET_NAMES))

    def joints_now(self) -> np.ndarray | None:
        """The present gaze/neck channels (5,) at the last control cycle (None before the first)."""
        return self._joints[-1].copy() if self._joints else None

    def trace(self) -> RobotTrace:
        n = len(self.twin.calm_commands())
        return RobotTrace(np.asarray(self._times, np.float64), np.asarray(self._commands, np.float32).reshape(-1, n),
                          np.asarray(self._goals, np.float32).reshape(-1, n))

    def faces(self) -> np.ndarray:
        """The robot's face (N, 113, 2) at every recorded control cycle (twin, noise-free)."""
        trace = self.trace()
        if not len(trace.times):
            return np.zeros((0, 113, 2), np.float32)
        return self.twin.forward(np.clip(trace.commands, 0.0, 1.0), noise=False)

    def face(self) -> np.ndarray:
        """The robot's face now (113, 2)."""
        commands = self._commands[-1] if self._commands else self.twin.calm_commands()
        return self.twin.forward(np.clip(commands, 0.0, 1.0), noise=False)

    def _require_driver(self) -> ServoDriver:
        if self.driver is None:
            raise ConfigError("the sim robot is not started (use `with SimRobot() as robot:`)")
        return self.driver


def _shifted(command: FaceCommand, offset: float) -> FaceCommand:
    if offset == 0.0:
        return command
    execute_at = None if command.execute_at is None else command.execute_at + offset
    return FaceCommand(command.names, command.positions, command.stamp + offset, execute_at, command.source)
