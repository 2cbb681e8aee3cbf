"""The bad-input catalogue: every ``emo`` command against each class of bad input.

Classes: missing file, a directory where a file belongs (and a file where a directory belongs),
empty, truncated, bit-flipped, another type renamed, unwritable output (/proc, under a file, onto a
folder), NaN / inf / negative / zero / huge numbers, unknown names, wrong-typed JSON, binary YAML.
Each case must exit 2 with exactly one ``emo: error:`` line on stderr, no traceback, and write
nothing: the output location is unchanged and no temp file is left beside it. (Bit flips inside
compressed media -- a JPEG or an mp4 that still decodes, with artefacts -- are accepted, as any
decoder accepts them; bit flips in datasets and models are refused.)
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emo_core.cli import main
from emo_core.resources import config_path, data_path


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, str]:
    """Valid inputs, each bad variant, and places to (not) write to."""
    root = tmp_path_factory.mktemp("bad_inputs")
    a: dict[str, Path] = {}
    assert main(["sim", "sequences", "--subjects", "2", "--videos", "2", "--out", str(root / "people.npz"),
                 "--quiet"]) == 0
    assert main(["babble", "--sim", "--samples", "20", "--out", str(root / "babble"), "--quiet"]) == 0
    a["npz"] = root / "people.npz"
    a["babble"] = root / "babble"
    a["mp4"] = root / "clip.mp4"
    shutil.copy(data_path("demo_clip.mp4"), a["mp4"])
    shutil.copy(data_path("demo_clip.json"), root / "clip.json")
    import cv2
    from skimage import data as skdata

    a["jpg"] = root / "face.jpg"
    cv2.imwrite(str(a["jpg"]), np.ascontiguousarray(skdata.astronaut()[:, :, ::-1]))
    assert main(["eval", "video", str(a["mp4"]), "--max-frames", "40", "--tracks", str(root / "tracks"),
                 "--quiet", "--json"]) == 0
    a["tracks"] = root / "tracks"
    a["tracks_bad"] = root / "tracks_bad"
    a["tracks_bad"].mkdir()
    raw = next(a["tracks"].glob("*.npz")).read_bytes()
    (a["tracks_bad"] / "cut.npz").write_bytes(raw[: len(raw) // 2])
    a["model"] = root / "predictor"
    shutil.copytree(data_path("predictor"), a["model"])
    a["inverse"] = root / "inverse"
    shutil.copytree(data_path("inverse"), a["inverse"])
    rng = np.random.default_rng(16)
    # Bad variants.
    a["missing"] = root / "missing.npz"
    a["dir"] = root / "a_directory"
    a["dir"].mkdir()
    a["file"] = root / "a_file.txt"
    a["file"].write_text("a file where a directory belongs\n")
    a["empty"] = root / "empty.npz"
    a["empty"].write_bytes(b"")
    for name, src in (("npz", a["npz"]), ("mp4", a["mp4"]), ("jpg", a["jpg"])):
        raw = src.read_bytes()
        a[f"trunc_{name}"] = root / f"truncated.{name}"
        a[f"trunc_{name}"].write_bytes(raw[: len(raw) // 3])
        a[f"trunc90_{name}"] = root / f"truncated90.{name}"        # most of it there: decoders half-read it
        a[f"trunc90_{name}"].write_bytes(raw[: len(raw) * 9 // 10])
        flipped = bytearray(raw)
        for i in rng.integers(len(raw) // 4, len(raw), 64):
            flipped[i] ^= 0xFF
        a[f"flip_{name}"] = root / f"flipped.{name}"
        a[f"flip_{name}"].write_bytes(bytes(flipped))
    a["png_as_npz"] = root / "picture.npz"
    a["png_as_npz"].write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    a["bare_npy_as_npz"] = root / "bare.npz"          # an .npy array under an .npz name
    with open(a["bare_npy_as_npz"], "wb") as f:
        np.save(f, np.zeros(3))
    a["npz_as_mp4"] = root / "data.mp4"
    shutil.copy(a["npz"], a["npz_as_mp4"])
    a["npz_as_jpg"] = root / "data.jpg"
    shutil.copy(a["npz"], a["npz_as_jpg"])
    a["yaml_binary"] = root / "binary.yaml"
    a["yaml_binary"].write_bytes(bytes(rng.integers(0, 256, 512, dtype=np.uint8)))
    a["yaml_empty"] = root / "empty.yaml"
    a["yaml_empty"].write_text("")
    a["yaml_list"] = root / "list.yaml"
    a["yaml_list"].write_text("- 1\n- 2\n")
    a["yaml_bad"] = root / "bad.yaml"
    a["yaml_bad"].write_text("servos: [unclosed\n")
    a["bag_binary"] = root / "bag_binary"
    a["bag_binary"].mkdir()
    shutil.copy(a["yaml_binary"], a["bag_binary"] / "metadata.yaml")
    a["json_list"] = root / "list.json"
    a["json_list"].write_text("[1, 2, 3]\n")
    a["json_binary"] = root / "binary.json"
    a["json_binary"].write_bytes(bytes(rng.integers(128, 256, 256, dtype=np.uint8)))
    a["model_list_card"] = root / "list_card_model"
    shutil.copytree(data_path("predictor"), a["model_list_card"])
    (a["model_list_card"] / "card.json").write_text("[]\n")
    a["inverse_list_card"] = root / "list_card_inverse"
    shutil.copytree(data_path("inverse"), a["inverse_list_card"])
    (a["inverse_list_card"] / "card.json").write_text("[]\n")
    a["model_flipped"] = root / "flipped_model"
    shutil.copytree(data_path("predictor"), a["model_flipped"])
    raw = bytearray((a["model_flipped"] / "model.safetensors").read_bytes())
    raw[-100] ^= 0x01
    (a["model_flipped"] / "model.safetensors").write_bytes(bytes(raw))
    # Where outputs must not appear.
    a["outs"] = root / "outs"
    a["outs"].mkdir()
    a["out"] = a["outs"] / "result"
    a["proc"] = Path("/proc/emo_no_such_dir/out")
    a["under_file"] = a["file"] / "out"
    a["servos"] = config_path("servos.yaml")
    return {k: str(v) for k, v in a.items()}


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


QUICK_PREDICTOR = "--epochs 1 --pairs-per-epoch 256 --no-detector --quiet"

# Each case: (id, argv with {asset} placeholders).
CASES: list[tuple[str, str]] = [
    # --- train predictor
    ("train-predictor/missing", "train predictor --data {missing} --out {out} --quiet"),
    ("train-predictor/dir", "train predictor --data {dir} --out {out} --quiet"),
    ("train-predictor/empty", "train predictor --data {empty} --out {out} --quiet"),
    ("train-predictor/truncated", "train predictor --data {trunc_npz} --out {out} --quiet"),
    ("train-predictor/bitflip", "train predictor --data {flip_npz} --out {out} --quiet"),
    ("train-predictor/png-as-npz", "train predictor --data {png_as_npz} --out {out} --quiet"),
    ("train-predictor/epochs-0", "train predictor --data {npz} --out {out} --epochs 0"),
    ("train-predictor/batch-0", "train predictor --data {npz} --out {out} --batch-size 0"),
    ("train-predictor/lr-nan", "train predictor --data {npz} --out {out} --lr nan"),
    ("train-predictor/lr-inf", "train predictor --data {npz} --out {out} --lr inf"),
    ("train-predictor/lr-huge", "train predictor --data {npz} --out {out} --lr 1e30"),
    ("train-predictor/lr-negative", "train predictor --data {npz} --out {out} --lr -0.1"),
    ("train-predictor/hidden-huge", "train predictor --data {npz} --out {out} --hidden 10000000"),
    ("train-predictor/threads-0", "train predictor --data {npz} --out {out} --threads 0"),
    ("train-predictor/arch-unknown", "train predictor --data {npz} --out {out} --arch bogus"),
    ("train-predictor/config-binary", "train predictor --data {npz} --out {out} --config {yaml_binary}"),
    ("train-predictor/config-empty", "train predictor --data {npz} --out {out} --config {yaml_empty}"),
    ("train-predictor/config-list", "train predictor --data {npz} --out {out} --config {yaml_list}"),
    ("train-predictor/config-dir", "train predictor --data {npz} --out {out} --config {dir}"),
    ("train-predictor/folds-1", "train predictor --data {npz} --out {out} --cv subject --folds 1"),
    # (these train for a moment first: the output is checked when the model is saved)
    ("train-predictor/out-is-file", "train predictor --data {npz} --out {file} " + QUICK_PREDICTOR),
    ("train-predictor/out-proc", "train predictor --data {npz} --out {proc} " + QUICK_PREDICTOR),
    ("train-predictor/out-under-file", "train predictor --data {npz} --out {under_file} " + QUICK_PREDICTOR),
    # --- train inverse
    ("train-inverse/missing", "train inverse --data {missing} --out {out} --quiet"),
    ("train-inverse/file-for-dir", "train inverse --data {file} --out {out} --quiet"),
    ("train-inverse/npz-for-dir", "train inverse --data {npz} --out {out} --quiet"),
    ("train-inverse/epochs-0", "train inverse --data {babble} --out {out} --epochs 0"),
    ("train-inverse/lr-nan", "train inverse --data {babble} --out {out} --lr nan"),
    ("train-inverse/hidden-0", "train inverse --data {babble} --out {out} --hidden 0"),
    ("train-inverse/threads-0", "train inverse --data {babble} --out {out} --threads 0"),
    ("train-inverse/arch-unknown", "train inverse --data {babble} --out {out} --arch bogus"),
    ("train-inverse/noise-word", "train inverse --data {babble} --out {out} --input-noise lots"),
    ("train-inverse/noise-nan", "train inverse --data {babble} --out {out} --input-noise nan"),
    ("train-inverse/out-is-file", "train inverse --data {babble} --out {file} --epochs 1 --quiet"),
    ("train-inverse/out-under-file", "train inverse --data {babble} --out {under_file} --epochs 1 --quiet"),
    # --- eval predictor
    ("eval-predictor/missing", "eval predictor --data {missing}"),
    ("eval-predictor/truncated", "eval predictor --data {trunc_npz}"),
    ("eval-predictor/threshold-nan", "eval predictor --data {npz} --threshold nan"),
    ("eval-predictor/threshold-2", "eval predictor --data {npz} --threshold 2"),
    ("eval-predictor/model-missing", "eval predictor --data {npz} --model {missing}"),
    ("eval-predictor/model-file", "eval predictor --data {npz} --model {file}"),
    ("eval-predictor/model-list-card", "eval predictor --data {npz} --model {model_list_card}"),
    ("eval-predictor/model-flipped", "eval predictor --data {npz} --model {model_flipped}"),
    ("eval-predictor/inverse-list-card", "eval predictor --data {npz} --inverse {inverse_list_card}"),
    ("eval-predictor/config-binary", "eval predictor --data {npz} --config {yaml_binary}"),
    # --- eval inverse
    ("eval-inverse/missing", "eval inverse --data {missing} --plot none"),
    ("eval-inverse/model-list-card", "eval inverse --data {babble} --model {inverse_list_card} --plot none"),
    ("eval-inverse/twin-binary", "eval inverse --data {babble} --twin-config {yaml_binary} --plot none"),
    ("eval-inverse/max-pairs-0", "eval inverse --data {babble} --max-pairs 0 --plot none"),
    ("eval-inverse/plot-proc", "eval inverse --data {babble} --plot {proc}"),
    # --- eval video
    ("eval-video/missing", "eval video {missing} --quiet"),
    ("eval-video/empty-dir", "eval video {dir} --quiet"),
    ("eval-video/truncated", "eval video {trunc_mp4} --quiet"),
    ("eval-video/npz-as-mp4", "eval video {npz_as_mp4} --quiet"),
    ("eval-video/max-frames-0", "eval video {mp4} --max-frames 0 --quiet"),
    ("eval-video/out-proc", "eval video {mp4} --max-frames 5 --out {proc} --quiet"),
    ("eval-video/tracks-under-file", "eval video {mp4} --max-frames 5 --tracks {under_file} --quiet"),
    ("eval-video/track-truncated", "eval video {tracks_bad}/cut.npz --quiet"),
    ("eval-video/track-is-a-picture", "eval video {png_as_npz} --quiet"),
    ("eval-video/pipeline-unknown", "eval video {tracks} --pipeline bogus=1 --quiet"),
    ("eval-video/pipeline-nan", "eval video {tracks} --pipeline lag_lead_s=.nan --quiet"),
    ("eval-video/pipeline-no-value", "eval video {tracks} --pipeline lag_lead --quiet"),
    ("eval-video/sim-negative", "eval video {tracks} --sim servo_lag_s=-1 --quiet"),
    ("eval-detector/missing", "eval detector {missing}"),
    ("eval-detector/empty-dir", "eval detector {dir}"),
    ("eval-detector/truncated", "eval detector {tracks_bad}"),
    ("eval-detector/picture-as-track", "eval detector {png_as_npz}"),
    ("eval-detector/people-data-as-track", "eval detector {npz}"),
    ("eval-detector/bare-array", "eval detector {bare_npy_as_npz}"),
    ("eval-detector/detector-nan", "eval detector {tracks} --detector on_probability=.nan"),
    ("eval-detector/detector-unknown", "eval detector {tracks} --detector bogus=1"),
    ("eval-detector/detector-wrong-type", "eval detector {tracks} --detector confirm_frames=two"),
    ("eval-detector/config-binary", "eval detector {tracks} --config {yaml_binary}"),
    ("eval-detector/model-list-card", "eval detector {tracks} --model {model_list_card}"),
    ("eval-detector/model-flipped", "eval detector {tracks} --model {model_flipped}"),
    # --- dataset
    ("dataset-peaks/missing", "dataset peaks --data {missing}"),
    ("dataset-peaks/index-negative", "dataset peaks --data {npz} --index -1"),
    ("dataset-peaks/index-huge", "dataset peaks --data {npz} --index 1000000"),
    ("dataset-mmi/missing", "dataset mmi --videos {missing} --out {out}"),
    ("dataset-mmi/file", "dataset mmi --videos {file} --out {out}"),
    ("dataset-mmi/empty-dir", "dataset mmi --videos {dir} --out {out}"),
    ("dataset-mmi/fps-nan", "dataset mmi --videos {dir} --out {out} --fps nan"),
    ("dataset-mmi/labels-list", "dataset mmi --videos {dir} --out {out} --labels {json_list}"),
    # (realfaces downloads; these are refused before any download starts)
    ("dataset-realfaces/only-unknown", "dataset realfaces --out {out} --only bogus.mp4 --quiet"),
    ("dataset-realfaces/out-is-file", "dataset realfaces --out {file} --quiet"),
    ("dataset-realfaces/out-proc", "dataset realfaces --out {proc} --quiet"),
    ("dataset-realfaces/out-under-file", "dataset realfaces --out {under_file} --quiet"),
    ("dataset-from-bag/missing", "dataset from-bag {missing} --out {out}"),
    ("dataset-from-bag/file", "dataset from-bag {file} --out {out}"),
    ("dataset-from-bag/empty-dir", "dataset from-bag {dir} --out {out}"),
    ("dataset-from-bag/max-gap-0", "dataset from-bag {dir} --out {out} --max-gap 0"),
    ("dataset-from-bag/twice", "dataset from-bag {dir} {dir} --out {out}"),
    ("dataset-from-bag/binary-metadata", "dataset from-bag {bag_binary} --out {out}"),
    # --- bench
    ("bench/unknown", "bench bogus --quick"),
    # --- demo
    ("demo/missing", "demo --video {missing} --out {out} --quiet"),
    ("demo/truncated", "demo --video {trunc_mp4} --out {out} --quiet --synthetic 0"),
    ("demo/npz-as-mp4", "demo --video {npz_as_mp4} --out {out} --quiet --synthetic 0"),
    ("demo/dir", "demo --video {dir} --out {out} --quiet --synthetic 0"),
    ("demo/synthetic-huge", "demo --out {out} --synthetic 1000000000"),
    ("demo/synthetic-negative", "demo --out {out} --synthetic -1"),
    ("demo/latency-nan", "demo --out {out} --input-latency-ms nan"),
    ("demo/max-frames-0", "demo --out {out} --max-frames 0"),
    ("demo/mode-unknown", "demo --out {out} --mode bogus"),
    ("demo/out-is-file", "demo --out {file} --quiet --synthetic 0"),
    ("demo/out-proc", "demo --out {proc} --quiet --synthetic 0"),
    ("demo/out-under-file", "demo --out {under_file} --quiet --synthetic 0"),
    # --- landmarks
    ("landmarks/missing", "landmarks {missing}"),
    ("landmarks/empty", "landmarks {empty}"),
    ("landmarks/truncated-jpg", "landmarks {trunc_jpg}"),
    ("landmarks/truncated-90-jpg", "landmarks {trunc90_jpg}"),
    ("landmarks/camera-missing", "landmarks 7"),
    ("landmarks/npz-as-jpg", "landmarks {npz_as_jpg}"),
    ("landmarks/truncated-mp4", "landmarks {trunc_mp4} --out {out}"),
    ("landmarks/empty-dir", "landmarks {dir}"),
    ("landmarks/max-faces-0", "landmarks {jpg} --max-faces 0"),
    ("landmarks/fps-nan", "landmarks {dir} --fps nan"),
    ("landmarks/out-proc", "landmarks {mp4} --out {proc}"),
    ("landmarks/out-under-file", "landmarks {mp4} --out {under_file}"),
    ("landmarks/out-onto-dir", "landmarks {mp4} --out {dir}"),
    # --- babble
    ("babble/samples-0", "babble --sim --samples 0 --out {out}"),
    ("babble/samples-huge", "babble --sim --samples 100000000000 --out {out}"),
    ("babble/chunk-0", "babble --sim --samples 5 --out {out} --chunk-size 0"),
    ("babble/noise-nan", "babble --sim --samples 5 --out {out} --noise-std nan"),
    ("babble/mode-unknown", "babble --sim --samples 5 --out {out} --mode bogus"),
    ("babble/config-binary", "babble --sim --samples 5 --out {out} --config {yaml_binary}"),
    ("babble/config-empty", "babble --sim --samples 5 --out {out} --config {yaml_empty}"),
    ("babble/config-list", "babble --sim --samples 5 --out {out} --config {yaml_list}"),
    ("babble/twin-binary", "babble --sim --samples 5 --out {out} --twin-config {yaml_binary}"),
    ("babble/twin-empty", "babble --sim --samples 5 --out {out} --twin-config {yaml_empty}"),
    ("babble/out-is-file", "babble --sim --samples 5 --out {file}"),
    ("babble/out-proc", "babble --sim --samples 5 --out {proc}"),
    ("babble/out-under-file", "babble --sim --samples 5 --out {under_file}"),
    ("babble/no-sim-no-port", "babble --samples 5 --out {out}"),
    # --- servo (no bus at all: every check is before the port)
    ("servo-ping/missing-port", "servo ping --port {missing}"),
    ("servo-ping/baud-0", "servo ping --port {missing} --baud 0"),
    ("servo-ping/config-binary", "servo ping --port {missing} --config {yaml_binary}"),
    ("servo-ping/config-empty", "servo ping --port {missing} --config {yaml_empty}"),
    ("servo-ping/config-bad", "servo ping --port {missing} --config {yaml_bad}"),
    ("servo-ping/config-dir", "servo ping --port {missing} --config {dir}"),
    ("servo-ping/latency-nan", "servo ping --port {missing} --latency-timer nan"),
    ("servo-set/timeout-negative", "servo set --port {missing} --timeout -1 jaw_open=0.5"),
    ("servo-set/value-nan", "servo set --port {missing} jaw_open=nan"),
    ("servo-set/unknown", "servo set --port {missing} nose=0.5"),
    ("servo-home/timeout-inf", "servo home --port {missing} --timeout inf"),
    ("servo-lag/unknown-servo", "servo lag --port {missing} --servo nose"),
    ("servo-lag/step-0", "servo lag --port {missing} --step 0"),
    ("servo-monitor/interval-negative", "servo monitor --port {missing} --interval -1"),
    ("servo-monitor/count-negative", "servo monitor --port {missing} --count -1"),
    ("servo-monitor/port-dir", "servo monitor --port {dir} --count 1"),
    ("servo-monitor/port-file", "servo monitor --port {file} --count 1"),
    ("servo-emulate/link-file", "servo emulate --link {file}"),
    ("servo-emulate/link-under-file", "servo emulate --link {under_file}"),
    ("servo-emulate/drop-nan", "servo emulate --link {out} --drop-rate nan"),
    ("servo-emulate/config-binary", "servo emulate --link {out} --config {yaml_binary}"),
    # --- sim
    ("sim-face/unknown-command", "sim face --commands nose=0.5 --out {out}"),
    ("sim-face/value-nan", "sim face --commands jaw_open=nan --out {out}"),
    ("sim-face/value-word", "sim face --commands jaw_open=wide --out {out}"),
    ("sim-face/size-0", "sim face --size 0 --out {out}"),
    ("sim-face/size-huge", "sim face --size 100000 --out {out}"),
    ("sim-face/config-binary", "sim face --config {yaml_binary} --out {out}"),
    ("sim-face/config-list", "sim face --config {yaml_list} --out {out}"),
    ("sim-face/out-proc", "sim face --out {proc}"),
    ("sim-face/out-under-file", "sim face --out {under_file}"),
    ("sim-face/out-onto-dir", "sim face --out {dir}"),
    ("sim-sequences/subjects-huge", "sim sequences --subjects 100000000 --videos 1 --out {out}"),
    ("sim-sequences/videos-0", "sim sequences --subjects 1 --videos 0 --out {out}"),
    ("sim-sequences/fps-nan", "sim sequences --subjects 1 --videos 1 --out {out} --fps nan"),
    ("sim-sequences/distractors-2", "sim sequences --subjects 1 --videos 1 --out {out} --distractors 2"),
    ("sim-sequences/profile-unknown", "sim sequences --subjects 1 --videos 1 --out {out} --profile bogus"),
    ("sim-sequences/out-proc", "sim sequences --subjects 1 --videos 1 --out {proc} --quiet"),
    ("sim-sequences/out-onto-dir", "sim sequences --subjects 1 --videos 1 --out {dir} --quiet"),
    ("sim-calibration/missing", "sim calibration --real {missing}"),
    ("sim-calibration/file", "sim calibration --real {file}"),
    ("sim-calibration/empty-dir", "sim calibration --real {dir}"),
    ("sim-calibration/manifest-list", "sim calibration --real {tracks} --manifest {json_list}"),
    ("sim-calibration/manifest-binary", "sim calibration --real {tracks} --manifest {json_binary}"),
    ("sim-calibration/truncated-track", "sim calibration --real {tracks_bad}"),
    ("sim-calibration/npz-for-dir", "sim calibration --real {npz}"),
    ("sim-clip/photo-missing", "sim clip --expression smile --seconds 1 --photo {missing} --out {out}.mp4 --quiet"),
    ("sim-clip/photo-truncated", "sim clip --expression smile --seconds 1 --photo {trunc_jpg} --out {out}.mp4 --quiet"),
    ("sim-clip/photo-npz", "sim clip --expression smile --seconds 1 --photo {npz_as_jpg} --out {out}.mp4 --quiet"),
    ("sim-clip/photo-dir", "sim clip --expression smile --seconds 1 --photo {dir} --out {out}.mp4 --quiet"),
    ("sim-clip/photo-truncated-90", "sim clip --expression smile --seconds 1 --photo {trunc90_jpg} --out {out}.mp4"),
    ("sim-clip/expression-unknown", "sim clip --expression bogus --out {out}.mp4 --quiet"),
    ("sim-clip/seconds-0", "sim clip --expression smile --seconds 0 --out {out}.mp4"),
    ("sim-clip/fps-inf", "sim clip --expression smile --fps inf --out {out}.mp4"),
    ("sim-clip/size-huge", "sim clip --expression smile --size 100000 --out {out}.mp4"),
    ("sim-clip/out-proc", "sim clip --expression smile --out {proc}.mp4 --seconds 1 --quiet"),
    ("sim-clip/out-under-file", "sim clip --expression smile --out {under_file}.mp4 --seconds 1 --quiet"),
    # --- bundled data (regenerators; the MediaPipe steps are never reached)
    ("bundled-twin-config/stored-binary", "bundled twin-config --from-stored --check --out {yaml_binary}"),
    ("bundled-twin-config/out-onto-dir", "bundled twin-config --from-stored --out {dir}"),
    ("bundled-twin-config/out-proc", "bundled twin-config --from-stored --out {proc}"),
    ("bundled-face-template/photo-missing", "bundled face-template --photo {missing} --check"),
    ("bundled-face-template/photo-dir", "bundled face-template --photo {dir} --check"),
    ("bundled-demo-clip/seed-negative", "bundled demo-clip --seed -1 --out {out}.mp4"),
    ("bundled-demo-clip/out-proc", "bundled demo-clip --out {proc}.mp4"),
    ("bundled-check-clips/missing", "bundled check-clips {missing}"),
    ("bundled-check-clips/dir", "bundled check-clips {dir}"),
    ("bundled-anchor-template/unknown-flag", "bundled anchor-template --check --bogus"),
    # --- the command line itself
    ("cli/unknown-command", "nosuch"),
    ("cli/unknown-flag", "demo --no-such-flag"),
]


@pytest.mark.parametrize("case, argv", CASES, ids=[c for c, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(assets, capsys, case, argv) -> None:
    outs = Path(assets["outs"])
    before = {p.name for p in outs.parent.iterdir()}
    try:
        code, err = _run(argv.format(**assets).split(), capsys)
        left = sorted(outs.iterdir())
    finally:                                        # one failure must not spoil the next case
        for path in outs.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    lines = err.strip().splitlines()
    assert code == 2, f"{case}: exit {code}\n{err}"
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("emo: error: "), f"{case}: stderr was\n{err}"
    assert "arguments are required" not in err, f"{case}: the case itself is incomplete"
    assert left == [], f"{case}: left {left}"
    assert {p.name for p in outs.parent.iterdir()} == before, f"{case}: wrote beside the inputs"


def test_every_command_is_in_the_catalogue() -> None:
    from emo_core.cli import build_parser

    parser = build_parser()
    commands = set()
    for action in parser._subparsers._group_actions:          # emo <command> [<sub>]
        for name, sub in action.choices.items():
            nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
            commands.update(f"{name}-{s}" for s in nested[0].choices) if nested else commands.add(name)
    covered = {case.split("/")[0] for case, _ in CASES}
    missing = commands - covered
    assert not missing, f"commands without bad-input cases: {sorted(missing)}"


def test_numbers_are_bounded_in_the_help(capsys) -> None:
    """The size limits are stated where the flags are."""
    assert main(["sim", "sequences", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(range 1..10000)" in out and "(range 1..1000)" in out


def test_json_numbers_stay_valid_json(assets, tmp_path, capsys) -> None:
    """--fps nan used to be stored and printed as NaN (invalid JSON); now it is refused up front, and
    what is printed parses."""
    assert main(["landmarks", assets["jpg"], "--json"]) == 0
    json.loads(capsys.readouterr().out)


def test_a_diverged_training_is_refused_not_saved() -> None:
    """--lr is bounded, but a run can still blow up: NaN weights are an error, never a saved model."""
    torch = pytest.importorskip("torch")          # training needs the [train] extra

    from emo_core.cli.anticipation import _refuse_diverged
    from emo_core.errors import InputError

    module = torch.nn.Linear(2, 2)
    _refuse_diverged(module, 0.1)
    with pytest.raises(InputError, match="training diverged"):
        _refuse_diverged(module, float("nan"))
    with torch.no_grad():
        module.weight[0, 0] = float("nan")
    with pytest.raises(InputError, match="training diverged"):
        _refuse_diverged(module, 0.1)
