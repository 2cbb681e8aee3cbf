"""Build the frontal anchor template of the pose normalization (see pose.py) from a real photo.

``emo bundled anchor-template`` runs MediaPipe on the head crop of scikit-image's
astronaut portrait (a nearly frontal face: yaw ~0.5 deg, roll ~3 deg), puts the anchors in a
frontal frame (x along the mirror pairs, y = image down made orthogonal to x, z = x cross y;
origin between the outer eye corners; unit = half their distance), makes the template exactly
mirror-symmetric, and rewrites ``_anchor_template.py``. ``--check`` only compares.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .pose import (
    ANCHOR_LEFT,
    ANCHOR_MIDLINE,
    ANCHOR_RIGHT,
    EYE_OUTER,
    to_isotropic_pixels,
)

LOG = logging.getLogger(__name__)
TARGET = Path(__file__).with_name("_anchor_template.py")
MIRROR = np.array([-1.0, 1.0, 1.0])


def frontal_template(mesh_px: np.ndarray) -> np.ndarray:
    """(n_anchors, 3) template from a frontal (468, 3) mesh in isotropic pixels."""
    right, left = mesh_px[ANCHOR_RIGHT], mesh_px[ANCHOR_LEFT]
    x = (left - right).mean(axis=0)
    x /= np.linalg.norm(x)
    y = np.array([0.0, 1.0, 0.0]) - x[1] * x
    y /= np.linalg.norm(y)
    rot = np.stack([x, y, np.cross(x, y)])
    a, b = mesh_px[EYE_OUTER[0]], mesh_px[EYE_OUTER[1]]
    origin, unit = (a + b) / 2, float(np.linalg.norm(b - a)) / 2

    def frontal(p: np.ndarray) -> np.ndarray:
        return (p - origin) @ rot.T / unit

    sym_right = (frontal(right) + frontal(left) * MIRROR) / 2
    midline = frontal(mesh_px[list(ANCHOR_MIDLINE)])
    midline[:, 0] = 0.0
    return np.concatenate([sym_right, sym_right * MIRROR, midline])


def photo_mesh() -> np.ndarray:
    import cv2
    from skimage import data

    from .extractor import ExtractorConfig, FaceLandmarkExtractor

    crop = cv2.resize(data.astronaut()[20:276, 110:366], (512, 512), interpolation=cv2.INTER_CUBIC)
    with FaceLandmarkExtractor(ExtractorConfig(static_image_mode=True)) as extractor:
        mesh = extractor.mesh(crop)
    if mesh is None:
        raise RuntimeError("MediaPipe found no face in the template photo")
    return to_isotropic_pixels(mesh, 512, 512)


def render(template: np.ndarray) -> str:
    rows = ",\n".join(f"    ({x: .5f}, {y: .5f}, {z: .5f})" for x, y, z in template)
    return ('"""Frontal anchor template of the pose normalization (generated; do not edit).\n\n'
            "Regenerate with ``emo bundled anchor-template``; rows follow\n"
            "``pose.ANCHORS`` (right anchors, left anchors, midline).\n"
            '"""\nimport numpy as np\n\nANCHOR_TEMPLATE = np.array([\n' + rows + "\n])\n")


def regenerate(check: bool = False) -> float:
    """Measure the template on the photo; write ``_anchor_template.py`` unless ``check``. Returns the
    largest difference from the stored template (``check``) or 0.0 (written)."""
    template = frontal_template(photo_mesh())
    if check:
        from ._anchor_template import ANCHOR_TEMPLATE

        return float(np.abs(template - ANCHOR_TEMPLATE).max())
    TARGET.write_text(render(template))
    LOG.info("wrote %s", TARGET)
    return 0.0
