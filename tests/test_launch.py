"""Launch files: they compile and declare the documented arguments (read from their syntax tree, no
ROS needed); with ROS 2, ``launch`` itself loads them, and a sim-mode launch of the whole graph
delivers FaceCommand messages (``ros`` marker: skipped where rclpy or the built workspace is absent).
"""
from __future__ import annotations

import ast
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
sys.path.insert(0, str(ROOT / "src" / "emo_ros"))

from emo_ros.parameters import INSTANCES  # noqa: E402

#: The documented arguments (docs/ros.md) and their defaults (None: required).
ARGUMENTS = {
    "coexpression.launch.py": {"sim": "false", "video": "", "mode": "coexpression", "rviz": "false", "port": "",
                               "params_file": "", "gaze": "true"},
    "babble.launch.py": {"sim": "false", "samples": "100", "out": None, "mode": "full"},
}


def tree(name: str) -> ast.Module:
    return ast.parse((LAUNCH / name).read_text(), name)


def declared_arguments(module: ast.Module) -> dict[str, str | None]:
    found = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DeclareLaunchArgument":
            name = ast.literal_eval(node.args[0])
            defaults = [ast.literal_eval(k.value) for k in node.keywords if k.arg == "default_value"]
            assert any(k.arg == "description" for k in node.keywords), f"{name}: no description"
            found[name] = defaults[0] if defaults else None
    return found


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_launch_file_compiles(name):
    compile((LAUNCH / name).read_text(), str(LAUNCH / name), "exec")
    functions = {n.name for n in tree(name).body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions


def test_launch_support_compiles():
    path = ROOT / "src" / "emo_bringup" / "emo_bringup" / "launch_support.py"
    compile(path.read_text(), str(path), "exec")


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_declares_the_documented_arguments(name):
    module = tree(name)
    assert declared_arguments(module) == ARGUMENTS[name]
    # launch_setup reads every declared argument (ARGUMENT_NAMES) and nothing else
    names = next(ast.literal_eval(n.value) for n in module.body
                 if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENT_NAMES")
    assert set(names) == set(ARGUMENTS[name])


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_nodes_are_started_under_their_configured_names(name):
    """node("executable", "name") / lifecycle_node(...) calls match the names config/emo_nodes.yaml keys."""
    started = []
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("node", "lifecycle_node"):
            executable, instance = (ast.literal_eval(a) if isinstance(a, ast.Constant) else None for a in node.args[:2])
            if instance is None:         # an f-string: the eye cameras
                instance = {"coexpression.launch.py": "left_eye"}.get(name)
            started.append((executable, instance))
    assert started
    for executable, instance in started:
        assert INSTANCES.get(instance) == executable, f"{name}: {executable} started as {instance}"


def test_docs_describe_the_launch_arguments():
    doc = (ROOT / "docs" / "ros.md").read_text()
    for name, arguments in ARGUMENTS.items():
        assert name in doc
        for argument in arguments:
            assert f"`{argument}`" in doc


# ----------------------------------------------------------------------------------- with ROS 2
def _workspace_built() -> bool:
    try:
        from ament_index_python.packages import get_package_share_directory
        get_package_share_directory("emo_bringup")
        get_package_share_directory("emo_msgs")
        return True
    except Exception:
        return False


@pytest.mark.ros
@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_launch_loads_with_ros(name):
    pytest.importorskip("launch_ros")
    from launch.launch_description_sources import get_launch_description_from_python_launch_file

    sys.path.insert(0, str(ROOT / "src" / "emo_bringup"))
    description = get_launch_description_from_python_launch_file(str(LAUNCH / name))
    assert {a.name for a in description.get_launch_arguments()} == set(ARGUMENTS[name])


@pytest.mark.ros
@pytest.mark.slow
def test_sim_launch_delivers_face_commands(tmp_path):
    """ros2 launch emo_bringup coexpression.launch.py sim:=true: the whole graph on the bundled clip,
    the emulated servo bus and the twin; FaceCommands flow, joint states move, Ctrl-C ends it cleanly."""
    rclpy = pytest.importorskip("rclpy")
    if not _workspace_built():
        pytest.skip("the colcon workspace (emo_msgs, emo_bringup) is not built and sourced")
    from rclpy.qos import qos_profile_sensor_data

    from emo_core.schema import COMMAND_NAMES

    env = dict(os.environ, ROS_DOMAIN_ID=str(random.randint(30, 99)), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    log = (tmp_path / "launch.log").open("w")
    process = subprocess.Popen(["ros2", "launch", "emo_bringup", "coexpression.launch.py", "sim:=true"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    try:
        from emo_msgs.msg import FaceCommand, FaceLandmarks
        from sensor_msgs.msg import Image, JointState

        node = rclpy.create_node("launch_test_listener", context=context)
        got = {"command": [], "landmarks": [], "joints": [], "image": []}
        node.create_subscription(FaceCommand, "/emo/face/command", got["command"].append, 10)
        node.create_subscription(FaceLandmarks, "/emo/face/landmarks", got["landmarks"].append, 10)
        node.create_subscription(JointState, "/emo/joint_states", got["joints"].append, 10)
        node.create_subscription(Image, "/emo/left_eye/image_raw", got["image"].append, qos_profile_sensor_data)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(got["command"]) < 30 and process.poll() is None:
            executor.spin_once(timeout_sec=0.5)
        assert process.poll() is None, (tmp_path / "launch.log").read_text()[-3000:]
        assert len(got["command"]) >= 30, f"{ {k: len(v) for k, v in got.items()} }\n" + \
            (tmp_path / "launch.log").read_text()[-3000:]
        command = got["command"][-1]
        assert list(command.names) == list(COMMAND_NAMES) and len(command.positions) == len(COMMAND_NAMES)
        assert all(0.0 <= p <= 1.0 for p in command.positions)
        # Every command carries the stamp of a camera frame the landmarks also carried.
        frame_stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in got["landmarks"]}
        assert any((c.header.stamp.sec, c.header.stamp.nanosec) in frame_stamps for c in got["command"])
        assert got["joints"] and len(got["joints"][-1].name) == 26
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        log.close()
    text = (tmp_path / "launch.log").read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-5000:]
