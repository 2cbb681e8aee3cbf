"""emo_core: pip-installable (``pip install -e src/emo_core``) and a valid ament_python package.

The top-level ``config/`` and ``msg/`` directories are the single source of the default YAML files
and message definitions. A source checkout or editable install reads them in place (see
``emo_core.resources``); a wheel build copies them into the package (``emo_core/_config``,
``emo_core/_msg``) so an installed ``emo`` works anywhere.
"""
from pathlib import Path
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
REPO_CONFIG = HERE.parent.parent / "config"
REPO_MSG = HERE.parent.parent / "msg"
PACKAGE = "emo_core"


class BuildWithConfig(build_py):
    """Copy the repository's config/*.yaml and msg/*.msg into the built package."""

    def run(self) -> None:
        super().run()
        for source, pattern, name in ((REPO_CONFIG, "*.yaml", "_config"), (REPO_MSG, "*.msg", "_msg")):
            if source.is_dir():
                target = Path(self.build_lib) / PACKAGE / name
                target.mkdir(parents=True, exist_ok=True)
                for path in source.glob(pattern):
                    shutil.copy2(path, target / path.name)


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Emo human-robot facial coexpression: ROS-free core library and `emo` CLI",
    packages=find_packages(exclude=["test", "tests"]),
    package_data={PACKAGE: ["data/*", "data/**/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    python_requires=">=3.10,<3.13",
    install_requires=[
        # numpy<2: mediapipe 0.10.21 is built against the numpy 1.x ABI.
        "numpy>=1.24,<2",
        # mediapipe 0.10.21 is the last release whose wheel bundles the legacy Face Mesh graph and
        # its .tflite model (mp.solutions.face_mesh); later releases need a model download, which
        # these machines (and many robots) cannot do. It also brings opencv-contrib-python, which
        # provides cv2 -- so we do not list opencv-python as well (two cv2 providers clash).
        "mediapipe==0.10.21; platform_machine != 'aarch64'",
        # 64-bit ARM Linux (Raspberry Pi 5, Jetson): 0.10.21 has no wheel there; 0.10.18 is the
        # newest 0.10 release that has one, with the same legacy Face Mesh (on x86_64 it gives the
        # demo's figures unchanged; README, "Small computers").
        "mediapipe==0.10.18; platform_machine == 'aarch64'",
        "scipy>=1.10",
        "scikit-image>=0.21",
        "pyyaml>=6",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "safetensors>=0.4",
        "rosbags>=0.10",
        "dynamixel-sdk>=3.7.31",
        "pyserial>=3.5",
    ],
    extras_require={
        # Training (emo train ..., the torch reference paths of the models and their benchmarks).
        # Inference needs no torch: every shipped model runs from its safetensors file in numpy.
        # Install the CPU wheel with the pins (constraints.txt): an unpinned torch resolve pulls
        # gigabytes of CUDA packages. Any torch >= 2.2 works.
        "train": ["torch>=2.2"],
        "test": ["pytest>=7", "catkin_pkg>=1.0"],
    },
    entry_points={"console_scripts": ["emo = emo_core.cli:main"]},
    cmdclass={"build_py": BuildWithConfig},
    zip_safe=False,
)
