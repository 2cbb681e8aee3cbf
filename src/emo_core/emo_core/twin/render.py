"""Draw a 113-landmark face (robot twin or human metric face) as an RGB image, for rviz and videos.

The points are auto-fitted into the image (x to the face's left = image right, y down), so any
face in the metric/robot frame renders the same way. Drawing is done at 2x and downsampled, which
gives smooth edges with OpenCV's primitives.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..schema import N_LANDMARKS, check_points
from . import topology as topo

# Colours (RGB). Emo's silicone skin is a light blue; features are drawn darker.
BACKGROUND = (36, 40, 48)
SKIN = (168, 197, 226)
SKIN_EDGE = (96, 122, 156)
SCLERA = (246, 246, 242)
IRIS = (70, 96, 128)
PUPIL = (12, 14, 18)
LID = (58, 72, 96)
BROW = (62, 56, 60)
LIP = (196, 110, 128)
LIP_EDGE = (132, 62, 80)
MOUTH = (48, 20, 28)
TEETH = (236, 232, 220)
HIGHLIGHT = (255, 64, 48)
TEXT = (230, 230, 230)

_SUPERSAMPLE = 2
_TITLE_PX = 30


def render_face(points: np.ndarray, size: tuple[int, int] = (480, 480), *, title: str | None = None,
                highlight: Sequence[int] | np.ndarray | None = None,
                gaze: tuple[float, float] | None = None, head: tuple[float, float, float] | None = None) -> np.ndarray:
    """RGB uint8 image (height, width, 3) of the face; ``size`` is (width, height).

    ``highlight``: canonical landmark indices (or a boolean mask of 113) drawn as red dots.
    ``gaze``: the eyes' (yaw, pitch) in degrees (emo_core.gaze conventions: yaw > 0 to the robot's
    right, pitch > 0 down), drawn as the irises' offset. ``head``: the neck's (roll, pitch, yaw) in
    degrees, drawn as the face turned about a pivot behind and below it; the image is fitted to the
    face at home, so the turn shows as a shift. Both as seen by someone facing the robot.
    """
    pts = check_points(points, "render_face points", dims=(2, 3))[:, :2].astype(np.float64)
    width, height = _check_size(size)
    s = _SUPERSAMPLE
    canvas = np.empty((height * s, width * s, 3), np.uint8)
    cv2.rectangle(canvas, (0, 0), (width * s, height * s), BACKGROUND, -1)   # much faster than numpy fill
    top = _TITLE_PX * s if title else 0
    outline = _silhouette(pts)
    to_px = _fit(outline, width * s, height * s - top, top, margin=0.06 if head is None else 0.18)
    if head is not None:
        pts = _turn(pts, outline, head)
        outline = _silhouette(pts)
    thick = max(1, int(round(min(width, height) * s / 240)))
    _draw_skin(canvas, to_px(outline), thick)
    scale = to_px.scale
    for side in ("right", "left"):
        _draw_eye(canvas, pts, side, to_px, thick, gaze)
        _draw_brow(canvas, pts, side, to_px)
    _draw_nose(canvas, pts, to_px, thick, follow_eyes=head is not None)
    _draw_mouth(canvas, pts, to_px, thick, scale)
    cv2.polylines(canvas, [_px(to_px(pts[topo.JAW]))], False, SKIN_EDGE, thick, cv2.LINE_AA)
    if highlight is not None:
        for i in _highlight_indices(highlight):
            cv2.circle(canvas, tuple(_px(to_px(pts[i:i + 1]))[0]), 2 * thick + 1, HIGHLIGHT, -1, cv2.LINE_AA)
    image = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    if title:
        # Shrink long titles to fit the width (down to a readable minimum, then they are clipped).
        (text_w, _), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
        font = max(0.35, min(0.6, 0.6 * (width - 16) / max(text_w, 1)))
        cv2.putText(image, title, (8, _TITLE_PX - 9), cv2.FONT_HERSHEY_SIMPLEX, font, TEXT, 1, cv2.LINE_AA)
    return image


class _Fit:
    """Uniform scale + offset mapping face coordinates into a pixel box."""

    def __init__(self, scale: float, offset: np.ndarray) -> None:
        self.scale = scale
        self.offset = offset

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        return xy * self.scale + self.offset


def _fit(outline: np.ndarray, width: int, height: int, top: int, margin: float = 0.06) -> _Fit:
    lo, hi = outline.min(axis=0), outline.max(axis=0)
    extent = np.maximum(hi - lo, 1e-6)
    scale = float(min(width * (1 - 2 * margin) / extent[0], height * (1 - 2 * margin) / extent[1]))
    centre_px = np.array([width / 2.0, top + height / 2.0])
    return _Fit(scale, centre_px - scale * (lo + hi) / 2.0)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"size must be (width, height), got {size!r}") from None
    if not (32 <= width <= 4096 and 32 <= height <= 4096):
        raise InputError(f"image size must be 32..4096 pixels per side, got {width}x{height}")
    return width, height


def _highlight_indices(highlight) -> np.ndarray:
    arr = np.asarray(highlight)
    if arr.dtype == bool:
        if arr.shape != (N_LANDMARKS,):
            raise InputError(f"highlight mask must have 113 entries, got {arr.shape}")
        return np.flatnonzero(arr)
    idx = arr.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= N_LANDMARKS):
        raise InputError("highlight indices must be in 0..112")
    return idx


def _px(xy: np.ndarray) -> np.ndarray:
    return np.round(xy).astype(np.int32)


# ---------------------------------------------------------------- face parts
def _silhouette(pts: np.ndarray) -> np.ndarray:
    """Head outline: the jaw contour plus a forehead arc over the brows (not landmarks, estimated)."""
    jaw = pts[topo.JAW]
    ear_r, ear_l = jaw[0], jaw[-1]
    brow_top = pts[topo.BROWS, 1].min()
    chin = pts[topo.CHIN, 1]
    crown = brow_top - 0.38 * (chin - brow_top)
    centre = 0.5 * (ear_r + ear_l)
    half_w = 0.5 * np.linalg.norm(ear_l - ear_r) * 1.02
    t = np.linspace(0.0, np.pi, 25)[1:-1]
    arc = np.stack([centre[0] + half_w * np.cos(t), centre[1] - (centre[1] - crown) * np.sin(t)], axis=1)
    return np.concatenate([jaw, arc])          # ear (right) -> chin -> ear (left) -> forehead


def _draw_skin(canvas: np.ndarray, outline_px: np.ndarray, thick: int) -> None:
    poly = _px(outline_px)
    cv2.fillPoly(canvas, [poly], SKIN, cv2.LINE_AA)
    cv2.polylines(canvas, [poly], True, SKIN_EDGE, thick, cv2.LINE_AA)


def _inside(canvas: np.ndarray, poly: np.ndarray, draw) -> None:
    """Run ``draw(roi, offset)`` on a copy of the polygon's bounding box and keep only the pixels
    inside the polygon (so an iris or teeth never spill over the lids or lips)."""
    x0, y0 = np.maximum(poly.min(axis=0) - 2, 0)
    x1, y1 = np.minimum(poly.max(axis=0) + 3, (canvas.shape[1], canvas.shape[0]))
    if x1 <= x0 or y1 <= y0:
        return
    offset = np.array([x0, y0], np.int32)
    roi = canvas[y0:y1, x0:x1]
    layer = roi.copy()
    draw(layer, offset)
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [poly - offset], (255,), cv2.LINE_AA)
    inside = mask > 127
    roi[inside] = layer[inside]


def _turn(pts: np.ndarray, outline: np.ndarray, head: tuple[float, float, float]) -> np.ndarray:
    """The face points turned by the neck (roll, pitch, yaw in degrees) about a pivot half a face
    height behind and below the face centre, projected orthographically."""
    roll, pitch, yaw = (np.radians(float(v)) for v in head)
    lo, hi = outline.min(axis=0), outline.max(axis=0)
    centre = 0.5 * (lo + hi)
    size = float(hi[1] - lo[1])
    pivot = np.array([centre[0], centre[1] + 0.5 * size, 0.5 * size])
    p = np.column_stack([pts, np.zeros(len(pts))]) - pivot
    # Seen from the front: the robot's right is the viewer's left, so yaw to its right moves the face left.
    cy, sy = np.cos(-yaw), np.sin(-yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    r_yaw = np.array([[cy, 0.0, -sy], [0.0, 1.0, 0.0], [sy, 0.0, cy]])
    r_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    r_roll = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return ((p @ (r_yaw @ r_pitch @ r_roll).T) + pivot)[:, :2]


def _draw_eye(canvas: np.ndarray, pts: np.ndarray, side: str, to_px: _Fit, thick: int,
              gaze: tuple[float, float] | None = None) -> None:
    contour = pts[topo.EYES[side]]
    poly = _px(to_px(contour))
    # Iris and pupil (the pupil holds Emo's eye camera), centred between the corners and lids.
    corners = contour[[0, 8]]
    centre = corners.mean(axis=0)
    if _open(contour):
        centre[1] = 0.5 * (np.median(contour[1:8, 1]) + np.median(contour[9:16, 1]))
    eye_width = float(np.linalg.norm(corners[1] - corners[0]))
    if gaze is not None:
        # About a third of the eye's width for the eyes' +-22 deg; the viewer sees yaw mirrored.
        # Sideways about a third of the eye's width at the eyes' 22 deg; up/down a third of the
        # lid opening at their 17.6 deg (the iris must stay visible between the lids).
        aperture = float(np.median(contour[9:16, 1]) - np.median(contour[1:8, 1])) if _open(contour) else 0.0
        centre = centre + np.array([-0.3 * eye_width * np.sin(np.radians(gaze[0])) / np.sin(np.radians(22.0)),
                                    0.35 * aperture * np.sin(np.radians(gaze[1])) / np.sin(np.radians(17.6))])
    c_px = _px(to_px(centre[None]))[0]

    def draw(layer: np.ndarray, offset: np.ndarray) -> None:
        cv2.fillPoly(layer, [poly - offset], SCLERA, cv2.LINE_AA)
        c = tuple(int(v) for v in c_px - offset)
        cv2.circle(layer, c, max(1, int(0.21 * eye_width * to_px.scale)), IRIS, -1, cv2.LINE_AA)
        cv2.circle(layer, c, max(1, int(0.09 * eye_width * to_px.scale)), PUPIL, -1, cv2.LINE_AA)

    _inside(canvas, poly, draw)
    upper = _px(to_px(contour[:9]))
    lower = _px(to_px(np.concatenate([contour[8:], contour[:1]])))
    cv2.polylines(canvas, [upper], False, LID, 2 * thick, cv2.LINE_AA)
    cv2.polylines(canvas, [lower], False, LID, thick, cv2.LINE_AA)


def _open(contour: np.ndarray) -> bool:
    return bool(np.median(contour[9:16, 1]) - np.median(contour[1:8, 1]) > 1e-3)


def _draw_brow(canvas: np.ndarray, pts: np.ndarray, side: str, to_px: _Fit) -> None:
    upper = pts[topo.BROW_UPPER_EDGE[side]]
    lower = pts[topo.BROW_LOWER_EDGE[side]]
    poly = _px(to_px(np.concatenate([upper, lower[::-1]])))
    cv2.fillPoly(canvas, [poly], BROW, cv2.LINE_AA)
    cv2.polylines(canvas, [poly], True, BROW, 2, cv2.LINE_AA)


def _draw_nose(canvas: np.ndarray, pts: np.ndarray, to_px: _Fit, thick: int, follow_eyes: bool = False) -> None:
    """A discreet nose between the eyes and the mouth (the nose carries no expression landmarks,
    so it is placed from the eyes and the upper lip: tip at ~78 % of the way down). A face drawn
    turned (``follow_eyes``) has its nose centred between the inner eye corners, not at x = 0."""
    eyes_y = pts[np.concatenate([topo.EYE_INNER_CORNERS, topo.EYE_OUTER_CORNERS]), 1].mean()
    inner = pts[topo.EYE_INNER_CORNERS, 0]
    centre_x = float(inner.mean()) if follow_eyes else 0.0
    inner_x = 0.5 * float(np.abs(inner[1] - inner[0])) if follow_eyes else np.abs(inner).mean()
    mouth_top = pts[topo.LIP_UPPER_OUTER, 1].min()
    tip_y = eyes_y + 0.78 * (mouth_top - eyes_y)
    w = 0.6 * inner_x
    h = 0.1 * (mouth_top - eyes_y)
    base = np.array([[-w, tip_y - h], [-0.8 * w, tip_y + 0.6 * h], [-0.35 * w, tip_y + 0.9 * h],
                     [0.0, tip_y + 0.6 * h], [0.35 * w, tip_y + 0.9 * h], [0.8 * w, tip_y + 0.6 * h],
                     [w, tip_y - h]]) + [centre_x, 0.0]
    cv2.polylines(canvas, [_px(to_px(base))], False, SKIN_EDGE, thick, cv2.LINE_AA)


def _draw_mouth(canvas: np.ndarray, pts: np.ndarray, to_px: _Fit, thick: int, scale: float) -> None:
    outer = _px(to_px(pts[topo.LIP_OUTER_LOOP]))
    inner_pts = pts[topo.LIP_INNER_LOOP]
    inner = _px(to_px(inner_pts))
    cv2.fillPoly(canvas, [outer], LIP, cv2.LINE_AA)
    gap = pts[topo.LIP_LOWER_INNER, 1] - pts[topo.LIP_UPPER_INNER, 1]
    if gap.max() * scale > 1.5:
        # Upper teeth: a band under the upper lip's inner edge.
        upper_curve = pts[topo.UPPER_INNER_CURVE]
        band = _px(to_px(np.concatenate([upper_curve, (upper_curve + [0.0, 0.09])[::-1]])))

        def draw(layer: np.ndarray, offset: np.ndarray) -> None:
            cv2.fillPoly(layer, [inner - offset], MOUTH, cv2.LINE_AA)
            cv2.fillPoly(layer, [band - offset], TEETH, cv2.LINE_AA)

        _inside(canvas, inner, draw)
    cv2.polylines(canvas, [inner], True, LIP_EDGE, thick, cv2.LINE_AA)
    cv2.polylines(canvas, [outer], True, LIP_EDGE, thick, cv2.LINE_AA)
