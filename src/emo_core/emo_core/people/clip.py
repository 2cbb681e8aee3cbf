"""Clip maker: a real photograph warped along an expression trajectory, with its ground truth.

``make_clip`` frames and neutralizes the photo (``photo.fit_photo``), draws an expression time
course from the same timing model and AU prototypes as the sequence generator, and renders each
frame as ONE dense remap of the original photo (``warp.MeshWarp``: a sparse product gives the
displacement field, a few bilinear look-ups invert it, one remap moves the pixels). Where the
mouth opens wider than the photo's own mouth was open, the lips would otherwise stretch over the
gap, so the mouth interior is painted dark there; where the photo's mouth was open (the
astronaut's teeth), its real interior is reused.

Outputs, written atomically: ``clip.mp4`` (mp4v) and ``clip.json`` beside it with ``fps``,
``n_frames``, ``onset_frame``, ``apex_frame``, ``intensity`` (one value per frame, the
ground-truth expression intensity in [0, 1]), the AU tracks, the blink frames and provenance.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .au import AU_INDEX, AU_NAMES, LOWER_INNER, N_AUS, UPPER_INNER, AUModel
from .expressions import prototype
from .generator import model_ground_truth
from .photo import PhotoFace, fit_photo, load_photo
from .timing import Envelope, TimingConfig, blink_track, expression_tracks, sample_au_timing, sample_envelope
from .warp import WarpConfig

LOG = logging.getLogger(__name__)

#: Inner-lip ring (closed polygon) of the mouth opening.
MOUTH_RING = list(UPPER_INNER) + list(LOWER_INNER[-2:0:-1])
CAVITY_RGB = np.array([52, 22, 26], dtype=np.float32)
CLIP_JSON_VERSION = 1


@dataclass(frozen=True)
class ClipConfig:
    size: int = 512            # square frame side (px); the face spans ~40 % of it
    fps: float = 30.0
    seconds: float = 4.0
    peak: float = 1.0          # apex intensity of the expression (fraction of the prototype)
    blink_rate_hz: float = 0.2
    warp: WarpConfig = field(default_factory=WarpConfig)
    # A clip's apex must be a clear peak (its ground truth is checked against what MediaPipe sees),
    # so the face starts relaxing right after the apex: a short hold losing 25-35 % of intensity.
    timing: TimingConfig = field(default_factory=lambda: TimingConfig(
        hold_median_s=0.25, hold_range_s=(0.15, 0.4), hold_relax=(0.25, 0.35)))

    def __post_init__(self) -> None:
        if not 1.0 <= self.seconds <= 60.0:
            raise InputError(f"seconds must be in [1, 60], got {self.seconds}")
        if not 5.0 <= self.fps <= 120.0:
            raise InputError(f"fps must be in [5, 120], got {self.fps}")
        if not 0.0 <= self.blink_rate_hz <= 2.0:
            raise InputError(f"blink rate must be in [0, 2] Hz, got {self.blink_rate_hz}")
        if not 0.0 < self.peak <= 1.5:
            raise InputError(f"peak intensity must be in (0, 1.5], got {self.peak}")
        if not 64 <= self.size <= 2048:
            raise InputError(f"size must be in [64, 2048] px, got {self.size}")


@dataclass
class ClipTimeline:
    """AU intensities per frame and the ground truth of one clip."""

    expression: str
    fps: float
    aus: np.ndarray           # (T, N_AUS) expression + blinks
    expression_aus: np.ndarray  # (T, N_AUS) expression only
    onset_frame: int
    apex_frame: int
    intensity: np.ndarray     # (T,) in [0, 1]
    blink_frames: list[int]

    @property
    def n_frames(self) -> int:
        return len(self.aus)


def clip_timeline(model: AUModel, expression: str, config: ClipConfig, rng: np.random.Generator) -> ClipTimeline:
    """One expression episode fitted into ``config.seconds``: rest, onset, apex, hold, offset, rest."""
    proto = prototype(expression)
    n = int(round(config.seconds * config.fps))
    t = np.arange(n) / config.fps
    rest = float(np.clip(0.2 * config.seconds, 0.4, 1.0))
    env = sample_envelope(rng, config.timing, rest)
    env = _fit_into(env, room=config.seconds - rest - 0.25)
    timing = sample_au_timing(rng, config.timing, proto)
    expr = expression_tracks(proto, env, timing, t, config.peak)
    apex, intensity = model_ground_truth(model, expr, config.peak)
    onset = int(round(env.t_onset * config.fps))
    # Blinks only while the face is at rest: a blink moves the landmarks as much as a smile, and
    # the clip's apex must stay the clear maximum of the distance to rest.
    quiet = [(env.t_onset - env.cue_s - 0.3, env.t_end + 0.2)]
    blinks = blink_track(rng, t, config.blink_rate_hz, quiet=quiet)
    aus = expr.copy()
    aus[:, AU_INDEX["AU45"]] = np.maximum(aus[:, AU_INDEX["AU45"]], blinks)
    blink_frames = [int(i) for i in np.flatnonzero((blinks[1:-1] >= blinks[:-2]) & (blinks[1:-1] > blinks[2:])
                                                    & (blinks[1:-1] > 0.3)) + 1]
    return ClipTimeline(expression, config.fps, aus, expr, onset, apex, intensity, blink_frames)


def _fit_into(env: Envelope, room: float) -> Envelope:
    """Scale the rise, hold and offset of an episode so it ends within ``room`` seconds of its
    onset, and keep its subtle cue out of the first 0.25 s (the resting-face frames)."""
    length = env.duration + env.hold_s + env.offset_s
    k = min(1.0, room / length)
    return replace(env, duration=env.duration * k, hold_s=env.hold_s * k, offset_s=env.offset_s * k,
                   cue_s=min(env.cue_s, env.t_onset - 0.25))


class ClipMaker:
    """Renders expression frames of one neutralized photograph."""

    def __init__(self, photo: np.ndarray | None = None, config: ClipConfig | None = None,
                 face: PhotoFace | None = None) -> None:
        self.config = config or ClipConfig()
        self.face = face or fit_photo(load_photo(None) if photo is None else photo, self.config.size,
                                      warp_config=self.config.warp)
        self.model = AUModel(self.face.neutral, self.face.mirror)
        self._to_neutral = self.face.neutral - self.face.metric
        src = self.face.mesh_px[:, :2]
        mask: np.ndarray = np.zeros(self.face.image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(src[MOUTH_RING] * 4).astype(np.int32)], (255,), cv2.LINE_AA, shift=2)
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))  # generous: never paint over real teeth
        # The photo's own mouth opening (its teeth), carried through the warp as a 4th channel.
        self._rgba = np.dstack([self.face.image, mask])

    def timeline(self, expression: str, seed: int) -> ClipTimeline:
        return clip_timeline(self.model, expression, self.config, np.random.default_rng(seed))

    def frame(self, aus: np.ndarray) -> np.ndarray:
        """One RGB frame for AU intensities (N_AUS,): one dense remap of the original photo."""
        disp_metric = self._to_neutral + self.model.displacement(np.asarray(aus, dtype=np.float64))
        disp_px = self.face.metric_to_pixels(disp_metric)
        mapping = self.face.warp.backward_map(disp_px)
        warped = cv2.remap(self._rgba, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
        return self._paint_mouth(warped, self.face.mesh_px[:, :2] + disp_px)

    def _paint_mouth(self, rgba: np.ndarray, points_px: np.ndarray) -> np.ndarray:
        """Dark mouth interior where the mouth opens over what was lip or skin in the photo."""
        rgb = rgba[..., :3]  # a view; copied only where the mouth is painted
        ring = np.round(points_px[MOUTH_RING] * 4).astype(np.int32)
        x0, y0 = ring.min(axis=0) // 4 - 3
        x1, y1 = ring.max(axis=0) // 4 + 4
        if x1 - x0 < 2 or y1 - y0 < 2:
            return np.ascontiguousarray(rgb)
        x0, y0 = max(0, x0), max(0, y0)
        opening: np.ndarray = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(opening, [ring - np.array([x0, y0]) * 4], (255,), lineType=cv2.LINE_AA, shift=2)
        opening = cv2.erode(opening, np.ones((3, 3), np.uint8))  # keep the lip edge itself
        opening = opening[: rgb.shape[0] - y0, : rgb.shape[1] - x0]
        src_mouth = rgba[y0:y0 + opening.shape[0], x0:x0 + opening.shape[1], 3].astype(np.float32) / 255
        alpha = (opening.astype(np.float32) / 255) * (1.0 - src_mouth)
        if alpha.max() <= 0:
            return np.ascontiguousarray(rgb)
        out = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
        patch = out[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]].astype(np.float32)
        patch = patch * (1 - alpha[..., None]) + CAVITY_RGB * alpha[..., None]
        out[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]] = np.round(patch).astype(np.uint8)
        return out

    def frames(self, timeline: ClipTimeline) -> Iterator[np.ndarray]:
        for aus in timeline.aus:
            yield self.frame(aus)


def write_video(frames: Iterator[np.ndarray], path: Path, fps: float, size: tuple[int, int]) -> int:
    """Write RGB frames to an mp4 (mp4v) atomically; returns the number of frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter.fourcc(*"mp4v"), float(fps), size)
    try:
        if not writer.isOpened():
            raise InputError(f"cannot open a video writer for {path}")
        n = 0
        for rgb in frames:
            writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
            n += 1
        writer.release()
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a clip is an ordinary, shareable file
        os.replace(tmp, path)
        return n
    finally:
        writer.release()
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(data: dict, path: Path) -> None:
    """Write JSON atomically (temp file in the same directory + os.replace)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def truth_path(video: str | Path) -> Path:
    """``clip.mp4`` -> ``clip.json``."""
    return Path(video).with_suffix(".json")


def timeline_json(timeline: ClipTimeline, maker: ClipMaker, seed: int, photo: str | None) -> dict:
    return {
        "format": "emo.clip_truth",
        "version": CLIP_JSON_VERSION,
        "expression": timeline.expression,
        "fps": timeline.fps,
        "n_frames": timeline.n_frames,
        "onset_frame": timeline.onset_frame,
        "apex_frame": timeline.apex_frame,
        "intensity": [round(float(v), 5) for v in timeline.intensity],
        "blink_frames": timeline.blink_frames,
        "aus": {name: [round(float(v), 4) for v in timeline.aus[:, k]]
                for k, name in enumerate(AU_NAMES) if np.any(timeline.aus[:, k] > 0)},
        "size": maker.config.size,
        "seed": seed,
        "photo": photo or "skimage.data.astronaut",
        "photo_own_expression": {AU_NAMES[k]: round(float(v), 3)
                                 for k, v in enumerate(maker.face.own_aus) if v > 0},
    }


@dataclass(frozen=True)
class ClipResult:
    video: Path
    truth: Path
    n_frames: int
    onset_frame: int
    apex_frame: int


def make_clip(expression: str, out: str | Path, photo: str | Path | None = None, seconds: float = 4.0,
              seed: int = 0, fps: float = 30.0, size: int = 512, blink_rate_hz: float = 0.2,
              progress: bool = False, maker: ClipMaker | None = None) -> ClipResult:
    """Render an expression clip of a photo to ``out`` (mp4) and its ground truth beside it.

    ``maker`` reuses an already fitted photo (its size and photo win over ``size``/``photo``).
    """
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"clip output must be an .mp4 file, got {out}")
    prototype(expression)  # validate before the slow part
    if maker is None:
        maker = ClipMaker(load_photo(photo), ClipConfig(size=size))
    config = replace(maker.config, fps=fps, seconds=seconds, blink_rate_hz=blink_rate_hz)
    timeline = clip_timeline(maker.model, expression, config, np.random.default_rng(seed))
    frames = maker.frames(timeline)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, total=timeline.n_frames, desc=f"clip {out.name}", unit="frame")
    n = write_video(frames, out, fps, (config.size, config.size))
    truth = truth_path(out)
    write_json(timeline_json(timeline, maker, seed, None if photo is None else str(photo)), truth)
    LOG.info("wrote %s (%d frames, onset %d, apex %d) and %s", out, n, timeline.onset_frame,
             timeline.apex_frame, truth)
    return ClipResult(out, truth, n, timeline.onset_frame, timeline.apex_frame)


def load_truth(path: str | Path) -> dict:
    """Read and check a clip's ground-truth JSON (``clip.json``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"clip ground truth not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read clip ground truth {path}: {exc}") from None
    for key in ("fps", "onset_frame", "apex_frame", "intensity"):
        if key not in data:
            raise InputError(f"clip ground truth {path} lacks {key!r}")
    if len(data["intensity"]) != data.get("n_frames", len(data["intensity"])):
        raise InputError(f"clip ground truth {path}: intensity has {len(data['intensity'])} values "
                         f"for {data['n_frames']} frames")
    return data


__all__ = ["ClipConfig", "ClipMaker", "ClipResult", "ClipTimeline", "clip_timeline",
           "load_truth", "make_clip", "truth_path", "N_AUS"]
