"""Babbling through the servo driver: the real head (front camera) or the bus emulator (twin face).

:class:`ServoRobot` implements the babbler's :class:`~emo_core.selfmodel.robot.FaceRobot` on a
:class:`~emo_core.servo.ServoDriver`: commands become goal ticks, "settled" is decided by
:class:`~emo_core.selfmodel.robot.SettleDetector` on the present positions the driver reads back
(it runs the driver's control cycles while it waits), and the face is captured by

* :class:`CameraCapture` -- the front camera, MediaPipe landmarks, pose-normalized (hardware); or
* :class:`TwinCapture` -- the digital twin at the *present* commands (sim through the emulator:
  the servos' real motion, quantization and limits, with the twin as the face).

``open_servo_robot`` (hardware) and ``open_emulated_robot`` (a ``BusEmulator`` on a pty, driven by
the real dynamixel-sdk, in virtual time) build them; both return the robot and a close function
that eases the face home, releases torque and frees the port.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..clock import Clock, ManualClock, MonotonicClock
from ..errors import InputError
from ..schema import N_COMMANDS, N_LANDMARKS
from .constraints import SettleConfig
from .robot import SettleDetector, noisy_capture, twin_config_hash

LOG = logging.getLogger(__name__)


class FaceCapture(Protocol):
    """Looks at the face: (113, 2) robot-space landmarks for the pose the robot holds now."""

    def describe(self) -> dict[str, Any]: ...

    def capture(self, present: np.ndarray, index: int) -> np.ndarray: ...


@dataclass
class TwinCapture:
    """The twin's face at the present commands, with per-sample seeded capture noise."""

    twin: Any
    noise_seed: int = 0
    noise_std: float | None = None

    def __post_init__(self) -> None:
        if self.noise_std is None:
            self.noise_std = float(getattr(self.twin, "noise_std", 0.0))

    def describe(self) -> dict[str, Any]:
        return {"config_hash": twin_config_hash(self.twin), "noise_std": self.noise_std,
                "noise_seed": self.noise_seed}

    def capture(self, present: np.ndarray, index: int) -> np.ndarray:
        return noisy_capture(self.twin, present, float(self.noise_std or 0.0), self.noise_seed, index)


@dataclass
class CameraCapture:
    """Front camera + landmark extractor. Discards ``discard`` buffered frames first (they may
    predate the move) and tries up to ``attempts`` frames for a detected face."""

    source: Any                       # perception.sources.FrameSource
    extractor: Any                    # perception.FaceLandmarkExtractor
    discard: int = 2
    attempts: int = 10

    def describe(self) -> dict[str, Any]:
        return {"camera": str(getattr(self.source, "name", ""))}

    def capture(self, present: np.ndarray, index: int) -> np.ndarray:
        for _ in range(self.discard):
            self.source.read()
        for _ in range(self.attempts):
            frame = self.source.read()
            if frame is None:
                raise InputError("the front camera stream ended")
            face = self.extractor.process(frame.image, stamp=frame.stamp, camera="front")
            if face.detected:
                return np.asarray(face.xy, dtype=np.float32).reshape(N_LANDMARKS, 2)
        raise InputError(f"no face detected in {self.attempts} front-camera frames for sample {index}; "
                         "check the camera view of the robot's face")


def servo_table_hash(table: Any) -> str:
    """Hash of what makes a servo table this head: ids, names, models, limits, homes, directions."""
    rows = [[s.id, s.name, s.model.name, s.min, s.max, s.home, s.inverted, s.command, s.max_velocity]
            for s in table.servos]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def ros_robot_description(table: Any, robot_id: str = "emo", twin: Any = None) -> dict[str, Any]:
    """The manifest's ``robot`` for babbling through the ROS graph (the ``babbler`` node and bags of
    it): like :class:`ServoRobot`, ``config_hash`` identifies the face the data shows -- the digital
    twin's configuration in sim (``twin``), else the servo table (a camera watched the real face).
    (It lived in datasets/bags.py, which made datasets and selfmodel import each other.)"""
    table_hash = servo_table_hash(table)
    info: dict[str, Any] = {"kind": "ros", "robot_id": str(robot_id), "servo_table_hash": table_hash,
                            "config_hash": table_hash}
    if twin is not None:
        info.update(config_hash=twin_config_hash(twin), face="twin")
    return info


@dataclass
class ServoRobot:
    """A FaceRobot on the servo driver (see the module docstring)."""

    driver: Any                       # servo.ServoDriver, opened and activated
    capturer: FaceCapture
    settle: SettleConfig
    clock: Clock
    sleep: Callable[[float], None]
    kind: str = "servo+camera"
    #: The bus emulator, when the servos are emulated in virtual time: each cycle then waits until it
    #: has applied the cycle's goal write before the clock moves on, so a seed gives the same run.
    emulator: Any = None
    _detector: SettleDetector = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._detector = SettleDetector(self.settle, self.clock, self.sleep)

    def describe(self) -> dict[str, Any]:
        table_hash = servo_table_hash(self.driver.table)
        info = {"kind": self.kind, "config_hash": table_hash, "servo_table_hash": table_hash}
        # With the twin as the face, the face model is what identifies the robot.
        info.update(self.capturer.describe())
        return info

    def calm_commands(self) -> np.ndarray:
        return np.asarray(self.driver.table.home_commands(), dtype=np.float64).reshape(N_COMMANDS)

    def send(self, commands: np.ndarray) -> None:
        self.driver.command(np.asarray(commands, dtype=np.float64).reshape(N_COMMANDS))

    def wait_settled(self) -> bool:
        return self._detector.wait(self._present_from_cycle)

    def _present_from_cycle(self) -> np.ndarray:
        writes = self.emulator.stats.sync_writes if self.emulator is not None else 0
        state = self.driver.step()
        if self.emulator is not None and state.connected:
            # A Sync Write has no answer: without this wait the emulator's thread may apply the goal
            # after the manual clock moved on, and the servo starts a cycle late (scheduling noise).
            self.emulator.wait_for_sync_writes(writes)
        if not state.connected:
            # Babbling on a lost bus would store poses the face never took: stop; resume later.
            raise InputError(f"servo bus lost during babbling: {state.fault or 'disconnected'}")
        return np.asarray(state.commands, dtype=np.float64)

    def present_commands(self) -> np.ndarray:
        return np.asarray(self.driver.state().commands, dtype=np.float64).reshape(N_COMMANDS)

    def capture(self, index: int) -> np.ndarray:
        return self.capturer.capture(self.present_commands(), index)


def _start_driver(table: Any, port: str, clock: Clock, sleep: Callable[[float], None]) -> Any:
    from ..servo import DriverConfig, ServoDriver

    # Babbling waits for each pose, so commands pause for longer than a live loop's watchdog allows.
    config = DriverConfig.from_mapping(table.driver, baudrate=table.baudrate, watchdog_timeout_s=0.0)
    driver = ServoDriver(table, port, config, clock=clock, sleep=sleep)
    driver.open()
    driver.activate()
    return driver


def open_servo_robot(port: str, camera: str | int, settle: SettleConfig, servo_table: str | Path | None = None,
                     clock: Clock | None = None) -> tuple[ServoRobot, Callable[[], None]]:
    """The hardware form: the head's servo bus on ``port`` and a front camera ``camera``."""
    from ..perception import FaceLandmarkExtractor
    from ..perception.sources import open_source
    from ..servo import ServoTable

    clock = clock or MonotonicClock()
    table = ServoTable.load(servo_table)
    source = open_source(camera, clock=clock)
    extractor = FaceLandmarkExtractor()
    try:
        driver = _start_driver(table, port, clock, time.sleep)
    except BaseException:
        source.close()
        extractor.close()
        raise
    robot = ServoRobot(driver, CameraCapture(source, extractor), settle, clock, time.sleep)

    def close() -> None:
        try:
            driver.shutdown()
        finally:
            source.close()
            extractor.close()
    return robot, close


def open_emulated_robot(twin: Any, settle: SettleConfig, noise_seed: int = 0,
                        servo_table: str | Path | None = None) -> tuple[ServoRobot, Callable[[], None]]:
    """Sim through the wire-level bus emulator, in virtual time: the driver's sleeps advance a
    shared manual clock, so servos take their real (velocity-limited) time without the wait."""
    from ..servo import BusEmulator, ServoTable

    clock = ManualClock()
    table = ServoTable.load(servo_table)
    emulator = BusEmulator.from_table(table, clock=clock).start()
    try:
        driver = _start_driver(table, emulator.port, clock, clock.advance)
    except BaseException:
        emulator.stop()
        raise
    robot = ServoRobot(driver, TwinCapture(twin, noise_seed), settle, clock, clock.advance,
                       kind="twin+servo-emulator", emulator=emulator)

    def close() -> None:
        try:
            driver.shutdown()
        finally:
            emulator.stop()
    return robot, close
