"""Facial action units as displacement fields over MediaPipe's 468-point face mesh.

One AU model serves both halves of the synthetic-people work: the sequence generator reads the 113
expression landmarks of these fields, and the clip maker moves all 468 points and warps a photo with
them. Every field lives in the extractor's *metric* frame (x to the subject's left, y down, z away
from the camera, unit = anchor width ~ 46 mm on an adult face; see ``perception.pose``), and is the
displacement at intensity 1 (a strong, FACS "E"-level action).

A field is built from a few *handles*: a mesh vertex, a displacement vector and a falloff radius.
Each vertex moves by the Gaussian-weighted blend of the handles near it, optionally *gated* to one
side of a tissue boundary (upper vs lower lip and jaw, upper vs lower eyelid, brow vs eye), because
skin on either side of the mouth or the eye slit moves independently although it is close in space.
Handles are written for the subject's right side and mirrored. The jaw drop is a rotation about a
pivot near the ear, and eye closure moves each upper-lid point down onto the lower lid below it.

Fields are computed *from a given neutral mesh* (a person's own geometry), so the same AU gives
plausible, person-specific motion on any identity. Anchor vertices of the metric frame are held
still, as the pose normalizer assumes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SchemaError
from ..perception.pose import ANCHORS
from ..schema import MP_INDICES, N_MEDIAPIPE

#: Action units of the model, in basis order.
AU_NAMES: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU15", "AU17", "AU18",
    "AU20", "AU23", "AU24", "AU25", "AU26", "AU45",
)
AU_INDEX: dict[str, int] = {name: i for i, name in enumerate(AU_NAMES)}
N_AUS = len(AU_NAMES)

AU_DESCRIPTIONS: dict[str, str] = {
    "AU1": "inner brow raiser", "AU2": "outer brow raiser", "AU4": "brow lowerer",
    "AU5": "upper lid raiser", "AU6": "cheek raiser", "AU7": "lid tightener",
    "AU9": "nose wrinkler", "AU10": "upper lip raiser", "AU12": "lip corner puller",
    "AU15": "lip corner depressor", "AU17": "chin raiser", "AU18": "lip pucker",
    "AU20": "lip stretcher", "AU23": "lip tightener", "AU24": "lip pressor", "AU25": "lips part",
    "AU26": "jaw drop", "AU45": "blink / eye closure",
}

# Lip contours (MediaPipe), each ordered from the subject's right corner to the left corner.
UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# Mesh vertices of each lip (contours and the two rings between them) and of the mouth corners,
# found by flood fill over MediaPipe's tessellation from the inner contours.
UPPER_LIP_VERTICES = (0, 11, 12, 13, 37, 38, 39, 40, 41, 42, 72, 73, 74, 80, 81, 82, 183, 184, 185,
                      191, 267, 268, 269, 270, 271, 272, 302, 303, 304, 310, 311, 312, 407, 408, 409, 415)
LOWER_LIP_VERTICES = (14, 15, 16, 17, 77, 84, 85, 86, 87, 88, 89, 90, 91, 95, 96, 146, 178, 179, 180,
                      181, 307, 314, 315, 316, 317, 318, 319, 320, 321, 324, 325, 375, 402, 403, 404, 405)
LIP_CORNER_VERTICES = (61, 76, 62, 78, 291, 306, 292, 308)
#: Vertices on the facial midline of MediaPipe's topology (their own mirror twins).
MIDLINE_VERTICES = (0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 94, 151, 152,
                    164, 168, 175, 195, 197, 199, 200)
# Eyelid contours (outer corner -> inner corner) for the subject's right / left eye.
EYES = {
    "right": {"upper": (33, 246, 161, 160, 159, 158, 157, 173, 133),
              "lower": (33, 7, 163, 144, 145, 153, 154, 155, 133)},
    "left": {"upper": (263, 466, 388, 387, 386, 385, 384, 398, 362),
             "lower": (263, 249, 390, 373, 374, 380, 381, 382, 362)},
}
JAW_PIVOT_VERTEX = 234  # near the tragus; the jaw hinge sits just below and behind it
CHIN = 152

#: Displacement at intensity 1 of the chin (AU26) in metric units (~14 mm at 46 mm/unit).
JAW_DROP = 0.30
#: How far the chin is in front of the jaw hinge (~10 cm) and the hinge below the ear points.
JAW_FRONT = 2.2
JAW_HINGE_BELOW = 0.15


@dataclass(frozen=True)
class Handle:
    """A key vertex (subject's right side, or midline) and its displacement (metric units)."""

    vertex: int
    vector: tuple[float, float, float]  # x: + toward the subject's left, y: + down, z: + away
    sigma: float                        # Gaussian falloff radius (metric units)
    gate: str = "none"  # none, upper_lip, lower_jaw, upper/lower_lip_outer, brow, upper_lid, lower_lid


def _h(vertex: int, dx: float, dy: float, dz: float, sigma: float, gate: str = "none") -> Handle:
    return Handle(vertex, (dx, dy, dz), sigma, gate)


# Displacement vectors are written for the subject's RIGHT side (negative x), so "outward" is -x
# and "toward the midline" is +x. Magnitudes: typical strong actions, e.g. AU12 lifts the lip
# corner ~6 mm and pulls it ~5 mm outward; AU1/AU2 raise the brow ~5 mm; AU5 opens the lid ~2 mm.
HANDLES: dict[str, tuple[Handle, ...]] = {
    "AU1": (_h(55, 0.0, -0.11, 0.0, 0.16, "brow"), _h(107, 0.0, -0.11, 0.0, 0.16, "brow"),
            _h(65, 0.0, -0.09, 0.0, 0.14, "brow"), _h(105, 0.0, -0.05, 0.0, 0.16, "brow")),
    "AU2": (_h(46, 0.0, -0.11, 0.0, 0.18, "brow"), _h(70, 0.0, -0.11, 0.0, 0.18, "brow"),
            _h(105, 0.0, -0.08, 0.0, 0.16, "brow")),
    "AU4": (_h(55, 0.045, 0.07, 0.0, 0.14, "brow"), _h(107, 0.045, 0.07, 0.0, 0.14, "brow"),
            _h(105, 0.02, 0.04, 0.0, 0.16, "brow"), _h(46, 0.0, 0.025, 0.0, 0.16, "brow")),
    "AU5": (_h(159, 0.0, -0.045, 0.0, 0.14, "upper_lid"), _h(158, 0.0, -0.04, 0.0, 0.12, "upper_lid"),
            _h(160, 0.0, -0.04, 0.0, 0.12, "upper_lid")),
    "AU6": (_h(117, 0.0, -0.06, -0.02, 0.22, "lower_lid"), _h(118, 0.0, -0.06, -0.02, 0.2, "lower_lid"),
            _h(145, 0.0, -0.035, 0.0, 0.1, "lower_lid"), _h(144, 0.0, -0.03, 0.0, 0.1, "lower_lid"),
            _h(33, 0.01, -0.015, 0.0, 0.1, "none"), _h(159, 0.0, 0.012, 0.0, 0.1, "upper_lid")),
    "AU7": (_h(145, 0.0, -0.045, 0.0, 0.1, "lower_lid"), _h(153, 0.0, -0.04, 0.0, 0.09, "lower_lid"),
            _h(144, 0.0, -0.04, 0.0, 0.09, "lower_lid"), _h(159, 0.0, 0.018, 0.0, 0.1, "upper_lid")),
    "AU9": (_h(129, 0.01, -0.05, 0.0, 0.14), _h(98, 0.01, -0.045, 0.0, 0.14),
            _h(0, 0.0, -0.02, 0.0, 0.14, "upper_lip"), _h(37, 0.0, -0.025, 0.0, 0.14, "upper_lip"),
            _h(55, 0.02, 0.03, 0.0, 0.12, "brow")),
    "AU10": (_h(0, 0.0, -0.04, 0.0, 0.14, "upper_lip"), _h(37, 0.0, -0.055, 0.0, 0.12, "upper_lip"),
             _h(40, 0.0, -0.06, 0.0, 0.12, "upper_lip"), _h(81, 0.0, -0.055, 0.0, 0.1, "upper_lip"),
             _h(80, 0.0, -0.055, 0.0, 0.1, "upper_lip")),
    "AU12": (_h(61, -0.10, -0.12, 0.04, 0.28), _h(205, -0.03, -0.06, 0.0, 0.25)),
    "AU15": (_h(61, -0.02, 0.08, 0.0, 0.18), _h(78, -0.015, 0.07, 0.0, 0.14),
             _h(91, 0.0, 0.035, 0.0, 0.12, "lower_jaw")),
    "AU17": (_h(152, 0.0, -0.04, -0.03, 0.3, "lower_jaw"), _h(17, 0.0, -0.045, -0.02, 0.18, "lower_lip_outer"),
             _h(14, 0.0, -0.02, -0.02, 0.18)),
    "AU18": (_h(61, 0.09, 0.0, -0.06, 0.18), _h(78, 0.08, 0.0, -0.05, 0.14),
             _h(0, 0.0, 0.0, -0.05, 0.2), _h(17, 0.0, 0.0, -0.05, 0.2, "lower_jaw")),
    "AU20": (_h(61, -0.10, 0.02, 0.0, 0.2), _h(78, -0.09, 0.02, 0.0, 0.16),
             _h(172, -0.015, 0.01, 0.0, 0.25, "lower_jaw")),
    "AU23": (_h(0, 0.0, 0.02, 0.0, 0.12, "upper_lip_outer"), _h(37, 0.0, 0.02, 0.0, 0.12, "upper_lip_outer"),
             _h(17, 0.0, -0.025, 0.0, 0.12, "lower_lip_outer"), _h(84, 0.0, -0.025, 0.0, 0.12, "lower_lip_outer"),
             _h(61, 0.035, 0.0, 0.0, 0.16)),
    "AU24": (_h(0, 0.0, 0.015, -0.01, 0.14, "upper_lip_outer"), _h(17, 0.0, -0.025, -0.01, 0.16, "lower_lip_outer"),
             _h(14, 0.0, -0.01, -0.01, 0.16), _h(61, 0.02, 0.0, 0.0, 0.16)),
    "AU25": (_h(13, 0.0, -0.02, 0.0, 0.16, "upper_lip"), _h(0, 0.0, -0.015, 0.0, 0.16, "upper_lip"),
             _h(14, 0.0, 0.065, 0.0, 0.2, "lower_jaw"), _h(17, 0.0, 0.05, 0.0, 0.22, "lower_jaw"),
             _h(87, 0.0, 0.06, 0.0, 0.18, "lower_jaw")),
}


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below -1, 1 above +1, C1-smooth in between."""
    u = np.clip((x + 1.0) / 2.0, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _interp_contour(points: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y of a contour (N, 2) at abscissae x (linear, clamped to the end points)."""
    order = np.argsort(points[:, 0])
    return np.interp(x, points[order, 0], points[order, 1])


class FaceGeometry:
    """Tissue boundaries of one neutral mesh, as soft [0, 1] gates per vertex."""

    def __init__(self, mesh: np.ndarray, mirror: np.ndarray) -> None:
        self.mesh = mesh
        self.mirror = mirror
        xy = mesh[:, :2]
        self.lower_jaw = self._lower_jaw_gate(xy)
        self.upper_lip = 1.0 - self.lower_jaw
        # Away from the lip contact line: lets a handle thin or press the lips (AU23/24/17)
        # without moving the inner contours, which would make the lips cross.
        away = np.clip(np.abs(xy[:, 1] - self._mouth_line(xy[:, 0])) / 0.05, 0.0, 1.0)
        self.upper_lip_outer = self.upper_lip * away
        self.lower_lip_outer = self.lower_jaw * away
        self.upper_lid = np.zeros(N_MEDIAPIPE)
        self.lower_lid = np.zeros(N_MEDIAPIPE)
        self.brow = np.ones(N_MEDIAPIPE)
        for eye in EYES.values():
            up, low, brow = self._eye_gates(xy, eye)
            self.upper_lid = np.maximum(self.upper_lid, up)
            self.lower_lid = np.maximum(self.lower_lid, low)
            self.brow = np.minimum(self.brow, brow)

    def gate(self, name: str) -> np.ndarray:
        if name == "none":
            return np.ones(N_MEDIAPIPE)
        return getattr(self, name)

    def _mouth_line(self, x: np.ndarray) -> np.ndarray:
        """y of the lip contact line at x, continued through the lip corners to the jaw hinges."""
        m = self.mesh
        y = (_interp_contour(m[list(UPPER_INNER), :2], x) + _interp_contour(m[list(LOWER_INNER), :2], x)) / 2
        hinge_r, hinge_l = JAW_PIVOT_VERTEX, int(self.mirror[JAW_PIVOT_VERTEX])
        knots = m[[hinge_r, 61, 78, 308, 291, hinge_l], :2]
        outside = (x < m[78, 0]) | (x > m[308, 0])
        return np.where(outside, np.interp(x, knots[:, 0], knots[:, 1]), y)

    def _lower_jaw_gate(self, xy: np.ndarray) -> np.ndarray:
        """1 on the lower lip, chin and lower jaw; 0 on the upper lip and above."""
        line = self._mouth_line(xy[:, 0])
        centre = (self.mesh[308, 0] + self.mesh[78, 0]) / 2
        half_width = (self.mesh[308, 0] - self.mesh[78, 0]) / 2
        beyond = np.maximum(0.0, np.abs(xy[:, 0] - centre) - half_width)
        # Sharp only where the lips can actually separate (between the inner corners); beyond
        # them the skin is continuous and stretches between jaw and maxilla, so the boundary
        # softens quickly -- a sharp one there would tear the mouth corners.
        tau = 0.012 + 0.8 * beyond
        gate = _smoothstep((xy[:, 1] - line) / tau)
        # Lip membership is topological (a photo's lips may be stretched thin or nearly folded,
        # so geometry cannot be trusted there). The opening is lens-shaped: the lips separate fully
        # at the centre and not at the corners, so the lip gates taper to 0.5 (half jaw) there.
        lens = np.clip(1.0 - ((xy[:, 0] - centre) / half_width) ** 2, 0.0, 1.0)
        upper, lower = list(UPPER_LIP_VERTICES), list(LOWER_LIP_VERTICES)
        gate[upper] = 0.5 - 0.5 * lens[upper]
        gate[lower] = 0.5 + 0.5 * lens[lower]
        gate[list(LIP_CORNER_VERTICES)] = 0.5
        return gate

    def _eye_gates(self, xy: np.ndarray, eye: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Upper-lid, lower-lid and brow gates around one eye."""
        up = xy[list(eye["upper"])]
        low = xy[list(eye["lower"])]
        centre = (up.mean(axis=0) + low.mean(axis=0)) / 2
        width = float(np.linalg.norm(up[0] - up[-1]))
        corners = up[[0, -1]]
        corners = corners[np.argsort(corners[:, 0])]
        line = np.interp(xy[:, 0], corners[:, 0], corners[:, 1])  # the eye slit, corner to corner
        # Super-Gaussian neighbourhood of the eye: ~1 over the lids, ~0 on the cheek and temple.
        r2 = np.sum(((xy - centre) / (0.75 * width, 0.6 * width)) ** 2, axis=1)
        near = np.exp(-r2 ** 2)
        upper = _smoothstep((line - xy[:, 1]) / 0.01) * near
        lower = _smoothstep((xy[:, 1] - line) / 0.01) * near
        lid_top = _interp_contour(up, xy[:, 0])
        # Skin well above the upper lid moves with the brow; the lids and the eye do not.
        brow = 1.0 - (1.0 - _smoothstep((lid_top - 0.06 - xy[:, 1]) / 0.05)) * near
        return upper, lower, brow


class AUModel:
    """AU displacement fields of one neutral face (468, 3) in metric units.

    ``basis`` is (N_AUS, 468, 3): the displacement of every mesh point at intensity 1 of each AU.
    """

    def __init__(self, mesh: np.ndarray, mirror: np.ndarray) -> None:
        mesh = np.asarray(mesh, dtype=np.float64)
        if mesh.shape != (N_MEDIAPIPE, 3) or not np.all(np.isfinite(mesh)):
            raise SchemaError(f"AU model needs a finite (468, 3) mesh, got {mesh.shape}")
        self.mesh = mesh
        self.mirror = np.asarray(mirror, dtype=np.int64)
        self.geometry = FaceGeometry(mesh, self.mirror)
        basis = np.zeros((N_AUS, N_MEDIAPIPE, 3))
        for name, handles in HANDLES.items():
            basis[AU_INDEX[name]] = self._blend(handles)
        basis[AU_INDEX["AU26"]] = self._jaw_drop()
        basis[AU_INDEX["AU45"]] = self._eye_closure()
        basis[:, ANCHORS] = 0.0  # the metric frame's anchors do not move with expressions
        self.basis = basis

    @property
    def basis113(self) -> np.ndarray:
        """(N_AUS, 113, 3) fields at the expression landmarks, canonical order."""
        return self.basis[:, MP_INDICES]

    def displacement(self, intensities: np.ndarray) -> np.ndarray:
        """Mesh displacement (..., 468, 3) for AU intensities (..., N_AUS)."""
        a = np.asarray(intensities, dtype=np.float64)
        return np.tensordot(a, self.basis, axes=([-1], [0]))

    def _mirrored(self, handles: tuple[Handle, ...]) -> list[Handle]:
        out = list(handles)
        for h in handles:
            twin = int(self.mirror[h.vertex])
            if twin != h.vertex:
                out.append(Handle(twin, (-h.vector[0], h.vector[1], h.vector[2]), h.sigma, h.gate))
        return out

    def _blend(self, handles: tuple[Handle, ...]) -> np.ndarray:
        """Gaussian blend of handle vectors, capped so overlapping handles never add up."""
        num = np.zeros((N_MEDIAPIPE, 3))
        den = np.zeros(N_MEDIAPIPE)
        for h in self._mirrored(handles):
            d2 = np.sum((self.mesh - self.mesh[h.vertex]) ** 2, axis=1)
            w = np.exp(-d2 / (2 * h.sigma ** 2)) * self.geometry.gate(h.gate)
            num += w[:, None] * np.array(h.vector)
            den += w
        return num / np.maximum(1.0, den)[:, None]

    def _jaw_drop(self) -> np.ndarray:
        """Rotation of the lower jaw about the hinge axis through both jaw joints.

        A point moves down in proportion to how far *in front of* the hinge it is and back in
        proportion to how far below it is. Mesh depth near the face contour is unreliable, so
        "in front of the hinge" is modelled from the point's lateral position: ~10 cm for the chin
        and lips, falling to zero at the hinges (vertices 234/454).
        """
        m = self.mesh
        hinge_r, hinge_l = m[JAW_PIVOT_VERTEX], m[self.mirror[JAW_PIVOT_VERTEX]]
        half_span = (hinge_l[0] - hinge_r[0]) / 2
        centre_x = (hinge_l[0] + hinge_r[0]) / 2
        hinge_y = (hinge_r[1] + hinge_l[1]) / 2 + JAW_HINGE_BELOW
        front = JAW_FRONT * np.clip(1.0 - ((m[:, 0] - centre_x) / half_span) ** 2, 0.0, None)
        below = np.clip(m[:, 1] - hinge_y, 0.0, None)
        theta = JAW_DROP / max(front[CHIN], 1e-6)
        field = np.stack([np.zeros(N_MEDIAPIPE), theta * front, theta * below], axis=1)
        return field * self.geometry.lower_jaw[:, None]

    def _eye_closure(self) -> np.ndarray:
        """Each upper-lid point moves down onto the lower lid below it; lid skin follows, fading
        toward the brow; the lower lid rises a little."""
        m = self.mesh
        x, y = m[:, 0], m[:, 1]
        field = np.zeros((N_MEDIAPIPE, 3))
        for eye in EYES.values():
            up, low = m[list(eye["upper"]), :2], m[list(eye["lower"]), :2]
            lo_x, hi_x = min(up[0, 0], up[-1, 0]), max(up[0, 0], up[-1, 0])
            within = _smoothstep(np.minimum(x - lo_x, hi_x - x) / 0.03)
            y_up, y_low = _interp_contour(up, x), _interp_contour(low, x)
            gap = np.clip(y_low - y_up, 0.0, None)
            is_upper = _smoothstep((y_up + 0.02 - y) / 0.02)
            above = np.clip(y_up - y, 0.0, None)
            below = np.clip(y - y_low, 0.0, None)
            field[:, 1] += 0.9 * gap * within * is_upper * np.exp(-above ** 2 / (2 * 0.09 ** 2))
            field[:, 1] -= 0.06 * gap * within * (1 - is_upper) * np.exp(-below ** 2 / (2 * 0.06 ** 2))
        return field


def mirror_map(mesh: np.ndarray) -> np.ndarray:
    """Left/right twin of every mesh vertex (midline vertices map to themselves).

    The midline vertices of MediaPipe's topology are fixed; the others are paired by optimal
    assignment between the mesh and its reflection x -> -x in the metric frame (whose origin and x
    axis are symmetric by construction), so slight asymmetry of a real face does not matter.
    """
    from scipy.optimize import linear_sum_assignment

    pts = np.asarray(mesh, dtype=np.float64)
    side = np.setdiff1d(np.arange(len(pts)), MIDLINE_VERTICES)
    reflected = pts[side] * (-1.0, 1.0, 1.0)
    cost = np.sum((pts[side][:, None, :] - reflected[None, :, :]) ** 2, axis=2)
    np.fill_diagonal(cost, np.inf)  # a side vertex is never its own twin
    rows, cols = linear_sum_assignment(cost)
    twin = np.arange(len(pts), dtype=np.int64)
    twin[side[rows]] = side[cols]
    return twin
