"""Angles, joints and the eye camera: the geometry the gaze controller and its simulation share.

Frames. The robot's *base* frame is the camera convention with the head at home: x to the image
right, y down, z forward (out of the face). A direction is (yaw, pitch) in degrees: yaw > 0 turns
toward +x (the image's right), pitch > 0 toward +y (down). The eye camera's orientation in the base
frame is ``R_neck @ R_eye`` with ``R_neck = yaw(ny) @ pitch(np) @ roll(nr)`` and ``R_eye = yaw(ey) @
pitch(ep)`` (both eyes move together: conjugate gaze, one command). The rotation centres of neck
and eyes are taken as one point: at a person's distance (~1 m) the few centimetres between them
shift the face by well under a degree.

Joints. :class:`GazeJoints` turns the gaze and neck servos of ``config/servos.yaml`` into angles:
a channel's normalized value ``c`` is ``home + sign x angle / span`` (``span`` = its servo range in
degrees from the model's ticks per radian), its limits and its speed limit (``max_velocity``) in
degrees. The sign is the only thing the table cannot say (which way a horn turns the eye); it is a
:class:`GazeJoints` argument, +1 by default (command up = yaw right / pitch down).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputError
from ..schema import Face
from ..servo.table import TARGET_NAMES, ServoTable

#: The five gaze/neck channels (servos.yaml ``command`` names), in this order everywhere.
JOINTS: tuple[str, ...] = TARGET_NAMES          # gaze_yaw, gaze_pitch, neck_roll, neck_pitch, neck_yaw


def rot_yaw(deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_pitch(deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def rot_roll(deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def direction(yaw: float, pitch: float) -> np.ndarray:
    """Unit vector of a (yaw, pitch) direction in degrees (``rot_yaw(yaw) @ rot_pitch(pitch) @ z``)."""
    y, p = math.radians(yaw), math.radians(pitch)
    return np.array([math.sin(y) * math.cos(p), math.sin(p), math.cos(y) * math.cos(p)])


def angles(vec: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a direction vector (the inverse of :func:`direction`)."""
    x, y, z = (float(v) for v in vec)
    return math.degrees(math.atan2(x, z)), math.degrees(math.atan2(y, math.hypot(x, z)))


@dataclass(frozen=True)
class Pose:
    """Joint angles in degrees: the two eye angles (both eyes) and the three neck angles."""

    eye_yaw: float = 0.0
    eye_pitch: float = 0.0
    neck_roll: float = 0.0
    neck_pitch: float = 0.0
    neck_yaw: float = 0.0

    def neck_rotation(self) -> np.ndarray:
        return rot_yaw(self.neck_yaw) @ rot_pitch(self.neck_pitch) @ rot_roll(self.neck_roll)

    def camera_rotation(self) -> np.ndarray:
        """Eye camera orientation in the base frame (columns: camera x, y, z axes)."""
        return self.neck_rotation() @ rot_yaw(self.eye_yaw) @ rot_pitch(self.eye_pitch)

    def looking_at(self) -> tuple[float, float]:
        """(yaw, pitch) of the camera's optical axis in the base frame."""
        return angles(self.camera_rotation()[:, 2])

    def as_array(self) -> np.ndarray:
        """Angles in :data:`JOINTS` order (gaze yaw, gaze pitch, neck roll, neck pitch, neck yaw)."""
        return np.array([self.eye_yaw, self.eye_pitch, self.neck_roll, self.neck_pitch, self.neck_yaw])

    @classmethod
    def from_array(cls, values: np.ndarray) -> "Pose":
        v = [float(x) for x in np.asarray(values, np.float64).reshape(-1)]
        if len(v) != len(JOINTS):
            raise InputError(f"a pose needs {len(JOINTS)} angles, got {len(v)}")
        return cls(eye_yaw=v[0], eye_pitch=v[1], neck_roll=v[2], neck_pitch=v[3], neck_yaw=v[4])


def eye_angles_for(target: tuple[float, float], neck: Pose) -> tuple[float, float]:
    """Eye (yaw, pitch) that points the camera at ``target`` (base-frame yaw, pitch) from this neck pose:
    the counter-rotation that keeps a fixated direction while the neck turns."""
    return angles(neck.neck_rotation().T @ direction(*target))


@dataclass(frozen=True)
class JointSpec:
    """One gaze/neck channel in angles."""

    name: str
    home: float          # normalized value at angle 0 (the servos' home)
    span_deg: float      # degrees from normalized 0 to 1
    lo_deg: float        # angle at normalized 0 / 1 (after the sign), lo < hi
    hi_deg: float
    max_speed_deg_s: float
    sign: float = 1.0

    def to_norm(self, deg: float) -> float:
        return self.home + self.sign * deg / self.span_deg

    def to_deg(self, norm: float) -> float:
        return self.sign * (norm - self.home) * self.span_deg


class GazeJoints:
    """The gaze and neck channels of a servo table, in degrees (see the module docstring)."""

    def __init__(self, table: ServoTable | None = None, signs: Mapping[str, float] | None = None) -> None:
        table = table or ServoTable.load()
        signs = dict(signs or {})
        unknown = sorted(set(signs) - set(JOINTS))
        if unknown:
            raise ConfigError(f"gaze: unknown joint(s) {', '.join(unknown)}; known: {', '.join(JOINTS)}")
        specs = []
        for name in JOINTS:
            followers = [table.servos[i] for i in table.followers(name)]
            if not followers:
                raise ConfigError(f"gaze: no servo follows {name!r} in the servo table")
            # Servos sharing a channel move together (the right eye is mirror-mounted): the channel's
            # range and speed are those of the most limited of them.
            s = min(followers, key=lambda f: f.span)
            ticks_per_deg = s.model.ticks_per_rad * math.pi / 180.0
            span = s.span / ticks_per_deg
            home = s.home_norm
            sign = float(signs.get(name, 1.0))
            if sign not in (1.0, -1.0):
                raise ConfigError(f"gaze: the sign of {name} must be +1 or -1, got {sign}")
            ends = sorted((sign * (0.0 - home) * span, sign * (1.0 - home) * span))
            speed = min(f.max_velocity for f in followers) / ticks_per_deg
            specs.append(JointSpec(name, home, span, ends[0], ends[1], speed, sign))
        self.specs: dict[str, JointSpec] = {s.name: s for s in specs}

    def __getitem__(self, name: str) -> JointSpec:
        return self.specs[name]

    def to_norm(self, pose: Pose) -> np.ndarray:
        """Normalized channel values (JOINTS order), clipped to [0, 1] (the servo limits)."""
        deg = pose.as_array()
        return np.clip([self.specs[n].to_norm(float(d)) for n, d in zip(JOINTS, deg)], 0.0, 1.0)

    def from_norm(self, values: np.ndarray) -> Pose:
        v = np.asarray(values, np.float64).reshape(-1)
        return Pose.from_array(np.array([self.specs[n].to_deg(float(x)) for n, x in zip(JOINTS, v)]))

    def clip(self, name: str, deg: float, margin_deg: float = 0.0) -> float:
        s = self.specs[name]
        return float(np.clip(deg, s.lo_deg + margin_deg, s.hi_deg - margin_deg))


@dataclass(frozen=True)
class EyeCamera:
    """A pinhole eye camera: ``width`` x ``height`` pixels, horizontal field of view ``hfov_deg``,
    square pixels, principal point at the centre."""

    width: int = 640
    height: int = 480
    hfov_deg: float = 60.0

    def __post_init__(self) -> None:
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ConfigError(f"eye camera size must be 16..8192 px, got {self.width}x{self.height}")
        if not 5.0 <= self.hfov_deg <= 170.0:
            raise ConfigError(f"eye camera hfov must be in [5, 170] deg, got {self.hfov_deg}")

    @property
    def focal_px(self) -> float:
        return 0.5 * self.width / math.tan(math.radians(self.hfov_deg) / 2)

    def intrinsics(self) -> np.ndarray:
        f = self.focal_px
        return np.array([[f, 0.0, self.width / 2], [0.0, f, self.height / 2], [0.0, 0.0, 1.0]])

    def ray(self, u: float, v: float) -> np.ndarray:
        """Camera-frame ray through normalized image coordinates (u, v in [0, 1])."""
        f = self.focal_px
        return np.array([(u - 0.5) * self.width / f, (v - 0.5) * self.height / f, 1.0])

    def project(self, points_base: np.ndarray, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
        """Normalized image coordinates (N, 2) of base-frame points (N, 3) seen from ``pose``, and
        which of them are in front of the camera."""
        cam = np.asarray(points_base, np.float64) @ pose.camera_rotation()      # = (R^T p)^T
        z = cam[:, 2]
        front = z > 1e-6
        zs = np.where(front, z, 1.0)
        f = self.focal_px
        uv = np.stack([0.5 + f * cam[:, 0] / zs / self.width, 0.5 + f * cam[:, 1] / zs / self.height], axis=1)
        return uv, front

    def direction_of(self, u: float, v: float, pose: Pose) -> tuple[float, float]:
        """Base-frame (yaw, pitch) of the image point (u, v) seen from ``pose``."""
        return angles(pose.camera_rotation() @ self.ray(u, v))


def face_centre(face: Face) -> tuple[float, float] | None:
    """Normalized image position of a detected face: the mean of its 113 landmarks' image points
    (what the landmark extractor keeps in ``Face.image``); None without a usable face."""
    if not face.detected:
        return None
    pts = np.asarray(face.image, np.float64)
    ok = np.all(np.isfinite(pts), axis=1)
    if ok.sum() < 3:
        return None
    u, v = pts[ok].mean(axis=0)
    return float(u), float(v)
