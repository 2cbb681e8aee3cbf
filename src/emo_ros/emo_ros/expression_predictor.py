"""``expression_predictor``: peak activation -> the expression the face is heading to, and when.

Wraps ``emo_core.anticipation.predictor.ExpressionPredictor.predict_event``. The prediction keeps
the header of the frame the detector fired on, so ``header.stamp + time_to_apex`` is the predicted
apex on the camera's clock. ``confidence`` is the lowest detection confidence of the window's
frames (the predictor itself has no calibrated confidence).

Subscribes ``face/peak``. Publishes ``face/prediction`` (emo_msgs/ExpressionPrediction, reliable).
"""
from __future__ import annotations

from typing import Any

from rclpy.node import Node

from emo_core.anticipation.predictor import ExpressionPredictor
from emo_core.errors import EmoError

from .conversions import msg_to_event, prediction_to_msg
from .parameters import SCHEMAS, declare
from .runtime import RELIABLE_QOS, message_types, run

PARAMETERS = SCHEMAS["expression_predictor"]


class ExpressionPredictorNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("expression_predictor", **kwargs)
        self.params = declare(self, PARAMETERS)
        self.types = message_types()
        self.predictor = ExpressionPredictor.load(self.params["model_dir"] or None)
        self.prediction_pub = self.create_publisher(self.types.cls("emo_msgs/msg/ExpressionPrediction"),
                                                    "face/prediction", RELIABLE_QOS)
        self.create_subscription(self.types.cls("emo_msgs/msg/PeakActivation"), "face/peak", self.on_peak,
                                 RELIABLE_QOS)
        self.get_logger().info(f"predictor: {self.predictor.architecture}")

    def on_peak(self, msg: Any) -> None:
        try:
            prediction = self.predictor.predict_event(msg_to_event(msg))
        except EmoError as exc:
            self.get_logger().warning(f"peak activation skipped: {exc}")
            return
        confidence = min((float(frame.confidence) for frame in msg.window), default=0.0)
        self.prediction_pub.publish(prediction_to_msg(self.types, prediction, msg.header, confidence))
        self.get_logger().info(f"predicted apex in {prediction.time_to_apex:.3f} s")


def main(args: list[str] | None = None) -> int:
    return run(ExpressionPredictorNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
