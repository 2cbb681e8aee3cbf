"""``emo eval video PATH... [--json] [--out DIR]``: coexpression vs mimicry on recordings of real
people, measured against each recording's own landmarks (``pipeline/video_eval.py``)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any
from pathlib import Path

from ..errors import InputError
from ._args import integer

LOG = logging.getLogger(__name__)
#: A PATH with this suffix is a landmark track written by ``--tracks``: replayed without MediaPipe.
TRACK_SUFFIX = ".npz"


def _videos(paths: list[str]) -> list[Path]:
    """The videos named (a folder stands for the videos in it, sorted)."""
    from ..perception.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    out: list[Path] = []
    for name in paths:
        p = Path(name)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
            found = found or sorted(q for q in p.iterdir() if q.suffix.lower() == TRACK_SUFFIX)
            if found:
                out.extend(found)
            elif any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir()):
                out.append(p)            # a folder of frames is one recording
            else:
                raise InputError(f"{p}: no videos or image frames in this folder")
        elif p.is_file():
            out.append(p)            # a video, or a landmark track (.npz) written by --tracks
        else:
            raise InputError(f"{p}: no such video")
    return out


def _run(args: argparse.Namespace) -> int:
    from ..anticipation.blas import blas_threads
    from ..atomic import atomic_write_bytes, atomic_write_json
    from ..pipeline.core import Mode, PipelineConfig
    from ..pipeline.demo import fast_thread_handoff
    from ..pipeline.sim import SimConfig
    from .overrides import apply
    from ..pipeline.models import Stages
    from ..atomic import atomic_save_npz
    from ..pipeline.video_eval import VideoEvaluator, summary, timeline_png, track_arrays, video_report

    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    videos = _videos(args.paths)
    out = Path(args.out) if args.out else None
    if out is not None:
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out}: exists and is not a directory")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--out {out}: cannot create ({exc.strerror})") from None
    tracks = Path(args.tracks) if args.tracks else None
    if tracks is not None:
        try:
            tracks.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--tracks {tracks}: cannot create ({exc.strerror})") from None
    modes = (Mode.COEXPRESSION, Mode.MIMICRY)
    names = [m.value for m in modes]
    pipeline = apply(PipelineConfig(), args.pipeline, "--pipeline")
    sim = apply(SimConfig(), args.sim, "--sim")
    results, reports = [], []
    with fast_thread_handoff(), blas_threads(1):
        stages = Stages.load()
        stages.pipeline_config = pipeline
        evaluator = VideoEvaluator(stages, modes, sim=sim, max_frames=args.max_frames)
        for i, video in enumerate(videos):
            LOG.info("[%d/%d] %s", i + 1, len(videos), video)
            bar = _Bar(args, video)
            try:
                result = (evaluator.evaluate_track(video, progress=bar) if video.suffix.lower() == TRACK_SUFFIX
                          else evaluator.evaluate(video, progress=bar))
            finally:
                bar.close()
            results.append(result)
            picture = None
            if out is not None:
                picture = atomic_write_bytes(out / f"{i:02d}_{video.stem}_timeline.png", timeline_png(result))
                picture.chmod(0o644)
            reports.append(video_report(result, names, picture))
            if tracks is not None:
                name = video.name if video.suffix.lower() == TRACK_SUFFIX else f"{video.name}{TRACK_SUFFIX}"
                atomic_save_npz(tracks / name, **track_arrays(result)).chmod(0o644)
    report = {"videos": reports, "pooled": {"videos": len(results), **summary(results, names)},
              "models": stages.describe(),
              "rules": {"apex": "first 95 % of the episode maximum", "half_rise": "first 50 %",
                        "curves": "displacement (brows, lips, jaw) from the mean face in the 0.5 s before the "
                                  "episode's onset, projected on the retargeted human apex face, smoothed 0.1 s",
                        "jitter": "RMS second difference per frame of the driver's goals (command units)"}}
    if out is not None:
        atomic_write_json(out / "report.json", report).chmod(0o644)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


class _Bar:
    """A per-video progress bar on stderr (off with --quiet), opened at the first frame so that a
    file that is no video or track fails with its one-line error alone."""

    def __init__(self, args: argparse.Namespace, video: Path) -> None:
        self._bar = None
        self._on = not args.quiet
        self._name = video.name[:30]

    def __call__(self, n: int) -> None:
        if self._bar is None and self._on:
            from tqdm import tqdm

            self._bar = tqdm(desc=self._name, unit="frame", leave=False, file=sys.stderr)
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _print(report: dict) -> None:
    def line(name: str, s: dict) -> str:
        sync = "; ".join(f"{m} {v['median']:+.0f} ms (|.| {v['median_abs']:.0f}, n={v['n']})"
                         for m, v in s["synchrony_ms"].items() if v["median"] is not None) or "no episode measured"
        half = "; ".join(f"{m} {v['median']:+.0f}" for m, v in s["half_rise_ms"].items() if v["median"] is not None)
        d, p, j = s["detector"], s["predictor"], s["jitter"]
        return (f"{name}: apex {sync}; half rise {half or '-'} ms; detector fired {d['fired_per_episode']}, "
                f"before half rise {d['fired_before_half_rise']}, false/min {d['false_per_minute']}; "
                f"predictor MAE {p['model_mae']} vs mimicry {p['mimicry_mae']} (n={p['n']}); "
                f"jitter " + ", ".join(f"{m} {v}" for m, v in j.items()))

    for v in report["videos"]:
        print(line(Path(v["video"]).name, v))
    print(line("pooled", report["pooled"]))


def register(registry) -> None:
    registry.group("eval", "evaluate models")
    p = registry.command(
        "eval video", "coexpression vs mimicry on real recordings (synchrony, detector, predictor, jitter)", _run,
        description="Runs the in-process pipeline in both modes against the simulated robot on each video and "
                    "measures it against the video's own landmarks (episodes from a VIDEO.episodes.json sidecar, "
                    "or found from motion). Prints one JSON object with --json.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="video files (or folders of them), or landmark tracks (.npz, written by --tracks) to replay "
                        "without MediaPipe: the same pipelines on the recorded faces, the episodes from the track")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--out", default=None, help="folder for report.json and a timeline picture per video")
    p.add_argument("--tracks", default=None,
                   help="also write each video's landmark track with its episodes and truth (NAME.npz) here; "
                        "emo sim calibration --real reads them")
    p.add_argument("--max-frames", type=integer(1, 10_000_000), default=None, help="stop each video after this many frames")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--pipeline", action="append", metavar="KEY=VALUE",
                   help="override a pipeline setting (PipelineConfig field, e.g. lag_lead=slope); repeatable")
    p.add_argument("--sim", action="append", metavar="KEY=VALUE",
                   help="override a simulated robot setting (SimConfig field, e.g. servo_lag_s=0.3); repeatable")
    _register_detector(registry)


def _tracks(paths: list[str]) -> list[Path]:
    """The landmark tracks named (a folder stands for the .npz tracks in it, sorted)."""
    out: list[Path] = []
    for name in paths:
        p = Path(name)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() == TRACK_SUFFIX)
            if not found:
                raise InputError(f"{p}: no landmark tracks (.npz) in this folder; write them with "
                                 f"emo eval video VIDEOS --tracks {p}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such landmark track")
    return out


def _run_detector(args: argparse.Namespace) -> int:
    from ..anticipation.config import load_anticipation_config
    from ..anticipation.scorer import ExpressionScorer
    from ..pipeline.detector_eval import detector_figures, replay

    from .overrides import apply

    tracks = _tracks(args.paths)
    config = apply(load_anticipation_config(args.config).detector, args.detector, "--detector")
    scorer = ExpressionScorer.load(args.model)
    runs = [replay(path, config, scorer) for path in tracks]
    report: dict[str, Any] = {"tracks": [{"track": r.name, "fired_s": [round(t, 3) for t in r.fired], **detector_figures([r])}
                         for r in runs],
              "pooled": {"tracks": len(runs), **detector_figures(runs)},
              "detector": {k: getattr(config, k) for k in config.__dataclass_fields__}}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for item in report["tracks"] + [{"track": "pooled", **report["pooled"]}]:
        print(f"{item['track']}: fired {item['fired_per_episode']}, before half rise "
              f"{item['fired_before_half_rise']}, false/min {item['false_per_minute']} "
              f"({item['false_firings']} in {item['outside_minutes']} min), AUC {item['auc']}")
    return 0


def _register_detector(registry) -> None:
    p = registry.command(
        "eval detector", "the peak-activation detector alone, replayed over landmark tracks (seconds)", _run_detector,
        description="Replays the causal detector over landmark tracks written by emo eval video --tracks and "
                    "reports emo eval video's detector figures per track and pooled, plus the scorer's "
                    "frame-level AUC (rising frames before the half rise vs frames outside the expression "
                    "episodes). Compare detector settings (--config) and scorers (--model) in seconds.")
    p.add_argument("paths", nargs="+", metavar="TRACK", help="landmark tracks (.npz), or folders of them")
    p.add_argument("--config", default=None, help="anticipation YAML (default: config/anticipation.yaml)")
    p.add_argument("--model", default=None, help="predictor directory holding the detector scorer (default: shipped)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--detector", action="append", metavar="KEY=VALUE",
                   help="override a detector setting (the YAML's detector section, e.g. rearm_timeout_s=1.2); "
                        "repeatable")
