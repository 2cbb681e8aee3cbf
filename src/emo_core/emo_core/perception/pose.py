"""Head-pose normalization: MediaPipe's 3-D mesh points -> the "metric" face the models see.

The frame is built from *anchor* landmarks that expressions barely move (forehead arc and nose
bridge; none of them is among the 113 expression landmarks, so an expression cannot shift the frame
it is measured in):

* origin: centroid of the anchors;
* z: normal of the plane that best fits the anchors (least squares), pointing away from the camera;
* x: mean direction from each right anchor to its left mirror twin, projected into that plane
  (so x points to the subject's left, which is image-right for a camera facing the person);
* y = z × x (down the face, like image y);
* unit: the mean 3-D distance between mirror anchor pairs (the face's "anchor width").

A similarity transform (rotation, translation, uniform scale) therefore maps any view of the same
face to the same metric points, which is what "pose invariant" means here. MediaPipe's z is in the
same scale as x (image width), so points are first put into isotropic pixel units.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SchemaError

#: Mirror anchor pairs (subject's right, subject's left): forehead arc and nose-bridge sides.
ANCHOR_PAIRS: tuple[tuple[int, int], ...] = (
    (109, 338), (67, 297), (103, 332), (54, 284),   # forehead arc
    (193, 417), (122, 351), (196, 419), (3, 248),   # sides of the nose bridge
)
#: Midline anchors: forehead down to the nose tip.
ANCHOR_MIDLINE: tuple[int, ...] = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4)
ANCHOR_RIGHT = np.array([r for r, _ in ANCHOR_PAIRS], dtype=np.int64)
ANCHOR_LEFT = np.array([lft for _, lft in ANCHOR_PAIRS], dtype=np.int64)
ANCHORS = np.concatenate([ANCHOR_RIGHT, ANCHOR_LEFT, np.array(ANCHOR_MIDLINE, dtype=np.int64)])


@dataclass(frozen=True)
class HeadFrame:
    """Rigid head frame in isotropic pixel units: metric = (p - origin) @ rotation.T / scale."""

    origin: np.ndarray    # (3,)
    rotation: np.ndarray  # (3, 3), rows are the head axes x, y, z in camera coordinates
    scale: float          # anchor width in pixels

    def to_metric(self, points_px: np.ndarray) -> np.ndarray:
        return ((points_px - self.origin) @ self.rotation.T / self.scale).astype(np.float32)

    def to_pixels(self, metric: np.ndarray) -> np.ndarray:
        return metric.astype(np.float64) * self.scale @ self.rotation + self.origin


def to_isotropic_pixels(normalized: np.ndarray, width: int, height: int) -> np.ndarray:
    """MediaPipe normalized (x/W, y/H, z/W) -> pixels in all three axes."""
    return normalized * np.array([width, height, width], dtype=np.float64)


def head_frame(right: np.ndarray, left: np.ndarray, midline: np.ndarray) -> HeadFrame:
    """Head frame from anchor points (pixels): mirror pairs ``right[i] <-> left[i]`` and midline."""
    anchors = np.concatenate([right, left, midline]).astype(np.float64)
    if not np.all(np.isfinite(anchors)):
        raise SchemaError("anchor landmarks contain NaN or inf")
    origin = anchors.mean(axis=0)
    centred = anchors - origin
    # Plane normal = eigenvector of the smallest eigenvalue of the 3x3 scatter matrix (same as the
    # last right-singular vector of an SVD, at a fraction of the cost).
    _, vectors = np.linalg.eigh(centred.T @ centred)
    z = vectors[:, 0] if vectors[2, 0] >= 0 else -vectors[:, 0]
    across = (left - right).mean(axis=0)
    x = across - np.dot(across, z) * z
    norm = np.linalg.norm(x)
    scale = float(np.linalg.norm(left - right, axis=1).mean())
    if norm < 1e-9 or scale < 1e-9:
        raise SchemaError("degenerate face: anchor landmarks collapse to a point")
    x /= norm
    y = np.cross(z, x)
    return HeadFrame(origin=origin, rotation=np.stack([x, y, z]), scale=scale)


def head_angles_deg(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a head rotation (rows x, y, z in camera coordinates)."""
    x, y, z = rotation
    yaw = np.degrees(np.arctan2(z[0], z[2]))
    pitch = np.degrees(np.arctan2(-z[1], np.hypot(z[0], z[2])))
    roll = np.degrees(np.arctan2(x[1], x[0]))
    return float(yaw), float(pitch), float(roll)


def metric_from_mesh(mesh_px: np.ndarray) -> tuple[np.ndarray, HeadFrame]:
    """Metric 113-point face and head frame from a full (468, 3) mesh in isotropic pixels."""
    from ..schema import MP_INDICES, N_MEDIAPIPE

    if mesh_px.shape != (N_MEDIAPIPE, 3):
        raise SchemaError(f"mesh: expected shape (468, 3), got {mesh_px.shape}")
    frame = head_frame(mesh_px[ANCHOR_RIGHT], mesh_px[ANCHOR_LEFT], mesh_px[list(ANCHOR_MIDLINE)])
    return frame.to_metric(mesh_px[MP_INDICES]), frame
