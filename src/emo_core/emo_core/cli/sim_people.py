"""``emo sim sequences`` (synthetic people's landmark sequences) and ``emo sim clip`` (a real photo
warped into an expression video with its ground truth)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import InputError
from ._args import integer, number

LOG = logging.getLogger(__name__)


def _sequences(args: argparse.Namespace) -> int:
    from ..people.generator import PeopleGenerator, profile_config

    out = Path(args.out)
    if out.suffix != ".npz":
        raise InputError(f"--out must be a .npz file, got {out}")
    profile = "calibrated" if args.calibrated else args.profile
    config = profile_config(profile, fps=args.fps, distractor_fraction=args.distractors)
    dataset = PeopleGenerator(config).dataset(args.subjects, args.videos, seed=args.seed,
                                              progress=not args.quiet)
    dataset.save(out)
    counts = {label: sum(s.label == label for s in dataset) for label in dataset.labels}
    print(f"{out}: {len(dataset)} videos of {args.subjects} subjects, {dataset.n_frames} frames; "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _calibration(args: argparse.Namespace) -> int:
    import json

    from ..people.calibration import compare, table
    from ..people.generator import profile_config

    real = Path(args.real)
    if not real.is_dir():
        raise InputError(f"--real must be a folder of landmark tracks (*.npz), got {real}")
    result = compare(real, profile_config(args.profile), subjects=args.subjects, videos=args.videos,
                     seed=args.seed, manifest=args.manifest)
    result["profile"] = args.profile
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"real: {result['real']['people']} people; synthetic ({args.profile}): "
              f"{result['synthetic']['people']} people")
        print(table(result))
    return 0


def _clip(args: argparse.Namespace) -> int:
    from ..people.clip import make_clip
    from ..people.expressions import prototype

    prototype(args.expression)
    if args.photo is not None and not Path(args.photo).is_file():
        raise InputError(f"photo not found: {args.photo}")
    result = make_clip(args.expression, args.out, photo=args.photo, seconds=args.seconds, seed=args.seed,
                       fps=args.fps, size=args.size, blink_rate_hz=args.blink_rate, progress=not args.quiet)
    print(f"{result.video}: {result.n_frames} frames, onset frame {result.onset_frame}, "
          f"apex frame {result.apex_frame}; ground truth in {result.truth}")
    return 0


def register(registry) -> None:
    registry.group("sim", "simulated people and robot face")
    p = registry.command(
        "sim sequences", "generate synthetic people's expression landmark sequences (.npz)", _sequences,
        description="Synthetic people: identities x videos of expressions (smile, broad_smile, surprise, "
                    "sadness, anger, disgust, fear) and distractors (neutral, blink, talking, head_turn) "
                    "as metric landmarks with ground-truth onset/apex, in the human sequence dataset format.")
    p.add_argument("--subjects", type=integer(1, 10_000), required=True, help="number of synthetic people")
    p.add_argument("--videos", type=integer(1, 1000), required=True, help="videos per person")
    p.add_argument("--out", required=True, help="output .npz file")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)
    p.add_argument("--distractors", type=number(0, 1), default=0.2, metavar="FRACTION",
                   help="fraction of videos that are distractors (default 0.2)")
    p.add_argument("--fps", type=number(1, 240), default=30.0)
    p.add_argument("--profile", choices=("original", "calibrated"), default="original",
                   help="original: the generator the shipped models were trained with (default); "
                        "calibrated: matched to real people (docs/people.md)")
    p.add_argument("--calibrated", action="store_true", help="same as --profile calibrated")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    k = registry.command(
        "sim calibration", "compare synthetic people with real landmark tracks", _calibration,
        description="Side-by-side figures of real landmark tracks (DIR/*.npz: metric, ts, det, spans, truth, "
                    "as the real-set extractor writes them) and a small synthetic set: face proportions, "
                    "per-region motion shares, rise progress at the peak activation, tracker wander and jitter.")
    k.add_argument("--real", required=True, help="folder of cached real landmark tracks (*.npz)")
    k.add_argument("--manifest", default=None,
                   help="the real set's manifest.json naming each recording's person (default DIR/manifest.json)")
    k.add_argument("--profile", choices=("original", "calibrated"), default="original")
    k.add_argument("--subjects", type=integer(1, 10_000), default=24)
    k.add_argument("--videos", type=integer(1, 1000), default=10)
    k.add_argument("--seed", type=integer(0, 2**32 - 1), default=123)
    k.add_argument("--json", action="store_true", help="print JSON instead of a table")

    c = registry.command(
        "sim clip", "warp a real face photo into an expression video with its ground truth", _clip,
        description="Neutralize a face photo (default: scikit-image's astronaut) and animate an expression "
                    "on it; writes CLIP.mp4 and CLIP.json (fps, onset_frame, apex_frame, intensity per frame).")
    c.add_argument("--expression", required=True, help="smile, broad_smile, surprise, sadness, anger, disgust, fear")
    c.add_argument("--out", required=True, help="output .mp4 (the ground truth goes beside it as .json)")
    c.add_argument("--photo", default=None, help="a face photo (default: the astronaut)")
    c.add_argument("--seconds", type=number(1, 60), default=4.0)
    c.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)
    c.add_argument("--fps", type=number(5, 120), default=30.0)
    c.add_argument("--size", type=integer(64, 2048), default=512, help="square frame side in pixels (default 512)")
    c.add_argument("--blink-rate", type=number(0, 2), default=0.2, help="blinks per second while at rest")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
