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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..pipeline.core import FaceCommand, Source
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


class GazeStage:
    """``step(stamp, face, expression_command, held, pose) -> GazeStep`` (see the module docstring)."""

    def __init__(self, calm: np.ndarray, *, joints: GazeJoints | None = None, camera: EyeCamera | None = None,
                 gaze: GazeConfig | None = None, blink: BlinkConfig | None = None,
                 apex: ApexGateConfig | None = None, gaze_enabled: bool = True, blink_enabled: bool = True) -> None:
        self.controller = GazeController(joints, camera, gaze)
        self.blinker = Blinker(blink)
        self.gate = ApexGate(calm, apex)
        self.gaze_enabled = gaze_enabled
        self.blink_enabled = blink_enabled

    def reset(self) -> None:
        self.controller.reset()
        self.blinker.reset()
        self.gate.reset()

    def step(self, stamp: float, face: Face | None, expression: FaceCommand | None, held: bool = False,
             pose: Pose | None = None) -> GazeStep:
        gaze = None
        if self.gaze_enabled:
            command = self.controller.update(face, stamp, pose)
            gaze = None if command is None else to_face_command(command)
        closure, suppressed = 0.0, False
        if self.blink_enabled:
            suppressed = self.gate.update(stamp, None if expression is None else expression.positions, held)
            closure = self.blinker.update(stamp, suppressed)
            if expression is not None and closure > 0.0:
                expression = replace(expression, positions=self.blinker.compose(expression.positions, closure))
        return GazeStep(expression, gaze, closure, suppressed)

    @property
    def state(self) -> Any:
        return self.controller.state
