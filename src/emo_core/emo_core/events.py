"""What the peak-activation detector hands on: plain data, below the detector that makes it and
the message layer that converts it (``anticipation.detector`` re-exports both names)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .schema import REGIONS

#: Lips and brows: the regions whose displacement decides "back at rest" (eyes blink, the jaw
#: contour slides with head turns).
ACTIVE = np.concatenate([REGIONS["lips"], REGIONS["left_brow"], REGIONS["right_brow"]])


@dataclass(frozen=True)
class PeakEvent:
    """A detected peak activation: the predictor's input window and the context it came from."""

    stamp: float                 # stamp of the frame that fired (the window's last frame)
    frame_index: int             # index of that frame in the stream (frames given to update())
    window: np.ndarray           # (history, 113, 2) metric frames, oldest first
    window_stamps: np.ndarray    # (history,)
    rest: np.ndarray             # (113, 2) neutral face at the time of firing
    activation: float            # scorer probability at firing
