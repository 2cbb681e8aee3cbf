"""Synthetic people: human expression landmark sequences in the extractor's metric space.

Each video is one person (an :class:`~.identity.Identity`) doing one thing, at 30 fps:

* an **expression** (smile, broad_smile, surprise, sadness, anger, disgust, fear): rest, a subtle
  cue, onset with per-AU asynchrony, apex, a relaxing hold, offset, rest (``timing``);
* or a **distractor** that moves the face without being an expression: ``neutral`` (fidgeting
  only), ``blink`` (1-3 blinks), ``talking`` (3-5 Hz jaw/lip syllables, brow flashes),
  ``head_turn`` (15-40 deg turns).

On top of every video: spontaneous blinks (also during expressions), tiny fidgeting, slow head
sway, the pose-normalization residue of head motion, and MediaPipe-like measurement noise. The
ground truth (onset/apex frames, intensity per frame) comes from the noise-free expression alone;
the apex is the frame farthest from rest, the paper's target face.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..datasets.human import HumanSequence, HumanSequenceDataset
from ..errors import InputError
from ..schema import MP_INDICES, REGION_OF
from .au import AU_INDEX, AU_NAMES, N_AUS, AUModel
from .expressions import ALL_EXPRESSIONS, DISTRACTORS, EXPRESSIONS, LABELS, prototype
from .identity import Identity, ShapeConfig, StyleConfig, make_identity
from .template import Template, load_template
from .timing import (TimingConfig, blink_track, expression_tracks, fidget_tracks, head_pose_track,
                     sample_au_timing, sample_envelope, talking_tracks)

LOG = logging.getLogger(__name__)
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class NoiseConfig:
    """Landmark measurement noise, measured on MediaPipe (see docs/people.md).

    MediaPipe on a still photo with camera noise (sigma 3 grey levels) and 0.5 px shake gives
    frame-to-frame differences of ~0.007-0.013 metric units per coordinate: a per-point part
    (~0.003-0.004) plus a coherent part from the pose normalization (translation ~0.003/0.006,
    rotation ~0.0015 rad, scale ~0.3-0.4 %). Lips are tracked best, jaw contour and brows worst.
    """

    point_sigma: float = 0.0035
    region_factor: dict[str, float] = field(default_factory=lambda: {
        "jaw": 1.3, "lips": 0.7, "left_eye": 1.0, "right_eye": 1.0, "left_brow": 1.2, "right_brow": 1.2})
    z_factor: float = 2.0
    translation_sigma: tuple[float, float] = (0.003, 0.006)
    rotation_sigma: float = 0.0015
    scale_sigma: float = 0.0035


@dataclass(frozen=True)
class PoseResidualConfig:
    """What head motion leaves in the pose-normalized landmarks (a modelling assumption).

    The metric frame removes rotation, translation and scale exactly for a rigid face; what is
    left on real footage is MediaPipe's view-dependent error: depth (z) leaking into x/y, the jaw
    contour sliding on the side turning away (it becomes a silhouette), a small in-plane
    rotation error, and more noise at large angles.
    """

    depth_leak: float = 0.05        # x += depth_leak * sin(yaw) * (z - mean z), likewise y with pitch
    contour_slide: float = 0.12     # far-side jaw points move this * sin|yaw| toward the midline
    roll_error: float = 0.02        # residual in-plane rotation per radian of yaw
    noise_gain: float = 1.5         # noise x (1 + noise_gain * |sin yaw| + |sin pitch|)


@dataclass(frozen=True)
class WanderConfig:
    """Tracker wander: a slow, spatially smooth deformation of the whole face (off by default).

    Real MediaPipe landmarks on a still face drift around the calibrated rest by several times
    the frame-to-frame jitter (docs/people.md, "Calibration to real people"). Per video the RMS
    is drawn uniformly in ``rms``; ``bumps`` Gaussian displacement fields (radius ``radius`` units
    around random landmarks) are each driven by low-pass noise of time constant ``tau_s``.
    """

    rms: tuple[float, float] = (0.0, 0.0)
    tau_s: tuple[float, float] = (0.5, 2.0)
    bumps: int = 6
    radius: float = 0.6

    @property
    def enabled(self) -> bool:
        return self.rms[1] > 0


@dataclass(frozen=True)
class GeneratorConfig:
    fps: float = 30.0
    distractor_fraction: float = 0.2
    expressions: tuple[str, ...] = EXPRESSIONS
    distractors: tuple[str, ...] = DISTRACTORS
    peak_range: tuple[float, float] = (0.5, 1.0)    # apex intensity (fraction of the prototype)
    distractor_seconds: tuple[float, float] = (3.0, 5.0)
    fidget_amplitude: float = 0.03
    sway_deg: tuple[float, float] = (1.0, 4.0)
    timing: TimingConfig = field(default_factory=TimingConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    pose: PoseResidualConfig = field(default_factory=PoseResidualConfig)
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    style: StyleConfig = field(default_factory=StyleConfig)
    wander: WanderConfig = field(default_factory=WanderConfig)
    noise_scale: float = 1.0    # multiplies all measurement noise (calibrated: real jitter is lower)
    profile: str = "original"

    def __post_init__(self) -> None:
        if not 0.0 <= self.distractor_fraction <= 1.0:
            raise InputError(f"distractor fraction must be in [0, 1], got {self.distractor_fraction}")
        if not 5.0 <= self.fps <= 240.0:
            raise InputError(f"fps must be in [5, 240], got {self.fps}")
        unknown = [x for x in self.expressions + self.distractors if x not in LABELS]
        if unknown:
            raise InputError(f"unknown label(s) {', '.join(unknown)}; known: {', '.join(LABELS)}")
        if not self.expressions and self.distractor_fraction < 1.0:
            raise InputError("no expressions to generate")


def ground_truth(basis113: np.ndarray, expression_aus: np.ndarray, peak: float) -> tuple[int, np.ndarray]:
    """Apex frame and intensity (T,) of an expression-only AU track (T, N_AUS).

    The apex is the frame where the 113 landmarks (x, y) are farthest from rest -- the paper's
    target face -- without noise, blinks or head motion; the intensity is that distance scaled to
    ``peak`` at the apex.
    """
    disp = np.tensordot(expression_aus, basis113[..., :2], axes=([-1], [0]))
    dist = np.linalg.norm(disp.reshape(len(disp), -1), axis=1)
    apex = int(np.argmax(dist))
    intensity = float(np.clip(peak, 0.0, 1.0)) * dist / max(float(dist[apex]), 1e-12)
    return apex, np.clip(intensity, 0.0, 1.0).astype(np.float32)


def model_ground_truth(model: AUModel, expression_aus: np.ndarray, peak: float) -> tuple[int, np.ndarray]:
    """:func:`ground_truth` with a plain AU model (no personal gains), as the clip maker uses."""
    return ground_truth(model.basis113, expression_aus, peak)


@dataclass
class Episode:
    """The AU/pose time courses of one video before they become landmarks."""

    label: str
    aus: np.ndarray          # (T, N_AUS) everything (expression + blinks + talking + fidget)
    expression: np.ndarray   # (T, N_AUS) the expression alone
    pose_deg: np.ndarray     # (T, 3) yaw, pitch, roll
    onset_frame: int
    peak: float


class PeopleGenerator:
    """Makes identities and their videos; every draw comes from the generator it is given."""

    def __init__(self, config: GeneratorConfig | None = None, template: Template | None = None) -> None:
        self.config = config or GeneratorConfig()
        self.template = template or load_template()
        region = np.array([self.config.noise.region_factor[r] for r in REGION_OF])
        self._point_sigma = self.config.noise.point_sigma * region
        jaw = np.array([r == "jaw" for r in REGION_OF])
        self._jaw = jaw

    # ---------------------------------------------------------------- identities
    def identity(self, subject: str, rng: np.random.Generator) -> Identity:
        return make_identity(subject, rng, self.template, self.config.shape, self.config.style)

    # ---------------------------------------------------------------- episodes
    def episode(self, identity: Identity, label: str, rng: np.random.Generator) -> Episode:
        cfg = self.config
        if label in ALL_EXPRESSIONS:
            return self._expression_episode(identity, label, rng)
        if label not in DISTRACTORS:
            raise InputError(f"unknown label {label!r}; known: {', '.join(LABELS)}")
        n = int(round(rng.uniform(*cfg.distractor_seconds) * cfg.fps))
        t = np.arange(n) / cfg.fps
        aus = fidget_tracks(rng, t, cfg.fidget_amplitude)
        turns = 0
        blinks = np.zeros(n)
        if label == "blink":
            blinks = blink_track(rng, t, identity.blink_rate_hz, forced=int(rng.integers(1, 4)))
        elif label == "talking":
            aus = np.maximum(aus, talking_tracks(rng, t, 0.3, t[-1] - 0.3))
            blinks = blink_track(rng, t, 1.3 * identity.blink_rate_hz)
        elif label == "head_turn":
            turns = int(rng.integers(1, 3))
            blinks = blink_track(rng, t, identity.blink_rate_hz)
        aus[:, AU_INDEX["AU45"]] = np.maximum(aus[:, AU_INDEX["AU45"]], blinks)
        sway = float(rng.uniform(*cfg.sway_deg)) * (1.5 if label == "talking" else 1.0)
        pose = head_pose_track(rng, t, turns=turns, sway_deg=sway)
        return Episode(label, aus, np.zeros_like(aus), pose, -1, 0.0)

    def _expression_episode(self, identity: Identity, label: str, rng: np.random.Generator) -> Episode:
        cfg = self.config
        proto = prototype(label)
        env = sample_envelope(rng, cfg.timing, float(rng.uniform(*cfg.timing.rest_before_s)))
        n = int(np.ceil((env.t_end + rng.uniform(*cfg.timing.rest_after_s)) * cfg.fps))
        t = np.arange(n) / cfg.fps
        timing = sample_au_timing(rng, cfg.timing, proto)
        peak = float(rng.uniform(*cfg.peak_range))
        expression = expression_tracks(proto, env, timing, t, peak)
        aus = expression + fidget_tracks(rng, t, cfg.fidget_amplitude)
        blinks = blink_track(rng, t, identity.blink_rate_hz)
        aus[:, AU_INDEX["AU45"]] = np.maximum(aus[:, AU_INDEX["AU45"]], blinks)
        pose = head_pose_track(rng, t, sway_deg=float(rng.uniform(*cfg.sway_deg)))
        onset = int(round(env.t_onset * cfg.fps))
        return Episode(label, aus, expression, pose, onset, peak)

    # ---------------------------------------------------------------- landmarks
    def render(self, identity: Identity, episode: Episode, rng: np.random.Generator) -> np.ndarray:
        """(T, 113, 3) float32 metric landmarks: AUs -> mesh, pose residue, noise."""
        clean = identity.landmarks(episode.aus)
        posed = self._pose_residual(clean, episode.pose_deg)
        out = posed + self.config.noise_scale * self._noise(rng, episode.pose_deg, identity.noise_level)
        if self.config.wander.enabled:
            out = out + wander_field(identity.neutral113, len(out), self.config.wander, self.config.fps, rng)
        return out.astype(np.float32)

    def _pose_residual(self, points: np.ndarray, pose_deg: np.ndarray) -> np.ndarray:
        p = self.config.pose
        yaw, pitch = np.radians(pose_deg[:, 0]), np.radians(pose_deg[:, 1])
        out = points.copy()
        dz = points[..., 2] - points[..., 2].mean(axis=1, keepdims=True)
        out[..., 0] += p.depth_leak * np.sin(yaw)[:, None] * dz
        out[..., 1] += p.depth_leak * np.sin(pitch)[:, None] * dz
        # Far side of the jaw contour (x has the sign of the yaw) slides toward the midline.
        x = points[..., 0]
        far = self._jaw[None, :] & (np.sign(x) == np.sign(yaw)[:, None])
        lateral = np.abs(x) / max(float(np.abs(x).max()), 1e-9)
        out[..., 0] -= np.where(far, np.sign(x) * p.contour_slide * np.abs(np.sin(yaw))[:, None] * lateral, 0.0)
        roll = p.roll_error * yaw
        c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
        x0, y0 = out[..., 0].copy(), out[..., 1].copy()
        out[..., 0], out[..., 1] = c * x0 - s * y0, s * x0 + c * y0
        return out

    def _noise(self, rng: np.random.Generator, pose_deg: np.ndarray, level: float) -> np.ndarray:
        cfg = self.config.noise
        n = len(pose_deg)
        k = level * np.exp(0.2 * rng.standard_normal())
        gain = k * (1 + self.config.pose.noise_gain * np.abs(np.sin(np.radians(pose_deg[:, 0])))
                    + np.abs(np.sin(np.radians(pose_deg[:, 1]))))
        sigma = self._point_sigma[None, :, None] * np.array([1.0, 1.0, cfg.z_factor])
        noise = rng.standard_normal((n, len(self._point_sigma), 3)) * sigma
        # Coherent jitter of the whole face from the pose normalization (anchors are noisy too).
        base = self.template.landmarks
        angle = rng.normal(0, cfg.rotation_sigma, n)[:, None]
        scale = rng.normal(0, cfg.scale_sigma, n)[:, None]
        noise[..., 0] += -angle * base[None, :, 1] + scale * base[None, :, 0] + rng.normal(0, cfg.translation_sigma[0], (n, 1))
        noise[..., 1] += angle * base[None, :, 0] + scale * base[None, :, 1] + rng.normal(0, cfg.translation_sigma[1], (n, 1))
        return noise * gain[:, None, None]

    # ---------------------------------------------------------------- sequences
    def sequence(self, identity: Identity, label: str, rng: np.random.Generator, video_id: str = "") -> HumanSequence:
        episode = self.episode(identity, label, rng)
        landmarks = self.render(identity, episode, rng)
        n = len(landmarks)
        if label in ALL_EXPRESSIONS:
            apex, intensity = ground_truth(identity.basis113, episode.expression, episode.peak)
            onset = min(episode.onset_frame, apex)
        else:
            apex, onset, intensity = -1, -1, np.zeros(n, np.float32)
        return HumanSequence(
            landmarks=landmarks, fps=self.config.fps, subject=identity.subject, label=label,
            onset_frame=onset, apex_frame=apex, intensity=intensity, video_id=video_id,
            extras={"aus": episode.aus.astype(np.float32), "head_pose_deg": episode.pose_deg.astype(np.float32)})

    def labels_for_subject(self, videos: int, rng: np.random.Generator) -> list[str]:
        """A balanced, shuffled list of labels for one subject's videos."""
        cfg = self.config
        n_distract = int(rng.binomial(videos, cfg.distractor_fraction)) if cfg.distractors else 0
        pool_e = list(cfg.expressions) * (videos // max(1, len(cfg.expressions)) + 1)
        pool_d = list(cfg.distractors) * (videos // max(1, len(cfg.distractors)) + 1)
        rng.shuffle(pool_e)
        rng.shuffle(pool_d)
        labels = pool_d[:n_distract] + pool_e[: videos - n_distract]
        rng.shuffle(labels)
        return labels

    def dataset(self, subjects: int, videos: int, seed: int = 0, progress: bool = False) -> HumanSequenceDataset:
        """``subjects`` identities x ``videos`` videos each, reproducible from ``seed``.

        Subject i and its video j draw from ``SeedSequence([seed, i, j])`` streams, so a video does
        not change when more subjects or videos are asked for.
        """
        if subjects < 1 or videos < 1:
            raise InputError(f"need at least one subject and one video, got {subjects} x {videos}")
        items = []
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=subjects * videos, desc="synthetic people", unit="video")
        for i in range(subjects):
            subject_rng = np.random.default_rng(np.random.SeedSequence([seed, i, 0]))
            identity = self.identity(f"p{i:03d}", subject_rng)
            labels = self.labels_for_subject(videos, subject_rng)
            for j, label in enumerate(labels):
                rng = np.random.default_rng(np.random.SeedSequence([seed, i, j + 1]))
                items.append(self.sequence(identity, label, rng, video_id=f"p{i:03d}_v{j:03d}_{label}"))
                if bar is not None:
                    bar.update()
        if bar is not None:
            bar.close()
        meta = {"generator": "emo_core.people", "generator_version": GENERATOR_VERSION, "seed": seed,
                "subjects": subjects, "videos_per_subject": videos, "fps": self.config.fps,
                "distractor_fraction": self.config.distractor_fraction, "au_names": list(AU_NAMES),
                "profile": self.config.profile,
                "template": self.template.source}
        return HumanSequenceDataset(items, meta)


def _lowpass(x: np.ndarray, alpha: float) -> np.ndarray:
    from scipy.signal import lfilter

    return lfilter([alpha], [1.0, alpha - 1.0], x)


def wander_field(neutral: np.ndarray, n: int, cfg: WanderConfig, fps: float,
                 rng: np.random.Generator) -> np.ndarray:
    """(n, 113, 3) slow, spatially smooth deformation (x, y; z stays 0) of RMS drawn from ``cfg.rms``."""
    out = np.zeros((n, len(neutral), 3))
    rms = float(rng.uniform(*cfg.rms))
    if rms <= 0 or n < 2:
        return out
    tau = float(rng.uniform(*cfg.tau_s)) * fps
    alpha = 1.0 / max(tau, 1.0)
    xy = neutral[:, :2]
    for _ in range(cfg.bumps):
        c = xy[rng.integers(len(xy))]
        w = np.exp(-np.sum((xy - c) ** 2, axis=1) / (2 * cfg.radius ** 2))
        direction = rng.normal(size=2)
        direction /= np.linalg.norm(direction) + 1e-9
        # Two cascaded one-pole low-passes (smooth, not a random walk), started at stationarity.
        drive = rng.normal(size=n + int(4 * tau))
        z = drive
        for _ in range(2):
            z = _lowpass(z, alpha)
        z = z[-n:]
        out[..., :2] += z[:, None, None] * w[None, :, None] * direction[None, None, :]
    cur = float(np.sqrt(np.mean(out[..., :2] ** 2))) + 1e-12
    return out * (rms / cur)


#: Calibrated to the real set (docs/people.md, "Calibration to real people"); "original" is the
#: generator the shipped models were trained with.
PROFILES = ("original", "calibrated")


def profile_config(name: str = "original", **overrides: Any) -> GeneratorConfig:
    """A :class:`GeneratorConfig` for a named profile (``original`` = the plain defaults)."""
    if name == "original":
        return GeneratorConfig(**overrides)
    if name != "calibrated":
        raise InputError(f"unknown generator profile {name!r}; known: {', '.join(PROFILES)}")
    base = GeneratorConfig(
        profile="calibrated",
        expressions=ALL_EXPRESSIONS,
        peak_range=(0.7, 1.4),
        shape=ShapeConfig(lower_face_mean=0.15, brow_height=0.12, brow_height_mean=0.02),
        style=StyleConfig(region_gain=(("lips", 1.0), ("jaw", 1.0), ("brows", 1.0), ("eyes", 0.55))),
        wander=WanderConfig(rms=(0.01, 0.035), tau_s=(0.3, 1.5)),
        noise_scale=0.6,
    )
    # replace() re-runs __post_init__, so the overridden config is validated as a whole.
    return replace(base, **overrides)


def generate(subjects: int, videos: int, seed: int = 0, distractor_fraction: float = 0.2,
             fps: float = 30.0, progress: bool = False) -> HumanSequenceDataset:
    """Convenience: a dataset of synthetic people with default settings."""
    config = GeneratorConfig(fps=fps, distractor_fraction=distractor_fraction)
    return PeopleGenerator(config).dataset(subjects, videos, seed, progress)


__all__ = ["Episode", "GeneratorConfig", "NoiseConfig", "PROFILES", "PeopleGenerator", "PoseResidualConfig",
           "WanderConfig", "profile_config", "wander_field",
           "generate", "ground_truth", "model_ground_truth", "MP_INDICES", "N_AUS"]
