"""Single-threaded BLAS for single-sample inference.

numpy's OpenBLAS splits even a (1 x 1130) @ (1130 x 128) product over its threads. On a busy
2-core machine the second thread is often not scheduled in time and the call waits for it:
measured here, predictor + retarget + inverse took 4.8 ms median with OpenBLAS' default threads
and 0.44 ms with one thread, in the same conditions. Inference on one frame gains nothing from a
second thread, so latency-critical processes (the pipeline, the ROS nodes, ``emo bench``) should
run BLAS single-threaded. ``OPENBLAS_NUM_THREADS=1`` in the environment does it before start-up;
:func:`blas_threads` does it at run time (through OpenBLAS' own ``openblas_set_num_threads``,
found in the loaded libraries), and restores the previous count on exit.
"""
from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOG = logging.getLogger(__name__)


def _openblas() -> tuple[ctypes.CDLL, str] | None:
    """The loaded OpenBLAS library and its symbol suffix ("" or "64_"), or None."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    paths = sorted({line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower()
                    and line.split()[-1].startswith("/")})
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", ""):
            if hasattr(lib, f"openblas_set_num_threads{suffix}"):
                return lib, suffix
    return None


def get_blas_threads() -> int | None:
    """OpenBLAS' current thread count, or None when OpenBLAS is not what numpy uses."""
    found = _openblas()
    if found is None:
        return None
    lib, suffix = found
    return int(getattr(lib, f"openblas_get_num_threads{suffix}")())


def set_blas_threads(n: int) -> int | None:
    """Set OpenBLAS' thread count; returns the previous count (None if OpenBLAS is not found)."""
    found = _openblas()
    if found is None:
        LOG.debug("OpenBLAS not loaded; BLAS thread count left alone")
        return None
    lib, suffix = found
    previous = int(getattr(lib, f"openblas_get_num_threads{suffix}")())
    getattr(lib, f"openblas_set_num_threads{suffix}")(ctypes.c_int(max(1, int(n))))
    return previous


@contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    """Run a block with ``n`` OpenBLAS threads, restoring the previous count afterwards."""
    previous = set_blas_threads(n)
    try:
        yield
    finally:
        if previous is not None:
            set_blas_threads(previous)
