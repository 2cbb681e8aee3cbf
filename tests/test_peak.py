"""Offline peak activation (paper Methods) and the predictor dataset builder."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from emo_core.anticipation.dataset import (
    COMBINATIONS, N_WINDOW, build_windows, eval_pairs, kfold_by_participant, kfold_by_video,
    sample_pairs, split_per_participant,
)
from emo_core.anticipation.peak import PeakConfig, distance_curve, peak_activation, resting_face
from emo_core.errors import InputError

UNIT = np.random.default_rng(0).normal(size=226)
UNIT /= np.linalg.norm(UNIT)


def tent(n: int = 120, start: int = 30, apex: int = 60, fall: float = 1.0) -> np.ndarray:
    """Distance curve: 0 until ``start``, slope 1 up to ``apex``, then down with slope ``fall``."""
    t = np.arange(n, dtype=float)
    return np.where(t <= apex, np.maximum(0.0, t - start), np.maximum(0.0, (apex - start) - fall * (t - apex)))


def face_along(curve: np.ndarray, scale: float = 0.01, base: np.ndarray | None = None) -> np.ndarray:
    """Landmarks whose distance to the first frame is exactly ``scale * curve``."""
    base = np.zeros((113, 2)) if base is None else base
    return (base[None] + scale * (curve[:, None] * UNIT[None]).reshape(-1, 113, 2)).astype(np.float32)


def test_exact_frames_on_a_symmetric_tent():
    result = peak_activation(face_along(tent()))
    # Symmetric apex -> the smoothed maximum stays on it; the onset kink is the largest acceleration.
    assert result.target_frame == 60
    assert result.peak_frame == 30
    # Arrival: the linear rise from 30 to 60 passes 95 % of the (slightly smoothed) peak near 58.5.
    assert 57 <= result.arrival_frame <= 59
    np.testing.assert_allclose(result.distance, 0.01 * tent(), atol=1e-5)


def test_offset_landing_only_wins_when_searching_the_whole_curve():
    landmarks = face_along(tent(fall=2.0))        # the fall lands at frame 75 with a sharper kink
    assert peak_activation(landmarks).peak_frame == 30
    assert peak_activation(landmarks, PeakConfig(peak_before_target=False)).peak_frame == 75


def test_resting_face_is_the_mean_of_the_first_five_frames():
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(40, 113, 3)).astype(np.float32)
    result = peak_activation(frames)
    np.testing.assert_allclose(result.rest, frames[:5, :, :2].mean(0), atol=1e-6)
    np.testing.assert_allclose(result.distance, distance_curve(frames[..., :2], resting_face(frames[..., :2])),
                               rtol=1e-6)


def test_noise_moves_frames_by_at_most_one():
    rng = np.random.default_rng(2)
    landmarks = face_along(tent()) + rng.normal(scale=2e-4, size=(120, 113, 2)).astype(np.float32)
    result = peak_activation(landmarks)
    assert abs(result.target_frame - 60) <= 1 and abs(result.peak_frame - 30) <= 1


@pytest.mark.parametrize("bad", [np.zeros((3, 113, 2)), np.zeros((50, 112, 2)),
                                 np.full((50, 113, 2), np.nan)])
def test_bad_sequences_are_refused(bad):
    with pytest.raises(InputError):
        peak_activation(bad)


# ------------------------------------------------------------------------------ dataset builder

@dataclass
class Video:
    landmarks: np.ndarray
    fps: float
    subject: str
    label: str
    apex_frame: int = 0


def stamped(curve: np.ndarray) -> np.ndarray:
    """Tent landmarks whose landmark 0 x-coordinate encodes the frame index (for order checks)."""
    frames = face_along(curve)
    frames[:, 0, 0] = np.arange(len(curve)) * 1e-4
    return frames


def frame_of(points: np.ndarray) -> np.ndarray:
    return np.rint(points[..., 0, 0] / 1e-4).astype(int)


def make_videos(subjects: int = 6, per_subject: int = 5) -> list[Video]:
    rng = np.random.default_rng(3)
    videos = []
    for s in range(subjects):
        for v in range(per_subject):
            start = int(rng.integers(10, 25))
            videos.append(Video(stamped(tent(90, start, start + int(rng.integers(12, 30)))), 30.0, f"p{s}", "smile"))
    videos.append(Video(face_along(np.zeros(60)), 30.0, "p0", "blink", apex_frame=-1))
    return videos


def test_builder_windows_and_augmented_pairs():
    videos = make_videos()
    windows, report = build_windows(videos)
    assert report.used == 30 and report.skipped_distractors == 1
    assert windows.inputs.shape == (30, 9, 113, 2) and windows.labels.shape == (30, 4, 113, 2)
    for i in range(len(windows)):
        p, m = windows.peak_frame[i], windows.target_frame[i]
        np.testing.assert_array_equal(frame_of(windows.inputs[i]), np.arange(p - 4, p + 5))
        np.testing.assert_array_equal(frame_of(windows.labels[i]), np.arange(m, m + 4))
    assert len(COMBINATIONS) == 126 and N_WINDOW == 9
    pairs = sample_pairs(windows, 500, np.random.default_rng(0))
    assert pairs.x.shape == (500, 4, 113, 2) and pairs.y.shape == (500, 113, 2)
    in_frames, out_frame = frame_of(pairs.x), frame_of(pairs.y)
    p, m = windows.peak_frame[pairs.row], windows.target_frame[pairs.row]
    assert np.all(np.diff(in_frames, axis=1) > 0)                         # in temporal order
    assert np.all((in_frames >= (p - 4)[:, None]) & (in_frames <= (p + 4)[:, None]))
    assert np.all((out_frame >= m) & (out_frame <= m + 3))
    arrive = windows.arrival_frame[pairs.row]
    assert np.all((windows.peak_frame <= windows.arrival_frame) & (windows.arrival_frame <= windows.target_frame))
    np.testing.assert_allclose(pairs.time_to_apex, (arrive - in_frames[:, -1]) / 30.0, atol=1e-6)
    assert len(np.unique(in_frames - p[:, None], axis=0)) > 60             # many of the 126 choices
    assert np.array_equal(pairs.timed, np.all(np.diff(in_frames, axis=1) == 1, axis=1))
    runs = sample_pairs(windows, 200, np.random.default_rng(1), consecutive_fraction=1.0)
    assert runs.timed.all() and np.all(np.diff(frame_of(runs.x), axis=1) == 1), "live-detector windows"
    ev = eval_pairs(windows)
    np.testing.assert_array_equal(frame_of(ev.x), windows.peak_frame[:, None] + np.arange(-3, 1))
    np.testing.assert_array_equal(frame_of(ev.y), windows.target_frame)


def test_split_per_participant_is_80_20_within_each_participant():
    rng = np.random.default_rng(4)
    counts = rng.integers(1, 40, size=45)
    subjects = np.repeat([f"p{i}" for i in range(45)], counts)
    train, test = split_per_participant(subjects, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(subjects)
    for i, n in enumerate(counts):
        n_test = int(np.sum(subjects[test] == f"p{i}"))
        assert n_test == (0 if n < 2 else int(np.ceil(0.2 * n - 1e-9)))
    assert 0.74 < len(train) / len(subjects) < 0.82       # the paper: 756 / 970 = 0.78


def test_cross_validation_by_video_and_by_participant():
    subjects = np.repeat([f"p{i}" for i in range(10)], 7)
    by_video = kfold_by_video(len(subjects), 5, seed=1)
    assert sorted(np.concatenate([t for _, t in by_video]).tolist()) == list(range(70))
    by_person = kfold_by_participant(subjects, 5, seed=1)
    assert sorted(np.concatenate([t for _, t in by_person]).tolist()) == list(range(70))
    for train, test in by_person:
        assert not set(subjects[train]) & set(subjects[test])               # no subject leakage
        assert len(train) + len(test) == 70
    with pytest.raises(InputError):
        kfold_by_participant(subjects, 11)


def test_eye_weight_keeps_blinks_out_of_the_target_face():
    from emo_core.schema import REGIONS

    frames = face_along(tent(120, 30, 60, fall=1.0), scale=0.002)          # a small expression, apex 60
    eyes = np.concatenate([REGIONS["left_eye"], REGIONS["right_eye"]])
    blink = np.exp(-0.5 * ((np.arange(120) - 95) / 2.0) ** 2)               # a big blink at frame 95
    frames[:, eyes, 1] += 0.2 * blink[:, None]
    assert abs(peak_activation(frames).target_frame - 95) <= 1               # the paper's distance
    assert peak_activation(frames, PeakConfig(eye_weight=0.0)).target_frame == 60
