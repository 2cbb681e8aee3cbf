"""``emo bench [PART ...] [--json] [--quick]``: every speed figure with its side-by-side ratio."""
from __future__ import annotations

import argparse
import json
import logging

from ..benchmarks import parts, run_isolated
from ..errors import InputError
from ..optional import torch_available

LOG = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    available = parts()
    chosen = args.parts or list(available)
    unknown = [p for p in chosen if p not in available]
    if unknown:
        raise InputError(f"unknown benchmark part(s) {', '.join(unknown)}; available: {', '.join(available)}")
    report: dict = {"parts": {}, "ratios": {}}
    if not args.parts and not torch_available():
        # The runtime install has no torch: the parts measured against the paper's torch networks
        # are left out of "all" (named explicitly, they say how to install the [train] extra).
        skipped = [name for name in chosen if getattr(available[name], "NEEDS_TORCH", False)]
        chosen = [name for name in chosen if name not in skipped]
        if skipped:
            LOG.warning("no torch here: skipping %s (their references need the [train] extra)", ", ".join(skipped))
            report["skipped"] = {name: "needs torch (the [train] extra) for its reference" for name in skipped}
    rss: dict[str, float] = {}
    for name in chosen:
        LOG.info("benchmark %s", name)
        result, rss[name] = run_isolated(name, args.quick)
        report["parts"][name] = result.figures
        report["ratios"].update(result.ratios)
        # A part may lift headline figures to the top level (the pipeline's end_to_end latency).
        for key in getattr(available[name], "TOP_LEVEL", ()):
            report[key] = result.figures[key]
    # Each part ran in a fresh process: the peak is the largest part's, and each part's is listed.
    report["peak_rss_mb"] = round(max(rss.values(), default=0.0), 1)
    report["peak_rss_mb_by_part"] = {name: round(value, 1) for name, value in rss.items()}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0


def _print_table(report: dict) -> None:
    for name, figures in report["parts"].items():
        print(f"[{name}]")
        for key, value in figures.items():
            print(f"  {key:<40} {_fmt(value)}")
    print("[ratios]")
    for key, value in report["ratios"].items():
        print(f"  {key:<40} {value:.3f}")
    for key, value in report.items():
        if key not in ("parts", "ratios", "peak_rss_mb", "peak_rss_mb_by_part"):
            print(f"{key:<42} {_fmt(value)}")
    print(f"peak_rss_mb {report['peak_rss_mb']} (largest part; by part: {_fmt(report['peak_rss_mb_by_part'])})")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def register(registry) -> None:
    parser = registry.command("bench", "measure speed and memory, with ratios to the references", _run)
    parser.add_argument("parts", nargs="*", metavar="PART", help="benchmark parts to run (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
