"""The babbled robot over topics: ``emo_core.selfmodel.robot.FaceRobot`` for the ``babbler`` node.

``emo_core.selfmodel.babbler.Babbler`` drives any FaceRobot through random feasible poses. Here the
robot is the node graph: a pose is *sent* as a FaceCommand (source BABBLE) to ``servo_driver``;
it has *settled* when the present commands (from ``joint_states``, through the servo table) stay
still (``SettleDetector``, the same rule as the hardware form); it is *captured* as the first
robot-face FaceLandmarks stamped after settling (``twin/landmarks`` in sim, the front camera's
landmarks on hardware). No ``rclpy`` here: the node feeds :meth:`TopicFaceRobot.on_present` and
:meth:`TopicFaceRobot.on_face` from its callbacks while the babbler runs in a worker thread.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..clock import Clock
from ..errors import EmoError, InputError
from ..schema import N_COMMANDS, N_LANDMARKS
from .constraints import SettleConfig
from .robot import SettleDetector

LOG = logging.getLogger(__name__)
#: Present commands come back through whole ticks: a pose is "reached" within this much.
TICK_SLACK = 0.005


class Stopped(EmoError):
    """The node is shutting down: the babbling loop ends (the dataset keeps what was stored)."""


class TopicFaceRobot:
    def __init__(self, send: Callable[[np.ndarray], None], settle: SettleConfig, clock: Clock,
                 sleep: Callable[[float], None], calm: np.ndarray, description: dict[str, Any],
                 capture_timeout_s: float = 2.0) -> None:
        self._send = send
        self._settle = settle
        self._detector = SettleDetector(settle, clock, sleep)
        self._clock = clock
        self._calm = np.asarray(calm, np.float64).reshape(N_COMMANDS)
        self._description = dict(description)
        self._timeout = float(capture_timeout_s)
        self._changed = threading.Condition()
        self._present: np.ndarray | None = None
        self._face: tuple[np.ndarray, float] | None = None
        self._target: np.ndarray | None = None
        self._before: np.ndarray | None = None       # present commands when the pose was sent
        self._settled_at = -np.inf
        self._stopped = False

    # -- fed by the node's callbacks ------------------------------------------------------------
    def on_present(self, commands: np.ndarray) -> None:
        with self._changed:
            self._present = np.asarray(commands, np.float64).reshape(N_COMMANDS)
            self._changed.notify_all()

    def on_face(self, points: np.ndarray, stamp: float) -> None:
        with self._changed:
            self._face = (np.asarray(points, np.float32)[:, :2].copy(), float(stamp))
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    @property
    def has_present(self) -> bool:
        return self._present is not None

    @property
    def has_face(self) -> bool:
        return self._face is not None

    @property
    def target(self) -> np.ndarray | None:
        """The pose last sent (the node re-sends it so the driver's watchdog keeps still)."""
        return None if self._target is None else self._target.copy()

    # -- FaceRobot ------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return dict(self._description)

    def calm_commands(self) -> np.ndarray:
        return self._calm.copy()

    def send(self, commands: np.ndarray) -> None:
        self.check_running()
        self._target = np.asarray(commands, np.float64).reshape(N_COMMANDS).copy()
        with self._changed:
            self._before = None if self._present is None else self._present.copy()
        self._send(self._target)

    def wait_settled(self) -> bool:
        """Settled = the pose took effect, then the present positions stayed still (SettleDetector).

        Over topics a command reaches the driver some milliseconds later (more under load, or while
        discovery completes): until the servos leave the previous pose (or are already at the new
        one), "nothing moves" means "not there yet", not "settled".
        """
        self._wait_for_effect()
        settled = self._detector.wait(self.present_commands)
        self._settled_at = self._clock.now()
        return settled

    def _wait_for_effect(self) -> None:
        tolerance = self._settle.tolerance
        target, before = self._target, self._before

        def took_effect() -> bool:
            if self._present is None or target is None:
                return False
            at_target = np.max(np.abs(self._present - target)) <= max(tolerance, TICK_SLACK)
            moved = before is not None and np.max(np.abs(self._present - before)) > tolerance
            return bool(at_target or moved)

        with self._changed:
            if not self._changed.wait_for(lambda: self._stopped or took_effect(), timeout=self._settle.timeout):
                LOG.warning("the servos did not respond to a pose within %.1f s", self._settle.timeout)
        self.check_running()

    def present_commands(self) -> np.ndarray:
        with self._changed:
            self._wait_for(lambda: self._present is not None, "joint states (present positions)")
            present = self._present
        if present is None:     # not reached: _wait_for returned with the lock held, so ready() holds
            raise InputError("no joint states (present positions)")
        return present.copy()

    def capture(self, index: int) -> np.ndarray:
        """The first robot face stamped at or after the moment the pose settled."""
        with self._changed:
            self._wait_for(lambda: self._face is not None and self._face[1] >= self._settled_at,
                           f"a robot-face FaceLandmarks for sample {index}")
            face = self._face
        if face is None:        # not reached: _wait_for returned with the lock held, so ready() holds
            raise InputError(f"no robot-face FaceLandmarks for sample {index}")
        points = face[0]
        if points.shape != (N_LANDMARKS, 2) or not np.all(np.isfinite(points)):
            raise InputError(f"robot face for sample {index} is not 113 finite points")
        return points.copy()

    # -- helpers --------------------------------------------------------------------------------
    def _wait_for(self, ready: Callable[[], bool], what: str) -> None:
        """Wait (holding the condition) until ``ready()``; Stopped on shutdown, InputError on timeout."""
        if not self._changed.wait_for(lambda: self._stopped or ready(), timeout=self._timeout):
            raise InputError(f"no {what} within {self._timeout:.1f} s; is the robot (or the sim) running?")
        self.check_running()

    def check_running(self) -> None:
        if self._stopped:
            raise Stopped("babbling stopped")
