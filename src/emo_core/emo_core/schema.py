"""The 113-landmark expression schema shared by every stage (Emo paper, Methods).

MediaPipe Face Mesh gives 468 points; 113 of them carry the expression: jaw 21, lips 40,
eyebrows 20, eyes 32. The project's *canonical order* is the 52 upper-face points (eyes and brows,
ascending MediaPipe index) followed by the 61 lower-face points (jaw and lips, ascending index), so
the halves are ``UPPER = slice(0, 52)`` and ``LOWER = slice(52, 113)`` everywhere: in arrays, in
messages, in datasets and in models.

"left"/"right" are the *subject's* left and right (MediaPipe's convention: the subject's left eye
appears on the right of an unmirrored image).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from .errors import SchemaError

JAW = (234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288,
       361, 323, 454)
LIPS = (0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61, 185, 40, 39, 37,
        78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
LEFT_EYE = (362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382)
RIGHT_EYE = (133, 173, 157, 158, 159, 160, 161, 246, 33, 7, 163, 144, 145, 153, 154, 155)
LEFT_BROW = (293, 295, 296, 300, 334, 336, 276, 282, 283, 285)
RIGHT_BROW = (65, 66, 70, 105, 107, 46, 52, 53, 55, 63)

REGIONS_MP: dict[str, tuple[int, ...]] = {
    "jaw": JAW,
    "lips": LIPS,
    "left_eye": LEFT_EYE,
    "right_eye": RIGHT_EYE,
    "left_brow": LEFT_BROW,
    "right_brow": RIGHT_BROW,
}

UPPER_MP = tuple(sorted(LEFT_EYE + RIGHT_EYE + LEFT_BROW + RIGHT_BROW))
LOWER_MP = tuple(sorted(JAW + LIPS))
#: MediaPipe index of each of the 113 canonical landmarks.
MP_INDICES: np.ndarray = np.array(UPPER_MP + LOWER_MP, dtype=np.int64)

N_LANDMARKS = 113
N_UPPER = 52
N_LOWER = 61
UPPER = slice(0, N_UPPER)
LOWER = slice(N_UPPER, N_LANDMARKS)
N_MEDIAPIPE = 468

#: The 11 normalized motor commands of the inverse self-model, in model-output order.
COMMAND_NAMES: tuple[str, ...] = (
    "brow_inner", "brow_outer", "eyelid_upper", "eyelid_lower",
    "lip_upper_raise", "lip_upper_curl", "lip_lower_drop", "lip_lower_curl",
    "mouth_corner_up", "mouth_corner_down", "jaw_open",
)
N_COMMANDS = len(COMMAND_NAMES)
UPPER_COMMANDS: tuple[str, ...] = COMMAND_NAMES[:4]
LOWER_COMMANDS: tuple[str, ...] = COMMAND_NAMES[4:]


def _region_index() -> dict[str, np.ndarray]:
    position = {int(mp): i for i, mp in enumerate(MP_INDICES)}
    return {name: np.array([position[i] for i in mp_ids], dtype=np.int64)
            for name, mp_ids in REGIONS_MP.items()}


#: Canonical positions (0..112) of each region, in the paper's listing order (contours stay ordered).
REGIONS: dict[str, np.ndarray] = _region_index()
#: Region name of each canonical landmark.
REGION_OF: tuple[str, ...] = tuple(
    next(name for name, ids in REGIONS_MP.items() if int(mp) in ids) for mp in MP_INDICES
)


def canonical_position(mp_index: int) -> int:
    """Canonical position (0..112) of a MediaPipe landmark index; SchemaError if not one of the 113."""
    hits = np.flatnonzero(MP_INDICES == mp_index)
    if hits.size != 1:
        raise SchemaError(f"MediaPipe landmark {mp_index} is not one of the 113 expression landmarks")
    return int(hits[0])


class Space(IntEnum):
    """Coordinate space of a landmark set; same values as FaceLandmarks.msg's constants."""

    IMAGE = 0   # normalized image coordinates: x, y in [0, 1] of width/height, z as MediaPipe gives it
    METRIC = 1  # head-pose normalized human face (see emo_core.perception.pose)
    ROBOT = 2   # robot-face space (digital twin / robot camera), same units as METRIC


def check_points(points: np.ndarray, what: str = "landmarks", dims: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Validate a (113, D) landmark array: right shape, finite. Returns it as float32."""
    arr = np.asarray(points)
    if arr.ndim != 2 or arr.shape[0] != N_LANDMARKS or arr.shape[1] not in dims:
        raise SchemaError(f"{what}: expected shape (113, {' or '.join(map(str, dims))}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SchemaError(f"{what}: contains NaN or inf")
    return arr.astype(np.float32, copy=False)


@dataclass
class Face:
    """One face observation in canonical order.

    ``metric`` is (113, 3) in the pose-normalized frame (x to the subject's left, y down, z away
    from the camera; unit = the face's anchor width, see perception.pose); models use ``metric[:, :2]``.
    ``image`` is (113, 2) normalized image coordinates. ``stamp`` is seconds on the clock of the
    source that produced the frame.
    """

    detected: bool
    confidence: float = 0.0
    metric: np.ndarray = field(default_factory=lambda: np.zeros((N_LANDMARKS, 3), np.float32))
    image: np.ndarray = field(default_factory=lambda: np.zeros((N_LANDMARKS, 2), np.float32))
    stamp: float = 0.0
    space: Space = Space.METRIC
    #: 3x3 head rotation (camera <- head frame) and scale in pixels, for diagnostics and view choice.
    head_rotation: np.ndarray | None = None
    head_scale_px: float = 0.0
    camera: str = ""

    @property
    def xy(self) -> np.ndarray:
        """The (113, 2) metric points the models consume."""
        return self.metric[:, :2]

    @classmethod
    def missing(cls, stamp: float = 0.0, camera: str = "") -> "Face":
        return cls(detected=False, stamp=stamp, camera=camera)
