"""Two eye cameras, one face: how the views are combined.

Emo has a camera in each eye, a few centimetres apart, looking at the same person. After pose
normalization both views describe the same metric face, so they are interchangeable up to
MediaPipe's per-view noise. Policy ``best`` (the default) takes, per frame, the view with the higher
score = detection confidence × cos(yaw): the most confident and most frontal view, because
MediaPipe's estimates degrade as the face turns away from a camera. Policy ``mean`` averages the
metric points of the views that see the face, weighted by that score; it halves independent noise
but blurs when the two frames are not exactly simultaneous, so it is opt-in. Image-space points
always come from the best view (they are per-camera and cannot be averaged).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from enum import Enum

import numpy as np

from ..errors import ConfigError, InputError
from ..schema import Face
from .pose import head_angles_deg

POLICIES = ("best", "mean")


class ViewPolicy(str, Enum):
    BEST = "best"
    MEAN = "mean"


def view_score(face: Face) -> float:
    """Confidence × frontalness (cos yaw) of one view; 0 when no face."""
    if not face.detected:
        return 0.0
    if face.head_rotation is None:
        return float(face.confidence)
    yaw, _, _ = head_angles_deg(face.head_rotation)
    return float(face.confidence) * max(float(np.cos(np.radians(yaw))), 0.0)


def fuse_views(faces: Sequence[Face], policy: str = "best") -> Face:
    """One face from several simultaneous views (e.g. left and right eye)."""
    if policy not in POLICIES:
        raise InputError(f"unknown view policy {policy!r}; use one of {', '.join(POLICIES)}")
    if not faces:
        raise InputError("fuse_views needs at least one view")
    scores = np.array([view_score(f) for f in faces])
    best = faces[int(np.argmax(scores))]  # argmax: the first view wins ties, deterministically
    seen = [f for f, s in zip(faces, scores) if f.detected]
    if not seen:
        return Face.missing(stamp=max(f.stamp for f in faces), camera="fused")
    if policy == "best" or len(seen) == 1:
        return best
    weights = np.array([view_score(f) for f in seen])
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(seen), 1 / len(seen))
    metric = np.tensordot(weights, np.stack([f.metric for f in seen]), axes=1).astype(np.float32)
    return Face(detected=True, confidence=float(max(f.confidence for f in seen)), metric=metric,
                image=best.image, stamp=max(f.stamp for f in seen), space=best.space,
                head_rotation=best.head_rotation, head_scale_px=best.head_scale_px, camera="fused")


class ViewPairer:
    """Pairing the eye cameras' faces for :func:`fuse_views` as frames arrive (``face_landmarks``).

    The cameras are not synchronized, so nothing can wait for "the same frame" from both. The first
    camera *paces* the output: each of its faces is fused with the latest face of every other camera
    that is at most ``max_age_s`` older (or newer) than it, and returned at once. A camera that stops
    delivering simply drops out of the fusion; when the pacing camera stops, nothing comes out.
    """

    def __init__(self, cameras: Sequence[str], policy: str = "best", max_age_s: float = 0.05) -> None:
        if not cameras:
            raise ConfigError("face_landmarks needs at least one camera")
        if len(set(cameras)) != len(cameras):
            raise ConfigError(f"cameras listed twice: {list(cameras)}")
        if policy not in POLICIES:
            raise ConfigError(f"unknown view policy {policy!r}; use one of {', '.join(POLICIES)}")
        self.cameras = tuple(cameras)
        self.policy = policy
        self.max_age_s = float(max_age_s)
        self._latest: dict[str, Face] = {}

    @property
    def lead(self) -> str:
        return self.cameras[0]

    def add(self, camera: str, face: Face) -> Face | None:
        """Record a camera's face; returns the fused face when ``camera`` is the pacing one."""
        if camera not in self.cameras:
            raise ConfigError(f"unknown camera {camera!r}; configured: {', '.join(self.cameras)}")
        self._latest[camera] = face
        if camera != self.lead:
            return None
        views = [face] + [other for name, other in self._latest.items()
                          if name != camera and abs(other.stamp - face.stamp) <= self.max_age_s]
        # fuse_views returns the chosen view itself under 'best'; the output is paced by (and carries
        # the stamp of) the lead frame, so downstream time stays monotonic -- on a copy, because the
        # cached views keep their own stamps for the age check.
        return replace(fuse_views(views, self.policy), stamp=face.stamp)
