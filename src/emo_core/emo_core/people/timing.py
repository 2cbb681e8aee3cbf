"""Time courses of synthetic faces: expression envelopes, per-AU asynchrony, blinks, talking, head pose.

Everything here maps frame times (seconds) to AU intensities or head angles; the generator turns
those into landmarks. All randomness comes from the caller's ``numpy.random.Generator``.

Expression envelope (one episode), as a fraction of the video's peak intensity:

    rest | subtle cue | onset (rise) | apex | hold (slow relaxation) | offset | rest
         ^t_cue       ^t_onset       ^t_onset + duration

* onset duration: a shifted, truncated lognormal, 0.2 s + LogNormal resampled above 4 s, whose
  parameters are solved so that its mean and sd are the Emo paper's expression time of
  0.841 +- 0.713 s;
* rise shape: minimum-jerk ``10u^3 - 15u^4 + 6u^5`` of a time-warped ``u^p`` (p per video), so the
  velocity peak moves earlier or later from one video to the next;
* subtle cue: a small (2-6 % of the peak) movement in the expression's own direction during the
  0.15-0.4 s before the main rise -- the "first subtle onset" a predictor can pick up;
* hold: the face relaxes by 3-15 % while holding, so the apex is a unique maximum;
* offset: back toward rest, sometimes not all the way.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .au import AU_INDEX, N_AUS
from .expressions import Prototype


@dataclass(frozen=True)
class TimingConfig:
    """Distributions of the timing model (seconds unless noted)."""

    onset_mean_s: float = 0.841     # Emo paper: human expression time 0.841 +- 0.713 s
    onset_sd_s: float = 0.713
    onset_min_s: float = 0.2        # shift of the lognormal: no expression rises in < 6 frames
    onset_max_s: float = 4.0
    # The observed onset->apex also contains the lag of the AUs that peak last (~50 ms on average
    # over the prototypes), so the rise itself is drawn that much shorter on average.
    lag_compensation_s: float = 0.05
    rest_before_s: tuple[float, float] = (0.5, 1.1)
    cue_s: tuple[float, float] = (0.15, 0.4)
    cue_amplitude: tuple[float, float] = (0.02, 0.06)
    shape_power: tuple[float, float] = (0.75, 1.3)
    hold_median_s: float = 0.5
    hold_range_s: tuple[float, float] = (0.1, 2.0)
    hold_relax: tuple[float, float] = (0.03, 0.15)
    offset_median_s: float = 0.9
    offset_range_s: tuple[float, float] = (0.3, 2.5)
    offset_residual: tuple[float, float] = (0.0, 0.1)
    rest_after_s: tuple[float, float] = (0.2, 0.9)
    lag_jitter_s: float = 0.025     # per-video jitter of each AU's lag
    speed_jitter: float = 0.1       # per-AU log-sd of its rise duration
    blink_rate_hz: tuple[float, float] = (0.1, 0.35)   # spontaneous blinks: ~6-20 per minute

    def lognormal_params(self) -> tuple[float, float]:
        """(mu, sigma) of the lognormal part such that the shifted, truncated distribution has
        the configured mean and sd (truncation at ``onset_max_s`` alone would cut the sd by ~20 %)."""
        return _matched_lognormal(self.onset_mean_s - self.lag_compensation_s, self.onset_sd_s,
                                  self.onset_min_s, self.onset_max_s)


@lru_cache(maxsize=8)
def _matched_lognormal(mean: float, sd: float, shift: float, upper: float) -> tuple[float, float]:
    from scipy import optimize, stats

    x = np.linspace(1e-6, upper - shift, 20001)

    def moments(p: np.ndarray) -> np.ndarray:
        dist = stats.lognorm(s=abs(p[1]), scale=np.exp(p[0]))
        pdf = dist.pdf(x) / dist.cdf(upper - shift)
        m = np.trapz(x * pdf, x)
        return np.array([m + shift - mean, np.sqrt(np.trapz((x - m) ** 2 * pdf, x)) - sd])

    m0 = mean - shift
    s0 = np.sqrt(np.log1p(sd ** 2 / m0 ** 2))
    mu, sigma = optimize.fsolve(moments, [np.log(m0) - s0 ** 2 / 2, s0])
    return float(mu), float(abs(sigma))


def sample_onset_duration(rng: np.random.Generator, cfg: TimingConfig) -> float:
    mu, sigma = cfg.lognormal_params()
    while True:
        d = cfg.onset_min_s + float(rng.lognormal(mu, sigma))
        if d <= cfg.onset_max_s:
            return d


def _lognormal_clipped(rng: np.random.Generator, median: float, sigma: float,
                       bounds: tuple[float, float]) -> float:
    return float(np.clip(median * np.exp(sigma * rng.standard_normal()), *bounds))


def _min_jerk(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u ** 3 * (10 - 15 * u + 6 * u ** 2)


@dataclass(frozen=True)
class Envelope:
    """Master time course of one expression episode (values in [0, 1])."""

    t_onset: float
    duration: float
    cue_s: float
    cue_amplitude: float
    shape_power: float
    hold_s: float
    hold_relax: float
    offset_s: float
    offset_residual: float

    @property
    def t_apex(self) -> float:
        return self.t_onset + self.duration

    @property
    def t_end(self) -> float:
        """When the offset is over."""
        return self.t_apex + self.hold_s + self.offset_s

    def __call__(self, t: np.ndarray, speed: float = 1.0) -> np.ndarray:
        """Envelope at times t; ``speed`` scales the rise duration (per-AU variation)."""
        t = np.asarray(t, dtype=np.float64)
        duration = self.duration * speed
        cue = self.cue_amplitude * _min_jerk((t - (self.t_onset - self.cue_s)) / self.cue_s)
        rise = _min_jerk(np.clip((t - self.t_onset) / duration, 0.0, 1.0) ** self.shape_power)
        value = cue + (1.0 - self.cue_amplitude) * rise
        t_apex = self.t_onset + duration
        held = 1.0 - self.hold_relax * np.clip((t - t_apex) / self.hold_s, 0.0, 1.0)
        value = np.where(t > t_apex, held, value)
        top = 1.0 - self.hold_relax
        fall = _min_jerk((t - t_apex - self.hold_s) / self.offset_s)
        after = top - (top - self.offset_residual) * fall
        return np.where(t > t_apex + self.hold_s, after, value)


def sample_envelope(rng: np.random.Generator, cfg: TimingConfig, t_onset: float,
                    duration: float | None = None) -> Envelope:
    return Envelope(
        t_onset=t_onset,
        duration=sample_onset_duration(rng, cfg) if duration is None else duration,
        cue_s=float(rng.uniform(*cfg.cue_s)),
        cue_amplitude=float(rng.uniform(*cfg.cue_amplitude)),
        shape_power=float(rng.uniform(*cfg.shape_power)),
        hold_s=_lognormal_clipped(rng, cfg.hold_median_s, 0.5, cfg.hold_range_s),
        hold_relax=float(rng.uniform(*cfg.hold_relax)),
        offset_s=_lognormal_clipped(rng, cfg.offset_median_s, 0.4, cfg.offset_range_s),
        offset_residual=float(rng.uniform(*cfg.offset_residual)),
    )


@dataclass(frozen=True)
class AUTiming:
    """Per-AU lag (s) and rise-speed factor of one expression episode."""

    lags: dict[str, float]
    speeds: dict[str, float]


def sample_au_timing(rng: np.random.Generator, cfg: TimingConfig, proto: Prototype) -> AUTiming:
    lags = {au: lag + cfg.lag_jitter_s * float(rng.standard_normal()) for au, (_, lag) in proto.aus.items()}
    first = min(lags.values())
    lags = {au: lag - first for au, lag in lags.items()}  # the leading AU starts at the onset
    speeds = {au: float(np.exp(cfg.speed_jitter * rng.standard_normal())) for au in proto.aus}
    return AUTiming(lags, speeds)


def expression_tracks(proto: Prototype, env: Envelope, timing: AUTiming, t: np.ndarray,
                      peak: float, gains: np.ndarray | None = None) -> np.ndarray:
    """AU intensities (T, N_AUS) of one expression episode."""
    out = np.zeros((len(t), N_AUS))
    for au, (weight, _) in proto.aus.items():
        k = AU_INDEX[au]
        gain = 1.0 if gains is None else float(gains[k])
        out[:, k] = weight * peak * gain * env(t - timing.lags[au], timing.speeds[au])
    return out


def blink_track(rng: np.random.Generator, t: np.ndarray, rate_hz: float,
                quiet: list[tuple[float, float]] | None = None, forced: int = 0) -> np.ndarray:
    """AU45 intensity (T,) of spontaneous blinks: a Poisson process at ``rate_hz``.

    A blink closes in 70-120 ms, may stay closed up to 50 ms and reopens in 120-250 ms; most close
    fully, some only partly. ``quiet`` intervals get no blink starts; ``forced`` blinks are placed
    at random outside them in addition (for videos labelled "blink").
    """
    t0, t1 = float(t[0]), float(t[-1])
    quiet = list(quiet or []) + [(t0 - 1.0, t0 + 0.25)]  # never in the frames used as resting face
    starts: list[float] = []
    s = t0 + float(rng.exponential(1.0 / rate_hz)) if rate_hz > 0 else np.inf
    while s < t1 - 0.3:
        starts.append(s)
        s += 0.4 + float(rng.exponential(1.0 / rate_hz))
    for _ in range(forced):
        starts.append(float(rng.uniform(t0 + 0.3, max(t0 + 0.35, t1 - 0.5))))
    track = np.zeros(len(t))
    for s in starts:
        if any(a <= s <= b for a, b in quiet):
            continue
        close, shut, reopen = rng.uniform(0.07, 0.12), rng.uniform(0.0, 0.05), rng.uniform(0.12, 0.25)
        amp = 1.0 if rng.random() < 0.8 else float(rng.uniform(0.4, 0.8))
        u_close = np.clip((t - s) / close, 0.0, 1.0)
        u_open = np.clip((t - s - close - shut) / reopen, 0.0, 1.0)
        shape = 0.5 - 0.5 * np.cos(np.pi * u_close) - (0.5 - 0.5 * np.cos(np.pi * u_open))
        track = np.maximum(track, amp * shape)
    return track


def talking_tracks(rng: np.random.Generator, t: np.ndarray, start: float, end: float) -> np.ndarray:
    """AU intensities (T, N_AUS) of speech: phrases of syllables at 3-5 Hz.

    Each syllable opens the jaw (AU26) and lips (AU25) by a random amount and shapes the lips as a
    rounded (AU18) or spread (AU20) vowel; phrases are separated by short pauses, and now and then
    the brows flash up (AU1+AU2), as they do in conversation.
    """
    out = np.zeros((len(t), N_AUS))
    rate = float(rng.uniform(3.0, 5.0))
    s = start
    while s < end:
        phrase_end = min(end, s + float(rng.uniform(0.8, 2.5)))
        while s < phrase_end:
            width = float(rng.uniform(0.7, 1.0)) / rate
            u = np.clip((t - s) / width, 0.0, 1.0)
            bump = np.sin(np.pi * u) ** 2
            jaw = float(rng.uniform(0.1, 0.45))
            out[:, AU_INDEX["AU26"]] = np.maximum(out[:, AU_INDEX["AU26"]], jaw * bump)
            out[:, AU_INDEX["AU25"]] = np.maximum(out[:, AU_INDEX["AU25"]], min(1.0, 1.5 * jaw + 0.1) * bump)
            vowel = "AU18" if rng.random() < 0.4 else "AU20"
            out[:, AU_INDEX[vowel]] = np.maximum(out[:, AU_INDEX[vowel]], float(rng.uniform(0.1, 0.5)) * bump)
            if rng.random() < 0.15:
                out[:, AU_INDEX["AU10"]] = np.maximum(out[:, AU_INDEX["AU10"]], float(rng.uniform(0.1, 0.3)) * bump)
            s += (1.0 / rate) * float(np.exp(0.25 * rng.standard_normal()))
        if rng.random() < 0.35:  # conversational brow flash
            flash_t = float(rng.uniform(max(start, s - 1.5), s))
            u = np.clip((t - flash_t) / float(rng.uniform(0.3, 0.6)), 0.0, 1.0)
            amp = float(rng.uniform(0.15, 0.35)) * np.sin(np.pi * u) ** 2
            for au in ("AU1", "AU2"):
                out[:, AU_INDEX[au]] = np.maximum(out[:, AU_INDEX[au]], amp)
        s = phrase_end + float(rng.uniform(0.2, 0.6))
    return out


def fidget_tracks(rng: np.random.Generator, t: np.ndarray, amplitude: float = 0.04) -> np.ndarray:
    """Tiny slow random AU activity of a face at rest (lips, brows), a few % of full intensity."""
    out = np.zeros((len(t), N_AUS))
    for au in rng.choice(["AU12", "AU15", "AU24", "AU1", "AU4", "AU17", "AU25"], size=3, replace=False):
        out[:, AU_INDEX[str(au)]] = amplitude * rng.uniform(0.2, 1.0) * _smooth_noise(rng, t, 0.5)
    return np.clip(out, 0.0, None)


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, max_hz: float, n: int = 4) -> np.ndarray:
    """Sum of a few random low-frequency sinusoids, in [-1, 1]."""
    freqs = rng.uniform(0.05, max_hz, n)
    phases = rng.uniform(0, 2 * np.pi, n)
    amps = rng.uniform(0.3, 1.0, n)
    wave = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None])).sum(0)
    return wave / amps.sum()


def head_pose_track(rng: np.random.Generator, t: np.ndarray, turns: int = 0,
                    sway_deg: float = 3.0) -> np.ndarray:
    """Head (yaw, pitch, roll) in degrees, (T, 3): slow sway plus ``turns`` deliberate head turns.

    A turn goes to 15-40 deg of yaw (with some pitch) in 0.3-0.9 s, holds, and usually comes back.
    """
    pose = np.stack([sway_deg * _smooth_noise(rng, t, 0.4) for _ in range(3)], axis=1)
    pose[:, 2] *= 0.5
    t_next = float(t[0]) + float(rng.uniform(0.4, 1.0))
    for _ in range(turns):
        yaw = float(rng.choice([-1, 1]) * rng.uniform(15, 40))
        pitch = float(rng.uniform(-10, 10))
        go, hold, back = rng.uniform(0.3, 0.9), rng.uniform(0.3, 1.5), rng.uniform(0.3, 0.9)
        out_ = _min_jerk((t - t_next) / go)
        ret = _min_jerk((t - t_next - go - hold) / back) if rng.random() < 0.8 else 0.0
        profile = out_ - ret
        pose[:, 0] += yaw * profile
        pose[:, 1] += pitch * profile
        t_next += go + hold + back + float(rng.uniform(0.2, 0.8))
    return pose
