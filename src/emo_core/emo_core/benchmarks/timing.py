"""Small timing helpers shared by the benchmark parts (benchmarks may read the clock; stages may not)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class BenchResult:
    """What one benchmark part reports: named figures, and ratios measured side by side."""

    figures: dict[str, float | int | str | dict] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)


def percentiles_ms(samples_s: np.ndarray | list[float]) -> dict[str, float]:
    """p50 / p90 / p99 / mean of durations given in seconds, reported in milliseconds."""
    arr = np.asarray(samples_s, dtype=np.float64) * 1e3
    return {
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
        "n": int(arr.size),
    }


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 10) -> np.ndarray:
    """Durations (s) of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 10) -> dict[str, np.ndarray]:
    """Time several callables alternately (A B A B ...) so machine noise hits them equally."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = {name: np.empty(repeats, dtype=np.float64) for name in fns}
    for i in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[name][i] = time.perf_counter() - t0
    return out
