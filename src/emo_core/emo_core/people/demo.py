"""The bundled demo clip (``emo_core/data/demo_clip.mp4`` + ``demo_clip.json``) and how it is made.

A real photo (the astronaut) at rest, then a smile: subtle onset, apex (0.77 s after the onset),
a short relaxing hold, the return to rest and two blinks at rest. ``emo demo`` runs the pipeline on it and
compares the robot's apex with the human apex from the JSON. Regenerate with
``emo bundled demo-clip`` (deterministic for a given seed and library versions).
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..resources import data_path
from .clip import ClipResult, make_clip

LOG = logging.getLogger(__name__)

DEMO_EXPRESSION = "smile"
DEMO_SECONDS = 5.0
DEMO_SIZE = 384        # face ~160 px wide: tracked well by MediaPipe, and the file stays small
DEMO_SEED = 1
DEMO_BLINK_RATE_HZ = 0.3
MAX_BYTES = 3 * 1024 * 1024


def demo_clip_path() -> Path:
    return data_path("demo_clip.mp4")


def make_demo_clip(out: str | Path | None = None, seed: int = DEMO_SEED) -> ClipResult:
    """(Re)make the demo clip; writes ``demo_clip.mp4`` and ``demo_clip.json`` atomically."""
    out = Path(out) if out is not None else demo_clip_path()
    result = make_clip(DEMO_EXPRESSION, out, seconds=DEMO_SECONDS, seed=seed, size=DEMO_SIZE,
                       blink_rate_hz=DEMO_BLINK_RATE_HZ)
    size = result.video.stat().st_size + result.truth.stat().st_size
    if size > MAX_BYTES:
        LOG.warning("demo clip is %.1f MB, over the %.0f MB budget", size / 2 ** 20, MAX_BYTES / 2 ** 20)
    return result
