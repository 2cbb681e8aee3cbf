"""Pairing the eye cameras' faces for ``fuse_views`` as frames arrive (no ``rclpy`` import).

The cameras are not synchronized, so the node cannot wait for "the same frame" from both. The first
camera *paces* the output: each of its faces is fused with the latest face of every other camera
that is at most ``max_age_s`` older (or newer) than it, and published at once. A camera that stops
delivering simply drops out of the fusion; when the pacing camera stops, nothing is published
(``face_landmarks`` logs it).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from emo_core.errors import ConfigError
from emo_core.perception.views import POLICIES, fuse_views
from emo_core.schema import Face


class ViewPairer:
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
