"""MMI-style loader on clips from the clip maker (real MediaPipe on a warped real photo)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from emo_core.anticipation.mmi import fill_missing, load_mmi
from emo_core.anticipation.peak import PeakConfig, peak_activation
from emo_core.cli import main
from emo_core.datasets.human import HumanSequenceDataset
from emo_core.errors import InputError


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from emo_core.people.clip import make_clip

    root = tmp_path_factory.mktemp("mmi")
    make_clip("smile", root / "s01" / "smile.mp4", seconds=1.5, size=256, seed=1)
    return root


def test_sidecar_json_clip_to_sequence(clip_dir):
    dataset, report = load_mmi(clip_dir)
    assert len(dataset) == 1 and report.skipped == []
    seq = dataset[0]
    assert seq.label == "smile" and seq.fps == pytest.approx(30.0)
    assert seq.landmarks.shape == (45, 113, 3) and np.all(np.isfinite(seq.landmarks))
    assert 0 < seq.onset_frame < seq.apex_frame
    # The paper's offline algorithm finds the smile in landmarks MediaPipe extracted from pixels.
    found = peak_activation(seq.landmarks, PeakConfig(eye_weight=0.0))
    assert abs(found.target_frame - seq.apex_frame) <= 4
    assert seq.onset_frame - 3 <= found.peak_frame < found.target_frame


def test_labels_csv_reports_unusable_videos(clip_dir, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(clip_dir / "s01" / "smile.mp4", videos / "a.mp4")
    (videos / "broken.mp4").write_bytes(b"\x00\x01 not a video")
    labels = tmp_path / "labels.csv"
    labels.write_text("video,subject,label,onset_frame,apex_frame\n"
                      "a.mp4,S001,happiness,10,20\nbroken.mp4,S002,surprise,,\nmissing.mp4,S003,fear,,\n")
    dataset, report = load_mmi(videos, labels)
    assert [s.subject for s in dataset] == ["S001"] and dataset[0].label == "happiness"
    assert (dataset[0].onset_frame, dataset[0].apex_frame) == (10, 20)
    assert len(report.skipped) == 2 and any("broken.mp4" in s for s in report.skipped)
    with pytest.raises(InputError):
        load_mmi(videos, tmp_path / "nowhere.csv")


def test_fill_missing_interpolates_and_refuses_empty():
    pts = np.zeros((5, 113, 3), np.float32)
    pts[0] = 1.0
    pts[4] = 3.0
    detected = np.array([True, False, False, False, True])
    filled = fill_missing(pts, detected)
    np.testing.assert_allclose(filled[2], 2.0)
    with pytest.raises(InputError):
        fill_missing(pts, np.zeros(5, bool))


def test_cli_writes_a_dataset(clip_dir, tmp_path, capsys):
    out = tmp_path / "mmi.npz"
    assert main(["dataset", "mmi", "--videos", str(clip_dir), "--out", str(out)]) == 0
    assert len(HumanSequenceDataset.load(out)) == 1
    assert main(["dataset", "mmi", "--videos", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "not a directory" in capsys.readouterr().err
