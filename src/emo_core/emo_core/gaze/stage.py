"""GazeStage: the gaze controller and the blinker next to the expression pipeline, one servo driver.

Per frame, after the expression pipeline has made its FaceCommand from a face, the stage

* runs the :class:`GazeController` on the *same* Face (image position) and the joint angles the
  frame was taken at, giving a gaze/neck FaceCommand (names = the five gaze/neck channels, source
  ``gaze``) -- a separate command to the same driver, which only moves the servos a command names,
  so gaze never touches the 11 expression commands and the expression command is never delayed;
* composes the blink with the expression's eyelid command (:class:`Blinker`): the expression
  command is returned unchanged (the same object) outside blinks; during a blink its upper-lid
  value is closed further. :class:`ApexGate` holds blinks back while a prediction is held or the
  robot's expression is near its peak.

Frames without an expression command (no face) still step the blinker and the controller (face
lost: hold, then back to centre). No ROS, no clock.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..commands import FaceCommand, Source
from ..schema import Face
from .blink import ApexGate, ApexGateConfig, BlinkConfig, Blinker
from .controller import GazeCommand, GazeConfig, GazeController
from .geometry import EyeCamera, GazeJoints, Pose

LOG = logging.getLogger(__name__)


@dataclass
class GazeStep:
    """What one frame produced."""

    expression: FaceCommand | None     # the expression command, blink composed in
    gaze: FaceCommand | None           # the gaze/neck command (None: nothing to send)
    closure: float                     # blink closure 0..1
    suppressed: bool                   # the apex gate held blinks back


def to_face_command(command: GazeCommand) -> FaceCommand:
    return FaceCommand(command.names, command.positions, command.stamp, command.execute_at, Source.GAZE)


class BlinkStage:
    """The blinker and its apex gate on a stream of expression commands (``inverse_model`` runs
    this where it makes the command, so no second publisher ever writes the eyelids)."""

    def __init__(self, calm: np.ndarray, blink: BlinkConfig | None = None, apex: ApexGateConfig | None = None) -> None:
        self.blinker = Blinker(blink)
        self.gate = ApexGate(calm, apex)

    def reset(self) -> None:
        self.blinker.reset()
        self.gate.reset()

    def step(self, stamp: float, expression: FaceCommand | None, held: bool) -> tuple[FaceCommand | None, float, bool]:
        """(the command with the blink composed in -- the same object outside blinks --, closure,
        suppressed)."""
        suppressed = self.gate.update(stamp, None if expression is None else expression.positions, held)
        closure = self.blinker.update(stamp, suppressed)
        if expression is not None and closure > 0.0:
            expression = replace(expression, positions=self.blinker.compose(expression.positions, closure))
        return expression, closure, suppressed


class PoseHistory:
    """Recent joint angles by time, to look up the pose an eye-camera frame was taken at (the
    joint states run at the control rate, frames arrive a camera latency late)."""

    def __init__(self, keep_s: float = 1.0) -> None:
        self.keep_s = float(keep_s)
        self._items: deque[tuple[float, Pose]] = deque()

    def add(self, stamp: float, pose: Pose) -> None:
        if self._items and stamp < self._items[-1][0]:
            self._items.clear()                  # time went backwards (a bag restarted): start over
        self._items.append((float(stamp), pose))
        while self._items and self._items[0][0] < stamp - self.keep_s:
            self._items.popleft()

    def at(self, stamp: float) -> Pose | None:
        """The latest pose at or before ``stamp`` (the oldest one kept if all are later; None if empty)."""
        if not self._items:
            return None
        best = self._items[0][1]
        for t, pose in self._items:
            if t > stamp + 1e-9:
                break
            best = pose
        return best


class GazeStage:
    """``step(stamp, face, expression_command, held, pose) -> GazeStep`` (see the module docstring)."""

    def __init__(self, calm: np.ndarray, *, joints: GazeJoints | None = None, camera: EyeCamera | None = None,
                 gaze: GazeConfig | None = None, blink: BlinkConfig | None = None,
                 apex: ApexGateConfig | None = None, gaze_enabled: bool = True, blink_enabled: bool = True) -> None:
        self.controller = GazeController(joints, camera, gaze)
        self.blink = BlinkStage(calm, blink, apex)
        self.gaze_enabled = gaze_enabled
        self.blink_enabled = blink_enabled

    def reset(self) -> None:
        self.controller.reset()
        self.blink.reset()

    def step(self, stamp: float, face: Face | None, expression: FaceCommand | None, held: bool = False,
             pose: Pose | None = None) -> GazeStep:
        gaze = None
        if self.gaze_enabled:
            command = self.controller.update(face, stamp, pose)
            gaze = None if command is None else to_face_command(command)
        closure, suppressed = 0.0, False
        if self.blink_enabled:
            expression, closure, suppressed = self.blink.step(stamp, expression, held)
        return GazeStep(expression, gaze, closure, suppressed)

    @property
    def blinker(self) -> Blinker:
        return self.blink.blinker

    @property
    def state(self) -> Any:
        return self.controller.state
