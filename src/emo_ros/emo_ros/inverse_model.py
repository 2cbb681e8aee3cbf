"""``inverse_model``: the face to make (live or predicted) -> the robot's motor commands.

The mode logic is ``emo_core.pipeline.CoexpressionPipeline``'s, unchanged: in ``mimicry`` every
live frame is retargeted to the robot (paper eq. 1-2) and turned into commands by the inverse
self-model, to be executed now; in ``coexpression`` every command is to arrive now (the driver
leads its servo lag), and from a prediction until its predicted apex (or until the person gets
past it) the robot leads the person toward the predicted face, re-predicted while the expression
unfolds (``face/prediction_refresh``). The detector and predictor it would own in process run in
``peak_activation`` and ``expression_predictor``; ``remote.RemoteAnticipation`` feeds their
messages to it. Each command carries the header stamp of the camera frame it derives from.

Spontaneous blinks (``blink``, ``emo_core.gaze.BlinkStage``) are composed into the eyelid command
here, where it is made, none at the robot's expression apex.

Subscribes ``face/landmarks``, ``face/rest`` (latched), ``face/prediction``,
``face/prediction_refresh``. Publishes
``face/command`` (emo_msgs/FaceCommand, reliable). Service ``~/reset`` (std_srvs/Trigger).
"""
from __future__ import annotations

from typing import Any

from rclpy.node import Node

from emo_core.anticipation.config import load_anticipation_config
from emo_core.anticipation.retarget import Retargeter
from emo_core.errors import EmoError
from emo_core.gaze import BlinkConfig, BlinkStage
from emo_core.pipeline.core import CoexpressionPipeline, PipelineConfig
from emo_core.selfmodel.inverse import InverseModel
from emo_core.twin import DigitalTwin

from .conversions import StampBook, command_to_msg, msg_points, msg_to_face, msg_to_prediction
from .parameters import SCHEMAS, declare
from .remote import RemoteAnticipation
from .runtime import LATCHED_QOS, RELIABLE_QOS, message_types, run

PARAMETERS = SCHEMAS["inverse_model"]
PIPELINE_KEYS = ("min_time_to_apex_s", "max_time_to_apex_s", "release_after_s", "mirror_rest",
                 "release_when_overtaken", "overtake_margin", "hurry_when_overtaken", "lead_mirroring",
                 "lead_fraction", "anticipate", "confidence_blend")


def build_pipeline(params: dict[str, Any], inverse: Any, remote: RemoteAnticipation) -> CoexpressionPipeline:
    """The pipeline of this node: its mode logic, the retargeter of the configured twin, the inverse
    model, and the remote detector/predictor."""
    twin = DigitalTwin(params["twin_config"] or None, noise_std=0.0)
    retarget = load_anticipation_config(params["anticipation_config"] or None).retarget
    # Re-predictions arrive already paced and motion-gated by peak_activation (refresh_every,
    # refresh_min_motion): take each on the next held frame.
    config = PipelineConfig(mode=params["mode"], repredict_every=1, **{k: params[k] for k in PIPELINE_KEYS})
    return CoexpressionPipeline(remote, inverse, Retargeter.from_twin(twin, retarget), twin.calm_commands(),
                                config=config, detector=remote)


class InverseModelNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("inverse_model", **kwargs)
        self.params = p = declare(self, PARAMETERS)
        self.types = message_types()
        self.remote = RemoteAnticipation()
        self.pipeline = build_pipeline(p, InverseModel.load(p["model_dir"] or None), self.remote)
        self.stamps = StampBook()
        # Blinks are composed here, where the eyelid command is made: a second node writing the
        # eyelids on face/command would race this one's commands frame by frame.
        self.blink = (BlinkStage(self.pipeline.calm, BlinkConfig(rate_per_min=p["blink_rate_per_min"],
                                                                 seed=p["blink_seed"]))
                      if p["blink"] else None)
        landmarks = self.types.cls("emo_msgs/msg/FaceLandmarks")
        self.command_pub = self.create_publisher(self.types.cls("emo_msgs/msg/FaceCommand"), "face/command",
                                                 RELIABLE_QOS)
        self.create_subscription(landmarks, "face/rest", self.on_rest, LATCHED_QOS)
        prediction = self.types.cls("emo_msgs/msg/ExpressionPrediction")
        self.create_subscription(prediction, "face/prediction", self.on_prediction, RELIABLE_QOS)
        self.create_subscription(prediction, "face/prediction_refresh", self.on_refresh, RELIABLE_QOS)
        self.create_subscription(landmarks, "face/landmarks", self.on_landmarks, RELIABLE_QOS)
        self.create_service(self.types.cls("std_srvs/srv/Trigger"), "~/reset", self.on_reset)
        self.get_logger().info(f"mode {self.pipeline.mode.value}")

    def on_landmarks(self, msg: Any) -> None:
        seconds = self.stamps.remember(msg.header.stamp)
        try:
            result = self.pipeline.process_face(msg_to_face(msg), seconds)
        except EmoError as exc:
            self.get_logger().warning(f"frame skipped: {exc}", throttle_duration_sec=5.0)
            return
        command = result.command
        if self.blink is not None:   # no blink at the robot's expression apex (held prediction / peak)
            command, _, _ = self.blink.step(seconds, command, held=result.predicted_target is not None)
        if command is None:          # no face: send nothing (the driver's watchdog eases home)
            return
        header = self.stamps.header(self.types, command.stamp, str(msg.header.frame_id))
        self.command_pub.publish(command_to_msg(self.types, command, header))

    def on_rest(self, msg: Any) -> None:
        try:
            self.remote.set_rest(msg_points(msg))
        except EmoError as exc:
            self.get_logger().warning(f"resting face ignored: {exc}")

    def on_prediction(self, msg: Any) -> None:
        self._take(msg, self.remote.add_prediction)

    def on_refresh(self, msg: Any) -> None:
        self._take(msg, self.remote.add_refresh)

    def _take(self, msg: Any, add: Any) -> None:
        try:
            prediction = msg_to_prediction(msg)
        except EmoError as exc:
            self.get_logger().warning(f"prediction ignored: {exc}")
            return
        self.stamps.remember(msg.header.stamp)
        add(prediction)

    def on_reset(self, request: Any, response: Any) -> Any:
        self.pipeline.reset()
        if self.blink is not None:
            self.blink.reset()
        response.success, response.message = True, "forgot the resting face and any held prediction"
        return response


def main(args: list[str] | None = None) -> int:
    return run(InverseModelNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
