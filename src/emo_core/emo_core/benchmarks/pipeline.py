"""``emo bench pipeline``: camera frame -> FaceCommand, the whole in-process pipeline.

On the bundled clip (384x384, one face), decoded into memory first (decoding is reported apart,
``decode_ms``, and excluded from the latency), the coexpression pipeline runs frame after frame
for several passes: extractor -> peak-activation detector -> predictor (when it fires) ->
retargeting -> inverse model -> FaceCommand. Side by side, interleaved frame by frame, the raw
MediaPipe Face Mesh call on the same frame: ``pipeline_vs_mediapipe`` = pipeline / raw call (mean),
i.e. what everything around MediaPipe costs on top of it.

Figures: ``end_to_end`` (p50/p99 ms, frame in -> command out; also at the top level of
``emo bench --json``), the per-stage latencies, ``fps`` (frames / wall time of the pipeline loop,
sustained), CPU time per frame (all threads: on a shared machine wall time mostly measures the
neighbours), and ``peak_rss_mb``: the peak memory of a fresh process that loads the models and
runs the pipeline and the sim robot -- measured in a child process, so the other benchmark parts
do not count.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

import numpy as np

from ..memory import peak_rss_mb
from .timing import BenchResult, percentiles_ms

NAME = "pipeline"
#: Figures lifted to the top level of ``emo bench --json`` (see cli/bench.py).
TOP_LEVEL = ("end_to_end",)


def _frames() -> tuple[list[np.ndarray], float, dict]:
    from ..people.demo import demo_clip_path
    from ..perception.sources import open_source

    t0 = time.perf_counter()
    with open_source(demo_clip_path()) as source:
        frames = [f.image for f in source]
        fps = source.fps
    decode = (time.perf_counter() - t0) / max(len(frames), 1)
    return frames, fps, {"p50": round(decode * 1e3, 3), "n": len(frames), "note": "mean, whole clip"}


def _measure(passes: int, max_faces: int = 1) -> dict[str, Any]:
    """Run in a fresh process: latency, fps, CPU and peak RSS of the pipeline on the clip."""
    from ..native import quiet_native_stderr
    from ..perception.extractor import ExtractorConfig, FaceLandmarkExtractor
    from ..pipeline import Mode, Stages

    from ..anticipation.blas import set_blas_threads

    set_blas_threads(1)          # as the demo and the nodes run (anticipation/blas.py); a fresh process
    frames, fps, decode = _frames()
    stages = Stages.load()
    extractor = FaceLandmarkExtractor(ExtractorConfig(max_faces=max_faces))
    pipeline = stages.pipeline(Mode.COEXPRESSION, extractor=extractor)
    from mediapipe.python.solutions.face_mesh import FaceMesh

    with quiet_native_stderr():
        raw = FaceMesh(static_image_mode=False, max_num_faces=max_faces)
        # First calls build the graphs' inference engines (and print their notices): untimed.
        raw.process(frames[0])
        extractor.process(frames[0], -1.0)
    raw_s, commands = [], 0
    loop_s = 0.0
    cpu0 = time.process_time()
    n = 0
    for p in range(passes):
        for i, image in enumerate(frames):
            stamp = (p * len(frames) + i) / fps        # one continuous stream, clip looped
            t0 = time.perf_counter()
            raw.process(image)
            t1 = time.perf_counter()
            result = pipeline.process_frame(image, stamp)
            loop_s += time.perf_counter() - t1
            raw_s.append(t1 - t0)
            commands += result.command is not None
            n += 1
    cpu_total = time.process_time() - cpu0
    raw.close()
    extractor.close()
    # The pipeline's CPU share: total CPU minus the reference's (measured in the same loop).
    latency = pipeline.latency.summary_ms()
    e2e = np.asarray(pipeline.latency.samples["end_to_end"], np.float64)
    return {
        "frames": n, "passes": passes, "frame_size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
        "max_faces": max_faces, "commands": commands, "detector_fired": len(pipeline.events),
        "end_to_end": {k: latency["end_to_end"][k] for k in ("p50", "p99", "mean")},
        "stages_ms": latency, "mediapipe_ms": percentiles_ms(raw_s),
        "fps": round(n / loop_s, 1), "cpu_ms_per_frame_both": round(cpu_total / n * 1e3, 3),
        "decode_ms": decode, "ratio": float(e2e.mean() / np.mean(raw_s)),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _sim_rss() -> float:
    """Peak RSS after also running the sim robot (the demo's full process) briefly."""
    from ..pipeline import SimRobot

    with SimRobot() as robot:
        robot.settle(0.5)                 # streams the calm face for 0.5 s of robot time
    return round(peak_rss_mb(), 1)


def _child(passes: int, max_faces: int) -> dict[str, Any]:
    figures = _measure(passes, max_faces)
    figures["peak_rss_mb_with_sim"] = _sim_rss()
    return figures


def run(quick: bool = False) -> BenchResult:
    passes = 1 if quick else 4
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        one = pool.apply(_child, (passes, 1))
    with ctx.Pool(1) as pool:
        two = pool.apply(_measure, (1 if quick else 2, 2))
    figures: dict[str, Any] = {
        "end_to_end": one["end_to_end"],
        "fps": one["fps"],
        "stages_ms": one["stages_ms"],
        "mediapipe_ms": one["mediapipe_ms"],
        "cpu_ms_per_frame_pipeline_plus_reference": one["cpu_ms_per_frame_both"],
        "decode_ms_excluded": one["decode_ms"],
        "frames": one["frames"], "frame_size": one["frame_size"], "max_faces": 1,
        "detector_fired": one["detector_fired"],
        "peak_rss_mb": max(one["peak_rss_mb"], one["peak_rss_mb_with_sim"]),
        "max_faces_2.end_to_end": two["end_to_end"], "max_faces_2.fps": two["fps"],
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "targets": "end_to_end p50 <= 5 ms, p99 <= 15 ms; >= 100 frames/s; peak RSS <= 1 GB (2-core CPU)",
    }
    ratios = {"pipeline_vs_mediapipe": round(one["ratio"], 3),
              "pipeline_vs_mediapipe_2faces": round(two["ratio"], 3)}
    return BenchResult(figures=figures, ratios=ratios)
