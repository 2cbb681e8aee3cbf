"""``gaze``: eyes and neck that look at the person (``emo_core.gaze.GazeController``).

A node of its own, not part of ``inverse_model``: it needs the face's *image* position and the
servos' present joint angles, at camera rate, and nothing of the expression pipeline; its commands
name only the gaze and neck channels, so the one ``servo_driver`` takes them beside the expression
commands on the same topic and neither ever delays the other. (Blinking is composed where the
expression's eyelid command is made, in ``inverse_model``.)

Per eye-camera frame: the face's image landmarks (the face ``face_landmarks`` picked, the one the
expression pipeline uses) and the joint angles the servos were at when the frame was taken (looked
up by the frame's stamp in a short history of ``joint_states``) go into the controller; its gaze and
neck targets go out as a FaceCommand (source ``gaze``, ``execute_at`` = when the servos should be
there). Face lost: hold, then back to centre, then nothing (the driver holds; its watchdog homes).
Before the first joint state the head is taken to be at home.

Subscribes ``face/landmarks_image`` (emo_msgs/FaceLandmarks, image space) and ``joint_states``.
Publishes ``face/command`` (emo_msgs/FaceCommand, gaze/neck names), ``gaze/state``
(emo_msgs/GazeState), ``gaze/target`` (geometry_msgs/PointStamped: the point looked at,
``target_distance_m`` away) and ``gaze/markers`` (visualization_msgs/MarkerArray, only while
subscribed).
"""
from __future__ import annotations

from typing import Any

from rclpy.node import Node

from emo_core.conversions import (command_to_msg, gaze_state_to_msg, gaze_target_point, joint_state_pose, make_header,
                                  msg_to_face, stamp_to_seconds)
from emo_core.errors import EmoError
from emo_core.gaze import EyeCamera, GazeConfig, GazeController, GazeJoints, Pose, PoseHistory
from emo_core.gaze.stage import to_face_command
from emo_core.servo import ServoTable
from emo_core.visual import gaze_markers

from .parameters import GAZE_CONFIG_KEYS, SCHEMAS, declare
from .runtime import RELIABLE_QOS, message_types, run

PARAMETERS = SCHEMAS["gaze"]


def build_controller(params: dict[str, Any]) -> tuple[GazeController, ServoTable]:
    """The controller of this node from its parameters (limits and speeds from the servo table,
    saccade timing from its driver's servo lag model)."""
    table = ServoTable.load(params["servo_config"] or None)
    joints = GazeJoints(table)
    camera = EyeCamera(params["image_width"], params["image_height"], params["hfov_deg"])
    config = GazeConfig(servo_lag_s=float(table.driver.get("servo_lag_s", 0.2)),
                        **{k: params[k] for k in GAZE_CONFIG_KEYS})
    return GazeController(joints, camera, config), table


class GazeNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("gaze", **kwargs)
        self.params = p = declare(self, PARAMETERS)
        self.types = message_types()
        self.controller, self.table = build_controller(p)
        self.poses = PoseHistory()
        self.command_pub = self.create_publisher(self.types.cls("emo_msgs/msg/FaceCommand"), "face/command",
                                                 RELIABLE_QOS)
        self.state_pub = self.create_publisher(self.types.cls("emo_msgs/msg/GazeState"), "gaze/state", RELIABLE_QOS)
        self.target_pub = self.create_publisher(self.types.cls("geometry_msgs/msg/PointStamped"), "gaze/target",
                                                RELIABLE_QOS)
        self.markers_pub = self.create_publisher(self.types.cls("visualization_msgs/msg/MarkerArray"), "gaze/markers",
                                                 RELIABLE_QOS)
        self.create_subscription(self.types.cls("sensor_msgs/msg/JointState"), "joint_states", self.on_joints,
                                 RELIABLE_QOS)
        self.create_subscription(self.types.cls("emo_msgs/msg/FaceLandmarks"), "face/landmarks_image",
                                 self.on_landmarks, RELIABLE_QOS)
        self.get_logger().info(f"eye camera {p['image_width']}x{p['image_height']}, {p['hfov_deg']} deg; "
                               f"dead band {p['dead_band_deg']} deg, neck time constant {p['neck_tau_s']} s")

    def on_joints(self, msg: Any) -> None:
        try:
            self.poses.add(stamp_to_seconds(msg.header.stamp), joint_state_pose(msg, self.table, self.controller.joints))
        except EmoError as exc:
            self.get_logger().warning(f"joint state ignored: {exc}", throttle_duration_sec=5.0)

    def on_landmarks(self, msg: Any) -> None:
        stamp = stamp_to_seconds(msg.header.stamp)
        pose = self.poses.at(stamp)
        if pose is None:
            # No joint_states yet: take the head as at home. (Taking the controller's own commands
            # for the pose would run away if the servos are not moving: the face would seem to slip
            # further with every command.)
            self.get_logger().warning("no joint_states yet: assuming the head at home", throttle_duration_sec=5.0)
            pose = Pose()
        try:
            face = msg_to_face(msg)
            command = self.controller.update(face if face.detected else None, stamp, pose)
        except EmoError as exc:
            self.get_logger().warning(f"frame skipped: {exc}", throttle_duration_sec=5.0)
            return
        if command is not None:
            self.command_pub.publish(command_to_msg(self.types, to_face_command(command), header=msg.header))
        state = self.controller.state
        self.state_pub.publish(gaze_state_to_msg(self.types, state, msg.header))
        p = self.params
        header = make_header(self.types, msg.header.stamp, p["marker_frame"])
        self.target_pub.publish(gaze_target_point(self.types, state.fixation, header, p["target_distance_m"]))
        if self.markers_pub.get_subscription_count():
            self.markers_pub.publish(gaze_markers(self.types, state.fixation, state.face_direction, header,
                                                  p["target_distance_m"]))


def main(args: list[str] | None = None) -> int:
    return run(GazeNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
