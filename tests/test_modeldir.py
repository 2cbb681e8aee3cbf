"""Whole model directories (emo_core.modeldir): written atomically, read back checked.

The predictor + detector scorer pair, the inverse model and the shipped models; a mixed or
tampered directory is refused in one line; a writer killed at any moment leaves the old set or the
new one; ``emo demo``'s outputs are replaced as a set.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

# The saves under test write torch-trained models (the [train] extra); the runtime install skips them.
pytest.importorskip("torch")

from emo_core.anticipation.predictor import DeltaPredictor, ExpressionPredictor, new_card
from emo_core.anticipation.scorer import ExpressionScorer, ScorerSpec
from emo_core.errors import InputError, SchemaError
from emo_core.modeldir import MANIFEST_KEY, ModelDirWriter, OutputSet, clean_stale, seal, sha256_file
from emo_core.resources import data_path
from emo_core.selfmodel.inverse import InverseModel


def _pair(tag: int) -> tuple[ExpressionPredictor, ExpressionScorer]:
    """A small predictor and scorer whose weights and cards say which save (``tag``) they are."""
    import torch

    torch.manual_seed(tag)
    module = DeltaPredictor(16)
    predictor = ExpressionPredictor(module, new_card(module, tag=tag))
    spec = ScorerSpec(hidden=8)
    rng = np.random.default_rng(tag)
    scorer = ExpressionScorer(rng.normal(size=(spec.n_features, 8)).astype(np.float32), np.zeros(8, np.float32),
                              np.full(8, float(tag), np.float32), float(tag), spec, {"tag": tag})
    return predictor, scorer


def _save_pair(path: Path, tag: int) -> None:
    predictor, scorer = _pair(tag)
    with ModelDirWriter(path) as writer:
        predictor.save(path, writer=writer)
        scorer.save(path, writer=writer)


def _load_pair(path: Path) -> tuple[int, int]:
    predictor, scorer = ExpressionPredictor.load(path), ExpressionScorer.load(path)
    return predictor.card["tag"], int(scorer.b2)


def test_pair_round_trip_with_a_manifest_of_every_file(tmp_path) -> None:
    path = tmp_path / "model"
    _save_pair(path, 1)
    assert sorted(p.name for p in path.iterdir()) == ["card.json", "detector.json", "detector.safetensors",
                                                      "model.safetensors"]
    assert _load_pair(path) == (1, 1)
    cards = [json.loads((path / n).read_text()) for n in ("card.json", "detector.json")]
    assert cards[0][MANIFEST_KEY] == cards[1][MANIFEST_KEY]
    manifest = cards[0][MANIFEST_KEY]
    assert manifest["cards"] == ["card.json", "detector.json"]
    assert manifest["sha256"] == {n: sha256_file(path / n) for n in ("detector.safetensors", "model.safetensors")}
    # Ordinary permissions (not mkstemp's private 0600), and nothing left beside the directory.
    old = os.umask(0o022)
    try:
        _save_pair(path, 2)
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()} == {0o644}
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_saving_alone_replaces_the_whole_directory(tmp_path) -> None:
    """A predictor saved over a directory with an older detector does not keep that detector."""
    path = tmp_path / "model"
    _save_pair(path, 1)
    predictor, _ = _pair(2)
    predictor.save(path)
    assert not (path / "detector.json").exists()
    assert ExpressionPredictor.load(path).card["tag"] == 2


@pytest.mark.parametrize("mix, message", [
    ("old detector", "is mixed or damaged: detector.safetensors does not match"),
    ("old detector card", "is mixed: detector.json comes from another save"),
    ("old weights", "mixed or damaged: model.safetensors does not match"),
    ("bit flip", "mixed or damaged: detector.safetensors does not match"),
    ("missing", "incomplete: detector.safetensors"),
])
def test_mixed_or_tampered_directories_are_refused(tmp_path, mix, message) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _save_pair(old, 1)
    _save_pair(new, 2)
    if mix == "old detector":
        for name in ("detector.json", "detector.safetensors"):
            shutil.copy(old / name, new / name)
    elif mix == "old detector card":
        shutil.copy(old / "detector.json", new / "detector.json")
    elif mix == "old weights":
        shutil.copy(old / "model.safetensors", new / "model.safetensors")
    elif mix == "bit flip":
        raw = bytearray((new / "detector.safetensors").read_bytes())
        raw[-3] ^= 0x10
        (new / "detector.safetensors").write_bytes(bytes(raw))
    else:
        (new / "detector.safetensors").unlink()
    with pytest.raises(SchemaError, match=message):
        _load_pair(new)


@pytest.mark.parametrize("content, error, message", [
    (b"[1, 2, 3]", SchemaError, "a model card is a JSON object, got list"),
    (b'"card"', SchemaError, "a model card is a JSON object, got str"),
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", SchemaError, "is not a JSON model card"),
    (b"{\"format\": ", SchemaError, "is not a JSON model card"),
    (b"", SchemaError, "is not a JSON model card"),
])
def test_cards_of_the_wrong_type_are_one_line_errors(tmp_path, content, error, message) -> None:
    path = tmp_path / "model"
    _save_pair(path, 1)
    inverse = tmp_path / "inverse"
    shutil.copytree(data_path("inverse"), inverse)
    for directory, card, load in ((path, "card.json", ExpressionPredictor.load),
                                  (path, "detector.json", ExpressionScorer.load),
                                  (inverse, "card.json", InverseModel.load)):
        saved = (directory / card).read_bytes()
        (directory / card).write_bytes(content)
        with pytest.raises(error, match=message) as info:
            load(directory)
        assert "\n" not in str(info.value)
        (directory / card).write_bytes(saved)


def test_a_card_with_wrong_typed_fields_is_a_schema_error(tmp_path) -> None:
    path = tmp_path / "model"
    _save_pair(path, 1)
    card = json.loads((path / "card.json").read_text())
    card["architecture"] = ["delta"]
    (path / "card.json").write_text(json.dumps(card))
    with pytest.raises(SchemaError, match="'architecture' must be an object"):
        ExpressionPredictor.load(path)
    card = json.loads((path / "detector.json").read_text())
    card["spec"] = [2, 3]
    (path / "detector.json").write_text(json.dumps(card))
    with pytest.raises(SchemaError, match="'spec' is not an object"):
        ExpressionScorer.load(path)


def test_the_shipped_models_carry_manifests_and_load(tmp_path) -> None:
    for name, cards in (("predictor", ["card.json", "detector.json"]), ("inverse", ["card.json"])):
        directory = data_path(name)
        for card_name in cards:
            manifest = json.loads((directory / card_name).read_text())[MANIFEST_KEY]
            assert manifest["cards"] == cards
            assert all(sha256_file(directory / f) == digest for f, digest in manifest["sha256"].items())
    inverse_card = json.loads((data_path("inverse") / "card.json").read_text())
    assert inverse_card[MANIFEST_KEY]["sha256"]["model.safetensors"] == inverse_card["weights"]["sha256"]
    ExpressionPredictor.load()
    ExpressionScorer.load()
    InverseModel.load()


def test_legacy_cards_without_a_manifest_still_load_and_seal_adds_one(tmp_path, caplog) -> None:
    legacy = tmp_path / "legacy"
    shutil.copytree(data_path("predictor"), legacy)
    for name in ("card.json", "detector.json"):
        card = json.loads((legacy / name).read_text())
        del card[MANIFEST_KEY]
        (legacy / name).write_text(json.dumps(card))
    weights = (legacy / "model.safetensors").read_bytes()
    ExpressionPredictor.load(legacy)
    assert "without file checksums" in caplog.text
    seal(legacy, ["card.json", "detector.json"])
    assert (legacy / "model.safetensors").read_bytes() == weights          # bytes untouched
    assert MANIFEST_KEY in json.loads((legacy / "card.json").read_text())
    ExpressionPredictor.load(legacy)


def test_a_failed_save_leaves_the_old_directory_and_no_temp(tmp_path) -> None:
    path = tmp_path / "model"
    _save_pair(path, 1)
    predictor, scorer = _pair(2)
    with pytest.raises(KeyboardInterrupt):
        with ModelDirWriter(path) as writer:
            predictor.save(path, writer=writer)
            raise KeyboardInterrupt              # Ctrl-C (or SIGTERM) before the scorer is added
    assert _load_pair(path) == (1, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_model_directory_where_a_file_is_is_an_input_error(tmp_path) -> None:
    (tmp_path / "model").write_text("not a directory")
    with pytest.raises(InputError, match="it is a file"):
        _save_pair(tmp_path / "model", 1)
    with pytest.raises(InputError, match="cannot write model directory"):
        _save_pair(Path("/proc/emo_model"), 1)


KILLER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_modeldir import _save_pair
    from pathlib import Path
    path, tag = Path(sys.argv[1]), 0
    print("ready", flush=True)
    while True:
        tag = 1 - tag
        _save_pair(path, tag)
    """)


def test_killing_a_writer_at_any_moment_leaves_old_or_new_never_a_mix(tmp_path) -> None:
    """A process re-saving two different pairs into one directory is SIGKILLed at 12 random moments;
    each time the directory loads, whole: predictor and scorer from the same save. The next writer
    removes the temp directory the killed one left."""
    path = tmp_path / "model"
    _save_pair(path, 0)
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(tests=str(Path(__file__).parent)))
    rng = np.random.default_rng(16)
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.3)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        predictor_tag, scorer_tag = _load_pair(path)
        assert predictor_tag == scorer_tag
    _save_pair(path, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killer.py", "model"]


def test_output_set_is_replaced_together_or_not_at_all(tmp_path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    for name in ("side_by_side.mp4", "timeline.png", "report.json"):
        (out / name).write_text(f"old {name}")
    (out / "notes.txt").write_text("the user's own file")
    with pytest.raises(KeyboardInterrupt):
        with OutputSet(out) as outputs:
            outputs.stage("side_by_side.mp4").write_text("new video")
            outputs.write_bytes("timeline.png", b"new plot")
            raise KeyboardInterrupt              # stopped before the report
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "side_by_side.mp4": "old side_by_side.mp4", "timeline.png": "old timeline.png",
        "report.json": "old report.json", "notes.txt": "the user's own file"}
    # A temp file a killed run left (its pid is gone) is cleaned by the next run.
    stale = out / ".report.json.tmp-999999999-abcd"
    stale.write_text("half")
    (out / "..side_by_side.mp4.tmp-999999999-abcd.x1y2.mp4").write_text("a video writer's own temp")
    with OutputSet(out) as outputs:
        outputs.stage("side_by_side.mp4").write_text("new video")
        outputs.write_bytes("timeline.png", b"new plot")
        outputs.write_bytes("report.json", b"{}")
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "side_by_side.mp4": "new video", "timeline.png": "new plot", "report.json": "{}",
        "notes.txt": "the user's own file"}
    assert clean_stale(out / "report.json") == []
