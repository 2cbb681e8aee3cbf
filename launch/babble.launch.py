"""Motor babbling: random feasible poses -> the robot's own face -> a babbling dataset.

    ros2 launch emo_bringup babble.launch.py sim:=true out:=/data/babble/full samples:=1000
    ros2 launch emo_bringup babble.launch.py out:=/data/babble/upper mode:=upper     # the robot

The ``babbler`` node sends poses (FaceCommand, source BABBLE) to the servo driver, waits until the
servos' present positions settle and stores the robot's face: in sim the digital twin's face from
the emulated servos (``twin/landmarks``), on the robot the landmarks of the front camera that
watches the face (``front_eye`` -> ``robot_face_landmarks``). The launch ends when the dataset holds
``samples`` samples; an interrupted run resumes in the same ``out`` directory. See docs/ros.md.
"""
from __future__ import annotations

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration

from emo_bringup.launch_support import bus_emulator, default_params_file, is_true, lifecycle_node, node

ARGUMENT_NAMES = ("sim", "samples", "out", "mode")


def launch_setup(context: LaunchContext) -> list:
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENT_NAMES}
    params = default_params_file()
    actions: list = []
    driver_overrides: dict = {}
    if is_true(arg["sim"]):
        link, emulator = bus_emulator()
        actions += emulator
        driver_overrides["port"] = link
        actions.append(node("face_twin", "face_twin", [params]))
        robot_face, face_kind = "twin/landmarks", "twin"
    else:
        # A camera in front of the robot watches its face; its landmarks are in robot space.
        actions += lifecycle_node("eye_camera", "front_eye", [params, {"camera": "front"}])
        actions.append(node("face_landmarks", "robot_face_landmarks", [params],
                            remappings=[("face/landmarks", "robot_face/landmarks"),
                                        ("face/debug_image", "robot_face/debug_image"),
                                        ("face/markers", "robot_face/markers")]))
        robot_face, face_kind = "robot_face/landmarks", "camera"
    actions += lifecycle_node("servo_driver", "servo_driver", [params, driver_overrides])

    babbler = node("babbler", "babbler",
                   [params, {"out": arg["out"], "samples": int(arg["samples"]), "mode": arg["mode"],
                             "robot_face": face_kind}],
                   remappings=[("robot_face/landmarks", robot_face)])
    actions.append(babbler)
    # The dataset is complete (or babbling failed): end the whole launch.
    actions.append(RegisterEventHandler(OnProcessExit(target_action=babbler,
                                                      on_exit=[EmitEvent(event=Shutdown(reason="babbling done"))])))
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("sim", default_value="false", choices=["true", "false"],
                              description="true: babble the digital twin through the servo bus emulator"),
        DeclareLaunchArgument("samples", default_value="100",
                              description="total samples the dataset should hold"),
        DeclareLaunchArgument("out", description="babbling dataset directory (created, or resumed)"),
        DeclareLaunchArgument("mode", default_value="full", choices=["upper", "lower", "full"],
                              description="which commands move: upper face, lower face or all"),
        OpaqueFunction(function=launch_setup),
    ])
