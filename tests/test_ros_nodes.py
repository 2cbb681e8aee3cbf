"""The emo_ros nodes in process, with rclpy (``ros`` marker; skipped where ROS 2 or the built
emo_msgs are absent): parameters, lifecycle transitions, the servo driver on the bus emulator,
the eye camera and landmarks on the bundled clip, the coexpression chain on a synthetic smile, the
twin, and babbling through the graph."""
from __future__ import annotations

import gc
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")
pytest.importorskip("emo_msgs.msg", reason="emo_msgs is not built (colcon build, then source the install)")
try:
    import emo_ros  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "emo_ros"))

from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402

from emo_core.resources import data_path  # noqa: E402
from emo_core.schema import COMMAND_NAMES, Space  # noqa: E402
from emo_core.servo import BusEmulator, ServoTable  # noqa: E402
from emo_core import conversions as cv  # noqa: E402
from emo_ros.runtime import RELIABLE_QOS, message_types  # noqa: E402

NS = "/emo"


@pytest.fixture()
def context():
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=random.randint(30, 99))
    yield ctx
    rclpy.try_shutdown(context=ctx)


class Graph:
    """Nodes spun by one executor, plus a probe node to publish and listen."""

    def __init__(self, context) -> None:
        self.context = context
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.probe = rclpy.create_node("probe", namespace=NS, context=context)
        self.executor.add_node(self.probe)
        self.nodes = []
        self.types = message_types()
        # Spun in the background as in a real process: timers, messages and services all flow
        # while the test publishes and waits.
        self.spinner = threading.Thread(target=self._spin, daemon=True)
        self.spinner.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:            # the context shuts down at the end of the test
            pass

    def add(self, cls, name: str, **params):
        node = cls(context=self.context, namespace=NS, cli_args=["--ros-args", "-r", f"__node:={name}"],
                   parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.executor.add_node(node)
        self.nodes.append(node)
        return node

    def transition(self, node: str, label: str) -> bool:
        """A lifecycle transition through the node's change_state service, as `ros2 lifecycle set`
        does (so it runs in the node's executor, between its timer callbacks)."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        client = self.probe.create_client(ChangeState, f"{NS}/{node}/change_state")
        try:
            assert client.wait_for_service(timeout_sec=10), f"no lifecycle service for {node}"
            request = ChangeState.Request(transition=Transition(id=getattr(Transition, f"TRANSITION_{label.upper()}")))
            future = client.call_async(request)
            assert self.spin_until(future.done, timeout=30), f"{node}: {label} timed out"
            return bool(future.result().success)
        finally:
            self.probe.destroy_client(client)

    def listen(self, topic: str, type_name: str, qos=RELIABLE_QOS) -> list:
        got: list = []
        self.probe.create_subscription(self.types.cls(type_name), topic, got.append, qos)
        return got

    def publisher(self, topic: str, type_name: str, qos=RELIABLE_QOS):
        return self.probe.create_publisher(self.types.cls(type_name), topic, qos)

    def spin_until(self, done: Callable[[], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            time.sleep(0.02)
        return done()

    def close(self) -> None:
        """As runtime.run does: stop spinning, then release and destroy the nodes."""
        self.executor.shutdown()
        self.spinner.join(timeout=5)
        for node in self.nodes:
            release = getattr(node, "release", None)
            if release is not None:
                release()
            node.destroy_node()
        self.probe.destroy_node()
        # rclpy prints "exception was never retrieved" when a callback task that ran into the
        # teardown is garbage-collected; drop the executor (which holds its tasks) and collect now,
        # so that lands in this test and not in a later one's captured stderr (a servo CLI test
        # asserting on its one-line error failed on it in CI).
        self.nodes.clear()
        self.executor = self.probe = None
        gc.collect()


@pytest.fixture()
def graph(context):
    g = Graph(context)
    yield g
    g.close()


# ------------------------------------------------------------------------------------ parameters
def test_parameters_have_descriptions_ranges_and_are_checked(graph):
    from emo_ros.expression_predictor import ExpressionPredictorNode
    from emo_ros.eye_camera import EyeCamera

    node = graph.add(EyeCamera, "left_eye", source=str(data_path("demo_clip.mp4")))
    fps = node.describe_parameter("fps")
    assert "Frames per second" in fps.description
    assert (fps.floating_point_range[0].from_value, fps.floating_point_range[0].to_value) == (0.0, 240.0)
    assert node.get_parameter("source").value.endswith("demo_clip.mp4")
    with pytest.raises(Exception, match="fps"):
        graph.add(EyeCamera, "right_eye", fps=1000.0)                  # out of its declared range
    with pytest.raises(Exception, match="not one of|model|mode"):
        from emo_ros.inverse_model import InverseModelNode
        graph.add(InverseModelNode, "inverse_model", mode="telepathy")
    predictor = graph.add(ExpressionPredictorNode, "expression_predictor")
    assert predictor.get_fully_qualified_name() == "/emo/expression_predictor"


def test_parameters_read_at_start_are_read_only_and_live_ones_are_applied(graph):
    """`ros2 param set` is never accepted and ignored: a parameter read at start is read-only (the set
    is refused), a live one reaches what uses it, and a set the node cannot apply is refused."""
    from emo_ros.inverse_model import InverseModelNode

    node = graph.add(InverseModelNode, "inverse_model")
    assert node.describe_parameter("model_dir").read_only
    assert not node.describe_parameter("lead_fraction").read_only
    assert not node.set_parameters([Parameter("model_dir", value="/elsewhere")])[0].successful
    assert node.get_parameter("model_dir").value == ""
    assert node.set_parameters([Parameter("lead_fraction", value=0.3)])[0].successful
    assert node.controller.config.lead_fraction == 0.3 and node.params["lead_fraction"] == 0.3
    refused = node.set_parameters([Parameter("min_time_to_apex_s", value=3.0)])[0]    # above the max (2 s)
    assert not refused.successful and "min_time_to_apex_s" in refused.reason
    assert node.controller.config.min_time_to_apex_s == 0.0


# -------------------------------------------------------------------------------------- cameras
def test_eye_camera_lifecycle_publishes_the_clip(graph):
    from emo_ros.eye_camera import EyeCamera

    images = graph.listen("/emo/left_eye/image_raw", "sensor_msgs/msg/Image", qos_profile_sensor_data)
    infos = graph.listen("/emo/left_eye/camera_info", "sensor_msgs/msg/CameraInfo", qos_profile_sensor_data)
    graph.add(EyeCamera, "left_eye", source=str(data_path("demo_clip.mp4")), loop=True, camera="left")
    assert graph.transition("left_eye", "configure")
    graph.spin_until(lambda: False, timeout=0.3)
    assert not images                                        # configured, not active: silent
    assert graph.transition("left_eye", "activate")
    assert graph.spin_until(lambda: len(images) >= 5 and len(infos) >= 5)
    image = images[-1]
    assert (image.encoding, image.header.frame_id) == ("rgb8", "left_eye")
    rgb = cv.msg_to_image(image)
    assert rgb.shape == (image.height, image.width, 3) and rgb.any()
    assert (infos[-1].width, infos[-1].height) == (image.width, image.height)
    assert {(i.header.stamp.sec, i.header.stamp.nanosec) for i in infos} & \
        {(i.header.stamp.sec, i.header.stamp.nanosec) for i in images}
    assert graph.transition("left_eye", "deactivate")
    graph.spin_until(lambda: False, timeout=0.2)
    count = len(images)
    graph.spin_until(lambda: False, timeout=0.4)
    assert len(images) == count                              # deactivated: no more frames
    assert graph.transition("left_eye", "cleanup")


def test_eye_camera_configure_fails_cleanly_on_a_missing_source(graph, tmp_path):
    from emo_ros.eye_camera import EyeCamera

    graph.add(EyeCamera, "left_eye", source=str(tmp_path / "missing.mp4"))
    assert not graph.transition("left_eye", "configure")


def test_face_landmarks_node_on_the_clip(graph):
    from emo_ros.face_landmarks import FaceLandmarksNode
    from emo_core.perception.sources import open_source

    landmarks = graph.listen("/emo/face/landmarks", "emo_msgs/msg/FaceLandmarks")
    debug = graph.listen("/emo/face/debug_image", "sensor_msgs/msg/Image", qos_profile_sensor_data)
    markers = graph.listen("/emo/face/markers", "visualization_msgs/msg/MarkerArray")
    graph.add(FaceLandmarksNode, "face_landmarks", cameras=["left"])
    publish = graph.publisher("/emo/left_eye/image_raw", "sensor_msgs/msg/Image", qos_profile_sensor_data)
    graph.spin_until(lambda: graph.probe.count_subscribers("/emo/left_eye/image_raw") > 0, timeout=10)
    sent = []
    with open_source(str(data_path("demo_clip.mp4"))) as source:
        for i, frame in enumerate(source):
            if i == 10:
                break
            header = cv.make_header(graph.types, 1_700_000_000.0 + i / 30, "left_eye")
            publish.publish(cv.image_to_msg(graph.types, frame.image, header))
            sent.append((header.stamp.sec, header.stamp.nanosec))
            graph.spin_until(lambda: len(landmarks) > i, timeout=20)
    assert len(landmarks) == 10
    assert [(m.header.stamp.sec, m.header.stamp.nanosec) for m in landmarks] == sent   # camera stamps, exactly
    assert all(m.face_detected and m.space == int(Space.METRIC) and len(m.x) == 113 for m in landmarks)
    assert debug and markers and len(markers[-1].markers) >= 6


# ------------------------------------------------------------------------------ the servo driver
def test_servo_driver_lifecycle_on_the_emulator(graph, tmp_path):
    from emo_ros.servo_driver import ServoDriverNode

    table = ServoTable.load()
    link = tmp_path / "ttyEMO"
    joints = graph.listen("/emo/joint_states", "sensor_msgs/msg/JointState")
    diagnostics = graph.listen("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray")
    with BusEmulator.from_table(table, link=link) as emulator:
        graph.add(ServoDriverNode, "servo_driver", port=str(link), control_rate_hz=50.0, diagnostics_rate_hz=5.0)
        assert graph.transition("servo_driver", "configure")
        assert set(emulator.registers("Torque_Enable").values()) == {0}
        assert graph.transition("servo_driver", "activate")
        assert set(emulator.registers("Torque_Enable").values()) == {1}              # torque on at activate
        assert graph.spin_until(lambda: len(joints) >= 5 and diagnostics)
        assert list(joints[-1].name) == list(table.names)
        assert cv.status_level(diagnostics[-1].status[0]) == 0

        # A command moves the jaw there (the driver plans the motion; the emulator moves).
        jaw = table.index("jaw")
        publish = graph.publisher("/emo/face/command", "emo_msgs/msg/FaceCommand")
        target = table.home_commands()
        target[COMMAND_NAMES.index("jaw_open")] = 0.8
        from emo_core.commands import FaceCommand, Source
        msg = cv.command_to_msg(graph.types, FaceCommand(COMMAND_NAMES, target.astype(np.float32), 0.0, None,
                                                         Source.MANUAL))
        goal = table.commands_to_ticks(target)[jaw]

        def jaw_there() -> bool:
            publish.publish(msg)          # a live stream: keeps the watchdog quiet
            return abs(emulator.register(table.servos[jaw].id, "Present_Position") - goal) <= 8

        assert graph.spin_until(jaw_there, timeout=15)
        assert graph.transition("servo_driver", "deactivate")
        assert set(emulator.registers("Torque_Enable").values()) == {0}              # torque off at deactivate
        home = table.home_ticks[jaw]
        assert abs(emulator.register(table.servos[jaw].id, "Present_Position") - home) <= 10   # eased home
        assert graph.transition("servo_driver", "cleanup")


def test_servo_driver_configure_fails_without_a_port(graph, tmp_path):
    from emo_ros.servo_driver import ServoDriverNode

    graph.add(ServoDriverNode, "servo_driver", port=str(tmp_path / "nope"), connect_timeout_s=0.3)
    started = time.monotonic()
    assert not graph.transition("servo_driver", "configure")
    assert time.monotonic() - started < 5


# ------------------------------------------------------------------------- the coexpression chain
def _smile(seed: int = 5):
    from emo_core.people.generator import PeopleGenerator

    generator = PeopleGenerator()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    person = generator.identity("ros", rng)
    return generator.sequence(person, "smile", np.random.default_rng(np.random.SeedSequence([seed, 1])))


@pytest.mark.parametrize("mode", ["coexpression", "mimicry"])
def test_chain_turns_a_smile_into_face_commands(graph, mode):
    from emo_ros.expression_predictor import ExpressionPredictorNode
    from emo_ros.inverse_model import InverseModelNode
    from emo_ros.peak_activation import PeakActivationNode

    commands = graph.listen("/emo/face/command", "emo_msgs/msg/FaceCommand")
    peaks = graph.listen("/emo/face/peak", "emo_msgs/msg/PeakActivation")
    predictions = graph.listen("/emo/face/prediction", "emo_msgs/msg/ExpressionPrediction")
    refreshes = graph.listen("/emo/face/peak_refresh", "emo_msgs/msg/PeakActivation")
    refreshed = graph.listen("/emo/face/prediction_refresh", "emo_msgs/msg/ExpressionPrediction")
    graph.add(PeakActivationNode, "peak_activation")
    graph.add(ExpressionPredictorNode, "expression_predictor")
    graph.add(InverseModelNode, "inverse_model", mode=mode)
    publish = graph.publisher("/emo/face/landmarks", "emo_msgs/msg/FaceLandmarks")
    graph.spin_until(lambda: graph.probe.count_subscribers("/emo/face/landmarks") >= 2, timeout=10)

    sequence = _smile()
    book = cv.StampBook()
    t0 = 1_700_000_000.0
    sent = []
    for i, points in enumerate(sequence.landmarks):
        header = cv.make_header(graph.types, t0 + i / sequence.fps, "left_eye")
        publish.publish(cv.points_to_msg(graph.types, points, header, space=Space.METRIC, camera="left"))
        sent.append(book.remember(header.stamp))
        # one frame at a time: each frame's peak, prediction and command settle before the next
        assert graph.spin_until(lambda: len(commands) > i, timeout=20)
        graph.spin_until(lambda: len(predictions) >= len(peaks) and len(refreshed) >= len(refreshes), timeout=5)
    assert len(commands) == len(sequence.landmarks)                        # one command per frame
    stamps = [cv.stamp_to_seconds(c.header.stamp) for c in commands]
    assert set(stamps) <= set(sent)                                       # every stamp is a camera frame's
    assert all(list(c.names) == list(COMMAND_NAMES) and all(0 <= p <= 1 for p in c.positions) for c in commands)
    assert peaks, "the detector did not fire on a smile"
    sources = {int(c.source) for c in commands}
    if mode == "coexpression":
        predicted = [c for c in commands if c.source == 0]
        assert predicted, f"no predicted command (sources {sources})"
        first = predicted[0]
        # Led toward the prediction from the frame it arrived on: a camera frame's stamp, at or
        # after the firing frame's, to be reached now (the driver's lag lead does the timing).
        fired = min(cv.stamp_to_seconds(p.header.stamp) for p in predictions)
        assert cv.stamp_to_seconds(first.header.stamp) >= fired
        assert cv.stamp_to_seconds(first.execute_at) == cv.stamp_to_seconds(first.header.stamp)
        # While the smile unfolds the detector's newer windows are re-predicted, each after the firing.
        assert refreshes and len(refreshed) == len(refreshes)
        assert min(cv.stamp_to_seconds(r.header.stamp) for r in refreshes) > fired
    else:
        assert sources == {1}                                             # mimicry mirrors only


# ----------------------------------------------------------------------------------------- twin
def test_face_twin_turns_joint_states_into_the_robot_face(graph):
    from emo_core.twin import DigitalTwin
    from emo_ros.face_twin import FaceTwinNode

    table = ServoTable.load()
    faces = graph.listen("/emo/twin/landmarks", "emo_msgs/msg/FaceLandmarks")
    images = graph.listen("/emo/twin/image", "sensor_msgs/msg/Image", qos_profile_sensor_data)
    graph.add(FaceTwinNode, "face_twin", noise=False, image_size=128)
    publish = graph.publisher("/emo/joint_states", "sensor_msgs/msg/JointState")
    graph.spin_until(lambda: graph.probe.count_subscribers("/emo/joint_states") > 0, timeout=10)
    commands = table.home_commands()
    commands[COMMAND_NAMES.index("mouth_corner_up")] = 0.9
    ticks = table.commands_to_ticks(commands).astype(float)

    class State:
        names = table.names
        position_rad = (ticks - [s.model.center_ticks for s in table.servos]) / \
            np.array([s.model.ticks_per_rad for s in table.servos])
        velocity_rad_s = np.zeros(len(table))
        current_a = np.zeros(len(table))

    for k in range(3):
        header = cv.make_header(graph.types, 1_700_000_000.0 + k * 0.2)
        publish.publish(cv.servo_state_to_joint_state(graph.types, State, header))
        graph.spin_until(lambda: len(faces) > k, timeout=10)
    assert len(faces) == 3 and faces[-1].space == int(Space.ROBOT)
    expected = DigitalTwin(noise_std=0.0).forward(table.ticks_to_commands(ticks), noise=False)
    np.testing.assert_allclose(cv.msg_points(faces[-1]), expected, atol=1e-5)
    assert graph.spin_until(lambda: bool(images), timeout=5) and images[-1].width == 128


# ----------------------------------------------------------------------------------------- gaze
def test_gaze_node_looks_at_the_face_and_commands_eyes_and_neck(graph):
    from emo_core.gaze import EyeCamera, Pose
    from emo_core.gaze.scene import GeometricView
    from emo_ros.gaze import GazeNode

    table = ServoTable.load()
    commands = graph.listen("/emo/face/command", "emo_msgs/msg/FaceCommand")
    states = graph.listen("/emo/gaze/state", "emo_msgs/msg/GazeState")
    targets = graph.listen("/emo/gaze/target", "geometry_msgs/msg/PointStamped")
    markers = graph.listen("/emo/gaze/markers", "visualization_msgs/msg/MarkerArray")
    graph.add(GazeNode, "gaze", dead_band_deg=1.0)
    faces = graph.publisher("/emo/face/landmarks_image", "emo_msgs/msg/FaceLandmarks")
    joints = graph.publisher("/emo/joint_states", "sensor_msgs/msg/JointState")
    graph.spin_until(lambda: graph.probe.count_subscribers("/emo/face/landmarks_image") > 0, timeout=10)
    ticks = table.home_ticks.astype(float)

    class State:                  # the servos at home
        names = table.names
        position_rad = (ticks - [s.model.center_ticks for s in table.servos]) / \
            np.array([s.model.ticks_per_rad for s in table.servos])
        velocity_rad_s = np.zeros(len(table))
        current_a = np.zeros(len(table))

    view = GeometricView(EyeCamera(640, 480, 60.0), noise_px=0.0)
    t0 = 1_700_000_000.0
    for k in range(3):
        t = t0 + k / 30
        joints.publish(cv.servo_state_to_joint_state(graph.types, State, cv.make_header(graph.types, t - 0.01)))
        face = view.observe(12.0, -4.0, 0.0, Pose(), t)                # a face 12 deg right, 4 deg up
        faces.publish(cv.face_to_msg(graph.types, face, header=cv.make_header(graph.types, t), space=Space.IMAGE))
        graph.spin_until(lambda: len(states) > k, timeout=10)
    assert len(commands) == 3 and len(targets) == 3
    cmd = commands[-1]
    assert list(cmd.names) == ["gaze_yaw", "gaze_pitch", "neck_roll", "neck_pitch", "neck_yaw"]
    assert cmd.source == graph.types.cls("emo_msgs/msg/FaceCommand").SOURCE_GAZE
    assert cv.stamp_to_seconds(cmd.execute_at) > cv.stamp_to_seconds(cmd.header.stamp)
    state = states[-1]
    assert state.face_detected and (state.fixation_yaw, state.fixation_pitch) == pytest.approx((12.0, -4.0), abs=0.5)
    assert targets[-1].point.y < 0 and targets[-1].point.z > 0       # ROS axes: to the right (-y), up (+z)
    assert all(0.0 <= v <= 1.0 for v in cmd.positions)
    assert graph.spin_until(lambda: bool(markers), timeout=5)     # published while someone subscribes


# ------------------------------------------------------------------------------------- babbling
@pytest.mark.slow
def test_babbler_collects_a_dataset_through_the_graph(graph, tmp_path):
    from emo_core.datasets.babbling import BabblingDataset
    from emo_ros.babbler import BabblerNode
    from emo_ros.face_twin import FaceTwinNode
    from emo_ros.servo_driver import ServoDriverNode

    table = ServoTable.load()
    link = tmp_path / "ttyEMO"
    with BusEmulator.from_table(table, link=link) as _:
        graph.add(ServoDriverNode, "servo_driver", port=str(link))
        assert graph.transition("servo_driver", "configure") and graph.transition("servo_driver", "activate")
        graph.add(FaceTwinNode, "face_twin")
        babbler = graph.add(BabblerNode, "babbler", out=str(tmp_path / "babble"), samples=3, mode="lower",
                            robot_face="twin", shutdown_when_done=False)
        # the babbler's robot face is the twin's (babble.launch.py remaps it the same way)
        babbler_face = graph.probe.create_publisher(graph.types.cls("emo_msgs/msg/FaceLandmarks"),
                                                    "/emo/robot_face/landmarks", RELIABLE_QOS)
        graph.probe.create_subscription(graph.types.cls("emo_msgs/msg/FaceLandmarks"), "/emo/twin/landmarks",
                                        babbler_face.publish, RELIABLE_QOS)
        assert graph.spin_until(babbler.done.is_set, timeout=120)
        assert babbler.exit_status == 0
        assert graph.transition("servo_driver", "deactivate")
    data = BabblingDataset.open(tmp_path / "babble")
    arrays = data.arrays()
    assert data.n_samples == 3 and data.mode == "lower" and data.info["robot"]["kind"] == "ros"
    # the stored face is the twin's face of the commands the servos reached (capture noise aside)
    from emo_core.twin import DigitalTwin
    twin = DigitalTwin(noise_std=0.0)
    np.testing.assert_allclose(arrays.landmarks, twin.forward(arrays.present, noise=False), atol=0.05)
    np.testing.assert_allclose(arrays.present, arrays.commands, atol=0.02)


# ------------------------------------------------------------------------------------- Ctrl-C
def test_servo_driver_homes_and_releases_torque_on_ctrl_c(graph, tmp_path):
    """`ros2 run emo_ros servo_driver`, activated, then Ctrl-C: the face eases home, torque goes off,
    the process exits 0 (release() runs after spinning stops, without ROS)."""
    import shutil
    import signal
    import subprocess

    if shutil.which("ros2") is None:
        pytest.skip("ros2 CLI not on PATH")
    table = ServoTable.load()
    link = tmp_path / "ttyEMO"
    jaw = table.index("jaw")
    start = {s.id: s.home for s in table.servos}
    start[table.servos[jaw].id] = table.home_ticks[jaw] + 300          # the jaw starts well away from home
    env = dict(os.environ, ROS_DOMAIN_ID=str(graph.context.get_domain_id()))
    with BusEmulator.from_table(table, start, link=link) as emulator:
        process = subprocess.Popen(["ros2", "run", "emo_ros", "servo_driver", "--ros-args", "-r", "__ns:=/emo",
                                    "-p", f"port:={link}"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            assert graph.transition("servo_driver", "configure")
            assert graph.transition("servo_driver", "activate")
            assert set(emulator.registers("Torque_Enable").values()) == {1}
            os.killpg(process.pid, signal.SIGINT)         # Ctrl-C in a terminal: the whole group
            out, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        assert process.returncode == 0, out
        assert "Traceback" not in out, out
        assert set(emulator.registers("Torque_Enable").values()) == {0}
        assert abs(emulator.register(table.servos[jaw].id, "Present_Position") - table.home_ticks[jaw]) <= 10
