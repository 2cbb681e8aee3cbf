"""``expression_predictor``: peak activation -> the expression the face is heading to, and when.

Wraps ``emo_core.anticipation.predictor.ExpressionPredictor.predict_event``. The prediction keeps
the header of the frame the detector fired on, so ``header.stamp + time_to_apex`` is the predicted
apex on the camera's clock. ``confidence`` is the predictor's calibrated confidence
(``Prediction.confidence``; 1 for models without one), which ``inverse_model`` blends toward
mimicry with, exactly as the in-process pipeline does.

Subscribes ``face/peak`` and ``face/peak_refresh``. Publishes ``face/prediction`` and, for the
refreshed windows of an unfolding expression, ``face/prediction_refresh``
(emo_msgs/ExpressionPrediction, reliable).
"""
from __future__ import annotations

from typing import Any

from rclpy.node import Node

from emo_core.anticipation.predictor import ExpressionPredictor
from emo_core.conversions import msg_to_event, prediction_to_msg
from emo_core.errors import EmoError

from .parameters import SCHEMAS, declare
from .runtime import RELIABLE_QOS, message_types, run

PARAMETERS = SCHEMAS["expression_predictor"]


class ExpressionPredictorNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("expression_predictor", **kwargs)
        self.params = declare(self, PARAMETERS)
        self.types = message_types()
        self.predictor = ExpressionPredictor.load(self.params["model_dir"] or None)
        prediction = self.types.cls("emo_msgs/msg/ExpressionPrediction")
        peak = self.types.cls("emo_msgs/msg/PeakActivation")
        self.prediction_pub = self.create_publisher(prediction, "face/prediction", RELIABLE_QOS)
        self.refresh_pub = self.create_publisher(prediction, "face/prediction_refresh", RELIABLE_QOS)
        self.create_subscription(peak, "face/peak", self.on_peak, RELIABLE_QOS)
        self.create_subscription(peak, "face/peak_refresh", self.on_refresh, RELIABLE_QOS)
        self.get_logger().info(f"predictor: {self.predictor.architecture}")

    def on_peak(self, msg: Any) -> None:
        prediction = self._predict(msg, self.prediction_pub)
        if prediction is not None:
            self.get_logger().info(f"predicted apex in {prediction.time_to_apex:.3f} s")

    def on_refresh(self, msg: Any) -> None:
        self._predict(msg, self.refresh_pub)

    def _predict(self, msg: Any, publisher: Any) -> Any:
        try:
            prediction = self.predictor.predict_event(msg_to_event(msg))
        except EmoError as exc:
            self.get_logger().warning(f"peak activation skipped: {exc}")
            return None
        confidence = float(getattr(prediction, "confidence", 1.0))
        publisher.publish(prediction_to_msg(self.types, prediction, msg.header, confidence))
        return prediction


def main(args: list[str] | None = None) -> int:
    return run(ExpressionPredictorNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
