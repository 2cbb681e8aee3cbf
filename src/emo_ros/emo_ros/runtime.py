"""What every node shares: QoS profiles, the clock adapter, message types and ``main()``.

QoS: camera images and rendered images use the sensor-data profile (best effort, shallow: a late
frame is worth nothing); landmarks, events, predictions and commands are reliable, depth 10 (a
lost peak activation is a missed expression); the resting face is latched (transient local) so a
node that starts late still gets it.
"""
from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Any

import rclpy
from emo_core.errors import EmoError
from emo_core.signals import Stopped, stop_on_signals
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

from emo_core.conversions import MessageTypes, image_to_msg, msg_to_image, python_message_types

SENSOR_QOS = qos_profile_sensor_data
RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)

_TYPES: dict[str, MessageTypes] = {}


def message_types() -> MessageTypes:
    """The rosidl Python message classes (one lookup cache per process)."""
    if "python" not in _TYPES:
        _TYPES["python"] = python_message_types()
    return _TYPES["python"]


class ImageCodec:
    """RGB arrays <-> sensor_msgs/Image through cv_bridge when it is installed, else through the
    plain-numpy conversions (same encodings, same result for rgb8/bgr8/mono8)."""

    def __init__(self) -> None:
        try:
            from cv_bridge import CvBridge
            self._bridge = CvBridge()
        except ImportError:
            self._bridge = None

    def encode(self, rgb: Any, header: Any) -> Any:
        if self._bridge is None:
            return image_to_msg(message_types(), rgb, header)
        msg = self._bridge.cv2_to_imgmsg(rgb, encoding="rgb8")
        msg.header = header
        return msg

    def decode(self, msg: Any) -> Any:
        if self._bridge is None:
            return msg_to_image(msg)
        return self._bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")


class RosClock:
    """``emo_core.clock.Clock`` over a node's clock: seconds of ROS time (sim time aware)."""

    def __init__(self, node: Node) -> None:
        self._clock = node.get_clock()

    def now(self) -> float:
        return self._clock.now().nanoseconds * 1e-9


def forward_core_logs(level: int = logging.INFO) -> None:
    """Let ``emo_core``'s logging show on the console next to the node's own log lines."""
    logging.basicConfig(level=level, format="[%(levelname)s] [%(name)s]: %(message)s")


def run(make_node: Callable[[], Any], *, threads: int = 1, args: list[str] | None = None) -> int:
    """``rclpy.init``, build the node, spin until Ctrl-C or shutdown, then release it cleanly.

    The node may define ``release()``: it runs after spinning stops (even on Ctrl-C, when the ROS
    context is already gone), for work that must happen without ROS -- homing the servos, closing a
    camera, flushing a dataset -- and ``exit_status`` (the process's exit code). A user error
    (``EmoError``: bad parameter, missing file or model) is one log line and exit code 2.

    rclpy itself turns SIGINT and SIGTERM into a shutdown; SIGHUP (the terminal of a node started by
    hand went away) would kill the process with the servos torqued, so it raises
    :class:`emo_core.signals.Stopped` like Ctrl-C (the control timer wakes the executor within a
    cycle) and the node exits with 128 + SIGHUP after ``release()``.
    """
    rclpy.init(args=args)
    forward_core_logs()
    node = None
    status = 0
    stopped = False
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
    try:
        with stop_on_signals((signal.SIGHUP,)):
            node = make_node()
            executor.add_node(node)
            executor.spin()
    except Stopped as exc:
        status = exc.exit_status
        stopped = True
    except (KeyboardInterrupt, ExternalShutdownException):
        # rclpy's own SIGINT/SIGTERM shutdown: the node homes at its ordinary pace (shutdown_timeout_s,
        # 3 s, inside ros2 launch's 5 s SIGTERM -> SIGKILL grace).
        pass
    except EmoError as exc:
        # A bad parameter, file or model: one clear line, like the emo CLI, not a traceback.
        logging.getLogger("emo_ros").error("%s", exc)
        status = 2
    except Exception:
        # Ctrl-C shuts the context down from the signal handler while a callback may still be
        # publishing; its "context is invalid" error is the shutdown itself, not a failure.
        if rclpy.ok():
            raise
        logging.getLogger("emo_ros").debug("callback interrupted by shutdown", exc_info=True)
    finally:
        if node is not None:
            release = getattr(node, "release", None)
            if release is not None:
                node.stopped_by_signal = stopped
                release()
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
    return status or int(getattr(node, "exit_status", 0))
