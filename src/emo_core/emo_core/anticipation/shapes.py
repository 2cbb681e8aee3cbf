"""The predictor's architectures and tensor sizes, and the resting-face scale: what the numpy
predictor (``predictor.py``, inference) and the torch modules (``predictor_torch.py``, training and
the reference path) share. Both import it; neither imports the other's module at import time."""
from __future__ import annotations

import numpy as np

from ..schema import N_LANDMARKS
from .dataset import N_INPUT

ARCHITECTURES = ("paper", "delta", "relative")
IN_DIM = N_INPUT * N_LANDMARKS * 2    # 904
OUT_DIM = N_LANDMARKS * 2             # 226
FEAT_DIM = IN_DIM + OUT_DIM           # 1130: delta features (frames - rest, rest)
PAPER_WIDTHS = (1024, 1024, 512, 512, 512, 512, 256)


#: How the ``relative`` architecture sees a face (recorded in its card's input schema): each frame
#: minus the person's resting face, divided by the resting face's size; the rest face itself is no input.
RELATIVE_FEATURES = "(frames - rest) / rest_scale"


def rest_scale_np(rest: np.ndarray) -> np.ndarray:
    """Size of each resting face ((..., 113, 2) -> (...,)): RMS distance of its points from their centroid."""
    r = np.asarray(rest, np.float32).reshape(-1, N_LANDMARKS, 2)
    c = r - r.mean(axis=1, keepdims=True)
    return np.sqrt((c * c).sum(axis=2).mean(axis=1)).astype(np.float32)
