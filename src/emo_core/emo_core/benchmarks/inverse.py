"""Inverse self-model speed: one face -> 11 commands, and a 10,000-face batch.

Measured side by side in the same run: our inference (the shipped model through the exported
numpy fast path, the path ``InverseModel.predict`` takes), the same model in eager torch, and the
paper's architecture (226 -> 1024 -> 512 -> 11, BatchNorm, eval mode) in eager torch -- the way the
authors ran it (paper: 8000 fps, i.e. ~125 us per face, on a 2019 laptop CPU).
``ratios["inverse_vs_paper"]`` = our single-face median / the paper network's eager median.
"""
from __future__ import annotations

import time

import numpy as np

from ..optional import require_torch
from ..selfmodel.inverse import InverseModel
from ..selfmodel.model import N_IN, ArchConfig
from ..twin import DigitalTwin
from .timing import BenchResult, interleaved, percentiles_ms, time_calls

NAME = "inverse"
#: Its references (the shipped model and the paper's network in eager torch) need the [train] extra.
NEEDS_TORCH = True
N_BATCH = 10_000


def run(quick: bool) -> BenchResult:
    torch = require_torch("emo bench inverse (its torch references)")
    from ..selfmodel.net import InverseNet

    model = InverseModel.load()
    twin = DigitalTwin(seed=0)
    rng = np.random.default_rng(0)
    faces = twin.forward(rng.uniform(0.05, 0.9, (N_BATCH, 11)))
    face = faces[0]
    paper = InverseNet(ArchConfig.paper()).eval()
    x_one = torch.as_tensor(face.reshape(1, N_IN))

    def paper_eager() -> object:
        with torch.inference_mode():
            return paper(x_one)

    repeats = 300 if quick else 3000
    threads = torch.get_num_threads()
    # One torch thread for single faces: more cannot help a 226-input layer, and idle OpenMP
    # workers spin after every call, stealing the core the numpy path runs on (2-core machines).
    torch.set_num_threads(1)
    try:
        single = interleaved({"fast": lambda: model.predict(face),
                              "torch": lambda: model.predict_torch(face),
                              "paper": paper_eager}, repeats=repeats, warmup=50)
    finally:
        torch.set_num_threads(threads)
    batch = time_calls(lambda: model.predict(faces), repeats=3 if quick else 20, warmup=1)
    fast = percentiles_ms(single["fast"])
    return BenchResult(
        figures={
            "model": model.arch.name,
            "single_face_fast_path_us": _us(fast),
            "single_face_torch_eager_us": _us(percentiles_ms(single["torch"])),
            "single_face_paper_arch_torch_eager_us": _us(percentiles_ms(single["paper"])),
            "single_face_fast_path_cpu_us": _cpu_us(lambda: model.predict(face), 200 if quick else 1000),
            "batch_10k_faces_ms": percentiles_ms(batch),
            "batch_10k_faces_cpu_ms": round(_cpu_us(lambda: model.predict(faces), 1, 3 if quick else 10) / 1e3, 2),
            "faces_per_second_single": round(1e3 / fast["p50"]),
            "torch_threads_single_face": 1,
        },
        ratios={"inverse_vs_paper": float(np.median(single["fast"]) / np.median(single["paper"]))},
    )


def _us(stats_ms: dict) -> dict:
    return {k: (round(v * 1e3, 2) if k != "n" else v) for k, v in stats_ms.items()}


def _cpu_us(fn, per_block: int, blocks: int = 5) -> float:
    """Best-of CPU time per call in microseconds (process_time over a block of calls): on a shared
    machine wall time also counts the time other processes hold the cores."""
    fn()
    best = float("inf")
    for _ in range(blocks):
        start = time.process_time()
        for _ in range(per_block):
            fn()
        best = min(best, (time.process_time() - start) / per_block)
    return round(best * 1e6, 2)
