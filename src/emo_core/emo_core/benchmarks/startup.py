"""``emo bench startup``: how long the command line takes to answer, and the demo to get going.

Each figure is measured on fresh processes of this interpreter (what a user or a robot's launch
file pays), never in the benchmark's own process:

* ``help_s``: ``emo --help`` from process launch to exit (imports every command module);
* ``demo_first_frame_s``: ``emo demo --synthetic 0`` from process launch until the coexpression
  pipeline has processed the clip's first frame (imports, models, MediaPipe graph, the simulated
  servo bus and twin, the clip opened). The child process wraps
  ``CoexpressionPipeline.process_frame`` to stamp the first return and exits there;
* ``demo_imports_torch``: whether that demo process had imported torch by then (it needs none).

Targets (issue 15): ``emo --help`` <= 0.3 s, first frame <= 2 s. The reference for both is this
machine's bare interpreter start (``python -c pass``), reported as ``python_start_s``; the ratio
``help_vs_python_start`` is the command line's start-up over it.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time

import numpy as np

from .timing import BenchResult

NAME = "startup"

#: Runs in the child: stamp the first processed frame, report torch's presence, exit at once.
_FIRST_FRAME = r"""
import os, sys, time
from emo_core.pipeline.core import CoexpressionPipeline
_process = CoexpressionPipeline.process_frame
def _first(self, *args, **kwargs):
    result = _process(self, *args, **kwargs)
    print("FIRST", time.time(), "torch" in sys.modules, flush=True)
    os._exit(0)
CoexpressionPipeline.process_frame = _first
from emo_core.cli import main
main(["demo", "--synthetic", "0", "--mode", "coexpression", "--out", sys.argv[1], "--quiet"])
"""


def _launch(args: list[str], timeout: float = 120.0) -> tuple[float, str]:
    """Seconds from launch to exit of ``python args...``, and its stdout."""
    t0 = time.time()
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)
    elapsed = time.time() - t0
    if result.returncode != 0:
        raise RuntimeError(f"startup benchmark child failed ({result.returncode}): {result.stderr[-500:]}")
    return elapsed, result.stdout


def _first_frame(out_dir: str) -> tuple[float, bool]:
    t0 = time.time()
    _, stdout = _launch(["-c", _FIRST_FRAME, out_dir])
    line = next((l for l in stdout.splitlines() if l.startswith("FIRST")), None)
    if line is None:
        raise RuntimeError("the demo child processed no frame")
    _, stamp, torch_loaded = line.split()
    return float(stamp) - t0, torch_loaded == "True"


def run(quick: bool = False) -> BenchResult:
    repeats = 3 if quick else 7
    python = [_launch(["-c", "pass"])[0] for _ in range(repeats)]
    help_s = [_launch(["-m", "emo_core.cli", "--help"])[0] for _ in range(repeats)]
    with tempfile.TemporaryDirectory(prefix="emo-bench-startup-") as out:
        first = [_first_frame(out) for _ in range(max(2, repeats // 2))]
    frame_s = [t for t, _ in first]
    figures: dict[str, float | int | str | dict] = {
        "python_start_s": round(float(np.median(python)), 3),
        "help_s": {"p50": round(float(np.median(help_s)), 3), "min": round(min(help_s), 3), "n": len(help_s)},
        "demo_first_frame_s": {"p50": round(float(np.median(frame_s)), 3), "min": round(min(frame_s), 3),
                               "n": len(frame_s)},
        "demo_imports_torch": any(t for _, t in first),
        "targets": "emo --help <= 0.3 s; emo demo to its first processed frame <= 2 s",
    }
    return BenchResult(figures=figures,
                       ratios={"help_vs_python_start": float(np.median(help_s) / np.median(python))})
