"""``emo bundled ...``: regenerate or check the data that ships with the package.

    emo bundled twin-config [--from-stored] [--check] [--out PATH]   # config/face_twin.yaml
    emo bundled anchor-template [--check]     # perception/_anchor_template.py (pose normalization)
    emo bundled face-template [--photo P] [--check]   # people/_template_data.py (synthetic people)
    emo bundled demo-clip [--out PATH] [--seed N]     # data/demo_clip.mp4 + .json
    emo bundled check-clips CLIP.mp4 ...      # recovered vs true apex of generated clips

These were ``python -m`` scripts inside the library (twin/build_config.py,
perception/anchor_template.py, people/make_template.py, people/demo.py, people/check.py); the
builders stay there as functions, the command lines are here. All but ``check-clips`` and
``--from-stored`` run MediaPipe. ``--check`` writes nothing and exits 1 when the bundled file is out
of date.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ._args import integer

#: Largest difference (metric units) between a fresh and the stored anchor template that still
#: counts as the same template (what the old ``--check`` of anchor_template.py used).
ANCHOR_TOLERANCE = 1e-3


def _twin_config(args: argparse.Namespace) -> int:
    from ..twin.build_config import regenerate

    out, ok = regenerate(args.out, from_stored=args.from_stored, check=args.check)
    print(f"{out}: {'up to date' if ok else 'OUT OF DATE'}" if args.check else f"wrote {out}")
    return 0 if ok else 1


def _anchor_template(args: argparse.Namespace) -> int:
    from ..perception.anchor_template import TARGET, regenerate

    diff = regenerate(check=args.check)
    if not args.check:
        print(f"wrote {TARGET}")
        return 0
    print(f"max difference {diff:.5f}")
    return 0 if diff < ANCHOR_TOLERANCE else 1


def _face_template(args: argparse.Namespace) -> int:
    from ..people.make_template import rebuild_template
    from ..people.template import DATA_MODULE

    worst = rebuild_template(args.photo, check=args.check)
    print("no bundled template yet" if worst is None else f"vs bundled template: max |diff| {worst:.4f} metric units")
    if not args.check:
        print(f"wrote {DATA_MODULE}")
    return 0


def _demo_clip(args: argparse.Namespace) -> int:
    from ..people.demo import DEMO_SEED, make_demo_clip

    result = make_demo_clip(args.out, DEMO_SEED if args.seed is None else args.seed)
    print(f"{result.video} ({result.n_frames} frames, onset {result.onset_frame}, apex {result.apex_frame})")
    return 0


def _check_clips(args: argparse.Namespace) -> int:
    import numpy as np

    from ..people.check import check_clip

    errors = []
    for video in args.videos:
        result = check_clip(video)
        errors.append(result["error_frames"])
        print(result)
    print(f"|error| <= 3 frames: {np.mean(np.abs(errors) <= 3):.2f}, mean |error| {np.mean(np.abs(errors)):.2f}")
    return 0


def register(registry) -> None:
    registry.group("bundled", "regenerate or check the data bundled with the package")
    p = registry.command("bundled twin-config", "regenerate config/face_twin.yaml (the digital twin)", _twin_config)
    p.add_argument("--out", type=Path, default=None, help="output YAML (default: the repo's face_twin.yaml)")
    p.add_argument("--from-stored", action="store_true",
                   help="reuse source_face from the existing config instead of running MediaPipe")
    p.add_argument("--check", action="store_true", help="exit 1 if the file differs; write nothing")
    p = registry.command("bundled anchor-template", "regenerate the pose normalization's anchor template",
                         _anchor_template)
    p.add_argument("--check", action="store_true", help="compare with the stored template only")
    p = registry.command("bundled face-template", "rebuild the synthetic people's neutral face template",
                         _face_template)
    p.add_argument("--photo", default=None, help="default: scikit-image's astronaut")
    p.add_argument("--check", action="store_true", help="only compare with the bundled template")
    p = registry.command("bundled demo-clip", "remake the bundled demo clip", _demo_clip)
    p.add_argument("--out", default=None, help="default: the package's data/demo_clip.mp4")
    p.add_argument("--seed", type=integer(0), default=None, help="default: people.demo.DEMO_SEED")
    p = registry.command("bundled check-clips", "check generated clips against their ground truth (MediaPipe)",
                         _check_clips)
    p.add_argument("videos", nargs="+", help="clip .mp4 files with their .json beside them")
