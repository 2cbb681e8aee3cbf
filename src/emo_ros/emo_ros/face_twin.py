"""``face_twin``: the robot's face in simulation -- joint states -> robot-face landmarks and image.

Turns the servos' present positions (``joint_states``) into the 11 commands they express (the
servo table) and those into the face the digital twin makes (``emo_core.twin.DigitalTwin``): what
a camera looking at the robot would see. In sim this is the robot's face for rviz and for babbling.

Subscribes ``joint_states``. Publishes ``twin/landmarks`` (emo_msgs/FaceLandmarks, robot space,
reliable, at most ``rate_hz``; header = the joint state's) and ``twin/image`` (the rendered face,
sensor-data QoS, at most ``image_rate_hz``; the eyes' gaze and the neck pose drawn) and ``twin/markers`` (the robot face beside the human
face's markers in rviz).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.node import Node

from emo_core.conversions import (joint_state_pose, joint_state_to_commands, make_header, points_to_msg,
                                  stamp_to_seconds)
from emo_core.errors import EmoError
from emo_core.gaze import GazeJoints
from emo_core.pacing import RateGate
from emo_core.schema import Space
from emo_core.servo import ServoTable
from emo_core.twin import DigitalTwin, render_face
from emo_core.visual import face_markers

from .parameters import SCHEMAS, declare
from .runtime import RELIABLE_QOS, SENSOR_QOS, ImageCodec, message_types, run

PARAMETERS = SCHEMAS["face_twin"]


class FaceTwinNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("face_twin", **kwargs)
        self.params = p = declare(self, PARAMETERS)
        self.types = message_types()
        self.codec = ImageCodec()
        self.table = ServoTable.load(p["servo_config"] or None)
        self.twin = DigitalTwin(p["twin_config"] or None, seed=p["seed"])
        self.joints = GazeJoints(self.table)
        self.landmark_gate = RateGate(p["rate_hz"])
        self.image_gate = RateGate(p["image_rate_hz"])
        self.landmarks_pub = self.create_publisher(self.types.cls("emo_msgs/msg/FaceLandmarks"), "twin/landmarks",
                                                   RELIABLE_QOS)
        self.image_pub = self.create_publisher(self.types.cls("sensor_msgs/msg/Image"), "twin/image", SENSOR_QOS)
        self.markers_pub = self.create_publisher(self.types.cls("visualization_msgs/msg/MarkerArray"), "twin/markers",
                                                 RELIABLE_QOS)
        self.create_subscription(self.types.cls("sensor_msgs/msg/JointState"), "joint_states", self.on_joints,
                                 RELIABLE_QOS)

    def on_joints(self, msg: Any) -> None:
        t = stamp_to_seconds(msg.header.stamp)
        if not self.landmark_gate(t):
            return
        try:
            commands = np.clip(joint_state_to_commands(msg, self.table), 0.0, 1.0)
        except EmoError as exc:
            self.get_logger().warning(f"joint state ignored: {exc}", throttle_duration_sec=5.0)
            return
        points = self.twin.forward(commands, noise=self.params["noise"])
        self.landmarks_pub.publish(points_to_msg(self.types, points, msg.header, space=Space.ROBOT, camera="twin"))
        if self.image_gate(t) and self.image_pub.get_subscription_count():
            size = self.params["image_size"]
            pose = joint_state_pose(msg, self.table, self.joints)     # the eyes' gaze and the neck, drawn too
            image = render_face(points, (size, size), gaze=(pose.eye_yaw, pose.eye_pitch),
                                head=(pose.neck_roll, pose.neck_pitch, pose.neck_yaw))
            self.image_pub.publish(self.codec.encode(image, msg.header))
        if self.markers_pub.get_subscription_count():
            p = self.params
            header = make_header(self.types, msg.header.stamp, p["marker_frame"])
            self.markers_pub.publish(face_markers(self.types, points, header, p["marker_scale"], "robot (twin)",
                                                  offset=p["marker_offset"], namespace="emo_twin"))


def main(args: list[str] | None = None) -> int:
    return run(FaceTwinNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
