"""Benchmarks behind ``emo bench``.

Each module here that defines ``NAME`` and ``run(quick: bool) -> BenchResult`` is one benchmark
part (``emo bench landmarks`` runs one, ``emo bench`` runs all). A part measures our stage and its
reference *in the same run* and reports their ratio, because absolute timings on shared machines
are noisy while ratios taken side by side are not. ``emo bench`` runs each part in a fresh process
(:func:`run_isolated`), so a part's peak memory is its own, not the sum of every part before it.
"""
from __future__ import annotations

import importlib
import multiprocessing
import pkgutil
from multiprocessing.connection import Connection
from types import ModuleType
from typing import Any


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


def run_isolated(name: str, quick: bool) -> tuple[Any, float]:
    """Run part ``name`` in a fresh (spawned) process: its BenchResult and that process's peak RSS (MiB).

    Not a Pool: parts start processes of their own, which a pool's daemonic workers may not do.
    An exception in the part (e.g. a missing optional dependency) is raised here.
    """
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_run_part, args=(name, quick, send))
    process.start()
    send.close()
    try:
        outcome = receive.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"benchmark part {name} died (exit code {process.exitcode})") from None
    finally:
        receive.close()
    process.join()
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _run_part(name: str, quick: bool, send: Connection) -> None:
    from ..memory import peak_rss_mb

    try:
        result = parts()[name].run(quick=quick)
        send.send((result, peak_rss_mb()))
    except Exception as exc:       # sent to the parent, which raises it (EmoError: one line)
        send.send(exc)
    finally:
        send.close()
