"""Which of the 113 canonical landmarks form which contour of the face.

Everything here follows from the landmark schema (MediaPipe's mesh topology in the paper's contour
listing order), not from any particular face, so it lives in code rather than in the config file.
All arrays hold canonical positions (0..112).

Lips (``REGIONS["lips"]``, 40 points): listing positions 0..19 are the outer contour as a closed
loop (0 = top centre, 5 = left corner, 10 = bottom centre, 15 = right corner); 20..39 the inner
contour as a closed loop (20 = right inner corner, 25 = upper centre, 30 = left inner corner,
35 = lower centre). Eyes (16 points each): 0 = inner corner, 1..7 upper lid, 8 = outer corner,
9..15 lower lid, so upper point ``k`` faces lower point ``16 - k``.
"""
from __future__ import annotations

import numpy as np

from ..schema import LOWER, N_UPPER, REGIONS, UPPER, canonical_position


def _lip(*listing: int) -> np.ndarray:
    return REGIONS["lips"][list(listing)]


def _mp(*mp_indices: int) -> np.ndarray:
    return np.array([canonical_position(i) for i in mp_indices], dtype=np.int64)


# --- mouth (all ordered from the robot's right, x < 0, to its left) ------------------------------
LIP_INNER_CORNERS = _lip(20, 30)                       # right, left
LIP_OUTER_CORNERS = _lip(15, 5)                        # right, left
LIP_UPPER_INNER = _lip(21, 22, 23, 24, 25, 26, 27, 28, 29)
LIP_LOWER_INNER = _lip(39, 38, 37, 36, 35, 34, 33, 32, 31)   # pairs with LIP_UPPER_INNER
LIP_UPPER_OUTER = _lip(16, 17, 18, 19, 0, 1, 2, 3, 4)
LIP_LOWER_OUTER = _lip(14, 13, 12, 11, 10, 9, 8, 7, 6)
#: The inner contour of each lip as one open curve from corner to corner (11 points).
UPPER_INNER_CURVE = np.concatenate([LIP_INNER_CORNERS[:1], LIP_UPPER_INNER, LIP_INNER_CORNERS[1:]])
LOWER_INNER_CURVE = np.concatenate([LIP_INNER_CORNERS[:1], LIP_LOWER_INNER, LIP_INNER_CORNERS[1:]])
#: Closed outer / inner lip loops in drawing order.
LIP_OUTER_LOOP = REGIONS["lips"][:20]
LIP_INNER_LOOP = REGIONS["lips"][20:]
#: The "driver" points the mouth mechanism moves directly; the outer contour follows them as skin.
LIP_INNER_ALL = np.concatenate([LIP_UPPER_INNER, LIP_LOWER_INNER, LIP_INNER_CORNERS])

# --- jaw contour: ear (robot's right) -> chin -> ear (left) --------------------------------------
JAW = REGIONS["jaw"]
CHIN = JAW[10]

# --- eyes ----------------------------------------------------------------------------------------
EYES = {"right": REGIONS["right_eye"], "left": REGIONS["left_eye"]}
#: Upper-lid points and the lower-lid points facing them (lid k <-> 16 - k), both eyes.
LID_UPPER = np.concatenate([EYES[s][1:8] for s in ("right", "left")])
LID_LOWER = np.concatenate([EYES[s][[15, 14, 13, 12, 11, 10, 9]] for s in ("right", "left")])
EYE_INNER_CORNERS = np.array([EYES["right"][0], EYES["left"][0]])
EYE_OUTER_CORNERS = np.array([EYES["right"][8], EYES["left"][8]])

# --- brows: upper and lower edge, inner end first --------------------------------------------------
BROW_UPPER_EDGE = {"left": _mp(336, 296, 334, 293, 300), "right": _mp(107, 66, 105, 63, 70)}
BROW_LOWER_EDGE = {"left": _mp(285, 295, 282, 283, 276), "right": _mp(55, 65, 52, 53, 46)}
BROWS = np.concatenate([REGIONS["right_brow"], REGIONS["left_brow"]])


def _check() -> None:
    """Import-time sanity: the sets above partition the regions they claim to (cheap, catches typos)."""
    lips = np.sort(np.concatenate([LIP_INNER_ALL, LIP_UPPER_OUTER, LIP_LOWER_OUTER, LIP_OUTER_CORNERS]))
    assert np.array_equal(lips, np.sort(REGIONS["lips"])), "lip topology does not cover the lips"
    for side in ("left", "right"):
        edges = np.sort(np.concatenate([BROW_UPPER_EDGE[side], BROW_LOWER_EDGE[side]]))
        assert np.array_equal(edges, np.sort(REGIONS[f"{side}_brow"])), f"{side} brow edges"
    assert np.all(np.concatenate([LID_UPPER, LID_LOWER, BROWS]) < N_UPPER)
    assert np.all(np.concatenate([LIP_INNER_ALL, JAW]) >= LOWER.start)
    assert UPPER.stop == N_UPPER


_check()
