"""emo_ros: ament_python package; one console script per node (``ros2 run emo_ros <node>``)."""
from setuptools import find_packages, setup

PACKAGE = "emo_ros"
#: Executable name -> module (each module has ``main``); tests/test_ros_packages.py checks both.
NODES = ("eye_camera", "face_landmarks", "peak_activation", "expression_predictor", "inverse_model",
         "servo_driver", "babbler", "face_twin", "gaze")

setup(
    name=PACKAGE,
    version="0.1.0",
    description="ROS 2 nodes of the Emo coexpression stack (thin shells over emo_core)",
    packages=find_packages(exclude=["test", "tests"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    python_requires=">=3.10",
    zip_safe=True,
    entry_points={"console_scripts": [f"{node} = {PACKAGE}.{node}:main" for node in NODES]},
)
