"""Where the person is, and what the eye camera sees of them: the gaze controller's simulated world.

* :class:`PersonPath` -- the direction of the person's face from the robot (base-frame yaw and
  pitch, degrees) and the turn of their head, per frame: a person who walks across the scene
  (:func:`walking_path`: holds, then smooth moves at walking angular speeds) or who jumps
  (:func:`jump_path`: a 20-degree step, the target of the saccade/neck tests).
* :class:`GeometricView` -- the person's 113 landmarks placed in 3-D (a face template at
  ``distance_m``, turned by the head yaw) and projected through the eye camera
  (:class:`~emo_core.gaze.geometry.EyeCamera`) at the present eye and neck angles, with landmark
  noise: fast, for closed-loop tests and benchmarks of the controller.
* :class:`SceneRenderer` -- the same camera over pixels: a clip frame (the person, as the clip
  maker renders them, filmed by a narrower camera pointed at the person) and a wide textured
  background, both reprojected into the eye camera by the pure-rotation homography
  ``K_eye R_eye^T R_src K_src^-1``; the landmark extractor then finds the face in that view
  (``emo demo --moving``). A planar photograph cannot turn its head, so the renderer shows the
  translation (direction) of the person only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from ..schema import N_LANDMARKS, Face, Space
from .geometry import EyeCamera, Pose, direction, rot_pitch, rot_yaw

#: Half the distance between the outer eye corners (the metric face unit), metres.
FACE_UNIT_M = 0.045


@dataclass(frozen=True)
class PersonPath:
    """Per-frame face direction (deg) and head yaw (deg) at ``fps``; ``jumps`` are the frames
    where the person jumps (for settle measurements)."""

    fps: float
    yaw: np.ndarray
    pitch: np.ndarray
    head_yaw: np.ndarray
    jumps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.yaw)
        if n == 0 or len(self.pitch) != n or len(self.head_yaw) != n:
            raise InputError("person path: yaw, pitch and head_yaw need the same non-zero length")
        if not np.all(np.isfinite(self.yaw)) or not np.all(np.isfinite(self.pitch)):
            raise InputError("person path: directions must be finite")

    def __len__(self) -> int:
        return len(self.yaw)

    @property
    def times(self) -> np.ndarray:
        return np.arange(len(self)) / self.fps

    def at(self, frame: int) -> tuple[float, float]:
        return float(self.yaw[frame]), float(self.pitch[frame])

    def moving(self, min_speed_deg_s: float = 1.0) -> np.ndarray:
        """Frames where the person moves (angular speed above ``min_speed_deg_s``), jumps excluded."""
        speed = np.hypot(np.gradient(self.yaw), np.gradient(self.pitch)) * self.fps
        out = speed >= min_speed_deg_s
        for j in self.jumps:
            out[max(0, j - 1):j + 1] = False
        return out

    def to_json(self) -> dict:
        return {"fps": self.fps, "yaw_deg": [round(float(v), 3) for v in self.yaw],
                "pitch_deg": [round(float(v), 3) for v in self.pitch],
                "head_yaw_deg": [round(float(v), 3) for v in self.head_yaw], "jump_frames": list(self.jumps)}


def jump_path(seconds: float = 4.0, fps: float = 30.0, jump_deg: float = 20.0, at_s: float = 1.0,
              axis: str = "yaw", start_deg: float = -10.0) -> PersonPath:
    """A still person who jumps ``jump_deg`` (along yaw or pitch) at ``at_s``."""
    n = int(round(seconds * fps))
    k = int(round(at_s * fps))
    if not 0 < k < n:
        raise InputError(f"jump at {at_s} s is outside the {seconds} s path")
    step = np.where(np.arange(n) >= k, jump_deg, 0.0)
    yaw = (start_deg + step) if axis == "yaw" else np.zeros(n)
    pitch = (start_deg + step) if axis == "pitch" else np.zeros(n)
    if axis not in ("yaw", "pitch"):
        raise InputError(f"jump axis must be 'yaw' or 'pitch', got {axis!r}")
    return PersonPath(fps, np.asarray(yaw, float), np.asarray(pitch, float), np.zeros(n), (k,))


def walking_path(seconds: float = 20.0, fps: float = 30.0, seed: int = 0, yaw_range: float = 35.0,
                 pitch_range: float = 8.0, speed_deg_s: tuple[float, float] = (8.0, 30.0),
                 hold_s: tuple[float, float] = (0.3, 1.5), jump_every_s: float = 0.0,
                 jump_deg: float = 20.0) -> PersonPath:
    """A person who moves across the scene: holds, then moves to a new place at a walking angular
    speed with a smooth (raised-cosine) velocity profile; the head turns toward the motion by up
    to 20 deg. ``jump_every_s`` > 0 adds a ``jump_deg`` step at that period (the settle test)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    yaw, pitch, head = np.zeros(n), np.zeros(n), np.zeros(n)
    pos = np.array([rng.uniform(-0.3, 0.3) * yaw_range, 0.0])
    i = 0
    jumps: list[int] = []
    next_jump = jump_every_s if jump_every_s > 0 else math.inf
    while i < n:
        hold = int(round(rng.uniform(*hold_s) * fps))
        for _ in range(hold):
            if i >= n:
                break
            yaw[i], pitch[i] = pos
            i += 1
        goal = np.array([rng.uniform(-yaw_range, yaw_range), rng.uniform(-pitch_range, pitch_range)])
        dist = float(np.hypot(*(goal - pos)))
        speed = rng.uniform(*speed_deg_s)
        frames = max(2, int(round(dist / speed * 2.0 * fps)))     # mean speed of a raised cosine = peak / 2
        start = pos.copy()
        for f in range(1, frames + 1):
            if i >= n:
                break
            s = 0.5 - 0.5 * math.cos(math.pi * f / frames)
            yaw[i], pitch[i] = start + s * (goal - start)
            head[i] = 20.0 * math.sin(math.pi * f / frames) * float(np.sign(goal[0] - start[0]))
            i += 1
        pos = goal
        if i / fps >= next_jump and i < n:
            sign = -1.0 if pos[0] > 0 else 1.0
            pos = np.array([pos[0] + sign * jump_deg, pos[1]])
            jumps.append(i)
            next_jump += jump_every_s
            # Stand still after a jump, so the settle and neck measurements see the jump alone.
            for _ in range(int(round(2.0 * fps))):
                if i >= n:
                    break
                yaw[i], pitch[i] = pos
                i += 1
    return PersonPath(fps, yaw, pitch, head, tuple(jumps))


def face_template() -> np.ndarray:
    """(113, 2) a frontal face in metric units (the digital twin's rest face, centred)."""
    from ..twin import DigitalTwin

    face = DigitalTwin(seed=0).rest_face().astype(np.float64)
    return face - face.mean(axis=0)


class GeometricView:
    """The person's landmarks through the eye camera (see the module docstring)."""

    def __init__(self, camera: EyeCamera, template: np.ndarray | None = None, distance_m: float = 1.0,
                 noise_px: float = 0.7, seed: int = 0) -> None:
        self.camera = camera
        self.template = face_template() if template is None else np.asarray(template, np.float64)
        self.distance_m = float(distance_m)
        self.noise_px = float(noise_px)
        self._rng = np.random.default_rng(seed)

    def points(self, yaw: float, pitch: float, head_yaw: float = 0.0) -> np.ndarray:
        """(113, 3) base-frame landmark positions of a face at (yaw, pitch), facing the robot."""
        local = np.zeros((N_LANDMARKS, 3))
        local[:, :2] = self.template * FACE_UNIT_M
        # The face looks back at the robot (its plane faces -z in its own frame), head turned.
        local = local @ rot_yaw(head_yaw).T
        to_person = rot_yaw(yaw) @ rot_pitch(pitch)
        return self.distance_m * direction(yaw, pitch) + local @ to_person.T

    def centre(self, yaw: float, pitch: float, pose: Pose) -> np.ndarray:
        """Normalized image position of the face's centre (the landmarks' mean, noise-free)."""
        uv, _ = self.camera.project(self.points(yaw, pitch)[None].mean(axis=1), pose)
        return uv[0]

    def observe(self, yaw: float, pitch: float, head_yaw: float, pose: Pose, stamp: float) -> Face:
        """The Face the landmark extractor would report: image points with noise, or no face when
        the face is not (mostly) in view."""
        uv, front = self.camera.project(self.points(yaw, pitch, head_yaw), pose)
        inside = front & (uv[:, 0] >= 0) & (uv[:, 0] <= 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= 1)
        if inside.mean() < 0.8:
            return Face.missing(stamp)
        noise = self._rng.normal(0.0, self.noise_px, uv.shape) / np.array([self.camera.width, self.camera.height])
        return Face(detected=True, confidence=1.0, image=(uv + noise).astype(np.float32), stamp=stamp,
                    space=Space.IMAGE)


class SceneRenderer:
    """Eye-camera views of a person filmed by a narrower source camera, over a wide background."""

    def __init__(self, camera: EyeCamera, source_hfov_deg: float = 25.0, seed: int = 0) -> None:
        self.camera = camera
        self.source_hfov_deg = float(source_hfov_deg)
        # The background: a wide pinhole panorama (150 deg) of soft blobs and a grid, so camera
        # motion is visible; warped by the same rotation as the person.
        self.bg_camera = EyeCamera(1600, 1000, 150.0)
        self.background = _background(self.bg_camera, seed)

    def _homography(self, src: EyeCamera, src_rotation: np.ndarray, pose: Pose) -> np.ndarray:
        k_eye = self.camera.intrinsics()
        return k_eye @ pose.camera_rotation().T @ src_rotation @ np.linalg.inv(src.intrinsics())

    def render(self, frame: np.ndarray, yaw: float, pitch: float, pose: Pose) -> np.ndarray:
        """The eye camera's RGB view (height, width, 3) with the source ``frame`` pointed at the
        person's direction (yaw, pitch)."""
        h, w = frame.shape[:2]
        size = (self.camera.width, self.camera.height)
        bg = cv2.warpPerspective(self.background, self._homography(self.bg_camera, np.eye(3), pose), size,
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(40, 44, 52))
        src = EyeCamera(w, h, self.source_hfov_deg)
        rotation = rot_yaw(yaw) @ rot_pitch(pitch)
        hom = self._homography(src, rotation, pose)
        person = cv2.warpPerspective(frame, hom, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), hom, size, flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT)
        alpha = (mask.astype(np.float32) / 255.0)[..., None]
        return (person * alpha + bg * (1.0 - alpha)).astype(np.uint8)


def _background(camera: EyeCamera, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((camera.height, camera.width, 3), (58, 64, 74), np.uint8)
    for _ in range(60):
        centre = (int(rng.integers(0, camera.width)), int(rng.integers(0, camera.height)))
        colour = tuple(int(c) for c in rng.integers(50, 140, 3))
        cv2.circle(img, centre, int(rng.integers(20, 90)), colour, -1, cv2.LINE_AA)
    for x in range(0, camera.width, 80):
        cv2.line(img, (x, 0), (x, camera.height), (90, 96, 106), 1, cv2.LINE_AA)
    for y in range(0, camera.height, 80):
        cv2.line(img, (0, y), (camera.width, y), (90, 96, 106), 1, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 2.0)
