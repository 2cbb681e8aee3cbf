"""``emo eval video``: the in-process pipeline on real recordings, measured against the recordings' own landmarks.

For each video the landmark extractor runs once per frame, and every face goes through one
pipeline per mode (coexpression and mimicry), each driving its own simulated robot (driver ->
bus emulator -> twin) in media time, exactly as ``emo demo`` does. A recording of a real person
has no ground-truth intensity, so the truth comes from the video's own landmarks:

* **episodes**: time spans from a sidecar (``clip.mp4`` -> ``clip.episodes.json``; see
  :func:`load_episodes`), each of a ``kind``: ``expression`` (measured: synchrony, half rise,
  detector hits, predictor error) or a distractor (``talking``, ``head``, ``occlusion``, ``blink``,
  ``rest``: firings there count as false). Without a sidecar, expression episodes are found
  automatically from the landmarks' motion (:func:`auto_episodes`) and the report says so.
* **per expression episode**: the offline peak-activation method (``anticipation.peak``, the
  paper's: Savitzky-Golay smoothed distance from the episode's first frames, eyes left out) gives
  the onset (the acceleration maximum) and the apex frame (first 95 % of the smoothed distance:
  the face the predictor should have predicted). A transition from one expression to the next is
  an episode like any other: its "rest" is the face it starts from.
* **curves**: human and robot are measured the same way (as in ``pipeline.synchrony``): the human's
  every frame retargeted to the robot (no robot, no delay) and the robot's twin face of its servos'
  present positions, each as its displacement from its own mean face in the half second before the
  onset, projected on the direction from that baseline to the retargeted human apex face (brows,
  lips, jaw), smoothed over 0.1 s (centred). Apex = first 95 % of the episode maximum
  (``synchrony_ms``); half rise = first 50 % (``half_rise_ms``); both robot - human, in ms.

``detector``: ``fired_per_episode`` = share of expression episodes with a firing between the
episode start and the human apex; ``fired_before_half_rise`` = share with one before the human's
half rise; ``false_per_minute`` = firings outside every expression episode per minute of that time.
``predictor``: at each firing inside an expression episode, the MAE (metric units, 113 x 2) of the
predicted face against the human's apex face (``model_mae``), of the face the controller holds --
the prediction blended toward the face at the firing by the predictor's confidence
(``blended_mae``) -- and mimicry's (the face at the firing, ``mimicry_mae``).
``jitter``: per mode, the RMS of the second difference per frame of the positions sent to the
servos (the driver's goals, servo-lag lead included, sampled at the frame times), in command units.
"""
from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..anticipation.peak import PeakConfig, peak_activation
from ..errors import InputError
from ..schema import N_LANDMARKS, Face
from .core import Mode
from .models import Stages
from .run import ModeRun, ModeRunner, human_rest
from .sim import SimConfig, SimRobot
from .synchrony import APEX_FRACTION, crossing_time, expression_mask, smooth, summarize

LOG = logging.getLogger(__name__)

EPISODE_KINDS = ("expression", "talking", "head", "occlusion", "blink", "rest")
HALF_FRACTION = 0.5
#: The baseline of each curve: its mean over this long before the episode's onset.
BASELINE_S = 0.5
#: An episode needs this many frames (the offline method's Savitzky-Golay window and rest frames).
MIN_EPISODE_FRAMES = 15
#: ... and at most this share of frames without a face.
MAX_MISSING = 0.3
SIDECAR_SUFFIX = ".episodes.json"
#: Frame rate assumed for a one-frame track (a track keeps stamps, not its source's rate).
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class EpisodeSpec:
    """One annotated span of a recording (seconds, media time)."""

    start: float
    end: float
    kind: str = "expression"
    label: str = ""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.start) and np.isfinite(self.end)) or self.end <= self.start or self.start < 0:
            raise InputError(f"episode [{self.start}, {self.end}] s: need 0 <= start < end")
        if self.kind not in EPISODE_KINDS:
            raise InputError(f"episode kind {self.kind!r} unknown; known: {', '.join(EPISODE_KINDS)}")


def sidecar_path(video: str | Path) -> Path:
    p = Path(video)
    return p.with_name(p.stem + SIDECAR_SUFFIX) if p.suffix else p.with_name(p.name + SIDECAR_SUFFIX)


def evaluate_until(video: str | Path) -> float | None:
    """The sidecar's ``evaluate_until_s``: a recording annotated only up to there is measured up to there."""
    path = sidecar_path(video)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("evaluate_until_s")
        return None if value is None else float(value)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: not an episodes sidecar ({exc})") from None


def load_episodes(video: str | Path) -> list[EpisodeSpec] | None:
    """The episodes of ``video``'s sidecar, or None without one.

    The sidecar is JSON: ``{"episodes": [{"start_s": 0.4, "end_s": 2.1, "kind": "expression",
    "label": "smile from rest"}, ...]}`` (``kind`` defaults to ``expression``); other keys (source,
    licence) are kept for people and ignored here.
    """
    path = sidecar_path(video)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["episodes"]
        if not isinstance(items, list):
            raise TypeError("'episodes' is not a list")
        return [EpisodeSpec(float(e["start_s"]), float(e["end_s"]), str(e.get("kind", "expression")),
                            str(e.get("label", ""))) for e in items]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not an episodes sidecar ({exc})") from None


def auto_episodes(faces_xy: np.ndarray, times: np.ndarray, *, level: float = 0.35,
                  pad_before_s: float = 0.5, pad_after_s: float = 0.5, min_s: float = 0.2) -> list[EpisodeSpec]:
    """Expression episodes found from the landmarks alone (no sidecar): spans where the brows,
    lips and jaw (not the eyes: blinks) are displaced from the recording's resting face (its first
    frames) by more than ``level`` x the largest displacement, padded. A fallback for a user's own
    video that starts at rest; the real-face set is annotated instead."""
    xy = _filled(faces_xy)
    if xy is None or len(xy) < MIN_EPISODE_FRAMES:
        return []
    from scipy.signal import savgol_filter

    keep = expression_mask()
    rest = np.median(xy[:8], axis=0)
    dist = np.sqrt(((xy - rest)[:, keep] ** 2).sum(axis=2).mean(axis=1))
    dist = savgol_filter(dist, MIN_EPISODE_FRAMES, 3, mode="interp")
    above = dist > level * float(dist.max())
    out: list[EpisodeSpec] = []
    i = 0
    while i < len(above):
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(above) and above[j + 1]:
            j += 1
        if times[j] - times[i] >= min_s:
            out.append(EpisodeSpec(max(float(times[0]), float(times[i]) - pad_before_s),
                                   min(float(times[-1]), float(times[j]) + pad_after_s), "expression", "auto"))
        i = j + 1
    return out


def truth_episodes(video: str | Path) -> list[EpisodeSpec] | None:
    """The expression episode of a clip with a ground-truth ``.json`` (``emo sim clip``, the
    bundled clip): onset - 0.5 s to 0.5 s after its intensity relaxed below 30 % of its peak."""
    from ..people.clip import load_truth, truth_path
    from .synchrony import human_episode

    path = truth_path(video)
    if not path.is_file():
        return None
    truth = load_truth(path)
    ep = human_episode(np.asarray(truth["intensity"], np.float64), float(truth["fps"]), int(truth["onset_frame"]))
    return None if ep is None else [EpisodeSpec(ep.start, ep.end, "expression", str(truth.get("expression", "")))]


def _filled(faces_xy: np.ndarray) -> np.ndarray | None:
    """(T, 113, 2) with frames without a face linearly interpolated (None if no face at all)."""
    xy = np.asarray(faces_xy, np.float64)
    ok = np.all(np.isfinite(xy), axis=(1, 2))
    if not ok.any():
        return None
    if ok.all():
        return xy
    t = np.arange(len(xy))
    flat = xy.reshape(len(xy), -1)
    out = np.empty_like(flat)
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(t, t[ok], flat[ok, j])
    return out.reshape(xy.shape)


# ----------------------------------------------------------------------------- ground truth
@dataclass
class Truth:
    """One measurable expression episode of a recording."""

    spec: EpisodeSpec
    onset: float               # offline peak activation (s)
    apex_frame: int            # first 95 % of the smoothed distance (the face the predictor should predict)
    apex_face: np.ndarray      # (113, 2) metric, mean of the apex frame and its neighbours
    direction: np.ndarray      # (113, 2) robot-space: retargeted apex face - the human's baseline
    human_curve: np.ndarray    # (T,) over the recording's frames
    human_apex: float | None
    human_half: float | None


def _project(faces: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    keep = expression_mask()
    d = np.asarray(direction, np.float64)[keep].reshape(-1)
    n2 = float(d @ d)
    if n2 <= 0:
        return np.zeros(len(faces))
    disp = (np.asarray(faces, np.float64) - origin)[:, keep].reshape(len(faces), -1)
    return np.maximum(disp @ d / n2, 0.0)


def _baseline(times: np.ndarray, faces: np.ndarray, spec: EpisodeSpec, onset: float) -> np.ndarray:
    lo = max(spec.start, onset - BASELINE_S)
    inside = (times >= lo - 1e-9) & (times <= onset + 1e-9)
    if not inside.any():
        inside = np.zeros(len(times), bool)
        inside[int(np.argmin(np.abs(times - onset)))] = True
    return faces[inside].mean(axis=0)


def human_faces(stages: Stages, faces_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The human's resting face and every frame retargeted to the robot (frames without a face
    interpolated): what each episode's human curve projects. Computed once per recording."""
    rest = human_rest(faces_xy)
    filled = _filled(faces_xy)
    if filled is None:
        raise ValueError("human_faces needs a recording with a face in at least one frame")
    return rest, stages.retargeter(filled.astype(np.float32), rest)


def ground_truth(stages: Stages, faces_xy: np.ndarray, times: np.ndarray, spec: EpisodeSpec,
                 human: tuple[np.ndarray, np.ndarray] | None = None) -> Truth | None:
    """The offline peak activation of one expression episode, and the human's curve over it
    (``times``: the frames' media time, the episodes' time base; ``human``: :func:`human_faces`
    of the recording, computed here when not given)."""
    a = int(np.searchsorted(times, spec.start - 1e-9, side="left"))
    b = int(np.searchsorted(times, spec.end + 1e-9, side="right")) - 1
    if b - a + 1 < MIN_EPISODE_FRAMES:
        LOG.info("episode [%.2f, %.2f] s: too short for peak activation", spec.start, spec.end)
        return None
    window = faces_xy[a:b + 1]
    ok = np.all(np.isfinite(window), axis=(1, 2))
    if ok.mean() < 1 - MAX_MISSING:
        LOG.info("episode [%.2f, %.2f] s: face missing on %.0f %% of frames", spec.start, spec.end, 100 * (1 - ok.mean()))
        return None
    filled = _filled(window)
    assert filled is not None, "the missing-face check above leaves a face in some frame"
    peak = peak_activation(filled, PeakConfig(eye_weight=0.0))
    apex_frame = a + peak.arrival_frame
    lo, hi = max(a, apex_frame - 1), min(b, apex_frame + 1)
    around = faces_xy[lo:hi + 1]
    around = around[np.all(np.isfinite(around), axis=(1, 2))]
    apex_face = (around.mean(axis=0) if len(around) else filled[peak.arrival_frame]).astype(np.float32)
    onset = float(times[a + peak.peak_frame])
    rest, retargeted = human if human is not None else human_faces(stages, faces_xy)
    base = _baseline(times, retargeted, spec, onset)
    direction = stages.retargeter(apex_face, rest) - base
    curve = smooth(times, _project(retargeted, base, direction))
    return Truth(spec, onset, apex_frame, apex_face, direction, curve,
                 crossing_time(times, curve, APEX_FRACTION, spec.start, spec.end),
                 crossing_time(times, curve, HALF_FRACTION, spec.start, spec.end))


def robot_curve(run: ModeRun, truth: Truth) -> np.ndarray:
    base = _baseline(run.robot_times, run.robot_faces, truth.spec, truth.onset)
    return smooth(run.robot_times, _project(run.robot_faces, base, truth.direction))


# ----------------------------------------------------------------------------- per video
@dataclass
class VideoResult:
    video: str
    fps: float
    frames: int
    episodes_source: str                        # "sidecar" | "clip ground truth" | "auto"
    specs: list[EpisodeSpec]
    truths: list[Truth]
    runs: dict[str, ModeRun]
    events: list[Any]                           # the coexpression pipeline's PeakEvents
    times: np.ndarray                           # (frames,) media time of each frame
    track: dict[str, np.ndarray] = field(default_factory=dict)   # per frame: metric, det, rot, scale
    apex: dict[str, list[float | None]] = field(default_factory=dict)     # per mode, per truth: offset (s)
    half: dict[str, list[float | None]] = field(default_factory=dict)
    robot_curves: dict[str, list[np.ndarray]] = field(default_factory=dict)
    fired: list[bool] = field(default_factory=list)
    fired_early: list[bool] = field(default_factory=list)
    false_firings: int = 0
    outside_s: float = 0.0
    model_errors: list[float] = field(default_factory=list)
    blended_errors: list[float] = field(default_factory=list)
    mimicry_errors: list[float] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    jitter_sq: dict[str, np.ndarray] = field(default_factory=dict)   # squared second differences


class VideoEvaluator:
    """Runs recordings through both modes and measures them (module docstring)."""

    def __init__(self, stages: Stages, modes: Sequence[Mode] = (Mode.COEXPRESSION, Mode.MIMICRY),
                 sim: SimConfig | None = None, max_frames: int | None = None) -> None:
        if Mode.COEXPRESSION not in modes:
            raise InputError("emo eval video needs the coexpression mode (its detector and predictor are measured)")
        self.stages = stages
        self.modes = tuple(modes)
        self.sim = sim or SimConfig()
        self.max_frames = max_frames

    def evaluate(self, video: str | Path, progress: Callable[[int], None] | None = None) -> VideoResult:
        """Landmarks from the video (MediaPipe, once per frame), then every mode on them."""
        from ..perception.extractor import ExtractorConfig, FaceLandmarkExtractor
        from ..perception.sources import open_source

        source = open_source(str(video))
        until = evaluate_until(video)
        extractor = FaceLandmarkExtractor(ExtractorConfig(max_faces=1))
        try:
            with _Feeder(self.stages, self.modes, self.sim, extractor) as feeder, source:
                fps = float(source.fps)
                for frame in source:
                    if until is not None and frame.stamp > until:
                        break
                    feeder.frame(frame.image, frame.stamp, source.name)
                    if progress is not None:
                        progress(1)
                    if self.max_frames is not None and feeder.count >= self.max_frames:
                        break
                runs, events = feeder.finish(video)
        finally:
            extractor.close()
        return self._result(video, feeder, runs, events, load_episodes(video), fps)

    def evaluate_track(self, path: str | Path, progress: Callable[[int], None] | None = None) -> VideoResult:
        """Replay a landmark track written by ``--tracks`` (:func:`track_arrays`): the same
        pipelines on the recorded faces, without MediaPipe; the episodes come from the track."""
        track = load_track(path)
        with _Feeder(self.stages, self.modes, self.sim, None) as feeder:
            for face in track_faces(track):
                feeder.face(face)
                if progress is not None:
                    progress(1)
                if self.max_frames is not None and feeder.count >= self.max_frames:
                    break
            runs, events = feeder.finish(path)
        return self._result(path, feeder, runs, events, track_specs(track), DEFAULT_FPS)

    def _result(self, video: str | Path, feeder: "_Feeder", runs: dict[str, ModeRun], events: list[Any],
                specs: list[EpisodeSpec] | None, fps: float) -> VideoResult:
        """The measured result; ``fps`` is the source's, used only when there is a single frame."""
        xy = np.stack(feeder.faces_xy)
        times = np.asarray(feeder.stamps, np.float64)
        if len(times) > 1:
            fps = 1.0 / max(float(np.median(np.diff(times))), 1e-3)
        origin = "sidecar"
        if specs is None:
            specs, origin = truth_episodes(video), "clip ground truth"
        if specs is None:
            specs, origin = auto_episodes(xy, times), "auto"
        # No face at all: every episode fails its missing-face check before it needs the human faces.
        human = human_faces(self.stages, xy) if np.isfinite(xy).all(axis=(1, 2)).any() else None
        truths = [t for t in (ground_truth(self.stages, xy, times, s, human) for s in specs if s.kind == "expression")
                  if t is not None]
        track = {"metric": np.asarray(feeder.metric, np.float32), "det": np.all(np.isfinite(xy), axis=(1, 2)),
                 "rot": np.asarray(feeder.rotation, np.float64), "scale": np.asarray(feeder.scale, np.float64),
                 "ts": times}
        result = VideoResult(str(video), fps, len(times), origin, specs, truths, runs, events, times, track)
        self._measure(result)
        return result

    def _measure(self, r: VideoResult) -> None:
        stamps = r.times
        for mode, run in r.runs.items():
            curves = [robot_curve(run, t) for t in r.truths]
            r.robot_curves[mode] = curves
            r.apex[mode] = [_offset(run.robot_times, c, t, APEX_FRACTION, t.human_apex) for c, t in zip(curves, r.truths)]
            r.half[mode] = [_offset(run.robot_times, c, t, HALF_FRACTION, t.human_half) for c, t in zip(curves, r.truths)]
            r.jitter_sq[mode] = second_difference_sq(run, stamps)
        fire_times = np.array([e.stamp for e in r.events], np.float64)
        for t in r.truths:
            apex = t.human_apex if t.human_apex is not None else float(r.times[t.apex_frame])
            half = t.human_half if t.human_half is not None else apex
            r.fired.append(bool(np.any((fire_times >= t.spec.start) & (fire_times <= apex))))
            r.fired_early.append(bool(np.any((fire_times >= t.spec.start) & (fire_times <= half))))
            for event, ft in zip(r.events, fire_times):
                if t.spec.start <= ft <= t.spec.end:
                    prediction = self.stages.predictor.predict_event(event)
                    now = event.window[-1]
                    r.model_errors.append(float(np.abs(prediction.target - t.apex_face).mean()))
                    r.blended_errors.append(float(np.abs(prediction.blended(now) - t.apex_face).mean()))
                    r.mimicry_errors.append(float(np.abs(now - t.apex_face).mean()))
                    r.confidences.append(prediction.confidence)
        spans = [s for s in r.specs if s.kind == "expression"]
        inside = np.zeros(len(fire_times), bool)
        for s in spans:
            inside |= (fire_times >= s.start) & (fire_times <= s.end)
        r.false_firings = int((~inside).sum())
        t0, t1 = float(r.times[0]), float(r.times[-1])
        duration = t1 - t0 + 1.0 / r.fps
        covered = _union_length([(max(s.start, t0), min(s.end, t1)) for s in spans if s.end > t0 and s.start < t1])
        r.outside_s = max(0.0, duration - covered)


def _offset(times: np.ndarray, curve: np.ndarray, truth: Truth, fraction: float, human: float | None) -> float | None:
    robot = crossing_time(times, curve, fraction, truth.spec.start, truth.spec.end)
    return None if robot is None or human is None else robot - human


def second_difference_sq(run: ModeRun, stamps: np.ndarray) -> np.ndarray:
    """Squared second differences of the driver's goals sampled at the frame times, (F - 2) * 11."""
    if len(run.robot_times) < 3 or len(stamps) < 3:
        return np.zeros(0)
    idx = np.clip(np.searchsorted(run.robot_times, stamps + 1e-9, side="right") - 1, 0, len(run.robot_times) - 1)
    goals = np.asarray(run.robot_goals, np.float64)[idx]
    d2 = goals[2:] - 2 * goals[1:-1] + goals[:-2]
    return (d2 ** 2).ravel()


def _union_length(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, -np.inf
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


class _Feeder:
    """One pipeline and one simulated robot per mode, fed frame by frame; keeps the faces seen."""

    def __init__(self, stages: Stages, modes: Sequence[Mode], sim: SimConfig, extractor: Any) -> None:
        self.modes = tuple(modes)
        self.pipelines = {m: stages.pipeline(m, extractor=extractor if i == 0 else None)
                          for i, m in enumerate(self.modes)}
        self.robots = {m: SimRobot(stages.twin, config=sim) for m in self.modes}
        self.faces_xy: list[np.ndarray] = []
        self.stamps: list[float] = []
        self.metric: list[np.ndarray] = []
        self.rotation: list[np.ndarray] = []
        self.scale: list[float] = []
        self._started: list[SimRobot] = []
        self.runners = {m: ModeRunner(self.pipelines[m], self.robots[m]) for m in self.modes}

    def __enter__(self) -> "_Feeder":
        try:
            for robot in self.robots.values():
                robot.start()
                self._started.append(robot)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def count(self) -> int:
        return len(self.stamps)

    def frame(self, image: np.ndarray, stamp: float, camera: str) -> None:
        """A camera frame: the first mode's pipeline extracts the face, the others reuse it."""
        first = self.pipelines[self.modes[0]].process_frame(image, stamp, camera)
        self._feed(first, stamp)

    def face(self, face: Face) -> None:
        """A recorded face (no extractor)."""
        self._feed(self.pipelines[self.modes[0]].process_face(face, face.stamp), face.stamp)

    def _feed(self, first: Any, stamp: float) -> None:
        results = {self.modes[0]: first}
        for m in self.modes[1:]:
            results[m] = self.pipelines[m].process_face(first.face, stamp)
        for m in self.modes:
            self.runners[m].feed(results[m])
        face = first.face
        self.faces_xy.append(face.metric[:, :2].astype(np.float32) if face.detected
                             else np.full((N_LANDMARKS, 2), np.nan, np.float32))
        self.metric.append(face.metric if face.detected else np.full((N_LANDMARKS, 3), np.nan, np.float32))
        self.rotation.append(face.head_rotation if (face.detected and face.head_rotation is not None)
                             else np.full((3, 3), np.nan))
        self.scale.append(face.head_scale_px if face.detected else np.nan)
        self.stamps.append(float(stamp))

    def finish(self, video: str | Path) -> tuple[dict[str, ModeRun], list[Any]]:
        if not self.stamps:
            raise InputError(f"{video}: no frames")
        runs = {m.value: self.runners[m].finish(self.stamps[-1]) for m in self.modes}
        return runs, list(self.pipelines[Mode.COEXPRESSION].events)

    def stop(self) -> None:
        while self._started:
            self._started.pop().stop()


TRACK_KEYS = ("metric", "det", "rot", "scale", "ts", "spans")


def load_track(path: str | Path) -> dict[str, np.ndarray]:
    """A landmark track written by ``emo eval video --tracks`` (InputError if it is not one)."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise InputError(f"{path}: not a landmark track (a bare array, not an .npz archive)")
        with loaded as z:
            track = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a landmark track ({exc})") from None
    missing = [k for k in TRACK_KEYS if k not in track]
    if missing:
        raise InputError(f"{path}: not a landmark track (missing {', '.join(missing)})")
    n = len(track["ts"])
    if n == 0 or track["metric"].shape != (n, N_LANDMARKS, 3) or track["rot"].shape != (n, 3, 3) or len(track["det"]) != n:
        raise InputError(f"{path}: landmark track arrays do not match ({n} stamps)")
    if not np.all(np.isfinite(track["ts"])) or np.any(np.diff(track["ts"]) <= 0):
        raise InputError(f"{path}: landmark track stamps must be finite and increasing")
    return track


def track_faces(track: dict[str, np.ndarray]) -> list[Face]:
    """The track's frames as :class:`Face` objects (metric points, head rotation, stamp)."""
    out = []
    for metric, det, rot, scale, stamp in zip(track["metric"], track["det"], track["rot"], track["scale"], track["ts"]):
        if not det or not np.all(np.isfinite(metric)):
            out.append(Face.missing(float(stamp)))
            continue
        out.append(Face(detected=True, confidence=1.0, metric=np.asarray(metric, np.float32), stamp=float(stamp),
                        head_rotation=np.asarray(rot, np.float64) if np.all(np.isfinite(rot)) else None,
                        head_scale_px=float(scale) if np.isfinite(scale) else 0.0))
    return out


def track_specs(track: dict[str, np.ndarray]) -> list[EpisodeSpec]:
    try:
        rows = json.loads(str(track["spans"]))
        return [EpisodeSpec(float(a), float(b), str(kind), str(label)) for a, b, kind, label in rows]
    except (ValueError, TypeError) as exc:
        raise InputError(f"landmark track: bad spans ({exc})") from None


# ----------------------------------------------------------------------------- reports
def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 3)


def summary(results: Sequence[VideoResult], modes: Sequence[str]) -> dict[str, Any]:
    """The figures of the module docstring over ``results`` (one video, or pooled)."""
    fired = [f for r in results for f in r.fired]
    early = [f for r in results for f in r.fired_early]
    false = sum(r.false_firings for r in results)
    outside_min = sum(r.outside_s for r in results) / 60.0
    model = [e for r in results for e in r.model_errors]
    blended = [e for r in results for e in r.blended_errors]
    mimic = [e for r in results for e in r.mimicry_errors]
    conf = [c for r in results for c in r.confidences]
    out: dict[str, Any] = {
        "synchrony_ms": {m: summarize([o for r in results for o in r.apex.get(m, [])]) for m in modes},
        "half_rise_ms": {m: summarize([o for r in results for o in r.half.get(m, [])]) for m in modes},
        "detector": {"fired_per_episode": _ratio(sum(fired), len(fired)),
                     "fired_before_half_rise": _ratio(sum(early), len(early)),
                     "false_per_minute": round(false / outside_min, 2) if outside_min > 0 else None,
                     "episodes": len(fired), "false_firings": false, "outside_minutes": round(outside_min, 3)},
        "predictor": {"model_mae": _mean(model), "mimicry_mae": _mean(mimic),
                      "ratio": (round(float(np.mean(model) / np.mean(mimic)), 3) if model and np.mean(mimic) > 0 else None),
                      "blended_mae": _mean(blended),
                      "blended_ratio": (round(float(np.mean(blended) / np.mean(mimic)), 3)
                                        if blended and np.mean(mimic) > 0 else None),
                      "confidence_mean": _mean(conf), "n": len(model)},
        "jitter": {m: _rms([r.jitter_sq.get(m, np.zeros(0)) for r in results]) for m in modes},
    }
    return out


def _mean(values: list[float]) -> float | None:
    return None if not values else round(float(np.mean(values)), 5)


def _rms(parts: list[np.ndarray]) -> float | None:
    arr = np.concatenate(parts) if parts else np.zeros(0)
    return None if arr.size == 0 else round(float(np.sqrt(arr.mean())), 5)


def video_report(result: VideoResult, modes: Sequence[str], timeline: Path | None) -> dict[str, Any]:
    rep: dict[str, Any] = {"video": result.video, "frames": result.frames, "fps": round(result.fps, 3),
                           "episodes_from": result.episodes_source,
                           "episodes": [{"start_s": s.start, "end_s": s.end, "kind": s.kind, "label": s.label}
                                        for s in result.specs],
                           "measured_episodes": len(result.truths)}
    rep.update(summary([result], modes))
    rep["fired_s"] = [round(float(e.stamp), 3) for e in result.events]
    rep["per_episode"] = [
        {"start_s": t.spec.start, "label": t.spec.label, "onset_s": round(t.onset, 3),
         "human_apex_s": None if t.human_apex is None else round(t.human_apex, 3),
         **{f"{m}_apex_ms": _ms(result.apex[m][i]) for m in modes},
         **{f"{m}_half_rise_ms": _ms(result.half[m][i]) for m in modes},
         "fired": result.fired[i], "fired_before_half_rise": result.fired_early[i]}
        for i, t in enumerate(result.truths)]
    rep["timeline"] = None if timeline is None else str(timeline)
    return rep


def track_arrays(result: VideoResult) -> dict[str, np.ndarray]:
    """The recording's landmark track with its episodes and measured truth, as arrays for an
    ``.npz`` (``emo eval video --tracks DIR``; ``emo sim calibration --real DIR`` reads them):
    ``metric`` (T, 113, 3), ``det``, ``rot`` (T, 3, 3), ``scale``, ``ts``, ``spans`` (JSON of
    ``[start, end, kind, label]``) and ``truth`` (E, 5): start, end, onset, human half rise, apex."""
    rows = []
    for t in result.truths:
        apex = t.human_apex if t.human_apex is not None else float(result.times[t.apex_frame])
        rows.append([t.spec.start, t.spec.end, t.onset, t.human_half if t.human_half is not None else apex, apex])
    spans = json.dumps([[s.start, s.end, s.kind, s.label] for s in result.specs])
    return {**result.track, "truth": np.asarray(rows, np.float64).reshape(-1, 5), "spans": np.asarray(spans)}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1e3, 1)


def timeline_png(result: VideoResult, title: str = "") -> bytes:
    """Per video: each expression episode's human and robot curves (normalized to the human's
    maximum) over the recording, episodes shaded by kind, firings marked; below, one command's
    goal trace per mode (the jitter)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .outputs import MODE_COLOURS

    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    times = result.times
    shade = {"expression": "#d8f0d8", "talking": "#e8e0f8", "head": "#f8e8d0", "occlusion": "#f0d8d8",
             "blink": "#e0e0e0", "rest": "#f4f4f4"}
    for i, s in enumerate(result.specs):
        ax.axvspan(s.start, s.end, color=shade.get(s.kind, "#eeeeee"), zorder=0)
        # Alternate two rows so neighbouring labels do not overprint each other.
        ax.text(s.start, 1.32 - 0.07 * (i % 2), (s.label or s.kind)[:40], fontsize=6, va="top", clip_on=True)
    for i, t in enumerate(result.truths):
        inside = (times >= t.spec.start) & (times <= t.spec.end)
        peak = max(float(np.nanmax(t.human_curve[inside])), 1e-9)
        ax.plot(times[inside], t.human_curve[inside] / peak, color="black", lw=2, label="human" if i == 0 else None)
        if t.human_apex is not None:
            ax.axvline(t.human_apex, color="black", ls="--", lw=0.8)
        for mode, curves in result.robot_curves.items():
            run = result.runs[mode]
            rin = (run.robot_times >= t.spec.start) & (run.robot_times <= t.spec.end)
            ax.plot(run.robot_times[rin], curves[i][rin] / peak, color=MODE_COLOURS.get(mode), lw=1.4,
                    label=f"robot, {mode}" if i == 0 else None)
    for j, e in enumerate(result.events):
        ax.axvline(float(e.stamp), color="#2ca02c", lw=1, alpha=0.8, label="detector firing" if j == 0 else None)
    ax.set_ylim(-0.05, 1.35)
    ax.set_ylabel("intensity (per episode)")
    ax.legend(loc="upper right", fontsize=7, ncol=4)
    ax.set_title(title or Path(result.video).name, fontsize=9)
    from ..schema import COMMAND_NAMES

    k = COMMAND_NAMES.index("mouth_corner_up")
    for mode, run in result.runs.items():
        if len(run.robot_times):
            ax2.plot(run.robot_times, run.robot_goals[:, k], color=MODE_COLOURS.get(mode), lw=1, label=f"{mode} goal")
    ax2.set_ylabel("mouth_corner_up goal")
    ax2.set_xlabel("time (s)")
    ax2.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
