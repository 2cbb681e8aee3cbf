"""The project's ROS 2 message types without ROS: rosbags' typestore with emo_msgs registered.

Used to read and write bag files and to check the .msg definitions anywhere (no rclpy needed).
"""
from __future__ import annotations

from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from .errors import SchemaError
from .resources import msg_dir

PACKAGE = "emo_msgs"
MESSAGES = ("FaceLandmarks", "PeakActivation", "ExpressionPrediction", "FaceCommand", "GazeState")


def emo_typestore(directory: str | Path | None = None) -> Typestore:
    """A ROS 2 Jazzy typestore with the emo_msgs types (MESSAGES) registered."""
    store = get_typestore(Stores.ROS2_JAZZY)
    folder = Path(directory) if directory else msg_dir()
    types: dict = {}
    for name in MESSAGES:
        path = folder / f"{name}.msg"
        try:
            types.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{name}"))
        except Exception as exc:  # rosbags raises several parser exception types
            raise SchemaError(f"{path}: invalid message definition ({exc})") from None
    store.register(types)
    return store
