"""Live coexpression: eye cameras -> landmarks -> peak activation -> prediction -> inverse model -> servos.

    ros2 launch emo_bringup coexpression.launch.py                 # the robot: cameras + servo bus
    ros2 launch emo_bringup coexpression.launch.py sim:=true       # no hardware (see below)
    ros2 launch emo_bringup coexpression.launch.py sim:=true mode:=mimicry rviz:=true
    ros2 launch emo_bringup coexpression.launch.py sim:=true gaze:=false   # eyes and neck stay home, no blinks

``sim:=true`` starts the servo bus emulator (``emo servo emulate`` on a pty; the servo driver talks
to it through the real dynamixel_sdk) and the digital twin face, and plays a clip in both eyes (the
clip bundled with emo_core, or ``video:=FILE``), looped. All nodes run in the ``/emo`` namespace;
node parameters come from ``params_file`` (default: the installed config/emo_nodes.yaml), and the
launch arguments below override what they name. See docs/ros.md.
"""
from __future__ import annotations

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from emo_bringup.launch_support import (bus_emulator, default_params_file, demo_clip, is_true, lifecycle_node, node,
                                        share)

ARGUMENT_NAMES = ("sim", "video", "mode", "rviz", "port", "params_file", "gaze")


def launch_setup(context: LaunchContext) -> list:
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENT_NAMES}
    sim = is_true(arg["sim"])
    gaze = is_true(arg["gaze"])
    params = arg["params_file"] or default_params_file()
    actions: list = []

    # Eyes: the robot's cameras (params_file), or a clip in both eyes.
    video = arg["video"] or (demo_clip() if sim else "")
    for camera in ("left", "right"):
        overrides = {"camera": camera}
        if video:
            overrides.update(source=video, loop=sim)
        actions += lifecycle_node("eye_camera", f"{camera}_eye", [params, overrides])

    actions += [
        node("face_landmarks", "face_landmarks", [params]),
        node("peak_activation", "peak_activation", [params]),
        node("expression_predictor", "expression_predictor", [params]),
        node("inverse_model", "inverse_model", [params, {"mode": arg["mode"]} if gaze else
                                                {"mode": arg["mode"], "blink": False}]),
    ]
    if gaze:          # eyes and neck follow the person (the face's image position + joint_states)
        actions.append(node("gaze", "gaze", [params]))

    # The servo bus: the emulator's pty in sim, else the given (or configured) port.
    driver_overrides: dict = {}
    if sim:
        link, emulator = bus_emulator()
        actions += emulator
        driver_overrides["port"] = link
        actions.append(node("face_twin", "face_twin", [params]))
    elif arg["port"]:
        driver_overrides["port"] = arg["port"]
    actions += lifecycle_node("servo_driver", "servo_driver", [params, driver_overrides])

    if is_true(arg["rviz"]):
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2",
                            arguments=["-d", share("rviz", "emo.rviz")], output="screen"))
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("sim", default_value="false", choices=["true", "false"],
                              description="true: servo bus emulator + digital twin face, a clip in both eyes "
                                          "(no hardware)"),
        DeclareLaunchArgument("video", default_value="",
                              description="video file played in both eyes (default in sim: the clip bundled "
                                          "with emo_core; on the robot: the cameras of params_file)"),
        DeclareLaunchArgument("mode", default_value="coexpression", choices=["coexpression", "mimicry"],
                              description="coexpression (anticipate the apex) or mimicry (mirror the live face)"),
        DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"],
                              description="true: start rviz2 with the emo_bringup config (landmarks, images, twin)"),
        DeclareLaunchArgument("port", default_value="",
                              description="servo bus serial port (default: servo_driver.port of params_file; "
                                          "ignored in sim)"),
        DeclareLaunchArgument("gaze", default_value="true", choices=["true", "false"],
                              description="true: the gaze node (eyes and neck follow the person) and "
                                          "inverse_model's blinks; false: both off (eyes and neck hold home)"),
        DeclareLaunchArgument("params_file", default_value="",
                              description="node parameters YAML (default: the installed config/emo_nodes.yaml)"),
        OpaqueFunction(function=launch_setup),
    ])
