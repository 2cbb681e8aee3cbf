import numpy as np
import pytest

from emo_core import schema
from emo_core.errors import SchemaError


def test_counts_match_the_paper():
    assert len(schema.JAW) == 21 and len(schema.LIPS) == 40
    assert len(schema.LEFT_EYE) + len(schema.RIGHT_EYE) == 32
    assert len(schema.LEFT_BROW) + len(schema.RIGHT_BROW) == 20
    assert schema.MP_INDICES.shape == (113,)
    assert len(set(schema.MP_INDICES.tolist())) == 113
    assert schema.MP_INDICES.max() < schema.N_MEDIAPIPE


def test_canonical_order_is_upper_then_lower_each_ascending():
    upper, lower = schema.MP_INDICES[schema.UPPER], schema.MP_INDICES[schema.LOWER]
    assert upper.size == 52 and lower.size == 61
    assert np.all(np.diff(upper) > 0) and np.all(np.diff(lower) > 0)
    eyes_brows = set(schema.LEFT_EYE + schema.RIGHT_EYE + schema.LEFT_BROW + schema.RIGHT_BROW)
    assert set(upper.tolist()) == eyes_brows
    assert set(lower.tolist()) == set(schema.JAW + schema.LIPS)


def test_regions_cover_everything_once_and_keep_contour_order():
    positions = np.concatenate(list(schema.REGIONS.values()))
    assert sorted(positions.tolist()) == list(range(113))
    # Contour order is the paper's listing order, e.g. the jaw runs ear to ear through the chin.
    assert schema.MP_INDICES[schema.REGIONS["jaw"]].tolist() == list(schema.JAW)
    assert all(schema.REGION_OF[i] == "lips" for i in schema.REGIONS["lips"])
    assert schema.canonical_position(schema.JAW[0]) in schema.REGIONS["jaw"]
    with pytest.raises(SchemaError):
        schema.canonical_position(1)  # the nose tip is not an expression landmark


def test_commands():
    assert schema.N_COMMANDS == 11
    assert schema.COMMAND_NAMES[0] == "brow_inner" and schema.COMMAND_NAMES[-1] == "jaw_open"
    assert schema.UPPER_COMMANDS + schema.LOWER_COMMANDS == schema.COMMAND_NAMES


def test_check_points_rejects_bad_arrays():
    good = np.zeros((113, 2))
    assert schema.check_points(good).dtype == np.float32
    with pytest.raises(SchemaError, match="shape"):
        schema.check_points(np.zeros((112, 2)))
    bad = good.copy()
    bad[5, 1] = np.nan
    with pytest.raises(SchemaError, match="NaN"):
        schema.check_points(bad)


def test_face_container():
    face = schema.Face.missing(stamp=1.5, camera="left")
    assert not face.detected and face.stamp == 1.5 and face.xy.shape == (113, 2)
