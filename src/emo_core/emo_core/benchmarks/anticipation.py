"""``emo bench anticipation``: predictor and predictor + retarget + inverse on one sample.

Measured side by side (interleaved) in one run:

* ``predictor``: the shipped predictor's numpy fast path, one 4-frame sample;
* ``predictor_paper_torch``: the paper's 8-layer predictor architecture run eagerly in PyTorch on
  one sample (``torch.no_grad``), the reference the paper's ~1.5 ms (650 fps) corresponds to;
* ``pipeline``: predictor + retarget (eq. 1-2) + the shipped inverse model's fast path;
* ``pipeline_paper_torch``: the paper predictor + the paper inverse architecture (226-1024-512-11,
  ReLU + batch norm, sigmoid), both eager PyTorch on one sample (the paper's "2 ms");
* ``detector``: one ``PeakActivationDetector.update`` per frame (armed, scoring every frame).

``*_warm_p50_us``: ours called back to back (the targets: predictor <= 50 us, predictor + retarget +
inverse <= 100 us); the ``*_ms`` entries and the ratios come from the interleaved run (cold caches).

Ratios: ``predictor_vs_paper`` and ``predict_inverse_vs_paper`` (ours / paper's, lower is better).
Untrained weights are used for the paper architectures: speed does not depend on their values.
Both sides run with one BLAS thread and one torch thread (one sample gains nothing from more, and
on a busy 2-core machine a second BLAS thread made every call wait; see ``anticipation/blas.py``).
"""
from __future__ import annotations

import numpy as np

from ..optional import require_torch
from .timing import BenchResult, interleaved, percentiles_ms, time_calls

NAME = "anticipation"
#: Its references (the paper's predictor and inverse networks in eager torch) need the [train] extra.
NEEDS_TORCH = True


def _sample(predictor) -> np.ndarray:
    """A plausible input: a training face from the model's bank, slightly moving."""
    rng = np.random.default_rng(0)
    base = predictor.random_faces[0] if len(predictor.random_faces) else np.zeros((113, 2), np.float32)
    steps = rng.normal(scale=0.003, size=(4, 113, 2)).cumsum(axis=0)
    return (base[None] + steps).astype(np.float32)


def _stream(rest: np.ndarray) -> np.ndarray:
    """A quiet face with frame jitter (the detector scores every frame; it never fires on it)."""
    rng = np.random.default_rng(1)
    return (rest[None] + rng.normal(scale=0.003, size=(300, 113, 2))).astype(np.float32)


def run(quick: bool = False) -> BenchResult:
    from ..anticipation.blas import set_blas_threads
    from ..anticipation.config import load_anticipation_config
    from ..anticipation.detector import PeakActivationDetector
    from ..anticipation.predictor import ExpressionPredictor
    from ..anticipation.retarget import Retargeter
    from ..selfmodel.inverse import InverseModel
    from ..selfmodel.model import ArchConfig
    from ..twin import DigitalTwin

    torch = require_torch("emo bench anticipation (the paper's torch networks)")
    from ..anticipation.predictor_torch import PaperPredictor
    from ..selfmodel.net import InverseNet

    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # one sample: extra threads only add synchronization
    blas_before = set_blas_threads(1)
    try:
        predictor = ExpressionPredictor.load(None)
        inverse = InverseModel.load(None)
        twin = DigitalTwin(seed=0)
        retarget = Retargeter.from_twin(twin)
        frames = _sample(predictor)
        rest = frames[0]
        torch.manual_seed(0)
        paper_pred = PaperPredictor().eval()
        paper_inv = InverseNet(ArchConfig.paper()).eval()
        x_t = torch.from_numpy(frames[None])

        def ours_predict() -> object:
            return predictor.predict(frames, rest)

        def ours_pipeline() -> object:
            pred = predictor.predict(frames, rest)
            return inverse.predict(retarget(pred.target, rest))

        def paper_predict() -> object:
            with torch.no_grad():
                return paper_pred(x_t)

        def paper_pipeline() -> object:
            with torch.no_grad():
                return paper_inv(paper_pred(x_t).reshape(1, -1))

        detector = PeakActivationDetector(load_anticipation_config().detector)
        stream = _stream(frames[0])
        tick = iter(range(10**9))

        def detect() -> object:
            i = next(tick)
            return detector.update(stream[i % len(stream)], i / 30.0)

        repeats = 300 if quick else 3000
        # Back to back first (warm caches: a node calling the stage once per frame), then
        # interleaved with the paper's networks for the side-by-side ratios. Interleaving makes
        # every call cold: the paper predictor's 14 MB of weights evict ours from the cache.
        warm = {name: time_calls(fn, repeats, 50) for name, fn in
                (("predictor", ours_predict), ("pipeline", ours_pipeline), ("detector", detect))}
        times = interleaved({"predictor": ours_predict, "predictor_paper_torch": paper_predict,
                             "pipeline": ours_pipeline, "pipeline_paper_torch": paper_pipeline,
                             "detector": detect},
                            repeats=repeats, warmup=50)
    finally:
        torch.set_num_threads(threads)
        if blas_before is not None:
            set_blas_threads(blas_before)
    stats = {name: percentiles_ms(t) for name, t in times.items()}
    figures: dict = {f"{name}_ms": s for name, s in stats.items()}
    for name, t in warm.items():
        figures[f"{name}_warm_p50_us"] = float(np.median(t) * 1e6)
    figures["predictor_p50_us"] = stats["predictor"]["p50"] * 1e3
    figures["pipeline_p50_us"] = stats["pipeline"]["p50"] * 1e3
    figures["detector_p50_us"] = stats["detector"]["p50"] * 1e3
    figures["predictor_paper_torch_p50_us"] = stats["predictor_paper_torch"]["p50"] * 1e3
    figures["pipeline_paper_torch_p50_us"] = stats["pipeline_paper_torch"]["p50"] * 1e3
    figures["predictor_architecture"] = predictor.architecture
    figures["targets"] = "predictor p50 <= 50 us (paper ~1.5 ms); predictor+retarget+inverse <= 100 us (paper 2 ms)"
    ratios = {"predictor_vs_paper": stats["predictor"]["p50"] / stats["predictor_paper_torch"]["p50"],
              "predict_inverse_vs_paper": stats["pipeline"]["p50"] / stats["pipeline_paper_torch"]["p50"]}
    return BenchResult(figures=figures, ratios=ratios)
