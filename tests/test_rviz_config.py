"""The rviz config shows what the graph really publishes: every display's topic is published by an
emo_ros node (read from the node sources' ``create_publisher`` calls, no ROS needed) with the
message type the display expects, under the graph's ``/emo`` namespace."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RVIZ = ROOT / "src" / "emo_bringup" / "rviz" / "emo.rviz"
NODES = ROOT / "src" / "emo_ros" / "emo_ros"
NAMESPACE = "/emo"
#: Eye camera nodes, named in the launch files: their private topics ("~/image_raw") live under their names.
EYE_CAMERAS = ("left_eye", "right_eye")
#: The message type each rviz display class subscribes to.
DISPLAY_TYPES = {
    "rviz_default_plugins/MarkerArray": "visualization_msgs/msg/MarkerArray",
    "rviz_default_plugins/Marker": "visualization_msgs/msg/Marker",
    "rviz_default_plugins/Image": "sensor_msgs/msg/Image",
    "rviz_default_plugins/Camera": "sensor_msgs/msg/Image",
}
PUBLISHERS = ("create_publisher", "create_lifecycle_publisher")


def _type_of(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``self.types.cls("pkg/msg/T")`` (or a name bound to one) -> "pkg/msg/T"."""
    if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "cls" and node.args:
        value = node.args[0]
        return value.value if isinstance(value, ast.Constant) else None
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    return None


def published() -> dict[str, set[str]]:
    """Absolute topic -> message types published by the node modules."""
    out: dict[str, set[str]] = {}
    for path in sorted(NODES.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                kind = _type_of(node.value, aliases)
                if kind:
                    aliases[node.targets[0].id] = kind
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) in PUBLISHERS and len(node.args) >= 2):
                continue
            kind, topic = _type_of(node.args[0], aliases), node.args[1]
            if kind is None or not isinstance(topic, ast.Constant):
                continue
            names = ([f"{NAMESPACE}/{eye}/{topic.value[2:]}" for eye in EYE_CAMERAS] if topic.value.startswith("~/")
                     else [f"{NAMESPACE}/{topic.value.lstrip('/')}"])
            for name in names:
                out.setdefault(name, set()).add(kind)
    return out


def displays() -> list[tuple[str, str]]:
    config = yaml.safe_load(RVIZ.read_text())
    found = []
    for display in config["Visualization Manager"]["Displays"]:
        topic = display.get("Topic", {})
        if isinstance(topic, dict) and "Value" in topic:
            found.append((display["Class"], topic["Value"]))
    return found


def test_the_node_sources_declare_publishers():
    topics = published()
    assert "/emo/face/landmarks" in topics and "/emo/left_eye/image_raw" in topics
    assert topics["/emo/face/markers"] == {"visualization_msgs/msg/MarkerArray"}


@pytest.mark.parametrize("display,topic", displays())
def test_each_rviz_display_shows_a_topic_the_graph_publishes(display, topic):
    topics = published()
    assert display in DISPLAY_TYPES, f"{display}: add its message type to DISPLAY_TYPES"
    assert topic in topics, f"rviz shows {topic}, which no node publishes"
    assert DISPLAY_TYPES[display] in topics[topic], f"{topic} is {topics[topic]}, {display} needs {DISPLAY_TYPES[display]}"
