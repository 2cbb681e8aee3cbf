"""Pieces the launch files share: lifecycle nodes that bring themselves up, the sim bus emulator.

Imported by ``launch/*.launch.py`` (needs ``launch`` and ``launch_ros``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory
from launch.actions import EmitEvent, ExecuteProcess, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnShutdown
from launch.events.matchers import matches_action
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

NAMESPACE = "emo"
TRUE = ("true", "1", "yes", "on")


def is_true(value: str) -> bool:
    return value.strip().lower() in TRUE


def share(*parts: str) -> str:
    return os.path.join(get_package_share_directory("emo_bringup"), *parts)


def default_params_file() -> str:
    return share("config", "emo_nodes.yaml")


def node(executable: str, name: str, params: list[Any], **kwargs: Any) -> Node:
    return Node(package="emo_ros", executable=executable, name=name, namespace=NAMESPACE,
                parameters=params, output="screen", emulate_tty=True, **kwargs)


def lifecycle_node(executable: str, name: str, params: list[Any], **kwargs: Any) -> list[Any]:
    """A lifecycle node plus the events that configure it at start and activate it once inactive."""
    managed = LifecycleNode(package="emo_ros", executable=executable, name=name, namespace=NAMESPACE,
                            parameters=params, output="screen", emulate_tty=True, **kwargs)
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=managed, start_state="configuring", goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(managed),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(managed),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    return [managed, activate, configure]


def emo_executable() -> str:
    """The ``emo`` CLI of the emo_core package (lib/emo_core/emo in a colcon install)."""
    try:
        candidate = Path(get_package_prefix("emo_core")) / "lib" / "emo_core" / "emo"
        if candidate.is_file():
            return str(candidate)
    except PackageNotFoundError:
        pass
    found = shutil.which("emo")
    if found is None:
        raise RuntimeError("the `emo` command of emo_core was not found (build the workspace with colcon)")
    return found


def bus_emulator() -> tuple[str, list[Any]]:
    """``emo servo emulate`` on a pty linked from a fresh temporary directory (removed on shutdown).

    Returns the link path (the servo driver's port) and the actions to add.
    """
    folder = tempfile.mkdtemp(prefix="emo_sim_")
    link = os.path.join(folder, "ttyEMO0")
    emulator = ExecuteProcess(cmd=[emo_executable(), "servo", "emulate", "--link", link], name="bus_emulator",
                              output="screen", emulate_tty=True)
    cleanup = RegisterEventHandler(OnShutdown(on_shutdown=[OpaqueFunction(
        function=lambda context: shutil.rmtree(folder, ignore_errors=True))]))
    return link, [emulator, cleanup]


def demo_clip() -> str:
    """The clip bundled with emo_core (a face smiling, 5 s), played by the sim cameras."""
    from emo_core.resources import data_path

    return str(data_path("demo_clip.mp4"))
