"""``peak_activation``: the causal peak-activation detector on the live face.

Wraps ``emo_core.anticipation.PeakActivationDetector``: every FaceLandmarks frame goes in; when the
detector fires, a PeakActivation goes out with the header of the frame it fired on, the resting face
and the last frames (each with its own exact camera stamp). While that expression still unfolds,
the newest window goes out again every ``refresh_every`` frames on ``face/peak_refresh``
(``PeakActivationDetector.refresh_event``), so the predictor can re-predict as the in-process
pipeline does. The detector's resting face is also published (latched) whenever it changes,
because mirroring in ``inverse_model`` measures the live face against it from the first calibrated
frame on, long before any expression fires.

Subscribes ``face/landmarks``. Publishes ``face/peak`` and ``face/peak_refresh``
(emo_msgs/PeakActivation, reliable) and ``face/rest`` (emo_msgs/FaceLandmarks, reliable +
transient local). Service ``~/reset`` (std_srvs/Trigger): forget the person and calibrate again.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.node import Node

from emo_core.anticipation.config import load_anticipation_config
from emo_core.anticipation.detector import PeakActivationDetector
from emo_core.anticipation.scorer import ExpressionScorer
from emo_core.conversions import StampBook, event_to_msg, msg_to_face, points_to_msg
from emo_core.errors import EmoError
from emo_core.schema import Space

from .parameters import SCHEMAS, declare
from .runtime import LATCHED_QOS, RELIABLE_QOS, message_types, run

PARAMETERS = SCHEMAS["peak_activation"]


class PeakActivationNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("peak_activation", **kwargs)
        self.params = p = declare(self, PARAMETERS)
        self.types = message_types()
        config = load_anticipation_config(p["anticipation_config"] or None)
        self.detector = PeakActivationDetector(config.detector, scorer=ExpressionScorer.load(p["model_dir"] or None))
        self.stamps = StampBook()
        self._published_rest: np.ndarray | None = None
        landmarks = self.types.cls("emo_msgs/msg/FaceLandmarks")
        peak = self.types.cls("emo_msgs/msg/PeakActivation")
        self.peak_pub = self.create_publisher(peak, "face/peak", RELIABLE_QOS)
        self.refresh_pub = self.create_publisher(peak, "face/peak_refresh", RELIABLE_QOS)
        self.rest_pub = self.create_publisher(landmarks, "face/rest", LATCHED_QOS)
        self.create_subscription(landmarks, "face/landmarks", self.on_landmarks, RELIABLE_QOS)
        self.create_service(self.types.cls("std_srvs/srv/Trigger"), "~/reset", self.on_reset)
        self.get_logger().info(f"detector: calibrates on {config.detector.calibration_frames} frames, fires at "
                               f"p > {config.detector.on_probability} for {config.detector.confirm_frames} frames")

    def on_landmarks(self, msg: Any) -> None:
        seconds = self.stamps.remember(msg.header.stamp, float(msg.confidence))
        try:
            face = msg_to_face(msg)
            event = self.detector.update(face, seconds)
            # None on the firing frame itself: refreshes only follow a firing.
            refresh = self.detector.refresh_event(seconds, self.params["refresh_every"],
                                                  self.params["refresh_min_motion"])
        except EmoError as exc:
            self.get_logger().warning(f"frame skipped: {exc}", throttle_duration_sec=5.0)
            return
        self._publish_rest(msg.header)
        if event is not None:
            self.peak_pub.publish(event_to_msg(self.types, event, msg.header, self.stamps, camera=str(msg.camera)))
            self.get_logger().info(f"peak activation at {seconds:.3f} s (p = {event.activation:.2f})")
        elif refresh is not None:
            self.refresh_pub.publish(event_to_msg(self.types, refresh, msg.header, self.stamps, camera=str(msg.camera)))

    def _publish_rest(self, header: Any) -> None:
        rest = self.detector.rest
        if rest is None:
            return
        previous = self._published_rest
        if previous is not None and float(np.max(np.abs(rest - previous))) <= self.params["rest_change_threshold"]:
            return
        self._published_rest = rest.copy()
        self.rest_pub.publish(points_to_msg(self.types, rest, header, space=Space.METRIC, camera="rest"))

    def on_reset(self, request: Any, response: Any) -> Any:
        self.detector.reset()
        self._published_rest = None
        response.success, response.message = True, "detector reset: calibrating on the next frames"
        return response


def main(args: list[str] | None = None) -> int:
    return run(PeakActivationNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
