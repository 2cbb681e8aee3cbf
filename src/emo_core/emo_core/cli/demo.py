"""``emo demo [--video PATH] [--mode coexpression|mimicry|both] [--out DIR]``: watch the robot
smile with a person -- on the bundled clip by default, with the shipped models, no hardware."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ._args import integer, number

if TYPE_CHECKING:       # annotations only: the pipeline and gaze modules load when a demo runs
    from ..pipeline.core import PipelineConfig
    from ..pipeline.gaze_demo import GazeDemoConfig

LOG = logging.getLogger(__name__)

MODES = {"coexpression": ("coexpression",), "mimicry": ("mimicry",), "both": ("coexpression", "mimicry")}


def _run(args: argparse.Namespace) -> int:
    from ..pipeline.core import Mode
    from ..pipeline.demo import DemoConfig, run_demo
    from ..pipeline.sim import SimConfig

    if args.synthetic < 0:
        raise InputError(f"--synthetic must be >= 0, got {args.synthetic}")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    if not 0.0 <= args.input_latency_ms <= 1000.0:
        raise InputError(f"--input-latency-ms must be in [0, 1000], got {args.input_latency_ms}")
    if not 2.0 <= args.moving_seconds <= 600.0:
        raise InputError(f"--moving-seconds must be in [2, 600], got {args.moving_seconds}")
    if args.moving and args.no_gaze:
        raise InputError("--moving needs the gaze (drop --no-gaze)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    config = DemoConfig(video=args.video, modes=tuple(Mode(m) for m in MODES[args.mode]), out=out,
                        synthetic=args.synthetic, max_frames=args.max_frames,
                        sim=SimConfig(input_latency_s=args.input_latency_ms / 1e3, bus_timing=args.bus_timing),
                        pipeline=_pipeline_config(args),
                        gaze=_gaze_config(args),
                        progress=not args.quiet)
    report = run_demo(config)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _summary(report, out)
    return 0


def _pipeline_config(args: argparse.Namespace) -> "PipelineConfig | None":
    """The ablation flags as PipelineConfig overrides (None: the defaults)."""
    from ..pipeline.core import PipelineConfig

    # Any: each key is a PipelineConfig field and gets a value of that field's type just below.
    overrides: dict[str, Any] = {}
    if args.timed_hold:
        overrides["lead_fraction"] = 0.0
    if args.no_lead_mirroring:
        overrides["lead_mirroring"] = False
    if args.no_anticipation:
        overrides["anticipate"] = False
    return PipelineConfig(**overrides) if overrides else None


def _gaze_config(args: argparse.Namespace) -> "GazeDemoConfig":
    from ..gaze import BlinkConfig
    from ..pipeline.gaze_demo import GazeDemoConfig

    return GazeDemoConfig(enabled=not args.no_gaze, moving=args.moving, seconds=args.moving_seconds,
                          seed=args.gaze_seed, blink=BlinkConfig(seed=args.gaze_seed))


def _summary(report: dict, out: Path) -> None:
    lat = report["latency_ms"].get("end_to_end", {})
    print(f"wrote {out / 'side_by_side.mp4'}, {out / 'timeline.png'}, {out / 'report.json'}")
    print(f"frame -> command latency p50 {lat.get('p50', float('nan')):.2f} ms, p99 {lat.get('p99', float('nan')):.2f} ms; "
          f"{report['fps']} frames/s in process; peak RSS {report['peak_rss_mb']} MB")
    for key, label in (("synchrony_ms", "this video"), ("synchrony_ms_synthetic", "held-out synthetic people")):
        sync = report.get(key)
        if not sync:
            if key == "synchrony_ms":
                print(f"synchrony ({label}): {report.get('synchrony_note', 'unavailable')}")
            continue
        parts = [f"{mode} {s['median']:+.0f} ms (|median| {s['median_abs']:.0f}, n={s['n']})"
                 for mode, s in sync.items() if s.get("median") is not None]
        print(f"robot apex - human apex ({label}): " + ("; ".join(parts) or "no expression measured"))
    gaze = report.get("gaze")
    if gaze:
        if gaze.get("error_p50") is not None:
            jump = (f"settle {gaze['settle_ms']} ms, neck share {gaze['neck_share']}" if gaze["settle_ms"] is not None
                    else "no 20-degree jump settled in this run")
            print(f"gaze (closed loop): error p50 {gaze['error_p50']:.3f} / p95 {gaze['error_p95']:.3f} of the image "
                  f"width; {jump}; {gaze['blinks_per_min']} blinks/min")
        else:
            print(f"gaze: open loop on this video (--moving for tracking figures); {gaze['blinks_per_min']} blinks/min")


def register(registry) -> None:
    p = registry.command(
        "demo", "watch the robot smile with a person: video + timeline + report (no hardware)", _run,
        description="Runs the whole pipeline (landmarks -> peak activation -> predictor -> retarget -> "
                    "inverse model -> servo driver -> bus emulator -> digital twin) on a video, in "
                    "coexpression and/or mimicry mode, and writes side_by_side.mp4, timeline.png and "
                    "report.json (latency per stage, frames/s, peak memory, robot-vs-human apex synchrony "
                    "on the video's ground truth and on held-out synthetic people).")
    p.add_argument("--video", default=None,
                   help="video file, image folder or camera index (e.g. 0); default: the bundled clip. "
                        "Synchrony needs a ground-truth .json beside the video (as the clip maker writes)")
    p.add_argument("--mode", choices=tuple(MODES), default="both", help="default: both")
    p.add_argument("--out", default="emo_demo_out", help="output directory (default: ./emo_demo_out)")
    p.add_argument("--synthetic", type=integer(0, 1000), default=20,
                   help="held-out synthetic people to measure synchrony on (default 20; 0: skip)")
    p.add_argument("--max-frames", type=integer(1, 1_000_000), default=None,
                   help="stop after this many frames (default: the whole video; 300 for a camera)")
    p.add_argument("--input-latency-ms", type=number(0, 1000), default=1000.0 / 30.0,
                   help="camera exposure -> command delay the sim robot models (default: one frame, 33.3 ms)")
    p.add_argument("--bus-timing", action="store_true",
                   help="emulate 1 Mbps byte timing on the servo bus (slower on the wall clock; same motion)")
    ablation = p.add_argument_group("ablations of coexpression (docs/architecture.md, Synchrony)")
    ablation.add_argument("--timed-hold", action="store_true",
                          help="hold the predicted face itself, due at the predicted apex (execute_at), instead "
                               "of leading the person toward it frame by frame")
    ablation.add_argument("--no-lead-mirroring", action="store_true",
                          help="coexpression's mirroring does not use the driver's servo lag lead")
    ablation.add_argument("--no-anticipation", action="store_true",
                          help="coexpression ignores the predictor (lag-led mirroring only)")
    gaze = p.add_argument_group("gaze and blinking (docs/gaze.md)")
    gaze.add_argument("--moving", action="store_true",
                      help="the person moves: the video is placed along a walking path (with 20-degree jumps) in a "
                           "wider scene and the robot's eye camera renders its view from the present gaze/neck "
                           "angles (closed loop); report.json's gaze gets tracking figures")
    gaze.add_argument("--moving-seconds", type=float, default=20.0,
                      help="length of the --moving run (the video is looped; default 20)")
    gaze.add_argument("--gaze-seed", type=int, default=0, help="seed of the walking path and the blinks")
    gaze.add_argument("--no-gaze", action="store_true", help="no gaze, neck or blink commands")
    p.add_argument("--json", action="store_true", help="print report.json to stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
