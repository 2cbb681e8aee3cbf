"""``emo bench people``: synthetic-people generation and clip-making speed.

Figures:

* ``sequences``: videos and landmark frames generated per second (identities included);
* ``clip_fit_s``: framing + Face Mesh + closed-loop neutralization of the astronaut (once per clip);
* ``clip_frame_ms``: one clip frame (AUs -> mesh -> exact inverse map -> one remap -> mouth), at
  the default 512 px, interleaved with ``remap_ms``: a bare ``cv2.remap`` of the same image with a
  ready map -- the floor any warp-based renderer pays. Ratio ``clip_frame_vs_remap``;
* ``clip_fps_with_encoding``: frames per second of ``make_clip`` including the mp4 encoder.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from .timing import BenchResult, interleaved, percentiles_ms

NAME = "people"


def _sequences(quick: bool) -> dict[str, float]:
    from ..people.generator import PeopleGenerator

    subjects, videos = (3, 5) if quick else (10, 20)
    gen = PeopleGenerator()
    t0 = time.perf_counter()
    ds = gen.dataset(subjects, videos, seed=0)
    dt = time.perf_counter() - t0
    return {"videos": len(ds), "videos_per_s": len(ds) / dt, "frames_per_s": ds.n_frames / dt}


def run(quick: bool = False) -> BenchResult:
    from ..people.au import N_AUS
    from ..people.clip import ClipConfig, ClipMaker, make_clip

    result = BenchResult()
    result.figures["sequences"] = _sequences(quick)

    t0 = time.perf_counter()
    maker = ClipMaker(None, ClipConfig(size=512))
    result.figures["clip_fit_s"] = time.perf_counter() - t0

    timeline = maker.timeline("broad_smile", seed=0)
    frames = timeline.aus
    rgba = np.dstack([maker.face.image, np.zeros(maker.face.image.shape[:2], np.uint8)])
    ready = maker.face.warp.backward_map(maker.face.metric_to_pixels(maker._to_neutral)).copy()
    state = {"i": 0}

    def one_frame() -> None:
        maker.frame(frames[state["i"] % len(frames)])
        state["i"] += 1

    def bare_remap() -> None:
        cv2.remap(rgba, ready[..., 0], ready[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    repeats = 30 if quick else 150
    times = interleaved({"frame": one_frame, "remap": bare_remap}, repeats=repeats, warmup=5)
    frame_ms, remap_ms = percentiles_ms(times["frame"]), percentiles_ms(times["remap"])
    result.figures["clip_frame_ms"] = frame_ms
    result.figures["remap_ms"] = remap_ms
    result.figures["clip_render_fps"] = 1e3 / frame_ms["p50"]
    result.ratios["clip_frame_vs_remap"] = frame_ms["p50"] / remap_ms["p50"]

    with tempfile.TemporaryDirectory() as tmp:
        seconds = 2.0 if quick else 4.0
        t0 = time.perf_counter()
        clip = make_clip("smile", Path(tmp) / "bench.mp4", seconds=seconds, seed=0, maker=maker)
        dt = time.perf_counter() - t0
    result.figures["clip_fps_with_encoding"] = clip.n_frames / dt
    result.figures["clip_seconds_per_video_second"] = dt / seconds
    result.figures["n_aus"] = N_AUS
    return result
