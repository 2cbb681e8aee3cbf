"""``babbler``: motor babbling through the node graph -> a babbling dataset on disk.

Runs ``emo_core.selfmodel.babbler.Babbler`` (random feasible poses, the constraint function of
``config/babbling.yaml``, resumable dataset writer) in a worker thread, with the robot being the
graph (``babbling.TopicFaceRobot``): poses go out as FaceCommand (source BABBLE), the present
positions come back in ``joint_states`` and the robot's face in ``robot_face/landmarks`` (remapped
to ``twin/landmarks`` in sim). The dataset is the format of ``emo_core.datasets.babbling``, the
same as ``emo babble`` writes; a killed run resumes where it stopped.

Publishes ``face/command``. Subscribes ``joint_states`` and ``robot_face/landmarks``.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from rclpy.node import Node

from emo_core.commands import FaceCommand, Source
from emo_core.conversions import command_to_msg, joint_state_to_commands, make_header, msg_points, stamp_to_seconds
from emo_core.selfmodel.hardware import ros_robot_description
from emo_core.errors import ConfigError, EmoError
from emo_core.pacing import wait_until
from emo_core.schema import COMMAND_NAMES
from emo_core.selfmodel.babbler import Babbler
from emo_core.selfmodel.constraints import ConstraintConfig, ConstraintFunction
from emo_core.selfmodel.topic_robot import Stopped, TopicFaceRobot
from emo_core.servo import ServoTable
from emo_core.twin import DigitalTwin

from .parameters import SCHEMAS, declare
from .runtime import RELIABLE_QOS, RosClock, message_types, run

PARAMETERS = SCHEMAS["babbler"]
LOG_EVERY = 10
STARTUP_TIMEOUT_S = 60.0


class BabblerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("babbler", **kwargs)
        self.params = p = declare(self, PARAMETERS)
        if not p["out"]:
            raise ConfigError("babbler: parameter 'out' (the dataset directory) is required")
        self.types = message_types()
        self.exit_status = 0
        self.table = ServoTable.load(p["servo_config"] or None)
        self.constraints = ConstraintFunction(ConstraintConfig.from_yaml(p["babbling_config"] or None))
        twin = DigitalTwin(p["twin_config"] or None) if p["robot_face"] == "twin" else None
        # The calm face and the manifest's robot as the in-process servo babbler has them
        # (emo_core.selfmodel.hardware.ServoRobot), so both write interchangeable datasets.
        self.robot = TopicFaceRobot(self.send, self.constraints.config.settle, RosClock(self), time.sleep,
                                    self.table.home_commands(), ros_robot_description(self.table, p["robot_id"], twin),
                                    p["capture_timeout_s"])
        self.command_pub = self.create_publisher(self.types.cls("emo_msgs/msg/FaceCommand"), "face/command",
                                                 RELIABLE_QOS)
        self.create_subscription(self.types.cls("sensor_msgs/msg/JointState"), "joint_states", self.on_joints,
                                 RELIABLE_QOS)
        self.create_subscription(self.types.cls("emo_msgs/msg/FaceLandmarks"), "robot_face/landmarks",
                                 self.on_face, RELIABLE_QOS)
        self.create_timer(1.0 / p["command_rate_hz"], self.resend)
        self.done = threading.Event()
        self.worker = threading.Thread(target=self.babble, name="babbler", daemon=True)
        self.worker.start()

    # -- the robot's side -----------------------------------------------------------------------
    def send(self, commands: np.ndarray) -> None:
        now = self.get_clock().now().to_msg()
        command = FaceCommand(COMMAND_NAMES, np.asarray(commands, np.float32), stamp_to_seconds(now), None,
                              Source.BABBLE)
        self.command_pub.publish(command_to_msg(self.types, command, make_header(self.types, now)))

    def resend(self) -> None:
        target = self.robot.target
        if target is not None:
            self.send(target)

    def on_joints(self, msg: Any) -> None:
        try:
            self.robot.on_present(joint_state_to_commands(msg, self.table))
        except EmoError as exc:
            self.get_logger().warning(f"joint state ignored: {exc}", throttle_duration_sec=5.0)

    def on_face(self, msg: Any) -> None:
        try:
            points = msg_points(msg)
        except EmoError as exc:
            self.get_logger().warning(f"robot face ignored: {exc}", throttle_duration_sec=5.0)
            return
        if points is not None:
            self.robot.on_face(points, stamp_to_seconds(msg.header.stamp))

    # -- the babbling loop (worker thread) ------------------------------------------------------
    def wait_for_graph(self) -> None:
        """Babble only once the driver listens and joint states and a robot face come in: a pose
        sent before discovery completes would be lost, and its "settled" face would be the old one."""
        found = wait_until(lambda: bool(self.command_pub.get_subscription_count() and self.robot.has_present
                                        and self.robot.has_face),
                           STARTUP_TIMEOUT_S, 0.05, check=self.robot.check_running)
        if not found:
            raise ConfigError(f"no servo driver, joint states or robot face after {STARTUP_TIMEOUT_S:.0f} s "
                              "(is the servo driver active, and robot_face/landmarks remapped?)")
        self.get_logger().info("servo driver and robot face found: babbling")

    def babble(self) -> None:
        p = self.params
        babbler = Babbler(self.robot, self.constraints, mode=p["mode"], seed=p["seed"])
        try:
            self.wait_for_graph()
            with babbler.open(p["out"], chunk_size=p["chunk_size"]) as writer:
                if writer.n_samples:
                    self.get_logger().info(f"resuming {p['out']} at sample {writer.n_samples}")
                report = babbler.run(writer, p["samples"], on_sample=self._progress)
            self.get_logger().info(f"{p['out']}: {report.total} samples ({report.collected} new, "
                                   f"{report.unsettled} unsettled, {report.waypoints} waypoints)")
        except Stopped:
            self.done.set()
            return
        except EmoError as exc:
            self.get_logger().error(f"babbling failed: {exc}")
            self.exit_status = 1
        self.done.set()
        if p["shutdown_when_done"]:
            self.context.try_shutdown()     # ends spin() in main(); the launch file then shuts down

    def _progress(self, index: int) -> None:
        if (index + 1) % LOG_EVERY == 0:
            self.get_logger().info(f"sample {index + 1}/{self.params['samples']}")

    def release(self) -> None:
        self.robot.stop()
        self.worker.join(timeout=5.0)


def main(args: list[str] | None = None) -> int:
    return run(BabblerNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
