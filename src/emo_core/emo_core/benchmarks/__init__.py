"""Benchmarks behind ``emo bench``.

Each module here that defines ``NAME`` and ``run(quick: bool) -> BenchResult`` is one benchmark
part (``emo bench landmarks`` runs one, ``emo bench`` runs all). A part measures our stage and its
reference *in the same run* and reports their ratio, because absolute timings on shared machines
are noisy while ratios taken side by side are not.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def parts() -> dict[str, ModuleType]:
    """All benchmark parts by name, in a stable order."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "timing":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found[module.NAME] = module
    return found
