"""Human sequence dataset format: round trip, atomic writes, validation and clear errors."""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

from emo_core.datasets.human import SCHEMA_VERSION, HumanSequence, HumanSequenceDataset
from emo_core.errors import InputError, SchemaError


def _seq(t: int = 20, label: str = "smile", subject: str = "p0", seed: int = 0, **kw) -> HumanSequence:
    rng = np.random.default_rng(seed)
    defaults = dict(landmarks=rng.normal(size=(t, 113, 3)).astype(np.float32), fps=30.0, subject=subject,
                    label=label, onset_frame=3, apex_frame=10,
                    intensity=np.linspace(0, 1, t).astype(np.float32))
    defaults.update(kw)
    return HumanSequence(**defaults)


@pytest.fixture()
def dataset() -> HumanSequenceDataset:
    seqs = [
        _seq(20, "smile", "p0", 0, extras={"aus": np.ones((20, 18), np.float32)}),
        _seq(15, "blink", "p0", 1, onset_frame=-1, apex_frame=-1, intensity=np.zeros(15, np.float32)),
        _seq(25, "surprise", "p1", 2, video_id="custom"),
        # A real video: unknown intensity, frames without a face, no AU tracks.
        _seq(12, "smile", "p1", 3, intensity=None, detected=np.arange(12) % 5 != 0,
             landmarks=np.where((np.arange(12) % 5 == 0)[:, None, None], np.nan,
                                np.zeros((12, 113, 3), np.float32))),
    ]
    return HumanSequenceDataset(seqs, meta={"seed": 7, "note": "test"})


def _arrays(path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _rewrite(path, arrays) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_round_trip(tmp_path, dataset):
    path = dataset.save(tmp_path / "people.npz")
    loaded = HumanSequenceDataset.load(path)
    assert len(loaded) == 4 and loaded.meta == {"seed": 7, "note": "test"}
    for a, b in zip(dataset, loaded):
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        np.testing.assert_array_equal(a.intensity, b.intensity)
        np.testing.assert_array_equal(a.detected, b.detected)
        assert (a.fps, a.subject, a.label, a.video_id, a.onset_frame, a.apex_frame) == \
               (b.fps, b.subject, b.label, b.video_id, b.onset_frame, b.apex_frame)
    assert loaded[0].extras["aus"].shape == (20, 18)
    assert np.all(np.isnan(loaded[1].extras["aus"]))      # missing extras are NaN, not invented
    assert loaded[2].video_id == "custom" and loaded[0].video_id == "v00000"
    assert np.isnan(loaded[3].intensity).all() and not loaded[3].detected[0]
    assert loaded.subjects == ["p0", "p1"] and loaded[1].has_expression is False


def test_file_layout_is_plain_arrays(tmp_path, dataset):
    path = dataset.save(tmp_path / "people.npz")
    a = _arrays(path)                                     # loads with allow_pickle=False
    assert int(a["schema_version"]) == SCHEMA_VERSION and str(a["format"]) == "emo.human_sequences"
    assert a["landmarks"].shape == (72, 113, 3) and a["landmarks"].dtype == np.float32
    assert a["offsets"].tolist() == [0, 20, 35, 60, 72]
    assert a["subject"].dtype.kind == "U" and a["label"].dtype.kind == "U"


def test_save_is_atomic_and_replaces(tmp_path, dataset):
    path = tmp_path / "people.npz"
    dataset.save(path)
    dataset[:2].save(path)                                # overwrite with a smaller dataset
    assert len(HumanSequenceDataset.load(path)) == 2
    assert sorted(os.listdir(tmp_path)) == ["people.npz"]  # no temp files left behind


def test_missing_and_corrupt_files(tmp_path, dataset):
    with pytest.raises(InputError, match="not found"):
        HumanSequenceDataset.load(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file")
    with pytest.raises(InputError, match="not a readable"):
        HumanSequenceDataset.load(junk)
    path = dataset.save(tmp_path / "people.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError):
        HumanSequenceDataset.load(truncated)


def test_pickled_objects_are_refused(tmp_path, dataset):
    path = dataset.save(tmp_path / "people.npz")
    arrays = _arrays(path)
    arrays["subject"] = np.array([{"evil": 1}] * 4, dtype=object)
    _rewrite(path, arrays)
    with pytest.raises(InputError):
        HumanSequenceDataset.load(path)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("offsets"), "missing offsets"),
    (lambda a: a.update(schema_version=np.array(SCHEMA_VERSION + 1)), "schema version"),
    (lambda a: a.update(format=np.array("something.else")), "format"),
    (lambda a: a.update(landmark_order=a["landmark_order"][::-1].copy()), "landmark order"),
    (lambda a: a.update(space=np.array(0)), "space"),
    (lambda a: a.update(offsets=np.array([0, 20, 35, 60, 99])), "offsets"),
    (lambda a: a.update(fps=a["fps"][:2]), "fps"),
    (lambda a: a.update(intensity=a["intensity"][:-1]), "intensity"),
    (lambda a: a.update(apex_frame=np.array([10, -1, 99, 10])), "apex_frame"),
    (lambda a: a.update(meta=np.array("{not json")), "meta"),
])
def test_mismatched_files_get_clear_schema_errors(tmp_path, dataset, change, message):
    path = dataset.save(tmp_path / "people.npz")
    arrays = _arrays(path)
    change(arrays)
    _rewrite(path, arrays)
    with pytest.raises(SchemaError, match=message):
        HumanSequenceDataset.load(path)


def test_nan_in_a_detected_frame_is_rejected(tmp_path, dataset):
    path = dataset.save(tmp_path / "people.npz")
    arrays = _arrays(path)
    arrays["landmarks"][3, 0, 0] = np.nan
    _rewrite(path, arrays)
    with pytest.raises(SchemaError, match="NaN"):
        HumanSequenceDataset.load(path)


def test_sequence_validation():
    with pytest.raises(SchemaError, match="landmarks"):
        _seq(landmarks=np.zeros((10, 112, 3)))
    with pytest.raises(SchemaError, match="landmarks"):
        _seq(landmarks=np.zeros((10, 113, 2)))
    with pytest.raises(SchemaError, match="before onset"):
        _seq(onset_frame=12, apex_frame=10)
    with pytest.raises(SchemaError, match=r"\[0, 1\]"):
        _seq(intensity=np.full(20, 1.5, np.float32))
    with pytest.raises(SchemaError, match="fps"):
        _seq(fps=0)
    with pytest.raises(SchemaError, match="outside"):
        _seq(apex_frame=20)
    seq = _seq(onset_frame=None, apex_frame=None)         # unknown truth (e.g. MMI without labels)
    assert seq.onset_frame == -1 and seq.apex_frame == -1


def test_empty_dataset_cannot_be_saved(tmp_path):
    with pytest.raises(InputError, match="empty"):
        HumanSequenceDataset([]).save(tmp_path / "x.npz")


def test_split_per_subject_and_filter(dataset):
    seqs = [_seq(12, "smile", f"p{s}", s * 10 + v) for s in range(3) for v in range(10)]
    ds = HumanSequenceDataset(seqs)
    train, test = ds.split_per_subject(0.8, seed=1)
    assert len(train) == 24 and len(test) == 6
    for subject in ds.subjects:                           # every subject in both, 8/2 each
        assert sum(s.subject == subject for s in train) == 8
        assert sum(s.subject == subject for s in test) == 2
    assert {id(s) for s in train}.isdisjoint(id(s) for s in test)
    assert len(dataset.filter(labels=["smile"])) == 2
    assert len(dataset.filter(expressions_only=True)) == 3
    assert len(dataset.filter(subjects=["p1"])) == 2


def test_in_memory_bytes_round_trip(dataset):
    blob = dataset.to_bytes()
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert "landmarks.npy" in zf.namelist()
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        loaded = HumanSequenceDataset.from_arrays({k: npz[k] for k in npz.files})
    assert len(loaded) == len(dataset)
