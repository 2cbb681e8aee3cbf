"""Rebuild the neutral face template (``emo bundled face-template [--photo PATH] [--check]``).

Neutralizes the photo, runs the real extractor on the rest frame and rewrites ``_template_data.py``
(or, with ``check``, only reports how far the stored template is from a fresh one). The build uses
the clip maker (``clip.py``), which uses the template through the generator and identities: it
lives here, not in ``template.py``, so that the modules of ``people/`` do not import in a circle.
"""
from __future__ import annotations

import logging

import numpy as np

from ..errors import SchemaError
from .au import N_AUS, mirror_map
from .clip import ClipConfig, ClipMaker
from .photo import load_photo, mesh_to_metric, photo_extractor
from .template import DATA_MODULE, Template, load_template, write_template_module

LOG = logging.getLogger(__name__)


def build_template(photo: str | None = None, size: int = 512) -> Template:
    """Neutralize a photo and measure its rest frame with the real extractor (slow: MediaPipe)."""
    maker = ClipMaker(load_photo(photo), ClipConfig(size=size))
    rest = maker.frame(np.zeros(N_AUS))
    with photo_extractor() as extractor:
        mesh = extractor.mesh(rest)
    if mesh is None:
        raise SchemaError("MediaPipe lost the face on the neutralized photo")
    metric, _ = mesh_to_metric(mesh, size, size)
    source = (f"MediaPipe Face Mesh (mediapipe 0.10.21, static mode) on the neutralized "
              f"{photo or 'skimage.data.astronaut'} at {size}x{size}; photo's own expression removed: "
              + ", ".join(f"{k}={v:.2f}" for k, v in zip(("AU6", "AU12", "AU25", "AU26"),
                                                         maker.face.own_aus[[4, 8, 15, 16]])))
    return Template(metric, mirror_map(metric), source)


def rebuild_template(photo: str | None = None, check: bool = False) -> float | None:
    """Build a fresh template; write it unless ``check``. Returns the largest |difference| from the
    bundled template in metric units (None when there is none yet)."""
    fresh = build_template(photo)
    try:
        diff = np.abs(fresh.landmarks - load_template().landmarks)
        LOG.info("vs bundled template: mean |diff| %.4f, max %.4f metric units", diff.mean(), diff.max())
        worst: float | None = float(diff.max())
    except (ImportError, SchemaError):
        LOG.info("no bundled template yet")
        worst = None
    if not check:
        write_template_module(fresh)
        LOG.info("wrote %s", DATA_MODULE)
    return worst
