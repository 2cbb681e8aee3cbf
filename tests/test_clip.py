"""Clip maker on a real photograph, checked with real MediaPipe; metric-scale and noise checks of
the synthetic people against the extractor; the bundled demo clip; the ``emo sim`` CLI."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from emo_core.cli import main as emo
from emo_core.datasets.human import HumanSequenceDataset
from emo_core.people.au import N_AUS
from emo_core.people.check import distance_to_rest as _distance_to_rest
from emo_core.people.check import read_frames as _read_video
from emo_core.people.check import recovered_apex, track
from emo_core.people.clip import ClipConfig, ClipMaker, clip_timeline, load_truth, make_clip
from emo_core.people.demo import MAX_BYTES, demo_clip_path
from emo_core.people.generator import PeopleGenerator
from emo_core.people.photo import NEUTRAL_FEATURES, expression_features
from emo_core.schema import canonical_position


@pytest.fixture(scope="module")
def maker() -> ClipMaker:
    """The astronaut, framed at 320 px (face ~130 px), neutralized once for the module."""
    return ClipMaker(None, ClipConfig(size=320))


def _track(frames: list[np.ndarray]) -> np.ndarray:
    return track(frames)


def test_smile_clip_is_recovered_by_mediapipe(tmp_path, maker):
    result = make_clip("smile", tmp_path / "clip.mp4", seconds=2.0, seed=0, blink_rate_hz=0.0, maker=maker)
    truth = load_truth(tmp_path / "clip.json")
    assert result.truth == tmp_path / "clip.json"
    assert truth["fps"] == 30.0 and truth["n_frames"] == 60 and len(truth["intensity"]) == 60
    assert 0 < truth["onset_frame"] < truth["apex_frame"] < 60
    intensity = np.array(truth["intensity"])
    assert intensity.min() >= 0 and intensity.max() == pytest.approx(1.0) and intensity[:5].max() < 0.02
    frames = _read_video(result.video)
    assert len(frames) == 60 and frames[0].shape == (320, 320, 3)
    metric = _track(frames)
    apex = truth["apex_frame"]
    # The paper's target face: maximum of the smoothed distance to the first-5-frame rest face.
    assert abs(int(np.argmax(_distance_to_rest(metric))) - apex) <= 3
    rest = metric[:5].mean(axis=0)
    right, left = canonical_position(61), canonical_position(291)
    d_right, d_left = metric[apex, right] - rest[right], metric[apex, left] - rest[left]
    assert d_right[1] < -0.03 and d_left[1] < -0.03          # mouth corners up...
    assert d_right[0] < -0.03 and d_left[0] > 0.03           # ...and out


def test_photo_is_neutralized(maker, static_extractor):
    """The astronaut smiles with parted lips; the clip's rest frame does not."""
    before = expression_features(maker.face.mesh_px)
    mesh = static_extractor.mesh(maker.frame(np.zeros(N_AUS)))
    after = expression_features(mesh * 320)
    # Measured at 320 px: corner lift 0.14 -> 0.07, lip gap 0.19 -> 0.06 (a teeth line MediaPipe
    # reads as a small gap), mouth width 1.04 -> 0.86 inter-eye distances (norms 0, 0, 0.80).
    for name in ("corner_lift", "lip_gap", "mouth_ratio"):
        norm, spread = NEUTRAL_FEATURES[name]
        assert abs(after[name] - norm) < 0.6 * abs(before[name] - norm), name
    assert abs(after["corner_lift"]) < 2.5 * NEUTRAL_FEATURES["corner_lift"][1]
    assert abs(after["mouth_ratio"] - 0.80) < 2.5 * NEUTRAL_FEATURES["mouth_ratio"][1]


def test_synthetic_faces_match_the_extractors_metric_space(maker, static_extractor):
    """Generator neutral faces vs what the real extractor reports for the real (neutralized)
    photo -- at another resolution than the template was measured at, mirrored, and rotated,
    scaled and shifted in the image (which pose normalization must undo)."""
    rest = maker.frame(np.zeros(N_AUS))
    rotated = cv2.warpAffine(rest, cv2.getRotationMatrix2D((170, 150), 12, 0.8), (320, 320),
                             borderMode=cv2.BORDER_REPLICATE)
    views = {"rest": rest, "mirrored": np.ascontiguousarray(rest[:, ::-1]), "rotated": rotated}
    measured = {}
    for name, image in views.items():
        face = static_extractor.process(image)
        assert face.detected, name
        measured[name] = face.metric[:, :2]
    gen = PeopleGenerator()
    faces = np.array([gen.identity(f"s{k}", np.random.default_rng(k)).neutral113[:, :2] for k in range(120)])
    mean, sd = faces.mean(axis=0), faces.std(axis=0)
    radius = np.sqrt(((faces - faces.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1))
    for name, xy in measured.items():
        # Same scale: the face's RMS radius (metric units) is inside the synthetic population.
        r = np.sqrt(((xy - xy.mean(axis=0)) ** 2).sum(axis=1).mean())
        assert np.percentile(radius, 1) <= r <= np.percentile(radius, 99), name
        # Same frame and shape: nearly every coordinate within 3 sd of the synthetic mean
        # (sd = inter-person variation ~1-3 mm, so this also bounds any offset or rotation).
        z = np.abs(xy - mean) / np.maximum(sd, 0.01)
        assert np.mean(z < 3) > 0.95, name
        assert np.abs(xy.mean(axis=0) - mean.mean(axis=0)).max() < 0.05, name
    # Pose normalization: the transformed views give the same metric face within ~1.5 mm
    # (MediaPipe's own frame-to-frame noise is ~0.005-0.01 units at this face size).
    assert np.abs(measured["rotated"] - measured["rest"]).mean() < 0.03
    assert np.abs(measured["mirrored"][:, 0].mean() + measured["rest"][:, 0].mean()) < 0.03


def test_generator_noise_is_on_mediapipes_scale(maker):
    """MediaPipe on a still frame seen through a camera (sensor noise, sub-pixel shake) vs the
    generator's noise model: frame-to-frame jitter within a factor of 2."""
    rng = np.random.default_rng(0)
    rest = maker.frame(np.zeros(N_AUS)).astype(np.float32)
    frames = []
    for _ in range(40):
        shift = np.float32([[1, 0, rng.normal(0, 0.5)], [0, 1, rng.normal(0, 0.5)]])
        moved = cv2.warpAffine(rest, shift, (320, 320), borderMode=cv2.BORDER_REFLECT)
        frames.append(np.clip(moved + rng.normal(0, 3.0, moved.shape), 0, 255).astype(np.uint8))
    measured = np.diff(_track(frames)[5:, :, :2], axis=0).std()
    gen = PeopleGenerator()
    noise = gen._noise(np.random.default_rng(1), np.zeros((400, 3)), level=1.0)
    modelled = np.diff(noise[..., :2], axis=0).std()
    assert 0.5 < modelled / measured < 2.0, (modelled, measured)


def test_warp_is_an_exact_inverse(maker):
    timeline = maker.timeline("broad_smile", seed=3)
    disp = maker.face.metric_to_pixels(maker._to_neutral + maker.model.displacement(timeline.aus[timeline.apex_frame]))
    mapping = maker.face.warp.backward_map(disp).copy()
    src = maker.face.mesh_px[:, :2]
    dst = (src + disp).astype(np.float32)
    sampled = np.stack([cv2.remap(mapping[..., k], dst[:, :1], dst[:, 1:], cv2.INTER_LINEAR)[:, 0]
                        for k in (0, 1)], axis=1)
    err = np.linalg.norm(sampled - src, axis=1)
    assert np.median(err) < 0.1 and np.percentile(err, 95) < 0.5


def test_clip_timeline_is_deterministic(maker):
    a = clip_timeline(maker.model, "surprise", maker.config, np.random.default_rng(5))
    b = clip_timeline(maker.model, "surprise", maker.config, np.random.default_rng(5))
    c = clip_timeline(maker.model, "surprise", maker.config, np.random.default_rng(6))
    assert np.array_equal(a.aus, b.aus) and a.apex_frame == b.apex_frame
    assert not np.array_equal(a.aus, c.aus)
    assert np.array_equal(maker.frame(a.aus[30]), maker.frame(b.aus[30]))


def test_bundled_demo_clip():
    video = demo_clip_path()
    truth = load_truth(video.with_suffix(".json"))
    assert video.stat().st_size + video.with_suffix(".json").stat().st_size <= MAX_BYTES
    frames = _read_video(video)
    assert len(frames) == truth["n_frames"] == len(truth["intensity"])
    assert truth["expression"] == "smile" and truth["onset_frame"] < truth["apex_frame"]
    # MediaPipe finds the smile's apex once the blinks (later, at rest) are left out.
    metric = _track(frames)
    assert abs(recovered_apex(metric, truth["blink_frames"]) - truth["apex_frame"]) <= 3
    # Without masking them, the blinks (at rest, later) are the largest motions in the clip.
    assert int(np.argmax(_distance_to_rest(metric))) in range(min(truth["blink_frames"]) - 4, len(frames))


def test_cli_sim_sequences(tmp_path, capsys):
    out = tmp_path / "people.npz"
    assert emo(["sim", "sequences", "--subjects", "2", "--videos", "3", "--out", str(out), "--seed", "4",
                "--distractors", "0.5", "--quiet"]) == 0
    ds = HumanSequenceDataset.load(out)
    assert len(ds) == 6 and ds.subjects == ["p000", "p001"] and ds.meta["seed"] == 4
    assert "6 videos" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["sim", "clip", "--expression", "grin", "--out", "{tmp}/c.mp4"], "unknown expression"),
    (["sim", "clip", "--expression", "smile", "--out", "{tmp}/c.avi"], ".mp4"),
    (["sim", "clip", "--expression", "smile", "--out", "{tmp}/c.mp4", "--photo", "{tmp}/none.png"], "not found"),
    (["sim", "clip", "--expression", "smile", "--out", "{tmp}/c.mp4", "--photo", "{tmp}/junk.png"], "cannot read"),
    (["sim", "clip", "--expression", "smile", "--out", "{tmp}/c.mp4", "--photo", "{tmp}/grey.png"], "no face"),
    (["sim", "clip", "--expression", "smile", "--out", "{tmp}/c.mp4", "--seconds", "0.1"], "seconds"),
    (["sim", "sequences", "--subjects", "2", "--videos", "2", "--out", "{tmp}/x.txt"], ".npz"),
    (["sim", "sequences", "--subjects", "2", "--videos", "2", "--out", "{tmp}/x.npz",
      "--distractors", "2"], "distractor"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "junk.png").write_bytes(b"not an image")
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((240, 240, 3), 128, np.uint8))
    code = emo([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "c.mp4").exists()


def test_clip_json_is_valid_json_with_au_tracks(tmp_path, maker):
    make_clip("surprise", tmp_path / "s.mp4", seconds=1.5, seed=2, maker=maker)
    data = json.loads((tmp_path / "s.json").read_text())
    assert {"AU1", "AU2", "AU5", "AU26"} <= set(data["aus"])
    assert all(len(v) == data["n_frames"] for v in data["aus"].values())
    assert data["photo_own_expression"]["AU12"] > 0.5     # the astronaut's own smile, removed
