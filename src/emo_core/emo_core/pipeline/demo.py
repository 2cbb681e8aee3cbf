"""``emo demo``: the whole pipeline on a video (default: the bundled clip) against simulated robots.

One pass over the frames: the landmark extractor runs once per frame inside the first mode's
pipeline (timed end to end, frame in -> FaceCommand out) and its face is reused by the other mode;
each mode's commands drive its own simulated robot (driver -> emulator -> twin) in media time; each
output frame is composed as soon as the robots have reached that frame's time. Then the synchrony
of each mode is measured against the clip's ground truth (when the video has a ``.json`` sidecar)
and on held-out synthetic people, and ``side_by_side.mp4``, ``timeline.png`` and ``report.json``
are written (replaced as a set: an interrupted run leaves the previous three; emo_core.modeldir).
Beside each mode's pipeline a gaze stage (``gaze_demo.GazeDemo``) sends eye and neck commands to
the same robot and composes blinks into the expression command; with ``--moving`` the eye camera's
view is rendered from the robot's present gaze (closed loop).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..anticipation.blas import blas_threads
from ..memory import peak_rss_mb
from ..errors import InputError
from ..schema import N_LANDMARKS
from ..signals import Stopped
from .core import Mode, PipelineConfig, StepResult
from .gaze_demo import GazeDemo, GazeDemoConfig
from .models import Stages
from .outputs import HEADER, PANEL, Curve, PanelFrame, compose, timeline_png
from .run import ModeRun, ModeRunner, Reference, evaluate_sequences, measure, reference
from .sim import SimConfig, SimRobot
from .synchrony import APEX_FRACTION, crossing_time, human_episode, summarize
from .video_eval import HALF_FRACTION, second_difference_sq

LOG = logging.getLogger(__name__)

#: Seed of the held-out synthetic people. The shipped predictor is trained on people drawn with
#: other seeds (its card records its data), so these identities and videos are new to it.
SYNTHETIC_SEED = 8101
DEVICE_MAX_FRAMES = 300          # a webcam run stops after 10 s at 30 fps unless told otherwise
TARGETS = {"synchrony_median_abs_ms_max": 100, "mimicry_median_lag_ms_min": 300,
           "end_to_end_p50_ms_max": 5, "end_to_end_p99_ms_max": 15, "fps_min": 100, "peak_rss_mb_max": 1024}


@dataclass
class DemoConfig:
    video: str | None = None               # None: the bundled clip; a path, or a device index
    modes: tuple[Mode, ...] = (Mode.COEXPRESSION, Mode.MIMICRY)
    out: Path = Path("emo_demo_out")
    synthetic: int = 20                    # held-out synthetic sequences (0: skip)
    synthetic_seed: int = SYNTHETIC_SEED
    max_frames: int | None = None
    sim: SimConfig = field(default_factory=SimConfig)
    pipeline: PipelineConfig | None = None   # None: the defaults (mode set per run)
    panel: int = PANEL
    progress: bool = True
    gaze: GazeDemoConfig = field(default_factory=GazeDemoConfig)   # eyes, neck, blinks (docs/gaze.md)


def default_video() -> Path:
    from ..people.demo import demo_clip_path

    return demo_clip_path()


def load_ground_truth(video: str | None) -> dict[str, Any] | None:
    """The clip's ``.json`` sidecar (fps, onset_frame, apex_frame, intensity) or None."""
    from ..people.clip import load_truth, truth_path

    if video is None or str(video).isdigit() or str(video).startswith("/dev/"):
        return None
    path = truth_path(video)
    return load_truth(path) if path.is_file() else None


@contextmanager
def fast_thread_handoff() -> Iterator[None]:
    """The servo emulator answers from a thread on a pty; a short GIL switch interval lets the
    driver get its answers without waiting out the default 5 ms slice (process-wide; restored)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


class _Progress:
    def __init__(self, enabled: bool, total: int | None, desc: str, unit: str) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class DemoRun:
    """One ``emo demo`` run; :meth:`run` writes the outputs and returns the report."""

    def __init__(self, config: DemoConfig, stages: Stages | None = None) -> None:
        self.config = config
        if not config.modes:
            raise InputError("no mode to run")
        self.video = str(config.video) if config.video is not None else str(default_video())
        self.truth = load_ground_truth(self.video)
        self.stages = stages
        self.faces_xy: list[np.ndarray] = []
        self.stamps: list[float] = []
        self.runners: dict[Mode, ModeRunner] = {}
        self.runs: dict[Mode, ModeRun] = {}
        self.loop_wall_s = 0.0
        self.frames = 0
        self.servo_lag_s: float | None = None
        self.gaze: GazeDemo | None = None
        self._clip: Any = None
        self._synthetic_summary: Any = None

    # ---------------------------------------------------------------------------- the run
    def run(self) -> dict[str, Any]:
        from ..modeldir import OutputSet
        from ..perception.sources import open_source

        cfg = self.config
        # --moving loops the person video to the walking path's length.
        source = open_source(self.video, loop=cfg.gaze.enabled and cfg.gaze.moving)   # InputError (exit 2) first
        cfg.out.mkdir(parents=True, exist_ok=True)
        # The three outputs are replaced as a set at the end: an interrupted run leaves the old set.
        outputs = OutputSet(cfg.out)
        try:
            report = self._run(source, outputs)
            outputs.write_bytes("timeline.png", self._plot(self._clip, self._synthetic_summary))
            outputs.write_bytes("report.json", (json.dumps(report, indent=2) + "\n").encode())
            outputs.commit()
        finally:
            outputs.discard()
        return report

    def _run(self, source: Any, outputs: Any) -> dict[str, Any]:
        from ..perception.extractor import ExtractorConfig, FaceLandmarkExtractor
        from ..people.clip import write_video

        cfg = self.config
        # One BLAS thread: single-frame inference gains nothing from a second one and waits for it
        # on a busy machine (anticipation/blas.py).
        with source, fast_thread_handoff(), blas_threads(1):
            self.stages = self.stages or Stages.load()
            if self.config.pipeline is not None:
                self.stages = replace(self.stages, pipeline_config=self.config.pipeline)
            extractor = FaceLandmarkExtractor(ExtractorConfig(max_faces=1))
            pipelines = {m: self.stages.pipeline(m, extractor=extractor if i == 0 else None)
                         for i, m in enumerate(cfg.modes)}
            robots = {m: SimRobot(self.stages.twin, config=cfg.sim) for m in cfg.modes}
            self.servo_lag_s = next(iter(robots.values())).driver_config.servo_lag_s
            try:
                for robot in robots.values():
                    robot.start()
                self.runners = {m: ModeRunner(pipelines[m], robots[m]) for m in cfg.modes}
                if cfg.gaze.enabled:
                    self.gaze = GazeDemo(cfg.gaze, self.runners, self.stages.twin.calm_commands(), source.fps,
                                         cfg.sim.input_latency_s)
                width = cfg.panel * (2 + len(cfg.modes))
                size = (width, cfg.panel + HEADER)
                write_video(self._frames(source, pipelines), outputs.stage("side_by_side.mp4"), source.fps, size)
                if not self.stamps:
                    raise InputError(f"{self.video}: no frames")
                self.runs = {m: r.finish(self.stamps[-1]) for m, r in self.runners.items()}
            finally:
                for robot in robots.values():
                    robot.stop()
                extractor.close()
            primary = pipelines[cfg.modes[0]]
            self._clip = clip = self._clip_synchrony()
            self._synthetic_summary = synthetic = self._synthetic() if cfg.synthetic > 0 else None
        return self._report(primary, clip, synthetic)

    def _frames(self, source: Any, pipelines: dict) -> Iterator[np.ndarray]:
        """Process every frame through every mode and yield the composed side-by-side frame."""
        cfg = self.config
        is_device = getattr(source, "clock", None) is not None and not hasattr(source, "frame_count")
        limit = cfg.max_frames or (DEVICE_MAX_FRAMES if is_device else None)
        if self.gaze is not None and self.gaze.frame_limit is not None:
            limit = min(limit or self.gaze.frame_limit, self.gaze.frame_limit)
        total = getattr(source, "frame_count", None) or limit
        bar = _Progress(cfg.progress, min(total, limit) if (total and limit) else total, "emo demo", "frame")
        modes = list(cfg.modes)
        last_fire: float | None = None
        t_start = time.perf_counter()
        try:
            for frame in source:
                if self.gaze is not None:           # what the eye camera sees (moving: rendered)
                    frame = replace(frame, image=self.gaze.view(self.frames, frame.image, frame.stamp))
                first = pipelines[modes[0]].process_frame(frame.image, frame.stamp, source.name)
                results = {modes[0]: first}
                for m in modes[1:]:
                    results[m] = pipelines[m].process_face(first.face, frame.stamp)
                for m in modes:
                    # Gaze commands go to the same robot; the blink is composed into the expression's.
                    self.runners[m].feed(results[m] if self.gaze is None else self.gaze.step(m, results[m]))
                if self.gaze is not None:
                    frame = replace(frame, image=self.gaze.annotate(frame.image, first))
                self._keep(first)
                shown = results.get(Mode.COEXPRESSION, first)
                if shown.event is not None:
                    last_fire = frame.stamp
                yield compose(self._panel_frame(frame, shown, last_fire), cfg.panel)
                self.frames += 1
                bar.update()
                if limit is not None and self.frames >= limit:
                    break
        except KeyboardInterrupt as exc:
            if isinstance(exc, Stopped):
                raise             # SIGTERM/SIGHUP: stop now (the previous outputs stay); Ctrl-C: finish
            LOG.warning("interrupted: finishing with the %d frames seen", self.frames)
        finally:
            self.loop_wall_s = time.perf_counter() - t_start
            bar.close()

    def _keep(self, result: StepResult) -> None:
        xy = result.face.metric[:, :2] if result.face.detected else np.full((N_LANDMARKS, 2), np.nan, np.float32)
        self.faces_xy.append(np.asarray(xy, np.float32))
        self.stamps.append(result.stamp)

    def _panel_frame(self, frame: Any, shown: StepResult, last_fire: float | None) -> PanelFrame:
        held = shown.predicted_target is not None
        runner = self.runners.get(Mode.COEXPRESSION)
        eta = None
        if held and runner is not None and runner.run.execute_at:
            eta = runner.run.execute_at[-1] - frame.stamp
        robots = {m.value: r.robot.face() for m, r in self.runners.items()}
        poses = {m.value: self.gaze.robot_pose(m) for m in self.runners} if self.gaze is not None else {}
        return PanelFrame(stamp=frame.stamp, image=frame.image, face=shown.face,
                          target=shown.predicted_target if held else shown.robot_target,
                          target_is_prediction=held, time_to_apex=eta, robots=robots,
                          fired_ago=None if last_fire is None else frame.stamp - last_fire,
                          calibrated=shown.calibrated,
                          robot_gaze={k: ((p.eye_yaw, p.eye_pitch), (p.neck_roll, p.neck_pitch, p.neck_yaw))
                                      for k, p in poses.items()})

    # ---------------------------------------------------------------------------- synchrony
    def _clip_synchrony(self) -> dict[str, Any] | None:
        """Synchrony on this video against its ground truth, or None without one."""
        truth = self.truth
        if truth is None:
            return None
        faces = np.stack(self.faces_xy)
        fps = float(truth["fps"])
        intensity = np.asarray(truth["intensity"], np.float64)[:len(faces)]
        episode = human_episode(intensity, fps, int(truth["onset_frame"]))
        apex_frame = int(truth["apex_frame"])
        if episode is None or apex_frame >= len(faces) or not np.all(np.isfinite(faces[apex_frame])):
            LOG.warning("ground truth present but the apex frame has no face: synchrony unavailable")
            return None
        stages = self.stages
        assert stages is not None, "_run() loads the stages before measuring"
        ref = reference(stages, faces, fps, apex_frame, episode)
        offsets = {m.value: measure(run, episode, stages, ref) for m, run in self.runs.items()}
        human_half = crossing_time(ref.times, ref.curve, HALF_FRACTION, episode.start, episode.end)
        half = {}
        for m, run in self.runs.items():
            assert run.intensity is not None, "measure() above sets every run's intensity"
            robot_half = crossing_time(run.robot_times, run.intensity, HALF_FRACTION, episode.start, episode.end)
            half[m.value] = None if robot_half is None or human_half is None else robot_half - human_half
        return {"episode": episode, "offsets": offsets, "half": half, "intensity": intensity, "fps": fps,
                "apex_frame_s": apex_frame / fps, "reference": ref}

    def _synthetic(self) -> dict[str, Any]:
        from ..people import GeneratorConfig, PeopleGenerator

        cfg = self.config
        stages = self.stages
        assert stages is not None, "_run() loads the stages before the synthetic evaluation"
        generator = PeopleGenerator(GeneratorConfig(distractor_fraction=0.0))
        data = generator.dataset(cfg.synthetic, 1, seed=cfg.synthetic_seed)
        bar = _Progress(cfg.progress, cfg.synthetic, "synthetic people", "person")
        try:
            summary, results = evaluate_sequences(stages, list(data), cfg.modes, cfg.sim, progress=bar.update)
        finally:
            bar.close()
        leads = [r.lead_s for r in results if r.lead_s is not None]
        return {"summary": summary, "results": results, "leads": leads}

    # ---------------------------------------------------------------------------- outputs
    def _report(self, primary: Any, clip: dict | None, synthetic: dict | None) -> dict[str, Any]:
        cfg = self.config
        latency = primary.latency.summary_ms()
        e2e = np.asarray(primary.latency.samples["end_to_end"], np.float64)
        fps = float(len(e2e) / e2e.sum()) if e2e.size and e2e.sum() > 0 else None
        report: dict[str, Any] = {
            "input": {"video": self.video, "frames": self.frames,
                      "ground_truth": None if self.truth is None else "sidecar .json"},
            "modes": [m.value for m in cfg.modes],
            "latency_ms": latency,
            "latency_note": (f"{cfg.modes[0].value} pipeline, frame in -> FaceCommand out (landmark extractor "
                             "to inverse model); camera decoding, the sim robot and rendering excluded"),
            "fps": None if fps is None else round(fps, 1),
            "fps_note": "frames / total pipeline time (frame -> command), in process",
            "demo_loop_fps": round(self.frames / self.loop_wall_s, 1) if self.loop_wall_s > 0 else None,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "synchrony_ms": ({m.value: summarize([clip["offsets"][m.value]]) for m in cfg.modes}
                             if clip is not None else None),
        }
        report["half_rise_ms"] = ({m.value: summarize([clip["half"][m.value]]) for m in cfg.modes}
                                  if clip is not None else None)
        stamps = np.asarray(self.stamps, np.float64)
        report["jitter"] = {m.value: _rms(second_difference_sq(run, stamps)) for m, run in self.runs.items()}
        report["jitter_note"] = ("RMS second difference per frame of the goals sent to the servos (servo-lag "
                                 "lead included), command units")
        if clip is None:
            report["synchrony_note"] = "unavailable: the video has no ground-truth .json sidecar"
        else:
            ref: Reference = clip["reference"]
            report["apex_s"] = {"human": _round(ref.apex), "human_ground_truth": round(ref.truth_apex, 4),
                                "human_ground_truth_argmax": round(clip["apex_frame_s"], 4),
                                **{m.value: _round(self.runs[m].robot_apex) for m in cfg.modes}}
        report["detector"] = {m.value: {"fired_s": [round(t, 4) for t in run.fire_times],
                                        "predicted_apex_s": [round(t, 4) for t in run.execute_at]}
                              for m, run in self.runs.items()}
        if synthetic is not None:
            results = synthetic["results"]
            report["synchrony_ms_synthetic"] = synthetic["summary"]
            report["synthetic"] = {
                "sequences": cfg.synthetic, "measured": len(results), "seed": cfg.synthetic_seed,
                "fired": sum(r.fired.get(Mode.COEXPRESSION.value, False) for r in results),
                "detector_lead_ms_median": (round(float(np.median(synthetic["leads"])) * 1e3, 1)
                                            if synthetic["leads"] else None),
                "per_sequence": [{"video": r.video_id, "label": r.label,
                                  **{k: _round(v, 1e3) for k, v in r.offsets_s.items()},
                                  "reproduced": {k: round(v, 2) for k, v in r.reproduced.items()}}
                                 for r in results]}
        report["apex_rule"] = (f"first time the intensity reaches {APEX_FRACTION:.0%} of its episode maximum; "
                               "intensity = displacement (brows, lips, jaw) projected on the retargeted human "
                               "apex face, smoothed over 0.1 s (centred); human: every frame retargeted, no "
                               "delay; robot: the twin face of the servos' present positions")
        report["sim"] = {"control_period_s": cfg.sim.control_period_s, "input_latency_s": round(cfg.sim.input_latency_s, 4),
                         "servo_lag_s": self.servo_lag_s, "bus_timing": cfg.sim.bus_timing}
        pipe = (self.stages.pipeline_config if self.stages is not None else None) or PipelineConfig()
        report["pipeline"] = {"lead_fraction": pipe.lead_fraction, "lead_mirroring": pipe.lead_mirroring,
                              "anticipate": pipe.anticipate, "repredict_every": pipe.repredict_every}
        report["models"] = self.stages.describe() if self.stages is not None else {}
        report["machine"] = {"cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
                             "python": platform.python_version()}
        report["gaze"] = (self.gaze.report(self.runs, len(self.stamps) / max(self._fps(), 1e-9))
                          if self.gaze is not None else None)
        report["targets"] = TARGETS
        return report

    def _fps(self) -> float:
        stamps = np.asarray(self.stamps, np.float64)
        return float(1.0 / np.median(np.diff(stamps))) if len(stamps) > 1 else 30.0

    def _plot(self, clip: dict | None, synthetic: dict | None) -> bytes:
        human = truth = None
        if clip is not None:
            ref: Reference = clip["reference"]
            human = Curve(ref.times, ref.curve / max(float(np.nanmax(ref.curve)), 1e-9), ref.apex)
            intensity = clip["intensity"]
            truth = Curve(np.arange(len(intensity)) / clip["fps"], intensity / max(float(intensity.max()), 1e-9),
                          ref.truth_apex)
        robots = {}
        for mode, run in self.runs.items():
            values = run.intensity
            if values is None:
                values = _distance_curve(run, self.stages)
            peak = max(float(np.max(values)) if len(values) else 0.0, 1e-9)
            robots[mode.value] = Curve(run.robot_times, values / peak, run.robot_apex)
        coex = self.runs.get(Mode.COEXPRESSION)
        fired = coex.fire_times if coex is not None else []
        predicted = coex.execute_at if coex is not None else []
        offsets = None
        if synthetic is not None:
            offsets = {m.value: [r.offsets_s.get(m.value) for r in synthetic["results"]] for m in self.config.modes}
        title = Path(self.video).name + ("" if clip is not None else " (no ground truth: robot only)")
        return timeline_png(human, robots, fired, predicted, offsets, title=title, truth=truth)


def _distance_curve(run: ModeRun, stages: Stages | None) -> np.ndarray:
    """Without ground truth: the robot face's distance from its rest face."""
    if stages is None or not len(run.robot_faces):
        return np.zeros(len(run.robot_times))
    d = run.robot_faces - stages.twin.rest_face()
    return np.linalg.norm(d.reshape(len(d), -1), axis=1)


def _rms(squares: np.ndarray) -> float | None:
    return None if squares.size == 0 else round(float(np.sqrt(squares.mean())), 5)


def _round(value: float | None, scale: float = 1.0) -> float | None:
    return None if value is None else round(float(value) * scale, 4 if scale == 1.0 else 1)


def run_demo(config: DemoConfig, stages: Stages | None = None) -> dict[str, Any]:
    """Run the demo and write its three files into ``config.out``; returns the report."""
    return DemoRun(config, stages).run()

