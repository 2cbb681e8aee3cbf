"""``face_landmarks``: eye-camera images -> one pose-normalized face (113 landmarks) per frame.

Each camera gets its own MediaPipe extractor (video mode tracks the face from frame to frame, per
stream); the faces of the cameras are combined with ``emo_core.perception.views.fuse_views``
(``emo_core.perception.views.ViewPairer`` says which frames go together). The FaceLandmarks message carries the pacing
camera frame's header unchanged.

Subscribes ``<camera>_eye/image_raw`` for each of ``cameras`` (sensor-data QoS).
Publishes ``face/landmarks`` (emo_msgs/FaceLandmarks, reliable), ``face/landmarks_image`` (the
same face's normalized image points, for the ``gaze`` node; ``publish_image``), ``face/debug_image`` (the frame with
its landmarks drawn; only rendered while someone subscribes) and ``face/markers``
(visualization_msgs/MarkerArray of the metric face, only while subscribed).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from rclpy.node import Node

from emo_core.conversions import face_to_msg, make_header, stamp_to_seconds
from emo_core.errors import EmoError
from emo_core.perception import ExtractorConfig, FaceLandmarkExtractor
from emo_core.perception.views import ViewPairer
from emo_core.schema import Face, Space
from emo_core.visual import annotate, face_markers

from .parameters import SCHEMAS, declare
from .runtime import RELIABLE_QOS, SENSOR_QOS, ImageCodec, message_types, run

PARAMETERS = SCHEMAS["face_landmarks"]


class FaceLandmarksNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("face_landmarks", **kwargs)
        self.params = p = declare(self, PARAMETERS)
        self.types = message_types()
        self.codec = ImageCodec()
        self.space = Space.ROBOT if p["space"] == "robot" else Space.METRIC
        self.pairer = ViewPairer(p["cameras"], p["view_policy"], p["max_view_age_s"])
        config = ExtractorConfig(max_faces=p["max_faces"], min_detection_confidence=p["min_detection_confidence"],
                                 min_tracking_confidence=p["min_tracking_confidence"])
        self.extractors = {camera: FaceLandmarkExtractor(config) for camera in self.pairer.cameras}
        self.frames: dict[str, Any] = {}      # latest RGB frame per camera, for the debug image
        self.landmarks_pub = self.create_publisher(self.types.cls("emo_msgs/msg/FaceLandmarks"), "face/landmarks",
                                                   RELIABLE_QOS)
        self.image_landmarks_pub = (self.create_publisher(self.types.cls("emo_msgs/msg/FaceLandmarks"),
                                                          "face/landmarks_image", RELIABLE_QOS)
                                    if p["publish_image"] else None)
        self.debug_pub = self.create_publisher(self.types.cls("sensor_msgs/msg/Image"), "face/debug_image", SENSOR_QOS)
        self.markers_pub = self.create_publisher(self.types.cls("visualization_msgs/msg/MarkerArray"), "face/markers",
                                                 RELIABLE_QOS)
        image_type = self.types.cls("sensor_msgs/msg/Image")
        self.image_subscriptions = [
            self.create_subscription(image_type, f"{camera}_eye/image_raw",
                                     lambda msg, camera=camera: self.on_image(camera, msg), SENSOR_QOS)
            for camera in self.pairer.cameras]
        self.get_logger().info(f"cameras {', '.join(self.pairer.cameras)} (view policy {p['view_policy']}), "
                               f"space {p['space']}")

    def on_image(self, camera: str, msg: Any) -> None:
        try:
            rgb = self.codec.decode(msg)
            face = self.extractors[camera].process(rgb, stamp_to_seconds(msg.header.stamp), camera)
        except EmoError as exc:
            self.get_logger().warning(f"{camera} frame skipped: {exc}", throttle_duration_sec=5.0)
            return
        self.frames[camera] = rgb
        fused = self.pairer.add(camera, replace(face, space=self.space))
        if fused is not None:
            self.publish(fused, msg.header)

    def publish(self, face: Face, header: Any) -> None:
        self.landmarks_pub.publish(face_to_msg(self.types, face, header=header))
        if self.image_landmarks_pub is not None:      # where the face is in the image: the gaze node's input
            self.image_landmarks_pub.publish(face_to_msg(self.types, face, header=header, space=Space.IMAGE))
        if self.debug_pub.get_subscription_count():
            shown = face.camera if face.camera in self.frames else self.pairer.lead
            self.debug_pub.publish(self.codec.encode(annotate(self.frames[shown], face), header))
        if self.markers_pub.get_subscription_count():
            marker_header = make_header(self.types, header.stamp, self.params["marker_frame"])
            label = f"{face.camera} {face.confidence:.2f}" if face.detected else ""
            self.markers_pub.publish(face_markers(self.types, face.metric if face.detected else None, marker_header,
                                                  self.params["marker_scale"], label))

    def release(self) -> None:
        for extractor in self.extractors.values():
            extractor.close()


def main(args: list[str] | None = None) -> int:
    return run(FaceLandmarksNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
