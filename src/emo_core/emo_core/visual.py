"""Debug drawings and rviz markers of a face (no ``rclpy`` import).

The annotated image shows the 113 landmarks MediaPipe found on the camera frame, coloured by region;
the markers show the pose-normalized metric face as an rviz MarkerArray (one point list per region
and a text label), in the plane z = 0 of ``marker_frame`` (x to the viewer's right, y up).
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .schema import REGIONS, Face

from .conversions import MessageTypes

#: Region colours (RGB, 0..1), the same in images and markers.
REGION_COLORS: dict[str, tuple[float, float, float]] = {
    "jaw": (0.95, 0.85, 0.3), "lips": (0.95, 0.3, 0.35), "left_eye": (0.3, 0.8, 0.95),
    "right_eye": (0.3, 0.8, 0.95), "left_brow": (0.45, 0.95, 0.45), "right_brow": (0.45, 0.95, 0.45),
}
MARKER_NAMESPACE = "emo_face"


def annotate(rgb: np.ndarray, face: Face) -> np.ndarray:
    """A copy of the RGB frame with the face's image-space landmarks and its confidence drawn on it."""
    out = np.ascontiguousarray(rgb).copy()
    height, width = out.shape[:2]
    radius = max(1, round(min(width, height) / 240))
    if not face.detected:
        cv2.putText(out, "no face", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 80, 80), 1, cv2.LINE_AA)
        return out
    pixels = np.rint(np.asarray(face.image, np.float64) * [width, height]).astype(np.int32)
    for region, index in REGIONS.items():
        color = tuple(int(255 * c) for c in REGION_COLORS[region])
        for x, y in pixels[index]:
            cv2.circle(out, (int(x), int(y)), radius, color, -1, cv2.LINE_AA)
    label = f"{face.camera or 'face'} {face.confidence:.2f}"
    cv2.putText(out, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def face_markers(types: MessageTypes, points: np.ndarray | None, header: Any, scale: float,
                 label: str = "", offset: float = 0.0, namespace: str = MARKER_NAMESPACE) -> Any:
    """visualization_msgs/MarkerArray of a metric face: a SPHERE_LIST per region and a text label.

    ``points`` None (no face) deletes the previous markers, so rviz does not show a stale face.
    ``offset`` shifts the face to the right (face units), e.g. to show the robot's face beside it.
    """
    markers = []
    if points is None:
        markers.append(types.new("visualization_msgs/msg/Marker", header=header, ns=namespace, id=0,
                                 action=3))                                # DELETEALL
        return types.new("visualization_msgs/msg/MarkerArray", markers=markers)
    xy = (np.asarray(points, np.float64)[:, :2] + [offset, 0.0]) * scale
    size = types.new("geometry_msgs/msg/Vector3", x=0.1 * scale, y=0.1 * scale, z=0.1 * scale)
    for marker_id, (region, index) in enumerate(REGIONS.items()):
        r, g, b = REGION_COLORS[region]
        pts = [types.new("geometry_msgs/msg/Point", x=float(x), y=float(-y), z=0.0) for x, y in xy[index]]
        markers.append(types.new("visualization_msgs/msg/Marker", header=header, ns=namespace, id=marker_id,
                                 type=7, action=0, pose=_identity_pose(types), scale=size,       # SPHERE_LIST, ADD
                                 color=types.new("std_msgs/msg/ColorRGBA", r=r, g=g, b=b, a=1.0), points=pts))
    if label:
        top = float(-xy[:, 1].min()) + 0.5 * scale
        pose = _identity_pose(types, x=float(xy[:, 0].mean()), y=top)
        text_size = types.new("geometry_msgs/msg/Vector3", x=0.0, y=0.0, z=0.3 * scale)
        markers.append(types.new("visualization_msgs/msg/Marker", header=header, ns=namespace,
                                 id=len(REGIONS), type=9, action=0, pose=pose, scale=text_size,   # TEXT_VIEW_FACING
                                 color=types.new("std_msgs/msg/ColorRGBA", r=1.0, g=1.0, b=1.0, a=1.0), text=label))
    return types.new("visualization_msgs/msg/MarkerArray", markers=markers)


def _identity_pose(types: MessageTypes, x: float = 0.0, y: float = 0.0) -> Any:
    return types.new("geometry_msgs/msg/Pose", position=types.new("geometry_msgs/msg/Point", x=x, y=y, z=0.0),
                     orientation=types.new("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0))


GAZE_NAMESPACE = "emo_gaze"


def gaze_markers(types: MessageTypes, fixation: tuple[float, float], face: tuple[float, float] | None,
                 header: Any, distance_m: float) -> Any:
    """visualization_msgs/MarkerArray of where the robot looks: an arrow from the head to the
    fixation point (``distance_m`` away) and a sphere where it sees the face (deleted without one).
    ROS axes of the marker frame: x forward, y left, z up."""
    from .gaze.geometry import direction

    def point(yaw_pitch: tuple[float, float]) -> Any:
        d = direction(*yaw_pitch) * float(distance_m)
        return types.new("geometry_msgs/msg/Point", x=float(d[2]), y=float(-d[0]), z=float(-d[1]))

    origin = types.new("geometry_msgs/msg/Point", x=0.0, y=0.0, z=0.0)
    arrow = types.new("visualization_msgs/msg/Marker", header=header, ns=GAZE_NAMESPACE, id=0, type=0, action=0,
                      pose=_identity_pose(types), points=[origin, point(fixation)],               # ARROW, ADD
                      scale=types.new("geometry_msgs/msg/Vector3", x=0.01, y=0.025, z=0.04),
                      color=types.new("std_msgs/msg/ColorRGBA", r=0.2, g=0.9, b=0.4, a=1.0))
    markers = [arrow]
    if face is None:
        markers.append(types.new("visualization_msgs/msg/Marker", header=header, ns=GAZE_NAMESPACE, id=1,
                                 action=2))                                                       # DELETE
    else:
        p = point(face)
        pose = types.new("geometry_msgs/msg/Pose", position=p,
                         orientation=types.new("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0))
        markers.append(types.new("visualization_msgs/msg/Marker", header=header, ns=GAZE_NAMESPACE, id=1, type=2,
                                 action=0, pose=pose,                                              # SPHERE, ADD
                                 scale=types.new("geometry_msgs/msg/Vector3", x=0.08, y=0.08, z=0.08),
                                 color=types.new("std_msgs/msg/ColorRGBA", r=0.95, g=0.3, b=0.35, a=0.8)))
    return types.new("visualization_msgs/msg/MarkerArray", markers=markers)
