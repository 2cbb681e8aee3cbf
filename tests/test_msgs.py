"""The msg/ definitions parse as rosidl (via rosbags) and every message round-trips through CDR."""
from __future__ import annotations

import numpy as np
import pytest

from emo_core.messages import MESSAGES, emo_typestore
from emo_core.errors import SchemaError


@pytest.fixture(scope="module")
def store():
    return emo_typestore()


def _header(store, sec: int = 12, nanosec: int = 345_000_000, frame: str = "left_eye"):
    Time = store.types["builtin_interfaces/msg/Time"]
    Header = store.types["std_msgs/msg/Header"]
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame)


def _landmarks(store, seed: int = 0):
    rng = np.random.default_rng(seed)
    FaceLandmarks = store.types["emo_msgs/msg/FaceLandmarks"]
    return FaceLandmarks(
        header=_header(store), face_detected=True, confidence=0.92, space=FaceLandmarks.SPACE_METRIC,
        camera="left", x=rng.normal(size=113).astype(np.float32), y=rng.normal(size=113).astype(np.float32),
        z=rng.normal(size=113).astype(np.float32))


def _roundtrip(store, msg, typename: str):
    raw = store.serialize_cdr(msg, typename)
    return raw, store.deserialize_cdr(raw, typename)


def test_all_messages_are_registered(store):
    for name in MESSAGES:
        assert f"emo_msgs/msg/{name}" in store.types
    FaceLandmarks = store.types["emo_msgs/msg/FaceLandmarks"]
    assert (FaceLandmarks.SPACE_IMAGE, FaceLandmarks.SPACE_METRIC, FaceLandmarks.SPACE_ROBOT) == (0, 1, 2)


def test_face_landmarks_roundtrip(store):
    msg = _landmarks(store)
    raw, back = _roundtrip(store, msg, "emo_msgs/msg/FaceLandmarks")
    assert len(raw) > 3 * 113 * 4
    assert back.header.stamp.sec == 12 and back.header.stamp.nanosec == 345_000_000
    assert back.face_detected and back.camera == "left" and back.space == 1
    np.testing.assert_array_equal(back.x, msg.x)
    np.testing.assert_array_equal(back.z, msg.z)
    assert back.confidence == pytest.approx(0.92, abs=1e-6)


def test_peak_activation_and_prediction_roundtrip(store):
    Peak = store.types["emo_msgs/msg/PeakActivation"]
    window = [_landmarks(store, seed) for seed in range(4)]
    peak = Peak(header=_header(store), resting_face=_landmarks(store, 9), window=window,
                activation=0.31, velocity=2.5)
    _, back = _roundtrip(store, peak, "emo_msgs/msg/PeakActivation")
    assert len(back.window) == 4
    np.testing.assert_array_equal(back.window[3].y, window[3].y)

    Prediction = store.types["emo_msgs/msg/ExpressionPrediction"]
    Duration = store.types["builtin_interfaces/msg/Duration"]
    pred = Prediction(header=_header(store), target_face=_landmarks(store, 5),
                      time_to_apex=Duration(sec=0, nanosec=640_000_000), confidence=0.7)
    _, back = _roundtrip(store, pred, "emo_msgs/msg/ExpressionPrediction")
    assert back.time_to_apex.nanosec == 640_000_000
    np.testing.assert_array_equal(back.target_face.x, pred.target_face.x)


def test_face_command_roundtrip(store):
    from emo_core.schema import COMMAND_NAMES

    Command = store.types["emo_msgs/msg/FaceCommand"]
    Time = store.types["builtin_interfaces/msg/Time"]
    positions = np.linspace(0, 1, len(COMMAND_NAMES)).astype(np.float32)
    cmd = Command(header=_header(store), names=list(COMMAND_NAMES), positions=positions,
                  execute_at=Time(sec=13, nanosec=0), source=Command.SOURCE_PREDICTED)
    _, back = _roundtrip(store, cmd, "emo_msgs/msg/FaceCommand")
    assert list(back.names) == list(COMMAND_NAMES)
    np.testing.assert_array_equal(back.positions, positions)
    assert back.execute_at.sec == 13 and back.source == 0


def test_a_broken_definition_is_reported(tmp_path):
    for name in MESSAGES:
        (tmp_path / f"{name}.msg").write_text("std_msgs/Header header\n")
    (tmp_path / "FaceCommand.msg").write_text("string[ names\n")
    with pytest.raises(SchemaError, match="FaceCommand.msg"):
        emo_typestore(tmp_path)
