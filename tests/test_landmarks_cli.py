"""`emo landmarks` and the camera sources on real pixels, including corrupt inputs."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from emo_core.cli import main
from emo_core.errors import InputError
from emo_core.perception.sources import ImageFolderSource, VideoFileSource, open_source, read_image
from emo_core.perception.track import LandmarkTrack


def _write_png(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _write_video(path, frames, fps=30):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _shifted(image, dx):
    matrix = np.float32([[1, 0, dx], [0, 1, 0]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def photo_video(tmp_path_factory, face_photo):
    frames = [_shifted(face_photo, 2 * i) for i in range(20)] + [np.full_like(face_photo, 90)] * 4
    return _write_video(tmp_path_factory.mktemp("video") / "astronaut.mp4", frames)


def test_image_json_contract(tmp_path, face_photo, capsys):
    image = _write_png(tmp_path / "face.png", face_photo)
    assert main(["landmarks", str(image), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["face_detected"] is True and 0.5 < out["confidence"] <= 1
    assert np.array(out["points_image"]).shape == (113, 2)
    assert np.array(out["points_metric"]).shape == (113, 3)


def test_no_face_is_not_an_error(tmp_path, capsys):
    image = _write_png(tmp_path / "blank.png", np.full((240, 320, 3), 200, np.uint8))
    assert main(["landmarks", str(image), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"face_detected": False, "confidence": 0.0, "points_image": [], "points_metric": []}


def test_video_roundtrips_to_npz(tmp_path, photo_video, static_extractor, face_photo):
    out = tmp_path / "track.npz"
    assert main(["landmarks", str(photo_video), "--out", str(out)]) == 0
    track = LandmarkTrack.load(out)
    assert len(track) == 24 and track.fps == pytest.approx(30.0)
    assert track.detected[:20].all() and not track.detected[20:].any()
    np.testing.assert_allclose(track.stamps, np.arange(24) / 30)
    assert track.points_metric.shape == (24, 113, 3) and track.points_image.shape == (24, 113, 2)
    # The face only slid sideways, so its metric landmarks match the photo's (see test_perception).
    still = static_extractor.process(face_photo)
    error = np.linalg.norm(track.points_metric[:20, :, :2] - still.metric[:, :2], axis=2).mean()
    assert error < 0.035
    assert track.points_image[19, :, 0].mean() > track.points_image[0, :, 0].mean()


def test_image_folder_source(tmp_path, face_photo, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        _write_png(folder / f"{i:03d}.png", _shifted(face_photo, 4 * i))
    (folder / "notes.txt").write_text("ignored")
    source = ImageFolderSource(folder, fps=10)
    stamps = [frame.stamp for frame in source]
    assert stamps == [0.0, 0.1, 0.2]
    out = tmp_path / "folder.npz"
    assert main(["landmarks", str(folder), "--out", str(out), "--fps", "10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["detected"] == 3
    looped = ImageFolderSource(folder, fps=10, loop=True)
    assert [looped.read().stamp for _ in range(5)][-1] == pytest.approx(0.4)


def test_looping_video_keeps_time_running(photo_video):
    source = VideoFileSource(photo_video, loop=True)
    stamps = [source.read().stamp for _ in range(30)]
    assert np.all(np.diff(stamps) > 0)
    source.close()


@pytest.mark.parametrize("name,content", [
    ("random.png", bytes(range(256)) * 8),
    ("empty.jpg", b""),
    ("text.jpg", b"this is not a jpeg\xff\xd9"),
])
def test_corrupt_images_exit_2(tmp_path, name, content, capsys):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["landmarks", str(path), "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emo: error:") and name in err[0]


def test_truncated_files_exit_2(tmp_path, face_photo, photo_video, capsys):
    png = _write_png(tmp_path / "whole.png", face_photo).read_bytes()
    ok, jpg = cv2.imencode(".jpg", face_photo)
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    (tmp_path / "cut.jpg").write_bytes(jpg.tobytes()[: jpg.size // 2])
    (tmp_path / "cut.mp4").write_bytes(photo_video.read_bytes()[:3000])
    for name in ("cut.png", "cut.jpg"):
        assert main(["landmarks", str(tmp_path / name), "--json"]) == 2
    assert main(["landmarks", str(tmp_path / "cut.mp4"), "--out", str(tmp_path / "x.npz")]) == 2
    assert not (tmp_path / "x.npz").exists()
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("emo: error:") for line in errors)
    with pytest.raises(InputError, match="truncated"):
        read_image(tmp_path / "cut.jpg")


def test_missing_inputs_and_misuse(tmp_path, photo_video, face_photo):
    with pytest.raises(InputError, match="no such"):
        open_source(tmp_path / "nothing.mp4")
    with pytest.raises(InputError, match="no images"):
        open_source(tmp_path)
    assert main(["landmarks", str(tmp_path / "nothing.png")]) == 2
    assert main(["landmarks", str(photo_video)]) == 2  # a video needs --out
    image = _write_png(tmp_path / "face.png", face_photo)
    assert main(["landmarks", str(image), "--out", str(tmp_path / "a.npz")]) == 2


def test_cli_error_is_one_line_without_traceback(tmp_path):
    """Through a real process: the user sees exactly one line on stderr, exit code 2."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    proc = subprocess.run([sys.executable, "-m", "emo_core", "landmarks", str(bad), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stdout == ""
