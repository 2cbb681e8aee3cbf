"""Calibration of synthetic people to real ones (people/calibration.py, the calibrated profile)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from emo_core.errors import InputError
from emo_core.people.calibration import (compare, load_real, motion, progress_at_peak, proportions,
                                         stillness, synthetic_figures, table)
from emo_core.people.expressions import EXPRESSIONS, EXTRA_EXPRESSIONS
from emo_core.people.generator import (GeneratorConfig, PeopleGenerator, WanderConfig, profile_config,
                                       wander_field)
from emo_core.schema import REGIONS


def _fake_real(tmp_path, gen, seed=5):
    """Write synthetic videos in the real-track cache format (metric, ts, det, spans, truth)."""
    rng = np.random.default_rng(seed)
    ident = gen.identity("r0", rng)
    for k, label in enumerate(["neutral", "smile", "surprise"]):
        seq = gen.sequence(ident, label, np.random.default_rng(seed + k))
        n = len(seq.landmarks)
        ts = np.arange(n) / 30.0
        if label == "neutral":
            spans, truth = [[0.0, ts[-1], "rest", "still"]], np.zeros((0, 5))
        else:
            a = seq.apex_frame / 30.0
            spans = [[0.0, ts[-1], "expression", label]]
            truth = np.array([[0.0, ts[-1], seq.onset_frame / 30.0, a, a]])
        np.savez(tmp_path / f"v{k}.mp4.npz", metric=seq.landmarks, ts=ts, det=np.ones(n, bool),
                 rot=np.full((n, 3, 3), np.nan), scale=np.ones(n), truth=truth, spans=json.dumps(spans))


def test_original_profile_is_the_old_generator():
    a = PeopleGenerator(GeneratorConfig()).dataset(2, 3, seed=1)
    b = PeopleGenerator(profile_config("original")).dataset(2, 3, seed=1)
    for x, y in zip(a, b):
        assert x.label == y.label and x.apex_frame == y.apex_frame
        np.testing.assert_array_equal(x.landmarks, y.landmarks)
    with pytest.raises(InputError):
        profile_config("nope")


def test_calibrated_profile_adds_expressions_wander_and_region_gains():
    cfg = profile_config("calibrated")
    assert set(EXTRA_EXPRESSIONS) <= set(cfg.expressions) and set(EXPRESSIONS) <= set(cfg.expressions)
    assert cfg.wander.enabled and not GeneratorConfig().wander.enabled
    ds = PeopleGenerator(cfg).dataset(3, 12, seed=2)
    labels = {s.label for s in ds}
    assert labels & set(EXTRA_EXPRESSIONS)
    for s in ds:
        if s.label in EXTRA_EXPRESSIONS:
            assert 0 <= s.onset_frame <= s.apex_frame < len(s.landmarks)
            assert np.isclose(s.intensity.max(), s.intensity[s.apex_frame])
    assert ds.meta["profile"] == "calibrated"


def test_jaw_drop_moves_the_chin_more_than_the_brows():
    gen = PeopleGenerator(profile_config("calibrated", wander=WanderConfig()))
    ident = gen.identity("p", np.random.default_rng(0))
    s = gen.sequence(ident, "jaw_drop", np.random.default_rng(1))
    m = motion(s.landmarks[:5].mean(0), s.landmarks[s.apex_frame])
    assert m["disp_chin"] > 0.1 and m["share_jaw"] + m["share_lips"] > 0.7


def test_wander_field_is_slow_smooth_and_has_the_asked_rms():
    rng = np.random.default_rng(0)
    neutral = PeopleGenerator().template.landmarks
    f = wander_field(neutral, 300, WanderConfig(rms=(0.02, 0.02), tau_s=(1.0, 1.0)), 30.0, rng)
    assert f.shape == (300, 113, 3) and np.all(f[..., 2] == 0)
    assert np.sqrt(np.mean(f[..., :2] ** 2)) == pytest.approx(0.02, rel=1e-6)
    step = np.sqrt(np.mean(np.diff(f[..., :2], axis=0) ** 2))
    assert step < 0.1 * 0.02                      # slow: frame-to-frame change far below the RMS
    # Spatially smooth: neighbouring lip points move much more alike than the chin and a brow.
    from emo_core.schema import canonical_position

    near = f[:, canonical_position(13), :2] - f[:, canonical_position(14), :2]
    far = f[:, canonical_position(152), :2] - f[:, canonical_position(105), :2]
    assert np.sqrt(np.mean(near ** 2)) < 0.3 * np.sqrt(np.mean(far ** 2))
    assert not wander_field(neutral, 50, WanderConfig(), 30.0, rng).any()


def test_calibrated_still_faces_wander_more_with_the_same_jitter():
    old = synthetic_figures(GeneratorConfig(), subjects=4, videos=3, seed=3)
    new = synthetic_figures(profile_config("calibrated"), subjects=4, videos=3, seed=3)
    assert new["wander"]["mean"] > 1.5 * old["wander"]["mean"]
    assert new["jitter"]["mean"] < old["jitter"]["mean"]
    # The measured real range (docs/people.md): wander 0.014-0.041 units, jitter ~0.005.
    assert 0.01 < new["wander"]["mean"] < 0.04 and 0.003 < new["jitter"]["mean"] < 0.008


def test_figures_on_known_faces():
    face = PeopleGenerator().template.landmarks
    p = proportions(face)
    assert 1.0 < p["eye_distance_units"] < 1.8 and 1.5 < p["face_width"] < 2.6
    m = motion(face, face + np.where(np.arange(113)[:, None] == REGIONS["lips"][0], 0.1, 0.0))
    assert m["share_lips"] == pytest.approx(1.0) and m["share_jaw"] == 0.0
    rise = face[None] + np.clip((np.arange(60) - 15) / 20, 0, 1)[:, None, None] * 0.05
    prog = progress_at_peak(rise)
    assert prog is not None and 0.0 <= prog < 0.5
    w, j = stillness(np.repeat(face[None, :, :2], 30, axis=0))
    assert w < 1e-12 and j < 1e-12


def test_compare_reads_real_tracks_and_prints_a_table(tmp_path):
    gen = PeopleGenerator(GeneratorConfig())
    _fake_real(tmp_path, gen)
    tracks = load_real(tmp_path)
    assert len(tracks) == 3
    res = compare(tmp_path, GeneratorConfig(), subjects=3, videos=4, seed=0)
    assert res["real"]["motion"]["share_lips"]["n"] == 2 and res["real"]["wander"]["n"] == 1
    # The "real" tracks are made by the same generator: the figures must agree in kind.
    assert 0.3 < res["ratio"]["jitter"] < 3.0
    text = table(res)
    assert "share_lips" in text and "wander" in text
    with pytest.raises(InputError):
        load_real(tmp_path / "empty")


def test_cli_calibration_and_profile_flags(tmp_path, capsys):
    from emo_core.cli import main

    _fake_real(tmp_path, PeopleGenerator())
    assert main(["sim", "calibration", "--real", str(tmp_path), "--subjects", "2", "--videos", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"real", "synthetic", "ratio"} <= set(out)
    target = tmp_path / "cal.npz"
    assert main(["sim", "sequences", "--subjects", "1", "--videos", "4", "--calibrated", "--quiet",
                 "--out", str(target)]) == 0
    assert target.is_file()
