"""What every stage sends the servo driver: :class:`FaceCommand` (the fields of ``msg/FaceCommand.msg``).

Plain data, shared by the coexpression controller, the babbler, the gaze stage and the message
layer (``emo_core.conversions``), so none of them has to import another to speak to the driver.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class Source(str, Enum):
    """FaceCommand.source, the same enum as ``msg/FaceCommand.msg``."""

    PREDICTED = "predicted"
    MIMIC = "mimic"
    BABBLE = "babble"
    MANUAL = "manual"
    GAZE = "gaze"            # eyes and neck (emo_core.gaze), never the 11 expression commands


@dataclass(frozen=True)
class FaceCommand:
    """What the pipeline sends to the servo driver (the fields of ``msg/FaceCommand.msg``).

    ``stamp`` is the stamp of the camera frame the command derives from (a held prediction keeps
    the stamp of the frame the detector fired on); ``execute_at`` is when the face should arrive
    there (the predicted apex), ``None`` for "now".
    """

    names: tuple[str, ...]
    positions: np.ndarray            # (n,) float32 in [0, 1]
    stamp: float
    execute_at: float | None
    source: Source

    def arrive_at(self) -> float | None:
        """The driver's ``arrive_at`` argument."""
        return self.execute_at
