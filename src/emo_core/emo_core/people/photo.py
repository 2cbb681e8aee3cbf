"""A real face photograph in the extractor's metric frame, and its neutralization.

``fit_photo`` frames the face (a square crop large enough for MediaPipe to track it well), runs
the real Face Mesh on it, and expresses the 468 points in the metric frame of
``perception.pose`` -- the frame the whole project works in.

A photo's own expression is rarely neutral (the default astronaut smiles broadly, lips apart).
``estimate_expression`` measures it as AU intensities by comparing scale-free features of the mouth
and eyes with neutral-face norms, and the neutral mesh is the photo's mesh minus those AU
displacements. The clip maker then renders every frame as a warp of the *original* photo toward
``neutral + expression(t)``, so frames at rest show a neutral face and open-mouth expressions can
reuse the photo's real teeth.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..perception.extractor import ExtractorConfig, FaceLandmarkExtractor
from ..perception.pose import ANCHOR_LEFT, ANCHOR_MIDLINE, ANCHOR_RIGHT, HeadFrame, head_frame, to_isotropic_pixels
from .au import AU_INDEX, EYES, LOWER_INNER, N_AUS, UPPER_INNER, AUModel, mirror_map
from .warp import MeshWarp, WarpConfig

LOG = logging.getLogger(__name__)

#: Side of the square crop around the face, as a multiple of the face's mesh bounding box.
FRAME_MARGIN = 2.4

#: Neutral-face norms of the features (metric units or ratios) and their natural spread.
#: mouth width / inter-eye distance ~ 50 mm / 62 mm (adult anthropometry); lips closed; corners
#: level with the lip contact line; palpebral fissure height / width ~ 1/3.
NEUTRAL_FEATURES = {"corner_lift": (0.0, 0.04), "lip_gap": (0.0, 0.02),
                    "mouth_ratio": (0.80, 0.05), "eye_ratio": (0.33, 0.04)}
#: AUs a photo's own expression is explained with (a smile with parted lips, or none).
PHOTO_AUS = ("AU6", "AU12", "AU25", "AU26")
#: Fraction of the residual expression removed by each pass after the first: pushing the warp to
#: fully satisfy MediaPipe's regularized lip model distorts the image (pinched corners).
CORRECTION_GAIN = 0.4
#: Smallest lip gap (metric units, ~0.2 mm) the neutralized mesh keeps between its inner lips.
MIN_LIP_GAP = 0.005


def load_photo(path: str | Path | None) -> np.ndarray:
    """RGB uint8 of a photo file, or scikit-image's astronaut portrait when ``path`` is None."""
    if path is None:
        from skimage import data

        return np.ascontiguousarray(data.astronaut())
    from ..perception.sources import read_image

    path = Path(path)
    if not path.is_file():
        raise InputError(f"photo not found: {path}")
    # The same reader as `emo landmarks`: a truncated JPEG/PNG is refused, not half-decoded.
    try:
        return np.ascontiguousarray(read_image(path))
    except InputError as exc:
        raise InputError(f"cannot read photo {exc}") from None


def photo_extractor() -> FaceLandmarkExtractor:
    """A Face Mesh that runs the detector on every image (photos are not a video)."""
    return FaceLandmarkExtractor(ExtractorConfig(static_image_mode=True, max_faces=2))


def _mesh(extractor: FaceLandmarkExtractor, rgb: np.ndarray, what: str = "the photo") -> np.ndarray:
    mesh = extractor.mesh(rgb)
    if mesh is None:
        raise InputError(f"no face found in {what}")
    return mesh


def frame_face(extractor: FaceLandmarkExtractor, rgb: np.ndarray, size: int) -> np.ndarray:
    """Square crop centred on the face, FRAME_MARGIN x its size, resized to size x size."""
    if size < 64:
        raise InputError(f"clip size must be at least 64 px, got {size}")
    mesh = _mesh(extractor, rgb)
    h, w = rgb.shape[:2]
    xy = mesh[:, :2] * (w, h)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre = (lo + hi) / 2
    half = FRAME_MARGIN * float(np.max(hi - lo)) / 2
    x0, y0 = int(round(centre[0] - half)), int(round(centre[1] - half))
    side = int(round(2 * half))
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    crop = rgb[y0:y0 + side, x0:x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=interp))


def metric_frame(mesh_px: np.ndarray) -> HeadFrame:
    """The extractor's head frame of a 468-point mesh in isotropic pixels."""
    return head_frame(mesh_px[ANCHOR_RIGHT], mesh_px[ANCHOR_LEFT], mesh_px[list(ANCHOR_MIDLINE)])


def mesh_to_metric(mesh_norm: np.ndarray, width: int, height: int) -> tuple[np.ndarray, HeadFrame]:
    """(468, 3) metric points and the head frame of a normalized MediaPipe mesh."""
    px = to_isotropic_pixels(np.asarray(mesh_norm, dtype=np.float64), width, height)
    frame = metric_frame(px)
    return frame.to_metric(px).astype(np.float64), frame


@dataclass
class PhotoFace:
    """A framed photo and its face: mesh in pixels and metric, head frame, own expression."""

    image: np.ndarray          # (H, W, 3) RGB, the framed photo
    mesh_px: np.ndarray        # (468, 3) isotropic pixels
    metric: np.ndarray         # (468, 3) metric
    frame: HeadFrame
    mirror: np.ndarray         # (468,) left/right twin of each vertex
    own_aus: np.ndarray        # (N_AUS,) the photo's estimated expression
    neutral: np.ndarray        # (468, 3) metric mesh with that expression removed (warp target)
    warp: MeshWarp             # dense warp operator of the framed photo
    observed_neutral: np.ndarray  # (468, 3) metric mesh MediaPipe finds on the neutralized photo

    def metric_to_pixels(self, displacement: np.ndarray) -> np.ndarray:
        """Image-plane pixel displacement (..., 468, 2) of metric displacements (..., 468, 3)."""
        return (np.asarray(displacement) * self.frame.scale @ self.frame.rotation)[..., :2]


def expression_features(points: np.ndarray) -> dict[str, float]:
    """Scale-free mouth/eye features of a *frontal image-plane* mesh (468, 2+), see NEUTRAL_FEATURES.

    Measured in the image plane, de-rotated so the eyes are level and scaled by the inter-eye
    distance, because that is where the anthropometric norms live: in the metric frame the anchor
    plane is tilted, and points at different depths (lip corners vs lip centre) shift vertically.
    """
    p = np.asarray(points, dtype=np.float64)[:, :2]
    eye_centres = [p[list(e["upper"]) + list(e["lower"])].mean(axis=0) for e in EYES.values()]
    across = eye_centres[1] - eye_centres[0]
    inter_eye = float(np.linalg.norm(across))
    c, s_ = across / inter_eye
    p = p @ np.array([[c, -s_], [s_, c]]) / inter_eye  # eyes level, unit inter-eye distance
    ratios = []
    for eye in EYES.values():
        up, low = p[list(eye["upper"][2:-2])], p[list(eye["lower"][2:-2])]
        ratios.append(float(low[:, 1].mean() - up[:, 1].mean()) /
                      float(np.linalg.norm(p[eye["upper"][0]] - p[eye["upper"][-1]])))
    return {
        "corner_lift": float((p[13, 1] + p[14, 1]) / 2 - (p[61, 1] + p[291, 1]) / 2),
        "lip_gap": float(p[14, 1] - p[13, 1]),
        "mouth_ratio": float(np.linalg.norm(p[61] - p[291])),
        "eye_ratio": float(np.mean(ratios)),
    }


def estimate_expression(model: AUModel, metric: np.ndarray, frame: HeadFrame,
                        start: np.ndarray | None = None, mesh_metric: np.ndarray | None = None) -> np.ndarray:
    """AU intensities (N_AUS,) of the face's own expression, from neutral-face feature norms.

    Finds the AU6/AU12/AU25/AU26 intensities whose removal brings the image-plane features to
    their neutral values, with a weak prior tying the jaw (AU26) to half the lip parting (AU25),
    which the features alone cannot tell apart. ``start`` (already removed intensities) lets a
    second pass correct the first: the result is the increment, with ``start + result >= 0``.
    ``mesh_metric`` is the mesh the removal is applied to (default ``metric``): its lips are kept
    from crossing.
    """
    from scipy.optimize import least_squares

    idx = [AU_INDEX[a] for a in PHOTO_AUS]
    names = list(NEUTRAL_FEATURES)
    image_plane = frame.to_pixels(metric)
    mesh_metric = metric if mesh_metric is None else mesh_metric
    base = np.zeros(len(idx)) if start is None else np.asarray(start, dtype=np.float64)[idx]

    def residual(a: np.ndarray) -> np.ndarray:
        full = np.zeros(N_AUS)
        full[idx] = a
        moved = image_plane - model.displacement(full) * frame.scale @ frame.rotation
        f = expression_features(moved)
        r = [(f[n] - NEUTRAL_FEATURES[n][0]) / NEUTRAL_FEATURES[n][1] for n in names]
        total = base + a
        r.append((total[3] - 0.5 * total[2]) / 0.5)
        # The lips of the *mesh* must not cross: MediaPipe reads a compressed teeth line as a small
        # gap, and chasing that gap would fold the lower lip over the upper one.
        removed = np.zeros(N_AUS)
        removed[idx] = total
        closed = mesh_metric - model.displacement(removed)
        gaps = closed[list(LOWER_INNER[1:-1]), 1] - closed[list(UPPER_INNER[1:-1]), 1]
        r.extend(np.minimum(0.0, gaps - MIN_LIP_GAP) / MIN_LIP_GAP)
        return np.array(r)

    lower = -base
    fit = least_squares(residual, np.clip(np.full(len(idx), 0.05), lower + 1e-6, None),
                        bounds=(lower, np.full(len(idx), 2.0)))
    out = np.zeros(N_AUS)
    out[idx] = fit.x
    return out


def fit_photo(rgb: np.ndarray, size: int, mirror: np.ndarray | None = None,
              extractor: FaceLandmarkExtractor | None = None, passes: int = 2,
              warp_config: WarpConfig | None = None) -> PhotoFace:
    """Frame the face of a photo, fit the mesh and neutralize the photo's own expression.

    Neutralization is closed-loop on the real perception: estimate the expression, warp the photo
    to remove it, run Face Mesh on the result and estimate what is left, ``passes`` times, because
    a warp moves what MediaPipe reports by only ~70-85 % of the asked displacement (its lip and
    eyelid model is strongly regularized).
    """
    own_extractor = extractor is None
    extractor = extractor or photo_extractor()
    try:
        framed = frame_face(extractor, rgb, size)
        mesh = _mesh(extractor, framed, "the framed photo")
        metric, frame = mesh_to_metric(mesh, size, size)
        twin = mirror_map(metric) if mirror is None else mirror
        model = AUModel(metric, twin)
        px = to_isotropic_pixels(mesh, size, size)
        warp = MeshWarp(px[:, :2], size, size, warp_config)
        own = np.zeros(N_AUS)
        seen_metric, seen_frame = metric, frame
        for i in range(passes):
            step = estimate_expression(AUModel(seen_metric, twin), seen_metric, seen_frame, start=own,
                                       mesh_metric=metric)
            own = np.clip(own + (1.0 if i == 0 else CORRECTION_GAIN) * step, 0.0, None)
            neutral = untangle(metric, metric - model.displacement(own))
            image = warp.apply(framed, frame.to_pixels(neutral)[:, :2] - px[:, :2])
            seen = _mesh(extractor, image, "the neutralized photo")
            seen_metric, seen_frame = mesh_to_metric(seen, size, size)
            LOG.info("neutralization pass %d: removed %s; left %s", i + 1,
                     {a: round(float(own[AU_INDEX[a]]), 2) for a in PHOTO_AUS},
                     {k: round(v, 3) for k, v in expression_features(seen * (size, size, size)).items()})
    finally:
        if own_extractor:
            extractor.close()
    return PhotoFace(framed, px, metric, frame, twin, own, neutral, warp, seen_metric)


def untangle(source: np.ndarray, target: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Target mesh with folded triangles relaxed away (x, y only).

    Removing a strong smile moves the thin, stretched lip near the mouth corners by slightly
    different amounts across its thickness, which can turn a few tiny triangles inside out (a
    visible tear in the warped photo). The *displacement* of each vertex of an inverted triangle
    is blended halfway toward the mean displacement of its mesh neighbours (so the lip moves as a
    piece, keeping its shape) until no triangle is inverted.
    """
    from .warp import tessellation_triangles

    tri = tessellation_triangles()
    out = np.array(target, dtype=np.float64)
    neighbours = _neighbour_matrix(tri, len(out))
    ref = _signed_area(source[:, :2], tri)
    for _ in range(iterations):
        area = _signed_area(out[:, :2], tri)
        bad = (np.sign(area) != np.sign(ref)) & (np.abs(ref) > 1e-6)
        if not bad.any():
            break
        verts = np.unique(tri[bad])
        shift = out[:, :2] - source[:, :2]
        out[verts, :2] = source[verts, :2] + 0.5 * shift[verts] + 0.5 * (neighbours[verts] @ shift)
    return out


def _signed_area(xy: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = xy[tri[:, 0]], xy[tri[:, 1]], xy[tri[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))


def _neighbour_matrix(tri: np.ndarray, n: int):
    """Row-normalized adjacency (sparse) of the mesh graph: row v averages v's neighbours."""
    from scipy import sparse

    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    adj = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    degree = np.asarray(adj.sum(axis=1)).ravel()
    return sparse.diags(1.0 / np.maximum(degree, 1)) @ adj
