"""emo_bringup: installs the repository's top-level launch/ and config/ (the single source of both)
into share/emo_bringup, with the rviz config, plus a small module the launch files share.

colcon requires data files relative to the package directory (it runs ``setup.py`` there), hence
``../../launch/...``: found from this file, written relative to it.
"""
import os
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "emo_bringup"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def files(folder: Path, pattern: str) -> list[str]:
    found = sorted(os.path.relpath(p, HERE) for p in folder.glob(pattern))
    if not found:
        raise SystemExit(f"{PACKAGE}: no {pattern} in {folder} (build from a full checkout of the repository)")
    return found


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Launch files, node parameters and rviz config of the Emo coexpression stack",
    packages=find_packages(exclude=["test", "tests"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", files(REPO / "launch", "*.launch.py")),
        (f"share/{PACKAGE}/config", files(REPO / "config", "*.yaml")),
        (f"share/{PACKAGE}/rviz", files(HERE / "rviz", "*.rviz")),
    ],
    install_requires=["setuptools"],
    python_requires=">=3.10",
    zip_safe=True,
)
