"""emo eval video: both modes on recordings through real MediaPipe and the sim robot, measured
against the recordings' own landmarks; the real-face set's manifest, sidecars and rebuild."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from emo_core.datasets import realfaces
from emo_core.errors import InputError
from emo_core.pipeline.video_eval import (EPISODE_KINDS, EpisodeSpec, auto_episodes, load_episodes,
                                          sidecar_path)
from emo_core.people.demo import demo_clip_path

CONTRACT = ("synchrony_ms", "half_rise_ms", "detector", "predictor", "jitter")


def _emo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emo_core", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def clip_report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("eval")
    done = _emo("eval", "video", str(demo_clip_path()), "--json", "--out", str(out), "--quiet",
                "--tracks", str(out / "tracks"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    report["_out"] = str(out)
    return report


def test_eval_video_reports_the_contract_on_the_bundled_clip(clip_report):
    video, pooled = clip_report["videos"][0], clip_report["pooled"]
    for part in (video, pooled):
        for key in CONTRACT:
            assert key in part
        for mode in ("coexpression", "mimicry"):
            assert set(part["synchrony_ms"][mode]) == {"median", "median_abs", "n"}
            assert set(part["half_rise_ms"][mode]) == {"median", "median_abs", "n"}
            assert part["jitter"][mode] > 0
        assert {"fired_per_episode", "fired_before_half_rise", "false_per_minute"} <= set(part["detector"])
        assert {"model_mae", "mimicry_mae", "n"} <= set(part["predictor"])
    assert video["episodes_from"] == "clip ground truth" and video["measured_episodes"] == 1
    sync = video["synchrony_ms"]
    # The clip's smile: mimicry lags by its camera frame, frame hold and the servos' 0.2 s lag;
    # coexpression's lag-led commands get there much sooner (the demo measures the same clip).
    assert sync["mimicry"]["n"] == sync["coexpression"]["n"] == 1
    assert sync["mimicry"]["median"] > 200
    assert sync["coexpression"]["median"] < sync["mimicry"]["median"] - 100
    assert video["half_rise_ms"]["coexpression"]["median"] < video["half_rise_ms"]["mimicry"]["median"]
    # The smile is detected; the wander-trained scorer also fires once near the clip's late blinks.
    assert video["detector"]["fired_per_episode"] == 1.0 and video["detector"]["false_firings"] <= 1
    assert video["predictor"]["n"] == 1 and video["predictor"]["model_mae"] > 0
    assert Path(video["timeline"]).is_file() and (Path(clip_report["_out"]) / "report.json").is_file()
    with np.load(Path(clip_report["_out"]) / "tracks" / "demo_clip.mp4.npz", allow_pickle=False) as track:
        assert track["metric"].shape == (video["frames"], 113, 3) and track["det"].all()
        assert track["truth"].shape == (1, 5) and json.loads(str(track["spans"]))[0][2] == "expression"


def test_a_replayed_track_measures_what_the_video_measured(clip_report, tmp_path):
    """The track written by --tracks replays without MediaPipe to the very same figures."""
    track = Path(clip_report["_out"]) / "tracks" / "demo_clip.mp4.npz"
    done = _emo("eval", "video", str(track), "--json", "--quiet", "--tracks", str(tmp_path))
    assert done.returncode == 0, done.stderr
    replayed, video = json.loads(done.stdout)["videos"][0], clip_report["videos"][0]
    for key in CONTRACT + ("fired_s", "per_episode", "episodes"):
        assert replayed[key] == video[key], key
    # --pipeline / --sim overrides reach the replay: mimicry's lag is the plant's, so a slower
    # simulated servo makes mimicry later.
    done = _emo("eval", "video", str(track), "--json", "--quiet", "--sim", "response_time_s=0.4",
                "--pipeline", "lag_lead=slope")
    assert done.returncode == 0, done.stderr
    slow = json.loads(done.stdout)["videos"][0]["synchrony_ms"]["mimicry"]["median"]
    assert slow > video["synchrony_ms"]["mimicry"]["median"] + 50
    with np.load(track) as a, np.load(tmp_path / "demo_clip.mp4.npz") as b:
        for key in ("metric", "det", "ts", "truth"):
            np.testing.assert_array_equal(a[key], b[key])


def test_eval_detector_replays_the_detector_to_eval_videos_figures(clip_report, tmp_path):
    """emo eval detector on a track: the same detector block as emo eval video, plus the AUC."""
    tracks = Path(clip_report["_out"]) / "tracks"
    done = _emo("eval", "detector", str(tracks), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    video, replayed = clip_report["videos"][0], report["tracks"][0]
    assert replayed["fired_s"] == video["fired_s"]
    for key in ("fired_per_episode", "fired_before_half_rise", "false_per_minute", "episodes", "false_firings"):
        assert replayed[key] == video["detector"][key], key
    assert 0.5 < replayed["auc"] <= 1.0 and report["pooled"]["tracks"] == 1
    # Overrides reach the detector: an unreachable threshold never fires.
    done = _emo("eval", "detector", str(tracks), "--json", "--detector", "on_probability=0.9999999",
                "--detector", "confirm_frames=100")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tracks"][0]["fired_s"] == []
    done = _emo("eval", "detector", str(tracks), "--detector", "confirm_frames=abc")
    assert done.returncode == 2 and done.stderr.startswith("emo: error:")
    done = _emo("eval", "detector", str(tmp_path))
    assert done.returncode == 2 and "no landmark tracks" in done.stderr


def test_auc_counts_ties_half_and_ignores_nans():
    from emo_core.pipeline.detector_eval import _auc
    assert _auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert _auc(np.array([0.5, np.nan]), np.array([0.5])) == 0.5
    assert _auc(np.array([0.1]), np.array([0.9, 0.2])) == 0.0
    assert _auc(np.zeros(0), np.array([0.1])) is None


def test_a_file_that_is_no_track_is_one_line(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, ts=np.arange(3.0))
    done = _emo("eval", "video", str(bad))
    assert done.returncode == 2 and "not a landmark track" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_sidecar_episodes_are_read_and_checked(tmp_path):
    video = tmp_path / "clip.mp4"
    assert load_episodes(video) is None
    sidecar_path(video).write_text(json.dumps({"episodes": [
        {"start_s": 0.5, "end_s": 2.0, "label": "smile"}, {"start_s": 2.0, "end_s": 3.0, "kind": "talking"}]}))
    specs = load_episodes(video)
    assert specs == [EpisodeSpec(0.5, 2.0, "expression", "smile"), EpisodeSpec(2.0, 3.0, "talking", "")]
    for bad in ({"episodes": [{"start_s": 2.0, "end_s": 1.0}]}, {"episodes": [{"start_s": 0, "end_s": 1, "kind": "dance"}]},
                {"episodes": {"start_s": 0}}, {"nothing": []}):
        sidecar_path(video).write_text(json.dumps(bad))
        with pytest.raises(InputError):
            load_episodes(video)
    sidecar_path(video).write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError):
        load_episodes(video)


def test_auto_episodes_find_a_displacement_span_and_ignore_the_eyes():
    fps = 30.0
    t = np.arange(150) / fps
    rng = np.random.default_rng(1)
    faces = 0.003 * rng.normal(size=(150, 113, 2))
    from emo_core.schema import REGIONS

    rise = np.clip((t - 2.0) / 0.4, 0, 1) * (t < 3.5)
    faces[:, REGIONS["lips"], 1] -= 0.1 * rise[:, None]
    blink = ((t > 0.8) & (t < 1.0)).astype(float)
    faces[:, REGIONS["left_eye"], 1] += 0.2 * blink[:, None]
    found = auto_episodes(faces, t)
    assert len(found) == 1
    assert found[0].start < 2.2 < 3.4 < found[0].end and found[0].start > 1.0


def test_eval_video_user_errors_are_one_line(tmp_path):
    done = _emo("eval", "video", str(tmp_path / "missing.mp4"))
    assert done.returncode == 2 and done.stderr.strip().startswith("emo: error:")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    done = _emo("eval", "video", str(tmp_path / "empty"))
    assert done.returncode == 2 and "no videos" in done.stderr


# ----------------------------------------------------------------------------- the real-face set
def test_manifest_lists_real_recordings_with_sources_licences_and_sidecars():
    sources, recordings = realfaces.load_manifest()
    assert len(recordings) >= 9 and len({r.person for r in recordings}) >= 8
    assert {s.registry for s in sources.values()} <= {"pypi", "npm"}
    expression_episodes = 0
    kinds: set[str] = set()
    for rec in recordings:
        assert len(rec.sha256) == 64 and rec.licence and rec.content
        side = realfaces.sidecar(rec)
        assert side.is_file(), rec.name
        specs = load_episodes(side.with_name(Path(rec.name).stem + ".mp4"))
        assert specs, rec.name
        spans = sorted((s.start, s.end) for s in specs)
        assert all(b[0] >= a[1] - 1e-9 for a, b in zip(spans, spans[1:])), f"{rec.name}: overlapping episodes"
        expression_episodes += sum(s.kind == "expression" for s in specs)
        kinds |= {s.kind for s in specs}
    assert expression_episodes >= 20
    assert {"expression", "talking", "head", "occlusion"} <= kinds <= set(EPISODE_KINDS)


def _fake_wheel(path: Path, member: str, data: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)


def test_build_extracts_checks_and_replaces_the_set_as_a_whole(tmp_path, monkeypatch):
    data = b"not really a video"
    manifest = {"format": realfaces.FORMAT, "version": 1,
                "sources": {"pkg": {"registry": "pypi", "package": "pkg", "version": "1.0",
                                    "artifact": "pkg-1.0-py3-none-any.whl", "licence": "MIT"}},
                "recordings": [{"name": "a.mp4", "source": "pkg", "path": "pkg/data/a.mp4",
                                "sha256": hashlib.sha256(data).hexdigest(), "person": "p", "licence": "MIT",
                                "content": "test"}]}
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "a.episodes.json").write_text(json.dumps({"episodes": [{"start_s": 0, "end_s": 1}]}))
    monkeypatch.setattr(realfaces, "data_path", lambda name: folder)
    cache = tmp_path / "cache"
    cache.mkdir()
    _fake_wheel(cache / "pkg-1.0-py3-none-any.whl", "pkg/data/a.mp4", data)
    out = tmp_path / "set"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    realfaces.build(out, cache=cache)
    assert sorted(p.name for p in out.iterdir()) == ["a.episodes.json", "a.mp4", "manifest.json"]
    assert (out / "a.mp4").read_bytes() == data
    _fake_wheel(cache / "pkg-1.0-py3-none-any.whl", "pkg/data/a.mp4", b"tampered")
    with pytest.raises(InputError, match="checksum"):
        realfaces.build(out, cache=cache)
    assert (out / "a.mp4").read_bytes() == data           # the old set is left whole
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".realfaces-")]


REAL = os.environ.get(realfaces.ENV_VAR)


@pytest.mark.skipif(not REAL or not Path(REAL).is_dir(),
                    reason=f"the real-face set is not built (emo dataset realfaces --out DIR; {realfaces.ENV_VAR}=DIR)")
def test_real_recordings_through_real_mediapipe():
    """Two real people from the set (rest -> smile; a crying-to-laughing recording with occlusion):
    every annotated expression is measured, the lag-led coexpression is ahead of mimicry, and the
    detector fires again after the first expression (it re-arms where the face settles)."""
    folder = Path(REAL)
    out = _emo("eval", "video", str(folder / "single_face.mp4"), str(folder / "WolfgangLanger_Pexels.mp4"),
               "--json", "--quiet")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    pooled = report["pooled"]
    assert pooled["synchrony_ms"]["coexpression"]["n"] == pooled["synchrony_ms"]["mimicry"]["n"] == 6
    assert pooled["synchrony_ms"]["coexpression"]["median"] < pooled["synchrony_ms"]["mimicry"]["median"]
    wolfgang = report["videos"][1]
    assert len(wolfgang["fired_s"]) >= 2
    assert wolfgang["detector"]["outside_minutes"] > 0.1
