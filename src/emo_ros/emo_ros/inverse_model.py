"""``inverse_model``: the face to make (live or predicted) -> the robot's motor commands.

The decisions are ``emo_core.pipeline.controller.CoexpressionController``'s, the very class the
in-process pipeline runs: in ``mimicry`` every live frame is retargeted to the robot (paper eq. 1-2)
and turned into commands by the inverse self-model, to be executed now; in ``coexpression`` every
command is to arrive now (the driver leads its servo lag), and from a prediction until its
predicted apex (or until the person gets past it) the robot leads the person toward the predicted
face, re-predicted while the expression unfolds. The detector and predictor run in
``peak_activation`` and ``expression_predictor``: their resting face and predictions reach the
controller as they are (``emo_core.pipeline.inbox``), each taken on the next live frame. Each
command carries the header stamp of the camera frame it derives from.

Spontaneous blinks (``blink``, ``emo_core.gaze.BlinkStage``) are composed into the eyelid command
here, where it is made, none at the robot's expression apex.

The controller's settings (``PIPELINE_KEYS``) are applied on ``ros2 param set``; the models,
configs and blink settings are read at start (read-only).

Subscribes ``face/landmarks``, ``face/rest`` (latched), ``face/prediction``,
``face/prediction_refresh``. Publishes
``face/command`` (emo_msgs/FaceCommand, reliable). Service ``~/reset`` (std_srvs/Trigger).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from rclpy.node import Node

from emo_core.anticipation.config import load_anticipation_config
from emo_core.anticipation.retarget import Retargeter
from emo_core.commands import FaceCommand
from emo_core.conversions import (PredictionFields, StampBook, command_to_msg, msg_points, msg_to_face,
                                  msg_to_prediction)
from emo_core.errors import EmoError
from emo_core.gaze import BlinkConfig, BlinkStage
from emo_core.pipeline.controller import CoexpressionController, InverseModel, PipelineConfig
from emo_core.pipeline.inbox import PredictionInbox
from emo_core.schema import Face
from emo_core.selfmodel.inverse import InverseModel as SelfModel
from emo_core.twin import DigitalTwin

from .parameters import SCHEMAS, declare
from .runtime import LATCHED_QOS, RELIABLE_QOS, message_types, run

PARAMETERS = SCHEMAS["inverse_model"]
#: The parameters that are PipelineConfig fields of the same name (applied on set).
PIPELINE_KEYS = ("mode", "min_time_to_apex_s", "max_time_to_apex_s", "release_after_s", "mirror_rest",
                 "release_when_overtaken", "overtake_margin", "hurry_when_overtaken", "lead_mirroring",
                 "lead_fraction", "anticipate", "confidence_blend")


def pipeline_config(params: Mapping[str, Any]) -> PipelineConfig:
    """The controller's settings from the node's parameters. Re-predictions arrive already paced and
    motion-gated by peak_activation (refresh_every, refresh_min_motion): each is taken on the next
    held frame (``repredict_every: 1``)."""
    return PipelineConfig(repredict_every=1, **{k: params[k] for k in PIPELINE_KEYS})


def build_controller(params: Mapping[str, Any], inverse: InverseModel) -> CoexpressionController:
    """The controller of this node: its settings, the retargeter of the configured twin, the inverse model."""
    twin = DigitalTwin(params["twin_config"] or None, noise_std=0.0)
    retarget = load_anticipation_config(params["anticipation_config"] or None).retarget
    return CoexpressionController(pipeline_config(params), Retargeter.from_twin(twin, retarget), inverse,
                                  twin.calm_commands())


class InverseModelNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("inverse_model", **kwargs)
        self.params = p = declare(self, PARAMETERS, on_set=self.on_set)
        self.types = message_types()
        self.controller = build_controller(p, SelfModel.load(p["model_dir"] or None))
        self.inbox = PredictionInbox()
        self.rest: np.ndarray | None = None       # the newest face/rest (the controller keeps its own)
        self.stamps = StampBook()
        # Blinks are composed here, where the eyelid command is made: a second node writing the
        # eyelids on face/command would race this one's commands frame by frame.
        self.blink = (BlinkStage(self.controller.calm, BlinkConfig(rate_per_min=p["blink_rate_per_min"],
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
        self.get_logger().info(f"mode {self.controller.mode.value}")

    def on_set(self, changed: Mapping[str, Any]) -> None:
        """``ros2 param set`` of controller settings: the controller runs on with the new ones
        (ConfigError, and the set refused, when they do not make a valid PipelineConfig)."""
        self.controller.reconfigure(pipeline_config({**self.params, **changed}))

    def on_landmarks(self, msg: Any) -> None:
        seconds = self.stamps.remember(msg.header.stamp)
        try:
            command, held = self.decide(msg_to_face(msg), seconds)
        except EmoError as exc:
            self.get_logger().warning(f"frame skipped: {exc}", throttle_duration_sec=5.0)
            return
        if self.blink is not None:   # no blink at the robot's expression apex (held prediction / peak)
            command, _, _ = self.blink.step(seconds, command, held=held)
        if command is None:          # no face: send nothing (the driver's watchdog eases home)
            return
        header = self.stamps.header(self.types, command.stamp, str(msg.header.frame_id))
        self.command_pub.publish(command_to_msg(self.types, command, header))

    def decide(self, face: Face, stamp: float) -> tuple[FaceCommand | None, bool]:
        """One live frame through the controller: the command (None without a face) and whether a
        prediction is held."""
        if not face.detected:
            return None, False
        controller = self.controller
        controller.observe_rest(self.rest)
        decision = self.inbox.feed(controller, face.metric[:, :2], stamp)
        return decision.command, controller.held_target is not None

    def on_rest(self, msg: Any) -> None:
        try:
            points = msg_points(msg)
        except EmoError as exc:
            self.get_logger().warning(f"resting face ignored: {exc}")
            return
        self.rest = None if points is None else points.copy()

    def on_prediction(self, msg: Any) -> None:
        self._take(msg, self.inbox.add_prediction)

    def on_refresh(self, msg: Any) -> None:
        self._take(msg, self.inbox.add_refresh)

    def _take(self, msg: Any, add: Callable[[PredictionFields], None]) -> None:
        try:
            prediction = msg_to_prediction(msg)
        except EmoError as exc:
            self.get_logger().warning(f"prediction ignored: {exc}")
            return
        self.stamps.remember(msg.header.stamp)
        add(prediction)

    def on_reset(self, request: Any, response: Any) -> Any:
        self.rest = None
        self.inbox.reset()
        self.controller.reset()
        if self.blink is not None:
            self.blink.reset()
        response.success, response.message = True, "forgot the resting face and any held prediction"
        return response


def main(args: list[str] | None = None) -> int:
    return run(InverseModelNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
