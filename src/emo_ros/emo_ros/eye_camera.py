"""``eye_camera``: one eye camera (device, video file or image folder) -> Image + CameraInfo.

A lifecycle node: *configure* opens the source (so a missing device or file fails the transition
with one clear line), *activate* starts publishing, *deactivate* stops, *cleanup* releases the
source. Frames are stamped with the node clock when they are read -- for a device that is the
capture time; the stamp then travels unchanged through every downstream message.

Publishes (relative to the node, so ``/emo/left_eye/...`` for the node ``left_eye`` in ``/emo``):
``~/image_raw`` (sensor_msgs/Image, rgb8, sensor-data QoS) and ``~/camera_info``.
"""
from __future__ import annotations

from typing import Any

from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn

from emo_core.clock import Clock
from emo_core.conversions import camera_info_msg, make_header
from emo_core.errors import EmoError
from emo_core.perception.sources import DeviceSource, FrameSource, open_source

from .parameters import SCHEMAS, declare
from .runtime import SENSOR_QOS, ImageCodec, RosClock, message_types, run

PARAMETERS = SCHEMAS["eye_camera"]


def open_camera(params: dict[str, Any], clock: Clock) -> FrameSource:
    """A device (index or /dev/video*) with the requested size and rate, else a file or folder."""
    spec = str(params["source"])
    if spec.isdigit() or spec.startswith("/dev/video"):
        return DeviceSource(int(spec) if spec.isdigit() else spec, clock=clock, width=params["width"],
                            height=params["height"], fps=params["fps"])
    return open_source(spec, fps=params["fps"] or 30.0, loop=params["loop"], clock=clock)


class EyeCamera(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("eye_camera", **kwargs)
        self.params = declare(self, PARAMETERS)
        self.frame_id = f"{self.params['camera']}_eye"
        self.types = message_types()
        self.codec = ImageCodec()
        self.source: FrameSource | None = None
        self.image_pub = self.info_pub = self.timer = None

    # -- lifecycle ------------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        p = self.params
        try:
            self.source = open_camera(p, RosClock(self))
        except EmoError as exc:
            self.get_logger().error(f"cannot open camera source: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.image_pub = self.create_lifecycle_publisher(self.types.cls("sensor_msgs/msg/Image"), "~/image_raw",
                                                         SENSOR_QOS)
        self.info_pub = self.create_lifecycle_publisher(self.types.cls("sensor_msgs/msg/CameraInfo"),
                                                        "~/camera_info", SENSOR_QOS)
        self.get_logger().info(f"opened {self.source.name} ({self._rate():.1f} frames/s)")
        return super().on_configure(state)

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.timer = self.create_timer(1.0 / self._rate(), self._publish_frame)
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop_timer()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._stop_timer()
        self._close()
        self.destroy_lifecycle_publisher(self.image_pub)
        self.destroy_lifecycle_publisher(self.info_pub)
        self.image_pub = self.info_pub = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._stop_timer()
        self._close()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        self._close()

    # -- frames ---------------------------------------------------------------------------------
    def _publish_frame(self) -> None:
        try:
            frame = self.source.read()
        except EmoError as exc:           # unplugged device, truncated file
            self.get_logger().error(f"{exc}; stopping")
            self._stop_timer()
            return
        if frame is None:
            self.get_logger().info("end of stream")
            self._stop_timer()
            return
        header = make_header(self.types, self.get_clock().now().to_msg(), self.frame_id)
        height, width = frame.image.shape[:2]
        self.image_pub.publish(self.codec.encode(frame.image, header))
        self.info_pub.publish(camera_info_msg(self.types, header, width, height, self.params["focal_length_px"]))

    def _rate(self) -> float:
        fps = self.params["fps"]
        return fps if fps > 0 else float(getattr(self.source, "fps", 30.0) or 30.0)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None

    def _close(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None


def main(args: list[str] | None = None) -> int:
    return run(EyeCamera, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
