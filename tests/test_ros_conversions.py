"""The message layer (``emo_core.conversions``: emo_core data <-> message fields) with rosbags'
message types, no ROS.

Every message is also serialized to CDR and back: that only works when each field has the type
the .msg definition says, so the same functions are right for rclpy's generated classes too.
Also here: the rclpy-free stages the nodes wrap (view pairing, the predictions inverse_model hands
its controller, the babbling robot over topics, debug drawings and markers).
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from emo_core import conversions as cv
from emo_core.anticipation.detector import PeakEvent
from emo_core.anticipation.retarget import Retargeter
from emo_core.clock import ManualClock
from emo_core.commands import FaceCommand, Source
from emo_core.errors import InputError, SchemaError
from emo_core.messages import emo_typestore
from emo_core.perception.views import ViewPairer
from emo_core.pipeline.controller import CoexpressionController, Mode, PipelineConfig, State
from emo_core.pipeline.inbox import PredictionInbox
from emo_core.schema import COMMAND_NAMES, N_LANDMARKS, REGIONS, Face, Space
from emo_core.selfmodel.constraints import SettleConfig
from emo_core.selfmodel.topic_robot import Stopped, TopicFaceRobot
from emo_core.servo import ServoTable
from emo_core.servo.driver import Diagnostic
from emo_core.twin import DigitalTwin
from emo_core.visual import annotate, face_markers

T = 1_700_000_123.456789012          # a realistic ROS time (s)


@pytest.fixture(scope="module")
def store():
    return emo_typestore()


@pytest.fixture(scope="module")
def types(store) -> cv.MessageTypes:
    return cv.rosbags_message_types(store)


def cdr(store, msg):
    """Serialize and deserialize: proves every field has its declared type."""
    return store.deserialize_cdr(store.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def face(seed: int = 0, stamp: float = T, detected: bool = True, camera: str = "left") -> Face:
    rng = np.random.default_rng(seed)
    return Face(detected=detected, confidence=0.875, metric=rng.normal(size=(N_LANDMARKS, 3)).astype(np.float32),
                image=rng.uniform(size=(N_LANDMARKS, 2)).astype(np.float32), stamp=stamp, camera=camera)


# ---------------------------------------------------------------------------------------- stamps
@pytest.mark.parametrize("seconds", [0.0, 1.5, 12.345678901, T, 1e-9, 2.9999999999, -0.25])
def test_seconds_to_stamp_is_normalized_and_rounds_to_the_ns(seconds):
    sec, nanosec = cv.seconds_to_stamp(seconds)
    assert 0 <= nanosec < 1_000_000_000
    assert abs((sec + nanosec * 1e-9) - seconds) <= max(1e-9, abs(seconds) * 2.3e-16)


def test_seconds_to_stamp_rejects_nan():
    with pytest.raises(InputError):
        cv.seconds_to_stamp(float("nan"))


def test_stamp_book_gives_back_the_exact_time(store, types):
    # At today's epoch a float cannot hold every nanosecond: the book carries the exact stamp.
    Time = store.types["builtin_interfaces/msg/Time"]
    exact = Time(sec=1_700_000_123, nanosec=456_789_013)
    book = cv.StampBook(capacity=2)
    seconds = book.remember(exact, confidence=0.5)
    assert book.exact(seconds) == (1_700_000_123, 456_789_013)
    assert book.confidence(seconds) == 0.5
    assert cv.seconds_to_stamp(seconds) != (1_700_000_123, 456_789_013)       # the float alone would not
    header = book.header(types, seconds, "left_eye")
    assert (header.stamp.sec, header.stamp.nanosec, header.frame_id) == (1_700_000_123, 456_789_013, "left_eye")
    book.remember(Time(sec=1, nanosec=0))
    book.remember(Time(sec=2, nanosec=0))                                      # capacity 2: the first is gone
    assert book.confidence(seconds, default=-1.0) == -1.0


def test_make_header_copies_a_time_exactly(types):
    original = types.new("builtin_interfaces/msg/Time", sec=7, nanosec=999_999_999)
    header = cv.make_header(types, original, "x")
    assert (header.stamp.sec, header.stamp.nanosec) == (7, 999_999_999)
    assert header.stamp is not original


# -------------------------------------------------------------------------------- FaceLandmarks
@pytest.mark.parametrize("space", [Space.METRIC, Space.ROBOT, Space.IMAGE])
def test_face_round_trip(store, types, space):
    original = face()
    original.space = space
    msg = cdr(store, cv.face_to_msg(types, original, frame_id="left_eye"))
    assert msg.face_detected and msg.space == int(space) and msg.camera == "left"
    assert msg.confidence == pytest.approx(0.875)
    back = cv.msg_to_face(msg)
    assert back.stamp == pytest.approx(T, abs=1e-9) and back.space is space and back.detected
    if space is Space.IMAGE:
        np.testing.assert_array_equal(back.image, original.image)
    else:
        np.testing.assert_array_equal(back.metric, original.metric)


def test_missing_face_round_trip(store, types):
    msg = cdr(store, cv.face_to_msg(types, Face.missing(stamp=T, camera="right")))
    assert not msg.face_detected and len(msg.x) == 0 and msg.confidence == 0.0
    back = cv.msg_to_face(msg)
    assert not back.detected and back.camera == "right"
    assert cv.msg_points(msg) is None


def test_header_wins_over_the_float_stamp(types):
    header = types.new("std_msgs/msg/Header", stamp=types.new("builtin_interfaces/msg/Time", sec=5, nanosec=1),
                       frame_id="left_eye")
    msg = cv.face_to_msg(types, face(stamp=99.0), header=header)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (5, 1)


def test_landmark_errors(types):
    with pytest.raises(SchemaError, match="113"):
        cv.points_to_msg(types, np.zeros((112, 2)), cv.make_header(types, 0.0), space=Space.METRIC)
    msg = cv.points_to_msg(types, np.zeros((N_LANDMARKS, 2)), cv.make_header(types, 0.0), space=Space.METRIC)
    msg.x = msg.x[:50]
    with pytest.raises(SchemaError, match="113"):
        cv.msg_to_face(msg)
    msg = cv.points_to_msg(types, np.full((N_LANDMARKS, 2), np.nan), cv.make_header(types, 0.0), space=Space.METRIC)
    with pytest.raises(SchemaError, match="NaN"):
        cv.msg_to_face(msg)


def test_two_d_points_get_zero_z(store, types):
    xy = np.random.default_rng(1).normal(size=(N_LANDMARKS, 2)).astype(np.float32)
    msg = cdr(store, cv.points_to_msg(types, xy, cv.make_header(types, T), space=Space.ROBOT, camera="twin"))
    np.testing.assert_array_equal(np.asarray(msg.z), np.zeros(N_LANDMARKS, np.float32))
    np.testing.assert_array_equal(cv.msg_points(msg), xy)


# --------------------------------------------------------------------------- PeakActivation etc.
def _event(stamps=(T - 0.1, T - 0.0666, T - 0.0333, T)) -> PeakEvent:
    rng = np.random.default_rng(2)
    rest = rng.normal(size=(N_LANDMARKS, 2)).astype(np.float32)
    lips = REGIONS["lips"]
    window = np.repeat(rest[None], len(stamps), axis=0)
    for i in range(len(stamps)):
        window[i, lips, 1] -= 0.01 * (i + 1)            # lips rising by 0.01 per frame
    return PeakEvent(stamp=stamps[-1], frame_index=10, window=window, window_stamps=np.array(stamps), rest=rest,
                     activation=0.97)


def test_event_round_trip_keeps_exact_window_stamps(store, types):
    Time = store.types["builtin_interfaces/msg/Time"]
    book = cv.StampBook()
    exact = [Time(sec=1_700_000_123, nanosec=n) for n in (356_789_011, 390_122_345, 423_455_679, 456_789_013)]
    stamps = [book.remember(t, confidence=0.8 + 0.05 * i) for i, t in enumerate(exact)]
    event = _event(tuple(stamps))
    header = book.header(types, stamps[-1], "left_eye")
    msg = cdr(store, cv.event_to_msg(types, event, header, book, camera="left"))
    assert [(f.header.stamp.sec, f.header.stamp.nanosec) for f in msg.window] == [(t.sec, t.nanosec) for t in exact]
    assert [f.confidence for f in msg.window] == pytest.approx([0.8, 0.85, 0.9, 0.95])
    activation, velocity = cv.event_motion(event)
    assert msg.activation == pytest.approx(activation) and msg.velocity == pytest.approx(velocity)
    back = cv.msg_to_event(msg)
    np.testing.assert_array_equal(back.window, event.window)
    np.testing.assert_array_equal(back.rest, event.rest)
    assert back.stamp == pytest.approx(event.stamp) and back.frame_index == -1


def test_event_motion_measures_lip_displacement_and_its_rate():
    event = _event(stamps=(0.0, 0.1, 0.2, 0.3))
    lips = len(REGIONS["lips"])
    active = len(REGIONS["lips"]) + len(REGIONS["left_brow"]) + len(REGIONS["right_brow"])
    expected = 0.04 * np.sqrt(lips / active)        # RMS over lips and brows; only the lips moved
    activation, velocity = cv.event_motion(event)
    assert activation == pytest.approx(expected, rel=1e-5)
    assert velocity == pytest.approx((expected - expected / 4) / 0.3, rel=1e-5)


def test_event_errors(types):
    msg = cv.event_to_msg(types, _event(), cv.make_header(types, T))
    msg.window = []
    with pytest.raises(SchemaError, match="window"):
        cv.msg_to_event(msg)


def test_prediction_round_trip(store, types):
    class Prediction:
        target = np.random.default_rng(3).normal(size=(N_LANDMARKS, 2)).astype(np.float32)
        time_to_apex = 0.6431

    msg = cdr(store, cv.prediction_to_msg(types, Prediction, cv.make_header(types, T), confidence=0.7))
    assert (msg.time_to_apex.sec, msg.time_to_apex.nanosec) == (0, 643_100_000)
    fields = cv.msg_to_prediction(msg)
    np.testing.assert_array_equal(fields.target, Prediction.target)
    assert fields.time_to_apex == pytest.approx(0.6431) and fields.confidence == pytest.approx(0.7)
    assert fields.stamp == pytest.approx(T)


@pytest.mark.parametrize("source", list(Source))
def test_command_round_trip(store, types, source):
    positions = np.linspace(0, 1, len(COMMAND_NAMES)).astype(np.float32)
    command = FaceCommand(COMMAND_NAMES, positions, T, T + 0.5 if source is Source.PREDICTED else None, source)
    msg = cdr(store, cv.command_to_msg(types, command))
    assert msg.source == cv.SOURCE_TO_MSG[source]
    assert msg.source == getattr(store.types["emo_msgs/msg/FaceCommand"], f"SOURCE_{source.name}")   # msg constants
    back = cv.msg_to_command(msg)
    assert back.names == COMMAND_NAMES and back.source is source
    np.testing.assert_array_equal(back.positions, positions)
    if command.execute_at is None:
        assert back.execute_at is None and (msg.execute_at.sec, msg.execute_at.nanosec) == (0, 0)
    else:
        assert back.execute_at == pytest.approx(T + 0.5, abs=1e-6)
    assert cv.command_mapping(msg) == pytest.approx(dict(zip(COMMAND_NAMES, positions.tolist())))


def test_command_errors(types):
    msg = cv.command_to_msg(types, FaceCommand(COMMAND_NAMES, np.zeros(11, np.float32), T, None, Source.MIMIC))
    msg.source = 9
    with pytest.raises(SchemaError, match="source"):
        cv.msg_to_command(msg)
    with pytest.raises(SchemaError):
        cv.command_to_msg(types, FaceCommand(COMMAND_NAMES, np.zeros(3, np.float32), T, None, Source.MIMIC))


# ---------------------------------------------------------------------------- joints, diagnostics
def test_joint_state_round_trip_gives_the_commands(store, types):
    table = ServoTable.load()
    commands = np.random.default_rng(4).uniform(0.1, 0.9, 11)
    ticks = table.commands_to_ticks(commands)
    center = np.array([s.model.center_ticks for s in table.servos])
    per_rad = np.array([s.model.ticks_per_rad for s in table.servos])

    class State:
        names = table.names
        position_rad = (ticks - center) / per_rad
        velocity_rad_s = np.zeros(len(table))
        current_a = np.full(len(table), 0.12)

    msg = cdr(store, cv.servo_state_to_joint_state(types, State, cv.make_header(types, T)))
    assert list(msg.name) == list(table.names) and np.allclose(msg.effort, 0.12)
    np.testing.assert_allclose(cv.joint_state_ticks(msg, table), ticks, atol=1e-6)
    np.testing.assert_allclose(cv.joint_state_to_commands(msg, table), commands, atol=2e-3)   # tick rounding
    msg.name = list(msg.name)[1:]
    msg.position = msg.position[1:]
    with pytest.raises(InputError, match="lacks servo"):
        cv.joint_state_to_commands(msg, table)


def test_diagnostics(store, types):
    diags = [Diagnostic(0, "servo bus", "ok", values={"cycle": "12"}),
             Diagnostic(2, "servo jaw", "hardware error: overload", hardware_id="dxl id 26")]
    msg = cdr(store, cv.diagnostics_to_msg(types, diags, cv.make_header(types, T), prefix="servo_driver: "))
    assert [cv.status_level(s) for s in msg.status] == [0, 2]
    assert msg.status[1].name == "servo_driver: servo jaw" and msg.status[1].hardware_id == "dxl id 26"
    assert (msg.status[0].values[0].key, msg.status[0].values[0].value) == ("cycle", "12")


def test_python_backend_conventions():
    # The rclpy backend's sequence and byte conventions, without needing the message classes.
    python = cv.python_message_types()
    seq = python.sequence(np.array([1.5, 2.5], np.float32))
    assert seq.typecode == "f" and list(seq) == [1.5, 2.5]
    assert python.sequence(np.arange(3, dtype=np.uint8)).typecode == "B"
    assert python.byte(2) == b"\x02"
    with pytest.raises(SchemaError):
        python.sequence(np.zeros(2, np.int16))


# --------------------------------------------------------------------------------------- images
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8"])
def test_image_round_trip(store, types, encoding):
    rgb = np.random.default_rng(5).integers(0, 255, (6, 7, 3), dtype=np.uint8)
    if encoding == "mono8":
        rgb = np.repeat(rgb[:, :, :1], 3, axis=2)           # gray in, gray out
    msg = cdr(store, cv.image_to_msg(types, rgb, cv.make_header(types, T, "left_eye"), encoding))
    assert (msg.height, msg.width, msg.encoding) == (6, 7, encoding)
    np.testing.assert_array_equal(cv.msg_to_image(msg), rgb)


def test_image_with_padded_rows_and_bad_data(types):
    rgb = np.random.default_rng(6).integers(0, 255, (3, 4, 3), dtype=np.uint8)
    padded = np.zeros((3, 16), np.uint8)
    padded[:, :12] = rgb.reshape(3, 12)
    msg = types.new("sensor_msgs/msg/Image", height=3, width=4, encoding="rgb8", step=16, data=padded.reshape(-1))
    np.testing.assert_array_equal(cv.msg_to_image(msg), rgb)
    msg.encoding = "yuv422"
    with pytest.raises(InputError, match="encoding"):
        cv.msg_to_image(msg)
    msg.encoding, msg.data = "rgb8", padded.reshape(-1)[:20]
    with pytest.raises(InputError, match="too short"):
        cv.msg_to_image(msg)


def test_camera_info(store, types):
    msg = cdr(store, cv.camera_info_msg(types, cv.make_header(types, T, "left_eye"), 640, 480))
    assert (msg.width, msg.height, msg.distortion_model) == (640, 480, "plumb_bob")
    np.testing.assert_array_equal(np.asarray(msg.k).reshape(3, 3), [[640, 0, 320], [0, 640, 240], [0, 0, 1]])
    assert len(msg.d) == 5 and len(msg.p) == 12


# -------------------------------------------------------------------------------- node helpers
def test_view_pairer_paces_on_the_first_camera():
    pairer = ViewPairer(["left", "right"], "best", max_age_s=0.05)
    right = face(1, stamp=10.00, camera="right")
    right.confidence = 0.99
    assert pairer.add("right", right) is None                    # only the lead camera publishes
    fused = pairer.add("left", face(2, stamp=10.02, camera="left"))
    assert fused.camera == "right" and fused.stamp == 10.02     # the better view, the lead's stamp
    assert pairer._latest["right"].stamp == 10.00               # the cached view keeps its own stamp
    alone = pairer.add("left", face(3, stamp=10.20, camera="left"))
    assert alone.camera == "left"                               # the right view is too old now
    with pytest.raises(Exception, match="unknown camera"):
        pairer.add("front", face())
    with pytest.raises(Exception, match="view policy"):
        ViewPairer(["left"], "median")


class _Inverse:
    """Stand-in inverse model: command k = mean y displacement of a region, clipped."""

    def predict(self, landmarks: np.ndarray) -> np.ndarray:
        return np.clip(0.5 + 5 * np.full(11, float(np.mean(landmarks[REGIONS["lips"], 1]))), 0, 1).astype(np.float32)


class _Node:
    """What inverse_model does per frame, without rclpy: the newest resting face to the controller,
    then the live frame with the inbox's predictions (``PredictionInbox.feed``)."""

    def __init__(self, config: PipelineConfig) -> None:
        self.twin = DigitalTwin(seed=0, noise_std=0.0)
        self.retarget = Retargeter.from_twin(self.twin)
        self.controller = CoexpressionController(config, self.retarget, _Inverse(), self.twin.calm_commands())
        self.inbox = PredictionInbox()
        self.rest: np.ndarray | None = None

    def frame(self, live: np.ndarray, stamp: float):
        self.controller.observe_rest(self.rest)
        return self.inbox.feed(self.controller, live, stamp)


LIVE = np.zeros((N_LANDMARKS, 2), np.float32)


def test_inverse_model_controller_holds_a_prediction_from_messages():
    """inverse_model's controller (the timed hold, naive mirroring): calm until the rest arrives,
    mirroring, then a prediction held with execute_at = firing stamp + time to apex, and mirroring
    again after it."""
    node = _Node(PipelineConfig(mode=Mode.COEXPRESSION, lead_fraction=0.0, lead_mirroring=False))
    first = node.frame(LIVE, 1.0).command
    np.testing.assert_allclose(first.positions, node.twin.calm_commands(), atol=1e-6)   # no rest yet: calm face
    assert node.controller.state is State.CALM
    rest = np.zeros((N_LANDMARKS, 2), np.float32)
    node.rest = rest
    mirrored = node.frame(LIVE, 1.033).command
    assert mirrored.source is Source.MIMIC and mirrored.execute_at is None
    assert node.controller.state is State.MIRROR
    target = rest.copy()
    target[REGIONS["lips"], 1] -= 0.05
    node.inbox.add_prediction(cv.PredictionFields(target=target, time_to_apex=0.5, stamp=1.033, confidence=0.9))
    held = node.frame(LIVE, 1.066).command
    assert held.source is Source.PREDICTED and held.stamp == 1.033 and held.execute_at == pytest.approx(1.533)
    assert node.controller.state is State.TIMED
    assert node.frame(LIVE, 1.3).command is held                   # held until the apex
    assert node.frame(LIVE, 1.6).command.source is Source.MIMIC    # released after it
    assert node.controller.state is State.MIRROR
    node.controller.reset()
    assert node.controller.rest is None and node.controller.state is State.CALM


def test_a_message_prediction_is_led_toward_by_progress_with_the_default_config():
    """The default: every command arrives now (lag-led); a prediction makes each frame's face the
    live face moved half way to the predicted one."""
    node = _Node(PipelineConfig(mode=Mode.COEXPRESSION))
    rest = np.zeros((N_LANDMARKS, 2), np.float32)
    node.rest = rest
    mirrored = node.frame(LIVE, 1.0).command
    assert mirrored.source is Source.MIMIC and mirrored.execute_at == 1.0
    target = rest.copy()
    target[REGIONS["lips"], 1] -= 0.05
    node.inbox.add_prediction(cv.PredictionFields(target=target, time_to_apex=0.5, stamp=1.0, confidence=1.0))
    result = node.frame(LIVE, 1.033)
    assert result.command.source is Source.PREDICTED and result.command.execute_at == 1.033
    assert node.controller.state is State.LEAD
    np.testing.assert_allclose(result.robot_target, 0.5 * (node.retarget(rest, rest) + node.retarget(target, rest)),
                               atol=1e-5)


def test_message_refreshes_re_predict_the_held_face_and_stale_ones_are_dropped():
    """A re-prediction from face/prediction_refresh moves the held target and apex (taken when the
    controller asks, as the in-process detector's newest window); one older than a new firing is dropped."""
    node = _Node(PipelineConfig(mode=Mode.COEXPRESSION, repredict_every=1))
    rest = np.zeros((N_LANDMARKS, 2), np.float32)
    node.rest = rest
    first, second = rest.copy(), rest.copy()
    first[REGIONS["lips"], 1] -= 0.05
    second[REGIONS["lips"], 1] -= 0.08
    node.inbox.add_prediction(cv.PredictionFields(target=first, time_to_apex=0.5, stamp=1.0, confidence=1.0))
    node.frame(LIVE, 1.033)
    np.testing.assert_allclose(node.controller.held_target, node.retarget(first, rest), atol=1e-6)
    node.inbox.add_refresh(cv.PredictionFields(target=second, time_to_apex=0.3, stamp=1.066, confidence=1.0))
    node.frame(LIVE, 1.1)
    np.testing.assert_allclose(node.controller.held_target, node.retarget(second, rest), atol=1e-6)
    assert node.controller.release_at == pytest.approx(1.366)
    assert node.inbox.take_refresh(LIVE) is None, "each refresh is used once"
    node.inbox.add_refresh(cv.PredictionFields(target=second, time_to_apex=0.3, stamp=1.2, confidence=0.9))
    node.inbox.add_prediction(cv.PredictionFields(target=first, time_to_apex=0.5, stamp=1.3, confidence=0.9))
    assert node.inbox.take_prediction(LIVE) is not None
    assert node.inbox.take_refresh(LIVE) is None, "a refresh of an earlier firing is stale"


def test_a_refresh_with_low_confidence_is_blended_toward_the_live_face():
    """Named fix: the ROS stand-in event of a re-prediction carried the *resting* face as its window,
    so a refresh with confidence < 1 was blended toward the rest; it is blended toward the live face
    now, as the firing's and the in-process re-predictions are."""
    node = _Node(PipelineConfig(mode=Mode.COEXPRESSION, repredict_every=1))
    rest = np.zeros((N_LANDMARKS, 2), np.float32)
    node.rest = rest
    live, target = rest.copy(), rest.copy()
    live[REGIONS["lips"], 1] -= 0.02
    target[REGIONS["lips"], 1] -= 0.08
    node.inbox.add_prediction(cv.PredictionFields(target=target, time_to_apex=0.5, stamp=1.0, confidence=1.0))
    node.frame(live, 1.033)
    node.inbox.add_refresh(cv.PredictionFields(target=target, time_to_apex=0.4, stamp=1.05, confidence=0.5))
    node.frame(live, 1.066)
    expected = node.retarget(live + 0.5 * (target - live), rest)
    np.testing.assert_allclose(node.controller.held_target, expected, atol=1e-6)


def test_predictions_need_a_rest_and_mimicry_ignores_them():
    node = _Node(PipelineConfig(mode=Mode.COEXPRESSION))
    node.inbox.add_prediction(cv.PredictionFields(np.zeros((N_LANDMARKS, 2)), 0.5, 1.0, 1.0))
    assert node.frame(LIVE, 1.0).command.source is Source.MIMIC     # no rest: dropped, calm face
    assert node.controller.held_target is None
    node = _Node(PipelineConfig(mode=Mode.MIMICRY))
    node.rest = np.zeros((N_LANDMARKS, 2), np.float32)
    node.inbox.add_prediction(cv.PredictionFields(np.zeros((N_LANDMARKS, 2)), 0.5, 1.0, 1.0))
    assert node.frame(LIVE, 1.0).command.source is Source.MIMIC
    assert node.inbox.take_prediction(LIVE) is None                 # taken (and ignored) by the frame


def _robot(sent: list, clock: ManualClock, timeout: float = 0.5) -> TopicFaceRobot:
    settle = SettleConfig(tolerance=0.004, settle_time=0.05, poll_interval=0.01, timeout=1.0)
    return TopicFaceRobot(sent.append, settle, clock, clock.advance, np.full(11, 0.5), {"kind": "ros"}, timeout)


def test_topic_face_robot_settles_and_captures_after_settling():
    clock = ManualClock(100.0)
    sent: list = []
    robot = _robot(sent, clock)
    target = np.linspace(0.2, 0.8, 11)
    robot.send(target)
    np.testing.assert_array_equal(sent[-1], target)
    np.testing.assert_array_equal(robot.target, target)
    robot.on_present(target)
    robot.on_face(np.ones((N_LANDMARKS, 2)), stamp=99.0)             # an old face, before settling
    assert robot.wait_settled()
    np.testing.assert_array_equal(robot.present_commands(), target)
    # the capture waits for a face stamped after settling; it arrives from another thread
    late = threading.Timer(0.05, robot.on_face, args=(np.full((N_LANDMARKS, 2), 2.0), clock.now() + 0.01))
    late.start()
    captured = robot.capture(0)
    late.join()
    assert captured.shape == (N_LANDMARKS, 2) and np.all(captured == 2.0)


def test_topic_face_robot_waits_for_the_pose_to_take_effect():
    """A command reaches the driver later over topics: while the servos still hold the previous
    pose, stillness is not "settled"."""
    clock = ManualClock(0.0)
    robot = _robot([], clock)
    before, target = np.full(11, 0.5), np.full(11, 0.7)
    robot.on_present(before)
    robot.send(target)
    moving = threading.Timer(0.3, robot.on_present, args=(target,))
    started = time.monotonic()
    moving.start()
    assert robot.wait_settled()
    moving.join()
    assert time.monotonic() - started >= 0.25                 # it waited for the servos to respond
    np.testing.assert_array_equal(robot.present_commands(), target)


def test_topic_face_robot_times_out_and_stops():
    clock = ManualClock(0.0)
    robot = _robot([], clock, timeout=0.1)
    started = time.monotonic()
    with pytest.raises(InputError, match="joint states"):
        robot.present_commands()
    assert time.monotonic() - started < 2.0
    robot.stop()
    with pytest.raises(Stopped):
        robot.capture(0)
    with pytest.raises(Stopped):
        robot.send(np.zeros(11))


def test_annotate_and_markers(store, types):
    f = face()
    rgb = np.zeros((120, 160, 3), np.uint8)
    drawn = annotate(rgb, f)
    assert drawn.shape == rgb.shape and drawn.any() and not rgb.any()       # a copy, with dots on it
    assert annotate(rgb, Face.missing()).any()                              # "no face" text
    header = cv.make_header(types, T, "emo_face")
    msg = cdr(store, face_markers(types, f.metric, header, scale=0.05, label="left 0.88", offset=3.0))
    assert len(msg.markers) == len(REGIONS) + 1
    lips = list(REGIONS).index("lips")
    points = np.array([[p.x, p.y] for p in msg.markers[lips].points])
    np.testing.assert_allclose(points[:, 0], (f.metric[REGIONS["lips"], 0] + 3.0) * 0.05, rtol=1e-6)
    np.testing.assert_allclose(points[:, 1], -f.metric[REGIONS["lips"], 1] * 0.05, rtol=1e-6)
    assert msg.markers[-1].text == "left 0.88"
    cleared = cdr(store, face_markers(types, None, header, scale=0.05))
    assert [m.action for m in cleared.markers] == [3]                       # DELETEALL


# ----------------------------------------------------------------------------------------- gaze
def test_gaze_state_target_and_markers_messages(store, types):
    from emo_core.gaze import GazeController, GazePhase, Pose
    from emo_core.gaze.scene import GeometricView
    from emo_core.visual import gaze_markers

    ctl = GazeController()
    face = GeometricView(ctl.camera, noise_px=0.0).observe(10.0, 5.0, 0.0, Pose(), T)
    ctl.update(face, T, Pose())
    state = ctl.state
    header = cv.make_header(types, T, "emo_face")
    msg = cv.gaze_state_to_msg(types, state, header)
    back = cdr(store, msg)
    assert back.phase == GazePhase.SACCADE.value and back.face_detected
    assert (back.fixation_yaw, back.fixation_pitch) == pytest.approx((10.0, 5.0), abs=0.3)
    assert back.eye_yaw == pytest.approx(state.pose.eye_yaw, abs=1e-4)
    ctl.update(None, T + 0.1, Pose())
    lost = cv.gaze_state_to_msg(types, ctl.state, header)
    assert not lost.face_detected and np.isnan(lost.face_u) and np.isnan(lost.error_deg)
    point = cv.gaze_target_point(types, (10.0, 5.0), header, 2.0)
    point = cdr(store, point)
    # ROS axes (x forward, y left, z up): right and down of the head.
    assert point.point.x > 1.9 and point.point.y < 0 and point.point.z < 0
    assert np.hypot(np.hypot(point.point.x, point.point.y), point.point.z) == pytest.approx(2.0)
    markers = gaze_markers(types, (10.0, 5.0), state.face_direction, header, 1.0)
    markers = cdr(store, markers)
    assert [m.type for m in markers.markers] == [0, 2]                  # arrow, sphere
    assert [m.action for m in gaze_markers(types, (0.0, 0.0), None, header, 1.0).markers] == [0, 2]   # face gone


def test_joint_state_gives_the_gaze_pose(types):
    from emo_core.gaze import GazeJoints, Pose

    table = ServoTable.load()
    joints = GazeJoints(table)
    pose = Pose(eye_yaw=6.0, eye_pitch=-3.0, neck_pitch=5.0, neck_yaw=-12.0)
    norm = np.concatenate([table.home_commands()[:11], joints.to_norm(pose)])
    ticks = table.norm_to_ticks(table.resolve(norm)[0])

    class State:
        names = table.names
        position_rad = (ticks - [s.model.center_ticks for s in table.servos]) / \
            np.array([s.model.ticks_per_rad for s in table.servos])
        velocity_rad_s = np.zeros(len(table))
        current_a = np.zeros(len(table))

    msg = cv.servo_state_to_joint_state(types, State, cv.make_header(types, T))
    got = cv.joint_state_pose(msg, table, joints)
    assert got.as_array() == pytest.approx(pose.as_array(), abs=0.1)     # one tick is 0.088 deg
