"""Generate ``config/face_twin.yaml``: the robot's rest face and its face ranges.

    emo bundled twin-config                 # re-extract the photo face with MediaPipe
    emo bundled twin-config --from-stored   # reuse the photo face stored in the file
    emo bundled twin-config --out other.yaml --check   # compare instead of writing

Where the numbers come from:

1. **Rest face.** MediaPipe runs on a head crop of scikit-image's astronaut portrait (a real,
   near-frontal face); its pose-normalized metric x, y are the *source face*. A robot face is
   made from it: mirror-averaged left/right (Emo's expressions are symmetric and its servos are
   in mirror pairs); each lid pair given a common x (the robot's lids close vertically); the smile
   removed and the lips closed along a level seam (the astronaut smiles with parted lips); the
   mouth narrowed to a neutral width; a minimum upper-lip height restored (smiling thins it); the
   chin raised by the amount the lower lip rose when the mouth closed.
2. **Face ranges.** Each command's per-landmark displacement over its full travel, from the
   geometric rules below (every amplitude is a named constant, in face units = anchor widths;
   for scale: eye width ~0.6, brow-to-chin ~2.4). Amplitudes were set so that the extremes look like
   the extremes of a human face of this size; they are the robot's design, not measurements.
3. **Mechanism parameters** of the couplings (brow skin limit, lid/lip contact, five-bar linkage,
   jaw hinge, lip thickness laws) and a fixed, seeded per-robot left/right calibration asymmetry.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import linear_sum_assignment

from ..errors import ConfigError, InputError
from ..resources import config_path
from ..schema import COMMAND_NAMES, N_LANDMARKS, REGIONS
from . import topology as topo
from .config import (
    CONFIG_NAME,
    BrowSpec,
    CommandSpec,
    EyeSpec,
    FiveBarSpec,
    JawSpec,
    LipSpec,
    TwinConfig,
    dump_twin_config,
)
from .mechanics import servo_response

LOG = logging.getLogger(__name__)

# --- source photo ------------------------------------------------------------------------------
PHOTO_CROP = (slice(20, 276), slice(110, 366))   # rows, cols of skimage.data.astronaut()
PHOTO_SIZE = 512

# --- rest face ---------------------------------------------------------------------------------
SEAM_FRACTION = 0.3        # closed-lip seam: this far from the upper toward the lower inner lip
MOUTH_NARROW = 0.9         # neutral mouth width / smiling mouth width
UPPER_LIP_MIN = 0.1        # minimum upper-lip height at the centre (smiling stretches it thin)

# --- calm values (from the mechanics: brows and lip curl and corner linkages mid-travel, lids
# --- open with room to widen, lip raise/drop slightly off their stops, jaw closed) ---------------
CALM = {"brow_inner": 0.5, "brow_outer": 0.5, "eyelid_upper": 0.3, "eyelid_lower": 0.2,
        "lip_upper_raise": 0.2, "lip_upper_curl": 0.5, "lip_lower_drop": 0.2, "lip_lower_curl": 0.5,
        "mouth_corner_up": 0.5, "mouth_corner_down": 0.5, "jaw_open": 0.0}
LOGISTIC = {  # (center, gain) of each servo's response curve
    "brow_inner": (0.5, 6.0), "brow_outer": (0.5, 6.0), "eyelid_upper": (0.5, 6.0),
    "eyelid_lower": (0.5, 5.0), "lip_upper_raise": (0.5, 5.0), "lip_upper_curl": (0.5, 5.0),
    "lip_lower_drop": (0.5, 5.0), "lip_lower_curl": (0.5, 5.0)}

# --- brows ---------------------------------------------------------------------------------------
BROW_INNER_TRAVEL = 0.34   # vertical travel of the innermost brow point, command 0 -> 1
BROW_OUTER_TRAVEL = 0.30
BROW_INNER_SPREAD = 0.05   # inner brow moves apart when raised, together when lowered (corrugator)
BROW_CROSS_WEIGHT = 0.2    # how much each brow command moves the far end of the brow
BROW_SKIN_LIMIT = 0.2

# --- lids ----------------------------------------------------------------------------------------
LID_OVERSHOOT = 0.03       # upper lid's target goes this far past the lower lid's rest at command 1
LOWER_LID_RAISE = 0.5      # lower lid alone rises this fraction of the open eye at command 1
LOWER_LID_CORNER_LIFT = 0.015  # outer eye corner lift when the lower lid rises fully

# --- jaw -----------------------------------------------------------------------------------------
CHIN_DROP = 0.5            # chin drop at full opening
JAW_PHI0_DEG, JAW_TRAVEL_DEG = 40.0, 35.0
JAW_NARROW = 0.12          # jaw angles move in as the jaw swings down and back
JAW_DRIFT = 0.012          # per-robot lateral drift of the chin on opening (hinge play)
LOWER_LIP_ON_JAW = 0.85    # lower-lip centre follows this fraction of the chin drop
UPPER_LIP_ON_JAW = 0.06    # upper lip is stretched down this fraction
CORNER_ON_JAW = (0.3, 0.06)  # corners: drop fraction, inward pull (face units) at full opening

# --- lips ----------------------------------------------------------------------------------------
LIP_RAISE = 0.16           # upper-lip raise at full travel (peaks over the canines)
LIP_DROP = 0.15            # lower-lip drop at full travel
CURL_INNER_SHIFT = 0.015   # curling out shifts the inner contour toward the teeth' edge
POUT_NARROW = 0.05         # curling out pulls each corner toward the midline
CORNER_FOLLOW_POWER = 3.0  # inner-lip follow of a corner: ((1 + x/W) / 2) ** power
CHEEK_GAIN = 0.35

# --- mouth-corner five-bar linkage (linkage units; SCALE converts to face units) ----------------
FIVE_BAR = dict(base_half_gap=0.5, crank=0.45, coupler=1.1, crank_a_deg=20.0, crank_c_deg=-20.0,
                travel_deg=60.0, scale=1.2, skin_limit_lateral=0.14, skin_limit_vertical=0.25)

# --- per-robot asymmetry --------------------------------------------------------------------------
ASYMMETRY_SEED = 2024
ASYM_CENTER = 0.025        # max calibration offset of a servo's response centre (command units)
ASYM_GAIN = 0.04           # max relative gain difference of a servo's linkage
ASYM_CRANK_DEG = 2.0       # max crank horn offset of a corner servo

NOISE_STD = 0.003          # MediaPipe jitter on a still face: ~0.3 px at ~100 px per face unit
MOTION_SAMPLES = 20000


def extract_source_face() -> np.ndarray:
    """Metric x, y of the astronaut photo's face (needs MediaPipe)."""
    import cv2
    from skimage import data

    from ..perception import ExtractorConfig, FaceLandmarkExtractor

    rgb = cv2.resize(data.astronaut()[PHOTO_CROP], (PHOTO_SIZE, PHOTO_SIZE), interpolation=cv2.INTER_CUBIC)
    with FaceLandmarkExtractor(ExtractorConfig(static_image_mode=True)) as extractor:
        face = extractor.process(rgb)
    if not face.detected:
        raise InputError("MediaPipe found no face in the astronaut photo")
    return face.metric[:, :2].astype(np.float64)


# ================================================================ rest face
def mirror_map(points: np.ndarray) -> np.ndarray:
    """Mirror twin of each landmark: optimal assignment of each point to the reflection of another."""
    flipped = points * np.array([-1.0, 1.0])
    cost = np.linalg.norm(points[:, None, :] - flipped[None, :, :], axis=-1)
    _, mirror = linear_sum_assignment(cost)
    if not np.array_equal(mirror[mirror], np.arange(N_LANDMARKS)):
        raise InputError("source face is too asymmetric to pair its landmarks left/right")
    return mirror


def symmetrize(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    out = 0.5 * (points + points[mirror] * np.array([-1.0, 1.0]))
    out[mirror == np.arange(N_LANDMARKS), 0] = 0.0
    return out


def _lid_pairs_common_x(face: np.ndarray) -> None:
    x = 0.5 * (face[topo.LID_UPPER, 0] + face[topo.LID_LOWER, 0])
    face[topo.LID_UPPER, 0] = x
    face[topo.LID_LOWER, 0] = x


def _close_lips(face: np.ndarray) -> float:
    """Level seam, closed lips; returns the lower lip's rise at the centre (for the chin)."""
    up_curve, lo_curve = topo.UPPER_INNER_CURVE, topo.LOWER_INNER_CURVE
    centre = len(topo.LIP_UPPER_INNER) // 2
    upper_c, lower_c = face[topo.LIP_UPPER_INNER[centre], 1], face[topo.LIP_LOWER_INNER[centre], 1]
    seam = upper_c + SEAM_FRACTION * (lower_c - upper_c)
    # Inner pairs share x; every inner point goes to the seam, outer points move with the inner
    # contour beneath them, so each lip keeps its height.
    x_pair = 0.5 * (face[topo.LIP_UPPER_INNER, 0] + face[topo.LIP_LOWER_INNER, 0])
    face[topo.LIP_UPPER_INNER, 0] = x_pair
    face[topo.LIP_LOWER_INNER, 0] = x_pair
    for curve, outer in ((up_curve, topo.LIP_UPPER_OUTER), (lo_curve, topo.LIP_LOWER_OUTER)):
        shift = seam - face[curve, 1]
        order = np.argsort(face[curve, 0])
        face[outer, 1] += np.interp(face[outer, 0], face[curve, 0][order], shift[order])
    corner_shift = seam - face[topo.LIP_INNER_CORNERS, 1]
    face[topo.LIP_OUTER_CORNERS, 1] += corner_shift
    face[topo.LIP_INNER_ALL, 1] = seam
    lips = REGIONS["lips"]
    face[lips, 0] *= MOUTH_NARROW
    # Restore a neutral upper-lip height (a smile stretches the upper lip thin).
    half_width = face[topo.LIP_INNER_CORNERS[1], 0]
    u = np.clip(face[topo.LIP_UPPER_OUTER, 0] / half_width, -1.0, 1.0)
    min_height = UPPER_LIP_MIN * (1.0 - u ** 2) ** 0.6
    face[topo.LIP_UPPER_OUTER, 1] = np.minimum(face[topo.LIP_UPPER_OUTER, 1], seam - min_height)
    return float(seam - lower_c)


def jaw_weight(face: np.ndarray) -> np.ndarray:
    """How much of the chin's drop each jaw-contour point shares (0 at the hinge, 1 at the chin)."""
    y = face[topo.JAW, 1]
    hinge = 0.5 * (y[0] + y[-1])
    return np.clip((y - hinge) / (face[topo.CHIN, 1] - hinge), 0.0, 1.0) ** 1.2


def build_rest_face(source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mirror = mirror_map(source)
    face = symmetrize(source, mirror)
    _lid_pairs_common_x(face)
    rise = _close_lips(face)
    face[topo.JAW, 1] += rise * jaw_weight(face)
    return symmetrize(face, mirror), mirror


# ================================================================ fields
def _normalized(c_calm: float, name: str) -> float:
    center, gain = LOGISTIC[name]
    return float(servo_response(np.array(c_calm), center, gain))


def brow_fields(face: np.ndarray) -> dict[str, np.ndarray]:
    inner = np.zeros((N_LANDMARKS, 2))
    outer = np.zeros((N_LANDMARKS, 2))
    for side in ("left", "right"):
        ids = REGIONS[f"{side}_brow"]
        ax = np.abs(face[ids, 0])
        s = (ax - ax.min()) / (ax.max() - ax.min())          # 0 at the inner end, 1 at the outer
        w_in = BROW_CROSS_WEIGHT + (1 - BROW_CROSS_WEIGHT) * (1 - s) ** 1.5
        w_out = BROW_CROSS_WEIGHT * 0.75 + (1 - BROW_CROSS_WEIGHT * 0.75) * s ** 1.5
        inner[ids, 1] = -BROW_INNER_TRAVEL * w_in
        inner[ids, 0] = BROW_INNER_SPREAD * (1 - s) ** 2 * np.sign(face[ids, 0])
        outer[ids, 1] = -BROW_OUTER_TRAVEL * w_out
    return {"brow_inner": inner, "brow_outer": outer}


def lid_fields(face: np.ndarray) -> dict[str, np.ndarray]:
    upper = np.zeros((N_LANDMARKS, 2))
    lower = np.zeros((N_LANDMARKS, 2))
    aperture = face[topo.LID_LOWER, 1] - face[topo.LID_UPPER, 1]
    profile = aperture / aperture.max()
    r_up = _normalized(CALM["eyelid_upper"], "eyelid_upper")
    r_lo = _normalized(CALM["eyelid_lower"], "eyelid_lower")
    # Travel from c=0 to c=1, placed so that the calm value is the rest face.
    # The upper lid alone closes the eye (a blink) a little before command 1; the lower lid rises
    # part of the way (a squint). Both together overlap, and the contact model makes them meet.
    upper[topo.LID_UPPER, 1] = (aperture + LID_OVERSHOOT * profile) / (1 - r_up)
    lower[topo.LID_LOWER, 1] = -LOWER_LID_RAISE * aperture / (1 - r_lo)
    lower[topo.EYE_OUTER_CORNERS, 1] = -LOWER_LID_CORNER_LIFT / (1 - r_lo)
    return {"eyelid_upper": upper, "eyelid_lower": lower}


def _mouth_coords(face: np.ndarray) -> tuple[np.ndarray, float]:
    half_width = face[topo.LIP_INNER_CORNERS[1], 0]
    return np.clip(face[:, 0] / half_width, -1.0, 1.0), float(half_width)


def jaw_field(face: np.ndarray) -> np.ndarray:
    field = np.zeros((N_LANDMARKS, 2))
    u, _ = _mouth_coords(face)
    w = jaw_weight(face)
    jaw = topo.JAW
    field[jaw, 1] = CHIN_DROP * w
    field[jaw, 0] = -JAW_NARROW * w * (1 - w) * np.sign(face[jaw, 0]) + JAW_DRIFT * w
    ui, li = topo.LIP_UPPER_INNER, topo.LIP_LOWER_INNER
    field[li, 1] = CHIN_DROP * LOWER_LIP_ON_JAW * (1 - 0.55 * u[li] ** 2)
    field[ui, 1] = CHIN_DROP * UPPER_LIP_ON_JAW * (1 - u[ui] ** 2)
    corners = topo.LIP_INNER_CORNERS
    field[corners, 1] = CHIN_DROP * CORNER_ON_JAW[0]
    field[corners, 0] = -CORNER_ON_JAW[1] * np.sign(face[corners, 0])
    field[li, 0] = -CORNER_ON_JAW[1] * u[li] ** 3        # lip skin follows the corners in
    field[ui, 0] = -CORNER_ON_JAW[1] * u[ui] ** 3
    return field


def lip_fields(face: np.ndarray) -> dict[str, np.ndarray]:
    u, _ = _mouth_coords(face)
    ui, li, corners = topo.LIP_UPPER_INNER, topo.LIP_LOWER_INNER, topo.LIP_INNER_CORNERS
    # Raiser/depressor pull hardest over the canines (|u| ~ 0.45), less at the centre, not at the corners.
    profile = (0.55 + 0.45 * np.exp(-((np.abs(u) - 0.45) / 0.3) ** 2)) * (1 - u ** 4)
    fields = {name: np.zeros((N_LANDMARKS, 2)) for name in
              ("lip_upper_raise", "lip_upper_curl", "lip_lower_drop", "lip_lower_curl")}
    fields["lip_upper_raise"][ui, 1] = -LIP_RAISE * profile[ui]
    fields["lip_upper_raise"][corners, 1] = -0.15 * LIP_RAISE
    fields["lip_lower_drop"][li, 1] = LIP_DROP * profile[li]
    fields["lip_lower_drop"][corners, 1] = 0.1 * LIP_DROP
    fields["lip_upper_curl"][ui, 1] = -CURL_INNER_SHIFT * (1 - u[ui] ** 2)
    fields["lip_lower_curl"][li, 1] = CURL_INNER_SHIFT * (1 - u[li] ** 2)
    for name, share in (("lip_upper_curl", 1.0), ("lip_lower_curl", 0.5)):
        fields[name][corners, 0] = -share * POUT_NARROW * np.sign(face[corners, 0])
        for rows in (ui, li):
            fields[name][rows, 0] = -share * POUT_NARROW * u[rows] ** 3
    return fields


def follow_weights(face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inner-lip follow of the robot's LEFT corner, and cheek (jaw contour) bulge weights."""
    u, _ = _mouth_coords(face)
    follow = np.zeros(N_LANDMARKS)
    inner = topo.LIP_INNER_ALL
    follow[inner] = ((1.0 + u[inner]) / 2.0) ** CORNER_FOLLOW_POWER
    cheek = np.zeros(N_LANDMARKS)
    jaw = topo.JAW
    mouth_y = face[topo.LIP_INNER_CORNERS[1], 1]
    cheek[jaw] = np.exp(-((face[jaw, 1] - mouth_y) / 0.45) ** 2)
    cheek[topo.CHIN] = 0.0
    return follow, cheek


# ================================================================ assembly
def _asymmetry(rng: np.random.Generator) -> tuple[dict, tuple]:
    per_command = {}
    for name in COMMAND_NAMES:
        if name == "jaw_open":          # one servo: no left/right difference (its drift is in the field)
            per_command[name] = ((0.0, 0.0), (1.0, 1.0))
            continue
        sr, sl = (float(v) for v in np.round(rng.uniform(-ASYM_CENTER, ASYM_CENTER, 2), 4))
        gr, gl = (float(v) for v in np.round(1.0 + rng.uniform(-ASYM_GAIN, ASYM_GAIN, 2), 4))
        shift, gain = (sr, sl), (gr, gl)     # (robot's right, left)
        if name not in LOGISTIC:    # linkage servos: their offset is the crank horn angle below
            shift = (0.0, 0.0)
        per_command[name] = (shift, gain)
    crank = np.round(rng.uniform(-ASYM_CRANK_DEG, ASYM_CRANK_DEG, (2, 2)), 3)
    return per_command, (tuple(map(float, crank[0])), tuple(map(float, crank[1])))


def build_config(source: np.ndarray, provenance: dict) -> TwinConfig:
    # Round first: the file stores the source face to 5 decimals, and a rebuild from the stored
    # copy must give the very same file.
    source = np.round(np.asarray(source, dtype=np.float64), 5)
    rest, mirror = build_rest_face(source)
    fields = {**brow_fields(rest), **lid_fields(rest), **lip_fields(rest), "jaw_open": jaw_field(rest)}
    fields["mouth_corner_up"] = np.zeros((N_LANDMARKS, 2))
    fields["mouth_corner_down"] = np.zeros((N_LANDMARKS, 2))
    asym, crank_offsets = _asymmetry(np.random.default_rng(ASYMMETRY_SEED))
    commands = {}
    for name in COMMAND_NAMES:
        if name in LOGISTIC:
            response, (center, gain) = "logistic", LOGISTIC[name]
        elif name == "jaw_open":
            response, center, gain = "jaw", 0.0, 1.0
        else:
            response, center, gain = "linkage", 0.5, 1.0
        commands[name] = CommandSpec(name=name, calm=CALM[name], response=response, center=center,
                                     gain=gain, side_center_shift=asym[name][0], side_gain=asym[name][1],
                                     field=np.round(fields[name], 5))
    follow, cheek = follow_weights(rest)
    return TwinConfig(
        rest_face=np.round(rest, 5), mirror=mirror, commands=commands,
        brow=BrowSpec(skin_limit=BROW_SKIN_LIMIT, lid_push_down=0.35, lid_lift_up=0.15, push_softness=0.02),
        eyes=EyeSpec(contact_eps=0.004),
        jaw=JawSpec(phi0_deg=JAW_PHI0_DEG, travel_deg=JAW_TRAVEL_DEG, corner_lift_loss=0.3),
        five_bar=FiveBarSpec(**FIVE_BAR, side_offset_deg=crank_offsets),
        lips=LipSpec(contact_eps=0.006, seal_press=0.02, curl_upper=0.9, curl_lower=0.8, raise_thin=0.25,
                     drop_thin=0.2, stretch_thin=1.0, press_thin=3.0, jaw_thin_upper=0.3,
                     jaw_thin_lower=0.45, corner_follow=np.round(follow, 5), cheek_follow=np.round(cheek, 5),
                     cheek_gain=CHEEK_GAIN),
        noise_std=NOISE_STD, side_blend_width=0.06, motion_samples=MOTION_SAMPLES,
        source_face=source, provenance=provenance)


def read_stored_source(path: Path) -> tuple[np.ndarray, dict]:
    """The photo face and provenance stored in a twin config (read leniently: the rest of the file
    may be from an older generator, which is what a rebuild is for)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
        source = np.asarray(raw["source_face"], dtype=np.float64)
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: no readable source_face to rebuild from ({exc})") from exc
    if source.shape != (N_LANDMARKS, 2) or not np.all(np.isfinite(source)):
        raise ConfigError(f"{path}: source_face must be 113 finite [x, y] pairs")
    return source, dict(raw.get("provenance") or {})


HEADER = """\
Digital twin of Emo's face: rest face and face ranges.
GENERATED by `emo bundled twin-config` (twin/build_config.py) -- edit the constants there, not this file.
Units: face units (the pose-normalized "anchor width", as perception's metric faces); x to the
robot's left (image right), y down. Canonical landmark order (emo_core.schema): 0-51 upper face,
52-112 lower face. Modelling assumptions: docs/twin.md."""


def _default_out() -> Path:
    try:
        return config_path(CONFIG_NAME)
    except ConfigError:
        raise InputError(f"no existing {CONFIG_NAME} found; pass --out PATH") from None


def regenerate(out: Path | None = None, from_stored: bool = False, check: bool = False) -> tuple[Path, bool]:
    """Build the config and write it to ``out`` (default: the repo's file), or with ``check`` only
    compare. Returns the path and whether it was up to date (``check``) or written."""
    out = out or _default_out()
    if from_stored:
        source, provenance = read_stored_source(out if out.is_file() else config_path(CONFIG_NAME))
    else:
        source = extract_source_face()
        provenance = {"source": "skimage.data.astronaut() rows 20:276, cols 110:366 -> 512x512",
                      "extractor": "emo_core.perception.FaceLandmarkExtractor(static_image_mode=True)"}
    text = dump_twin_config(build_config(source, provenance), HEADER)
    if check:
        same = out.is_file() and out.read_text() == text
        LOG.info("%s is %s", out, "up to date" if same else "OUT OF DATE")
        return out, same
    from ..atomic import atomic_write_bytes

    atomic_write_bytes(out, text.encode())
    LOG.info("wrote %s", out)
    return out, True
