"""Synthetic identities: the neutral template plus plausible shape variation, and personal style.

Shape variation is a sum of smooth, local deformations of the 468-point template -- lower-face
length, jaw width, eye spacing/size/height/tilt, brow height/tilt, mouth width/height, lip
thickness, chin, a small profile (pitch) difference and a little random asymmetry -- with
spreads of a few percent, the order of adult anthropometric variation once overall size is
normalized away. After deforming, each face is re-expressed in its own metric frame (anchors ->
origin, axes, unit), exactly as the extractor would, so identities live in the same space and scale
as real measurements.

Personal style: per-AU gains (how strongly this person makes each action), left/right asymmetry,
overall expressivity, blink rate and measurement-noise level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..perception.pose import ANCHOR_LEFT, ANCHOR_MIDLINE, ANCHOR_RIGHT, head_frame
from ..schema import MP_INDICES
from .au import EYES, N_AUS, AUModel
from .template import Template, load_template


@dataclass(frozen=True)
class ShapeConfig:
    """Standard deviations of the shape variation (metric units of ~46 mm, or fractions)."""

    lower_face_length: float = 0.08   # fraction of the nose-to-chin distance
    jaw_width: float = 0.06           # fraction
    eye_spacing: float = 0.04         # units, per eye, symmetric
    eye_size: float = 0.07            # fraction
    eye_height: float = 0.035         # units
    eye_tilt_deg: float = 3.0
    brow_height: float = 0.06         # units
    brow_tilt_deg: float = 4.0
    mouth_width: float = 0.07         # fraction
    mouth_height: float = 0.06        # units
    lip_thickness: float = 0.15       # fraction
    chin_length: float = 0.07         # units
    profile_deg: float = 2.0          # pitch of the face below the anchors
    asymmetry: float = 0.02           # units, amplitude of random smooth bumps
    lower_face_mean: float = 0.0      # mean fraction added to the nose-to-chin distance (calibrated: real faces' is longer)
    brow_height_mean: float = 0.0     # units, mean brow raise (calibrated)


@dataclass(frozen=True)
class StyleConfig:
    au_gain_sigma: float = 0.25       # log-sd of each AU's personal gain
    expressivity_sigma: float = 0.2   # log-sd of the overall gain
    asymmetry_sigma: float = 0.08     # left/right imbalance of each AU
    blink_rate_hz: tuple[float, float] = (0.1, 0.35)
    noise_sigma: float = 0.3          # log-sd of the person's measurement-noise level
    #: Gain of each region group's expression motion ("lips", "jaw", "brows", "eyes"; blinks,
    #: AU45, are left alone); None = 1 everywhere (the original generator).
    region_gain: tuple[tuple[str, float], ...] | None = None


@dataclass
class Identity:
    """One synthetic person."""

    subject: str
    mesh: np.ndarray          # (468, 3) neutral metric mesh
    model: AUModel            # AU fields on this face
    basis113: np.ndarray      # (N_AUS, 113, 3) personal AU fields (gain, asymmetry applied)
    gains: np.ndarray         # (N_AUS,)
    blink_rate_hz: float
    noise_level: float

    @property
    def neutral113(self) -> np.ndarray:
        return self.mesh[MP_INDICES]

    def landmarks(self, aus: np.ndarray) -> np.ndarray:
        """Noise-free (T, 113, 3) landmarks for AU intensities (T, N_AUS)."""
        return self.neutral113 + np.tensordot(aus, self.basis113, axes=([-1], [0]))


def _bump(mesh: np.ndarray, centre: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    d2 = np.sum(((mesh[:, :2] - centre[:2]) / sigma) ** 2, axis=1)
    return np.exp(-d2 / 2)


def _rotate2d(points: np.ndarray, centre: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rel = points - centre
    return centre + rel @ np.array([[c, s], [-s, c]])


def deform(template: np.ndarray, rng: np.random.Generator, cfg: ShapeConfig) -> np.ndarray:
    """A new neutral face: the template with random smooth local deformations."""
    m = template.astype(np.float64).copy()
    xy = m[:, :2]
    nose_base, chin = template[2, :2], template[152, :2]
    # Lower face: stretch below the nose base; jaw width grows toward the chin.
    below = np.clip((template[:, 1] - nose_base[1]) / (chin[1] - nose_base[1]), 0.0, None)
    xy[:, 1] += (cfg.lower_face_mean + rng.normal(0, cfg.lower_face_length)) * below * (chin[1] - nose_base[1])
    jaw = np.clip((template[:, 1] - template[33, 1]) / (chin[1] - template[33, 1]), 0.0, 1.0)
    xy[:, 0] *= 1.0 + rng.normal(0, cfg.jaw_width) * jaw
    # Eyes (mirror-symmetric changes) and brows.
    spacing, size = rng.normal(0, cfg.eye_spacing), rng.normal(0, cfg.eye_size)
    height, tilt = rng.normal(0, cfg.eye_height), np.radians(rng.normal(0, cfg.eye_tilt_deg))
    brow_up, brow_tilt = cfg.brow_height_mean + rng.normal(0, cfg.brow_height), np.radians(rng.normal(0, cfg.brow_tilt_deg))
    for eye in EYES.values():
        ids = list(eye["upper"]) + list(eye["lower"])
        centre = template[ids, :2].mean(axis=0)
        side = np.sign(centre[0])
        w = _bump(template, centre, 0.25)[:, None]
        moved = centre + (xy - centre) * (1 + size)
        moved = _rotate2d(moved, centre, side * tilt)
        moved += (side * spacing, height)
        xy[:] = xy + w * (moved - xy)
        brow_centre = centre + (0.0, -0.3)
        wb = _bump(template, brow_centre, np.array([0.35, 0.12]))[:, None]
        brow = _rotate2d(xy, brow_centre, side * brow_tilt) + (0.0, -brow_up)
        xy[:] = xy + wb * (brow - xy)
    # Mouth: width, height, lip thickness about the lip contact line.
    mouth = template[[13, 14], :2].mean(axis=0)
    wm = _bump(template, mouth, np.array([0.55, 0.25]))[:, None]
    scale = np.array([1 + rng.normal(0, cfg.mouth_width), 1 + rng.normal(0, cfg.lip_thickness)])
    xy[:] = xy + wm * ((mouth + (xy - mouth) * scale + (0.0, rng.normal(0, cfg.mouth_height))) - xy)
    wc = _bump(template, chin, 0.35)[:, None]
    xy[:] = xy + wc * np.array([0.0, rng.normal(0, cfg.chin_length)])
    # Profile: the face below the anchors pitched slightly relative to them.
    angle = np.radians(rng.normal(0, cfg.profile_deg))
    lower = np.clip((template[:, 1] - 0.2) / 1.0, 0.0, 1.0)
    y, z = m[:, 1].copy(), m[:, 2].copy()
    m[:, 1] = y + lower * (y * (np.cos(angle) - 1) - z * np.sin(angle))
    m[:, 2] = z + lower * (y * np.sin(angle) + z * (np.cos(angle) - 1))
    # Asymmetry: a few random smooth bumps.
    for _ in range(3):
        centre = template[rng.integers(len(template)), :2]
        xy[:] = xy + _bump(template, centre, 0.4)[:, None] * rng.normal(0, cfg.asymmetry, 2)
    return renormalize(m)


def renormalize(mesh: np.ndarray) -> np.ndarray:
    """Re-express a mesh in its own metric frame (what the extractor would report for it)."""
    frame = head_frame(mesh[ANCHOR_RIGHT], mesh[ANCHOR_LEFT], mesh[list(ANCHOR_MIDLINE)])
    return frame.to_metric(mesh).astype(np.float64)


def personal_basis(model: AUModel, gains: np.ndarray, asymmetry: np.ndarray) -> np.ndarray:
    """(N_AUS, 113, 3) AU fields at the landmarks with personal gain and left/right imbalance."""
    x = model.mesh[MP_INDICES, 0]
    side = np.tanh(x / 0.3)
    factor = gains[:, None] * (1.0 + asymmetry[:, None] * side[None, :])
    return model.basis113 * factor[:, :, None]


def apply_region_gain(basis113: np.ndarray, gain: dict[str, float]) -> np.ndarray:
    """Scale each region group's motion in all AU fields except AU45 (the blink)."""
    from ..schema import REGION_OF

    group = {"lips": "lips", "jaw": "jaw", "left_brow": "brows", "right_brow": "brows",
             "left_eye": "eyes", "right_eye": "eyes"}
    factor = np.array([gain.get(group[r], 1.0) for r in REGION_OF])
    out = basis113.copy()
    out[:-1] *= factor[None, :, None]
    return out


def make_identity(subject: str, rng: np.random.Generator, template: Template | None = None,
                  shape: ShapeConfig | None = None, style: StyleConfig | None = None) -> Identity:
    template = template or load_template()
    shape, style = shape or ShapeConfig(), style or StyleConfig()
    mesh = deform(template.mesh, rng, shape)
    model = AUModel(mesh, template.mirror)
    expressivity = np.exp(rng.normal(0, style.expressivity_sigma))
    gains = expressivity * np.exp(rng.normal(0, style.au_gain_sigma, N_AUS))
    gains[-1] = 1.0  # AU45: a blink closes the eye whatever the person's expressivity
    asymmetry = rng.normal(0, style.asymmetry_sigma, N_AUS)
    asymmetry[-1] = 0.0
    basis = personal_basis(model, gains, asymmetry)
    if style.region_gain:
        basis = apply_region_gain(basis, dict(style.region_gain))
    return Identity(
        subject=subject, mesh=mesh, model=model, basis113=basis,
        gains=gains, blink_rate_hz=float(rng.uniform(*style.blink_rate_hz)),
        noise_level=float(np.exp(rng.normal(0, style.noise_sigma))),
    )
