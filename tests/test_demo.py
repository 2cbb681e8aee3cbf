"""``emo demo`` end to end on a short real-photo clip: the shipped models, the real detector, the
MediaPipe extractor, the servo driver through the emulator and the twin; the three output files
and the report's contract keys."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from emo_core.cli import main
from emo_core.people.clip import make_clip

CLIP_SECONDS = 2.5
CLIP_SIZE = 256
GAZE_KEYS = ("error_p50", "error_p95", "settle_ms", "neck_share", "blinks_per_min")


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """A 2.5 s smile clip of the astronaut photo (256 px) with its ground-truth JSON."""
    out = tmp_path_factory.mktemp("clip") / "smile.mp4"
    make_clip("smile", out, seconds=CLIP_SECONDS, size=CLIP_SIZE, seed=3)
    return out


def _stats_keys(value: dict) -> None:
    assert {"p50", "p99"} <= set(value) and value["p99"] >= value["p50"] > 0


def test_demo_writes_the_video_the_timeline_and_the_report(short_clip, tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--video", str(short_clip), "--out", str(out), "--synthetic", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "side_by_side.mp4" in printed and "robot apex - human apex" in printed
    report = json.loads((out / "report.json").read_text())
    frames = int(round(CLIP_SECONDS * 30))
    assert report["input"]["frames"] == frames and report["modes"] == ["coexpression", "mimicry"]
    latency = report["latency_ms"]
    for stage in ("extract", "detect", "retarget", "inverse", "end_to_end"):
        _stats_keys(latency[stage])
    assert latency["end_to_end"]["p50"] >= latency["extract"]["p50"]
    assert report["fps"] > 0 and 0 < report["peak_rss_mb"] < 4096
    for key in ("synchrony_ms", "synchrony_ms_synthetic"):
        for mode in ("coexpression", "mimicry"):
            sync = report[key][mode]
            assert set(sync) == {"median", "median_abs", "n"}
            assert sync["n"] == 1 and abs(sync["median"]) == pytest.approx(sync["median_abs"])
    assert report["apex_s"]["human"] > 0 and report["sim"]["control_period_s"] == pytest.approx(0.01)
    assert report["synthetic"]["sequences"] == 1 and len(report["synthetic"]["per_sequence"]) == 1
    for mode in ("coexpression", "mimicry"):
        assert report["jitter"][mode] > 0 and set(report["half_rise_ms"][mode]) == {"median", "median_abs", "n"}
    assert report["half_rise_ms"]["coexpression"]["median"] < report["half_rise_ms"]["mimicry"]["median"]
    assert report["pipeline"] == {"lead_fraction": 0.5, "lead_mirroring": True, "anticipate": True,
                                  "repredict_every": 3}
    # Gaze (contract keys): a plain video cannot follow the eyes, so no tracking figures; blinks counted.
    gaze = report["gaze"]
    assert set(GAZE_KEYS) <= set(gaze) and gaze["error_p50"] is None and "open loop" in gaze["note"]
    assert gaze["blinks_per_min"] == pytest.approx(60.0 * gaze["detail"]["blinks"] / CLIP_SECONDS, rel=0.05)
    # The video: every frame, human | target | robot (coexpression) | robot (mimicry).
    cap = cv2.VideoCapture(str(out / "side_by_side.mp4"))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    cap.release()
    assert ok and count == frames and first.shape[1] == 4 * first.shape[0] - 4 * 28
    png = (out / "timeline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not list(out.glob(".*.tmp")), "atomic writes leave no temp files"


def test_demo_without_ground_truth_reports_synchrony_as_unavailable(short_clip, tmp_path, capsys) -> None:
    video = tmp_path / "own_video.mp4"
    shutil.copy(short_clip, video)               # no .json sidecar beside it
    out = tmp_path / "demo"
    assert main(["demo", "--video", str(video), "--mode", "mimicry", "--out", str(out), "--synthetic", "0",
                 "--max-frames", "20", "--quiet", "--timed-hold", "--no-lead-mirroring", "--no-anticipation"]) == 0
    assert "unavailable" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["synchrony_ms"] is None and "synchrony_ms_synthetic" not in report
    assert report["input"]["frames"] == 20 and report["modes"] == ["mimicry"]
    assert report["detector"]["mimicry"]["predicted_apex_s"] == []
    assert report["pipeline"] == {"lead_fraction": 0.0, "lead_mirroring": False, "anticipate": False,
                                  "repredict_every": 3}, "the ablation flags reach the pipeline"
    cap = cv2.VideoCapture(str(out / "side_by_side.mp4"))
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape[1] == 3 * (first.shape[0] - 28), "human | target | robot"


def test_demo_moving_closes_the_gaze_loop(short_clip, tmp_path, capsys) -> None:
    """--moving: the clip looped along a walking path with a 20-degree jump, the eye camera's view
    rendered from the servos' present angles, MediaPipe on that view (docs/gaze.md)."""
    out = tmp_path / "moving"
    assert main(["demo", "--video", str(short_clip), "--mode", "coexpression", "--out", str(out), "--synthetic", "0",
                 "--moving", "--moving-seconds", "10", "--quiet"]) == 0
    assert "gaze (closed loop)" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["input"]["frames"] == 300                           # looped to the path's length
    gaze = report["gaze"]
    assert set(GAZE_KEYS) <= set(gaze)
    assert gaze["error_p50"] <= 0.03 and gaze["error_p95"] <= 0.08
    assert gaze["detail"]["jumps"], "the walking path jumps 20 degrees"
    jump = gaze["detail"]["jumps"][0]
    assert jump["jump_deg"] == pytest.approx(20.0) and jump["settle_ms"] is not None and jump["overshoot"] <= 0.1
    assert gaze["detail"]["within_limits"] and gaze["blinks_per_min"] > 0


@pytest.mark.parametrize("make_bad", ["missing", "corrupt", "mode", "moving_seconds", "moving_no_gaze"])
def test_demo_bad_input_is_one_line_and_exit_2(make_bad, tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    if make_bad == "missing":
        args = ["--video", str(tmp_path / "nope.mp4")]
    elif make_bad == "corrupt":
        bad = tmp_path / "bad.mp4"
        bad.write_bytes(np.random.default_rng(0).bytes(5000))
        args = ["--video", str(bad)]
    elif make_bad == "moving_seconds":
        args = ["--moving", "--moving-seconds", "1"]
    elif make_bad == "moving_no_gaze":
        args = ["--moving", "--no-gaze"]
    else:
        args = ["--synthetic", "-1"]
    code = main(["demo", *args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("emo: error:") and len(err.splitlines()) == 1
    assert not (out / "report.json").exists()
